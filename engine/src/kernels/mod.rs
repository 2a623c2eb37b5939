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
//! A bf16 matrix computes its products in one of two ways ([`Products`]): exact f32 products
//! of the inputs with the widened weights, or bf16 products (inputs rounded to bf16, sums in
//! f32), which AVX-512 BF16 runs at twice the rate.
//!
//! Work is split over rayon's pool by groups of panels (and by row blocks for long inputs);
//! each task writes its own columns of the output. Within a task the inner dimension is walked
//! in blocks that stay in L1 while every row block uses them. The micro-kernel is AVX-512F,
//! AVX2 + FMA or plain Rust: the best the CPU runs, or the one `VOXCPM_KERNEL` names (see
//! `level.rs` and `x86.rs`).

pub mod conv;
mod level;
mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::marker::PhantomData;

use rayon::prelude::*;

pub use level::{LEVEL_VARIABLE, Level, LevelError, level, selected_level};
pub use portable::{bf16_bits, round_to_bf16};

/// Output columns per panel.
pub const PANEL: usize = 16;
/// Rows per task: the input rows a task reads stay in cache while it walks its panels.
const ROW_CHUNK: usize = 48;
/// Inner-dimension block: one block of a panel (8 KB in f32) and of the rows stays in L1 while
/// every row block of the task uses it, so each weight fetched from memory serves all rows.
/// Even, so that a block starts on a depth pair.
const DEPTH_BLOCK: usize = 128;
/// Rows the bf16 dot-product kernel takes per call.
#[cfg(target_arch = "x86_64")]
const DOT_ROWS: usize = 12;

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
    /// Where element (`depth`, `col`) sits in its panel.
    fn slot(depth: usize, col: usize) -> usize;
    /// Depths a panel of a `k`-deep matrix holds.
    fn panel_depth(k: usize) -> usize;
}

/// f32 panels are depth-major: 16 columns of one depth, then the next depth.
impl WeightElement for f32 {
    fn widen(self) -> f32 {
        self
    }

    fn slot(depth: usize, col: usize) -> usize {
        depth * PANEL + col
    }

    fn panel_depth(k: usize) -> usize {
        k
    }
}

/// bf16 as its 16 bits: the upper half of an f32. bf16 panels hold each column's two depths of
/// a pair side by side (the operand layout of `vdpbf16ps`), an odd last depth padded with zero.
impl WeightElement for u16 {
    fn widen(self) -> f32 {
        f32::from_bits(u32::from(self) << 16)
    }

    fn slot(depth: usize, col: usize) -> usize {
        ((depth / 2) * PANEL + col) * 2 + depth % 2
    }

    fn panel_depth(k: usize) -> usize {
        k.next_multiple_of(2)
    }
}

/// What a bf16 matrix computes its products in (an f32 matrix always computes in f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Products {
    /// The inputs as they are, times the weights widened to f32.
    #[default]
    F32,
    /// The inputs rounded to bf16, summed in f32: the arithmetic of the official bf16 release,
    /// twice as fast where the CPU has AVX-512 BF16 (emulated, at f32 speed, elsewhere).
    Bf16,
}

#[derive(Debug, Clone)]
enum Panels {
    F32(Vec<f32>),
    Bf16 { bits: Vec<u16>, products: Products },
}

