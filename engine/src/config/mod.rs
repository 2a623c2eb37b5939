//! `config.json` of a VoxCPM2 checkpoint, mirrored field for field (architecture doc §2.1).
//!
//! Defaults are the official pydantic defaults, so a config that omits a field means what it
//! means to the official loader. Every size used by the model comes from here, and only after
//! `validate` has accepted it.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

mod validate;

/// The top level of `config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct VoxCpmConfig {
    /// "voxcpm2" for this engine; the official loader treats a missing value as V1.
    #[serde(default = "default_architecture")]
    pub architecture: String,
    pub lm_config: LmConfig,
    #[serde(default = "default_patch_size")]
    pub patch_size: usize,
    #[serde(default = "default_feat_dim")]
    pub feat_dim: usize,
    #[serde(default = "default_residual_layers")]
    pub residual_lm_num_layers: usize,
    #[serde(default)]
    pub residual_lm_no_rope: bool,
    #[serde(default = "default_fsq_latent")]
    pub scalar_quantization_latent_dim: usize,
    #[serde(default = "default_fsq_scale")]
    pub scalar_quantization_scale: u32,
    pub encoder_config: LocalStackConfig,
    pub dit_config: LocalStackConfig,
    #[serde(default)]
    pub audio_vae_config: AudioVaeConfig,
    /// Capacity of the base and residual LM KV caches (prefix + generated patches).
    #[serde(default = "default_max_length")]
    pub max_length: usize,
}

/// MiniCPM-4 settings shared (by copy) by all four transformer stacks.
#[derive(Debug, Clone, Deserialize)]
pub struct LmConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub num_key_value_heads: usize,
    pub rms_norm_eps: f64,
    pub rope_scaling: RopeScaling,
    pub vocab_size: usize,
    #[serde(default = "default_true")]
    pub use_mup: bool,
    pub scale_emb: f64,
    pub scale_depth: f64,
    pub rope_theta: f64,
    #[serde(default)]
    pub kv_channels: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RopeScaling {
    #[serde(rename = "type")]
    pub kind: String,
    pub long_factor: Vec<f64>,
    pub short_factor: Vec<f64>,
    pub original_max_position_embeddings: usize,
}

/// `encoder_config` (LocEnc) and `dit_config` (LocDiT) share this shape.
#[derive(Debug, Clone, Deserialize)]
pub struct LocalStackConfig {
    #[serde(default = "default_local_hidden")]
    pub hidden_dim: usize,
    #[serde(default = "default_local_ffn")]
    pub ffn_dim: usize,
    #[serde(default = "default_local_heads")]
    pub num_heads: usize,
    #[serde(default = "default_local_layers")]
    pub num_layers: usize,
    #[serde(default)]
    pub kv_channels: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AudioVaeConfig {
    #[serde(default = "default_encoder_dim")]
    pub encoder_dim: usize,
    #[serde(default = "default_encoder_rates")]
    pub encoder_rates: Vec<usize>,
    #[serde(default = "default_feat_dim")]
    pub latent_dim: usize,
    #[serde(default = "default_decoder_dim")]
    pub decoder_dim: usize,
    #[serde(default = "default_decoder_rates")]
    pub decoder_rates: Vec<usize>,
    #[serde(default = "default_true")]
    pub depthwise: bool,
    #[serde(default = "default_sample_rate")]
    pub sample_rate: u32,
    #[serde(default = "default_out_sample_rate")]
    pub out_sample_rate: u32,
    #[serde(default)]
    pub use_noise_block: bool,
    #[serde(default = "default_sr_bins")]
    pub sr_bin_boundaries: Option<Vec<u32>>,
    #[serde(default = "default_cond_type")]
    pub cond_type: String,
    #[serde(default)]
    pub cond_out_layer: bool,
}

impl Default for AudioVaeConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("all AudioVaeConfig fields have defaults")
    }
}

/// One transformer stack, resolved: what `MiniCPMModel` sees after the official code copies
/// `lm_config` and overrides the stack's own widths.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub use_rope: bool,
    /// Residual branch multiplier: `scale_depth / sqrt(layers)` under muP, else 1.
    pub residual_scale: f64,
}

