//! The one resampler: rubato's FFT resampler, fed in pieces and pulled sample by sample without
//! allocating once built, so the plugin's audio thread can use it as it is; the engine's
//! whole-clip [`resample`](crate::audio_io::resample) is this same stream run to its end.
//!
//! Its output is what rubato's whole-clip `process_all` makes of the same input, whatever the
//! pieces: the startup delay is dropped, the last chunk is padded with zeros, and the output is
//! ⌈len · to / from⌉ samples, computed in f64 as rubato does (so one more where rounding tips
//! the product over a whole number).
//!
//! It refuses samples that are not audio (NaN, infinities, magnitudes beyond
//! [`MAX_FLOAT_SAMPLE`]) before they reach the FFT, where one of them would spread over a whole
//! block and make rubato panic on the NaN.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use crate::error::{Error, Result};

/// The largest magnitude a float sample may have (full scale is 1; this is 120 dB above it).
/// Larger values, like NaN and infinity, are corrupt data: they overflow the resampler's FFT
/// to NaN, and rubato then panics.
pub const MAX_FLOAT_SAMPLE: f32 = 1e6;

/// Input frames per FFT call: rubato splits them into sub-chunks of about 256 frames.
const CHUNK_FRAMES: usize = 1024;

/// False for NaN, infinities and samples beyond [`MAX_FLOAT_SAMPLE`]: corrupt audio, never
/// resampled or played.
pub fn is_plausible_sample(x: f32) -> bool {
    x.abs() <= MAX_FLOAT_SAMPLE
}

/// A sample that is not audio, refused by [`StreamResampler::commit`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NotAudio {
    /// Its place in the stream since the last reset.
    pub index: usize,
    pub value: f32,
}

impl std::fmt::Display for NotAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sample {} is {}, not audio (full scale is ±1)", self.index, self.value)
    }
}

impl std::error::Error for NotAudio {}

/// One mono stream from one rate to another. Input goes in through [`input_space`] and
/// [`commit`] (or [`push`]), output comes out of [`pull`]; [`finish`] marks the end of the input.
/// One chunk is in flight at a time: input is taken only once the output of the last chunk has
/// been pulled.
///
/// [`input_space`]: Self::input_space
/// [`commit`]: Self::commit
/// [`push`]: Self::push
/// [`pull`]: Self::pull
/// [`finish`]: Self::finish
pub struct StreamResampler {
    /// `None` when the rates are equal: samples pass through unchanged.
    fft: Option<Fft<f32>>,
    from_hz: u32,
    to_hz: u32,
    ratio: f64,
    /// The chunk being gathered: `input[..pending]`.
    input: Box<[f32]>,
    pending: usize,
    /// The last chunk's output not yet pulled: `output[read..filled]`.
    output: Box<[f32]>,
    read: usize,
    filled: usize,
    /// Startup delay still to drop from the FFT's output.
    skip: usize,
    /// Input samples committed and output samples released since the last reset.
    consumed: usize,
    produced: usize,
    input_ended: bool,
    /// A sample that was not audio came in: the stream is over.
    refused: bool,
}