/// A `[k → n]` weight in panel layout: element `(col, i)` of the PyTorch `[n, k]` matrix lives in
/// panel `col / 16` at [`WeightElement::slot`]`(i, col % 16)`, the last panel padded with zeros.
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

    /// From the bits of a bf16 `[n, k]` weight (kept as bf16: no precision is lost or added),
    /// computing its products in `products`.
    pub fn from_bf16(rows: &[u16], n: usize, k: usize, products: Products) -> Self {
        PackedMatrix { k, n, panels: Panels::Bf16 { bits: pack(rows, n, k), products } }
    }

    /// An f32 `[k → n]` matrix packed from `fill(panel, depth, row)`, which writes the values of
    /// depth `depth` for the columns `panel·16..` (up to 16; the row is zeros beyond `n`). For
    /// operands built per call, such as a convolution's input columns.
    pub fn from_panel_rows(n: usize, k: usize, fill: impl Fn(usize, usize, &mut [f32]) + Sync) -> Self {
        let panel_len = k * PANEL;
        let mut packed = vec![0.0f32; n.div_ceil(PANEL) * panel_len];
        if k > 0 {
            packed.par_chunks_mut(panel_len).enumerate().for_each(|(panel, out)| {
                let cols = PANEL.min(n - panel * PANEL);
                for (depth, row) in out.chunks_exact_mut(PANEL).enumerate() {
                    fill(panel, depth, &mut row[..cols]);
                }
            });
        }
        PackedMatrix { k, n, panels: Panels::F32(packed) }
    }

    /// All zeros (a stand-in for a weight that failed to load; the memory is mapped lazily).
    pub fn zeros(k: usize, n: usize) -> Self {
        PackedMatrix { k, n, panels: Panels::F32(vec![0.0; n.div_ceil(PANEL) * k * PANEL]) }
    }

    /// Whether [`PackedMatrix::matmul_group`] takes these matrices together: the same input
    /// width, weight type and products.
    pub fn groupable<'a>(matrices: impl IntoIterator<Item = &'a PackedMatrix>) -> bool {
        let kind = |m: &PackedMatrix| match &m.panels {
            Panels::F32(_) => (m.k, None),
            Panels::Bf16 { products, .. } => (m.k, Some(*products)),
        };
        let mut matrices = matrices.into_iter();
        let Some(first) = matrices.next() else { return true };
        let want = kind(first);
        matrices.all(|m| kind(m) == want)
    }

    /// `(k, n)`: input and output widths.
    pub fn dims(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// `x` `[m, k]` (row-major) times the weight, plus `bias` `[n]`: `[m, n]`.
    pub fn matmul(&self, x: &[f32], m: usize, bias: Option<&[f32]>) -> Vec<f32> {
        Self::matmul_group(&[(self, bias)], x, m).pop().expect("one matrix in, one product out")
    }

    /// `x` `[m, k]` times each of several matrices of the same input width `k` (each with its
    /// bias), in one parallel region: the q/k/v or gate/up projections of a layer. Every output
    /// column is the same dot product, in the same order, as [`PackedMatrix::matmul`] computes
    /// alone, so the results are bit-identical; only the work is shared out once instead of per
    /// matrix (and the input rounded to bf16 once).
    ///
    /// # Panics
    /// When the matrices differ in `k` or in how they store or multiply their weights.
    pub fn matmul_group(matrices: &[(&PackedMatrix, Option<&[f32]>)], x: &[f32], m: usize) -> Vec<Vec<f32>> {
        let Some(&(first, _)) = matrices.first() else { return Vec::new() };
        let k = first.k;
        assert_eq!(x.len(), m * k, "input is not [{m}, {k}]");
        for &(matrix, bias) in matrices {
            assert_eq!(matrix.k, k, "grouped matrices differ in input width");
            if let Some(bias) = bias {
                assert_eq!(bias.len(), matrix.n, "bias is not [{}]", matrix.n);
            }
        }
        let mut outs: Vec<Vec<f32>> = matrices.iter().map(|(matrix, _)| vec![0.0f32; m * matrix.n]).collect();
        if m == 0 {
            return outs;
        }
        fn f32_panels(matrix: &PackedMatrix) -> &[f32] {
            match &matrix.panels {
                Panels::F32(w) => w.as_slice(),
                _ => panic!("grouped matrices differ in weight type"),
            }
        }
        fn bf16_panels(matrix: &PackedMatrix, want: Products) -> &[u16] {
            match &matrix.panels {
                Panels::Bf16 { bits, products } if *products == want => bits.as_slice(),
                _ => panic!("grouped matrices differ in weight type or products"),
            }
        }
        match &first.panels {
            Panels::F32(_) => {
                let weights: Vec<&[f32]> = matrices.iter().map(|(mat, _)| f32_panels(mat)).collect();
                run_group(matrices, &weights, &F32Inputs::new(x, k), m, &mut outs);
            }
            Panels::Bf16 { products: Products::F32, .. } => {
                let weights: Vec<&[u16]> = matrices.iter().map(|(mat, _)| bf16_panels(mat, Products::F32)).collect();
                run_group(matrices, &weights, &F32Inputs::new(x, k), m, &mut outs);
            }
            Panels::Bf16 { products: Products::Bf16, .. } => {
                let weights: Vec<&[u16]> = matrices.iter().map(|(mat, _)| bf16_panels(mat, Products::Bf16)).collect();
                #[cfg(target_arch = "x86_64")]
                if level().native_bf16() {
                    let pairs = k.div_ceil(2);
                    let x = x86::to_bf16_pairs(x, m, k);
                    run_group(matrices, &weights, &Bf16PairInputs { x: &x, pairs }, m, &mut outs);
                    return outs;
                }
                let rounded: Vec<f32> = x.iter().copied().map(round_to_bf16).collect();
                run_group(matrices, &weights, &F32Inputs::new(&rounded, k), m, &mut outs);
            }
        }
        outs
    }

    /// Output columns `panel·16..` for `rows`.
    fn panel<K: BlockKernel>(
        &self,
        w: &[K::Weight],
        kernel: &K,
        rows: std::ops::Range<usize>,
        panel: usize,
        bias: Option<&[f32]>,
        out: &SharedOutput,
    ) {
        let (k, n) = (self.k, self.n);
        let panel_len = K::Weight::panel_depth(k) * PANEL;
        let weights = &w[panel * panel_len..(panel + 1) * panel_len];
        let first_col = panel * PANEL;
        let cols = PANEL.min(n - first_col);
        let mut acc = [[0.0f32; PANEL]; ROW_CHUNK];
        for depth in (0..k).step_by(DEPTH_BLOCK) {
            let depth_len = DEPTH_BLOCK.min(k - depth);
            let block_weights = &weights[depth * PANEL..];
            let block_rows = even_blocks(rows.len(), kernel.rows_per_call());
            for (block, sums) in acc[..rows.len()].chunks_mut(block_rows).enumerate() {
                let first_row = rows.start + block * block_rows;
                kernel.multiply(first_row, depth, depth_len, block_weights, sums);
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

/// Weight bytes below which a product runs on the calling thread: waking the pool and handing
/// out tasks costs more than streaming so little (LocDiT's 64-wide in/out projections).
const SERIAL_BYTES: usize = 256 * 1024;

/// The products of [`PackedMatrix::matmul_group`]: the panels of all the matrices, in order, are
/// split into groups that rayon runs (times the row chunks), so a layer's q/k/v or gate/up
/// projections are one parallel region.
fn run_group<K: BlockKernel>(
    matrices: &[(&PackedMatrix, Option<&[f32]>)],
    weights: &[&[K::Weight]],
    kernel: &K,
    m: usize,
    outs: &mut [Vec<f32>],
) {
    // The first global panel of each matrix, and the total.
    let mut starts = Vec::with_capacity(matrices.len() + 1);
    let mut panels = 0;
    for (matrix, _) in matrices {
        starts.push(panels);
        panels += matrix.n.div_ceil(PANEL);
    }
    starts.push(panels);
    if panels == 0 {
        return;
    }
    let outputs: Vec<SharedOutput> = outs.iter_mut().map(|out| SharedOutput(out.as_mut_ptr())).collect();
    let row_chunks = m.div_ceil(ROW_CHUNK);
    let bytes: usize = weights.iter().map(|w| std::mem::size_of_val(*w)).sum();
    // Enough tasks for rayon to balance, few enough to keep each one worth its start-up.
    let wanted = if bytes < SERIAL_BYTES && row_chunks == 1 { 1 } else { rayon::current_num_threads() * 4 };
    let panel_groups = panels.min(wanted.div_ceil(row_chunks)).max(1);
    let per_group = panels.div_ceil(panel_groups);
    let task = |task: usize| {
        let (chunk, group) = (task / panel_groups, task % panel_groups);
        let rows = chunk * ROW_CHUNK..((chunk + 1) * ROW_CHUNK).min(m);
        let mut which = 0;
        for panel in group * per_group..((group + 1) * per_group).min(panels) {
            while panel >= starts[which + 1] {
                which += 1;
            }
            let (matrix, bias) = matrices[which];
            matrix.panel(weights[which], kernel, rows.clone(), panel - starts[which], bias, &outputs[which]);
        }
    };
    let tasks = row_chunks * panel_groups;
    if tasks == 1 {
        task(0);
    } else {
        (0..tasks).into_par_iter().for_each(task);
    }
}

/// One way of feeding input rows to a micro-kernel.
trait BlockKernel: Sync {
    type Weight: WeightElement;

    /// Rows one call takes.
    fn rows_per_call(&self) -> usize;

    /// `acc[r] (+)=` rows `first_row..` over depths `depth..depth + len` of a panel block
    /// (adding to `acc` unless `depth` is 0).
    fn multiply(&self, first_row: usize, depth: usize, len: usize, w: &[Self::Weight], acc: &mut [[f32; PANEL]]);
}

/// f32 input rows of `k`, for either weight type.
struct F32Inputs<'a, T> {
    x: &'a [f32],
    k: usize,
    weight: PhantomData<T>,
}

impl<'a, T> F32Inputs<'a, T> {
    fn new(x: &'a [f32], k: usize) -> Self {
        F32Inputs { x, k, weight: PhantomData }
    }
}

impl<T: WeightElement> BlockKernel for F32Inputs<'_, T> {
    type Weight = T;

    fn rows_per_call(&self) -> usize {
        kernel_rows()
    }

    fn multiply(&self, first_row: usize, depth: usize, len: usize, w: &[T], acc: &mut [[f32; PANEL]]) {
        micro_kernel(&self.x[first_row * self.k + depth..], acc, self.k, len, w, depth > 0);
    }
}

/// Input rows rounded to bf16 pairs (`pairs` u32 a row), for the AVX-512 BF16 kernel.
#[cfg(target_arch = "x86_64")]
struct Bf16PairInputs<'a> {
    x: &'a [u32],
    pairs: usize,
}

#[cfg(target_arch = "x86_64")]
impl BlockKernel for Bf16PairInputs<'_> {
    type Weight = u16;

    fn rows_per_call(&self) -> usize {
        DOT_ROWS
    }

    fn multiply(&self, first_row: usize, depth: usize, len: usize, w: &[u16], acc: &mut [[f32; PANEL]]) {
        let (pairs, first_pair) = (len.div_ceil(2), depth / 2);
        let x = &self.x[first_row * self.pairs + first_pair..];
        assert!(acc.len() <= DOT_ROWS && w.len() >= pairs * 2 * PANEL);
        assert!(x.len() >= (acc.len() - 1) * self.pairs + pairs);
        // SAFETY: the CPU has AVX-512 BF16 (this input type is only built at the level that
        // needs it, which is only selected where the CPU runs it); the lengths are checked above.
        unsafe { x86::dot_kernel(x, acc, self.pairs, pairs, w, depth > 0) };
    }
}

