//! The AudioVAE's causal, weight-normed convolutions (architecture doc §5.9). Each runs on
//! [`crate::kernels::conv`] or on burn's ops, as the weight loader decided
//! ([`WeightLoader::uses_cpu_kernels`]).

use std::sync::Arc;

use burn::tensor::module::{conv_transpose1d, conv1d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Tensor, TensorData};

use super::nn::{to_vec, zeros_like_type};
use crate::kernels::conv::{Conv1d, ConvTranspose1d};
use crate::weights::WeightLoader;

/// A conv's shape in the terms of PyTorch's `Conv1d`, plus the zeros it reads before its input.
/// Made by the constructors below, which keep the padding causal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvSpec {
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    groups: usize,
    /// Zeros read before the input; none come after it, which makes the conv causal.
    left_pad: usize,
}

impl ConvSpec {
    /// Stride 1 with `kernel − 1` zeros on the left: one output per input.
    pub fn causal(c_in: usize, c_out: usize, kernel: usize) -> Self {
        ConvSpec { c_in, c_out, kernel, stride: 1, dilation: 1, groups: 1, left_pad: kernel - 1 }
    }

    /// A [`causal`](Self::causal) conv dilated by `dilation`: the left padding grows to
    /// `(kernel − 1)·dilation`, still one output per input.
    pub fn dilated(self, dilation: usize) -> Self {
        debug_assert_eq!(self.stride, 1, "only stride-1 convs keep their length when dilated");
        ConvSpec { dilation, left_pad: (self.kernel - 1) * dilation, ..self }
    }

    /// The channels split into `groups` independent groups (`groups = c_in`: depthwise).
    pub fn grouped(self, groups: usize) -> Self {
        ConvSpec { groups, ..self }
    }

    /// The encoder's downsampling conv: kernel `2s`, stride `s` and `left_pad` zeros on the
    /// left. With `s` (v2) or `s + 1` (v1's `2·ceil(s/2)` for odd `s`) zeros, `s·n` inputs give
    /// `n` outputs; the extra zero shifts every window one sample earlier.
    pub fn downsampling(c_in: usize, c_out: usize, stride: usize, left_pad: usize) -> Self {
        debug_assert!((stride..=stride + 1).contains(&left_pad), "keeps s·n inputs to n outputs");
        ConvSpec { c_in, c_out, kernel: 2 * stride, stride, dilation: 1, groups: 1, left_pad }
    }

    /// PyTorch's weight layout `[c_out, c_in / groups, kernel]`.
    fn weight_shape(&self) -> [usize; 3] {
        [self.c_out, self.c_in / self.groups, self.kernel]
    }

    /// The CPU kernel for this conv (`None` for groupings it lacks), from `weight` laid out as
    /// [`weight_shape`](Self::weight_shape) says.
    fn cpu_kernel(&self, weight: &[f32], bias: &[f32]) -> Option<Conv1d> {
        Conv1d::new(weight, bias, self.c_in, self.c_out, self.kernel, self.stride, self.dilation, self.groups)
    }
}

/// Who multiplies by a conv's weights. (A few dozen of these exist: the size of the tensor
/// handles in one variant does not matter.)
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
enum ConvWeights<Cpu> {
    /// [`crate::kernels::conv`] (shared, so a cloned model holds them once).
    Cpu(Arc<Cpu>),
    /// burn's convolutions: on devices without CPU kernels, and for groupings the kernels lack.
    Tensor { weight: Tensor<3>, bias: Tensor<1> },
}

