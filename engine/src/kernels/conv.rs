//! CPU 1-D convolutions for the AudioVAE, on channel-major `[C, T]` f32 buffers (one batch item).
//!
//! Why not burn's conv1d on the CPU backend: it ran the VAE at 30-40 GFLOP/s (its im2col GEMM
//! packs per call and its depthwise path is a general grouped conv), so encoding a reference
//! clip took about half a second per second of audio. Here:
//! - a dense conv is one product on the packed kernels: its weight rows (bias appended) times
//!   the input's im2col columns, packed per call a time chunk at a time (the bias meets a row
//!   of ones), which leaves the output channel-major with no transposes;
//! - a depthwise conv is a direct loop per channel that vectorises over time;
//! - a transposed conv is one product (every kernel tap of every output channel a row) and an
//!   overlap-add.

use rayon::prelude::*;

use super::{PANEL, PackedMatrix};

/// Output positions per packed chunk of im2col columns: bounds the packed input to
/// `TIME_CHUNK · (c_in · kernel + 1)` floats (42 MB for the encoder's widest conv) whatever the
/// clip's length.
const TIME_CHUNK: usize = 4096;

/// How a conv's input channels reach its outputs.
#[derive(Debug, Clone)]
enum Grouping {
    /// Every input channel feeds every output: `[c_out, c_in · kernel + 1]` rows, the last
    /// column the bias.
    Dense { rows: Vec<f32> },
    /// One input channel per output (groups = channels): `[c, kernel]` taps and the bias.
    Depthwise { taps: Vec<f32>, bias: Vec<f32> },
}

/// A conv1d (no right padding) with its weight in the layout its CPU path multiplies by.
#[derive(Debug, Clone)]
pub struct Conv1d {
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    grouping: Grouping,
}

