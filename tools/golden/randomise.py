"""Random weights for the official model: every parameter, norms and `weight_g` included.

A tensor left at its init value (a norm at 1, a zero bias) would let a port that misreads it still
pass the goldens. The scales keep activations O(1) through the whole model; README.md
("Checkpoints") has the table of rules.
"""

from __future__ import annotations

import math

import torch
from voxcpm.modules.audiovae import audio_vae as vae_v1
from voxcpm.modules.audiovae import audio_vae_v2 as vae_v2

# the v1 and v2 VAEs define their own (structurally identical) classes
_RESIDUAL_UNITS = (vae_v2.CausalResidualUnit, vae_v1.CausalResidualUnit)
_DECODERS = (vae_v2.CausalDecoder, vae_v1.CausalDecoder)


def randomise_(module, seed: int) -> None:
    """Overwrite EVERY parameter of `module` (a VoxCPM2Model, a VoxCPMModel or a sub-module) with a deterministic
    random value whose scale keeps activations O(1). Parameters are visited in sorted-name order
    with a dedicated generator, so the result depends only on (seed, shapes)."""
    gen = torch.Generator().manual_seed(seed)
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name in sorted(params):
            p = params[name]
            shape = tuple(p.shape)
            leaf = name.rsplit(".", 1)[-1]

            def randn(*s):
                return torch.randn(s if s else shape, generator=gen, dtype=torch.float32)

            if leaf == "alpha":  # Snake alpha: positive, 0.5..1.5
                v = 0.5 + torch.rand(shape, generator=gen, dtype=torch.float32)
            elif leaf == "weight_g":
                v = _weight_g_value(name, module, shape, gen)
            elif leaf == "weight_v":
                v = randn()
            elif name.endswith("norm.weight") or "layernorm" in name:
                v = 1.0 + 0.1 * randn()
            elif name.endswith("scale_embed.weight"):
                v = 1.0 + 0.1 * randn()
            elif name.endswith("bias_embed.weight"):
                v = 0.1 * randn()
            elif name.endswith("special_token"):
                v = randn()
            elif name.endswith("embed_tokens.weight"):
                v = randn()
            elif leaf == "bias":
                v = 0.1 * randn()
            elif leaf == "weight" and p.ndim == 2:
                v = randn() / math.sqrt(shape[1])
            else:
                raise RuntimeError(f"randomise_: no rule for parameter {name} {shape}")
            p.copy_(v.to(p.dtype))


def _weight_g_value(name, root, shape, gen):
    """Norm of each output row of a weight-normed conv. Conv1d: ~1 (variance preserving).
    ConvTranspose1d (dim 0 = input channels): sqrt(stride * Cout / Cin) so that the upsampled
    signal keeps unit scale."""
    mod_name = name[: -len(".weight_g")]
    mod = root.get_submodule(mod_name)
    parent_name, _, last = mod_name.rpartition(".")
    grand_name = parent_name.rpartition(".")[0]
    base = 1.0
    if isinstance(mod, torch.nn.ConvTranspose1d):
        cin, cout = mod.in_channels, mod.out_channels
        base = math.sqrt(mod.stride[0] * cout / cin)
    elif last == "3" and isinstance(root.get_submodule(grand_name), _RESIDUAL_UNITS):
        # last 1x1 conv of a residual branch: keep the 18+ residual additions from blowing up
        base = 0.25
    elif (
        isinstance(mod, torch.nn.Conv1d)
        and mod.out_channels == 1
        and isinstance(root.get_submodule(parent_name.rpartition(".")[0]), _DECODERS)
    ):
        # final decoder conv (before tanh): keep the waveform mostly out of tanh saturation
        base = 0.1
    return base * (0.8 + 0.4 * torch.rand(shape, generator=gen, dtype=torch.float32))
