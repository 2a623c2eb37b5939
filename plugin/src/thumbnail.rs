//! A take's waveform outline for the editor: the lowest and highest sample of each of a few
//! dozen equal stretches, computed on the worker once per render so the editor only draws.

/// Columns in a thumbnail: enough to tell takes apart at a glance, small enough to draw for
/// every take of every line each frame.
pub const COLUMNS: usize = 56;

/// (min, max) of each of `columns` equal stretches of `samples` (fewer when there are fewer
/// samples than columns; none for none). Non-finite samples are left out of their stretch.
pub fn peaks(samples: &[f32], columns: usize) -> Vec<(f32, f32)> {
    let columns = columns.min(samples.len());
    (0..columns)
        .map(|column| {
            let stretch = &samples[column * samples.len() / columns..(column + 1) * samples.len() / columns];
            stretch.iter().filter(|s| s.is_finite()).fold((0.0f32, 0.0f32), |(low, high), &s| (low.min(s), high.max(s)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_column_holds_the_extremes_of_its_stretch() {
        let samples: Vec<f32> = (0..100).map(|i| if i < 50 { -(i as f32) / 100.0 } else { i as f32 / 100.0 }).collect();
        let peaks = peaks(&samples, 4);
        assert_eq!(peaks, [(-0.24, 0.0), (-0.49, 0.0), (0.0, 0.74), (0.0, 0.99)]);
    }

    #[test]
    fn short_or_empty_audio_gives_fewer_columns_and_non_finite_samples_are_skipped() {
        assert!(peaks(&[], COLUMNS).is_empty());
        assert_eq!(peaks(&[0.5, -0.25], COLUMNS), [(0.0, 0.5), (-0.25, 0.0)]);
        assert_eq!(peaks(&[f32::NAN, 0.5, f32::INFINITY, -0.5], 2), [(0.0, 0.5), (-0.5, 0.0)]);
    }
}
