//! What `config.json` must satisfy before anything is built from it.
//!
//! Every size is positive and small enough that the buffers it implies (weights, stand-ins for
//! missing weights, RoPE tables) cannot overflow `usize` or ask for more memory than a machine
//! has; every float is finite and in the range its formula needs; the divisibility rules the
//! layers rely on hold. A damaged config therefore fails here, naming each key and value,
//! instead of panicking, aborting on allocation or producing NaN audio later. The limits are
//! far above the released models (VoxCPM2: widths ≤ 6144, 28 layers, vocabulary 73,448).

use super::{Architecture, AudioVaeConfig, LocalStackConfig, StackConfig, VoxCpmConfig};

/// Hidden sizes, FFN sizes, latent dims and channel counts.
const MAX_WIDTH: usize = 1 << 15;
const MAX_LAYERS: usize = 256;
const MAX_HEADS: usize = 256;
const MAX_VOCAB: usize = 1 << 20;
/// `max_length`: the KV caches' capacity in positions.
const MAX_CONTEXT: usize = 1 << 17;
/// `max_position_embeddings` and the RoPE's original length.
const MAX_POSITIONS: usize = 1 << 20;
const MAX_PATCH: usize = 64;
const MAX_VAE_STAGES: usize = 8;
const MAX_STRIDE: usize = 32;
const MAX_SAMPLE_RATE: usize = 768_000;
const MAX_FSQ_SCALE: usize = 1 << 16;
/// Elements of the largest single tensor a config may imply (1 GiB of f32).
const MAX_TENSOR: usize = 1 << 28;

/// Every problem found, each naming its key and value.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn size(&mut self, key: &str, value: usize, max: usize) {
        if value == 0 {
            self.0.push(format!("{key} = 0 must be at least 1"));
        } else if value > max {
            self.0.push(format!("{key} = {value} is larger than this engine accepts (at most {max})"));
        }
    }

    fn positive(&mut self, key: &str, value: f64) {
        if !(value.is_finite() && value > 0.0) {
            self.0.push(format!("{key} = {value} must be a positive, finite number"));
        }
    }

    fn finite(&mut self, key: &str, value: f64) {
        if !value.is_finite() {
            self.0.push(format!("{key} = {value} must be a finite number"));
        }
    }

    /// A tensor of `elements` values (saturating products) must fit [`MAX_TENSOR`].
    fn tensor(&mut self, what: &str, elements: usize) {
        if elements > MAX_TENSOR {
            self.0.push(format!("{what} would hold {elements} values, more than this engine accepts ({MAX_TENSOR})"));
        }
    }

    fn rule(&mut self, holds: bool, problem: impl FnOnce() -> String) {
        if !holds {
            self.0.push(problem());
        }
    }
}

fn product(factors: &[usize]) -> usize {
    factors.iter().fold(1usize, |p, &f| p.saturating_mul(f))
}

impl VoxCpmConfig {
    /// All problems of the config, joined; `Ok` when the model can be built from it.
    pub(super) fn validate(&self) -> Result<(), String> {
        let mut p = Problems::default();
        self.check_sizes(&mut p);
        // Derived checks divide and multiply these sizes: only run them on sane ones.
        if p.0.is_empty() {
            self.check_stacks(&mut p);
            self.check_rope(&mut p);
            check_vae(&self.audio_vae_config, self.feat_dim, &mut p);
        }
        if p.0.is_empty() { Ok(()) } else { Err(p.0.join("; ")) }
    }

