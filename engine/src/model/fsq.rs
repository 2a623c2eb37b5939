//! Finite scalar quantisation between the base LM and everything after it (§5.2).

use burn::tensor::Tensor;
use burn::tensor::activation::tanh;

use super::nn::{Linear, in_f32};
use crate::weights::WeightLoader;

#[derive(Debug, Clone)]
pub struct Fsq {
    in_proj: Linear,
    out_proj: Linear,
    scale: f64,
}

impl Fsq {
    /// Loaded and run in f32 on every device: a half-precision weight or activation moves
    /// values across rounding boundaries, and each such flip is a whole quantisation step.
    pub fn load(w: &mut WeightLoader, hidden: usize, latent: usize, scale: u32) -> Self {
        w.in_f32(|w| Fsq {
            in_proj: Linear::load(w, "fsq_layer.in_proj", hidden, latent, true),
            out_proj: Linear::load(w, "fsq_layer.out_proj", latent, hidden, true),
            scale: scale as f64,
        })
    }

    /// `out_proj(round(tanh(in_proj(x)) · s) / s)`, rounding half to even like `torch.round`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        in_f32(x, |x| {
            let h = tanh(self.in_proj.forward(x));
            let quantized = (h * self.scale).round() / self.scale;
            self.out_proj.forward(quantized)
        })
    }
}
