//! Configs for synthetic checkpoints: the released VoxCPM2 shapes and a mid-size model.

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The released VoxCPM2 config (architecture doc §2.1): 2.29 B parameters without the VAE.
    Full,
    /// Every width about halved and fewer layers: fast enough for per-stage timings on 2 cores.
    Mid,
}

impl std::str::FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(Preset::Full),
            "mid" => Ok(Preset::Mid),
            other => Err(format!("unknown preset {other:?} (full, mid)")),
        }
    }
}

/// LongRoPE factors rising smoothly over the released range (0.9978 → 31.02). The released
/// list is not reproduced here; with `max_position_embeddings == original` only its length
/// and magnitude matter for timing and loading.
fn rope_factors(count: usize) -> Vec<f64> {
    let (first, last) = (0.997_8f64, 31.023_9f64);
    (0..count).map(|i| first * (last / first).powf(i as f64 / (count - 1) as f64)).collect()
}

pub fn preset_config(preset: Preset) -> Value {
    let (lm, stacks, local, fsq, vae) = match preset {
        Preset::Full => ((2048, 6144, 28, 16, 128, 73448), 8, (1024, 4096, 16, 12), 512, (128, 2048)),
        Preset::Mid => ((1024, 3072, 12, 8, 128, 73448), 4, (512, 2048, 8, 6), 256, (64, 1024)),
    };
    let (hidden, ffn, layers, heads, head_dim, vocab) = lm;
    let (local_hidden, local_ffn, local_heads, local_layers) = local;
    let factors = rope_factors(head_dim / 2);
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