    fn check_sizes(&self, p: &mut Problems) {
        p.size("patch_size", self.patch_size, MAX_PATCH);
        p.size("feat_dim", self.feat_dim, MAX_WIDTH);
        p.size("residual_lm_num_layers", self.residual_lm_num_layers, MAX_LAYERS);
        p.size("scalar_quantization_latent_dim", self.scalar_quantization_latent_dim, MAX_WIDTH);
        p.size("scalar_quantization_scale", self.scalar_quantization_scale as usize, MAX_FSQ_SCALE);
        p.size("max_length", self.max_length, MAX_CONTEXT);

        let lm = &self.lm_config;
        p.size("lm_config.hidden_size", lm.hidden_size, MAX_WIDTH);
        p.size("lm_config.intermediate_size", lm.intermediate_size, MAX_WIDTH);
        p.size("lm_config.max_position_embeddings", lm.max_position_embeddings, MAX_POSITIONS);
        p.size("lm_config.num_attention_heads", lm.num_attention_heads, MAX_HEADS);
        p.size("lm_config.num_hidden_layers", lm.num_hidden_layers, MAX_LAYERS);
        p.size("lm_config.num_key_value_heads", lm.num_key_value_heads, MAX_HEADS);
        p.size("lm_config.vocab_size", lm.vocab_size, MAX_VOCAB);
        // The audio tokens: 101 (start of the generated audio) in both, 103/104 (reference clip)
        // in v2.
        let (last_token, tokens) = match self.architecture {
            Architecture::V1 => (101, "id 101 is the audio start token"),
            Architecture::V2 => (104, "ids 101-104 are the audio tokens"),
        };
        p.rule(lm.vocab_size > last_token, || {
            format!("lm_config.vocab_size = {} must exceed {last_token} ({tokens})", lm.vocab_size)
        });
        if let Some(channels) = lm.kv_channels {
            p.size("lm_config.kv_channels", channels, MAX_WIDTH);
        }
        p.positive("lm_config.rms_norm_eps", lm.rms_norm_eps);
        p.positive("lm_config.rope_theta", lm.rope_theta);
        p.finite("lm_config.scale_emb", lm.scale_emb);
        p.finite("lm_config.scale_depth", lm.scale_depth);

        let rope = &lm.rope_scaling;
        p.size(
            "lm_config.rope_scaling.original_max_position_embeddings",
            rope.original_max_position_embeddings,
            MAX_POSITIONS,
        );
        for (key, factors) in [("long_factor", &rope.long_factor), ("short_factor", &rope.short_factor)] {
            p.size(&format!("lm_config.rope_scaling.{key} (its length)"), factors.len(), MAX_WIDTH / 2);
            if let Some((i, bad)) = factors.iter().enumerate().find(|(_, f)| !(f.is_finite() && **f > 0.0)) {
                p.0.push(format!("lm_config.rope_scaling.{key}[{i}] = {bad} must be a positive, finite number"));
            }
        }

        for (key, stack) in [("encoder_config", &self.encoder_config), ("dit_config", &self.dit_config)] {
            check_local_sizes(key, stack, p);
        }

        let vae = &self.audio_vae_config;
        p.size("audio_vae_config.encoder_dim", vae.encoder_dim, MAX_WIDTH);
        p.size("audio_vae_config.decoder_dim", vae.decoder_dim, MAX_WIDTH);
        p.size("audio_vae_config.latent_dim", vae.latent_dim, MAX_WIDTH);
        p.size("audio_vae_config.sample_rate", vae.sample_rate as usize, MAX_SAMPLE_RATE);
        p.size("audio_vae_config.out_sample_rate", vae.out_sample_rate as usize, MAX_SAMPLE_RATE);
        for (key, rates) in [("encoder_rates", &vae.encoder_rates), ("decoder_rates", &vae.decoder_rates)] {
            p.size(&format!("audio_vae_config.{key} (its length)"), rates.len(), MAX_VAE_STAGES);
            for (i, &rate) in rates.iter().enumerate() {
                p.size(&format!("audio_vae_config.{key}[{i}]"), rate, MAX_STRIDE);
            }
        }
        if let Some(bounds) = &vae.sr_bin_boundaries {
            p.size("audio_vae_config.sr_bin_boundaries (its length)", bounds.len(), MAX_PATCH);
        }
    }

    /// Head layout, RoPE width and the largest linear layers of each transformer stack.
    fn check_stacks(&self, p: &mut Problems) {
        let rope_dims = 2 * self.lm_config.rope_scaling.short_factor.len();
        let stacks = [
            ("lm_config", self.base_lm()),
            ("lm_config (residual LM)", self.residual_lm()),
            ("encoder_config", self.loc_enc()),
            ("dit_config", self.loc_dit()),
        ];
        for (key, s) in &stacks {
            p.rule(s.num_heads.is_multiple_of(s.num_kv_heads), || {
                format!(
                    "{key}: num_heads = {} is not a multiple of lm_config.num_key_value_heads = {}",
                    s.num_heads, s.num_kv_heads
                )
            });
            p.rule(s.head_dim >= 1, || {
                format!("{key}: hidden size {} is smaller than its {} heads", s.hidden_size, s.num_heads)
            });
            p.rule(!s.use_rope || s.head_dim == rope_dims, || {
                format!(
                    "{key}: head dim {} needs {} rope factors, lm_config.rope_scaling has {}",
                    s.head_dim,
                    s.head_dim / 2,
                    rope_dims / 2
                )
            });
            check_stack_tensors(key, s, p);
        }
        let lm = &self.lm_config;
        p.tensor("the token embedding (lm_config.vocab_size × hidden_size)", product(&[lm.vocab_size, lm.hidden_size]));
        p.rule(self.dit_config.hidden_dim.is_multiple_of(2), || {
            format!("dit_config.hidden_dim = {} must be even", self.dit_config.hidden_dim)
        });
    }

