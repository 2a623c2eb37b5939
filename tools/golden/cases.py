"""Zero-shot parity cases: token ids in, latents and audio out (`<cfg>/case_<name>.safetensors`).

The format of /work/shared/docs/parity-case.md. Each case runs the official `_inference` with
recorded noise and is cross-checked against the public `generate()`; the cases cover full-length
runs and runs that the stop head ends.
"""

from __future__ import annotations

import os

import torch
from voxcpm.model.utils import next_and_close

from instrument import capture_steps, injected_noise
from margins import check_margins, fsq_margin_of, step_fsq_values, stop_margins
from tensors import f32, save_tensors

# Zero-shot parity cases: (config, name, text, min_len, max_len, timesteps, cfg, noise_seed)
CASES = [
    ("tiny", "full", "你好，世界！Hello 123", 6, 6, 10, 2.0, 1002),
    # stopped early by the (unmodified) random stop head after rejecting i = 2, 3, 4 (README)
    ("tiny", "stop", "hello world", 1, 2000, 10, 2.0, 1004),
    ("odd", "full", "中国 VoxCPM2 test.", 5, 5, 7, 1.7, 2002),
    ("odd", "default", "你好世界", 2, 2000, 10, 2.0, 2002),
]

# The same for the v1 checkpoints (README.md, "v1 fixtures"); seeds picked for their margins
CASES_V1 = [
    ("v1_tiny", "full", "你好，世界！Hello 123", 5, 5, 10, 2.0, 1101),
    # stopped early by the (unmodified) random stop head after several checked "continue"s
    ("v1_tiny", "stop", "hello world", 1, 2000, 10, 2.0, 1011),
    ("v1_odd", "full", "中国 VoxCPM test.", 5, 5, 7, 1.7, 2101),
    ("v1_odd", "default", "你好世界", 2, 2000, 10, 2.0, 2107),
]


@torch.inference_mode()
def run_case(model, text, min_len, max_len, timesteps, cfg_value, noise_seed):
    """Zero-shot generation exactly as the official `_generate` builds it (retry_badcase off),
    calling the official _inference with the CFM noise drawn from a private seeded generator.
    The same for both architectures: zero-shot, v1 (VoxCPMModel) and v2 (VoxCPM2Model) build the
    same track (text ids + audio_start, no audio) and `_inference` yields the latents first."""
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
        result = next_and_close(
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
    # v2 yields (latents, generated patches, context_len), v1 (latents, generated patches)
    feat_pred, generated = result[:2]
    assert len(result) == 2 or result[2] == 0
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
    margins, min_checked = stop_margins(logits, min_len)
    # the prefill call (zero-shot: every position is text, the FSQ result is masked out) is skipped
    fsq_margin = fsq_margin_of(step_fsq_values(rec))
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
        "min_checked_stop_margin": min_checked,
        "min_fsq_margin": fsq_margin,
        "stop_margins": [round(m, 4) for m in margins],
    }
    return tensors, info


def write_cases(models: dict, out_dir: str, report: dict, cases=CASES) -> None:
    for cfg_name, case_name, text, min_len, max_len, steps, cfg_value, seed in cases:
        model = models[cfg_name]
        tensors, info = run_case(model, text, min_len, max_len, steps, cfg_value, seed)
        if case_name == "stop":
            # stopped by the head, after at least one checked step said "continue"
            assert info["stopped_by_head"] and info["n_patches"] > min_len + 2, info
        if case_name == "full":
            assert info["n_patches"] == max_len, info
        check_margins(f"{cfg_name}/{case_name}", info)
        report["cases"][f"{cfg_name}/case_{case_name}"] = info
        save_tensors(os.path.join(out_dir, cfg_name, f"case_{case_name}.safetensors"), tensors, info)
