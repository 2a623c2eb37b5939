"""The two official architectures, as far as the shared golden code has to tell them apart.

`core.py` dispatches on config.json's `architecture`: "voxcpm2" builds `VoxCPM2Model` with
`AudioVAEV2`, "voxcpm" (or no key at all) builds the v1 `VoxCPMModel` with `AudioVAE`. The
checkpoint, module-golden, case and LoRA code is the same for both but for the classes it
constructs and the width of the DiT conditioning `mu`; this table keeps those few differences in
one place instead of scattering `if v1` tests through the shared modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import voxcpm.model.voxcpm as v1_model
import voxcpm.model.voxcpm2 as v2_model
from voxcpm.modules.audiovae import AudioVAE, AudioVAEConfig, AudioVAEConfigV2, AudioVAEV2


@dataclass(frozen=True)
class Flavour:
    name: str
    model_cls: type
    config_cls: type
    lora_config_cls: type
    vae_cls: type
    vae_config_cls: type
    # v2's DiT takes two mu tokens (lm_to_dit and res_to_dit concatenated), v1's one (their sum)
    mu_tokens: int

    def make_vae(self, vae_config: dict | None):
        """The VAE exactly as `from_local` builds it: class defaults when the config has no
        `audio_vae_config` (the VoxCPM-0.5B release has none)."""
        return self.vae_cls(config=self.vae_config_cls(**vae_config)) if vae_config else self.vae_cls()

    def mu_width(self, model) -> int:
        return self.mu_tokens * model.config.dit_config.hidden_dim


V2 = Flavour(
    name="voxcpm2",
    model_cls=v2_model.VoxCPM2Model,
    config_cls=v2_model.VoxCPMConfig,
    lora_config_cls=v2_model.LoRAConfig,
    vae_cls=AudioVAEV2,
    vae_config_cls=AudioVAEConfigV2,
    mu_tokens=2,
)

V1 = Flavour(
    name="voxcpm",
    model_cls=v1_model.VoxCPMModel,
    config_cls=v1_model.VoxCPMConfig,
    lora_config_cls=v1_model.LoRAConfig,
    vae_cls=AudioVAE,
    vae_config_cls=AudioVAEConfig,
    mu_tokens=1,
)
