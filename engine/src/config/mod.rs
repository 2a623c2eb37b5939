//! `config.json` of a VoxCPM checkpoint, v1 (VoxCPM-0.5B, VoxCPM1.5) or VoxCPM2, mirrored field
//! for field (architecture doc §2.1; tools/golden/V1_NOTES.md §2).
//!
//! Defaults are the official pydantic defaults of the architecture's own config class (they
//! differ: patch size, residual layers, FSQ width, `max_length`, the VAE), so a config that
//! omits a field means what it means to the official loader. Every size used by the model
//! comes from here, and only after `validate` has accepted it.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

mod architecture_keys;
mod validate;

/// Which official model class a checkpoint is for: `config.json`'s `architecture`, read as the
/// official `core.py` reads it (lower-cased; absent means V1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `"voxcpm"`: VoxCPM-0.5B and VoxCPM1.5 (`VoxCPMModel`).
    V1,
    /// `"voxcpm2"`: VoxCPM2 (`VoxCPM2Model`).
    V2,
}

impl Architecture {
    /// The name `config.json` gives it.
    pub fn official_name(self) -> &'static str {
        match self {
            Architecture::V1 => "voxcpm",
            Architecture::V2 => "voxcpm2",
        }
    }

    /// The architecture `name` stands for, in any letter case; `None` for names the official
    /// loader refuses.
    pub fn from_official_name(name: &str) -> Option<Self> {
        [Architecture::V1, Architecture::V2].into_iter().find(|a| a.official_name() == name.to_lowercase())
    }

    /// Prompt patches decoded before the generated ones in continuation: the official
    /// `streaming_prefix_len - 1` (3 - 1 in v1, 4 - 1 in v2).
    pub fn context_patches(self) -> usize {
        match self {
            Architecture::V1 => 2,
            Architecture::V2 => 3,
        }
    }

    /// LocDiT tokens before the previous patch: mu + time as one token in v1; mu's two halves
    /// and the time as three in v2.
    pub fn dit_prefix_tokens(self) -> usize {
        match self {
            Architecture::V1 => 1,
            Architecture::V2 => 3,
        }
    }

    /// The official pydantic defaults that differ between the two config classes.
    fn defaults(self) -> ClassDefaults {
        match self {
            Architecture::V1 => {
                ClassDefaults { patch_size: 2, residual_lm_num_layers: 6, fsq_latent_dim: 256, max_length: 4096 }
            }
            Architecture::V2 => {
                ClassDefaults { patch_size: 4, residual_lm_num_layers: 8, fsq_latent_dim: 512, max_length: 8192 }
            }
        }
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.official_name())
    }
}

struct ClassDefaults {
    patch_size: usize,
    residual_lm_num_layers: usize,
    fsq_latent_dim: usize,
    max_length: usize,
}

/// `config.json` resolved: every key the official class reads, missing ones filled in with that
/// class's defaults.
#[derive(Debug, Clone)]
pub struct VoxCpmConfig {
    pub architecture: Architecture,
    pub lm_config: LmConfig,
    pub patch_size: usize,
    pub feat_dim: usize,
    pub residual_lm_num_layers: usize,
    /// v2 only; v1's residual LM always has RoPE (a v1 config saying `true` is refused).
    pub residual_lm_no_rope: bool,
    pub scalar_quantization_latent_dim: usize,
    pub scalar_quantization_scale: u32,
    pub encoder_config: LocalStackConfig,
    pub dit_config: LocalStackConfig,
    pub audio_vae_config: AudioVaeConfig,
    /// Capacity of the base and residual LM KV caches (prefix + generated patches).
    pub max_length: usize,
}

/// The top level of `config.json` as written: what is absent stays `None` until
/// [`resolve`](Self::resolve) knows the architecture whose defaults apply.
#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    architecture: Option<String>,
    lm_config: LmConfig,
    #[serde(default)]
    patch_size: Option<usize>,
    #[serde(default = "default_feat_dim")]
    feat_dim: usize,
    #[serde(default)]
    residual_lm_num_layers: Option<usize>,
    #[serde(default)]
    residual_lm_no_rope: bool,
    #[serde(default)]
    scalar_quantization_latent_dim: Option<usize>,
    #[serde(default = "default_fsq_scale")]
    scalar_quantization_scale: u32,
    encoder_config: LocalStackConfig,
    dit_config: LocalStackConfig,
    #[serde(default)]
    audio_vae_config: Option<AudioVaeFile>,
    #[serde(default)]
    max_length: Option<usize>,
}

impl ConfigFile {
    fn resolve(self, architecture: Architecture) -> VoxCpmConfig {
        let defaults = architecture.defaults();
        VoxCpmConfig {
            architecture,
            lm_config: self.lm_config,
            patch_size: self.patch_size.unwrap_or(defaults.patch_size),
            feat_dim: self.feat_dim,
            residual_lm_num_layers: self.residual_lm_num_layers.unwrap_or(defaults.residual_lm_num_layers),
            residual_lm_no_rope: architecture == Architecture::V2 && self.residual_lm_no_rope,
            scalar_quantization_latent_dim: self.scalar_quantization_latent_dim.unwrap_or(defaults.fsq_latent_dim),
            scalar_quantization_scale: self.scalar_quantization_scale,
            encoder_config: self.encoder_config,
            dit_config: self.dit_config,
            audio_vae_config: match self.audio_vae_config {
                Some(vae) => vae.resolve(architecture),
                None => AudioVaeConfig::class_default(architecture),
            },
            max_length: self.max_length.unwrap_or(defaults.max_length),
        }
    }
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

/// The AudioVAE, resolved. v1's `AudioVAE` has one sample rate in and out and no output-rate
/// conditioning; it is described here as a v2 VAE whose output rate is its input rate and
/// which has no rate buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioVaeConfig {
    pub encoder_dim: usize,
    pub encoder_rates: Vec<usize>,
    pub latent_dim: usize,
    pub decoder_dim: usize,
    pub decoder_rates: Vec<usize>,
    pub depthwise: bool,
    /// The encoder's input rate.
    pub sample_rate: u32,
    /// The decoder's output rate: v2's `out_sample_rate`, v1's single `sample_rate`.
    pub out_sample_rate: u32,
    pub use_noise_block: bool,
    /// v2's output-rate buckets for the decoder's scale/bias conditioning; `None` in v1.
    pub sr_bin_boundaries: Option<Vec<u32>>,
    pub cond_type: String,
    pub cond_out_layer: bool,
}

