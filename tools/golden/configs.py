"""The config of every checkpoint the tools build: `tiny`, `odd` and the demo (generate.py), the
released full-size shapes (make_fullsize_checkpoint.py), and the same for the v1 architecture:
`v1_tiny`, `v1_odd` and the released VoxCPM-0.5B / VoxCPM1.5 presets (presets_v1.py).

One place for the shapes and seeds that README.md's tables describe, built from the released
configs' keys so that pydantic validates them like a real config.json.
"""

from __future__ import annotations

import numpy as np


def lm_config(
    *,
    vocab_size,
    hidden,
    ffn,
    layers,
    heads,
    kv_heads,
    kv_channels,
    max_pos,
    orig_max_pos,
    short_factor,
    long_factor,
):
    """The `lm_config` section (shared by the LM stacks, LocEnc and LocDiT, as in the release).
    `kv_channels=None` leaves the key out, as the v1 releases do: head_dim = hidden / heads."""
    head_dim = kv_channels if kv_channels is not None else hidden // heads
    assert len(short_factor) == len(long_factor) == head_dim // 2
    lm = {
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_size": hidden,
        "intermediate_size": ffn,
        "max_position_embeddings": max_pos,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "type": "longrope",
            "long_factor": [float(x) for x in long_factor],
            "short_factor": [float(x) for x in short_factor],
            "original_max_position_embeddings": orig_max_pos,
        },
        "vocab_size": vocab_size,
        "scale_emb": 12,
        "dim_model_base": 256,
        "scale_depth": 1.4,
        "rope_theta": 10000,
    }
    if kv_channels is not None:
        lm["kv_channels"] = kv_channels
    lm["use_mup"] = False
    return lm


def full_config(
    *,
    lm,
    patch_size,
    feat_dim,
    residual_layers,
    fsq_dim,
    enc,
    dit,
    vae,
    max_length,
    dtype="float32",
    device="cpu",
):
    """A whole config.json; `enc` and `dit` are (hidden, ffn, heads, layers, kv_channels)."""
    return {
        "architecture": "voxcpm2",
        "lm_config": lm,
        "patch_size": patch_size,
        "feat_dim": feat_dim,
        "residual_lm_num_layers": residual_layers,
        "residual_lm_no_rope": True,
        "scalar_quantization_latent_dim": fsq_dim,
        "scalar_quantization_scale": 9,
        "encoder_config": {
            "hidden_dim": enc[0],
            "ffn_dim": enc[1],
            "num_heads": enc[2],
            "num_layers": enc[3],
            "kv_channels": enc[4],
        },
        "dit_config": {
            "hidden_dim": dit[0],
            "ffn_dim": dit[1],
            "num_heads": dit[2],
            "num_layers": dit[3],
            "kv_channels": dit[4],
            # the released config spells it "mean_mode"; pydantic ignores it (the field is dit_mean_mode)
            "mean_mode": False,
            "cfm_config": {
                "sigma_min": 1e-06,
                "solver": "euler",
                "t_scheduler": "log-norm",
                "inference_cfg_rate": 2.0,
            },
        },
        "audio_vae_config": vae,
        "max_length": max_length,
        "device": device,
        "dtype": dtype,
    }


def vae_config(*, encoder_dim, encoder_rates, latent_dim, decoder_dim, decoder_rates, sample_rate=16000, out_sample_rate=48000):
    return {
        "encoder_dim": encoder_dim,
        "encoder_rates": list(encoder_rates),
        "latent_dim": latent_dim,
        "decoder_dim": decoder_dim,
        "decoder_rates": list(decoder_rates),
        "sr_bin_boundaries": [20000, 30000, 40000],
        "sample_rate": sample_rate,
        "out_sample_rate": out_sample_rate,
    }


# checkpoint seeds; the tiny one was picked for its stop head (README: "Which case stops early")
SEEDS = {"tiny": 20240612, "odd": 20240602, "demo": 20240603}