/// The output buffer shared by tasks that write disjoint elements.
struct SharedOutput(*mut f32);
// SAFETY: tasks write disjoint (row, column) ranges; the buffer outlives the parallel loop.
unsafe impl Sync for SharedOutput {}

/// Rows the f32-input kernel in use takes per call.
fn kernel_rows() -> usize {
    level().max_rows()
}

/// The block size that splits `rows` into as few blocks of at most `max` as possible, as evenly
/// as possible (22 rows with 12 a block: two of 11, not 12 + 10).
fn even_blocks(rows: usize, max: usize) -> usize {
    rows.div_ceil(rows.div_ceil(max).max(1)).max(1)
}

/// `acc[r][j] (+)= Σ_{i<depth} x[r·stride + i] · w(i, j)` for every row of `acc` (at most
/// [`kernel_rows`]); `accumulate` adds to what `acc` holds instead of starting from zero.
fn micro_kernel<T: WeightElement>(
    x: &[f32],
    acc: &mut [[f32; PANEL]],
    stride: usize,
    depth: usize,
    w: &[T],
    accumulate: bool,
) {
    let level = level();
    assert!(acc.len() <= level.max_rows() && w.len() >= T::panel_depth(depth) * PANEL);
    assert!(x.len() >= (acc.len() - 1) * stride + depth);
    #[cfg(target_arch = "x86_64")]
    if level != Level::Portable {
        // SAFETY: the CPU runs `level` (only such a level is selected); the slice lengths and
        // row count are checked above.
        unsafe { x86::micro_kernel(level, x, acc, stride, depth, w, accumulate) };
        return;
    }
    portable::micro_kernel(x, acc, stride, depth, w, accumulate);
}

