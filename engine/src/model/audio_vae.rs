//! The AudioVAE (§5.9): a causal, weight-normed, depthwise DAC-style autoencoder. The encoder
//! turns prompt audio at the input rate into latents; the decoder turns latents into audio at
//! the output rate.
//!
//! Both architectures share the layers. v2 (`AudioVAEV2`: 16 kHz in, 48 kHz out) conditions
//! each decoder block on the output rate; v1 (`AudioVAE`: one rate, 16 kHz or 44.1 kHz) has no
//! such conditioning, and its downsampling convs pad one more zero for odd strides.

use burn::tensor::activation::tanh;
use burn::tensor::{FloatDType, Tensor};

use super::conv::{CausalConv, CausalTransposeConv, ConvSpec, ConvTails};
use super::nn::zeros_like_type;
use super::snake::Snake;
use crate::config::{Architecture, AudioVaeConfig};
use crate::error::{Error, Result};
use crate::weights::WeightLoader;

/// `x + conv1x1(snake(dwconv_k7_dil(snake(x))))`.
#[derive(Debug, Clone)]
struct ResidualUnit {
    snake_1: Snake,
    conv_1: CausalConv,
    snake_2: Snake,
    conv_2: CausalConv,
}

impl ResidualUnit {
    fn load(w: &mut WeightLoader, name: &str, channels: usize, dilation: usize, groups: usize) -> Self {
        let dilated = ConvSpec::causal(channels, channels, 7).dilated(dilation).grouped(groups);
        ResidualUnit {
            snake_1: Snake::load(w, &format!("{name}.block.0"), channels),
            conv_1: CausalConv::load(w, &format!("{name}.block.1"), dilated),
            snake_2: Snake::load(w, &format!("{name}.block.2"), channels),
            conv_2: CausalConv::load(w, &format!("{name}.block.3"), ConvSpec::causal(channels, channels, 1)),
        }
    }

    /// The three units of a block, dilations 1, 3, 9, at `{name}.block.{first..first+3}`.
    fn triple(w: &mut WeightLoader, name: &str, first: usize, channels: usize, groups: usize) -> Vec<Self> {
        [1, 3, 9]
            .iter()
            .enumerate()
            .map(|(i, &d)| Self::load(w, &format!("{name}.block.{}", first + i), channels, d, groups))
            .collect()
    }

    fn forward(&self, x: Tensor<3>, tails: &mut Option<&mut ConvTails>) -> Tensor<3> {
        let y = self.conv_1.forward_stream(self.snake_1.forward(x.clone()), tails);
        let y = self.conv_2.forward_stream(self.snake_2.forward(y), tails);
        x + y
    }
}

#[derive(Debug, Clone)]
struct EncoderBlock {
    units: Vec<ResidualUnit>,
    snake: Snake,
    down: CausalConv,
}

#[derive(Debug, Clone)]
struct DecoderBlock {
    /// Per-channel `(scale, bias)` for the configured output rate, applied to the block input.
    rate_condition: Option<(Tensor<3>, Tensor<3>)>,
    snake: Snake,
    up: CausalTransposeConv,
    units: Vec<ResidualUnit>,
}

#[derive(Debug, Clone)]
pub struct AudioVae {
    encoder_input: CausalConv,
    encoder_blocks: Vec<EncoderBlock>,
    fc_mu: CausalConv,
    decoder_input: Vec<CausalConv>,
    decoder_blocks: Vec<DecoderBlock>,
    decoder_snake: Snake,
    decoder_output: CausalConv,
    config: AudioVaeConfig,
}

impl AudioVae {
    /// Loads the VAE from its own file (keys without the `audio_vae.` prefix). It stays in f32
    /// on every device, as the official model keeps it whatever the LM's dtype: its long
    /// convolutions and Snake's `sin` lose too much in half precision.
    pub fn load(w: &mut WeightLoader, config: &AudioVaeConfig, architecture: Architecture) -> Self {
        w.in_f32(|w| Self::load_layers(w, config, architecture))
    }

