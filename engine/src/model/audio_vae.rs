//! AudioVAE V2 (§5.9): a causal, weight-normed, depthwise DAC-style autoencoder. The encoder
//! turns prompt audio at 16 kHz into latents; the decoder turns latents into 48 kHz audio,
//! conditioned on the output rate.

use std::sync::Arc;

use burn::tensor::activation::tanh;
use burn::tensor::module::{conv_transpose1d, conv1d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, FloatDType, Tensor, TensorData};

use super::nn::{to_vec, zeros_like_type};
use super::snake::Snake;
use crate::config::AudioVaeConfig;
use crate::error::{Error, Result};
use crate::kernels::conv::{Conv1d, ConvTranspose1d};
use crate::weights::WeightLoader;

/// Where a conv's weights live and who multiplies by them. (A few dozen of these exist: the
/// size of the tensor handles in one variant does not matter.)
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
enum ConvWeights<Cpu> {
    /// The CPU backend: [`crate::kernels::conv`] (shared, so a cloned model holds them once).
    Cpu(Arc<Cpu>),
    /// Other backends, and groupings the CPU path lacks: burn's convolutions.
    Tensor { weight: Tensor<3>, bias: Tensor<1> },
}

impl<Cpu> ConvWeights<Cpu> {
    /// Weight-normed `name` of `shape` with its bias `[bias_len]`, for the CPU path where
    /// `cpu` accepts it on the flex device.
    fn load(
        w: &mut WeightLoader,
        name: &str,
        shape: [usize; 3],
        bias_len: usize,
        cpu: impl FnOnce(&[f32], &[f32]) -> Option<Cpu>,
    ) -> Self {
        let bias_name = format!("{name}.bias");
        if *w.device() != Device::flex() {
            return ConvWeights::Tensor { weight: w.weight_norm(name, shape), bias: w.tensor(&bias_name, [bias_len]) };
        }
        let device = w.device().clone();
        let (weight, bias) = (w.weight_norm_values(name, shape), w.values(&bias_name, &[bias_len]));
        let (Some(weight), Some(bias)) = (weight, bias) else {
            // A stand-in so that loading goes on and reports every problem; never run.
            return ConvWeights::Tensor {
                weight: Tensor::zeros(shape, &device),
                bias: Tensor::zeros([bias_len], &device),
            };
        };
        match cpu(&weight, &bias) {
            Some(kernel) => ConvWeights::Cpu(Arc::new(kernel)),
            None => ConvWeights::Tensor {
                weight: Tensor::from_data(TensorData::new(weight, shape), &device),
                bias: Tensor::from_data(TensorData::new(bias, [bias_len]), &device),
            },
        }
    }
}

/// Runs a CPU conv on each batch item of `x` `[B, C, T]`, giving `[B, c_out, t_out]`.
fn per_item(x: Tensor<3>, c_out: usize, t_out: usize, run: impl Fn(&[f32], usize) -> Vec<f32>) -> Tensor<3> {
    let [b, c, t] = x.dims();
    let device = x.device();
    if c * t == 0 || t_out == 0 {
        return Tensor::zeros([b, c_out, t_out], &device);
    }
    let input = to_vec(x).expect("converted to f32 by to_vec");
    let mut items = input.chunks_exact(c * t).map(|item| run(item, t));
    let mut out = items.next().expect("one item at least");
    items.for_each(|item| out.extend_from_slice(&item));
    Tensor::from_data(TensorData::new(out, [b, c_out, t_out]), &device)
}

/// Weight-normed conv with zero left padding so output `i` sees inputs `≤ i`.
#[derive(Debug, Clone)]
struct CausalConv {
    weights: ConvWeights<Conv1d>,
    c_out: usize,
    stride: usize,
    dilation: usize,
    groups: usize,
    left_pad: usize,
}

impl CausalConv {
    #[allow(clippy::too_many_arguments)]
    fn load(
        w: &mut WeightLoader,
        name: &str,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        groups: usize,
        left_pad: usize,
    ) -> Self {
        let weights = ConvWeights::load(w, name, [c_out, c_in / groups, kernel], c_out, |weight, bias| {
            Conv1d::new(weight, bias, c_in, c_out, kernel, stride, dilation, groups)
        });
        CausalConv { weights, c_out, stride, dilation, groups, left_pad }
    }

