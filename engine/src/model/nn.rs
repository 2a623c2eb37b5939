//! The two building blocks every part of the model uses: a linear layer and RMSNorm.

use burn::tensor::Tensor;
use burn::tensor::module::linear;

use super::lora::LoraDelta;
use crate::error::{Error, Result};

use crate::weights::WeightLoader;

/// `nn.Linear`, weight stored as `[in, out]`, with an optional LoRA update beside it.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Tensor<2>,
    pub bias: Option<Tensor<1>>,
    /// The official parameter prefix (`base_lm.layers.0.self_attn.q_proj`), which adapters use.
    pub name: String,
    pub lora: Option<LoraDelta>,
}

impl Linear {
    /// Loads `{name}.weight` (and `{name}.bias` when `bias` is set).
    pub fn load(w: &mut WeightLoader, name: &str, d_in: usize, d_out: usize, bias: bool) -> Self {
        let weight = w.linear_weight(&format!("{name}.weight"), d_in, d_out);
        let bias = bias.then(|| w.tensor(&format!("{name}.bias"), [d_out]));
        Linear { weight, bias, name: name.to_owned(), lora: None }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match &self.lora {
            None => linear(x, self.weight.clone(), self.bias.clone()),
            Some(delta) => linear(x.clone(), self.weight.clone(), self.bias.clone()) + delta.forward(x),
        }
    }

    /// `(d_in, d_out)`.
    pub fn dims(&self) -> (usize, usize) {
        let [d_in, d_out] = self.weight.dims();
        (d_in, d_out)
    }
}

/// MiniCPM RMSNorm (architecture doc §4.2): `x · rsqrt(mean(x²) + eps) · weight`.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    pub weight: Tensor<1>,
    pub eps: f64,
}

impl RmsNorm {
    pub fn load(w: &mut WeightLoader, name: &str, dim: usize, eps: f64) -> Self {
        RmsNorm { weight: w.tensor(&format!("{name}.weight"), [dim]), eps }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let variance = x.clone().square().mean_dim(D - 1);
        let normed = x * (variance + self.eps).sqrt().recip();
        normed * self.weight.clone().unsqueeze()
    }
}

/// Copies a float tensor back to the host.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::InvalidInput(format!("tensor readback failed: {e:?}")))
}
