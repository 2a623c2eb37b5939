//! x86-64 micro-kernels, one set per [`Level`] above the portable one:
//! - AVX-512F: up to 12 rows × 16 columns, one register per row, so a 22-row LocDiT input is two
//!   passes over each weight block;
//! - AVX2 + FMA: up to 6 rows × 16 columns in 12 registers;
//! - AVX-512 BF16 (bf16 products only): `vdpbf16ps`, two bf16 products per f32 lane and
//!   instruction, twice the arithmetic of an f32 FMA.
//!
//! All hold their accumulators in registers across a depth block and walk the depth in pairs
//! (the layout bf16 panels are packed in, see [`super::PackedMatrix`]); bf16 weights are widened
//! in registers (the even depth shifted into the upper half, the odd one masked).

use std::arch::x86_64::{
    __m256, __m512, __m512bh, __m512i, _MM_HINT_T0, _mm_prefetch, _mm256_and_si256, _mm256_broadcast_ss,
    _mm256_castsi256_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_loadu_si256, _mm256_set1_epi32, _mm256_setzero_ps,
    _mm256_slli_epi32, _mm256_storeu_ps, _mm512_and_si512, _mm512_castsi512_ps, _mm512_cvtne2ps_pbh, _mm512_dpbf16_ps,
    _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_loadu_si512, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_ps,
    _mm512_slli_epi32, _mm512_storeu_ps, _mm512_storeu_si512,
};

use super::{Level, PANEL, WeightElement};

/// Whether the CPU has the instructions `level`'s kernels use (AVX-512 BF16: e.g. Zen 4,
/// Sapphire Rapids). The standard library caches the detection.
pub fn runs(level: Level) -> bool {
    match level {
        Level::Portable => true,
        Level::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
        Level::Avx512 => is_x86_feature_detected!("avx512f"),
        Level::Avx512Bf16 => is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16"),
    }
}

/// Loads two consecutive depths of a panel as f32 (every [`WeightElement`] has it on x86-64).
pub trait SimdLoad {
    /// Depths `2·pair` and `2·pair + 1` of columns `8·half..8·half + 8`.
    ///
    /// # Safety
    /// The panel at `w` holds `pair`; AVX2 is available.
    unsafe fn pair8(w: *const Self, pair: usize, half: usize) -> (__m256, __m256);
    /// Depths `2·pair` and `2·pair + 1` of all 16 columns.
    ///
    /// # Safety
    /// The panel at `w` holds `pair`; AVX-512F is available.
    unsafe fn pair16(w: *const Self, pair: usize) -> (__m512, __m512);
    /// Depth `2·pair` alone, of columns `8·half..8·half + 8` (an odd last depth).
    ///
    /// # Safety
    /// As for [`pair8`](Self::pair8).
    unsafe fn even8(w: *const Self, pair: usize, half: usize) -> __m256;
    /// Depth `2·pair` alone, of all 16 columns.
    ///
    /// # Safety
    /// As for [`pair16`](Self::pair16).
    unsafe fn even16(w: *const Self, pair: usize) -> __m512;
}

impl SimdLoad for f32 {
    #[inline(always)]
    unsafe fn pair8(w: *const f32, pair: usize, half: usize) -> (__m256, __m256) {
        // SAFETY: the caller's contract (f32 panels are depth-major, 16 columns a depth).
        unsafe {
            let even = w.add(2 * pair * PANEL + 8 * half);
            (_mm256_loadu_ps(even), _mm256_loadu_ps(even.add(PANEL)))
        }
    }

    #[inline(always)]
    unsafe fn pair16(w: *const f32, pair: usize) -> (__m512, __m512) {
        // SAFETY: the caller's contract.
        unsafe {
            let even = w.add(2 * pair * PANEL);
            (_mm512_loadu_ps(even), _mm512_loadu_ps(even.add(PANEL)))
        }
    }

    #[inline(always)]
    unsafe fn even8(w: *const f32, pair: usize, half: usize) -> __m256 {
        // SAFETY: the caller's contract (no odd depth follows: it is not read).
        unsafe { _mm256_loadu_ps(w.add(2 * pair * PANEL + 8 * half)) }
    }

    #[inline(always)]
    unsafe fn even16(w: *const f32, pair: usize) -> __m512 {
        // SAFETY: as for even8.
        unsafe { _mm512_loadu_ps(w.add(2 * pair * PANEL)) }
    }
}

impl SimdLoad for u16 {
    #[inline(always)]
    unsafe fn pair8(w: *const u16, pair: usize, half: usize) -> (__m256, __m256) {
        // SAFETY: the caller's contract (bf16 panels hold each column's two depths side by side:
        // one 256-bit load is 8 columns × 2 depths).
        unsafe {
            let both = _mm256_loadu_si256(w.add(2 * pair * PANEL + 16 * half).cast());
            let even = _mm256_slli_epi32(both, 16);
            let odd = _mm256_and_si256(both, _mm256_set1_epi32(0xFFFF_0000u32 as i32));
            (_mm256_castsi256_ps(even), _mm256_castsi256_ps(odd))
        }
    }

