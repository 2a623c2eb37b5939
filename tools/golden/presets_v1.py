"""The exact tensor lists of the released v1 models (`preset_voxcpm_0_5b.json`, `preset_voxcpm1_5.json`).

No released v1 checkpoint is available here, so a test of the engine's v1 checkpoint writer (or
of its loader's expectations) needs another ground truth for "every tensor the real files hold":
the official classes, built with the released configs (configs.py) on the meta device, where they
take no memory. Each file lists the model state dict (what the model weights file holds, in the
dtype `from_local` gives it: the config's dtype) and the VAE state dict (`audiovae.pth`, without
the `audio_vae.` prefix, always float32), plus the config.json text the list was built from.
"""

from __future__ import annotations

import json
import os

import torch
from voxcpm.model.utils import get_dtype

from checkpoints import official_model
from configs import released_v1_0_5b_config, released_v1_5_config
from flavours import V1

_ST_DTYPES = {torch.bfloat16: "BF16", torch.float32: "F32", torch.float16: "F16"}

# (file stem, release name, config, the model weights file the release ships)
PRESETS = [
    ("preset_voxcpm_0_5b", "openbmb/VoxCPM-0.5B", released_v1_0_5b_config, "pytorch_model.bin"),
    ("preset_voxcpm1_5", "openbmb/VoxCPM1.5", released_v1_5_config, "model.safetensors"),
]


def official_tensor_lists(config: dict, vocab: dict):
    """(model entries, VAE entries) of the official v1 model for `config`, each a sorted list of
    (name, shape, safetensors dtype), with the dtypes `from_local` leaves them in."""
    with torch.device("meta"):
        model = official_model(config, vocab, flavour=V1)
        model.to(get_dtype(model.config.dtype))
        model.audio_vae.to(torch.float32)
    entries = {"model": [], "audio_vae": []}
    for name, t in model.state_dict().items():
        part, key = ("audio_vae", name[len("audio_vae.") :]) if name.startswith("audio_vae.") else ("model", name)
        entries[part].append((key, list(t.shape), _ST_DTYPES[t.dtype]))
    return sorted(entries["model"]), sorted(entries["audio_vae"])


def _section(entries) -> str:
    """One tensor per line, so the file diffs and greps well."""
    rows = ",\n".join("    " + json.dumps(e, separators=(", ", ": ")) for e in entries)
    params = sum(int(torch.Size(shape).numel()) for _, shape, _ in entries)
    return f'{{\n   "count": {len(entries)},\n   "params": {params},\n   "tensors": [\n{rows}\n   ]\n  }}'


def write_presets(out_dir: str, vocab: dict, report: dict) -> None:
    for stem, release, make_config, weights_file in PRESETS:
        config = make_config()
        model, vae = official_tensor_lists(config, vocab)
        head = {
            "release": release,
            "architecture": "voxcpm",
            "model_weights_file": weights_file,
            "note": "built by tools/golden/presets_v1.py from the official classes on the meta device; see V1_NOTES.md",
            "config_json": json.dumps(config, indent=2) + "\n",
        }
        body = ",\n".join(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in head.items())
        text = f"{{\n{body},\n \"model\": {_section(model)},\n \"audio_vae\": {_section(vae)}\n}}\n"
        json.loads(text)  # well-formed
        with open(os.path.join(out_dir, f"{stem}.json"), "w", encoding="utf-8") as f:
            f.write(text)
        report["presets"] = report.get("presets", {})
        report["presets"][stem] = {
            "model_tensors": len(model),
            "model_params": sum(int(torch.Size(s).numel()) for _, s, _ in model),
            "vae_tensors": len(vae),
            "vae_params": sum(int(torch.Size(s).numel()) for _, s, _ in vae),
        }
