"""LoRA adapter directories and their parity cases (`tiny/lora/`, `tiny/lora_case.safetensors`,
and the same under `v1_tiny/` for the v1 architecture).

Everything goes through the official LoRA code: the layers come from the architecture's own
`LoRAConfig` via `from_local`, the adapter is written as the official fine-tuning writes it and
read back with `load_lora_weights`, and the base run is checked against `set_lora_enabled(False)`,
so the engine can check loading, applying and unloading an adapter. README.md ("LoRA adapter and
case").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch
from safetensors.torch import save_file

from cases import run_case
from checkpoints import checkpoint_dir, load_official
from flavours import V1, V2, Flavour
from margins import check_margins
from tensors import f32, gen_for, randn, save_tensors

LORA_SEED = 20240701
LORA_CONFIG = dict(enable_lm=True, enable_dit=True, enable_proj=True, r=4, alpha=8, dropout=0.0)
# lora_A ~ N(0,1)/sqrt(in), lora_B ~ LORA_B_SCALE * N(0,1)/sqrt(r); the update is scaled by alpha/r
LORA_B_SCALE = 0.5
# a tensor under a key no model has, so that load_lora_weights reports one skipped key
LORA_EXTRA_KEY = "base_lm.layers.0.self_attn.not_a_layer.lora_A"


@dataclass(frozen=True)
class LoraFixture:
    cfg: str  # the fixture config whose checkpoint gets the adapter
    flavour: Flavour
    # (name, text, min_len, max_len, timesteps, cfg, noise_seed) of the zero-shot case
    case: tuple


# 3 patches keep the v2 file small (the audio is 7680 samples per patch)
LORA_V2 = LoraFixture("tiny", V2, ("lora", "hello 你好 world", 3, 3, 10, 2.0, 3004))
LORA_V1 = LoraFixture("v1_tiny", V1, ("lora", "hello 你好 world", 3, 3, 10, 2.0, 7059))


def lora_params(model) -> dict:
    return {n: p for n, p in model.named_parameters() if "lora_" in n}


def load_lora_model(ckpt: str, flavour: Flavour):
    return load_official(ckpt, flavour, lora_config=flavour.lora_config_cls(**LORA_CONFIG)).float().eval()


def write_lora(out_dir: str, report: dict, fixture: LoraFixture = LORA_V2) -> None:
    """<cfg>/lora/{lora_weights.safetensors, lora_config.json} and <cfg>/lora_case.safetensors, all
    through the official LoRA code (LoRAConfig, _apply_lora via from_local, load_lora_weights,
    set_lora_enabled) of the fixture's architecture."""
    flavour = fixture.flavour
    ckpt = checkpoint_dir(out_dir, fixture.cfg)
    lora_dir = os.path.join(out_dir, fixture.cfg, "lora")
    os.makedirs(lora_dir, exist_ok=True)

    # 1-2. official model with LoRA layers; every lora_A / lora_B drawn from a private generator
    model = load_lora_model(ckpt, flavour)
    params = lora_params(model)
    assert params, "LoRAConfig injected no LoRA layers"
    g = gen_for(LORA_SEED)
    with torch.no_grad():
        for name in sorted(params):
            p = params[name]
            if name.endswith("lora_A"):  # [r, in]
                p.copy_(randn(g, *p.shape) / float(p.shape[1]) ** 0.5)
            elif name.endswith("lora_B"):  # [out, r]
                p.copy_(LORA_B_SCALE * randn(g, *p.shape) / float(p.shape[1]) ** 0.5)
            else:
                raise AssertionError(f"unexpected LoRA parameter {name}")

    # 3. the adapter directory, as the official fine-tuning writes it: the state-dict entries whose
    # names contain "lora_" (save_file, no metadata), plus one key that matches no parameter
    state = {k: f32(v) for k, v in model.state_dict().items() if "lora_" in k}
    assert set(state) == set(params), "LoRA state-dict keys differ from the LoRA parameters"
    assert LORA_EXTRA_KEY not in state
    weights = dict(state)
    weights[LORA_EXTRA_KEY] = randn(g, LORA_CONFIG["r"], 8)
    weights_path = os.path.join(lora_dir, "lora_weights.safetensors")
    save_file(weights, weights_path)
    os.chmod(weights_path, 0o644)
    with open(os.path.join(lora_dir, "lora_config.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(flavour.lora_config_cls(**LORA_CONFIG).model_dump(), indent=2) + "\n")

    # 4. round trip: a second official model with default-initialised LoRA parameters loads the
    # directory through load_lora_weights
    model2 = load_lora_model(ckpt, flavour)
    params2 = lora_params(model2)
    assert set(params2) == set(params)
    assert any(not torch.equal(params2[k], params[k]) for k in params), "fresh LoRA params already equal"
    loaded, skipped = model2.load_lora_weights(lora_dir)
    assert sorted(loaded) == sorted(params) and skipped == [LORA_EXTRA_KEY], (loaded, skipped)
    for k in params:
        assert torch.equal(params2[k], params[k]), f"LoRA round trip changed {k}"
    assert all(torch.equal(a, b) for a, b in zip(model2.state_dict().values(), model.state_dict().values()))
    del model

    # 5. zero-shot case with the adapter loaded, and the same case (same noise) without it
    name, text, min_len, max_len, steps, cfg_value, seed = fixture.case
    where = f"{fixture.cfg}/case_{name}"
    tensors, info = run_case(model2, text, min_len, max_len, steps, cfg_value, seed)
    assert info["n_patches"] == min(max_len, info["cap"]), info
    check_margins(where, info)

    base = load_official(ckpt, flavour).float().eval()
    base_tensors, base_info = run_case(base, text, min_len, max_len, steps, cfg_value, seed)
    model2.set_lora_enabled(False)
    off_tensors, _ = run_case(model2, text, min_len, max_len, steps, cfg_value, seed)
    model2.set_lora_enabled(True)
    for k in ("noise", "latents", "audio"):
        assert torch.equal(off_tensors[k], base_tensors[k]), f"set_lora_enabled(False) != base model: {k}"
    assert torch.equal(base_tensors["noise"], tensors["noise"])
    check_margins(f"the base run of {where}", base_info)

    lat, base_lat = tensors["latents"], base_tensors["latents"]
    rel = float((lat - base_lat).abs().max() / base_lat.abs().max())
    assert rel >= 0.1, f"the adapter barely changes {where}: relative max difference {rel}"
    tensors["lora_counts"] = torch.tensor([len(loaded), len(skipped)], dtype=torch.int64)
    tensors["base_latents"] = f32(base_lat)
    info.update(
        lora_loaded=len(loaded),
        lora_skipped=len(skipped),
        lora_vs_base_latents_rel_maxabs=round(rel, 4),
        lora_vs_base_audio_rel_maxabs=round(
            float((tensors["audio"] - base_tensors["audio"]).abs().max() / base_tensors["audio"].abs().max()), 4
        ),
        base_min_fsq_margin=base_info["min_fsq_margin"],
    )
    report["cases"][where] = info
    save_tensors(os.path.join(out_dir, fixture.cfg, f"{name}_case.safetensors"), tensors, info)
