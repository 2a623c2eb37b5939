//! Snake, the AudioVAE's activation: `x + sin²(αx)/(α + 1e-9)`, α per channel.
//!
//! With the CPU kernels (the weight loader decides) it is one pass over the samples (not five
//! tensor ops, each a full read and write of the activations), with a sin² the compiler
//! vectorises: libm's scalar `sinf` alone was 12 % of a benchmark run that encodes reference
//! audio.

use std::sync::Arc;

use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use super::nn::to_vec;
use crate::weights::WeightLoader;

/// Samples a parallel task takes at least (the decoder's first layers are 2048 channels of a
/// few frames each).
const SAMPLES_PER_TASK: usize = 16_384;

/// The official `1/(α + 1e-9)`: finite where a channel's α is 0.
const ALPHA_EPS: f32 = 1e-9;

#[derive(Debug, Clone)]
pub(crate) struct Snake {
    alpha: Alpha,
}

/// α in the form the chosen path reads it, as the loader decided. (A few dozen of these exist:
/// the size of the tensor handles in one variant does not matter.)
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
enum Alpha {
    /// `(α, 1/(α + 1e-9))` per channel, for the fused CPU pass.
    PerChannel(Arc<[(f32, f32)]>),
    /// `[1, C, 1]` tensors for burn's ops.
    Tensor { alpha: Tensor<3>, inv_alpha: Tensor<3> },
}

impl Snake {
    pub(crate) fn load(w: &mut WeightLoader, name: &str, channels: usize) -> Self {
        let name = format!("{name}.alpha");
        let alpha = if w.uses_cpu_kernels() {
            // A missing α reads as zeros, as the loader's stand-in tensor would; never run.
            let values = w.values(&name, &[1, channels, 1]).unwrap_or_else(|| vec![0.0; channels]);
            Alpha::PerChannel(values.into_iter().map(|a| (a, 1.0 / (a + ALPHA_EPS))).collect())
        } else {
            let alpha = w.tensor(&name, [1, channels, 1]);
            let inv_alpha = (alpha.clone() + f64::from(ALPHA_EPS)).recip();
            Alpha::Tensor { alpha, inv_alpha }
        };
        Snake { alpha }
    }

    /// `x` `[B, C, T]`.
    pub(crate) fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let per_channel = match &self.alpha {
            Alpha::PerChannel(per_channel) => per_channel,
            Alpha::Tensor { alpha, inv_alpha } => {
                let s = (x.clone() * alpha.clone()).sin();
                return x + inv_alpha.clone() * s.square();
            }
        };
        let device = x.device();
        let dims = x.dims();
        let mut values = to_vec(x).expect("converted to f32 by to_vec");
        // Rows in parallel, grouped so that each task has some thousands of samples.
        let rows_per_task = (SAMPLES_PER_TASK / dims[2].max(1)).max(1);
        values.par_chunks_mut(dims[2].max(1)).with_min_len(rows_per_task).enumerate().for_each(|(row, samples)| {
            let (alpha, inv_alpha) = per_channel[row % dims[1]];
            for v in samples {
                *v += inv_alpha * sin_squared(*v * alpha);
            }
        });
        Tensor::from_data(TensorData::new(values, dims), &device)
    }
}

/// π in three parts of at most 12 significant bits (Cody–Waite): `k · part` is exact for
/// |k| < 2¹², so the reduction below loses nothing for |x| < 2¹² π.
const PI_1: f32 = 3.140625;
const PI_2: f32 = 9.675_026e-4;
const PI_3: f32 = 1.509_958_e-7;

/// `sin²(x)`, within 4e-7 (a few f32 ulps) of the exact value for |x| < 2¹² π ≈ 12,868 and
/// never outside [0, 1]. sin² has period π: `x` is reduced by the nearest multiple of π to
/// |r| ≤ π/2, where the odd Taylor series to r¹³ is within 1e-9 of sin r. No branch or call, so the loop around it
/// vectorises. (Past 2²² π the rounding trick no longer finds k; the f32 input itself is then
/// coarser than a third of the period, so any value in [0, 1] is as good as libm's.)
#[inline(always)]
fn sin_squared(x: f32) -> f32 {
    // Adding 1.5 · 2²³ rounds to an integer (to nearest even) in the float unit.
    const ROUNDER: f32 = 12_582_912.0;
    let k = (x * std::f32::consts::FRAC_1_PI + ROUNDER) - ROUNDER;
    let r = ((x - k * PI_1) - k * PI_2) - k * PI_3;
    let r2 = r * r;
    let series = 1.0
        + r2 * (-1.0 / 6.0
            + r2 * (1.0 / 120.0
                + r2 * (-1.0 / 5040.0
                    + r2 * (1.0 / 362_880.0 + r2 * (-1.0 / 39_916_800.0 + r2 * (1.0 / 6_227_020_800.0))))));
    let s = r * series;
    (s * s).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(x: f32) -> f64 {
        (x as f64).sin().powi(2)
    }

    #[test]
    fn sin_squared_is_within_4e_7_over_the_exact_range() {
        let mut worst = 0.0f64;
        // A dense sweep near zero and a coarse one out to ±12,868, endpoints of periods included.
        let near = (-400_000..=400_000).map(|i| i as f32 * 1e-4);
        let far = (-1_286_800..=1_286_800).step_by(7).map(|i| i as f32 * 0.01);
        let multiples = (-4095..=4095).flat_map(|k| {
            let x = k as f32 * std::f32::consts::PI;
            [x, x + 1e-3, x - 1e-3, x + std::f32::consts::FRAC_PI_2]
        });
        for x in near.chain(far).chain(multiples) {
            let error = (sin_squared(x) as f64 - exact(x)).abs();
            assert!(error < 4e-7, "sin²({x}) = {} against {}", sin_squared(x), exact(x));
            worst = worst.max(error);
        }
        assert!(worst > 0.0, "the sweep compared something");
    }

    #[test]
    fn sin_squared_stays_in_0_1_for_huge_and_odd_inputs() {
        for x in [1e6f32, -3.3e7, 1e20, -f32::MAX, f32::MAX] {
            let s = sin_squared(x);
            assert!((0.0..=1.0).contains(&s), "sin²({x}) = {s}");
        }
        assert_eq!(sin_squared(0.0), 0.0);
    }
}
