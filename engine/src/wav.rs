//! WAV out: the two byte layouts VoxCPMEx callers receive, and a file writer that is a valid
//! WAV after every chunk (for `say --stream`).
//!
//! The byte layouts are written by hand rather than with `hound` because their headers must
//! be exactly the 44-byte canonical ones VoxCPMEx produces (format tag 1 or 3, no `fact` or
//! extensible chunk), which is what clients of the bridge compare against.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use crate::error::{Error, Result};
use crate::whole_file;

/// 16-bit PCM mono WAV, as the Python bridge's `generate` reply (soundfile's default subtype):
/// samples are clipped to [-1, 1] and scaled by 32767, rounding to nearest.
pub fn encode_pcm16(samples: &[f32], sample_rate: u32) -> Vec<u8> {
    let mut out = header(1, 16, sample_rate, samples.len());
    for &x in samples {
        let v = (x.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// 32-bit IEEE-float mono WAV, as VoxCPMEx's `collect_stream` builds it.
pub fn encode_float(samples: &[f32], sample_rate: u32) -> Vec<u8> {
    let mut out = header(3, 32, sample_rate, samples.len());
    for &x in samples {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// The canonical 44-byte RIFF/WAVE header for one channel.
fn header(format_tag: u16, bits: u16, sample_rate: u32, samples: usize) -> Vec<u8> {
    let block_align = bits / 8;
    // Sizes past 4 GiB (and byte rates past u32) cannot be told in this header; they saturate
    // rather than wrap, as other writers do.
    let data_len = u32::try_from(samples.saturating_mul(block_align as usize)).unwrap_or(u32::MAX);
    let mut h = Vec::with_capacity(44 + samples * block_align as usize);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&format_tag.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&sample_rate.to_le_bytes());
    h.extend_from_slice(&sample_rate.saturating_mul(block_align as u32).to_le_bytes());
    h.extend_from_slice(&block_align.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

/// A mono 32-bit float WAV file written chunk by chunk. The header is brought up to date after
/// every chunk, so a reader opening the file at any moment sees a valid, complete WAV.
pub struct WavFileWriter {
    writer: hound::WavWriter<BufWriter<File>>,
    path: std::path::PathBuf,
}

impl WavFileWriter {
    pub fn create(path: &Path, sample_rate: u32) -> Result<Self> {
        // hound computes the byte rate (4 bytes a sample) without a check.
        if sample_rate == 0 || sample_rate.checked_mul(4).is_none() {
            return Err(Error::InvalidInput(format!("{}: cannot write a WAV at {sample_rate} Hz", path.display())));
        }
        let spec =
            hound::WavSpec { channels: 1, sample_rate, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
        let writer = hound::WavWriter::create(path, spec).map_err(|e| wav_error(path, e))?;
        Ok(WavFileWriter { writer, path: path.to_owned() })
    }

    /// Appends samples and updates the header.
    pub fn append(&mut self, samples: &[f32]) -> Result<()> {
        for &x in samples {
            self.writer.write_sample(x).map_err(|e| wav_error(&self.path, e))?;
        }
        self.writer.flush().map_err(|e| wav_error(&self.path, e))
    }

    pub fn finish(self) -> Result<()> {
        let path = self.path;
        self.writer.finalize().map_err(|e| wav_error(&path, e))
    }
}

/// Writes a whole mono 32-bit float WAV file, replacing any file of that name whole
/// ([`whole_file::replace`]). Devices and pipes are written directly.
pub fn write_float_file(path: &Path, samples: &[f32], sample_rate: u32) -> Result<()> {
    let write = |path: &Path| {
        let mut writer = WavFileWriter::create(path, sample_rate)?;
        writer.append(samples)?;
        writer.finish()
    };
    if path.exists() && !path.is_file() { write(path) } else { whole_file::replace(path, write) }
}

fn wav_error(path: &Path, e: hound::Error) -> Error {
    match e {
        hound::Error::IoError(io) => Error::write(path, io),
        other => Error::InvalidInput(format!("{}: cannot write WAV ({other})", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> (hound::WavSpec, Vec<f32>) {
        let mut reader = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
        let spec = reader.spec();
        let samples = match spec.sample_format {
            hound::SampleFormat::Float => reader.samples::<f32>().map(Result::unwrap).collect(),
            hound::SampleFormat::Int => reader.samples::<i16>().map(|s| s.unwrap() as f32 / 32767.0).collect(),
        };
        (spec, samples)
    }

    #[test]
    fn pcm16_is_a_canonical_clipped_48k_wav() {
        let bytes = encode_pcm16(&[0.0, 0.5, -1.0, 2.0, -3.0], 48_000);
        assert_eq!(bytes.len(), 44 + 10);
        assert_eq!(&bytes[20..22], &1u16.to_le_bytes(), "format tag PCM");
        let (spec, samples) = read(&bytes);
        assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (1, 48_000, 16));
        assert_eq!(samples, [0.0, 16384.0 / 32767.0, -1.0, 1.0, -1.0]);
    }

    #[test]
    fn float_wav_has_the_voxcpmex_header() {
        let bytes = encode_float(&[0.25, -0.75], 48_000);
        assert_eq!(bytes.len(), 44 + 8);
        assert_eq!(&bytes[20..22], &3u16.to_le_bytes(), "format tag IEEE float");
        assert_eq!(&bytes[28..32], &(48_000u32 * 4).to_le_bytes(), "byte rate");
        assert_eq!(read(&bytes).1, [0.25, -0.75]);
    }

    #[test]
    fn rates_a_header_cannot_hold_are_refused_or_saturated_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        for rate in [0, u32::MAX / 2] {
            assert!(WavFileWriter::create(&dir.path().join("x.wav"), rate).is_err(), "{rate}");
        }
        let bytes = encode_float(&[0.0], u32::MAX);
        assert_eq!(&bytes[28..32], &u32::MAX.to_le_bytes(), "byte rate saturates");
    }

    #[test]
    fn the_file_is_valid_after_every_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.wav");
        let mut writer = WavFileWriter::create(&path, 48_000).unwrap();
        writer.append(&[0.1; 100]).unwrap();
        assert_eq!(read(&std::fs::read(&path).unwrap()).1.len(), 100);
        writer.append(&[0.2; 50]).unwrap();
        assert_eq!(read(&std::fs::read(&path).unwrap()).1.len(), 150);
        writer.finish().unwrap();
    }

    #[test]
    fn a_whole_file_replaces_the_old_one_whole_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("line.wav");
        write_float_file(&path, &[0.5; 10], 48_000).unwrap();
        write_float_file(&path, &[0.25; 20], 48_000).unwrap();
        assert_eq!(read(&std::fs::read(&path).unwrap()).1, [0.25; 20]);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["line.wav"]);
    }

    /// A full disk (Linux's /dev/full answers every write with ENOSPC) and an impossible folder
    /// are write errors naming the path; the old file is kept and no partial file is left.
    #[test]
    fn write_failures_name_the_path_and_keep_the_old_file() {
        #[cfg(target_os = "linux")]
        match write_float_file(Path::new("/dev/full"), &[0.5; 10], 48_000) {
            Err(Error::Write { path, source }) => {
                assert_eq!(path, Path::new("/dev/full"));
                assert_eq!(source.raw_os_error(), Some(28), "ENOSPC: {source}");
            }
            other => panic!("expected a write error, got {other:?}"),
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"old").unwrap();
        let under_a_file = file.join("line.wav");
        let error = write_float_file(&under_a_file, &[0.5; 10], 48_000).unwrap_err();
        assert!(error.to_string().contains(&*under_a_file.to_string_lossy()), "{error}");
        assert_eq!(std::fs::read(&file).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
