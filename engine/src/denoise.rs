//! The prompt denoiser (§6.8 `denoise`): reference and prompt clips are cleaned before they
//! are encoded, then brought to −20 LUFS as the official `ZipEnhancer` does.
//!
//! The official denoiser is ModelScope's ZipEnhancer (`iic/speech_zipenhancer_ans_multiloss_16k_base`,
//! a 16 kHz neural speech enhancer) whose weights cannot be fetched here. We use RNNoise
//! (the `nnnoiseless` port, weights built into the crate): a small recurrent network that
//! gates 22 frequency bands of 10 ms frames at 48 kHz. It removes steady and moderately
//! changing noise well; ZipEnhancer, a much larger model, also copes with babble and
//! reverberation that RNNoise leaves in part. The loudness step is the official one:
//! BS.1770 integrated loudness (`ebur128`, as `torchaudio.functional.loudness`) and one gain to
//! −20 LUFS.
//!
//! The chain for a clip at any rate: resample to 48 kHz → RNNoise on 480-sample frames
//! (scaled to ±32768, its 16-bit range, the input clamped to ±1 first) with its one-frame delay
//! removed → −20 LUFS → resample to the encoder rate.

use nnnoiseless::{DenoiseState, RnnModel};

use crate::audio_io::resample;
use crate::error::{Error, Result};

/// RNNoise's sample rate.
pub const DENOISER_RATE_HZ: u32 = 48_000;
/// RNNoise's frame: 10 ms at 48 kHz.
pub const FRAME_SAMPLES: usize = DenoiseState::FRAME_SIZE;
/// The official loudness target after denoising.
pub const TARGET_LOUDNESS_LUFS: f64 = -20.0;

/// The loaded denoiser; cheap to share, each clip gets its own recurrent state.
pub struct Denoiser {
    model: RnnModel,
}

impl std::fmt::Debug for Denoiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Denoiser(RNNoise)")
    }
}

impl Denoiser {
    /// Builds RNNoise from the weights inside the crate (no file, no download).
    pub fn new() -> Denoiser {
        Denoiser { model: RnnModel::default() }
    }

    /// The official chain for one clip: denoise, −20 LUFS, at `out_rate_hz`.
    pub fn clean_clip(&self, samples: &[f32], rate_hz: u32, out_rate_hz: u32) -> Result<Vec<f32>> {
        let mut at_48k = self.denoise(&resample(samples, rate_hz, DENOISER_RATE_HZ)?);
        normalize_loudness(&mut at_48k, DENOISER_RATE_HZ)?;
        resample(&at_48k, DENOISER_RATE_HZ, out_rate_hz)
    }

    /// RNNoise alone on 48 kHz samples in ±1: same length, aligned with the input (its one-frame
    /// delay removed), any length (the last frame is zero-padded).
    pub fn denoise(&self, samples: &[f32]) -> Vec<f32> {
        let mut state = DenoiseState::with_model(&self.model);
        // One frame more than the input, so that the delayed output covers all of it.
        let frames = samples.len().div_ceil(FRAME_SAMPLES) + 1;
        let mut input = vec![0f32; FRAME_SAMPLES];
        let mut output = vec![0f32; FRAME_SAMPLES];
        let mut cleaned = Vec::with_capacity(frames * FRAME_SAMPLES);
        for frame in 0..frames {
            let start = (frame * FRAME_SAMPLES).min(samples.len());
            let end = (start + FRAME_SAMPLES).min(samples.len());
            input.fill(0.0);
            for (slot, &x) in input.iter_mut().zip(&samples[start..end]) {
                // Non-finite samples would poison the recurrent state for the rest of the clip.
                *slot = if x.is_finite() { x.clamp(-1.0, 1.0) * 32768.0 } else { 0.0 };
            }
            state.process_frame(&mut output, &input);
            if frame > 0 {
                cleaned.extend(output.iter().map(|y| y / 32768.0));
            }
        }
        cleaned.truncate(samples.len());
        cleaned
    }
}

impl Default for Denoiser {
    fn default() -> Self {
        Denoiser::new()
    }
}

/// Scales `samples` to [`TARGET_LOUDNESS_LUFS`] (BS.1770 integrated loudness, gated) and
/// returns the loudness measured before. A clip with no measurable loudness (silence, or
/// shorter than one 400 ms gating block) is left as it is and `None` is returned: the
/// official gain would be infinite or NaN there.
pub fn normalize_loudness(samples: &mut [f32], rate_hz: u32) -> Result<Option<f64>> {
    let loudness = integrated_loudness(samples, rate_hz)?;
    let Some(loudness) = loudness else {
        return Ok(None);
    };
    let gain = 10f64.powf((TARGET_LOUDNESS_LUFS - loudness) / 20.0) as f32;
    for x in samples.iter_mut() {
        *x *= gain;
    }
    Ok(Some(loudness))
}

/// BS.1770 integrated loudness in LUFS, `None` when there is none to measure.
pub fn integrated_loudness(samples: &[f32], rate_hz: u32) -> Result<Option<f64>> {
    let failed = |e: ebur128::Error| Error::InvalidInput(format!("loudness measurement failed: {e}"));
    let mut meter = ebur128::EbuR128::new(1, rate_hz, ebur128::Mode::I).map_err(failed)?;
    let finite: Vec<f32> = samples.iter().map(|&x| if x.is_finite() { x } else { 0.0 }).collect();
    meter.add_frames_f32(&finite).map_err(failed)?;
    let loudness = meter.loudness_global().map_err(failed)?;
    Ok(loudness.is_finite().then_some(loudness))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(len: usize, amplitude: f32) -> Vec<f32> {
        (0..len).map(|i| amplitude * (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin()).collect()
    }

    #[test]
    fn short_silent_and_clipped_clips_give_finite_samples_of_the_same_length() {
        let denoiser = Denoiser::new();
        for clip in [vec![], vec![0.3; 7], vec![0.0; 48_000], [5.0, -5.0, f32::NAN, 1.0].repeat(3000)] {
            let out = denoiser.denoise(&clip);
            assert_eq!(out.len(), clip.len());
            assert!(out.iter().all(|x| x.is_finite()));
            let cleaned = denoiser.clean_clip(&clip, 48_000, 16_000).unwrap();
            assert!(cleaned.iter().all(|x| x.is_finite()), "{} samples", clip.len());
        }
        let cleaned = denoiser.clean_clip(&tone(100, 0.5), 22_050, 16_000).unwrap();
        assert!(cleaned.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn loudness_goes_to_minus_20_lufs_and_silence_is_left_alone() {
        let mut quiet = tone(48_000 * 2, 0.01);
        let before = normalize_loudness(&mut quiet, 48_000).unwrap().unwrap();
        assert!(before < -35.0, "{before}");
        let after = integrated_loudness(&quiet, 48_000).unwrap().unwrap();
        assert!((after - TARGET_LOUDNESS_LUFS).abs() < 0.05, "{after}");
        let mut silence = vec![0.0; 48_000];
        assert_eq!(normalize_loudness(&mut silence, 48_000).unwrap(), None);
        assert!(silence.iter().all(|&x| x == 0.0));
        let mut short = tone(1000, 0.5);
        assert_eq!(normalize_loudness(&mut short, 48_000).unwrap(), None, "shorter than a gating block");
    }
}