impl<Cpu> ConvWeights<Cpu> {
    /// Weight-normed `name` of `shape` with its bias `[bias_len]`: for the CPU kernels where the
    /// loader uses them and `cpu` accepts the weights, for burn's ops otherwise.
    fn load(
        w: &mut WeightLoader,
        name: &str,
        shape: [usize; 3],
        bias_len: usize,
        cpu: impl FnOnce(&[f32], &[f32]) -> Option<Cpu>,
    ) -> Self {
        let bias_name = format!("{name}.bias");
        if !w.uses_cpu_kernels() {
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

/// Weight-normed conv with zeros on the left only ([`ConvSpec::left_pad`]): causal, so a stream
/// can carry its left context from chunk to chunk.
#[derive(Debug, Clone)]
pub(crate) struct CausalConv {
    weights: ConvWeights<Conv1d>,
    spec: ConvSpec,
}

impl CausalConv {
    /// `{name}.weight_g`, `{name}.weight_v` and `{name}.bias` for a conv of `spec`.
    pub fn load(w: &mut WeightLoader, name: &str, spec: ConvSpec) -> Self {
        let weights =
            ConvWeights::load(w, name, spec.weight_shape(), spec.c_out, |weight, bias| spec.cpu_kernel(weight, bias));
        CausalConv { weights, spec }
    }

    /// Offline: the left padding is zeros.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.conv(x, self.spec.left_pad)
    }

    /// Streaming form: the left padding is the tail of the previous chunk's input (zeros at the
    /// start), so chunk after chunk gives exactly the offline output.
    pub fn forward_stream(&self, x: Tensor<3>, tails: &mut Option<&mut ConvTails>) -> Tensor<3> {
        let Some(tails) = tails.as_deref_mut() else {
            return self.forward(x);
        };
        if self.spec.left_pad == 0 {
            return self.conv(x, 0);
        }
        let full = tails.prepend_tail(x, self.spec.left_pad);
        self.conv(full, 0)
    }

    fn conv(&self, x: Tensor<3>, left_pad: usize) -> Tensor<3> {
        match &self.weights {
            ConvWeights::Cpu(conv) => {
                let t_out = conv.output_len(x.dims()[2], left_pad);
                per_item(x, self.spec.c_out, t_out, |item, t| conv.forward(item, t, left_pad))
            }
            ConvWeights::Tensor { weight, bias } => {
                let options = ConvOptions {
                    stride: [self.spec.stride],
                    padding: [(left_pad, 0)],
                    dilation: [self.spec.dilation],
                    groups: self.spec.groups,
                };
                conv1d(x, weight.clone(), Some(bias.clone()), options)
            }
        }
    }
}

/// Weight-normed transposed conv (kernel 2s, stride s) cropped to exactly `s` samples per input.
#[derive(Debug, Clone)]
pub(crate) struct CausalTransposeConv {
    weights: ConvWeights<ConvTranspose1d>,
    c_out: usize,
    stride: usize,
}

impl CausalTransposeConv {
    /// `{name}.weight_g`, `{name}.weight_v` (`[c_in, c_out, 2·stride]`) and `{name}.bias`.
    pub fn load(w: &mut WeightLoader, name: &str, c_in: usize, c_out: usize, stride: usize) -> Self {
        let kernel = 2 * stride;
        let weights = ConvWeights::load(w, name, [c_in, c_out, kernel], c_out, |weight, bias| {
            Some(ConvTranspose1d::new(weight, bias, c_in, c_out, kernel, stride))
        });
        CausalTransposeConv { weights, c_out, stride }
    }

    /// `L` input frames give `L·s` samples. Offline, the (L+1)·s raw outputs lose their last
    /// `s`; streaming, the previous chunk's last frame is prepended (the kernel spans two
    /// frames) and its `s` samples are cropped on the left as well.
    pub fn forward(&self, x: Tensor<3>, tails: &mut Option<&mut ConvTails>) -> Tensor<3> {
        let s = self.stride;
        let (x, left) = match tails.as_deref_mut() {
            Some(tails) => (tails.prepend_tail(x, 1), s),
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

/// What a chain of causal convs carries from one chunk of a stream to the next: for every
/// conv, in the order they run, the last inputs it will need as left context.
#[derive(Debug, Default)]
pub(crate) struct ConvTails {
    tails: Vec<Tensor<3>>,
    cursor: usize,
}

impl ConvTails {
    /// Back to the first conv's tail, before each chunk.
    pub fn rewind(&mut self) {
        self.cursor = 0;
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
        self.tails[self.cursor] = compact(full.clone().slice_dim(2, len - width..len));
        self.cursor += 1;
        full
    }
}

/// `view`'s values in a tensor of their own. A slice is a view of its whole source on some
/// backends (flex): kept as a tail, it would hold every conv's whole chunk input alive between
/// chunks (19 MB per stream on the released VoxCPM2), where the tails alone are well under 1 MB.
fn compact(view: Tensor<3>) -> Tensor<3> {
    let [b, c, width] = view.dims();
    zeros_like_type(&view, [b, c, width]).slice_assign([0..b, 0..c, 0..width], view)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outputs of the CPU kernel built from `spec` for `t_in` inputs after its left padding.
    fn output_len(spec: ConvSpec, t_in: usize) -> usize {
        let [c_out, per_group, kernel] = spec.weight_shape();
        let conv = spec.cpu_kernel(&vec![0.0; c_out * per_group * kernel], &vec![0.0; c_out]);
        conv.expect("a dense or depthwise spec").output_len(t_in, spec.left_pad)
    }

    #[test]
    fn causal_specs_keep_the_length_and_downsampling_divides_it() {
        let same_length = [
            ConvSpec::causal(1, 8, 7),
            ConvSpec::causal(6, 3, 3),
            ConvSpec::causal(5, 5, 1),
            ConvSpec::causal(4, 4, 7).dilated(9).grouped(4),
            ConvSpec::causal(3, 2, 7).dilated(3),
        ];
        for spec in same_length {
            for t_in in [1, 2, 19, 64] {
                assert_eq!(output_len(spec, t_in), t_in, "{spec:?}");
            }
        }
        for stride in [2, 3, 5, 7, 8] {
            for left_pad in [stride, stride + 1] {
                let spec = ConvSpec::downsampling(3, 6, stride, left_pad);
                for frames in [1, 2, 7] {
                    assert_eq!(output_len(spec, frames * stride), frames, "{spec:?}");
                }
            }
        }
    }
}
