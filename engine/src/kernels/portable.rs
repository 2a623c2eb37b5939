//! The micro-kernels in plain Rust, for CPUs without AVX2/FMA or AVX-512 BF16 (and as the
//! tests' reference).

use super::{PANEL, WeightElement};

/// Rows per call (any count works; this keeps blocks cache-friendly).
pub const MAX_ROWS: usize = 6;

/// `acc[r][j] (+)= Σ_{i<depth} x[r·stride + i] · w(i, j)` for every row of `acc`.
pub fn micro_kernel<T: WeightElement>(
    x: &[f32],
    acc: &mut [[f32; PANEL]],
    stride: usize,
    depth: usize,
    w: &[T],
    accumulate: bool,
) {
    if !accumulate {
        acc.iter_mut().for_each(|sums| *sums = [0.0; PANEL]);
    }
    for i in 0..depth {
        let lane: [f32; PANEL] = std::array::from_fn(|j| w[T::slot(i, j)].widen());
        for (r, sums) in acc.iter_mut().enumerate() {
            let a = x[r * stride + i];
            for (sum, w) in sums.iter_mut().zip(lane) {
                *sum += a * w;
            }
        }
    }
}

/// Rounds f32 to the nearest bf16, ties to even, and widens it back (NaN stays NaN). What
/// bf16 products see of their inputs.
pub fn round_to_bf16(value: f32) -> f32 {
    f32::from_bits(u32::from(bf16_bits(value)) << 16)
}

/// The bits of `value` rounded to the nearest bf16, ties to even.
pub fn bf16_bits(value: f32) -> u16 {
    let bits = value.to_bits();
    if value.is_nan() {
        // Keep it a NaN whatever its payload: set the quiet bit.
        return ((bits >> 16) | 0x40) as u16;
    }
    let rounding = 0x7FFF + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounding_is_to_nearest_with_ties_to_even() {
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: the tie goes to the even one, 1.
        assert_eq!(round_to_bf16(1.0 + 2f32.powi(-8)), 1.0);
        // 1 + 3·2^-8 ties between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
        assert_eq!(round_to_bf16(1.0 + 3.0 * 2f32.powi(-8)), 1.0 + 2f32.powi(-6));
        assert_eq!(round_to_bf16(1.0 + 2f32.powi(-8) + 2f32.powi(-20)), 1.0 + 2f32.powi(-7));
        assert_eq!(round_to_bf16(-2.5), -2.5);
        assert!(round_to_bf16(f32::NAN).is_nan());
        assert_eq!(round_to_bf16(f32::INFINITY), f32::INFINITY);
        assert_eq!(round_to_bf16(f32::MAX), f32::INFINITY, "rounds past the largest bf16");
    }
}