    fn load_layers(w: &mut WeightLoader, config: &AudioVaeConfig, architecture: Architecture) -> Self {
        let c = config;
        let groups_for = |channels: usize| if c.depthwise { channels } else { 1 };

        let mut width = c.encoder_dim;
        let encoder_input = CausalConv::load(w, "encoder.block.0", ConvSpec::causal(1, width, 7));
        let mut encoder_blocks = Vec::new();
        for (i, &s) in c.encoder_rates.iter().enumerate() {
            let name = format!("encoder.block.{}", i + 1);
            encoder_blocks.push(EncoderBlock {
                units: ResidualUnit::triple(w, &name, 0, width, groups_for(width)),
                snake: Snake::load(w, &format!("{name}.block.3"), width),
                down: CausalConv::load(
                    w,
                    &format!("{name}.block.4"),
                    ConvSpec::downsampling(width, 2 * width, s, downsampling_left_pad(architecture, s)),
                ),
            });
            width *= 2;
        }
        let fc_mu = CausalConv::load(w, "encoder.fc_mu", ConvSpec::causal(width, c.latent_dim, 3));
        w.skip("encoder.fc_logvar.weight_g", &[c.latent_dim, 1, 1]);
        w.skip("encoder.fc_logvar.weight_v", &[c.latent_dim, width, 3]);
        w.skip("encoder.fc_logvar.bias", &[c.latent_dim]);

        let bucket = c.sr_bin_boundaries.as_ref().map(|bounds| {
            // torch.bucketize(right=False): the number of boundaries strictly below the rate.
            let stored = w.values("decoder.sr_bin_boundaries", &[bounds.len()]);
            if stored.is_some_and(|s| s.iter().zip(bounds).any(|(a, &b)| *a != b as f32)) {
                w.report(format!("tensor decoder.sr_bin_boundaries differs from the config's {bounds:?}"));
            }
            (bounds.iter().filter(|&&b| b < c.out_sample_rate).count(), bounds.len() + 1)
        });

        let latent = c.latent_dim;
        let mut decoder_input = Vec::new();
        if c.depthwise {
            let depthwise = ConvSpec::causal(latent, latent, 7).grouped(latent);
            decoder_input.push(CausalConv::load(w, "decoder.model.0", depthwise));
            decoder_input.push(CausalConv::load(w, "decoder.model.1", ConvSpec::causal(latent, c.decoder_dim, 1)));
        } else {
            decoder_input.push(CausalConv::load(w, "decoder.model.0", ConvSpec::causal(latent, c.decoder_dim, 7)));
        }
        let first_block = decoder_input.len();
        let mut width = c.decoder_dim;
        let mut decoder_blocks = Vec::new();
        for (i, &s) in c.decoder_rates.iter().enumerate() {
            let index = first_block + i;
            let name = format!("decoder.model.{index}");
            let out = width / 2;
            let rate_condition = bucket.map(|(b, buckets)| {
                let row = |table: Tensor<2>| table.slice_dim(0, b..b + 1).reshape([1, width, 1]);
                let cond = format!("decoder.sr_cond_model.{index}");
                let scale = w.tensor(&format!("{cond}.scale_embed.weight"), [buckets, width]);
                let bias = w.tensor(&format!("{cond}.bias_embed.weight"), [buckets, width]);
                (row(scale), row(bias))
            });
            decoder_blocks.push(DecoderBlock {
                rate_condition,
                snake: Snake::load(w, &format!("{name}.block.0"), width),
                up: CausalTransposeConv::load(w, &format!("{name}.block.1"), width, out, s),
                units: ResidualUnit::triple(w, &name, 2, out, groups_for(out)),
            });
            width = out;
        }
        let last = first_block + c.decoder_rates.len();
        let decoder_snake = Snake::load(w, &format!("decoder.model.{last}"), width);
        let decoder_output = CausalConv::load(w, &format!("decoder.model.{}", last + 1), ConvSpec::causal(width, 1, 7));

        AudioVae {
            encoder_input,
            encoder_blocks,
            fc_mu,
            decoder_input,
            decoder_blocks,
            decoder_snake,
            decoder_output,
            config: config.clone(),
        }
    }

