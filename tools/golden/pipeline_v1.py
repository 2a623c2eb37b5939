"""v1 pipeline cases: text and prompt audio through the official public paths (`v1_<cfg>/pipeline_*`).

v1 has two public entry points that differ in what they return, so each case runs both with the
same recorded noise: `VoxCPMModel.generate` (the decode of every latent, the prompt-context
patches included) and core.py's `VoxCPM.generate`, which goes through `build_prompt_cache` +
`_generate_with_prompt_cache` and cuts a fixed 2 * patch * prod(encoder_rates) samples whenever a
prompt is present. Streamed cases record the official sliding-window stream (each chunk is the
last patch of a fresh decode of the last <= 3 patches), how it differs from one full decode, and
check that all three official streaming entry points agree. While running, the official track
layout, prompt padding and context patches are checked against an independent rebuild, which is
what V1_NOTES.md states.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile

import torch
from voxcpm.core import VoxCPM

from checkpoints import checkpoint_dir
from clips import synth_audio, write_wav_exact
from instrument import capture_steps, injected_noise
from margins import check_margins, fsq_margin_of, step_fsq_values, stop_margins
from tensors import f32, save_tensors

STREAMING_PREFIX_LEN = 3  # the official default of _inference / _generate_with_prompt_cache

# `prompt` is the prompt clip's length in patches (patch = patch_size * prod(encoder_rates)
# samples at the VAE rate); none is a whole number, so the official LEFT padding is exercised.
PIPELINE_CASES_V1 = [
    # A = 3 prompt patches: 2 context patches, exactly what the public path cuts
    dict(cfg="v1_tiny", name="continuation", text="hello world", prompt=2.3, prompt_text="今天天气很好。",
         min_len=4, max_len=4, steps=10, cfg_value=2.0, noise_seed=5119, audio_seed=60),
    # continuation, streamed: the first windows hold prompt-context patches
    dict(cfg="v1_tiny", name="streaming", text="text to speech", prompt=3.6, prompt_text="good morning, ",
         min_len=4, max_len=4, steps=10, cfg_value=2.0, noise_seed=5206, audio_seed=83, streaming=True),
    # A = 1: one context patch, but the public path still cuts two, eating the first generated patch
    dict(cfg="v1_odd", name="continuation_short", text="中国 test", prompt=0.6, prompt_text="你好世界，",
         min_len=4, max_len=4, steps=7, cfg_value=1.7, noise_seed=6101, audio_seed=61),
    # zero-shot, streamed: the first two windows are shorter than 3 patches
    dict(cfg="v1_odd", name="streaming", text="VoxCPM 是一个模型", prompt=None, prompt_text=None,
         min_len=5, max_len=5, steps=10, cfg_value=2.0, noise_seed=6202, audio_seed=None, streaming=True),
]


def load_public(ckpt: str) -> VoxCPM:
    """core.py's public wrapper as a user builds it (no denoiser, no torch.compile, cpu); its
    dispatch on config.json's architecture must pick the v1 model."""
    from voxcpm.model.voxcpm import VoxCPMModel

    vox = VoxCPM(ckpt, zipenhancer_model_path=None, enable_denoiser=False, optimize=False, device="cpu")
    assert type(vox.tts_model) is VoxCPMModel, type(vox.tts_model)
    return vox


@contextlib.contextmanager
def capture_v1(model):
    """Observe (not change) the official v1 pipeline: what `audio_vae.encode` got and returned
    (the padded prompt and its latents) and the tracks handed to `_inference` and what it yielded."""
    rec = {"encode": [], "inference_in": [], "inference_out": []}
    orig_encode, orig_inference = model.audio_vae.encode, model._inference

    def encode(audio, sample_rate):
        z = orig_encode(audio, sample_rate)
        rec["encode"].append((audio.detach().clone(), z.detach().clone()))
        return z

    def inference(*args, **kwargs):
        rec["inference_in"].append(([a.detach().clone() for a in args[:4]], dict(kwargs)))
        gen = orig_inference(*args, **kwargs)

        def observed():
            try:
                for item in gen:
                    rec["inference_out"].append(item[0].detach().clone())
                    yield item
            finally:
                gen.close()

        return observed()

    model.audio_vae.encode, model._inference = encode, inference
    try:
        yield rec
    finally:
        del model.audio_vae.encode
        del model._inference


