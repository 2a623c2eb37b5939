#!/usr/bin/env python3
"""Build a checkpoint directory with the REAL released VoxCPM2 shapes and random weights.

    /opt/golden-venv/bin/python tools/golden/make_fullsize_checkpoint.py --out /tmp/voxcpm2-fullsize

Writes config.json (the released config), model.safetensors (bf16, 577 tensors, ~4.58 GB),
audiovae.pth (f32, {"state_dict": ...} with 312 entries, ~377 MB) and the synthetic tokenizer.
Use it for load-time, memory and speed tests of the engine; it produces noise, not speech.

Memory-frugal: the non-VAE part of the official VoxCPM2Model is constructed on the `meta`
device, cast to bf16 and materialised module by module, every parameter is randomised in
place (f32 draws, one tensor at a time) and model.safetensors is streamed to disk tensor by
tensor, so the peak RSS is about the size of the bf16 model plus one f32 tensor. The config,
the model construction, the randomisation rules and the other files of the directory are
generate.py's (configs.py, checkpoints.py, randomise.py); only the stack-by-stack
materialisation and the streaming writer are its own.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_common  # noqa: E402

golden_common.install_import_shims()  # before anything imports voxcpm

import torch  # noqa: E402

from checkpoints import load_official, official_model, write_vae_config_tokenizer  # noqa: E402
from configs import released_config  # noqa: E402
from randomise import randomise_  # noqa: E402
from synthetic_tokenizer import build_tokenizer_json  # noqa: E402

_ST_DTYPES = {torch.bfloat16: "BF16", torch.float32: "F32", torch.float16: "F16"}


def stream_safetensors(tensors: dict, path: str) -> int:
    """Write a safetensors file tensor by tensor (no second in-memory copy of the model)."""
    names = sorted(tensors)
    header, offset = {}, 0
    for n in names:
        t = tensors[n]
        nbytes = t.numel() * t.element_size()
        header[n] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    header["__metadata__"] = {"format": "pt"}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for n in names:
            t = tensors[n].contiguous()
            f.write(t.view(torch.uint8).numpy().tobytes() if t.numel() < (1 << 20) else memoryview(t.view(torch.uint8).numpy()))
    return len(names)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20240700)
    ap.add_argument("--verify", action="store_true", help="reload with VoxCPM2Model.from_local and compare (needs ~15 GB)")
    args = ap.parse_args()
    t0 = time.time()

    tok, _ = build_tokenizer_json()
    cfg_dict = released_config()
    torch.manual_seed(args.seed)
    model = official_model(cfg_dict, tok.get_vocab(), on_meta=True)

    os.makedirs(args.out, exist_ok=True)
    lm_tensors = {}
    n_params = 0
    for child_name, child in model.named_children():
        if child_name == "audio_vae":
            continue
        if not any(True for _ in child.parameters()):
            continue
        child.to(torch.bfloat16)  # still meta: free
        child.to_empty(device="cpu")  # materialise this stack only
        randomise_(child, args.seed + sum(map(ord, child_name)))
        for k, v in child.state_dict().items():
            lm_tensors[f"{child_name}.{k}"] = v
            n_params += v.numel()
        print(f"[fullsize] {child_name}: materialised + randomised ({time.time() - t0:.1f}s)", file=sys.stderr)

    randomise_(model.audio_vae, args.seed + 1)
    vae_sd = {k: v.contiguous() for k, v in model.audio_vae.state_dict().items()}
    assert vae_sd["decoder.sr_bin_boundaries"].tolist() == [20000, 30000, 40000]

    n_lm = stream_safetensors(lm_tensors, os.path.join(args.out, "model.safetensors"))
    write_vae_config_tokenizer(args.out, vae_sd, cfg_dict, tok)

    sizes = {fn: os.path.getsize(os.path.join(args.out, fn)) for fn in sorted(os.listdir(args.out))}
    summary = {
        "model.safetensors tensors": n_lm,
        "model.safetensors params": n_params,
        "audiovae.pth state_dict entries": len(vae_sd),
        "audiovae params": sum(v.numel() for v in vae_sd.values() if v.is_floating_point()),
        "file sizes": sizes,
        "wall_s": round(time.time() - t0, 1),
    }
    print(json.dumps(summary, indent=1))

    if args.verify:
        del lm_tensors, model
        loaded = load_official(args.out)
        from safetensors import safe_open

        with safe_open(os.path.join(args.out, "model.safetensors"), "pt") as f:
            sd = loaded.state_dict()
            for k in f.keys():
                assert torch.equal(f.get_tensor(k), sd[k]), k
            assert {k for k in sd if not k.startswith("audio_vae.")} == set(f.keys())
        print("[fullsize] verify: from_local reproduces every tensor", file=sys.stderr)


if __name__ == "__main__":
    main()
