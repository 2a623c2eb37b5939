#!/usr/bin/env python3
"""Golden-fixture generator for the Rust VoxCPM2 port.

Every number written here is produced by the official PyTorch implementation (`voxcpm==2.0.3`):
this script only builds configs, randomises weights, feeds inputs and records outputs.

    /opt/golden-venv/bin/python tools/golden/generate.py --out engine/tests/fixtures --demo-out assets/demo-checkpoint

See tools/golden/README.md for what every output is.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

os.environ.setdefault("TQDM_DISABLE", "1")  # silence the official per-patch progress bar
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_common as gc  # noqa: E402

gc.install_import_shims()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import voxcpm.modules.locdit.unified_cfm as unified_cfm_mod  # noqa: E402
from voxcpm.model.utils import mask_multichar_chinese_tokens, next_and_close  # noqa: E402
from voxcpm.model.voxcpm2 import VoxCPM2Model  # noqa: E402

# --------------------------------------------------------------------------------------------- #
# Configurations
# --------------------------------------------------------------------------------------------- #

SEEDS = {"tiny": 20240612, "odd": 20240602, "demo": 20240603}


def tiny_config(vocab_size: int) -> dict:
    lm = gc.lm_config(
        vocab_size=vocab_size,
        hidden=64,
        ffn=96,
        layers=2,
        heads=4,
        kv_heads=2,
        kv_channels=16,
        max_pos=128,
        orig_max_pos=128,  # max == original -> short factors, scaling factor exactly 1 (like the release)
        short_factor=np.round(np.linspace(1.0, 3.0, 8), 6),
        long_factor=np.round(np.geomspace(1.5, 12.0, 8), 6),
    )
    vae = gc.vae_config(
        encoder_dim=4,
        encoder_rates=[2, 5, 8, 8],
        latent_dim=8,
        decoder_dim=64,
        decoder_rates=[8, 6, 5, 2, 2, 2],
    )
    return gc.full_config(
        lm=lm,
        patch_size=4,
        feat_dim=8,
        residual_layers=2,
        fsq_dim=16,
        enc=(32, 48, 4, 2, 16),
        dit=(32, 48, 4, 2, 16),
        vae=vae,
        max_length=128,
    )


def odd_config(vocab_size: int) -> dict:
    lm = gc.lm_config(
        vocab_size=vocab_size,
        hidden=60,
        ffn=84,
        layers=3,
        heads=6,
        kv_heads=2,
        kv_channels=12,
        max_pos=256,
        orig_max_pos=64,  # max > original -> LONG factors, scaling sqrt(1 + ln4/ln64) = 1.1547
        short_factor=np.round(np.linspace(1.0, 2.0, 6), 6),
        long_factor=np.round([1.25, 1.9, 2.7, 4.1, 6.3, 9.6], 6),
    )
    vae = gc.vae_config(
        encoder_dim=6,
        encoder_rates=[2, 3, 2],
        latent_dim=6,
        decoder_dim=48,
        decoder_rates=[3, 2, 2, 3],
    )
    return gc.full_config(
        lm=lm,
        patch_size=3,
        feat_dim=6,
        residual_layers=2,
        fsq_dim=10,
        enc=(36, 44, 6, 2, 12),
        dit=(42, 50, 6, 3, 12),
        vae=vae,
        max_length=128,
    )


# Zero-shot parity cases: (config, name, text, min_len, max_len, timesteps, cfg, noise_seed)
CASES = [
    ("tiny", "full", "你好，世界！Hello 123", 6, 6, 10, 2.0, 1002),
    # stopped early by the (unmodified) random stop head after rejecting i = 2, 3, 4 (README)
    ("tiny", "stop", "hello world", 1, 2000, 10, 2.0, 1004),
    ("odd", "full", "中国 VoxCPM2 test.", 5, 5, 7, 1.7, 2002),
    ("odd", "default", "你好世界", 2, 2000, 10, 2.0, 2002),
]
# stop decisions closer than this to a tie could flip under float noise in another implementation
MIN_STOP_MARGIN = 0.05
# FSQ rounds tanh(h)*scale to integers: a value this close to a .5 boundary could round the other
# way under float noise (~1e-5 here) and change every later patch, so cases must keep clear of it
MIN_FSQ_MARGIN = 1e-3

TOKENIZER_TEXTS = [
    "你好",
    "你好世界",
    "你好，世界！",
    "世界你好",
    "说你好吗",
    "a你好b",
    "你好你好你好",
    "我爱中国，我爱北京天安门。",
    "中华人民共和国",
    "今天是2024年5月1日，天气很好！",
    "VoxCPM2 是一个语音合成模型。",
    "Hello world",
    "Hello, 世界! 123",
    "Mixed中文and English混合",
    "hello 你好 world 世界",
    "日本語のテキストです。こんにちは",
    "안녕하세요 세계",
    "emoji 😀 test 🎉!",
    "price: $3.50 (approx.) 100%",
    "Ωμέγα ñandú Ünïcödé ¿Qué?",
    "𠀀 rare CJK extension B 𪚥",
    "(开心)今天很开心",
    "0123456789",
    " leading space",
    "trailing space ",
    "  two leading",
    "multiple   spaces  here",
    "",
    " ",
    "   ",
    "a",
    "。",
    "tab\there",
    "new\nline",
    "the quick brown fox jumps over the lazy dog",
    "<|audio_start|> literal special",
]


# --------------------------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------------------------- #


class _TorchProxy:
    """Stand-in for the `torch` module as seen by unified_cfm.py: `randn` returns the next
    prescribed / pre-drawn z; everything else is the real torch."""

    def __init__(self, real, provider):
        self._real = real
        self._provider = provider

    def __getattr__(self, name):
        return getattr(self._real, name)

    def randn(self, *size, **kwargs):
        if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
            size = tuple(size[0])
        z = self._provider(tuple(size))
        return z.to(device=kwargs.get("device") or "cpu", dtype=kwargs.get("dtype") or torch.float32)


@contextlib.contextmanager
def injected_noise(seed: int | None = None, fixed: list[torch.Tensor] | None = None):
    """Replace the CFM's `torch.randn`. With `seed`, each call draws N(0,1) f32 from a private
    generator; with `fixed`, each call returns the next given tensor. Yields the list of z used."""
    used: list[torch.Tensor] = []
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    queue = list(fixed or [])

    def provider(shape):
        if gen is not None:
            z = torch.randn(shape, generator=gen, dtype=torch.float32)
        else:
            z = queue.pop(0)
            assert tuple(z.shape) == shape, (z.shape, shape)
        used.append(z.clone())
        return z

    real = unified_cfm_mod.torch
    unified_cfm_mod.torch = _TorchProxy(real, provider)
    try:
        yield used
    finally:
        unified_cfm_mod.torch = real


@contextlib.contextmanager
def capture_steps(model):
    """Forward hooks recording, per generated patch: lm_hidden / res_hidden (the DiT projections'
    inputs), the stop logits and the CFM output patch."""
    rec = {"lm_hidden": [], "res_hidden": [], "stop_logits": [], "patch": [], "fsq_pre_round": []}
    fsq = model.fsq_layer
    hooks = [
        fsq.in_proj.register_forward_hook(
            lambda m, i, o: rec["fsq_pre_round"].append((torch.tanh(o) * fsq.scale).detach().clone())
        ),
        model.lm_to_dit_proj.register_forward_hook(lambda m, i, o: rec["lm_hidden"].append(i[0].detach().clone())),
        model.res_to_dit_proj.register_forward_hook(lambda m, i, o: rec["res_hidden"].append(i[0].detach().clone())),
        model.stop_head.register_forward_hook(lambda m, i, o: rec["stop_logits"].append(o.detach().clone())),
        model.feat_decoder.register_forward_hook(lambda m, i, o: rec["patch"].append(o.detach().clone())),
    ]
    try:
        yield rec
    finally:
        for h in hooks:
            h.remove()


def f32(x) -> torch.Tensor:
    return x.detach().to(torch.float32).contiguous().clone()


def save_tensors(path: str, tensors: dict, metadata: dict | None = None) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    out = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    # a single metadata entry: safetensors writes the metadata map in hash order, so several
    # keys would make the file bytes differ from run to run
    meta = {"golden": json.dumps(metadata or {}, ensure_ascii=False, sort_keys=True)}
    save_file(out, path, metadata=meta)
    os.chmod(path, 0o644)  # safetensors creates files 0600


def gen_for(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(g, *shape):
    return torch.randn(shape, generator=g, dtype=torch.float32)


# --------------------------------------------------------------------------------------------- #
# Checkpoints
# --------------------------------------------------------------------------------------------- #


def build_and_save(cfg_dict: dict, tok, seed: int, out_dir: str, lm_bf16: bool = False):
    torch.manual_seed(seed)  # construction-time init (overwritten anyway)
    model = gc.build_model(cfg_dict, tok.get_vocab())
    gc.randomise_(model, seed)
    if lm_bf16:
        # round the non-VAE weights to bf16 so that the f32 model in memory equals what the
        # official loader makes of the bf16 file (it casts back to the config dtype, float32)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if not name.startswith("audio_vae."):
                    p.copy_(p.to(torch.bfloat16).to(torch.float32))
    gc.save_checkpoint(model, cfg_dict, tok, out_dir, lm_dtype=torch.bfloat16 if lm_bf16 else None)
    return model


def load_and_verify(out_dir: str, reference_model) -> VoxCPM2Model:
    """Load the written directory with the official loader and check it reproduces the in-memory
    model exactly (every state-dict entry, and a prefill + one CFM patch)."""
    loaded = VoxCPM2Model.from_local(out_dir, optimize=False, training=False, device="cpu")
    loaded = loaded.eval()
    ref_sd, new_sd = reference_model.state_dict(), loaded.state_dict()
    assert set(ref_sd) == set(new_sd), set(ref_sd) ^ set(new_sd)
    for k in ref_sd:
        assert ref_sd[k].dtype == new_sd[k].dtype, k
        assert torch.equal(ref_sd[k], new_sd[k]), f"state-dict mismatch after reload: {k}"
    g = gen_for(7)
    cfg = loaded.config
    x = randn(g, 1, 5, cfg.lm_config.hidden_size)
    with torch.inference_mode():
        a, _ = reference_model.base_lm(inputs_embeds=x, is_causal=True)
        b, _ = loaded.base_lm(inputs_embeds=x, is_causal=True)
        assert torch.equal(a, b)
        mu = randn(g, 1, 2 * cfg.dit_config.hidden_dim)
        cond = randn(g, 1, cfg.feat_dim, cfg.patch_size)
        z = randn(g, 1, cfg.feat_dim, cfg.patch_size)
        with injected_noise(fixed=[z]):
            pa = reference_model.feat_decoder(mu=mu, n_timesteps=5, patch_size=cfg.patch_size, cond=cond, cfg_value=2.0)
        with injected_noise(fixed=[z]):
            pb = loaded.feat_decoder(mu=mu, n_timesteps=5, patch_size=cfg.patch_size, cond=cond, cfg_value=2.0)
        assert torch.equal(pa, pb)
        lat = randn(g, 1, cfg.feat_dim, 3)
        assert torch.equal(reference_model.audio_vae.decode(lat), loaded.audio_vae.decode(lat))
    return loaded


# --------------------------------------------------------------------------------------------- #
# Per-module goldens
# --------------------------------------------------------------------------------------------- #


def lm_goldens(prefix: str, lm, g, T: int, H: int) -> dict:
    out = {}
    x = randn(g, 1, T, H)
    y, kv = lm(inputs_embeds=x, is_causal=True)
    lm.kv_cache.fill_caches(kv)  # exactly like _inference
    out[f"{prefix}.prefill.input"] = f32(x)
    out[f"{prefix}.prefill.output"] = f32(y)
    for tag in ("step", "step2"):
        pos = lm.kv_cache.step()
        s = randn(g, 1, H)
        o = lm.forward_step(s, torch.tensor([pos], dtype=torch.long)).clone()
        out[f"{prefix}.{tag}.input"] = f32(s)
        out[f"{prefix}.{tag}.position"] = torch.tensor([pos], dtype=torch.int64)
        out[f"{prefix}.{tag}.output"] = f32(o)
    assert int(out[f"{prefix}.step.position"][0]) == T
    assert int(out[f"{prefix}.step2.position"][0]) == T + 1
    return out


def cfm_goldens(prefix, model, g, n_timesteps, cfg_value) -> dict:
    cfg = model.config
    D, P = cfg.feat_dim, cfg.patch_size
    z = randn(g, 1, D, P)
    mu = randn(g, 1, 2 * cfg.dit_config.hidden_dim)
    cond = randn(g, 1, D, P)
    with injected_noise(fixed=[z]) as used:
        out = model.feat_decoder(mu=mu, n_timesteps=n_timesteps, patch_size=P, cond=cond, cfg_value=cfg_value)
    assert len(used) == 1
    # the same through solve_euler with the t_span built like UnifiedCFM.forward
    t_span = torch.linspace(1, 0, n_timesteps + 1, dtype=torch.float32)
    t_span = t_span + 1.0 * (torch.cos(torch.pi / 2 * t_span) - 1 + t_span)
    out2 = model.feat_decoder.solve_euler(x=z, t_span=t_span, mu=mu, cond=cond, cfg_value=cfg_value, use_cfg_zero_star=True)
    assert torch.equal(out, out2)
    return {
        f"{prefix}.z": f32(z),
        f"{prefix}.mu": f32(mu),
        f"{prefix}.cond": f32(cond),
        f"{prefix}.n_timesteps": torch.tensor([n_timesteps], dtype=torch.int64),
        f"{prefix}.cfg_value": torch.tensor([cfg_value], dtype=torch.float32),
        f"{prefix}.t_span": f32(t_span),
        f"{prefix}.output": f32(out),
    }


@torch.inference_mode()
def module_goldens(model, seed: int) -> dict:
    cfg = model.config
    H, D, P = cfg.lm_config.hidden_size, cfg.feat_dim, cfg.patch_size
    Hdit = cfg.dit_config.hidden_dim
    T = 7
    g = gen_for(seed)
    out = {}
    out.update(lm_goldens("base_lm", model.base_lm, g, T, H))
    out.update(lm_goldens("residual_lm", model.residual_lm, g, T, H))

    x = randn(g, 1, T, P, D)
    out["locenc.input"] = f32(x)
    out["locenc.output"] = f32(model.feat_encoder(x))

    x = randn(g, 2, D, P)
    mu = randn(g, 2, 2 * Hdit)
    t = torch.tensor([0.9, 0.3], dtype=torch.float32)
    cond = randn(g, 2, D, P)
    dt = torch.tensor([0.0, 0.1], dtype=torch.float32)
    out.update({"dit.x": f32(x), "dit.mu": f32(mu), "dit.t": t, "dit.cond": f32(cond), "dit.dt": dt})
    out["dit.output"] = f32(model.feat_decoder.estimator(x, mu, t, cond, dt))

    out.update(cfm_goldens("cfm", model, g, 10, 2.0))
    out.update(cfm_goldens("cfm5", model, g, 5, 1.5))

    x = randn(g, 1, T, H)
    out["fsq.input"] = f32(x)
    out["fsq.output"] = f32(model.fsq_layer(x))

    x = randn(g, 1, H)
    out["stop.input"] = f32(x)
    out["stop.logits"] = f32(model.stop_head(model.stop_actn(model.stop_proj(x))))

    vae = model.audio_vae
    hop = int(vae.chunk_size)
    S = 3 * hop
    audio = torch.rand((1, 1, S), generator=g, dtype=torch.float32) - 0.5
    out["vae.encode.input"] = f32(audio)
    enc = vae.encode(audio, vae.sample_rate)
    assert tuple(enc.shape) == (1, D, S // hop)
    out["vae.encode.output"] = f32(enc)
    # extra: a length that is not a multiple of the hop (encode right-pads it with zeros)
    S2 = 2 * hop + hop // 3 + 1
    audio2 = torch.rand((1, 1, S2), generator=g, dtype=torch.float32) - 0.5
    out["vae.encode_pad.input"] = f32(audio2)
    enc2 = vae.encode(audio2, vae.sample_rate)
    assert tuple(enc2.shape) == (1, D, 3)
    out["vae.encode_pad.output"] = f32(enc2)

    F = 2 * P
    z = randn(g, 1, D, F)
    out["vae.decode.input"] = f32(z)
    dec = vae.decode(z)
    assert tuple(dec.shape) == (1, 1, F * vae.decode_chunk_size)
    out["vae.decode.output"] = f32(dec)
    chunks = []
    with vae.streaming_decode() as sdec:
        for k in range(F // P):
            chunks.append(sdec.decode_chunk(z[..., k * P : (k + 1) * P]))
    stream = torch.cat(chunks, dim=-1)
    assert stream.shape == dec.shape
    out["vae.stream.output"] = f32(stream)
    out["_meta.stream_vs_offline_maxabs"] = torch.tensor([(stream - dec).abs().max().item()], dtype=torch.float32)
    return out


# --------------------------------------------------------------------------------------------- #
# Zero-shot cases
# --------------------------------------------------------------------------------------------- #


@torch.inference_mode()
def run_case(model, text, min_len, max_len, timesteps, cfg_value, noise_seed):
    """Zero-shot generation exactly as VoxCPM2Model._generate builds it (retry_badcase off),
    calling the official _inference with the CFM noise drawn from a private seeded generator."""
    P, D = model.patch_size, model.feat_dim
    ids = model.text_tokenizer(text)
    n_tok = len(ids)
    text_token = torch.cat([torch.LongTensor(ids), torch.tensor([model.audio_start_token], dtype=torch.int32)], dim=-1)
    T = text_token.shape[0]
    audio_feat = torch.zeros((T, P, D), dtype=torch.float32)
    text_mask = torch.ones(T, dtype=torch.int32)
    audio_mask = torch.zeros(T, dtype=torch.int32)
    cap = min(int(n_tok * 6.0 + 10), max_len)
    with injected_noise(seed=noise_seed) as used, capture_steps(model) as rec:
        feat_pred, generated, context_len = next_and_close(
            model._inference(
                text_token.unsqueeze(0),
                text_mask.unsqueeze(0),
                audio_feat.unsqueeze(0),
                audio_mask.unsqueeze(0),
                min_len=min_len,
                max_len=cap,
                inference_timesteps=timesteps,
                cfg_value=cfg_value,
                streaming=False,
            )
        )
    assert context_len == 0
    n = generated.shape[0]
    assert len(used) == n and feat_pred.shape == (1, D, P * n)
    audio = model.audio_vae.decode(feat_pred.to(torch.float32)).squeeze(1).squeeze(0)

    # cross-check against the public generate() path with the same noise
    with injected_noise(seed=noise_seed):
        wav = model.generate(
            target_text=text,
            min_len=min_len,
            max_len=max_len,
            inference_timesteps=timesteps,
            cfg_value=cfg_value,
            retry_badcase=False,
        )
    assert torch.equal(wav.squeeze(0), audio), "generate() disagrees with _inference + decode"

    logits = torch.cat(rec["stop_logits"], dim=0)  # [n, 2]
    margins = (logits[:, 1] - logits[:, 0]).tolist()
    checked = [abs(m) for i, m in enumerate(margins) if i > min_len]
    # the prefill call (zero-shot: every position is text, the FSQ result is masked out) is skipped
    step_values = torch.cat([v.reshape(-1) for v in rec["fsq_pre_round"][1:]]) if len(rec["fsq_pre_round"]) > 1 else None
    fsq_margin = (
        float(((step_values - torch.floor(step_values)) - 0.5).abs().min()) if step_values is not None else None
    )
    tensors = {
        "text_ids": text_token.to(torch.int64),
        "noise": torch.stack([f32(z) for z in used], dim=0),  # [n, 1, D, P]
        "params": torch.tensor([min_len, max_len, timesteps], dtype=torch.int64),
        "cfg_value": torch.tensor([cfg_value], dtype=torch.float32),
        "latents": f32(feat_pred[0]),
        "audio": f32(audio),
        # extras (readers ignore unknown names)
        "lm_hidden.0": f32(rec["lm_hidden"][0][0]),
        "res_hidden.0": f32(rec["res_hidden"][0][0]),
        "patch.0": f32(rec["patch"][0][0].transpose(0, 1)),  # [P, D]
        "lm_hidden.steps": f32(torch.cat(rec["lm_hidden"], 0)),  # [n, H]
        "res_hidden.steps": f32(torch.cat(rec["res_hidden"], 0)),  # [n, H]
        "stop_logits.steps": f32(logits),  # [n, 2]
        "source_text": torch.tensor(list(text.encode("utf-8")), dtype=torch.uint8),
    }
    info = {
        "text": text,
        "n_tok": n_tok,
        "cap": cap,
        "n_patches": n,
        "stopped_by_head": n < cap,
        "min_checked_stop_margin": min(checked) if checked else None,
        "min_fsq_margin": fsq_margin,
        "stop_margins": [round(m, 4) for m in margins],
    }
    return tensors, info


# --------------------------------------------------------------------------------------------- #
# Tokenizer cases
# --------------------------------------------------------------------------------------------- #


def tokenizer_cases(ckpt_dir: str) -> tuple[list, list]:
    from tokenizers import Tokenizer
    from transformers import LlamaTokenizerFast

    hf = LlamaTokenizerFast.from_pretrained(ckpt_dir)
    wrapper = mask_multichar_chinese_tokens(hf)
    raw = Tokenizer.from_file(os.path.join(ckpt_dir, "tokenizer.json"))

    def raw_ids(text):
        # tokenizer.json applied verbatim (= transformers 4.x LlamaTokenizerFast) + the same split
        pieces = []
        for t in raw.encode(text, add_special_tokens=False).tokens:
            c = t.replace(gc.SPM_SPACE, "")
            pieces += list(c) if c in wrapper.multichar_tokens else [t]
        return [raw.token_to_id(p) if raw.token_to_id(p) is not None else 0 for p in pieces]

    cases, diffs = [], []
    for text in TOKENIZER_TEXTS:
        ids = wrapper(text)
        rids = raw_ids(text)
        entry = {"text": text, "ids": ids, "pieces": wrapper.tokenize(text)}
        if rids != ids:
            entry["ids_tokenizer_json"] = rids
            diffs.append(text)
        cases.append(entry)
    return cases, diffs


# --------------------------------------------------------------------------------------------- #
# main
# --------------------------------------------------------------------------------------------- #


DEMO_README = """# Demo checkpoint