def tiny_config(vocab_size: int) -> dict:
    lm = lm_config(
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
    vae = vae_config(
        encoder_dim=4,
        encoder_rates=[2, 5, 8, 8],
        latent_dim=8,
        decoder_dim=64,
        decoder_rates=[8, 6, 5, 2, 2, 2],
    )
    return full_config(
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
    lm = lm_config(
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
    vae = vae_config(
        encoder_dim=6,
        encoder_rates=[2, 3, 2],
        latent_dim=6,
        decoder_dim=48,
        decoder_rates=[3, 2, 2, 3],
    )
    return full_config(
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
    lm = lm_config(
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
    vae = vae_config(
        encoder_dim=128,
        encoder_rates=[2, 5, 8, 8],
        latent_dim=64,
        decoder_dim=2048,
        decoder_rates=[8, 6, 5, 2, 2, 2],
    )
    return full_config(
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


# ---------------------------------------------------------------------------------------------
# v1 (`"architecture": "voxcpm"`, or no architecture key): VoxCPM-0.5B and VoxCPM1.5
# ---------------------------------------------------------------------------------------------


def v1_full_config(
    *,
    lm,
    patch_size,
    feat_dim,
    residual_layers,
    fsq_dim,
    enc,
    dit,
    vae,
    max_length,
    dtype="float32",
    device="cpu",
    architecture=True,
):
    """A v1 config.json with only the keys the v1 releases have (shared/docs/voxcpm-family.md): no
    `kv_channels` anywhere, no `residual_lm_no_rope`, no `mean_mode`. `enc` and `dit` are
    (hidden, ffn, heads, layers). `vae=None` leaves `audio_vae_config` out, as the VoxCPM-0.5B
    release does (the loader then builds `AudioVAE()` with its class defaults);
    `architecture=False` leaves the `architecture` key out (core.py reads absent as "voxcpm")."""
    cfg = {"architecture": "voxcpm"} if architecture else {}
    cfg.update(
        {
            "lm_config": lm,
            "patch_size": patch_size,
            "feat_dim": feat_dim,
            "residual_lm_num_layers": residual_layers,
            "scalar_quantization_latent_dim": fsq_dim,
            "scalar_quantization_scale": 9,
            "encoder_config": {"hidden_dim": enc[0], "ffn_dim": enc[1], "num_heads": enc[2], "num_layers": enc[3]},
            "dit_config": {
                "hidden_dim": dit[0],
                "ffn_dim": dit[1],
                "num_heads": dit[2],
                "num_layers": dit[3],
                "cfm_config": {
                    "sigma_min": 1e-06,
                    "solver": "euler",
                    "t_scheduler": "log-norm",
                    "inference_cfg_rate": 2.0,
                },
            },
        }
    )
    if vae is not None:
        cfg["audio_vae_config"] = vae
    cfg.update({"max_length": max_length, "device": device, "dtype": dtype})
    return cfg


def v1_vae_config(*, encoder_dim, encoder_rates, latent_dim, decoder_dim, decoder_rates, sample_rate):
    """The keys the VoxCPM1.5 release's `audio_vae_config` has; `depthwise` (True) and
    `use_noise_block` (False) stay at their class defaults, as in the release."""
    return {
        "encoder_dim": encoder_dim,
        "encoder_rates": list(encoder_rates),
        "latent_dim": latent_dim,
        "decoder_dim": decoder_dim,
        "decoder_rates": list(decoder_rates),
        "sample_rate": sample_rate,
    }


SEEDS.update({"v1_tiny": 20250905, "v1_odd": 20250902})


def v1_tiny_config(vocab_size: int) -> dict:
    """The 0.5B flavour: patch 2, FSQ 256, the 0.5B's VAE structure (depthwise, 16 kHz, encoder
    [2,5,8,8], decoder [8,8,5,2]) at small widths. LocEnc/LocDiT reuse the LM's RoPE factors, so
    their head_dim (hidden / heads: no kv_channels in v1) must equal the LM's: 8 here."""
    lm = lm_config(
        vocab_size=vocab_size,
        hidden=32,
        ffn=48,
        layers=2,
        heads=4,
        kv_heads=2,
        kv_channels=None,
        max_pos=128,
        orig_max_pos=128,  # max == original -> short factors, scaling factor exactly 1 (like the release)
        short_factor=np.round(np.linspace(1.0, 2.5, 4), 6),
        long_factor=np.round(np.geomspace(1.5, 8.0, 4), 6),
    )
    vae = v1_vae_config(
        encoder_dim=2, encoder_rates=[2, 5, 8, 8], latent_dim=8, decoder_dim=32, decoder_rates=[8, 8, 5, 2], sample_rate=16000
    )
    return v1_full_config(
        lm=lm,
        patch_size=2,
        feat_dim=8,
        residual_layers=2,
        fsq_dim=256,
        enc=(16, 24, 2, 2),
        dit=(16, 24, 2, 2),
        vae=vae,
        max_length=128,
    )


def v1_odd_config(vocab_size: int) -> dict:
    """The 1.5 flavour with odd shapes and NO architecture key: patch 3, GQA 3 (6 heads / 2 KV),
    long RoPE factors with a scaling factor != 1, odd FFN widths, feat_dim 5, FSQ 25, a 44.1 kHz
    VAE with odd strides (encoder [2,3,7]: the v1 strided conv pads 2*ceil(s/2) = s+1 for odd s)."""
    lm = lm_config(
        vocab_size=vocab_size,
        hidden=36,
        ffn=45,
        layers=2,
        heads=6,
        kv_heads=2,
        kv_channels=None,
        max_pos=256,
        orig_max_pos=64,  # max > original -> LONG factors, scaling sqrt(1 + ln4/ln64) = 1.1547
        short_factor=np.round(np.linspace(1.0, 2.0, 3), 6),
        long_factor=np.round([1.3, 3.1, 7.7], 6),
    )
    vae = v1_vae_config(
        encoder_dim=3, encoder_rates=[2, 3, 7], latent_dim=5, decoder_dim=24, decoder_rates=[7, 3, 2], sample_rate=44100
    )
    return v1_full_config(
        lm=lm,
        patch_size=3,
        feat_dim=5,
        residual_layers=3,
        fsq_dim=25,
        enc=(12, 19, 2, 2),
        dit=(24, 29, 4, 3),
        vae=vae,
        max_length=128,
        architecture=False,
    )


# The 32 LongRoPE factors of VoxCPM-0.5B (short_factor == long_factor): MiniCPM4-0.5B's, as
# quoted from the 0.5B config.json by HF mirrors and several ports (voxcpm-family.md [F]) and by
# MiniCPM's own long-context configs. VoxCPM1.5's are assumed equal (medium confidence). With
# max == original == 32768 only the short list is used and the scaling factor is 1.
MINICPM4_ROPE_FACTORS = [
    1.0004360675811768, 1.0668443441390991, 1.1631425619125366, 1.3025742769241333, 1.5040205717086792,
    1.7941505908966064, 2.2101221084594727, 2.802666664123535, 3.6389970779418945, 4.804192543029785,
    6.39855432510376, 8.527148246765137, 11.277542114257812, 14.684998512268066, 18.69317054748535,
    23.13019371032715, 27.72362518310547, 32.1606559753418, 36.168827056884766, 39.57627868652344,
    42.32667541503906, 44.45526885986328, 46.04962921142578, 47.21482849121094, 48.05115509033203,
    48.64370346069336, 49.05967712402344, 49.34980392456055, 49.551246643066406, 49.69068145751953,
    49.78697967529297, 49.85338592529297,
]
assert len(MINICPM4_ROPE_FACTORS) == 32


def _released_v1_lm() -> dict:
    return lm_config(
        vocab_size=73448,
        hidden=1024,
        ffn=4096,
        layers=24,
        heads=16,
        kv_heads=2,
        kv_channels=None,
        max_pos=32768,
        orig_max_pos=32768,
        short_factor=MINICPM4_ROPE_FACTORS,
        long_factor=MINICPM4_ROPE_FACTORS,
    )


def released_v1_0_5b_config() -> dict:
    """VoxCPM-0.5B: no audio_vae_config (AudioVAE class defaults: 128, [2,5,8,8], 64, 1536,
    [8,8,5,2], depthwise, 16 kHz), max_length 4096."""
    return v1_full_config(
        lm=_released_v1_lm(),
        patch_size=2,
        feat_dim=64,
        residual_layers=6,
        fsq_dim=256,
        enc=(1024, 4096, 16, 4),
        dit=(1024, 4096, 16, 4),
        vae=None,
        max_length=4096,
        dtype="bfloat16",
        device="cuda",
    )


def released_v1_5_config() -> dict:
    """VoxCPM1.5: patch 4, residual 8, 8-layer LocEnc/LocDiT, a 44.1 kHz VAE, max_length 8192."""
    vae = v1_vae_config(
        encoder_dim=64, encoder_rates=[2, 3, 6, 7, 7], latent_dim=64, decoder_dim=2048, decoder_rates=[7, 7, 6, 3, 2],
        sample_rate=44100,
    )
    return v1_full_config(
        lm=_released_v1_lm(),
        patch_size=4,
        feat_dim=64,
        residual_layers=8,
        fsq_dim=256,
        enc=(1024, 4096, 16, 8),
        dit=(1024, 4096, 16, 8),
        vae=vae,
        max_length=8192,
        dtype="bfloat16",
        device="cuda",
    )