impl VoxCpmConfig {
    /// Reads and validates `config.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        // The path-tracking deserializer names the key of a wrong value ("lm_config.hidden_size:
        // invalid value: integer `-1`, expected usize").
        let bad = |message: String| Error::Config { path: path.to_owned(), message };
        let mut json = serde_json::Deserializer::from_str(&text);
        let config: VoxCpmConfig = serde_path_to_error::deserialize(&mut json).map_err(|e| bad(e.to_string()))?;
        json.end().map_err(|e| bad(e.to_string()))?;
        if config.architecture != "voxcpm2" {
            return Err(Error::UnsupportedArchitecture { path: path.to_owned(), found: config.architecture });
        }
        config.validate().map_err(bad)?;
        Ok(config)
    }

    pub fn base_lm(&self) -> StackConfig {
        let lm = &self.lm_config;
        self.stack(
            lm.hidden_size,
            lm.intermediate_size,
            lm.num_hidden_layers,
            lm.num_attention_heads,
            lm.kv_channels,
            true,
        )
    }

    pub fn residual_lm(&self) -> StackConfig {
        let lm = &self.lm_config;
        self.stack(
            lm.hidden_size,
            lm.intermediate_size,
            self.residual_lm_num_layers,
            lm.num_attention_heads,
            lm.kv_channels,
            !self.residual_lm_no_rope,
        )
    }

    pub fn loc_enc(&self) -> StackConfig {
        self.local_stack(&self.encoder_config)
    }

    pub fn loc_dit(&self) -> StackConfig {
        self.local_stack(&self.dit_config)
    }

    fn local_stack(&self, c: &LocalStackConfig) -> StackConfig {
        self.stack(c.hidden_dim, c.ffn_dim, c.num_layers, c.num_heads, c.kv_channels, true)
    }

    fn stack(
        &self,
        hidden: usize,
        ffn: usize,
        layers: usize,
        heads: usize,
        kv_channels: Option<usize>,
        use_rope: bool,
    ) -> StackConfig {
        let lm = &self.lm_config;
        StackConfig {
            hidden_size: hidden,
            intermediate_size: ffn,
            num_layers: layers,
            num_heads: heads,
            num_kv_heads: lm.num_key_value_heads,
            head_dim: kv_channels.unwrap_or(hidden / heads.max(1)),
            rms_norm_eps: lm.rms_norm_eps,
            use_rope,
            residual_scale: if lm.use_mup { lm.scale_depth / (layers as f64).sqrt() } else { 1.0 },
        }
    }

    /// Positions the RoPE table must cover: the LMs' whole context (`max_length`) and LocDiT's
    /// local sequence (two mu tokens, the time token, the previous patch and the patch).
    pub fn rope_positions(&self) -> usize {
        self.max_length.max(2 * self.patch_size + 3)
    }

    /// Text embeddings are scaled by `scale_emb` only under muP (§4.5).
    pub fn text_embed_scale(&self) -> f64 {
        if self.lm_config.use_mup { self.lm_config.scale_emb } else { 1.0 }
    }
}

impl AudioVaeConfig {
    /// Encoder hop: input samples per latent frame.
    pub fn encoder_hop(&self) -> usize {
        self.encoder_rates.iter().product()
    }

    /// Decoder hop: output samples per latent frame.
    pub fn decoder_hop(&self) -> usize {
        self.decoder_rates.iter().product()
    }
}

fn default_architecture() -> String {
    "voxcpm".into()
}
fn default_patch_size() -> usize {
    4
}
fn default_feat_dim() -> usize {
    64
}
fn default_residual_layers() -> usize {
    8
}
fn default_fsq_latent() -> usize {
    512
}
fn default_fsq_scale() -> u32 {
    9
}
fn default_max_length() -> usize {
    8192
}
fn default_true() -> bool {
    true
}
fn default_local_hidden() -> usize {
    1024
}
fn default_local_ffn() -> usize {
    4096
}
fn default_local_heads() -> usize {
    16
}
fn default_local_layers() -> usize {
    4
}
fn default_encoder_dim() -> usize {
    128
}
fn default_encoder_rates() -> Vec<usize> {
    vec![2, 5, 8, 8]
}
fn default_decoder_dim() -> usize {
    2048
}
fn default_decoder_rates() -> Vec<usize> {
    vec![8, 6, 5, 2, 2, 2]
}
fn default_sample_rate() -> u32 {
    16000
}
fn default_out_sample_rate() -> u32 {
    48000
}
fn default_sr_bins() -> Option<Vec<u32>> {
    Some(vec![20000, 30000, 40000])
}
fn default_cond_type() -> String {
    "scale_bias".into()
}
