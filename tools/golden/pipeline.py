"""Pipeline cases: text and audio through the official public `generate` (`<cfg>/pipeline_*`).

One case per prompting mode (zero-shot, reference, continuation, both) and one streamed through
`generate_streaming`, in the pipeline-case format of /work/shared/docs/parity-case.md. While it
runs, the official pipeline is checked against an independent rebuild of the clip padding, the
token track and the audio mask, so the goldens pin down the layout the engine must build.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

import torch

from clips import synth_audio, write_wav_exact
from instrument import capture_steps, injected_noise
from margins import check_margins, fsq_margin_of, step_fsq_values, stop_margins
from tensors import f32, save_tensors

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


@torch.inference_mode()
def run_pipeline_case(model, spec: dict, tmpdir: str):
    """One spec through the official `generate` (and `generate_streaming`), its clips written as
    wavs under `tmpdir`. Returns the case's tensors and its summary."""
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
    margins, min_checked = stop_margins(logits, spec["min_len"])
    prefill = rec["fsq_pre_round"][0][0]  # [T, fsq_dim]
    assert prefill.shape[0] == T
    prefill_audio = prefill[amask == 1]
    fsq_prefill = fsq_margin_of(prefill_audio.reshape(-1))
    fsq_steps = fsq_margin_of(step_fsq_values(rec))
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
        "min_checked_stop_margin": min_checked,
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


def write_pipeline_cases(models: dict, out_dir: str, report: dict) -> None:
    with tempfile.TemporaryDirectory(prefix="voxcpm2-golden-") as tmpdir:
        for spec in PIPELINE_CASES:
            model = models[spec["cfg"]]
            tensors, info = run_pipeline_case(model, spec, tmpdir)
            where = f"{spec['cfg']}/pipeline_{spec['name']}"
            if spec["min_len"] == spec["max_len"]:
                assert info["n_patches"] == min(spec["max_len"], info["cap"]), info
            if spec["name"] == "reference":
                assert info["stopped_by_head"] and info["n_patches"] > spec["min_len"] + 2, info
            check_margins(where, info)
            report["cases"][where] = {k: v for k, v in info.items() if k not in ("text_ids", "audio_positions")}
            save_tensors(os.path.join(out_dir, spec["cfg"], f"pipeline_{spec['name']}.safetensors"), tensors, info)