def expected_layout(model, text, prompt_text, A):
    """The v1 track, built independently: [tokens(prompt_text + text), audio_start, A audio slots];
    text positions are the ones with text_mask 1, audio slots carry token id 0."""
    ids = model.text_tokenizer((prompt_text or "") + text) + [model.audio_start_token]
    return ids + [0] * A, [0] * len(ids) + [1] * A


def _streams(model, vox, spec, kwargs):
    """The three official streaming entry points with the same noise; they must agree chunk for
    chunk. Returns the chunks and the window latents `_inference` yielded."""
    public = {k: v for k, v in kwargs.items() if k != "target_text"}
    cache = None
    if "prompt_wav_path" in kwargs:
        cache = model.build_prompt_cache(prompt_text=kwargs["prompt_text"], prompt_wav_path=kwargs["prompt_wav_path"])
    with capture_v1(model) as rec, injected_noise(seed=spec["noise_seed"]):
        chunks = [c[0].clone() for c in model.generate_streaming(**kwargs)]
    with injected_noise(seed=spec["noise_seed"]):
        cached = [c[0][0].clone() for c in model.generate_with_prompt_cache_streaming(
            target_text=kwargs["target_text"], prompt_cache=cache,
            **{k: v for k, v in public.items() if k not in ("prompt_text", "prompt_wav_path")})]
    with injected_noise(seed=spec["noise_seed"]):
        pub = [torch.from_numpy(c.copy()) for c in vox.generate_streaming(text=kwargs["target_text"], **public)]
    assert len(chunks) == len(cached) == len(pub)
    for a, b, c in zip(chunks, cached, pub):
        assert torch.equal(a, b) and torch.equal(a, c), "the official v1 streaming entry points disagree"
    return chunks, rec["inference_out"]