    #[inline(always)]
    unsafe fn pair16(w: *const u16, pair: usize) -> (__m512, __m512) {
        // SAFETY: as for pair8, one 512-bit load.
        unsafe {
            let both = _mm512_loadu_si512(w.add(2 * pair * PANEL).cast());
            let even = _mm512_slli_epi32(both, 16);
            let odd = _mm512_and_si512(both, _mm512_set1_epi32(0xFFFF_0000u32 as i32));
            (_mm512_castsi512_ps(even), _mm512_castsi512_ps(odd))
        }
    }

    #[inline(always)]
    unsafe fn even8(w: *const u16, pair: usize, half: usize) -> __m256 {
        // SAFETY: the caller's contract (bf16 panels pad an odd depth, so the pair is whole).
        unsafe { Self::pair8(w, pair, half).0 }
    }

    #[inline(always)]
    unsafe fn even16(w: *const u16, pair: usize) -> __m512 {
        // SAFETY: as for even8.
        unsafe { Self::pair16(w, pair).0 }
    }
}

/// How far ahead of the depth pair being multiplied the kernels ask for weights. The hardware
/// prefetcher alone keeps too few lines in flight while a cache line of weights takes a dozen
/// FMAs: a 22-row product streamed weights from memory at ~10 GB/s on the 2-core Zen 4 VM, and
/// 22-25 GB/s with 8 KB of software prefetch (4-8 KB and 16-32 KB measured lower).
const PREFETCH_BYTES: usize = 8192;

/// Asks for the cache line `PREFETCH_BYTES` past element `at` of `w` (which may lie past the
/// weights' end: a prefetch never faults, and the address is only formed, not dereferenced).
#[inline(always)]
fn prefetch_ahead<T>(w: *const T, at: usize) {
    let line = w.cast::<i8>().wrapping_add(at * size_of::<T>() + PREFETCH_BYTES);
    // SAFETY: prefetching has no effect on memory and cannot fault.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(line) };
}

/// `acc[r][j] (+)= Σ_{i<depth} x[r·stride + i] · w(i, j)` for every row of `acc`.
///
/// # Safety
/// The CPU [`runs`] `level`; `x` holds `(acc.len() - 1)·stride + depth` elements and `w` a
/// panel block of `depth.next_multiple_of(2)` depths; `acc.len() ≤ level.max_rows()`.
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
    // SAFETY: every arm relies on the caller's contract alone.
    unsafe {
        match level {
            Level::Avx512 | Level::Avx512Bf16 => rows!(kernel512: 1 2 3 4 5 6 7 8 9 10 11 12),
            Level::Avx2 => rows!(kernel256: 1 2 3 4 5 6),
            Level::Portable => unreachable!("the portable level has no x86 kernel"),
        }
    }
}

/// `acc[r][j] (+)= Σ_{p<pairs} x[r·stride + p] · w(p, j)` with `x` bf16 pairs (two inputs in
/// one u32, the even depth in the low half) and `w` a bf16 panel block.
///
/// # Safety
/// The CPU [`runs`] [`Level::Avx512Bf16`]; `x` holds `(acc.len() - 1)·stride + pairs` and `w`
/// `pairs·32` elements; `acc.len() ≤ 12`.
pub unsafe fn dot_kernel(
    x: &[u32],
    acc: &mut [[f32; PANEL]],
    stride: usize,
    pairs: usize,
    w: &[u16],
    accumulate: bool,
) {
    let (x, w) = (x.as_ptr(), w.as_ptr());
    macro_rules! rows {
        ($($r:literal)+) => {
            match acc.len() {
                $($r => dot512::<$r>(x, stride, pairs, w, acc, accumulate),)+
                _ => unreachable!("more rows than the kernel holds"),
            }
        };
    }
    // SAFETY: every arm relies on the caller's contract alone.
    unsafe { rows!(1 2 3 4 5 6 7 8 9 10 11 12) }
}