    /// The LongRoPE factors must agree in length, and the table's scaling factor
    /// `sqrt(1 + ln(max/original) / ln(original))` must be a real number (§4.4).
    fn check_rope(&self, p: &mut Problems) {
        let lm = &self.lm_config;
        let rope = &lm.rope_scaling;
        p.rule(rope.long_factor.len() == rope.short_factor.len(), || {
            format!(
                "lm_config.rope_scaling: long_factor has {} values, short_factor {}",
                rope.long_factor.len(),
                rope.short_factor.len()
            )
        });
        let original = rope.original_max_position_embeddings as f64;
        let inside = 1.0 + (lm.max_position_embeddings as f64 / original).ln() / original.ln();
        p.rule(inside.is_finite() && inside >= 0.0, || {
            format!(
                "lm_config.rope_scaling.original_max_position_embeddings = {} with max_position_embeddings = {} \
                 gives no real RoPE scaling factor (original must be at least 2 and not far above the maximum)",
                rope.original_max_position_embeddings, lm.max_position_embeddings
            )
        });
        let positions = self.rope_positions();
        p.rule(lm.max_position_embeddings >= positions, || {
            format!(
                "lm_config.max_position_embeddings = {} is shorter than the {positions} positions the model uses \
                 (max_length = {}, and {} in LocDiT)",
                lm.max_position_embeddings,
                self.max_length,
                self.dit_sequence_len()
            )
        });
        p.tensor("the RoPE table (max_length × head dim)", product(&[positions, rope.short_factor.len() * 2]));
    }
}

fn check_local_sizes(key: &str, stack: &LocalStackConfig, p: &mut Problems) {
    p.size(&format!("{key}.hidden_dim"), stack.hidden_dim, MAX_WIDTH);
    p.size(&format!("{key}.ffn_dim"), stack.ffn_dim, MAX_WIDTH);
    p.size(&format!("{key}.num_heads"), stack.num_heads, MAX_HEADS);
    p.size(&format!("{key}.num_layers"), stack.num_layers, MAX_LAYERS);
    if let Some(channels) = stack.kv_channels {
        p.size(&format!("{key}.kv_channels"), channels, MAX_WIDTH);
    }
}

/// The attention projections (`heads × head_dim` wide) and the FFN of one layer.
fn check_stack_tensors(key: &str, s: &StackConfig, p: &mut Problems) {
    let attention = product(&[s.num_heads, s.head_dim]);
    p.tensor(
        &format!("{key}: a layer's query projection (heads × head dim × hidden)"),
        product(&[attention, s.hidden_size]),
    );
    p.tensor(&format!("{key}: a layer's FFN projection"), product(&[s.intermediate_size, s.hidden_size]));
}

/// Rates, the divisibility of the decoder's halving widths, and the largest convolutions.
fn check_vae(vae: &AudioVaeConfig, feat_dim: usize, p: &mut Problems) {
    p.rule(vae.latent_dim == feat_dim, || {
        format!("audio_vae_config.latent_dim = {} differs from feat_dim = {feat_dim}", vae.latent_dim)
    });
    let stages = vae.decoder_rates.len();
    p.rule(vae.decoder_dim.is_multiple_of(1 << stages), || {
        format!(
            "audio_vae_config.decoder_dim = {} is not divisible by 2^{stages} (one halving per decoder rate)",
            vae.decoder_dim
        )
    });
    // A residual unit's dilated conv is [w, w, 7] unless depthwise ([w, 1, 7]).
    let unit = |w: usize| product(&[w, if vae.depthwise { 1 } else { w }, 7]);
    p.tensor("the VAE decoder's input convolution", product(&[vae.decoder_dim, vae.latent_dim, 7]));
    // The encoder doubles its width per stage; its down-sampling conv is [2w, w, 2·stride].
    let mut width = vae.encoder_dim;
    for (i, &stride) in vae.encoder_rates.iter().enumerate() {
        p.tensor(&format!("the VAE encoder's stage {i} convolution"), product(&[2 * width, width, 2 * stride]));
        p.tensor(&format!("the VAE encoder's stage {i} residual units"), unit(width));
        width = width.saturating_mul(2);
    }
    p.tensor("the VAE encoder's output convolution", product(&[vae.latent_dim, width, 3]));
    p.rule(width <= MAX_WIDTH, || {
        format!(
            "audio_vae_config.encoder_dim = {} doubled over {} encoder rates is {width}, more than this engine accepts ({MAX_WIDTH})",
            vae.encoder_dim,
            vae.encoder_rates.len()
        )
    });
    let mut width = vae.decoder_dim;
    for (i, &stride) in vae.decoder_rates.iter().enumerate() {
        p.tensor(&format!("the VAE decoder's stage {i} convolution"), product(&[width, width / 2, 2 * stride]));
        width /= 2;
        p.tensor(&format!("the VAE decoder's stage {i} residual units"), unit(width));
    }
    p.rule(!vae.use_noise_block, || {
        "audio_vae_config.use_noise_block is not supported (no released model uses it)".into()
    });
    p.rule((vae.cond_type == "scale_bias" || vae.cond_type == "scale_bias_init") && !vae.cond_out_layer, || {
        format!(
            "audio_vae_config: cond_type = {:?} with cond_out_layer = {} is not supported",
            vae.cond_type, vae.cond_out_layer
        )
    });
}