    pub fn config(&self) -> &AudioVaeConfig {
        &self.config
    }

    /// Audio `[B, 1, S]` at the encoder rate to latents `[B, D, ceil(S/hop)]` (the mean; the
    /// input is zero-padded on the right to a whole number of frames, as the reference does).
    pub fn encode(&self, audio: Tensor<3>) -> Result<Tensor<3>> {
        let [b, c, len] = audio.dims();
        let hop = self.config.encoder_hop();
        if c != 1 || len == 0 {
            return Err(Error::InvalidInput(format!(
                "VAE encoder needs [B, 1, samples>0] audio, got [{b}, {c}, {len}]"
            )));
        }
        let audio = audio.cast(FloatDType::F32);
        let padded = len.div_ceil(hop) * hop;
        let audio = if padded > len {
            Tensor::cat(vec![audio.clone(), zeros_like_type(&audio, [b, 1, padded - len])], 2)
        } else {
            audio
        };
        let mut x = self.encoder_input.forward(audio);
        for block in &self.encoder_blocks {
            for unit in &block.units {
                x = unit.forward(x, &mut None);
            }
            x = block.down.forward(block.snake.forward(x));
        }
        Ok(self.fc_mu.forward(x))
    }

    /// Latents `[B, D, F]` to audio `[B, 1, F·hop]` at the output rate.
    pub fn decode(&self, latents: Tensor<3>) -> Tensor<3> {
        self.decode_inner(latents, &mut None)
    }

    /// Decodes the next chunk of a stream: the concatenated outputs of successive calls equal
    /// the offline decode of the concatenated latents (§6.6), so streamed audio never clicks.
    pub fn decode_chunk(&self, latents: Tensor<3>, stream: &mut DecoderStream) -> Tensor<3> {
        stream.tails.rewind();
        self.decode_inner(latents, &mut Some(&mut stream.tails))
    }

    /// Latents in any float type; the decoder runs (and answers) in f32.
    fn decode_inner(&self, latents: Tensor<3>, tails: &mut Option<&mut ConvTails>) -> Tensor<3> {
        let mut x = latents.cast(FloatDType::F32);
        for conv in &self.decoder_input {
            x = conv.forward_stream(x, tails);
        }
        for block in &self.decoder_blocks {
            if let Some((scale, bias)) = &block.rate_condition {
                x = x * scale.clone() + bias.clone();
            }
            x = block.up.forward(block.snake.forward(x), tails);
            for unit in &block.units {
                x = unit.forward(x, tails);
            }
        }
        tanh(self.decoder_output.forward_stream(self.decoder_snake.forward(x), tails))
    }
}

/// Zeros before the input of a stride-`s` downsampling conv: the official `CausalConv1d` pads
/// `2·padding` with `padding = ceil(s/2)`, from which v2 takes back `output_padding = s % 2`;
/// v1 does not, so for odd `s` its windows start one sample earlier.
fn downsampling_left_pad(architecture: Architecture, stride: usize) -> usize {
    match architecture {
        Architecture::V1 => 2 * stride.div_ceil(2),
        Architecture::V2 => stride,
    }
}

/// The state a streaming decode carries between chunks: for every causal conv the last inputs
/// it will need as left context. Start a new one per utterance. Exact for both architectures
/// (the chunks equal one offline decode); v1's official stream re-decodes a window instead,
/// see [`crate::pipeline::TextToSpeech::speak_streaming`].
#[derive(Debug, Default)]
pub struct DecoderStream {
    tails: ConvTails,
}

impl DecoderStream {
    pub fn new() -> Self {
        Self::default()
    }
}
