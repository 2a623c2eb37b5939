//! LocDiT (§5.5): the velocity estimator of the flow-matching head, attended bidirectionally.
//! Its sequence is `[mu_lm, mu_res, time, cond patch, noisy patch]` in v2 and
//! `[mu + time, cond patch, noisy patch]` in v1 (`VoxCPMLocDiT`). The two have the same
//! parameters, so only the architecture tells them apart: v1 weights run by the v2 layout load
//! without complaint and compute something else.

use burn::tensor::activation::silu;
use burn::tensor::{Tensor, TensorData};

use super::minicpm::MiniCpmStack;
use super::nn::Linear;
use super::rope::Rope;
use crate::config::{Architecture, StackConfig};
use crate::weights::WeightLoader;

#[derive(Debug, Clone)]
struct TimestepMlp {
    linear_1: Linear,
    linear_2: Linear,
}

impl TimestepMlp {
    fn load(w: &mut WeightLoader, name: &str, h: usize) -> Self {
        TimestepMlp {
            linear_1: Linear::load(w, &format!("{name}.linear_1"), h, h, true),
            linear_2: Linear::load(w, &format!("{name}.linear_2"), h, h, true),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.linear_2.forward(silu(self.linear_1.forward(x)))
    }

    fn linears_mut(&mut self) -> [&mut Linear; 2] {
        [&mut self.linear_1, &mut self.linear_2]
    }
}

#[derive(Debug, Clone)]
pub struct LocDit {
    in_proj: Linear,
    cond_proj: Linear,
    out_proj: Linear,
    time_mlp: TimestepMlp,
    delta_time_mlp: TimestepMlp,
    decoder: MiniCpmStack,
    architecture: Architecture,
}

impl LocDit {
    pub fn load(
        w: &mut WeightLoader,
        config: &StackConfig,
        feat_dim: usize,
        rope: Rope,
        architecture: Architecture,
    ) -> Self {
        let h = config.hidden_size;
        let p = "feat_decoder.estimator";
        LocDit {
            in_proj: Linear::load(w, &format!("{p}.in_proj"), feat_dim, h, true),
            cond_proj: Linear::load(w, &format!("{p}.cond_proj"), feat_dim, h, true),
            out_proj: Linear::load(w, &format!("{p}.out_proj"), h, feat_dim, true),
            time_mlp: TimestepMlp::load(w, &format!("{p}.time_mlp"), h),
            delta_time_mlp: TimestepMlp::load(w, &format!("{p}.delta_time_mlp"), h),
            decoder: MiniCpmStack::load(w, &format!("{p}.decoder"), config, Some(rope)),
            architecture,
        }
    }

    /// Whether the layers run on [`crate::kernels`] (burn's CPU device) rather than burn's ops.
    pub fn uses_cpu_kernels(&self) -> bool {
        self.in_proj.is_packed()
    }

    /// Every linear layer, for adapters.
    pub fn linears_mut(&mut self) -> Vec<&mut Linear> {
        let mut out = vec![&mut self.in_proj, &mut self.cond_proj, &mut self.out_proj];
        out.extend(self.time_mlp.linears_mut());
        out.extend(self.delta_time_mlp.linears_mut());
        out.extend(self.decoder.linears_mut());
        out
    }

    /// Velocity for `x` `[N, D, P]` at times `t`, `dt` `[N]` given `mu` (`[N, H]` in v1;
    /// `[N, 2·H]` in v2, its two tokens side by side) and the previous patch `cond` `[N, D, P']`.
    pub fn forward(&self, x: Tensor<3>, mu: Tensor<2>, t: &[f32], cond: Tensor<3>, dt: &[f32]) -> Tensor<3> {
        let n = x.dims()[0];
        let h = self.decoder.config().hidden_size;
        let x = self.in_proj.forward(x.swap_dims(1, 2));
        let cond = self.cond_proj.forward(cond.swap_dims(1, 2));
        let (patch, prefix) = (x.dims()[1], cond.dims()[1]);
        let device = x.device();
        let embed = |times: &[f32]| Tensor::from_data(TensorData::new(sinusoidal(times, h), [n, h]), &device);
        let time = self.time_mlp.forward(embed(t)) + self.delta_time_mlp.forward(embed(dt));
        let conditioning = match self.architecture {
            Architecture::V1 => (mu + time).unsqueeze_dim(1),
            Architecture::V2 => Tensor::cat(vec![mu.reshape([n, 2, h]), time.unsqueeze_dim(1)], 1),
        };
        let seq = Tensor::cat(vec![conditioning, cond, x], 1);
        let hidden = self.decoder.forward(seq);
        let start = self.architecture.dit_prefix_tokens() + prefix;
        let out = self.out_proj.forward(hidden.slice_dim(1, start..start + patch));
        out.swap_dims(1, 2)
    }
}

/// Sinusoidal time embedding, `[sin(a), cos(a)]` with `a = 1000·t·exp(-j·ln(10000)/(half-1))`,
/// computed in f32 in the reference's order.
fn sinusoidal(times: &[f32], dim: usize) -> Vec<f32> {
    let half = dim / 2;
    let step = (10000f64.ln() / (half as f64 - 1.0)) as f32;
    let freqs: Vec<f32> = (0..half).map(|j| (j as f32 * -step).exp()).collect();
    let mut out = Vec::with_capacity(times.len() * dim);
    for &t in times {
        let angles: Vec<f32> = freqs.iter().map(|f| 1000.0 * t * f).collect();
        out.extend(angles.iter().map(|a| a.sin()));
        out.extend(angles.iter().map(|a| a.cos()));
    }
    out
}
