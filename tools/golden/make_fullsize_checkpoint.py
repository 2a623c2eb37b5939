#!/usr/bin/env python3
"""Build a checkpoint directory with the REAL released VoxCPM2 shapes and random weights.

    /opt/golden-venv/bin/python tools/golden/make_fullsize_checkpoint.py --out /tmp/voxcpm2-fullsize

Writes config.json (the released config), model.safetensors (bf16, 577 tensors, ~4.58 GB),
audiovae.pth (f32, {"state_dict": ...} with 312 entries, ~377 MB) and the synthetic tokenizer.
Use it for load-time, memory and speed tests of the engine; it produces noise, not speech.

Memory-frugal: the non-VAE part of the official VoxCPM2Model is constructed on the `meta`
device, cast to bf16 and materialised module by module, every parameter is randomised in
place (f32 draws, one tensor at a time) and model.safetensors is streamed to disk tensor by
tensor, so the peak RSS is about the size of the bf16 model plus one f32 tensor.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_common as gc  # noqa: E402

gc.install_import_shims()

import torch  # noqa: E402

# 64 LongRoPE factors of VoxCPM2 (short_factor == long_factor). Not read from the HF config.json
# itself (no download here); the same 64 values appear in a third-party VoxCPM2 GGUF port's
# hard-coded table and in a MiniCPM-4-family config.json, and match the documented endpoints
# 0.99780... -> 31.0239... (docs/voxcpm2-architecture.md §2.1). See README.md.
ROPE_FACTORS = [
    0.9977997200264581, 1.014658295992452, 1.0349680404997148, 1.059429246056193, 1.0888815016813513,
    1.1243301355211495, 1.166977103606075, 1.2182568066927284, 1.2798772354275727, 1.3538666751582975,
    1.4426259039919596, 1.5489853358570191, 1.6762658237220625, 1.8283407612492941, 2.0096956085876183,
    2.225478927469756, 2.481536379650452, 2.784415934557119, 3.1413289096347365, 3.560047844772632,
    4.048719380066383, 4.615569542115128, 5.2684819496549835, 6.014438591970396, 6.858830049237097,
    7.804668263503327, 8.851768731513417, 9.99600492938444, 11.228766118181639, 12.536757560834843,
    13.902257701387796, 15.303885189125953, 16.717837610115794, 18.119465097853947, 19.484965238406907,
    20.792956681060105, 22.02571786985731, 23.16995406772833, 24.217054535738416, 25.16289275000465,
    26.007284207271347, 26.753240849586767, 27.40615325712662, 27.973003419175363, 28.461674954469114,
    28.880393889607006, 29.237306864684626, 29.540186419591297, 29.79624387177199, 30.01202719065413,
    30.193382037992453, 30.34545697551969, 30.47273746338473, 30.579096895249787, 30.66785612408345,
    30.741845563814174, 30.80346599254902, 30.85474569563567, 30.897392663720595, 30.932841297560394,
    30.962293553185553, 30.986754758742034, 31.007064503249293, 31.02392307921529,
]
assert len(ROPE_FACTORS) == 64


def released_config() -> dict:
    lm = gc.lm_config(
        vocab_size=73448,
        hidden=2048,
        ffn=6144,
        layers=28,
        heads=16,
        kv_heads=2,
        kv_channels=128,
        max_pos=32768,
        orig_max_pos=32768,
        short_factor=ROPE_FACTORS,
        long_factor=ROPE_FACTORS,
    )
    vae = gc.vae_config(
        encoder_dim=128,
        encoder_rates=[2, 5, 8, 8],
        latent_dim=64,
        decoder_dim=2048,
        decoder_rates=[8, 6, 5, 2, 2, 2],
    )
    return gc.full_config(
        lm=lm,
        patch_size=4,
        feat_dim=64,
        residual_layers=8,
        fsq_dim=512,
        enc=(1024, 4096, 16, 12, 128),
        dit=(1024, 4096, 16, 12, 128),
        vae=vae,
        max_length=8192,
        dtype="bfloat16",
        device="cuda",
    )


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

    from voxcpm.model.voxcpm2 import VoxCPM2Model, VoxCPMConfig
    from voxcpm.modules.audiovae import AudioVAEConfigV2, AudioVAEV2

    tok, _ = gc.build_tokenizer_json()
    cfg_dict = released_config()
    config = VoxCPMConfig.model_validate(json.loads(json.dumps(cfg_dict)))
    torch.manual_seed(args.seed)

    vae = AudioVAEV2(config=AudioVAEConfigV2(**cfg_dict["audio_vae_config"])).float()
    with torch.device("meta"):
        model = VoxCPM2Model(config, gc._VocabOnlyTokenizer(tok.get_vocab()), vae, device="cpu")
    model.eval()

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
        gc.randomise_(child, args.seed + sum(map(ord, child_name)))
        for k, v in child.state_dict().items():
            lm_tensors[f"{child_name}.{k}"] = v
            n_params += v.numel()
        print(f"[fullsize] {child_name}: materialised + randomised ({time.time() - t0:.1f}s)", file=sys.stderr)

    gc.randomise_(model.audio_vae, args.seed + 1)
    vae_sd = {k: v.contiguous() for k, v in model.audio_vae.state_dict().items()}
    assert vae_sd["decoder.sr_bin_boundaries"].tolist() == [20000, 30000, 40000]

    n_lm = stream_safetensors(lm_tensors, os.path.join(args.out, "model.safetensors"))
    torch.save({"state_dict": vae_sd}, os.path.join(args.out, "audiovae.pth"))
    with open(os.path.join(args.out, "config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg_dict, f, indent=2)
        f.write("\n")
    gc.write_tokenizer(tok, args.out)

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
        del lm_tensors, model, vae
        loaded = VoxCPM2Model.from_local(args.out, optimize=False, training=False, device="cpu")
        from safetensors import safe_open

        with safe_open(os.path.join(args.out, "model.safetensors"), "pt") as f:
            sd = loaded.state_dict()
            for k in f.keys():
                assert torch.equal(f.get_tensor(k), sd[k]), k
            assert {k for k in sd if not k.startswith("audio_vae.")} == set(f.keys())
        print("[fullsize] verify: from_local reproduces every tensor", file=sys.stderr)


if __name__ == "__main__":
    main()