impl Conv1d {
    /// From a PyTorch weight `[c_out, c_in / groups, kernel]` (row-major) and its bias; `None`
    /// for groupings other than dense and depthwise, which the caller leaves to burn.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        weight: &[f32],
        bias: &[f32],
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        groups: usize,
    ) -> Option<Self> {
        assert!(kernel > 0 && stride > 0 && dilation > 0 && groups > 0 && c_in.is_multiple_of(groups));
        assert_eq!(
            weight.len(),
            c_out * (c_in / groups) * kernel,
            "conv weight is not [{c_out}, {}, {kernel}]",
            c_in / groups
        );
        assert_eq!(bias.len(), c_out, "conv bias is not [{c_out}]");
        let grouping = if groups == 1 {
            let depth = c_in * kernel;
            let mut rows = Vec::with_capacity(c_out * (depth + 1));
            for (o, taps) in weight.chunks_exact(depth).enumerate() {
                rows.extend_from_slice(taps);
                rows.push(bias[o]);
            }
            Grouping::Dense { rows }
        } else if groups == c_in && c_out == c_in {
            Grouping::Depthwise { taps: weight.to_vec(), bias: bias.to_vec() }
        } else {
            return None;
        };
        Some(Conv1d { c_in, c_out, kernel, stride, dilation, grouping })
    }

    /// Output positions for `t_in` inputs after `left_pad` zeros.
    pub fn output_len(&self, t_in: usize, left_pad: usize) -> usize {
        let span = self.dilation * (self.kernel - 1) + 1;
        (t_in + left_pad).checked_sub(span).map_or(0, |room| room / self.stride + 1)
    }

    /// `x` `[c_in, t_in]` after `left_pad` zeros on the left: `[c_out, output_len]`.
    pub fn forward(&self, x: &[f32], t_in: usize, left_pad: usize) -> Vec<f32> {
        assert_eq!(x.len(), self.c_in * t_in, "conv input is not [{}, {t_in}]", self.c_in);
        let t_out = self.output_len(t_in, left_pad);
        match &self.grouping {
            Grouping::Dense { rows } => self.dense(rows, x, t_in, left_pad, t_out),
            Grouping::Depthwise { taps, bias } => self.depthwise(taps, bias, x, t_in, left_pad, t_out),
        }
    }

    fn dense(&self, rows: &[f32], x: &[f32], t_in: usize, left_pad: usize, t_out: usize) -> Vec<f32> {
        let (c_in, kernel, stride, dilation) = (self.c_in, self.kernel, self.stride, self.dilation);
        let depth = c_in * kernel;
        let mut out = vec![0.0f32; self.c_out * t_out];
        for start in (0..t_out).step_by(TIME_CHUNK) {
            let cols = TIME_CHUNK.min(t_out - start);
            // Depth `c·kernel + j` of output column t reads input `t·stride + j·dilation` of
            // channel c, counted from the start of the padding; the last depth is the ones row.
            let columns = PackedMatrix::from_panel_rows(cols, depth + 1, |panel, d, row| {
                if d == depth {
                    row.fill(1.0);
                    return;
                }
                let (channel, tap) = (d / kernel, d % kernel);
                let input = &x[channel * t_in..(channel + 1) * t_in];
                let first = (start + panel * PANEL) * stride + tap * dilation;
                // The columns that still read the left padding, then the input itself.
                let padded = left_pad.saturating_sub(first).div_ceil(stride).min(row.len());
                row[..padded].fill(0.0);
                if padded == row.len() {
                    return;
                }
                let from = first + padded * stride - left_pad;
                for (value, &v) in row[padded..].iter_mut().zip(input[from..].iter().step_by(stride)) {
                    *value = v;
                }
            });
            let chunk = columns.matmul(rows, self.c_out, None);
            if cols == t_out {
                return chunk;
            }
            for (o, values) in chunk.chunks_exact(cols).enumerate() {
                out[o * t_out + start..o * t_out + start + cols].copy_from_slice(values);
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn depthwise(&self, taps: &[f32], bias: &[f32], x: &[f32], t_in: usize, left_pad: usize, t_out: usize) -> Vec<f32> {
        let (kernel, stride, dilation) = (self.kernel, self.stride, self.dilation);
        let mut out = vec![0.0f32; self.c_out * t_out];
        out.par_chunks_mut(t_out.max(1)).enumerate().for_each(|(c, y)| {
            y.fill(bias[c]);
            let input = &x[c * t_in..(c + 1) * t_in];
            for (j, &w) in taps[c * kernel..(c + 1) * kernel].iter().enumerate() {
                // Output t reads padded position t·stride + j·dilation, i.e. input
                // t·stride + j·dilation − left_pad: the outputs before `first` read padding.
                let shift = j * dilation;
                let first = left_pad.saturating_sub(shift).div_ceil(stride);
                if first >= y.len() {
                    continue;
                }
                if stride == 1 {
                    let from = first + shift - left_pad;
                    for (y, &v) in y[first..].iter_mut().zip(&input[from..]) {
                        *y += w * v;
                    }
                } else {
                    for (t, y) in y.iter_mut().enumerate().skip(first) {
                        *y += w * input[t * stride + shift - left_pad];
                    }
                }
            }
        });
        out
    }
}

/// A transposed conv1d (no padding, no output padding, groups 1), kept as `[c_out · kernel,
/// c_in]` rows: row `o·kernel + j` holds tap j of output channel o.
#[derive(Debug, Clone)]
pub struct ConvTranspose1d {
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    rows: Vec<f32>,
    bias: Vec<f32>,
}

impl ConvTranspose1d {
    /// From a PyTorch weight `[c_in, c_out, kernel]` (row-major) and its bias.
    pub fn new(weight: &[f32], bias: &[f32], c_in: usize, c_out: usize, kernel: usize, stride: usize) -> Self {
        assert!(kernel > 0 && stride > 0);
        assert_eq!(weight.len(), c_in * c_out * kernel, "transposed conv weight is not [{c_in}, {c_out}, {kernel}]");
        assert_eq!(bias.len(), c_out, "transposed conv bias is not [{c_out}]");
        let mut rows = vec![0.0f32; c_out * kernel * c_in];
        for c in 0..c_in {
            for (tap, &value) in weight[c * c_out * kernel..(c + 1) * c_out * kernel].iter().enumerate() {
                rows[tap * c_in + c] = value;
            }
        }
        ConvTranspose1d { c_in, c_out, kernel, stride, rows, bias: bias.to_vec() }
    }

    /// `x` `[c_in, t_in]`: `[c_out, (t_in − 1)·stride + kernel]`, the full (uncropped) output.
    pub fn forward(&self, x: &[f32], t_in: usize) -> Vec<f32> {
        assert_eq!(x.len(), self.c_in * t_in, "transposed conv input is not [{}, {t_in}]", self.c_in);
        let (kernel, stride) = (self.kernel, self.stride);
        if t_in == 0 {
            return Vec::new();
        }
        let columns = PackedMatrix::from_panel_rows(t_in, self.c_in, |panel, c, row| {
            let first = panel * PANEL;
            row.copy_from_slice(&x[c * t_in + first..c * t_in + first + row.len()]);
        });
        // taps[(o·kernel + j)·t_in + i]: what input frame i gives output o at offset j.
        let taps = columns.matmul(&self.rows, self.c_out * kernel, None);
        let t_out = (t_in - 1) * stride + kernel;
        let mut out = vec![0.0f32; self.c_out * t_out];
        out.par_chunks_mut(t_out).enumerate().for_each(|(o, y)| {
            y.fill(self.bias[o]);
            for j in 0..kernel {
                let tap = &taps[(o * kernel + j) * t_in..(o * kernel + j + 1) * t_in];
                for (i, &value) in tap.iter().enumerate() {
                    y[i * stride + j] += value;
                }
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    /// The definition: `y[o, t] = b[o] + Σ_{c in o's group, j} w[o, c, j] · x[c, t·s + j·d − pad]`.
    #[allow(clippy::too_many_arguments)]
    fn naive_conv(
        x: &[f32],
        w: &[f32],
        b: &[f32],
        (c_in, c_out, t_in): (usize, usize, usize),
        (kernel, stride, dilation, groups, pad): (usize, usize, usize, usize, usize),
    ) -> Vec<f32> {
        let per_group = c_in / groups;
        let outs_per_group = c_out / groups;
        let t_out = (t_in + pad - dilation * (kernel - 1) - 1) / stride + 1;
        let mut y = vec![0.0f32; c_out * t_out];
        for o in 0..c_out {
            let group = o / outs_per_group;
            for t in 0..t_out {
                let mut sum = f64::from(b[o]);
                for c in 0..per_group {
                    for j in 0..kernel {
                        let at = (t * stride + j * dilation) as isize - pad as isize;
                        if at >= 0 {
                            let input = x[(group * per_group + c) * t_in + at as usize];
                            sum += f64::from(w[(o * per_group + c) * kernel + j]) * f64::from(input);
                        }
                    }
                }
                y[o * t_out + t] = sum as f32;
            }
        }
        y
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let error = crate::testkit::parity::max_abs_diff(got, want);
        assert!(error <= 1e-4, "{what}: max error {error}");
    }

    #[test]
    fn dense_and_depthwise_convs_match_the_definition() {
        // (c_in, c_out, t_in), (kernel, stride, dilation, groups, left pad)
        let cases = [
            ((1, 8, 50), (7, 1, 1, 1, 6)),
            ((6, 5, 40), (1, 1, 1, 1, 0)),
            ((4, 8, 61), (4, 2, 1, 1, 2)),
            ((3, 6, 70), (10, 5, 1, 1, 5)),
            ((5, 3, 33), (3, 1, 1, 1, 2)),
            ((16, 16, 45), (7, 1, 3, 16, 18)),
            ((8, 8, 100), (7, 1, 9, 8, 54)),
            ((4, 4, 3), (7, 1, 3, 4, 18)),
            ((2, 3, 3), (7, 1, 3, 1, 18)),
            ((7, 7, 30), (3, 2, 2, 7, 4)),
            ((9, 4, 4200), (2, 1, 1, 1, 1)),
        ];
        for ((c_in, c_out, t_in), (kernel, stride, dilation, groups, pad)) in cases {
            let x = values(c_in * t_in, 1);
            let w = values(c_out * (c_in / groups) * kernel, 2);
            let b = values(c_out, 3);
            let conv = Conv1d::new(&w, &b, c_in, c_out, kernel, stride, dilation, groups).unwrap();
            let want = naive_conv(&x, &w, &b, (c_in, c_out, t_in), (kernel, stride, dilation, groups, pad));
            let what = format!("conv {c_in}->{c_out} k{kernel} s{stride} d{dilation} g{groups} pad {pad}");
            assert_eq!(conv.output_len(t_in, pad) * c_out, want.len(), "{what}: output length");
            assert_close(&conv.forward(&x, t_in, pad), &want, &what);
        }
    }

    #[test]
    fn other_groupings_are_left_to_the_caller() {
        assert!(Conv1d::new(&values(8 * 2 * 3, 1), &values(8, 2), 4, 8, 3, 1, 1, 2).is_none());
    }

    #[test]
    fn inputs_shorter_than_the_kernel_give_no_output() {
        let conv = Conv1d::new(&values(2 * 2 * 5, 1), &values(2, 2), 2, 2, 5, 1, 1, 1).unwrap();
        assert_eq!(conv.output_len(3, 0), 0);
        assert!(conv.forward(&values(6, 3), 3, 0).is_empty());
    }

    #[test]
    fn transposed_conv_matches_the_definition() {
        for (c_in, c_out, t_in, stride) in [(6, 4, 5, 3), (3, 2, 1, 2), (16, 8, 40, 8), (2, 5, 17, 1)] {
            let kernel = 2 * stride;
            let x = values(c_in * t_in, 4);
            let w = values(c_in * c_out * kernel, 5);
            let b = values(c_out, 6);
            let t_out = (t_in - 1) * stride + kernel;
            // y[o, i·s + j] = b[o] + Σ_c x[c, i] · w[c, o, j]
            let mut want = vec![0.0f64; c_out * t_out];
            for o in 0..c_out {
                (0..t_out).for_each(|t| want[o * t_out + t] = f64::from(b[o]));
                for c in 0..c_in {
                    for i in 0..t_in {
                        for j in 0..kernel {
                            let product = f64::from(x[c * t_in + i]) * f64::from(w[(c * c_out + o) * kernel + j]);
                            want[o * t_out + i * stride + j] += product;
                        }
                    }
                }
            }
            let want: Vec<f32> = want.into_iter().map(|v| v as f32).collect();
            let conv = ConvTranspose1d::new(&w, &b, c_in, c_out, kernel, stride);
            assert_close(&conv.forward(&x, t_in), &want, &format!("transposed {c_in}->{c_out} x{t_in} s{stride}"));
        }
    }
}