**THESE ARE RANDOM WEIGHTS. The demo model produces noise-like audio, not speech.**
**It exists only so that the tools and examples run without downloading the real model.**

The directory has the official VoxCPM2 layout (`config.json` with `"architecture": "voxcpm2"`,
`model.safetensors`, `audiovae.pth`, `tokenizer.json`, `tokenizer_config.json`) and the same tiny
shapes as `engine/tests/fixtures/tiny/checkpoint` (LM hidden 64, 2 layers, patch 4, feat_dim 8,
AudioVAE with the real 16 kHz -> 48 kHz rates), but its own random seed. The tokenizer is a small
synthetic SentencePiece-style BPE, not the MiniCPM-4 vocabulary.

Regenerate with:

    /opt/golden-venv/bin/python tools/golden/generate.py --out engine/tests/fixtures --demo-out assets/demo-checkpoint
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="fixtures directory (engine/tests/fixtures)")
    ap.add_argument("--demo-out", required=True, help="demo checkpoint directory (assets/demo-checkpoint)")
    ap.add_argument(
        "--demo-bf16",
        action="store_true",
        help="store the demo checkpoint's model.safetensors in bf16 (halves it; the config dtype stays float32)",
    )
    args = ap.parse_args()

    torch.set_num_threads(1)  # deterministic, thread-count independent CPU kernels
    torch.use_deterministic_algorithms(True)

    tok, vocab_size = gc.build_tokenizer_json()
    print(f"[golden] synthetic tokenizer: {vocab_size} tokens", file=sys.stderr)
    report = {"vocab_size": vocab_size, "configs": {}, "cases": {}}

    builders = {"tiny": tiny_config, "odd": odd_config}
    loaded_models = {}
    for name, builder in builders.items():
        cfg_dict = builder(vocab_size)
        ckpt = os.path.join(args.out, name, "checkpoint")
        ref = build_and_save(cfg_dict, tok, SEEDS[name], ckpt)
        model = load_and_verify(ckpt, ref)
        del ref
        loaded_models[name] = model
        mods = module_goldens(model, SEEDS[name] + 17)
        meta = {"config": name, "note": "see tools/golden/README.md"}
        report["configs"][name] = {"stream_vs_offline_maxabs": float(mods["_meta.stream_vs_offline_maxabs"][0])}
        save_tensors(os.path.join(args.out, name, "modules.safetensors"), mods, meta)

    for cfg_name, case_name, text, min_len, max_len, steps, cfg_value, seed in CASES:
        model = loaded_models[cfg_name]
        tensors, info = run_case(model, text, min_len, max_len, steps, cfg_value, seed)
        if case_name == "stop":
            # stopped by the head, after at least one checked step said "continue"
            assert info["stopped_by_head"] and info["n_patches"] > min_len + 2, info
        if case_name == "full":
            assert info["n_patches"] == max_len, info
        m = info["min_checked_stop_margin"]
        assert m is None or m >= MIN_STOP_MARGIN, f"knife-edge stop decision in {cfg_name}/{case_name}: {info}"
        f = info["min_fsq_margin"]
        assert f is None or f >= MIN_FSQ_MARGIN, f"knife-edge FSQ rounding in {cfg_name}/{case_name}: {info}"
        report["cases"][f"{cfg_name}/case_{case_name}"] = info
        save_tensors(os.path.join(args.out, cfg_name, f"case_{case_name}.safetensors"), tensors, info)

    cases, diffs = tokenizer_cases(os.path.join(args.out, "tiny", "checkpoint"))
    with open(os.path.join(args.out, "tokenizer_cases.json"), "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]\n")
    report["tokenizer_cases"] = len(cases)
    report["tokenizer_transformers_vs_tokenizer_json_diffs"] = diffs

    # demo checkpoint
    demo_cfg = tiny_config(vocab_size)
    ref = build_and_save(demo_cfg, tok, SEEDS["demo"], args.demo_out, lm_bf16=args.demo_bf16)
    demo = load_and_verify(args.demo_out, ref)
    # smoke-run the demo through the public generate() so it is known to work end to end
    with torch.inference_mode(), injected_noise(seed=SEEDS["demo"]):
        wav = demo.generate(target_text="Hello 你好", min_len=2, max_len=8, retry_badcase=False)
    assert wav.ndim == 2 and wav.shape[1] % (4 * demo.audio_vae.decode_chunk_size) == 0 and torch.isfinite(wav).all()
    with open(os.path.join(args.demo_out, "README.md"), "w", encoding="utf-8") as f:
        f.write(DEMO_README)

    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
