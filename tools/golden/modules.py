"""Per-module goldens: each part of the model run alone on seeded inputs (`<cfg>/modules.safetensors`).

A whole-generation mismatch says that something is wrong; these say where: LM prefill and steps,
LocEnc, one DiT call, the CFM solver, FSQ, the stop head, VAE encode and decode (offline and
streamed). README.md ("per-module goldens") lists every tensor.
"""

from __future__ import annotations

import math
import os

import torch

from configs import SEEDS
from flavours import V2
from instrument import injected_noise
from tensors import f32, gen_for, randn, save_tensors


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


def cfm_goldens(prefix, model, g, n_timesteps, cfg_value, mu_width: int) -> dict:
    cfg = model.config
    D, P = cfg.feat_dim, cfg.patch_size
    z = randn(g, 1, D, P)
    mu = randn(g, 1, mu_width)
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


T = 7  # sequence length of the LM, LocEnc and FSQ goldens


def model_goldens(model, g, mu_width: int) -> dict:
    """Everything but the VAE: the LM stacks, LocEnc, one DiT call, the CFM solve, FSQ and the stop
    head. `mu_width` is the DiT conditioning's width: 2*Hdit in v2, Hdit in v1 (flavours.py)."""
    cfg = model.config
    H, D, P = cfg.lm_config.hidden_size, cfg.feat_dim, cfg.patch_size
    out = {}
    out.update(lm_goldens("base_lm", model.base_lm, g, T, H))
    out.update(lm_goldens("residual_lm", model.residual_lm, g, T, H))

    x = randn(g, 1, T, P, D)
    out["locenc.input"] = f32(x)
    out["locenc.output"] = f32(model.feat_encoder(x))

    x = randn(g, 2, D, P)
    mu = randn(g, 2, mu_width)
    t = torch.tensor([0.9, 0.3], dtype=torch.float32)
    cond = randn(g, 2, D, P)
    dt = torch.tensor([0.0, 0.1], dtype=torch.float32)
    out.update({"dit.x": f32(x), "dit.mu": f32(mu), "dit.t": t, "dit.cond": f32(cond), "dit.dt": dt})
    out["dit.output"] = f32(model.feat_decoder.estimator(x, mu, t, cond, dt))

    out.update(cfm_goldens("cfm", model, g, 10, 2.0, mu_width))
    out.update(cfm_goldens("cfm5", model, g, 5, 1.5, mu_width))

    x = randn(g, 1, T, H)
    out["fsq.input"] = f32(x)
    out["fsq.output"] = f32(model.fsq_layer(x))

    x = randn(g, 1, H)
    out["stop.input"] = f32(x)
    out["stop.logits"] = f32(model.stop_head(model.stop_actn(model.stop_proj(x))))
    return out


def vae_goldens(vae, g, D: int, P: int) -> dict:
    """`encode` at the VAE's (input) sample rate, on a whole number of hops and on a padded length,
    and an offline `decode` of 2 patches. v1 and v2 VAEs share these entry points."""
    out = {}
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
    assert tuple(dec.shape) == (1, 1, F * math.prod(vae.decoder_rates))
    out["vae.decode.output"] = f32(dec)
    return out


def vae_stream_goldens(vae, z, dec, P: int) -> dict:
    """v2 only: the official stateful `streaming_decode`, patch by patch, on `vae.decode.input`."""
    out = {}
    F = z.shape[-1]
    chunks = []
    with vae.streaming_decode() as sdec:
        for k in range(F // P):
            chunks.append(sdec.decode_chunk(z[..., k * P : (k + 1) * P]))
    stream = torch.cat(chunks, dim=-1)
    assert stream.shape == dec.shape
    out["vae.stream.output"] = f32(stream)
    out["_meta.stream_vs_offline_maxabs"] = torch.tensor([(stream - dec).abs().max().item()], dtype=torch.float32)
    return out


@torch.inference_mode()
def module_goldens(model, seed: int) -> dict:
    """The v2 modules file (v1's is modules_v1.py). One generator feeds every input, in order."""
    cfg = model.config
    g = gen_for(seed)
    out = model_goldens(model, g, V2.mu_width(model))
    out.update(vae_goldens(model.audio_vae, g, cfg.feat_dim, cfg.patch_size))
    out.update(vae_stream_goldens(model.audio_vae, out["vae.decode.input"], out["vae.decode.output"], cfg.patch_size))
    return out


def write_module_goldens(model, name: str, out_dir: str, report: dict) -> None:
    mods = module_goldens(model, SEEDS[name] + 17)
    meta = {"config": name, "note": "see tools/golden/README.md"}
    report["configs"][name] = {"stream_vs_offline_maxabs": float(mods["_meta.stream_vs_offline_maxabs"][0])}
    save_tensors(os.path.join(out_dir, name, "modules.safetensors"), mods, meta)
