//! Configs for synthetic checkpoints: the released VoxCPM2 shapes, a mid-size VoxCPM2, and the
//! released v1 shapes (VoxCPM-0.5B, VoxCPM1.5).

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The released VoxCPM2 config (architecture doc §2.1): 2.29 B parameters without the VAE.
    Full,
    /// Every width about halved and fewer layers: fast enough for per-stage timings on 2 cores.
    Mid,
    /// The VoxCPM-0.5B release (v1, 16 kHz, no `audio_vae_config`: the VAE class defaults).
    VoxCpm05B,
    /// The VoxCPM1.5 release (v1, 44.1 kHz).
    VoxCpm15,
}

impl std::str::FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(Preset::Full),
            "mid" => Ok(Preset::Mid),
            "voxcpm-0.5b" => Ok(Preset::VoxCpm05B),
            "voxcpm1.5" => Ok(Preset::VoxCpm15),
            other => Err(format!("unknown preset {other:?} (full, mid, voxcpm-0.5b, voxcpm1.5)")),
        }
    }
}

/// The 64 LongRoPE factors of VoxCPM2 (`short_factor == long_factor`), as published in
/// third-party ports and a MiniCPM-4-family config (not read from the HF file itself; see
/// tools/golden/README.md). Both presets use head dim 128, so both take all 64.
const ROPE_FACTORS: [f64; 64] = [
    0.9977997200264581,
    1.014658295992452,
    1.0349680404997148,
    1.059429246056193,
    1.0888815016813513,
    1.1243301355211495,
    1.166977103606075,
    1.2182568066927284,
    1.2798772354275727,
    1.3538666751582975,
    1.4426259039919596,
    1.5489853358570191,
    1.6762658237220625,
    1.8283407612492941,
    2.0096956085876183,
    2.225478927469756,
    2.481536379650452,
    2.784415934557119,
    3.1413289096347365,
    3.560047844772632,
    4.048719380066383,
    4.615569542115128,
    5.2684819496549835,
    6.014438591970396,
    6.858830049237097,
    7.804668263503327,
    8.851768731513417,
    9.99600492938444,
    11.228766118181639,
    12.536757560834843,
    13.902257701387796,
    15.303885189125953,
    16.717837610115794,
    18.119465097853947,
    19.484965238406907,
    20.792956681060105,
    22.02571786985731,
    23.16995406772833,
    24.217054535738416,
    25.16289275000465,
    26.007284207271347,
    26.753240849586767,
    27.40615325712662,
    27.973003419175363,
    28.461674954469114,
    28.880393889607006,
    29.237306864684626,
    29.540186419591297,
    29.79624387177199,
    30.01202719065413,
    30.193382037992453,
    30.34545697551969,
    30.47273746338473,
    30.579096895249787,
    30.66785612408345,
    30.741845563814174,
    30.80346599254902,
    30.85474569563567,
    30.897392663720595,
    30.932841297560394,
    30.962293553185553,
    30.986754758742034,
    31.007064503249293,
    31.02392307921529,
];

/// The 32 LongRoPE factors of MiniCPM-4 (`short_factor == long_factor`), head dim 64, taken for
/// both v1 releases as tools/golden's presets take them (the 0.5B's, assumed for the 1.5;
/// see tools/golden/V1_NOTES.md §9).
const V1_ROPE_FACTORS: [f64; 32] = [
    1.0004360675811768,
    1.0668443441390991,
    1.1631425619125366,
    1.3025742769241333,
    1.5040205717086792,
    1.7941505908966064,
    2.2101221084594727,
    2.802666664123535,
    3.6389970779418945,
    4.804192543029785,
    6.39855432510376,
    8.527148246765137,
    11.277542114257812,
    14.684998512268066,
    18.69317054748535,
    23.13019371032715,
    27.72362518310547,
    32.1606559753418,
    36.168827056884766,
    39.57627868652344,
    42.32667541503906,
    44.45526885986328,
    46.04962921142578,
    47.21482849121094,
    48.05115509033203,
    48.64370346069336,
    49.05967712402344,
    49.34980392456055,
    49.551246643066406,
    49.69068145751953,
    49.78697967529297,
    49.85338592529297,
];

/// The `config.json` of a preset.
pub fn preset_config(preset: Preset) -> Value {
    match preset {
        Preset::Full | Preset::Mid => voxcpm2_config(preset),
        Preset::VoxCpm05B | Preset::VoxCpm15 => v1_release_config(preset),
    }
}