    /// Kernel-size-`k` conv, dilation `d`, stride 1: the reference pads `(k−1)·d` on the left.
    fn same(w: &mut WeightLoader, name: &str, c_in: usize, c_out: usize, k: usize, d: usize, groups: usize) -> Self {
        Self::load(w, name, c_in, c_out, k, 1, d, groups, (k - 1) * d)
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.conv(x, self.left_pad)
    }

    /// Streaming form: the left padding is the tail of the previous chunk's input (zeros at the
    /// start), so chunk after chunk gives exactly the offline output.
    fn forward_stream(&self, x: Tensor<3>, stream: &mut Option<&mut DecoderStream>) -> Tensor<3> {
        let Some(stream) = stream.as_deref_mut() else {
            return self.forward(x);
        };
        if self.left_pad == 0 {
            return self.conv(x, 0);
        }
        let full = stream.prepend_tail(x, self.left_pad);
        self.conv(full, 0)
    }

    fn conv(&self, x: Tensor<3>, left_pad: usize) -> Tensor<3> {
        match &self.weights {
            ConvWeights::Cpu(conv) => {
                let t_out = conv.output_len(x.dims()[2], left_pad);
                per_item(x, self.c_out, t_out, |item, t| conv.forward(item, t, left_pad))
            }
            ConvWeights::Tensor { weight, bias } => {
                let options = ConvOptions {
                    stride: [self.stride],
                    padding: [(left_pad, 0)],
                    dilation: [self.dilation],
                    groups: self.groups,
                };
                conv1d(x, weight.clone(), Some(bias.clone()), options)
            }
        }
    }
}

/// Weight-normed transposed conv (kernel 2s, stride s) cropped to exactly `s` samples per input.
#[derive(Debug, Clone)]
struct CausalTransposeConv {
    weights: ConvWeights<ConvTranspose1d>,
    c_out: usize,
    stride: usize,
}

impl CausalTransposeConv {
    fn load(w: &mut WeightLoader, name: &str, c_in: usize, c_out: usize, stride: usize) -> Self {
        let kernel = 2 * stride;
        let weights = ConvWeights::load(w, name, [c_in, c_out, kernel], c_out, |weight, bias| {
            Some(ConvTranspose1d::new(weight, bias, c_in, c_out, kernel, stride))
        });
        CausalTransposeConv { weights, c_out, stride }
    }

