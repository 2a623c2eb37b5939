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
from voxcpm.model.voxcpm2 import LoRAConfig, VoxCPM2Model  # noqa: E402

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

# LoRA adapter fixture (tiny only), see lora_cases() and the README
LORA_SEED = 20240701
LORA_CONFIG = dict(enable_lm=True, enable_dit=True, enable_proj=True, r=4, alpha=8, dropout=0.0)
# lora_A ~ N(0,1)/sqrt(in), lora_B ~ LORA_B_SCALE * N(0,1)/sqrt(r); the update is scaled by alpha/r
LORA_B_SCALE = 0.5
# a tensor under a key no model has, so that load_lora_weights reports one skipped key
LORA_EXTRA_KEY = "base_lm.layers.0.self_attn.not_a_layer.lora_A"
# (name, text, min_len, max_len, timesteps, cfg, noise_seed); 3 patches keep the file small
# (the audio is 7680 samples per patch)
LORA_CASE = ("lora", "hello 你好 world", 3, 3, 10, 2.0, 3004)

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
# Pipeline cases (text + audio files -> the official public generate / generate_streaming)
# --------------------------------------------------------------------------------------------- #

# Each case goes through VoxCPM2Model.generate(...) (and generate_streaming for `streaming`)
# with retry_badcase=False. `reference` / `prompt` give the clip length in patches
# (patch = patch_size * encoder hop samples at 16 kHz); none of them is a whole number of patches,
# so the official padding (prompt LEFT, reference RIGHT) is exercised. See README.md.
PIPELINE_CASES = [
    # reference only; default min_len 2 and a large max_len, so the stop head ends the run
    dict(cfg="tiny", name="reference", text="你好，世界！Hello", reference=2.4, prompt=None, prompt_text=None,
         min_len=2, max_len=2000, steps=10, cfg_value=2.0, noise_seed=3004, audio_seed=31),
    dict(cfg="tiny", name="continuation", text="hello world", reference=None, prompt=3.3, prompt_text="今天天气很好。",
         min_len=4, max_len=4, steps=10, cfg_value=2.0, noise_seed=3002, audio_seed=32),
    dict(cfg="tiny", name="ref_continuation", text="我爱北京 and speech", reference=2.9, prompt=2.3,
         prompt_text="Hello 你好，", min_len=4, max_len=4, steps=8, cfg_value=1.8, noise_seed=3003, audio_seed=33),
    dict(cfg="tiny", name="zero_shot", text="VoxCPM2 是一个模型", reference=None, prompt=None, prompt_text=None,
         min_len=4, max_len=4, steps=10, cfg_value=2.0, noise_seed=3005, audio_seed=None),
    # continuation through generate_streaming; `audio` is the offline generate with the same noise
    dict(cfg="tiny", name="streaming", text="text to speech", reference=None, prompt=3.6, prompt_text="good morning, ",
         min_len=3, max_len=3, steps=10, cfg_value=2.0, noise_seed=3005, audio_seed=35, streaming=True),
    dict(cfg="odd", name="ref_continuation", text="中国 test", reference=5.4, prompt=4.7, prompt_text="你好世界，",
         min_len=5, max_len=5, steps=7, cfg_value=1.7, noise_seed=4001, audio_seed=41),
]