@torch.inference_mode()
def run_pipeline_case_v1(vox, spec: dict, tmpdir: str):
    """One spec through `VoxCPMModel.generate` and `VoxCPM.generate` (and, for a streamed spec, the
    streaming entry points), its prompt clip written as a wav under `tmpdir`. Returns the case's
    tensors and its summary."""
    model = vox.tts_model
    P, D = model.patch_size, model.feat_dim
    vae = model.audio_vae
    sr = int(vae.sample_rate)
    patch_len = P * int(model.chunk_size)
    assert math.prod(vae.decoder_rates) == model.chunk_size, "the official cut assumes decoder hop == encoder hop"
    text, prompt_text = spec["text"], spec["prompt_text"]
    kwargs = dict(target_text=text, min_len=spec["min_len"], max_len=spec["max_len"],
                  inference_timesteps=spec["steps"], cfg_value=spec["cfg_value"], retry_badcase=False)
    clip = None
    if spec["prompt"] is not None:
        n = int(round(spec["prompt"] * patch_len))
        assert n % patch_len != 0
        clip = synth_audio(n, spec["audio_seed"] * 10 + 1, sr)
        path = os.path.join(tmpdir, f"{spec['cfg']}_{spec['name']}_prompt.wav")
        write_wav_exact(path, clip, sr)
        kwargs.update(prompt_wav_path=path, prompt_text=prompt_text)
    seed = spec["noise_seed"]

    # --- VoxCPMModel.generate: decode of every latent, context included
    with capture_v1(model) as prec, injected_noise(seed=seed) as used, capture_steps(model) as rec:
        wav = model.generate(**kwargs)
    assert wav.ndim == 2 and wav.shape[0] == 1
    audio_uncut = wav[0]
    (tok, tmask, feat, amask), inf_kwargs = prec["inference_in"][0]
    tok, tmask, amask, feat = tok[0], tmask[0], amask[0], feat[0]
    (feat_pred,) = prec["inference_out"]
    T, n = tok.shape[0], len(used)
    assert torch.equal(tmask + amask, torch.ones_like(tmask))
    assert inf_kwargs.get("streaming_prefix_len", STREAMING_PREFIX_LEN) == STREAMING_PREFIX_LEN

    # --- the prompt: padded on the LEFT to whole patches, encoded, placed at the end of the track
    A = 0
    if clip is not None:
        (enc_in, enc_out), = prec["encode"]
        pad = patch_len - len(clip) % patch_len
        want = torch.nn.functional.pad(torch.from_numpy(clip).unsqueeze(0), (pad, 0))
        assert torch.equal(enc_in, want), "the prompt was not left-padded to whole patches"
        prompt_feat = enc_out.view(D, -1, P).permute(1, 2, 0)  # [A, P, D], as the official code reshapes it
        A = prompt_feat.shape[0]
        assert A == (len(clip) + pad) // patch_len
        assert torch.equal(feat[T - A :], prompt_feat)
    want_tok, want_amask = expected_layout(model, text, prompt_text, A)
    assert tok.tolist() == want_tok, (tok.tolist(), want_tok)
    assert amask.tolist() == want_amask
    assert float(feat[amask == 0].abs().max()) == 0.0  # text positions carry zero patches
    context_len = min(STREAMING_PREFIX_LEN - 1, A)
    assert feat_pred.shape == (1, D, P * (context_len + n)), (feat_pred.shape, context_len, n)
    if context_len:
        ctx = feat[T - context_len :].permute(2, 0, 1).reshape(D, -1)
        assert torch.equal(feat_pred[0, :, : P * context_len], ctx)
    dec = vae.decode(feat_pred.to(torch.float32))[0, 0]
    assert torch.equal(dec, audio_uncut) and dec.shape[0] == patch_len * (context_len + n)
    n_tok = len(model.text_tokenizer(text))
    cap = min(int(n_tok * 6.0 + 10), spec["max_len"])
    assert inf_kwargs["max_len"] == cap

    # --- core.py's VoxCPM.generate (build_prompt_cache + _generate_with_prompt_cache): the same
    # latents, then a fixed cut of (STREAMING_PREFIX_LEN - 1) patches whenever a prompt is present
    public = {k: v for k, v in kwargs.items() if k != "target_text"}
    with capture_v1(model) as pub_rec, injected_noise(seed=seed) as pub_used:
        audio = torch.from_numpy(vox.generate(text=text, **public).copy())
    assert all(torch.equal(a, b) for a, b in zip(pub_used, used)) and len(pub_used) == n
    assert torch.equal(pub_rec["inference_out"][0], feat_pred)
    # build_prompt_cache pads and encodes the prompt with its own copy of the code: the same result
    assert len(pub_rec["encode"]) == len(prec["encode"])
    assert all(torch.equal(a, b) for x, y in zip(pub_rec["encode"], prec["encode"]) for a, b in zip(x, y))
    cut = patch_len * (STREAMING_PREFIX_LEN - 1) if A else 0
    assert torch.equal(audio, audio_uncut[cut:])

    # --- margins: stop decisions, FSQ of the prompt positions at prefill and of every step
    logits = torch.cat(rec["stop_logits"], dim=0)
    margins, min_checked = stop_margins(logits, spec["min_len"])
    prefill = rec["fsq_pre_round"][0][0]
    fsq_prefill = fsq_margin_of(prefill[amask == 1].reshape(-1))
    fsq_steps = fsq_margin_of(step_fsq_values(rec))
    fsq_all = [m for m in (fsq_prefill, fsq_steps) if m is not None]

    tensors = {
        "text": torch.tensor(list(text.encode("utf-8")), dtype=torch.uint8),
        "noise": torch.stack([f32(z) for z in used], dim=0),  # [n, 1, D, P]
        "params": torch.tensor([spec["min_len"], spec["max_len"], spec["steps"]], dtype=torch.int64),
        "cfg_value": torch.tensor([spec["cfg_value"]], dtype=torch.float32),
        "audio": f32(audio),
        "audio_uncut": f32(audio_uncut),
        "text_ids": tok.to(torch.int64),
        "audio_mask": amask.to(torch.uint8),
        "features": f32(feat),  # [T, P, D]
        "latents": f32(feat_pred[0]),  # [D, P * (context_len + n)]
        "context_len": torch.tensor([context_len], dtype=torch.int64),
        "cut_samples": torch.tensor([cut], dtype=torch.int64),
        "lm_hidden.steps": f32(torch.cat(rec["lm_hidden"], 0)),
        "res_hidden.steps": f32(torch.cat(rec["res_hidden"], 0)),
        "stop_logits.steps": f32(logits),
    }
    if A:
        tensors["prompt_audio"] = torch.from_numpy(clip.copy())
        tensors["prompt_text"] = torch.tensor(list(prompt_text.encode("utf-8")), dtype=torch.uint8)
        tensors["prompt_features"] = f32(prompt_feat)
    info = {
        "architecture": "voxcpm",
        "mode": "continuation" if A else "zero_shot",
        "text": text,
        "prompt_text": prompt_text,
        "prompt_samples": len(clip) if clip is not None else None,
        "patch_samples": patch_len,
        "A": A,
        "T": T,
        "text_ids": tok.tolist(),
        "context_len": context_len,
        "cut_samples": cut,
        "n_tok": n_tok,
        "cap": cap,
        "n_patches": n,
        "stopped_by_head": n < cap,
        "min_checked_stop_margin": min_checked,
        "min_fsq_margin_prefill_audio": fsq_prefill,
        "min_fsq_margin_steps": fsq_steps,
        "min_fsq_margin": min(fsq_all) if fsq_all else None,
        "stop_margins": [round(m, 4) for m in margins],
    }
    if spec.get("streaming"):
        tensors.update(stream_tensors(model, vox, spec, kwargs, feat_pred, audio_uncut, context_len, n, info))
    return tensors, info