    /// `L` input frames give `L·s` samples. Offline, the (L+1)·s raw outputs lose their last
    /// `s`; streaming, the previous chunk's last frame is prepended (the kernel spans two
    /// frames) and its `s` samples are cropped on the left as well.
    fn forward(&self, x: Tensor<3>, stream: &mut Option<&mut DecoderStream>) -> Tensor<3> {
        let s = self.stride;
        let (x, left) = match stream.as_deref_mut() {
            Some(stream) => (stream.prepend_tail(x, 1), s),
            None => (x, 0),
        };
        let out = match &self.weights {
            ConvWeights::Cpu(conv) => {
                let t_out = (x.dims()[2] + 1) * s;
                per_item(x, self.c_out, t_out, |item, t| conv.forward(item, t))
            }
            ConvWeights::Tensor { weight, bias } => {
                let options = ConvTransposeOptions::new([s], [0], [0], [1], 1);
                conv_transpose1d(x, weight.clone(), Some(bias.clone()), options)
            }
        };
        let len = out.dims()[2];
        out.slice_dim(2, left..len - s)
    }
}

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
        ResidualUnit {
            snake_1: Snake::load(w, &format!("{name}.block.0"), channels),
            conv_1: CausalConv::same(w, &format!("{name}.block.1"), channels, channels, 7, dilation, groups),
            snake_2: Snake::load(w, &format!("{name}.block.2"), channels),
            conv_2: CausalConv::same(w, &format!("{name}.block.3"), channels, channels, 1, 1, 1),
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

    fn forward(&self, x: Tensor<3>, stream: &mut Option<&mut DecoderStream>) -> Tensor<3> {
        let y = self.conv_1.forward_stream(self.snake_1.forward(x.clone()), stream);
        let y = self.conv_2.forward_stream(self.snake_2.forward(y), stream);
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
    pub fn load(w: &mut WeightLoader, config: &AudioVaeConfig) -> Self {
        w.in_f32(|w| Self::load_layers(w, config))
    }

    fn load_layers(w: &mut WeightLoader, config: &AudioVaeConfig) -> Self {
        let c = config;
        let groups_for = |channels: usize| if c.depthwise { channels } else { 1 };

        let mut width = c.encoder_dim;
        let encoder_input = CausalConv::same(w, "encoder.block.0", 1, width, 7, 1, 1);
        let mut encoder_blocks = Vec::new();
        for (i, &s) in c.encoder_rates.iter().enumerate() {
            let name = format!("encoder.block.{}", i + 1);
            encoder_blocks.push(EncoderBlock {
                units: ResidualUnit::triple(w, &name, 0, width, groups_for(width)),
                snake: Snake::load(w, &format!("{name}.block.3"), width),
                down: CausalConv::load(w, &format!("{name}.block.4"), width, 2 * width, 2 * s, s, 1, 1, s),
            });
            width *= 2;
        }
        let fc_mu = CausalConv::same(w, "encoder.fc_mu", width, c.latent_dim, 3, 1, 1);
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

        let mut decoder_input = Vec::new();
        if c.depthwise {
            decoder_input.push(CausalConv::same(w, "decoder.model.0", c.latent_dim, c.latent_dim, 7, 1, c.latent_dim));
            decoder_input.push(CausalConv::same(w, "decoder.model.1", c.latent_dim, c.decoder_dim, 1, 1, 1));
        } else {
            decoder_input.push(CausalConv::same(w, "decoder.model.0", c.latent_dim, c.decoder_dim, 7, 1, 1));
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
        let decoder_output = CausalConv::same(w, &format!("decoder.model.{}", last + 1), width, 1, 7, 1, 1);

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
        stream.cursor = 0;
        self.decode_inner(latents, &mut Some(stream))
    }

    /// Latents in any float type; the decoder runs (and answers) in f32.
    fn decode_inner(&self, latents: Tensor<3>, stream: &mut Option<&mut DecoderStream>) -> Tensor<3> {
        let mut x = latents.cast(FloatDType::F32);
        for conv in &self.decoder_input {
            x = conv.forward_stream(x, stream);
        }
        for block in &self.decoder_blocks {
            if let Some((scale, bias)) = &block.rate_condition {
                x = x * scale.clone() + bias.clone();
            }
            x = block.up.forward(block.snake.forward(x), stream);
            for unit in &block.units {
                x = unit.forward(x, stream);
            }
        }
        tanh(self.decoder_output.forward_stream(self.decoder_snake.forward(x), stream))
    }
}

/// The state a streaming decode carries between chunks: for every causal conv the last inputs
/// it will need as left context, in the order the decoder visits them. Start a new one per
/// utterance.
#[derive(Debug, Default)]
pub struct DecoderStream {
    tails: Vec<Tensor<3>>,
    cursor: usize,
}

impl DecoderStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// `[tail, x]` for the conv at the cursor, keeping its last `width` samples as the next
    /// tail; the first chunk's tail is zeros, the offline zero padding.
    fn prepend_tail(&mut self, x: Tensor<3>, width: usize) -> Tensor<3> {
        let [b, c, _] = x.dims();
        if self.cursor == self.tails.len() {
            self.tails.push(zeros_like_type(&x, [b, c, width]));
        }
        let tail = std::mem::replace(&mut self.tails[self.cursor], Tensor::empty([0, 0, 0], &x.device()));
        let full = Tensor::cat(vec![tail, x], 2);
        let len = full.dims()[2];
        self.tails[self.cursor] = full.clone().slice_dim(2, len - width..len);
        self.cursor += 1;
        full
    }
}
