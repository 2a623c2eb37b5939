//! The AVX2 + FMA micro-kernel: up to 6 rows × 16 columns held in 12 registers across the whole
//! inner dimension, one weight row (two vectors, widened from bf16 if need be) per step.

use std::arch::x86_64::{
    __m256, _mm_loadu_si128, _mm256_broadcast_ss, _mm256_castsi256_ps, _mm256_cvtepu16_epi32, _mm256_fmadd_ps,
    _mm256_loadu_ps, _mm256_setzero_ps, _mm256_slli_epi32, _mm256_storeu_ps,
};
use std::sync::OnceLock;

use super::{PANEL, WeightElement};

pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// Loads 8 consecutive weights as f32 (every [`WeightElement`] has it on x86-64).
pub trait Load8 {
    /// # Safety
    /// `ptr` points at 8 readable elements; AVX2 is available.
    unsafe fn load8(ptr: *const Self) -> __m256;
}

impl Load8 for f32 {
    #[inline(always)]
    unsafe fn load8(ptr: *const f32) -> __m256 {
        // SAFETY: the caller's contract.
        unsafe { _mm256_loadu_ps(ptr) }
    }
}

impl Load8 for u16 {
    /// bf16 → f32: zero-extend to 32 bits and shift into the upper half.
    #[inline(always)]
    unsafe fn load8(ptr: *const u16) -> __m256 {
        // SAFETY: the caller's contract (8 × 2 bytes = one unaligned 128-bit load).
        unsafe { _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(ptr.cast())), 16)) }
    }
}

/// # Safety
/// AVX2 and FMA are available; `x` holds `(acc.len() - 1)·stride + depth` and `w` `depth·16`
/// elements; `acc.len() ≤ 6`.
pub unsafe fn micro_kernel<T: WeightElement>(
    x: &[f32],
    acc: &mut [[f32; PANEL]],
    stride: usize,
    depth: usize,
    w: &[T],
    accumulate: bool,
) {
    let (x, w) = (x.as_ptr(), w.as_ptr());
    // SAFETY (all arms): the caller's contract.
    unsafe {
        match acc.len() {
            1 => kernel::<T, 1>(x, stride, depth, w, acc, accumulate),
            2 => kernel::<T, 2>(x, stride, depth, w, acc, accumulate),
            3 => kernel::<T, 3>(x, stride, depth, w, acc, accumulate),
            4 => kernel::<T, 4>(x, stride, depth, w, acc, accumulate),
            5 => kernel::<T, 5>(x, stride, depth, w, acc, accumulate),
            _ => kernel::<T, 6>(x, stride, depth, w, acc, accumulate),
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn kernel<T: WeightElement, const R: usize>(
    x: *const f32,
    stride: usize,
    depth: usize,
    w: *const T,
    acc: &mut [[f32; PANEL]],
    accumulate: bool,
) {
    // SAFETY: x holds R rows of `depth` at `stride`, w holds `depth` rows of 16, acc has R rows
    // (the caller's contract).
    unsafe {
        let mut lo = [_mm256_setzero_ps(); R];
        let mut hi = [_mm256_setzero_ps(); R];
        if accumulate {
            for r in 0..R {
                lo[r] = _mm256_loadu_ps(acc[r].as_ptr());
                hi[r] = _mm256_loadu_ps(acc[r].as_ptr().add(8));
            }
        }
        for i in 0..depth {
            let w0 = T::load8(w.add(i * PANEL));
            let w1 = T::load8(w.add(i * PANEL + 8));
            for r in 0..R {
                let a = _mm256_broadcast_ss(&*x.add(r * stride + i));
                lo[r] = _mm256_fmadd_ps(a, w0, lo[r]);
                hi[r] = _mm256_fmadd_ps(a, w1, hi[r]);
            }
        }
        for r in 0..R {
            _mm256_storeu_ps(acc[r].as_mut_ptr(), lo[r]);
            _mm256_storeu_ps(acc[r].as_mut_ptr().add(8), hi[r]);
        }
    }
}
