//! The micro-kernel in plain Rust, for CPUs without AVX2/FMA (and as the tests' reference).

use super::{PANEL, WeightElement};

/// Rows per call (any count works; this keeps blocks cache-friendly).
pub const MAX_ROWS: usize = 6;

/// `acc[r][j] (+)= Σ_{i<depth} x[r·stride + i] · w[i·16 + j]` for every row of `acc`.
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
    for (i, lane) in w.chunks_exact(PANEL).take(depth).enumerate() {
        let lane: [f32; PANEL] = std::array::from_fn(|j| lane[j].widen());
        for (r, sums) in acc.iter_mut().enumerate() {
            let a = x[r * stride + i];
            for (sum, w) in sums.iter_mut().zip(lane) {
                *sum += a * w;
            }
        }
    }
}