def stream_tensors(model, vox, spec, kwargs, feat_pred, audio_uncut, context_len, n, info) -> dict:
    """The official stream, the window each chunk decoded, and its difference from the full decode."""
    P = model.patch_size
    patch_len = P * int(model.chunk_size)
    chunks, windows = _streams(model, vox, spec, kwargs)
    assert len(chunks) == n and all(c.shape == (patch_len,) for c in chunks)
    starts, diffs = [], []
    for k, (chunk, window) in enumerate(zip(chunks, windows)):
        # chunk k decodes the last <= STREAMING_PREFIX_LEN patches of [context, generated 0..k]
        end = context_len + k + 1
        start = max(0, end - STREAMING_PREFIX_LEN)
        assert torch.equal(window[0], feat_pred[0, :, P * start : P * end]), f"window {k} is not patches {start}..{end}"
        assert torch.equal(chunk, model.audio_vae.decode(window.to(torch.float32))[0, 0, -patch_len:])
        starts.append(start)
        full = audio_uncut[patch_len * (end - 1) : patch_len * end]
        diffs.append(float((chunk - full).abs().max()))
    stream = torch.cat(chunks)
    peak = float(audio_uncut[patch_len * context_len :].abs().max())
    info["stream_chunks"] = len(chunks)
    info["stream_vs_full_decode_maxabs_per_chunk"] = diffs
    info["stream_vs_full_decode_maxabs"] = max(diffs)
    info["stream_vs_full_decode_rel"] = max(diffs) / peak
    return {
        "audio_stream": f32(stream),
        "stream_window_start": torch.tensor(starts, dtype=torch.int64),
        # per chunk: max |official chunk - the same samples of audio_uncut| (0 only while s == 0)
        "stream_vs_full_decode_maxabs": torch.tensor(diffs, dtype=torch.float32),
    }


def write_pipeline_cases_v1(out_dir: str, report: dict, cases=PIPELINE_CASES_V1) -> None:
    """Every v1 pipeline case, each through a public `VoxCPM` loaded from the written checkpoint."""
    wrappers = {}
    with tempfile.TemporaryDirectory(prefix="voxcpm-v1-golden-") as tmpdir:
        for spec in cases:
            if spec["cfg"] not in wrappers:
                wrappers[spec["cfg"]] = load_public(checkpoint_dir(out_dir, spec["cfg"]))
            tensors, info = run_pipeline_case_v1(wrappers[spec["cfg"]], spec, tmpdir)
            where = f"{spec['cfg']}/pipeline_{spec['name']}"
            if spec["min_len"] == spec["max_len"]:
                assert info["n_patches"] == min(spec["max_len"], info["cap"]), info
            check_margins(where, info)
            report["cases"][where] = {k: v for k, v in info.items() if k != "text_ids"}
            save_tensors(os.path.join(out_dir, spec["cfg"], f"pipeline_{spec['name']}.safetensors"), tensors, info)