impl AudioVaeConfig {
    /// What a config without `audio_vae_config` means: the class defaults of `AudioVAEConfig`
    /// (v1; the VoxCPM-0.5B release relies on them) or `AudioVAEConfigV2`.
    pub fn class_default(architecture: Architecture) -> Self {
        let common = AudioVaeConfig {
            encoder_dim: 128,
            encoder_rates: vec![2, 5, 8, 8],
            latent_dim: 64,
            decoder_dim: 2048,
            decoder_rates: vec![8, 6, 5, 2, 2, 2],
            depthwise: true,
            sample_rate: 16000,
            out_sample_rate: 48000,
            use_noise_block: false,
            sr_bin_boundaries: Some(vec![20000, 30000, 40000]),
            cond_type: "scale_bias".into(),
            cond_out_layer: false,
        };
        match architecture {
            Architecture::V1 => AudioVaeConfig {
                decoder_dim: 1536,
                decoder_rates: vec![8, 8, 5, 2],
                out_sample_rate: common.sample_rate,
                sr_bin_boundaries: None,
                ..common
            },
            Architecture::V2 => common,
        }
    }
}

/// `audio_vae_config` as written. v1's class has no output-rate keys: written with values that
/// would matter in v2 they are refused (`architecture_keys`), otherwise ignored, as pydantic
/// ignores unknown keys.
#[derive(Deserialize)]
struct AudioVaeFile {
    #[serde(default)]
    encoder_dim: Option<usize>,
    #[serde(default)]
    encoder_rates: Option<Vec<usize>>,
    #[serde(default)]
    latent_dim: Option<usize>,
    #[serde(default)]
    decoder_dim: Option<usize>,
    #[serde(default)]
    decoder_rates: Option<Vec<usize>>,
    #[serde(default)]
    depthwise: Option<bool>,
    #[serde(default)]
    sample_rate: Option<u32>,
    #[serde(default)]
    use_noise_block: Option<bool>,
    #[serde(default)]
    out_sample_rate: Option<u32>,
    /// Absent (the default buckets), `null` (no conditioning) or a list.
    #[serde(default, deserialize_with = "present")]
    sr_bin_boundaries: Option<Option<Vec<u32>>>,
    #[serde(default)]
    cond_type: Option<String>,
    #[serde(default)]
    cond_out_layer: Option<bool>,
}

impl AudioVaeFile {
    fn resolve(self, architecture: Architecture) -> AudioVaeConfig {
        let d = AudioVaeConfig::class_default(architecture);
        let sample_rate = self.sample_rate.unwrap_or(d.sample_rate);
        let v2 = architecture == Architecture::V2;
        AudioVaeConfig {
            encoder_dim: self.encoder_dim.unwrap_or(d.encoder_dim),
            encoder_rates: self.encoder_rates.unwrap_or(d.encoder_rates),
            latent_dim: self.latent_dim.unwrap_or(d.latent_dim),
            decoder_dim: self.decoder_dim.unwrap_or(d.decoder_dim),
            decoder_rates: self.decoder_rates.unwrap_or(d.decoder_rates),
            depthwise: self.depthwise.unwrap_or(d.depthwise),
            sample_rate,
            out_sample_rate: if v2 { self.out_sample_rate.unwrap_or(d.out_sample_rate) } else { sample_rate },
            use_noise_block: self.use_noise_block.unwrap_or(d.use_noise_block),
            sr_bin_boundaries: if v2 { self.sr_bin_boundaries.unwrap_or(d.sr_bin_boundaries) } else { None },
            cond_type: self.cond_type.filter(|_| v2).unwrap_or(d.cond_type),
            cond_out_layer: v2 && self.cond_out_layer.unwrap_or(d.cond_out_layer),
        }
    }
}

/// A key that is present, `null` included (`Some(None)`); serde's `default` covers absence.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
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
        let file: ConfigFile = serde_path_to_error::deserialize(&mut json).map_err(|e| bad(e.to_string()))?;
        json.end().map_err(|e| bad(e.to_string()))?;
        let architecture = match file.architecture.as_deref() {
            None => Architecture::V1,
            Some(name) => Architecture::from_official_name(name)
                .ok_or_else(|| Error::UnsupportedArchitecture { path: path.to_owned(), found: name.to_owned() })?,
        };
        let contradictions =
            architecture_keys::contradictions(&text, architecture, file.architecture.is_some()).map_err(bad)?;
        if !contradictions.is_empty() {
            return Err(bad(contradictions.join("; ")));
        }
        let config = file.resolve(architecture);
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
    /// local sequence (its conditioning tokens, the previous patch and the patch).
    pub fn rope_positions(&self) -> usize {
        self.max_length.max(self.dit_sequence_len())
    }

    /// LocDiT's sequence length: conditioning tokens, previous patch, patch.
    pub fn dit_sequence_len(&self) -> usize {
        self.architecture.dit_prefix_tokens() + 2 * self.patch_size
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

fn default_feat_dim() -> usize {
    64
}
fn default_fsq_scale() -> u32 {
    9
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
