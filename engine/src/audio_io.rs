//! Prompt and reference clips from WAV files: any sample format, rate and channel count in,
//! mono f32 at the model's encoder rate out.
//!
//! The official code loads clips with `librosa.load(sr=16000, mono=True)` (soxr resampling,
//! channel average). We average channels the same way and resample with rubato's FFT
//! resampler, so a clip already at the encoder rate is bit-identical and others differ only
//! by resampler design.

use std::path::Path;

use crate::error::{Error, Result};
use crate::resample::{StreamResampler, is_plausible_sample};

/// The sample rates a clip may have. Beyond them the resampler's work and memory grow with
/// the rate (an FFT as long as the rate when it shares no factor with the target rate) or
/// the output with the ratio (a clip declared at 1 Hz would become 16 000 times longer).
pub const CLIP_RATES_HZ: std::ops::RangeInclusive<u32> = 4_000..=768_000;

/// Reads a WAV file as mono f32 (channels averaged) and its sample rate.
pub fn read_wav_mono(path: &Path) -> Result<(Vec<f32>, u32)> {
    let bad = |message: String| Error::InvalidInput(format!("{}: {message}", path.display()));
    let mut reader = hound::WavReader::open(path).map_err(|e| match e {
        // A file that cannot be opened is an I/O problem; one that opens but ends early is a bad WAV.
        hound::Error::IoError(io)
            if matches!(io.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied) =>
        {
            Error::io(path, io)
        }
        other => bad(format!("not a readable WAV file ({other})")),
    })?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(bad("WAV header declares no channels or a zero sample rate".into()));
    }
    if !CLIP_RATES_HZ.contains(&spec.sample_rate) {
        return Err(bad(format!(
            "the sample rate {} Hz is outside {}..={} Hz",
            spec.sample_rate,
            CLIP_RATES_HZ.start(),
            CLIP_RATES_HZ.end()
        )));
    }
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader.samples::<i32>().map(|s| s.map(|v| v as f32 * scale)).collect::<Result<_, _>>()
        }
    }
    .map_err(|e| bad(format!("corrupt sample data ({e})")))?;
    if let Some((i, x)) = interleaved.iter().enumerate().find(|(_, x)| !is_plausible_sample(**x)) {
        return Err(bad(format!("corrupt sample data (sample {i} is {x}; full scale is ±1)")));
    }
    let channels = spec.channels as usize;
    let mono = interleaved.chunks_exact(channels).map(|frame| frame.iter().sum::<f32>() / channels as f32).collect();
    Ok((mono, spec.sample_rate))
}

/// Resamples mono audio from `from_hz` to `to_hz`: the [`StreamResampler`] fed the whole clip.
/// Equal rates give a copy, unchecked (no FFT for a bad sample to break; the denoiser, for
/// one, silences non-finite samples itself).
pub fn resample(samples: &[f32], from_hz: u32, to_hz: u32) -> Result<Vec<f32>> {
    if from_hz == to_hz || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let mut stream = StreamResampler::new(from_hz, to_hz)?;
    let mut output = Vec::with_capacity(stream.output_len(samples.len()));
    let mut rest = samples;
    loop {
        output.extend(std::iter::from_fn(|| stream.pull()));
        if stream.is_finished() {
            return Ok(output);
        }
        let taken = stream
            .push(rest)
            .map_err(|bad| Error::InvalidInput(format!("cannot resample {from_hz} Hz to {to_hz} Hz: {bad}")))?;
        rest = &rest[taken..];
        if rest.is_empty() {
            stream.finish();
        }
    }
}

/// A clip ready for the VAE encoder: read, mixed to mono, resampled to `rate_hz`.
pub fn load_clip(path: &Path, rate_hz: u32) -> Result<Vec<f32>> {
    let (samples, rate) = read_wav_mono(path)?;
    resample(&samples, rate, rate_hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, spec: hound::WavSpec, frames: usize, value: impl Fn(usize, u16) -> f32) {
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..frames {
            for c in 0..spec.channels {
                match spec.sample_format {
                    hound::SampleFormat::Float => w.write_sample(value(i, c)).unwrap(),
                    hound::SampleFormat::Int => w.write_sample((value(i, c) * 32767.0) as i16).unwrap(),
                }
            }
        }
        w.finalize().unwrap();
    }

    #[test]
    fn stereo_int16_is_averaged_to_mono() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        write(&path, spec, 100, |_, c| if c == 0 { 0.5 } else { -0.25 });
        let (mono, rate) = read_wav_mono(&path).unwrap();
        assert_eq!((mono.len(), rate), (100, 16000));
        assert!(mono.iter().all(|&x| (x - 0.125).abs() < 1e-3), "{}", mono[0]);
    }

    #[test]
    fn resampling_keeps_duration_and_a_tone() {
        let rate_in = 44100;
        let tone: Vec<f32> =
            (0..rate_in).map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / rate_in as f32).sin()).collect();
        let out = resample(&tone, rate_in as u32, 16000).unwrap();
        assert!((out.len() as i64 - 16000).abs() <= 2, "{}", out.len());
        // The middle matches the ideal 440 Hz tone at the new rate; the FFT resampler leaves a
        // sub-sample delay (0.2 samples here), hence the tolerance.
        let max_err = (4000..12000)
            .map(|i| (out[i] - (i as f32 * 440.0 * std::f32::consts::TAU / 16000.0).sin()).abs())
            .fold(0f32, f32::max);
        assert!(max_err < 5e-2, "max error {max_err}");
    }

    #[test]
    fn broken_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.wav");
        std::fs::write(&path, b"RIFF....WAVEjunk").unwrap();
        let err = read_wav_mono(&path).unwrap_err().to_string();
        assert!(err.contains("bad.wav") && err.contains("WAV"), "{err}");
        let missing = read_wav_mono(&dir.path().join("none.wav")).unwrap_err().to_string();
        assert!(missing.contains("none.wav"), "{missing}");
    }

    #[test]
    fn absurd_rates_and_samples_are_refused_before_resampling() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wav");
        let float = |sample_rate| hound::WavSpec {
            channels: 1,
            sample_rate,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        // Found by fuzzing: 1 Hz made the resampled clip 16 000 times longer (a hang), 2^31-1 Hz
        // an FFT of 2^31 points (a failed allocation), and NaN or 1e38 a panic inside rubato.
        for rate in [1, 3_999, 768_001, 500_000_000] {
            write(&path, float(rate), 10, |_, _| 0.5);
            let err = load_clip(&path, 16_000).unwrap_err().to_string();
            assert!(err.contains("sample rate"), "{rate}: {err}");
        }
        for value in [f32::NAN, f32::INFINITY, 1e38] {
            write(&path, float(48_000), 10, |i, _| if i == 5 { value } else { 0.0 });
            let err = load_clip(&path, 16_000).unwrap_err().to_string();
            assert!(err.contains("sample 5"), "{value}: {err}");
        }
        write(&path, float(4_000), 10, |_, _| -2.0);
        assert_eq!(load_clip(&path, 4_000).unwrap(), vec![-2.0; 10]);
    }
}
