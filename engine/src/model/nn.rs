//! The two building blocks every part of the model uses: a linear layer and RMSNorm.

use std::sync::Arc;

use burn::tensor::module::linear;
use burn::tensor::{FloatDType, Tensor, TensorData};

use super::lora::LoraDelta;
use crate::error::{Error, Result};
use crate::kernels::PackedMatrix;
use crate::weights::WeightLoader;

/// `nn.Linear` with an optional LoRA update beside it.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: LinearWeight,
    /// The official parameter prefix (`base_lm.layers.0.self_attn.q_proj`), which adapters use.
    pub name: String,
    pub lora: Option<LoraDelta>,
}

/// Who multiplies by the weight, as the loader chose. (A few hundred of these exist: the size
/// of the tensor handle in one variant does not matter.)
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
enum LinearWeight {
    /// The CPU kernels: packed panels in the checkpoint's precision, multiplied by
    /// [`crate::kernels`] (shared, so a cloned model holds its weights once).
    Packed { matrix: Arc<PackedMatrix>, bias: Option<Arc<[f32]>> },
    /// burn's ops: an `[in, out]` tensor for burn's matmul.
    Tensor { weight: Tensor<2>, bias: Option<Tensor<1>> },
}

impl Linear {
    /// Loads `{name}.weight` (and `{name}.bias` when `bias` is set).
    pub fn load(w: &mut WeightLoader, name: &str, d_in: usize, d_out: usize, bias: bool) -> Self {
        let weight_name = format!("{name}.weight");
        let bias_name = format!("{name}.bias");
        let weight = if w.uses_cpu_kernels() {
            let matrix = Arc::new(w.packed_linear(&weight_name, d_in, d_out));
            let bias = bias.then(|| w.values(&bias_name, &[d_out]).unwrap_or_else(|| vec![0.0; d_out]).into());
            LinearWeight::Packed { matrix, bias }
        } else {
            let weight = w.linear_weight(&weight_name, d_in, d_out);
            LinearWeight::Tensor { weight, bias: bias.then(|| w.tensor(&bias_name, [d_out])) }
        };
        Linear { weight, name: name.to_owned(), lora: None }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match &self.lora {
            None => self.base(x),
            Some(delta) => self.base(x.clone()) + delta.forward(x),
        }
    }

    fn base<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match &self.weight {
            LinearWeight::Tensor { weight, bias } => linear(x, weight.clone(), bias.clone()),
            LinearWeight::Packed { matrix, bias } => {
                let mut dims = x.dims();
                let (k, n) = matrix.dims();
                let rows = dims[..D - 1].iter().product();
                let device = x.device();
                let input = x.into_data().convert::<f32>().try_into_vec::<f32>().expect("converted to f32 just above");
                debug_assert_eq!(input.len(), rows * k);
                let out = matrix.matmul(&input, rows, bias.as_deref());
                dims[D - 1] = n;
                Tensor::from_data(TensorData::new(out, dims), &device)
            }
        }
    }

    /// Each layer of `layers` (which share their input width) applied to `x`, as
    /// `layers.iter().map(|l| l.forward(x))` computes them, bit for bit. Packed layers of one kind
    /// run as one grouped product ([`PackedMatrix::matmul_group`]): a layer's q/k/v or gate/up
    /// projections in one parallel region instead of one each. LoRA deltas stay per layer.
    pub fn forward_group<const D: usize>(layers: &[&Linear], x: Tensor<D>) -> Vec<Tensor<D>> {
        type Operand<'a> = (&'a PackedMatrix, Option<&'a [f32]>);
        let packed: Option<Vec<Operand>> = layers
            .iter()
            .map(|layer| match &layer.weight {
                LinearWeight::Packed { matrix, bias } => Some((&**matrix, bias.as_deref())),
                LinearWeight::Tensor { .. } => None,
            })
            .collect();
        let Some(packed) = packed.filter(|p| p.len() > 1 && PackedMatrix::groupable(p.iter().map(|(m, _)| *m))) else {
            return layers.iter().map(|layer| layer.forward(x.clone())).collect();
        };
        let mut dims = x.dims();
        let rows = dims[..D - 1].iter().product();
        let device = x.device();
        let input = x.clone().into_data().convert::<f32>().try_into_vec::<f32>().expect("converted to f32 just above");
        let outs = PackedMatrix::matmul_group(&packed, &input, rows);
        layers
            .iter()
            .zip(outs)
            .map(|(layer, out)| {
                dims[D - 1] = layer.dims().1;
                let base = Tensor::from_data(TensorData::new(out, dims), &device);
                match &layer.lora {
                    None => base,
                    Some(delta) => base + delta.forward(x.clone()),
                }
            })
            .collect()
    }

    /// Whether [`crate::kernels`] multiply by this layer's weight (burn's CPU device).
    pub fn is_packed(&self) -> bool {
        matches!(self.weight, LinearWeight::Packed { .. })
    }

    /// `(d_in, d_out)`.
    pub fn dims(&self) -> (usize, usize) {
        match &self.weight {
            LinearWeight::Packed { matrix, .. } => matrix.dims(),
            LinearWeight::Tensor { weight, .. } => {
                let [d_in, d_out] = weight.dims();
                (d_in, d_out)
            }
        }
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
        let normed = in_f32(x, |x| {
            let variance = x.clone().square().mean_dim(D - 1);
            x * (variance + self.eps).sqrt().recip()
        });
        normed * self.weight.clone().unsqueeze()
    }
}

/// Runs `f` on `x` in f32 and casts the result back to `x`'s type. For reductions that half
/// precision would overflow (x² past 65504) or round away, as the official code does for its
/// norms; on f32 tensors both casts are no-ops.
pub fn in_f32<const D: usize>(x: Tensor<D>, f: impl FnOnce(Tensor<D>) -> Tensor<D>) -> Tensor<D> {
    let dtype: FloatDType = x.dtype().into();
    f(x.cast(FloatDType::F32)).cast(dtype)
}

/// Zeros of `shape` on `like`'s device in `like`'s float type (which may differ from the
/// device's default: the VAE is f32 on an f16 device).
pub fn zeros_like_type<const D: usize>(like: &Tensor<D>, shape: [usize; D]) -> Tensor<D> {
    Tensor::zeros(shape, (&like.device(), like.dtype()))
}

/// Copies a float tensor back to the host.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::InvalidInput(format!("tensor readback failed: {e:?}")))
}