/// Rearranges an `[n, k]` row-major matrix into panels (in parallel: this runs at load over
/// gigabytes of weights).
///
/// # Panics
/// When `VOXCPM_KERNEL` cannot be honoured: the level is resolved here so that a model's load
/// fails with the reason, rather than its first product.
fn pack<T: WeightElement>(rows: &[T], n: usize, k: usize) -> Vec<T> {
    level();
    assert_eq!(rows.len(), n * k, "weight is not [{n}, {k}]");
    let panel_len = T::panel_depth(k) * PANEL;
    let mut packed = vec![T::default(); n.div_ceil(PANEL) * panel_len];
    if k == 0 {
        return packed;
    }
    packed.par_chunks_mut(panel_len).enumerate().for_each(|(panel, out)| {
        for j in 0..PANEL.min(n - panel * PANEL) {
            let col = &rows[(panel * PANEL + j) * k..(panel * PANEL + j + 1) * k];
            for (i, &value) in col.iter().enumerate() {
                out[T::slot(i, j)] = value;
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
        let error = crate::testkit::parity::max_abs_diff(got, want);
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
            let packed = PackedMatrix::from_bf16(&bits, n, k, Products::F32);
            assert_close(
                &packed.matmul(&x, m, Some(&bias)),
                &naive(&x, m, &widened, n, k, Some(&bias)),
                &format!("bf16 {m}x{k}x{n}"),
            );

            let rounded: Vec<f32> = x.iter().copied().map(round_to_bf16).collect();
            let packed = PackedMatrix::from_bf16(&bits, n, k, Products::Bf16);
            assert_close(
                &packed.matmul(&x, m, Some(&bias)),
                &naive(&rounded, m, &widened, n, k, Some(&bias)),
                &format!("bf16 products {m}x{k}x{n}"),
            );
        }
    }

    /// The bf16 path must round its inputs: exact products of the same weights differ.
    #[test]
    fn bf16_products_differ_from_f32_products_by_the_input_rounding() {
        let (m, k, n) = (22, 256, 48);
        let x = values(m * k, 7);
        let bits = to_bf16(&values(n * k, 8));
        let exact = PackedMatrix::from_bf16(&bits, n, k, Products::F32).matmul(&x, m, None);
        let rounded = PackedMatrix::from_bf16(&bits, n, k, Products::Bf16).matmul(&x, m, None);
        let difference = crate::testkit::parity::max_abs_diff(&exact, &rounded);
        assert!(difference > 1e-4, "bf16 products equal f32 ones (difference {difference})");
        assert!(difference < 0.1, "bf16 products are far from f32 ones (difference {difference})");
    }

    /// Every kernel this CPU can run, for every row count it takes, against the portable one,
    /// over an odd depth (the last pair half used).
    #[test]
    fn each_available_kernel_agrees_with_the_portable_one() {
        let k = 37;
        let x = values(12 * k, 4);
        let w = values(k * PANEL, 5);
        let bits = to_bf16(&values(u16::panel_depth(k) * PANEL, 6));
        #[cfg(target_arch = "x86_64")]
        for level in Level::supported().into_iter().filter(|&level| level != Level::Portable) {
            for rows in 1..=level.max_rows() {
                for accumulate in [false, true] {
                    let (mut fast, mut plain) = (vec![[0.5; PANEL]; rows], vec![[0.5; PANEL]; rows]);
                    // SAFETY: `level` was detected; x holds 12 rows of k, w k rows of 16.
                    unsafe { x86::micro_kernel(level, &x, &mut fast, k, k, &w, accumulate) };
                    portable::micro_kernel(&x, &mut plain, k, k, &w, accumulate);
                    let what = format!("{level:?}, {rows} rows, accumulate {accumulate}");
                    fast.iter().zip(&plain).for_each(|(f, p)| assert_close(f, p, &what));
                    // SAFETY: as above, bits holds the padded pairs of k.
                    unsafe { x86::micro_kernel(level, &x, &mut fast, k, k, &bits, false) };
                    portable::micro_kernel(&x, &mut plain, k, k, &bits, false);
                    fast.iter().zip(&plain).for_each(|(f, p)| assert_close(f, p, &format!("{what}, bf16")));
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        if Level::Avx512Bf16.is_supported() {
            let pairs = x86::to_bf16_pairs(&x, 12, k);
            let rounded: Vec<f32> = x.iter().copied().map(round_to_bf16).collect();
            for rows in 1..=DOT_ROWS {
                for accumulate in [false, true] {
                    let (mut fast, mut plain) = (vec![[0.5; PANEL]; rows], vec![[0.5; PANEL]; rows]);
                    // SAFETY: the CPU has AVX-512 BF16; pairs holds 12 rows of k.div_ceil(2).
                    unsafe { x86::dot_kernel(&pairs, &mut fast, k.div_ceil(2), k.div_ceil(2), &bits, accumulate) };
                    portable::micro_kernel(&rounded, &mut plain, k, k, &bits, accumulate);
                    let what = format!("bf16 dot, {rows} rows, accumulate {accumulate}");
                    fast.iter().zip(&plain).for_each(|(f, p)| assert_close(f, p, &what));
                }
            }
        }
    }

    #[test]
    fn bf16_panels_hold_each_columns_depth_pair_side_by_side() {
        assert_eq!((u16::slot(0, 0), u16::slot(1, 0), u16::slot(0, 1), u16::slot(2, 0)), (0, 1, 2, 32));
        assert_eq!((f32::slot(0, 1), f32::slot(1, 0)), (1, 16));
        assert_eq!((u16::panel_depth(37), f32::panel_depth(37)), (38, 37));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn simd_bf16_rounding_matches_the_scalar_one() {
        if !Level::Avx512Bf16.is_supported() {
            println!("skipped: this CPU has no AVX-512 BF16");
            return;
        }
        let (m, k) = (3, 71);
        let x: Vec<f32> = values(m * k, 9).iter().map(|v| v * 1.000_37).collect();
        let pairs = x86::to_bf16_pairs(&x, m, k);
        for (row, packed) in x.chunks(k).zip(pairs.chunks(k.div_ceil(2))) {
            for (i, &value) in row.iter().enumerate() {
                let half = (packed[i / 2] >> (16 * (i % 2))) as u16;
                assert_eq!(half, bf16_bits(value), "input {i} ({value})");
            }
            assert_eq!(packed[k / 2] >> 16, 0, "the odd last input is paired with zero");
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