def synth_audio(n_samples: int, seed: int, sr: int) -> np.ndarray:
    """Deterministic test clip: three harmonic tones (4 partials each) under a smooth envelope,
    plus a little seeded noise, peak 0.45. Returned as float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples, dtype=np.float64) / sr
    x = np.zeros(n_samples, dtype=np.float64)
    for _ in range(3):
        f0 = rng.uniform(110.0, 420.0)
        phases = rng.uniform(0.0, 2.0 * np.pi, size=4)
        for k in range(1, 5):
            if k * f0 < 0.45 * sr:
                x += 0.6**k * np.sin(2.0 * np.pi * k * f0 * t + phases[k - 1])
    u = np.arange(n_samples, dtype=np.float64) / max(n_samples - 1, 1)
    env = (0.25 + 0.75 * np.sin(np.pi * u) ** 2) * (1.0 + 0.2 * np.sin(2.0 * np.pi * 3.0 * u + rng.uniform(0, 6.0)))
    x = x * env + 0.02 * rng.standard_normal(n_samples)
    x *= 0.45 / np.abs(x).max()
    return x.astype(np.float32)


def write_wav_exact(path: str, audio: np.ndarray, sr: int) -> None:
    """32-bit float mono wav; librosa.load (what _encode_wav calls) must give it back bit-exactly."""
    import librosa
    import soundfile

    soundfile.write(path, audio, sr, subtype="FLOAT")
    back, back_sr = librosa.load(path, sr=sr, mono=True)
    assert back_sr == sr and back.dtype == np.float32 and back.shape == audio.shape, (back.dtype, back.shape)
    assert np.array_equal(back, audio), "librosa did not load the wav back bit-exactly"


@contextlib.contextmanager
def capture_pipeline(model):
    """Observe (not change) the official generate: wrap the instance's _encode_wav and _inference so
    that the encoded clips, the tracks handed to _inference and what it yields are recorded."""
    rec = {"encode": [], "inference_in": [], "inference_out": []}
    orig_encode, orig_inference = model._encode_wav, model._inference

    def encode(wav_path, padding_mode="right", trim_silence_vad=False):
        feat = orig_encode(wav_path, padding_mode=padding_mode, trim_silence_vad=trim_silence_vad)
        rec["encode"].append((padding_mode, feat.detach().clone()))
        return feat

    def inference(*args, **kwargs):
        rec["inference_in"].append(([a.detach().clone() for a in args[:4]], dict(kwargs)))
        gen = orig_inference(*args, **kwargs)

        def observed():
            try:
                for item in gen:
                    rec["inference_out"].append((item[0].detach().clone(), item[2]))
                    yield item
            finally:
                gen.close()

        return observed()

    model._encode_wav, model._inference = encode, inference
    try:
        yield rec
    finally:
        del model._encode_wav
        del model._inference


def expected_layout(model, text, prompt_text, R, A):
    """The token track and audio mask of architecture doc §3.2, built independently."""
    ids = model.text_tokenizer((prompt_text or "") + text) + [model.audio_start_token]
    toks, amask = [], []
    if R:
        toks += [model.ref_audio_start_token] + [0] * R + [model.ref_audio_end_token]
        amask += [0] + [1] * R + [0]
    toks += ids
    amask += [0] * len(ids)
    if A:
        toks += [0] * A
        amask += [1] * A
    return toks, amask


def fsq_margin_of(values) -> float | None:
    if values is None or values.numel() == 0:
        return None
    return float(((values - torch.floor(values)) - 0.5).abs().min())


@torch.inference_mode()
def run_pipeline_case(model, spec: dict, tmpdir: str):
    P, D = model.patch_size, model.feat_dim
    enc_sr = int(model._encode_sample_rate)
    patch_len = P * int(model.chunk_size)
    dec_patch = P * int(model._decode_chunk_size)
    text, prompt_text = spec["text"], spec["prompt_text"]
    kwargs = dict(
        target_text=text,
        min_len=spec["min_len"],
        max_len=spec["max_len"],
        inference_timesteps=spec["steps"],
        cfg_value=spec["cfg_value"],
        retry_badcase=False,
    )
    clips = {}
    for k, role in enumerate(("reference", "prompt")):
        frac = spec[role]
        if frac is None:
            continue
        n = int(round(frac * patch_len))
        assert n % patch_len != 0 and n >= 2 * patch_len, (role, n, patch_len)
        clip = synth_audio(n, spec["audio_seed"] * 10 + k, enc_sr)
        path = os.path.join(tmpdir, f"{spec['cfg']}_{spec['name']}_{role}.wav")
        write_wav_exact(path, clip, enc_sr)
        clips[role] = (clip, path)
    if "reference" in clips:
        kwargs["reference_wav_path"] = clips["reference"][1]
    if "prompt" in clips:
        kwargs["prompt_wav_path"] = clips["prompt"][1]
        kwargs["prompt_text"] = prompt_text

    seed = spec["noise_seed"]
    with capture_pipeline(model) as prec, injected_noise(seed=seed) as used, capture_steps(model) as rec:
        wav = model.generate(**kwargs)
    assert wav.ndim == 2 and wav.shape[0] == 1
    audio = wav[0]

    # --- what generate handed to _inference
    assert len(prec["inference_in"]) == 1 and len(prec["inference_out"]) == 1
    (tok, tmask, feat, amask), inf_kwargs = prec["inference_in"][0]
    feat_pred, context_len = prec["inference_out"][0]
    tok, tmask, amask, feat = tok[0], tmask[0], amask[0], feat[0]
    T = tok.shape[0]
    assert torch.equal(tmask + amask, torch.ones_like(tmask))
    n = len(used)
    n_total = context_len + n
    assert feat_pred.shape == (1, D, P * n_total), (feat_pred.shape, n_total)

    # --- the encoded clips: padding direction and position in the feature track
    enc = {("reference" if mode == "right" else "prompt"): f for mode, f in prec["encode"]}
    assert set(enc) == set(clips) and len(prec["encode"]) == len(clips)
    for role, (clip, _) in clips.items():
        x = torch.from_numpy(clip).unsqueeze(0)
        pad = patch_len - x.shape[1] % patch_len
        x = torch.nn.functional.pad(x, (pad, 0) if role == "prompt" else (0, pad))
        mine = model.audio_vae.encode(x, enc_sr).view(D, -1, P).permute(1, 2, 0)
        assert torch.equal(mine, enc[role]), f"_encode_wav {role} disagrees with manual pad + encode"
    R = enc["reference"].shape[0] if "reference" in enc else 0
    A = enc["prompt"].shape[0] if "prompt" in enc else 0
    want_tok, want_amask = expected_layout(model, text, prompt_text, R, A)
    assert tok.tolist() == want_tok, (tok.tolist(), want_tok)
    assert amask.tolist() == want_amask
    if R:
        assert torch.equal(feat[1 : 1 + R], enc["reference"])
    if A:
        assert torch.equal(feat[T - A :], enc["prompt"])
    assert float(feat[amask == 0].abs().max()) == 0.0  # text positions carry zero patches
    assert context_len == (min(3, A) if A else 0)
    if context_len:
        ctx = feat[T - context_len :]  # [ctx, P, D]
        assert torch.equal(feat_pred[0, :, : P * context_len], ctx.permute(2, 0, 1).reshape(D, -1))

    # --- generate == decode(feat_pred) with the context cut off
    dec = model.audio_vae.decode(feat_pred.to(torch.float32))[0, 0]
    assert torch.equal(dec[dec_patch * context_len :], audio)
    assert audio.shape[0] == dec_patch * n

    n_tok = len(model.text_tokenizer(text))
    cap = min(int(n_tok * 6.0 + 10), spec["max_len"])
    assert inf_kwargs["max_len"] == cap

    # --- the same through build_prompt_cache + generate_with_prompt_cache (same noise)
    if clips:
        cache = model.build_prompt_cache(
            prompt_text=prompt_text if "prompt" in clips else None,
            prompt_wav_path=kwargs.get("prompt_wav_path"),
            reference_wav_path=kwargs.get("reference_wav_path"),
        )
        ck = {k: v for k, v in kwargs.items() if k not in ("prompt_wav_path", "reference_wav_path", "prompt_text")}
        with injected_noise(seed=seed):
            wav2, _, _ = model.generate_with_prompt_cache(prompt_cache=cache, **ck)
        assert torch.equal(wav2[0], audio), "generate_with_prompt_cache disagrees with generate"

    # --- margins
    logits = torch.cat(rec["stop_logits"], dim=0)  # [n, 2]
    assert logits.shape[0] == n
    margins = (logits[:, 1] - logits[:, 0]).tolist()
    checked = [abs(m) for i, m in enumerate(margins) if i > spec["min_len"]]
    prefill = rec["fsq_pre_round"][0][0]  # [T, fsq_dim]
    assert prefill.shape[0] == T
    prefill_audio = prefill[amask == 1]
    steps = torch.cat([v.reshape(-1) for v in rec["fsq_pre_round"][1:]]) if len(rec["fsq_pre_round"]) > 1 else None
    fsq_prefill = fsq_margin_of(prefill_audio.reshape(-1))
    fsq_steps = fsq_margin_of(steps)
    fsq_all = [m for m in (fsq_prefill, fsq_steps) if m is not None]

    tensors = {
        "text": torch.tensor(list(text.encode("utf-8")), dtype=torch.uint8),
        "noise": torch.stack([f32(z) for z in used], dim=0),  # [n, 1, D, P]
        "params": torch.tensor([spec["min_len"], spec["max_len"], spec["steps"]], dtype=torch.int64),
        "cfg_value": torch.tensor([spec["cfg_value"]], dtype=torch.float32),
        "audio": f32(audio),
    }
    if "reference" in clips:
        tensors["reference_audio"] = torch.from_numpy(clips["reference"][0].copy())
        tensors["reference_features"] = f32(enc["reference"])
    if "prompt" in clips:
        tensors["prompt_audio"] = torch.from_numpy(clips["prompt"][0].copy())
        tensors["prompt_text"] = torch.tensor(list(prompt_text.encode("utf-8")), dtype=torch.uint8)
        tensors["prompt_features"] = f32(enc["prompt"])
    tensors.update(
        {
            "text_ids": tok.to(torch.int64),
            "audio_mask": amask.to(torch.uint8),
            "features": f32(feat),  # [T, P, D]
            "latents": f32(feat_pred[0]),  # [D, P * (context_len + n)]
            "context_len": torch.tensor([context_len], dtype=torch.int64),
            "lm_hidden.steps": f32(torch.cat(rec["lm_hidden"], 0)),
            "res_hidden.steps": f32(torch.cat(rec["res_hidden"], 0)),
            "stop_logits.steps": f32(logits),
        }
    )

    info = {
        "mode": {(False, False): "zero_shot", (True, False): "reference", (False, True): "continuation",
                 (True, True): "ref_continuation"}[("reference" in clips, "prompt" in clips)],
        "text": text,
        "prompt_text": prompt_text,
        "reference_samples": len(clips["reference"][0]) if "reference" in clips else None,
        "prompt_samples": len(clips["prompt"][0]) if "prompt" in clips else None,
        "patch_samples": patch_len,
        "R": R,
        "A": A,
        "T": T,
        "text_ids": tok.tolist(),
        "audio_positions": [i for i, m in enumerate(amask.tolist()) if m],
        "context_len": context_len,
        "n_tok": n_tok,
        "cap": cap,
        "n_patches": n,
        "stopped_by_head": n < cap,
        "min_checked_stop_margin": min(checked) if checked else None,
        "min_fsq_margin_prefill_audio": fsq_prefill,
        "min_fsq_margin_steps": fsq_steps,
        "min_fsq_margin": min(fsq_all) if fsq_all else None,
        "stop_margins": [round(m, 4) for m in margins],
    }

    if spec.get("streaming"):
        chunks = []
        with capture_pipeline(model) as sprec, injected_noise(seed=seed) as sused:
            for c in model.generate_streaming(**kwargs):
                assert tuple(c.shape) == (1, dec_patch), c.shape
                chunks.append(c[0].clone())
        assert len(sused) == n and all(torch.equal(a, b) for a, b in zip(sused, used))
        # the streaming run yields only the newly generated patches; they equal the offline ones
        lat_stream = torch.cat([o[0] for o in sprec["inference_out"]], dim=-1)
        assert torch.equal(lat_stream[0], feat_pred[0, :, P * context_len :]), "streaming latents differ"
        stream = torch.cat(chunks)
        assert stream.shape == audio.shape
        tensors["audio_stream"] = f32(stream)
        # what the cold-started streaming decoder makes of the generated patches alone, offline
        cold = model.audio_vae.decode(feat_pred[..., P * context_len :].to(torch.float32))[0, 0]
        diff = (stream - audio).abs()
        info["stream_chunks"] = len(chunks)
        info["stream_vs_offline_maxabs"] = float(diff.max())
        info["stream_vs_offline_maxabs_per_patch"] = [float(diff[k * dec_patch : (k + 1) * dec_patch].max()) for k in range(n)]
        info["stream_vs_cold_offline_maxabs"] = float((stream - cold).abs().max())
    return tensors, info


def pipeline_cases(models: dict, out_dir: str, report: dict) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="voxcpm2-golden-") as tmpdir:
        for spec in PIPELINE_CASES:
            model = models[spec["cfg"]]
            tensors, info = run_pipeline_case(model, spec, tmpdir)
            where = f"{spec['cfg']}/pipeline_{spec['name']}"
            if spec["min_len"] == spec["max_len"]:
                assert info["n_patches"] == min(spec["max_len"], info["cap"]), info
            if spec["name"] == "reference":
                assert info["stopped_by_head"] and info["n_patches"] > spec["min_len"] + 2, info
            m = info["min_checked_stop_margin"]
            assert m is None or m >= MIN_STOP_MARGIN, f"knife-edge stop decision in {where}: {info}"
            f = info["min_fsq_margin"]
            assert f is None or f >= MIN_FSQ_MARGIN, f"knife-edge FSQ rounding in {where}: {info}"
            report["cases"][where] = {k: v for k, v in info.items() if k not in ("text_ids", "audio_positions")}
            save_tensors(os.path.join(out_dir, spec["cfg"], f"pipeline_{spec['name']}.safetensors"), tensors, info)


# --------------------------------------------------------------------------------------------- #
# LoRA adapter and case
# --------------------------------------------------------------------------------------------- #


def lora_params(model) -> dict:
    return {n: p for n, p in model.named_parameters() if "lora_" in n}


def load_lora_model(ckpt: str) -> VoxCPM2Model:
    return (
        VoxCPM2Model.from_local(
            ckpt, optimize=False, training=False, device="cpu", lora_config=LoRAConfig(**LORA_CONFIG)
        )
        .float()
        .eval()
    )


def lora_cases(out_dir: str, report: dict) -> None:
    """tiny/lora/{lora_weights.safetensors, lora_config.json} and tiny/lora_case.safetensors, all
    through the official LoRA code (LoRAConfig, _apply_lora via from_local, load_lora_weights,
    set_lora_enabled)."""
    ckpt = os.path.join(out_dir, "tiny", "checkpoint")
    lora_dir = os.path.join(out_dir, "tiny", "lora")
    os.makedirs(lora_dir, exist_ok=True)

    # 1-2. official model with LoRA layers; every lora_A / lora_B drawn from a private generator
    model = load_lora_model(ckpt)
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
        f.write(json.dumps(LoRAConfig(**LORA_CONFIG).model_dump(), indent=2) + "\n")

    # 4. round trip: a second official model with default-initialised LoRA parameters loads the
    # directory through load_lora_weights
    model2 = load_lora_model(ckpt)
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
    name, text, min_len, max_len, steps, cfg_value, seed = LORA_CASE
    where = f"tiny/case_{name}"
    tensors, info = run_case(model2, text, min_len, max_len, steps, cfg_value, seed)
    assert info["n_patches"] == min(max_len, info["cap"]), info
    m = info["min_checked_stop_margin"]
    assert m is None or m >= MIN_STOP_MARGIN, f"knife-edge stop decision in {where}: {info}"
    f = info["min_fsq_margin"]
    assert f is None or f >= MIN_FSQ_MARGIN, f"knife-edge FSQ rounding in {where}: {info}"

    base = VoxCPM2Model.from_local(ckpt, optimize=False, training=False, device="cpu").float().eval()
    base_tensors, base_info = run_case(base, text, min_len, max_len, steps, cfg_value, seed)
    model2.set_lora_enabled(False)
    off_tensors, _ = run_case(model2, text, min_len, max_len, steps, cfg_value, seed)
    model2.set_lora_enabled(True)
    for k in ("noise", "latents", "audio"):
        assert torch.equal(off_tensors[k], base_tensors[k]), f"set_lora_enabled(False) != base model: {k}"
    assert torch.equal(base_tensors["noise"], tensors["noise"])
    f = base_info["min_fsq_margin"]
    assert f is None or f >= MIN_FSQ_MARGIN, f"knife-edge FSQ rounding in the base run of {where}: {base_info}"

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
    save_tensors(os.path.join(out_dir, "tiny", f"{name}_case.safetensors"), tensors, info)


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
    ap.add_argument(
        "--pipeline-only",
        action="store_true",
        help="only (re)write the pipeline_*.safetensors cases, from the checkpoints already under --out",
    )
    ap.add_argument(
        "--lora-only",
        action="store_true",
        help="only (re)write tiny/lora/ and tiny/lora_case.safetensors, from the tiny checkpoint already under --out",
    )
    args = ap.parse_args()

    torch.set_num_threads(1)  # deterministic, thread-count independent CPU kernels
    torch.use_deterministic_algorithms(True)

    if args.pipeline_only:
        # the full run computes every case with the model that from_local makes of the written
        # checkpoint directory, so loading the committed directories gives the same numbers
        report = {"cases": {}}
        models = {}
        for name in ("tiny", "odd"):
            ckpt = os.path.join(args.out, name, "checkpoint")
            models[name] = VoxCPM2Model.from_local(ckpt, optimize=False, training=False, device="cpu").float().eval()
        pipeline_cases(models, args.out, report)
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return

    if args.lora_only:
        report = {"cases": {}}
        lora_cases(args.out, report)
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return

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

    # pipeline cases last, so that nothing above can depend on them
    pipeline_cases(loaded_models, args.out, report)
    # LoRA last: it loads its own models from the tiny checkpoint directory
    lora_cases(args.out, report)

    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