impl StreamResampler {
    /// All allocation happens here.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<StreamResampler> {
        let fft = if from_hz == to_hz {
            None
        } else {
            let fft = Fft::<f32>::new(from_hz as usize, to_hz as usize, CHUNK_FRAMES, 1, FixedSync::Both)
                .map_err(|e| Error::InvalidInput(format!("cannot resample {from_hz} Hz to {to_hz} Hz: {e}")))?;
            Some(fft)
        };
        // Both fixed: every call takes `input_frames_next` frames and makes `output_frames_next`.
        let (input_len, output_len, ratio, skip) = match &fft {
            Some(fft) => (fft.input_frames_next(), fft.output_frames_next(), fft.resample_ratio(), fft.output_delay()),
            None => (CHUNK_FRAMES, CHUNK_FRAMES, 1.0, 0),
        };
        Ok(StreamResampler {
            fft,
            from_hz,
            to_hz,
            ratio,
            input: vec![0.0; input_len].into(),
            pending: 0,
            output: vec![0.0; output_len].into(),
            read: 0,
            filled: 0,
            skip,
            consumed: 0,
            produced: 0,
            input_ended: false,
            refused: false,
        })
    }

    pub fn source_rate(&self) -> u32 {
        self.from_hz
    }

    pub fn target_rate(&self) -> u32 {
        self.to_hz
    }

    /// How many samples `input_len` input samples become.
    pub fn output_len(&self, input_len: usize) -> usize {
        (self.ratio * input_len as f64).ceil() as usize
    }

    /// Ready for a new stream.
    pub fn reset(&mut self) {
        if let Some(fft) = self.fft.as_mut() {
            fft.reset();
            self.skip = fft.output_delay();
        }
        self.input.fill(0.0);
        self.pending = 0;
        self.read = 0;
        self.filled = 0;
        self.consumed = 0;
        self.produced = 0;
        self.input_ended = false;
        self.refused = false;
    }

    /// Where the next input samples go (then [`commit`](Self::commit) them). Empty while
    /// output waits to be pulled, and once the input has ended.
    pub fn input_space(&mut self) -> &mut [f32] {
        if self.input_ended || self.refused || self.read < self.filled {
            return &mut [];
        }
        &mut self.input[self.pending..]
    }

    /// Takes the first `count` samples written into [`input_space`](Self::input_space). A
    /// sample that is not audio ends the stream instead: nothing more comes out of it.
    pub fn commit(&mut self, count: usize) -> std::result::Result<(), NotAudio> {
        let count = count.min(self.input_space().len());
        let committed = &self.input[self.pending..self.pending + count];
        if let Some(at) = committed.iter().position(|&x| !is_plausible_sample(x)) {
            self.refused = true;
            return Err(NotAudio { index: self.consumed + at, value: committed[at] });
        }
        self.pending += count;
        self.consumed += count;
        Ok(())
    }

    /// Copies as much of `samples` as there is room for and commits it; returns how many.
    pub fn push(&mut self, samples: &[f32]) -> std::result::Result<usize, NotAudio> {
        let space = self.input_space();
        let count = space.len().min(samples.len());
        space[..count].copy_from_slice(&samples[..count]);
        self.commit(count).map(|()| count)
    }

    /// Marks the end of the input: what is left of it is resampled and the output ends after
    /// [`output_len`](Self::output_len) of it.
    pub fn finish(&mut self) {
        self.input_ended = true;
    }

    /// The next output sample; `None` when it needs more input (or [`finish`](Self::finish)),
    /// or when the stream is over.
    pub fn pull(&mut self) -> Option<f32> {
        while self.read == self.filled {
            if !self.chunk_ready() {
                return None;
            }
            self.process_chunk();
        }
        let sample = self.output[self.read];
        self.read += 1;
        Some(sample)
    }

    /// Whether every output sample has been pulled (after [`finish`](Self::finish)), or a
    /// sample that was not audio ended the stream.
    pub fn is_finished(&self) -> bool {
        self.refused || (self.input_ended && self.read == self.filled && !self.chunk_ready())
    }

    /// Whether [`process_chunk`](Self::process_chunk) has something to make.
    fn chunk_ready(&self) -> bool {
        if self.refused {
            return false;
        }
        match self.fft {
            None => self.pending > 0,
            Some(_) if self.input_ended => self.produced < self.output_len(self.consumed),
            Some(_) => self.pending == self.input.len(),
        }
    }

    /// Turns the gathered input (zero-padded at the end of the stream) into output.
    fn process_chunk(&mut self) {
        let Some(fft) = self.fft.as_mut() else {
            self.output[..self.pending].copy_from_slice(&self.input[..self.pending]);
            (self.read, self.filled) = (0, self.pending);
            self.produced += self.pending;
            self.pending = 0;
            return;
        };
        self.input[self.pending..].fill(0.0);
        let (input_len, output_len) = (self.input.len(), self.output.len());
        let processed = match (
            InterleavedSlice::new(&self.input[..], 1, input_len),
            InterleavedSlice::new_mut(&mut self.output[..], 1, output_len),
        ) {
            (Ok(input), Ok(mut output)) => fft.process_into_buffer(&input, &mut output, None).ok(),
            _ => None,
        };
        self.pending = 0;
        // The buffers are sized by the resampler itself, so this cannot fail; should it, the
        // stream ends rather than playing stale output.
        let Some((_, written)) = processed else {
            self.refused = true;
            return;
        };
        let dropped = self.skip.min(written);
        self.skip -= dropped;
        let mut usable = written - dropped;
        if self.input_ended {
            usable = usable.min(self.output_len(self.consumed) - self.produced);
        }
        self.produced += usable;
        (self.read, self.filled) = (dropped, dropped + usable);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio_io::resample;
    use crate::testkit::parity::max_abs_diff;

    /// Every pair the models and hosts meet: model rates 16, 24, 44.1 and 48 kHz, host rates
    /// 44.1 to 96 kHz, and down again.
    const PAIRS: [(u32, u32); 9] = [
        (48_000, 44_100),
        (48_000, 96_000),
        (44_100, 48_000),
        (16_000, 48_000),
        (16_000, 44_100),
        (24_000, 88_200),
        (44_100, 16_000),
        (22_050, 22_050),
        (96_000, 8_000),
    ];

    fn signal(len: usize) -> Vec<f32> {
        (0..len).map(|i| ((i as f32 * 0.013).sin() + (i as f32 * 0.31).sin()) * 0.4).collect()
    }

    /// rubato's own whole-clip resampling with our settings.
    fn rubato_whole_clip(samples: &[f32], from_hz: u32, to_hz: u32) -> Vec<f32> {
        if from_hz == to_hz {
            return samples.to_vec();
        }
        let mut fft = Fft::<f32>::new(from_hz as usize, to_hz as usize, CHUNK_FRAMES, 1, FixedSync::Both).unwrap();
        let input = InterleavedSlice::new(samples, 1, samples.len()).unwrap();
        fft.process_all(&input, samples.len(), None).unwrap().take_data()
    }

    /// Feeds `samples` in pieces of the given sizes (cycled), pulling what comes out between them.
    fn stream_in_pieces(stream: &mut StreamResampler, samples: &[f32], pieces: &[usize]) -> Vec<f32> {
        let mut output = Vec::new();
        let mut rest = samples;
        for &piece in pieces.iter().cycle() {
            output.extend(std::iter::from_fn(|| stream.pull()));
            if stream.is_finished() {
                break;
            }
            let space = stream.input_space();
            let count = space.len().min(piece).min(rest.len());
            space[..count].copy_from_slice(&rest[..count]);
            stream.commit(count).unwrap();
            rest = &rest[count..];
            if rest.is_empty() {
                stream.finish();
            }
        }
        output
    }

    #[test]
    fn a_whole_clip_is_rubatos_whole_clip_resampling_bit_for_bit() {
        // Lengths around the chunk: shorter than one, exactly one, one more, many.
        for len in [1, 300, 1023, 1024, 1025, 2048, 20_011] {
            let clip = signal(len);
            for (from, to) in PAIRS {
                let ours = resample(&clip, from, to).unwrap();
                let rubato = rubato_whole_clip(&clip, from, to);
                assert_eq!(ours.len(), rubato.len(), "{len} samples, {from} -> {to} Hz: length");
                assert_eq!(max_abs_diff(&ours, &rubato), 0.0, "{len} samples, {from} -> {to} Hz");
            }
        }
    }

    #[test]
    fn the_output_length_is_the_input_length_times_the_ratio_rounded_up() {
        for (from, to) in PAIRS {
            for len in [0, 1, 1000, 44_100, 44_101] {
                let out = resample(&signal(len), from, to).unwrap();
                let exact = (len as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
                // rubato's f64 product may land just above a whole number: one sample more.
                assert!((exact..=exact + 1).contains(&out.len()), "{len} samples, {from} -> {to} Hz: {}", out.len());
                assert_eq!(out.len(), StreamResampler::new(from, to).unwrap().output_len(len));
            }
        }
    }

    #[test]
    fn a_stream_fed_in_any_pieces_makes_the_whole_clips_samples() {
        let clip = signal(20_011);
        for (from, to) in PAIRS {
            let whole = resample(&clip, from, to).unwrap();
            let mut stream = StreamResampler::new(from, to).unwrap();
            for pieces in [&[1][..], &[37, 500, 3], &[4096], &[1023, 1, 1024]] {
                stream.reset();
                let streamed = stream_in_pieces(&mut stream, &clip, pieces);
                assert_eq!(streamed.len(), whole.len(), "{from} -> {to} Hz in {pieces:?}: length");
                assert_eq!(max_abs_diff(&streamed, &whole), 0.0, "{from} -> {to} Hz in {pieces:?}");
            }
        }
    }

    #[test]
    fn a_tone_keeps_its_pitch_and_duration() {
        for (from, to) in [(16_000, 48_000), (44_100, 48_000), (48_000, 44_100)] {
            let tone = |rate: u32, i: usize| (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin();
            let input: Vec<f32> = (0..from as usize).map(|i| tone(from, i)).collect();
            let out = resample(&input, from, to).unwrap();
            assert!(out.len().abs_diff(to as usize) <= 1, "{from} -> {to} Hz: one second became {}", out.len());
            let middle = to as usize / 4..to as usize * 3 / 4;
            let ideal: Vec<f32> = middle.clone().map(|i| tone(to, i)).collect();
            let error = max_abs_diff(&out[middle], &ideal);
            assert!(error < 5e-2, "{from} -> {to} Hz: off the ideal 440 Hz tone by {error}");
        }
    }

    #[test]
    fn a_sample_that_is_not_audio_ends_the_stream_before_the_fft_sees_it() {
        for (from, to) in PAIRS {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e7] {
                let mut clip = signal(5000);
                clip[3000] = bad;
                let mut stream = StreamResampler::new(from, to).unwrap();
                let before: Vec<f32> = stream_until_refused(&mut stream, &clip);
                assert!(stream.is_finished() && stream.pull().is_none(), "{from} -> {to} Hz, {bad}: refused for good");
                assert!(before.iter().all(|x| x.is_finite()), "{from} -> {to} Hz, {bad}");
                assert!(
                    before.len() <= stream.output_len(3000),
                    "{from} -> {to} Hz, {bad}: output past the bad sample"
                );

                stream.reset();
                let clean = stream_in_pieces(&mut stream, &signal(5000), &[700]);
                assert_eq!(clean, resample(&signal(5000), from, to).unwrap(), "{from} -> {to} Hz: clean after a reset");
            }
        }
    }

    #[test]
    fn a_whole_clip_with_a_sample_that_is_not_audio_is_an_error_naming_it() {
        for (from, to) in PAIRS.into_iter().filter(|(from, to)| from != to) {
            let mut clip = signal(5000);
            clip[3000] = f32::NAN;
            let err = resample(&clip, from, to).unwrap_err().to_string();
            assert!(err.contains("sample 3000") && err.contains(&format!("{from} Hz")), "{err}");
        }
    }

    /// Feeds `samples` in pieces of 700 until the stream refuses one; returns what came out.
    fn stream_until_refused(stream: &mut StreamResampler, samples: &[f32]) -> Vec<f32> {
        let mut output = Vec::new();
        let mut rest = samples;
        loop {
            output.extend(std::iter::from_fn(|| stream.pull()));
            match stream.push(&rest[..rest.len().min(700)]) {
                Ok(taken) => rest = &rest[taken..],
                Err(bad) => {
                    assert_eq!(bad.index, 3000);
                    return output;
                }
            }
        }
    }

    #[test]
    fn rates_rubato_cannot_resample_are_an_error_not_a_panic() {
        let err = StreamResampler::new(0, 48_000).err().expect("0 Hz is refused").to_string();
        assert!(err.contains("0 Hz"), "{err}");
        assert!(resample(&[0.5], 48_000, 0).is_err());
    }
}