/// Prefetches for one depth pair of a panel: 64 bytes of bf16, 128 of f32.
#[inline(always)]
fn prefetch_pair<T>(w: *const T, pair: usize) {
    prefetch_ahead(w, 2 * pair * PANEL);
    if size_of::<T>() > 2 {
        prefetch_ahead(w, 2 * pair * PANEL + PANEL);
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
    // SAFETY: x holds R rows of `depth` at `stride`, w holds the block's pairs, acc has R rows
    // (the caller's contract). An odd last depth reads only the pair's even half.
    unsafe {
        let mut lo = [_mm256_setzero_ps(); R];
        let mut hi = [_mm256_setzero_ps(); R];
        if accumulate {
            for r in 0..R {
                lo[r] = _mm256_loadu_ps(acc[r].as_ptr());
                hi[r] = _mm256_loadu_ps(acc[r].as_ptr().add(8));
            }
        }
        for pair in 0..depth / 2 {
            prefetch_pair(w, pair);
            let (lo_even, lo_odd) = T::pair8(w, pair, 0);
            let (hi_even, hi_odd) = T::pair8(w, pair, 1);
            for r in 0..R {
                let even = _mm256_broadcast_ss(&*x.add(r * stride + 2 * pair));
                let odd = _mm256_broadcast_ss(&*x.add(r * stride + 2 * pair + 1));
                lo[r] = _mm256_fmadd_ps(odd, lo_odd, _mm256_fmadd_ps(even, lo_even, lo[r]));
                hi[r] = _mm256_fmadd_ps(odd, hi_odd, _mm256_fmadd_ps(even, hi_even, hi[r]));
            }
        }
        if depth % 2 == 1 {
            let pair = depth / 2;
            let (lo_even, hi_even) = (T::even8(w, pair, 0), T::even8(w, pair, 1));
            for r in 0..R {
                let even = _mm256_broadcast_ss(&*x.add(r * stride + 2 * pair));
                lo[r] = _mm256_fmadd_ps(even, lo_even, lo[r]);
                hi[r] = _mm256_fmadd_ps(even, hi_even, hi[r]);
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
        for pair in 0..depth / 2 {
            prefetch_pair(w, pair);
            let (even, odd) = T::pair16(w, pair);
            for (r, sum) in sums.iter_mut().enumerate() {
                let row = x.add(r * stride + 2 * pair);
                *sum = _mm512_fmadd_ps(
                    _mm512_set1_ps(*row.add(1)),
                    odd,
                    _mm512_fmadd_ps(_mm512_set1_ps(*row), even, *sum),
                );
            }
        }
        if depth % 2 == 1 {
            let pair = depth / 2;
            let even = T::even16(w, pair);
            for (r, sum) in sums.iter_mut().enumerate() {
                *sum = _mm512_fmadd_ps(_mm512_set1_ps(*x.add(r * stride + 2 * pair)), even, *sum);
            }
        }
        for r in 0..R {
            _mm512_storeu_ps(acc[r].as_mut_ptr(), sums[r]);
        }
    }
}

#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn dot512<const R: usize>(
    x: *const u32,
    stride: usize,
    pairs: usize,
    w: *const u16,
    acc: &mut [[f32; PANEL]],
    accumulate: bool,
) {
    // SAFETY: x holds R rows of `pairs` at `stride`, w holds `pairs` × 32 bf16, acc has R rows
    // (the caller's contract). The transmutes reinterpret 512 bits as 32 bf16.
    unsafe {
        let mut sums = [_mm512_setzero_ps(); R];
        if accumulate {
            for r in 0..R {
                sums[r] = _mm512_loadu_ps(acc[r].as_ptr());
            }
        }
        for pair in 0..pairs {
            prefetch_ahead(w, 2 * pair * PANEL);
            let weights: __m512bh = std::mem::transmute(_mm512_loadu_si512(w.add(2 * pair * PANEL).cast()));
            for (r, sum) in sums.iter_mut().enumerate() {
                let inputs: __m512bh = std::mem::transmute(_mm512_set1_epi32(*x.add(r * stride + pair) as i32));
                *sum = _mm512_dpbf16_ps(*sum, inputs, weights);
            }
        }
        for r in 0..R {
            _mm512_storeu_ps(acc[r].as_mut_ptr(), sums[r]);
        }
    }
}

/// `x` `[m, k]` rounded to bf16 (to nearest, ties to even) as rows of `k.div_ceil(2)` pairs,
/// an odd last input paired with zero. Needs a CPU that [`runs`] [`Level::Avx512Bf16`].
pub fn to_bf16_pairs(x: &[f32], m: usize, k: usize) -> Vec<u32> {
    assert!(runs(Level::Avx512Bf16) && x.len() == m * k);
    let pairs = k.div_ceil(2);
    let mut out = vec![0u32; m * pairs];
    for (row, packed) in x.chunks_exact(k).zip(out.chunks_exact_mut(pairs)) {
        // SAFETY: checked above that the CPU has AVX-512 BF16.
        unsafe { round_row(row, packed) };
    }
    out
}

/// One row: 32 inputs an instruction, the rest one at a time.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn round_row(row: &[f32], packed: &mut [u32]) {
    let whole = row.len() / 32;
    for block in 0..whole {
        // SAFETY: 32 inputs and 16 pairs are in bounds; `cvtne2ps_pbh(a, b)` puts b's 16 in
        // the low half, so (low, high) keeps the inputs in order.
        unsafe {
            let low = _mm512_loadu_ps(row.as_ptr().add(32 * block));
            let high = _mm512_loadu_ps(row.as_ptr().add(32 * block + 16));
            let bf16: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(high, low));
            _mm512_storeu_si512(packed.as_mut_ptr().add(16 * block).cast(), bf16);
        }
    }
    for (pair, slot) in packed.iter_mut().enumerate().skip(16 * whole) {
        let even = super::bf16_bits(row[2 * pair]);
        let odd = row.get(2 * pair + 1).map_or(0, |&v| super::bf16_bits(v));
        *slot = u32::from(even) | (u32::from(odd) << 16);
    }
}
