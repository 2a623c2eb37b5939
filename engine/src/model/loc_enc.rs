//! LocEnc (§5.4): turns each latent patch into one vector through a bidirectional stack whose
//! first token is a learned CLS ("special") token.

use burn::tensor::Tensor;

use super::minicpm::MiniCpmStack;
use super::nn::Linear;
use super::rope::Rope;
use crate::config::StackConfig;
use crate::weights::WeightLoader;

#[derive(Debug, Clone)]
pub struct LocEnc {
    in_proj: Linear,
    special_token: Tensor<1>,
    encoder: MiniCpmStack,
}

impl LocEnc {
    pub fn load(w: &mut WeightLoader, config: &StackConfig, feat_dim: usize, rope: Rope) -> Self {
        let h = config.hidden_size;
        LocEnc {
            in_proj: Linear::load(w, "feat_encoder.in_proj", feat_dim, h, true),
            special_token: w.tensor("feat_encoder.special_token", [1, 1, 1, h]).reshape([h]),
            encoder: MiniCpmStack::load(w, "feat_encoder.encoder", config, Some(rope)),
        }
    }

    /// Every linear layer, for adapters.
    pub fn linears_mut(&mut self) -> Vec<&mut Linear> {
        let mut out = vec![&mut self.in_proj];
        out.extend(self.encoder.linears_mut());
        out
    }

    /// `[B, T, P, D]` patches to `[B, T, H_enc]`.
    pub fn forward(&self, patches: Tensor<4>) -> Tensor<3> {
        let [b, t, p, _] = patches.dims();
        let h = self.encoder.config().hidden_size;
        let x = self.in_proj.forward(patches).reshape([b * t, p, h]);
        let cls = self.special_token.clone().reshape([1, 1, h]).expand([b * t, 1, h]);
        let out = self.encoder.forward(Tensor::cat(vec![cls, x], 1));
        out.slice_dim(1, 0..1).reshape([b, t, h])
    }
}
