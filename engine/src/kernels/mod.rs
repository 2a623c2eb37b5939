//! CPU matrix products for linear layers: `y = x · Wᵀ + b` with `W` packed once, at load, into
//! 16-column panels and kept in the checkpoint's own precision (bf16 or f32).
//!
//! Why not burn's matmul on the CPU backend: its GEMM packs the weight operand on every call
//! and reads it as f32, so the 22-row products of LocDiT run at a fraction of the machine's
//! speed and bf16 weights would have to sit in memory widened to f32 (twice the size, twice the
//! bytes per decode step). Here each call streams the packed weights once and widens bf16 in
//! registers. No crate offers this (the `gemm` crate behind burn-flex packs per call and has
//! no bf16 path), hence the hand-written kernel.
//!
//! Work is split over rayon's pool by groups of panels (and by row blocks for long inputs);
//! each task writes its own columns of the output. Within a task the inner dimension is walked
//! in blocks that stay in L1 while every row block uses them. The micro-kernel is AVX-512F,
//! AVX2 + FMA or plain Rust, whichever the CPU runs (see `x86.rs`).

mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

use rayon::prelude::*;

/// Output columns per panel.
pub const PANEL: usize = 16;
/// Rows per task: the input rows a task reads stay in cache while it walks its panels.
const ROW_CHUNK: usize = 48;
/// Inner-dimension block: one block of a panel (8 KB in f32) and of the rows stays in L1 while
/// every row block of the task uses it, so each weight fetched from memory serves all rows.
const DEPTH_BLOCK: usize = 128;

#[cfg(target_arch = "x86_64")]
pub use x86::SimdLoad;

/// Nothing to load with where there is no SIMD kernel.
#[cfg(not(target_arch = "x86_64"))]
pub trait SimdLoad {}
#[cfg(not(target_arch = "x86_64"))]
impl SimdLoad for f32 {}
#[cfg(not(target_arch = "x86_64"))]
impl SimdLoad for u16 {}

/// A weight element the kernels can read: widened to f32 on load.
pub trait WeightElement: Copy + Default + Send + Sync + 'static + SimdLoad {
    fn widen(self) -> f32;
}

impl WeightElement for f32 {
    fn widen(self) -> f32 {
        self
    }
}

/// bf16 as its 16 bits: the upper half of an f32.
impl WeightElement for u16 {
    fn widen(self) -> f32 {
        f32::from_bits(u32::from(self) << 16)
    }
}

#[derive(Debug, Clone)]
enum Panels {
    F32(Vec<f32>),
    Bf16(Vec<u16>),
}

/// A `[k → n]` weight in panel layout: element `(col, i)` of the PyTorch `[n, k]` matrix lives at
/// `((col / 16) · k + i) · 16 + col % 16`, the last panel padded with zeros.
#[derive(Debug, Clone)]
pub struct PackedMatrix {
    k: usize,
    n: usize,
    panels: Panels,
}

impl PackedMatrix {
    /// From f32 values of a PyTorch `[n, k]` (out, in) weight.
    pub fn from_f32(rows: &[f32], n: usize, k: usize) -> Self {
        PackedMatrix { k, n, panels: Panels::F32(pack(rows, n, k)) }
    }

    /// From the bits of a bf16 `[n, k]` weight (kept as bf16: no precision is lost or added).
    pub fn from_bf16(rows: &[u16], n: usize, k: usize) -> Self {
        PackedMatrix { k, n, panels: Panels::Bf16(pack(rows, n, k)) }
    }

    /// All zeros (a stand-in for a weight that failed to load; the memory is mapped lazily).
    pub fn zeros(k: usize, n: usize) -> Self {
        PackedMatrix { k, n, panels: Panels::F32(vec![0.0; n.div_ceil(PANEL) * k * PANEL]) }
    }

