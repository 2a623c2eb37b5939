//! x86-64 micro-kernels, picked at run time by what the CPU has:
//! - AVX-512F: up to 12 rows × 16 columns, one register per row, so a 22-row LocDiT input is two
//!   passes over each weight block;
//! - AVX2 + FMA: up to 6 rows × 16 columns in 12 registers.
//!
//! Both hold their accumulators in registers across a depth block and widen bf16 weights in
//! registers (zero-extend to 32 bits, shift into the upper half).

use std::arch::x86_64::{
    __m256, __m512, _mm_loadu_si128, _mm256_broadcast_ss, _mm256_castsi256_ps, _mm256_cvtepu16_epi32, _mm256_fmadd_ps,
    _mm256_loadu_ps, _mm256_loadu_si256, _mm256_setzero_ps, _mm256_slli_epi32, _mm256_storeu_ps, _mm512_castsi512_ps,
    _mm512_cvtepu16_epi32, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_slli_epi32,
    _mm512_storeu_ps,
};
use std::sync::OnceLock;

use super::{PANEL, WeightElement};

/// The widest kernel this CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Avx512,
    Avx2,
}

impl Level {
    /// Rows one call of this level's kernel takes.
    pub fn max_rows(self) -> usize {
        match self {
            Level::Avx512 => 12,
            Level::Avx2 => 6,
        }
    }
}

/// `None` where neither kernel can run (the portable one is used).
pub fn level() -> Option<Level> {
    static LEVEL: OnceLock<Option<Level>> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        if is_x86_feature_detected!("avx512f") {
            Some(Level::Avx512)
        } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            Some(Level::Avx2)
        } else {
            None
        }
    })
}

/// Loads consecutive weights as f32 (every [`WeightElement`] has it on x86-64).
pub trait SimdLoad {
    /// # Safety
    /// `ptr` points at 8 readable elements; AVX2 is available.
    unsafe fn load8(ptr: *const Self) -> __m256;
    /// # Safety
    /// `ptr` points at 16 readable elements; AVX-512F is available.
    unsafe fn load16(ptr: *const Self) -> __m512;
}

impl SimdLoad for f32 {
    #[inline(always)]
    unsafe fn load8(ptr: *const f32) -> __m256 {
        // SAFETY: the caller's contract.
        unsafe { _mm256_loadu_ps(ptr) }
    }

    #[inline(always)]
    unsafe fn load16(ptr: *const f32) -> __m512 {
        // SAFETY: the caller's contract.
        unsafe { _mm512_loadu_ps(ptr) }
    }
}

impl SimdLoad for u16 {
    #[inline(always)]
    unsafe fn load8(ptr: *const u16) -> __m256 {
        // SAFETY: the caller's contract (8 × 2 bytes: one unaligned 128-bit load).
        unsafe { _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(ptr.cast())), 16)) }
    }

    #[inline(always)]
    unsafe fn load16(ptr: *const u16) -> __m512 {
        // SAFETY: the caller's contract (16 × 2 bytes: one unaligned 256-bit load).
        unsafe { _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(ptr.cast())), 16)) }
    }
}

/// `acc[r][j] (+)= Σ_{i<depth} x[r·stride + i] · w[i·16 + j]` for every row of `acc`.
///
/// # Safety
/// The CPU has `level`; `x` holds `(acc.len() - 1)·stride + depth` and `w` `depth·16` elements;
/// `acc.len() ≤ level.max_rows()`.
pub unsafe fn micro_kernel<T: WeightElement>(
    level: Level,
    x: &[f32],
    acc: &mut [[f32; PANEL]],
    stride: usize,
    depth: usize,
    w: &[T],
    accumulate: bool,
) {
    let (x, w) = (x.as_ptr(), w.as_ptr());
    macro_rules! rows {
        ($kernel:ident: $($r:literal)+) => {
            match acc.len() {
                $($r => $kernel::<T, $r>(x, stride, depth, w, acc, accumulate),)+
                _ => unreachable!("more rows than the kernel holds"),
            }
        };
    }
    // SAFETY (every arm): the caller's contract.
    unsafe {
        match level {
            Level::Avx512 => rows!(kernel512: 1 2 3 4 5 6 7 8 9 10 11 12),
            Level::Avx2 => rows!(kernel256: 1 2 3 4 5 6),
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn kernel256<T: WeightElement, const R: usize>(
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

#[target_feature(enable = "avx512f")]
unsafe fn kernel512<T: WeightElement, const R: usize>(
    x: *const f32,
    stride: usize,
    depth: usize,
    w: *const T,
    acc: &mut [[f32; PANEL]],
    accumulate: bool,
) {
    // SAFETY: as for kernel256.
    unsafe {
        let mut sums = [_mm512_setzero_ps(); R];
        if accumulate {
            for r in 0..R {
                sums[r] = _mm512_loadu_ps(acc[r].as_ptr());
            }
        }
        for i in 0..depth {
            let weights = T::load16(w.add(i * PANEL));
            for (r, sum) in sums.iter_mut().enumerate() {
                *sum = _mm512_fmadd_ps(_mm512_set1_ps(*x.add(r * stride + i)), weights, *sum);
            }
        }
        for r in 0..R {
            _mm512_storeu_ps(acc[r].as_mut_ptr(), sums[r]);
        }
    }
}
