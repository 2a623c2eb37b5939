//! Snake, the AudioVAE's activation: `x + sin²(αx)/(α + 1e-9)`, α per channel.
//!
//! On the CPU it is one pass over the samples (not five tensor ops, each a full read and write
//! of the activations), with a sin² the compiler vectorises: libm's scalar `sinf` alone was
//! 12 % of a benchmark run that encodes reference audio.

use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

use super::nn::to_vec;
use crate::weights::WeightLoader;

/// Samples a parallel task takes at least (the decoder's first layers are 2048 channels of a
/// few frames each).
const SAMPLES_PER_TASK: usize = 16_384;

#[derive(Debug, Clone)]
pub(crate) struct Snake {
    alpha: Tensor<3>,
    inv_alpha: Tensor<3>,
    /// `(α, 1/(α + 1e-9))` per channel, for the CPU pass.
    per_channel: Arc<[(f32, f32)]>,
}

impl Snake {
    pub(crate) fn load(w: &mut WeightLoader, name: &str, channels: usize) -> Self {
        let alpha = w.tensor(&format!("{name}.alpha"), [1, channels, 1]);
        let inv_alpha = (alpha.clone() + 1e-9).recip();
        let values = |t: &Tensor<3>| to_vec(t.clone()).expect("converted to f32 by to_vec");
        let per_channel = values(&alpha).into_iter().zip(values(&inv_alpha)).collect();
        Snake { alpha, inv_alpha, per_channel }
    }

    /// `x` `[B, C, T]`.
    pub(crate) fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let device = x.device();
        if device != Device::flex() {
            let s = (x.clone() * self.alpha.clone()).sin();
            return x + self.inv_alpha.clone() * s.square();
        }
        let dims = x.dims();
        let mut values = to_vec(x).expect("converted to f32 by to_vec");
        // Rows in parallel, grouped so that each task has some thousands of samples.
        let rows_per_task = (SAMPLES_PER_TASK / dims[2].max(1)).max(1);
        values.par_chunks_mut(dims[2].max(1)).with_min_len(rows_per_task).enumerate().for_each(|(row, samples)| {
            let (alpha, inv_alpha) = self.per_channel[row % dims[1]];
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