    /// `(k, n)`: input and output widths.
    pub fn dims(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// `x` `[m, k]` (row-major) times the weight, plus `bias` `[n]`: `[m, n]`.
    pub fn matmul(&self, x: &[f32], m: usize, bias: Option<&[f32]>) -> Vec<f32> {
        assert_eq!(x.len(), m * self.k, "input is not [{m}, {}]", self.k);
        if let Some(bias) = bias {
            assert_eq!(bias.len(), self.n, "bias is not [{}]", self.n);
        }
        let mut out = vec![0.0f32; m * self.n];
        if m == 0 || self.n == 0 {
            return out;
        }
        match &self.panels {
            Panels::F32(w) => self.run(w, x, m, bias, &mut out),
            Panels::Bf16(w) => self.run(w, x, m, bias, &mut out),
        }
        out
    }

    fn run<T: WeightElement>(&self, w: &[T], x: &[f32], m: usize, bias: Option<&[f32]>, out: &mut [f32]) {
        let panels = self.n.div_ceil(PANEL);
        let row_chunks = m.div_ceil(ROW_CHUNK);
        // Enough tasks for rayon to balance, few enough to keep each one worth its start-up.
        let wanted = rayon::current_num_threads() * 4;
        let panel_groups = panels.min(wanted.div_ceil(row_chunks)).max(1);
        let per_group = panels.div_ceil(panel_groups);
        let output = SharedOutput(out.as_mut_ptr());
        (0..row_chunks * panel_groups).into_par_iter().for_each(|task| {
            let (chunk, group) = (task / panel_groups, task % panel_groups);
            let rows = chunk * ROW_CHUNK..((chunk + 1) * ROW_CHUNK).min(m);
            for panel in group * per_group..((group + 1) * per_group).min(panels) {
                self.panel(w, x, rows.clone(), panel, bias, &output);
            }
        });
    }

    /// Output columns `panel·16..` for `rows`.
    fn panel<T: WeightElement>(
        &self,
        w: &[T],
        x: &[f32],
        rows: std::ops::Range<usize>,
        panel: usize,
        bias: Option<&[f32]>,
        out: &SharedOutput,
    ) {
        let (k, n) = (self.k, self.n);
        let weights = &w[panel * k * PANEL..(panel + 1) * k * PANEL];
        let first_col = panel * PANEL;
        let cols = PANEL.min(n - first_col);
        let mut acc = [[0.0f32; PANEL]; ROW_CHUNK];
        for depth in (0..k).step_by(DEPTH_BLOCK) {
            let depth_len = DEPTH_BLOCK.min(k - depth);
            let block_weights = &weights[depth * PANEL..(depth + depth_len) * PANEL];
            let block_rows = even_blocks(rows.len(), kernel_rows());
            for (block, sums) in acc[..rows.len()].chunks_mut(block_rows).enumerate() {
                let first_row = rows.start + block * block_rows;
                let x_block = &x[first_row * k + depth..];
                micro_kernel(x_block, sums, k, depth_len, block_weights, depth > 0);
            }
        }
        for (r, sums) in acc[..rows.len()].iter().enumerate() {
            for (j, &sum) in sums.iter().enumerate().take(cols) {
                let value = sum + bias.map_or(0.0, |b| b[first_col + j]);
                // SAFETY: (row, first_col + j) is inside the [m, n] output, and this task is the
                // only one writing this panel's columns of these rows.
                unsafe { out.0.add((rows.start + r) * n + first_col + j).write(value) };
            }
        }
    }
}

/// The output buffer shared by tasks that write disjoint elements.
struct SharedOutput(*mut f32);
// SAFETY: tasks write disjoint (row, column) ranges; the buffer outlives the parallel loop.
unsafe impl Sync for SharedOutput {}

/// Rows the fastest available kernel takes per call.
fn kernel_rows() -> usize {
    #[cfg(target_arch = "x86_64")]
    if let Some(level) = x86::level() {
        return level.max_rows();
    }
    portable::MAX_ROWS
}

/// The block size that splits `rows` into as few blocks of at most `max` as possible, as evenly
/// as possible (22 rows with 12 a block: two of 11, not 12 + 10).
fn even_blocks(rows: usize, max: usize) -> usize {
    rows.div_ceil(rows.div_ceil(max).max(1)).max(1)
}

/// `acc[r][j] (+)= Σ_{i<depth} x[r·stride + i] · w[i·16 + j]` for every row of `acc` (at most
/// [`kernel_rows`]); `accumulate` adds to what `acc` holds instead of starting from zero.
fn micro_kernel<T: WeightElement>(
    x: &[f32],
    acc: &mut [[f32; PANEL]],
    stride: usize,
    depth: usize,
    w: &[T],
    accumulate: bool,
) {
    debug_assert!(acc.len() <= kernel_rows() && w.len() >= depth * PANEL);
    debug_assert!(x.len() >= (acc.len() - 1) * stride + depth);
    #[cfg(target_arch = "x86_64")]
    if let Some(level) = x86::level() {
        // SAFETY: the CPU has `level`; the slice lengths and row count are checked above.
        unsafe { x86::micro_kernel(level, x, acc, stride, depth, w, accumulate) };
        return;
    }
    portable::micro_kernel(x, acc, stride, depth, w, accumulate);
}

/// Rearranges an `[n, k]` row-major matrix into panels (in parallel: this runs at load over
/// gigabytes of weights).
fn pack<T: WeightElement>(rows: &[T], n: usize, k: usize) -> Vec<T> {
    assert_eq!(rows.len(), n * k, "weight is not [{n}, {k}]");
    let mut packed = vec![T::default(); n.div_ceil(PANEL) * k * PANEL];
    if k == 0 {
        return packed;
    }
    packed.par_chunks_mut(k * PANEL).enumerate().for_each(|(panel, out)| {
        for j in 0..PANEL.min(n - panel * PANEL) {
            let col = &rows[(panel * PANEL + j) * k..(panel * PANEL + j + 1) * k];
            for (i, &value) in col.iter().enumerate() {
                out[i * PANEL + j] = value;
            }
        }
    });
    packed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], m: usize, w: &[f32], n: usize, k: usize, bias: Option<&[f32]>) -> Vec<f32> {
        let mut out = vec![0.0f64; m * n];
        for r in 0..m {
            for c in 0..n {
                let dot: f64 = (0..k).map(|i| f64::from(x[r * k + i]) * f64::from(w[c * k + i])).sum();
                out[r * n + c] = dot + bias.map_or(0.0, |b| f64::from(b[c]));
            }
        }
        out.into_iter().map(|v| v as f32).collect()
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    fn to_bf16(values: &[f32]) -> Vec<u16> {
        values.iter().map(|v| (v.to_bits() >> 16) as u16).collect()
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(1.0f32, |a, b| a.max(b.abs()));
        let error = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(error <= 1e-5 * scale, "{what}: max error {error} (scale {scale})");
    }

    #[test]
    fn products_match_a_plain_dot_product_for_every_shape_and_precision() {
        for (m, k, n) in [
            (1, 1, 1),
            (1, 64, 16),
            (3, 17, 5),
            (6, 33, 31),
            (7, 300, 48),
            (22, 96, 70),
            (50, 40, 33),
            (97, 12, 129),
            (23, 260, 20),
        ] {
            let x = values(m * k, 1);
            let w = values(n * k, 2);
            let bias = values(n, 3);
            let packed = PackedMatrix::from_f32(&w, n, k);
            assert_close(
                &packed.matmul(&x, m, Some(&bias)),
                &naive(&x, m, &w, n, k, Some(&bias)),
                &format!("f32 {m}x{k}x{n}"),
            );
            assert_close(
                &packed.matmul(&x, m, None),
                &naive(&x, m, &w, n, k, None),
                &format!("f32 {m}x{k}x{n} no bias"),
            );

            let bits = to_bf16(&w);
            let widened: Vec<f32> = bits.iter().map(|b| b.widen()).collect();
            let packed = PackedMatrix::from_bf16(&bits, n, k);
            assert_close(
                &packed.matmul(&x, m, Some(&bias)),
                &naive(&x, m, &widened, n, k, Some(&bias)),
                &format!("bf16 {m}x{k}x{n}"),
            );
        }
    }

    /// Every kernel this CPU can run, for every row count it takes, against the portable one.
    #[test]
    fn each_available_kernel_agrees_with_the_portable_one() {
        let k = 37;
        let x = values(12 * k, 4);
        let w = values(k * PANEL, 5);
        let bits = to_bf16(&w);
        #[cfg(target_arch = "x86_64")]
        let levels: Vec<x86::Level> = match x86::level() {
            Some(x86::Level::Avx512) => vec![x86::Level::Avx512, x86::Level::Avx2],
            Some(x86::Level::Avx2) => vec![x86::Level::Avx2],
            None => Vec::new(),
        };
        #[cfg(target_arch = "x86_64")]
        for level in levels {
            for rows in 1..=level.max_rows() {
                for accumulate in [false, true] {
                    let (mut fast, mut plain) = (vec![[0.5; PANEL]; rows], vec![[0.5; PANEL]; rows]);
                    // SAFETY: `level` was detected; x holds 12 rows of k, w k rows of 16.
                    unsafe { x86::micro_kernel(level, &x, &mut fast, k, k, &w, accumulate) };
                    portable::micro_kernel(&x, &mut plain, k, k, &w, accumulate);
                    let what = format!("{level:?}, {rows} rows, accumulate {accumulate}");
                    fast.iter().zip(&plain).for_each(|(f, p)| assert_close(f, p, &what));
                    // SAFETY: as above.
                    unsafe { x86::micro_kernel(level, &x, &mut fast, k, k, &bits, false) };
                    portable::micro_kernel(&x, &mut plain, k, k, &bits, false);
                    fast.iter().zip(&plain).for_each(|(f, p)| assert_close(f, p, &format!("{what}, bf16")));
                }
            }
        }
    }

    #[test]
    fn row_blocks_are_as_even_as_possible() {
        assert_eq!(even_blocks(22, 12), 11);
        assert_eq!(even_blocks(22, 6), 6);
        assert_eq!(even_blocks(5, 12), 5);
        assert_eq!(even_blocks(1, 6), 1);
        assert_eq!(even_blocks(48, 12), 12);
    }

    #[test]
    fn bf16_widening_is_exact() {
        for v in [0.0f32, 1.0, -2.5, 3.140625, f32::MIN_POSITIVE] {
            assert_eq!(((v.to_bits() >> 16) as u16).widen(), v);
        }
    }

    #[test]
    fn empty_inputs_give_empty_or_bias_free_outputs() {
        let packed = PackedMatrix::from_f32(&values(8 * 4, 1), 8, 4);
        assert!(packed.matmul(&[], 0, None).is_empty());
        assert_eq!(packed.dims(), (4, 8));
    }
}