/// The v1 releases' configs, with only the keys the releases have (VoxCPM-0.5B has no
/// `audio_vae_config`): the same text as the official tensor lists in
/// `engine/tests/fixtures/preset_voxcpm*.json` were built from.
fn v1_release_config(preset: Preset) -> Value {
    let is_1_5 = preset == Preset::VoxCpm15;
    let (patch, residual, local_layers, max_length) = if is_1_5 { (4, 8, 8, 8192) } else { (2, 6, 4, 4096) };
    let local_stack = json!({ "hidden_dim": 1024, "ffn_dim": 4096, "num_heads": 16, "num_layers": local_layers });
    let mut dit = local_stack.clone();
    dit["cfm_config"] =
        json!({"sigma_min": 1e-6, "solver": "euler", "t_scheduler": "log-norm", "inference_cfg_rate": 2.0});
    let mut config = json!({
        "architecture": "voxcpm",
        "lm_config": {
            "bos_token_id": 1, "eos_token_id": 2,
            "hidden_size": 1024, "intermediate_size": 4096,
            "max_position_embeddings": 32768,
            "num_attention_heads": 16, "num_hidden_layers": 24, "num_key_value_heads": 2,
            "rms_norm_eps": 1e-5,
            "rope_scaling": {
                "type": "longrope", "long_factor": V1_ROPE_FACTORS, "short_factor": V1_ROPE_FACTORS,
                "original_max_position_embeddings": 32768
            },
            "vocab_size": 73448, "scale_emb": 12, "dim_model_base": 256,
            "scale_depth": 1.4, "rope_theta": 10000, "use_mup": false
        },
        "patch_size": patch, "feat_dim": 64,
        "residual_lm_num_layers": residual,
        "scalar_quantization_latent_dim": 256, "scalar_quantization_scale": 9,
        "encoder_config": local_stack,
        "dit_config": dit,
        "max_length": max_length,
        "device": "cuda",
        "dtype": "bfloat16"
    });
    if is_1_5 {
        config["audio_vae_config"] = json!({
            "encoder_dim": 64, "encoder_rates": [2, 3, 6, 7, 7], "latent_dim": 64,
            "decoder_dim": 2048, "decoder_rates": [7, 7, 6, 3, 2], "sample_rate": 44100
        });
    }
    config
}

fn voxcpm2_config(preset: Preset) -> Value {
    let (lm, stacks, local, fsq, vae) = match preset {
        Preset::Mid => ((1024, 3072, 12, 8, 128, 73448), 4, (512, 2048, 8, 6), 256, (64, 1024)),
        _ => ((2048, 6144, 28, 16, 128, 73448), 8, (1024, 4096, 16, 12), 512, (128, 2048)),
    };
    let (hidden, ffn, layers, heads, head_dim, vocab) = lm;
    let (local_hidden, local_ffn, local_heads, local_layers) = local;
    let factors = &ROPE_FACTORS[..head_dim / 2];
    let local_stack = json!({
        "hidden_dim": local_hidden, "ffn_dim": local_ffn, "num_heads": local_heads,
        "num_layers": local_layers, "kv_channels": head_dim,
    });
    json!({
        "architecture": "voxcpm2",
        "lm_config": {
            "bos_token_id": 1, "eos_token_id": 2,
            "hidden_size": hidden, "intermediate_size": ffn,
            "max_position_embeddings": 32768,
            "num_attention_heads": heads, "num_hidden_layers": layers, "num_key_value_heads": 2,
            "rms_norm_eps": 1e-5,
            "rope_scaling": {
                "type": "longrope", "long_factor": factors, "short_factor": factors,
                "original_max_position_embeddings": 32768
            },
            "vocab_size": vocab, "use_mup": false, "scale_emb": 12, "dim_model_base": 256,
            "scale_depth": 1.4, "rope_theta": 10000, "kv_channels": head_dim
        },
        "patch_size": 4, "feat_dim": 64,
        "residual_lm_num_layers": stacks, "residual_lm_no_rope": true,
        "scalar_quantization_latent_dim": fsq, "scalar_quantization_scale": 9,
        "encoder_config": local_stack,
        "dit_config": {
            "hidden_dim": local_hidden, "ffn_dim": local_ffn, "num_heads": local_heads,
            "num_layers": local_layers, "kv_channels": head_dim,
            "cfm_config": {"sigma_min": 1e-6, "solver": "euler", "t_scheduler": "log-norm", "inference_cfg_rate": 2.0}
        },
        "audio_vae_config": {
            "encoder_dim": vae.0, "encoder_rates": [2, 5, 8, 8], "latent_dim": 64,
            "decoder_dim": vae.1, "decoder_rates": [8, 6, 5, 2, 2, 2],
            "sr_bin_boundaries": [20000, 30000, 40000], "sample_rate": 16000, "out_sample_rate": 48000
        },
        "max_length": 8192,
        "device": "cuda",
        "dtype": "bfloat16"
    })
}
