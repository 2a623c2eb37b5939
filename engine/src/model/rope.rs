//! MiniCPM LongRoPE tables (architecture doc §4.4), built once per model and shared by every
//! stack that uses RoPE (they all have the LM's head dim).

use burn::tensor::{Device, Tensor, TensorData};

use crate::config::LmConfig;

#[derive(Debug, Clone)]
pub struct Rope {
    /// `[positions, head_dim]`
    cos: Tensor<2>,
    sin: Tensor<2>,
}

impl Rope {
    /// Tables for positions `0..positions`. The values do not depend on how many rows are
    /// built: the factor list and scaling come from the config's position limits, exactly as
    /// the official code builds its full `max_position_embeddings` table.
    pub fn new(lm: &LmConfig, head_dim: usize, positions: usize, device: &Device) -> Self {
        let scaling = &lm.rope_scaling;
        let original = scaling.original_max_position_embeddings as f64;
        let scale = lm.max_position_embeddings as f64 / original;
        let scaling_factor = ((1.0 + scale.ln() / original.ln()).sqrt()) as f32;
        let factors = if lm.max_position_embeddings > scaling.original_max_position_embeddings {
            &scaling.long_factor
        } else {
            &scaling.short_factor
        };
        let half = head_dim / 2;
        // Same f32 operation order as the reference: (p · (1/factor)) · inv_freq.
        let inv_freq: Vec<f32> =
            (0..half).map(|i| 1.0 / (lm.rope_theta as f32).powf((2 * i) as f32 / head_dim as f32)).collect();
        let inv_factor: Vec<f32> = factors.iter().map(|&f| 1.0 / f as f32).collect();
        let mut cos = Vec::with_capacity(positions * head_dim);
        let mut sin = Vec::with_capacity(positions * head_dim);
        for p in 0..positions {
            let angles: Vec<f32> = (0..half).map(|i| (p as f32 * inv_factor[i]) * inv_freq[i]).collect();
            for _ in 0..2 {
                cos.extend(angles.iter().map(|a| a.cos() * scaling_factor));
                sin.extend(angles.iter().map(|a| a.sin() * scaling_factor));
            }
        }
        let shape = [positions, head_dim];
        Rope {
            cos: Tensor::from_data(TensorData::new(cos, shape), device),
            sin: Tensor::from_data(TensorData::new(sin, shape), device),
        }
    }

    /// Rotates `x` `[B, heads, T, d]` whose rows sit at positions `start..start + T`
    /// (rotate-half convention).
    pub fn apply(&self, x: Tensor<4>, start: usize) -> Tensor<4> {
        let [_, _, t, d] = x.dims();
        let cos = self.cos.clone().slice([start..start + t, 0..d]).unsqueeze::<4>();
        let sin = self.sin.clone().slice([start..start + t, 0..d]).unsqueeze::<4>();
        let half = d / 2;
        let first = x.clone().slice_dim(3, 0..half);
        let second = x.clone().slice_dim(3, half..d);
        let rotated = Tensor::cat(vec![second.neg(), first], 3);
        x * cos + rotated * sin
    }
}
