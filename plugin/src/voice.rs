//! One playing line: reads 48 kHz speech (a render or a live stream) and resamples it to the
//! host rate, one sample at a time, without allocating.
//!
//! The resampler is rubato's FFT resampler with the settings of the engine's offline
//! [`resample`](voxcpm_engine::audio_io::resample), driven the way its whole-clip method
//! drives it: the startup delay is dropped and the output is exactly
//! ⌈len · host_rate / 48000⌉ samples. A line played here is therefore the same audio the
//! engine would write for that rate.
//!
//! A voice never hands out a non-finite sample: the first NaN, infinity or absurdly loud
//! sample of a clip or stream silences it for the rest of its line, before the resampler sees
//! it (whose output is then finite by construction).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use voxcpm_engine::audio_io::is_plausible_sample;

use crate::handoff::Clip;

/// Input frames per resampler call (the engine's offline setting).
const CHUNK: usize = 1024;

/// Where a voice's 48 kHz samples come from.
enum Source {
    Idle,
    Clip {
        clip: Clip,
        position: usize,
    },
    /// A live stream; `ended` once its last segment has been read.
    Live {
        token: u32,
        ended: bool,
    },
}

/// What a live voice asks of the live ring.
pub trait LiveInput {
    /// Copies up to `out.len()` samples of stream `token` into `out`; returns how many and
    /// whether the stream has ended. Samples of other streams are skipped.
    fn read(&mut self, token: u32, out: &mut [f32]) -> (usize, bool);
}

pub struct Voice {
    source: Source,
    resampler: Option<Fft<f32>>,
    input: Vec<f32>,
    output: Vec<f32>,
    /// Resampled samples in `output` not yet played: `output[read..filled]`.
    read: usize,
    filled: usize,
    /// Resampler output still to drop (its startup delay).
    skip: usize,
    /// Input samples consumed so far and output samples produced so far (after the skip).
    consumed: usize,
    produced: usize,
    /// Input frames pending in `input` for the next resampler call.
    pending: usize,
    ratio: f64,
    /// Blocks the voice has been playing, for stealing the oldest.
    pub age: u64,
    /// A clip let go of, waiting to be sent back to the worker.
    retired: Option<Clip>,
    /// A live stream let go of before its end, to be reported to the worker.
    abandoned: Option<u32>,
    /// Stopped on samples that are not audio, not yet counted by the player.
    silenced: bool,
}

impl Voice {
    /// A voice for `host_rate`; all allocation happens here.
    pub fn new(source_rate: u32, host_rate: u32) -> Result<Voice, String> {
        let resampler = if source_rate == host_rate {
            None
        } else {
            Some(
                Fft::<f32>::new(source_rate as usize, host_rate as usize, CHUNK, 1, FixedSync::Both)
                    .map_err(|e| format!("cannot resample {source_rate} Hz to {host_rate} Hz: {e}"))?,
            )
        };
        let (input_len, output_len) =
            resampler.as_ref().map_or((0, 0), |r| (r.input_frames_max(), r.output_frames_max()));
        Ok(Voice {
            source: Source::Idle,
            resampler,
            input: vec![0.0; input_len],
            output: vec![0.0; output_len],
            read: 0,
            filled: 0,
            skip: 0,
            consumed: 0,
            produced: 0,
            pending: 0,
            ratio: f64::from(host_rate) / f64::from(source_rate),
            age: 0,
            retired: None,
            abandoned: None,
            silenced: false,
        })
    }

    pub fn is_idle(&self) -> bool {
        matches!(self.source, Source::Idle)
    }

    /// Starts a clip. The clip the voice played before waits in
    /// [`take_retired`](Self::take_retired); take it before the next start.
    pub fn play_clip(&mut self, clip: Clip) {
        self.start(Source::Clip { clip, position: 0 });
    }

    pub fn play_live(&mut self, token: u32) {
        self.start(Source::Live { token, ended: false });
    }

    /// Stops at once; the clip it held waits in [`take_retired`](Self::take_retired).
    pub fn stop(&mut self) {
        self.finish();
    }

    fn start(&mut self, source: Source) {
        self.stop();
        self.source = source;
        if let Some(resampler) = self.resampler.as_mut() {
            resampler.reset();
            self.skip = resampler.output_delay();
        }
        self.read = 0;
        self.filled = 0;
        self.consumed = 0;
        self.produced = 0;
        self.pending = 0;
        self.age = 0;
    }

    /// The next output sample; `None` when no sample is available yet (a live stream running
    /// behind) or the voice has finished (then it is idle). Samples that are not audio (see
    /// [`is_plausible_sample`]) stop the voice instead: what played stays, the rest of the line is silence.
    pub fn next_sample(&mut self, live: &mut impl LiveInput) -> Option<f32> {
        if self.is_idle() {
            return None;
        }
        if self.resampler.is_none() {
            return self.next_direct(live).and_then(|sample| self.checked(sample));
        }
        if self.read == self.filled && !self.refill(live) {
            return None;
        }
        let sample = self.output[self.read];
        self.read += 1;
        Some(sample)
    }

    /// Whether the voice stopped on samples that are not audio since the last call.
    pub fn take_silenced(&mut self) -> bool {
        std::mem::take(&mut self.silenced)
    }

    /// `sample` if it is audio; otherwise the voice is silenced.
    fn checked(&mut self, sample: f32) -> Option<f32> {
        if is_plausible_sample(sample) {
            return Some(sample);
        }
        self.silence();
        None
    }

    /// Stops for the rest of the line, to be counted through [`take_silenced`](Self::take_silenced).
    fn silence(&mut self) {
        self.finish();
        self.silenced = true;
    }

    /// Fills `output` with the next resampled run; false when nothing could be produced.
    fn refill(&mut self, live: &mut impl LiveInput) -> bool {
        loop {
            if self.total_output().is_some_and(|total| self.produced >= total) {
                self.finish();
                return false;
            }
            if !self.gather_input(live) {
                return false;
            }
            // Checked before the resampler: one bad sample would spread over its whole FFT
            // block, and rubato panics on the NaN that makes.
            if !self.input[..self.pending].iter().all(|&sample| is_plausible_sample(sample)) {
                self.silence();
                return false;
            }
            // Known only now if a live stream's end came in with this input.
            let total = self.total_output();
            let Some(resampler) = self.resampler.as_mut() else { return false };
            let frames_in = resampler.input_frames_next();
            let frames_out = resampler.output_frames_next();
            let (Ok(input), Ok(mut output)) = (
                InterleavedSlice::new(&self.input[..frames_in], 1, frames_in),
                InterleavedSlice::new_mut(&mut self.output[..frames_out], 1, frames_out),
            ) else {
                return false;
            };
            let Ok((_, written)) = resampler.process_into_buffer(&input, &mut output, None) else { return false };
            self.pending = 0;
            let dropped = self.skip.min(written);
            self.skip -= dropped;
            let mut usable = written - dropped;
            if let Some(total) = total {
                usable = usable.min(total - self.produced);
            }
            self.produced += usable;
            if usable > 0 {
                self.read = dropped;
                self.filled = dropped + usable;
                return true;
            }
        }
    }

    /// Output length, once the input length is known.
    fn total_output(&self) -> Option<usize> {
        let input_len = match &self.source {
            Source::Clip { clip, .. } => clip.len(),
            Source::Live { ended: true, .. } => self.consumed,
            _ => return None,
        };
        Some((self.ratio * input_len as f64).ceil() as usize)
    }

    /// Fills `input` to one resampler chunk: source samples, then zeros past the end.
    fn gather_input(&mut self, live: &mut impl LiveInput) -> bool {
        let Some(needed) = self.resampler.as_ref().map(|r| r.input_frames_next()) else { return false };
        while self.pending < needed {
            let space = &mut self.input[self.pending..needed];
            let (got, ended) = match &mut self.source {
                Source::Clip { clip, position } => {
                    let n = space.len().min(clip.len() - *position);
                    space[..n].copy_from_slice(&clip[*position..*position + n]);
                    *position += n;
                    (n, *position == clip.len())
                }
                Source::Live { token, ended } => {
                    if *ended {
                        (0, true)
                    } else {
                        let (n, end) = live.read(*token, space);
                        *ended = end;
                        (n, end)
                    }
                }
                Source::Idle => return false,
            };
            self.pending += got;
            self.consumed += got;
            if ended {
                self.input[self.pending..needed].fill(0.0);
                self.pending = needed;
            } else if got == 0 {
                return false;
            }
        }
        true
    }

    /// Host at the engine's rate: samples pass straight through.
    fn next_direct(&mut self, live: &mut impl LiveInput) -> Option<f32> {
        let sample = match &mut self.source {
            Source::Clip { clip, position } => clip.get(*position).copied().inspect(|_| *position += 1),
            Source::Live { token, ended } => {
                let mut one = [0.0];
                let (n, end) = if *ended { (0, true) } else { live.read(*token, &mut one) };
                *ended = end;
                if n == 1 {
                    return Some(one[0]);
                }
                if !end {
                    return None;
                }
                None
            }
            Source::Idle => return None,
        };
        if sample.is_none() {
            self.finish();
        }
        sample
    }

    /// Goes idle, keeping the clip for [`take_retired`](Self::take_retired) and an unfinished
    /// live stream for [`take_abandoned`](Self::take_abandoned).
    fn finish(&mut self) {
        match std::mem::replace(&mut self.source, Source::Idle) {
            Source::Clip { clip, .. } => self.retired = Some(clip),
            Source::Live { token, ended: false } => self.abandoned = Some(token),
            Source::Live { ended: true, .. } | Source::Idle => {}
        }
    }

    /// The token of a live stream this voice stopped playing before it ended.
    pub fn take_abandoned(&mut self) -> Option<u32> {
        self.abandoned.take()
    }

    /// The clip of a voice that finished on its own, to be freed off the audio thread.
    pub fn take_retired(&mut self) -> Option<Clip> {
        self.retired.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use voxcpm_engine::audio_io::resample;
    use voxcpm_engine::parity::max_abs_diff;

    const ENGINE_RATE: u32 = 48_000;
    const HOST_RATES: [u32; 4] = [44_100, 48_000, 88_200, 96_000];

    fn clip() -> Clip {
        (0..20_011).map(|i| ((i as f32 * 0.013).sin() + (i as f32 * 0.31).sin()) * 0.4).collect::<Vec<_>>().into()
    }

    /// Live input that hands out a clip in uneven pieces, with empty reads in between (a stream
    /// running behind playback).
    struct Trickle {
        samples: Clip,
        position: usize,
        calls: usize,
    }

    impl LiveInput for Trickle {
        fn read(&mut self, _token: u32, out: &mut [f32]) -> (usize, bool) {
            self.calls += 1;
            if self.calls.is_multiple_of(3) {
                return (0, false);
            }
            let n = out.len().min(self.calls * 37 % 500 + 1).min(self.samples.len() - self.position);
            out[..n].copy_from_slice(&self.samples[self.position..self.position + n]);
            self.position += n;
            (n, self.position == self.samples.len())
        }
    }

    fn drain(voice: &mut Voice, live: &mut impl LiveInput) -> Vec<f32> {
        let mut out = Vec::new();
        while !voice.is_idle() {
            if let Some(sample) = voice.next_sample(live) {
                out.push(sample);
            }
        }
        out
    }

    #[test]
    fn a_clip_plays_exactly_as_the_engine_resamples_it_at_every_host_rate() {
        let clip = clip();
        for rate in HOST_RATES {
            let expected = resample(&clip, ENGINE_RATE, rate).unwrap();
            let mut voice = Voice::new(ENGINE_RATE, rate).unwrap();
            voice.play_clip(Arc::clone(&clip));
            let played = drain(&mut voice, &mut Trickle { samples: Arc::from(&[][..]), position: 0, calls: 0 });
            assert_eq!(played.len(), expected.len(), "{rate} Hz: length");
            let error = max_abs_diff(&played, &expected);
            assert!(error < 1e-6, "{rate} Hz: differs from the engine's resampling by {error}");
            assert!(
                voice.take_retired().is_some(),
                "{rate} Hz: the finished clip waits to be freed off the audio thread"
            );
        }
    }

    #[test]
    fn a_live_stream_arriving_in_pieces_plays_the_same_samples_as_the_whole_clip() {
        let clip = clip();
        for rate in HOST_RATES {
            let mut voice = Voice::new(ENGINE_RATE, rate).unwrap();
            voice.play_clip(Arc::clone(&clip));
            let whole = drain(&mut voice, &mut Trickle { samples: Arc::from(&[][..]), position: 0, calls: 0 });
            voice.play_live(7);
            let mut trickle = Trickle { samples: Arc::clone(&clip), position: 0, calls: 0 };
            let live = drain(&mut voice, &mut trickle);
            assert_eq!(live.len(), whole.len(), "{rate} Hz: length");
            let first_difference = live.iter().zip(&whole).position(|(a, b)| a != b);
            assert_eq!(first_difference, None, "{rate} Hz: first differing sample");
        }
    }

    /// `clip()` with `bad` at sample `at`.
    fn poisoned(at: usize, bad: f32) -> Clip {
        let mut samples = clip().to_vec();
        samples[at] = bad;
        samples.into()
    }

    #[test]
    fn a_non_finite_sample_silences_the_rest_of_the_line_and_the_voice_plays_the_next_one_clean() {
        let none = || Trickle { samples: Arc::from(&[][..]), position: 0, calls: 0 };
        for rate in HOST_RATES {
            let mut voice = Voice::new(ENGINE_RATE, rate).unwrap();
            voice.play_clip(clip());
            let clean = drain(&mut voice, &mut none());
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0e37] {
                voice.play_clip(poisoned(10_000, bad));
                let played = drain(&mut voice, &mut none());
                assert!(voice.take_silenced(), "{rate} Hz, {bad}: the voice reports that it was silenced");
                assert!(!voice.take_silenced(), "{rate} Hz, {bad}: reported once");
                assert!(voice.take_retired().is_some(), "{rate} Hz, {bad}: the clip goes back to the worker");
                assert!(played.iter().all(|s| s.is_finite()), "{rate} Hz, {bad}: a non-finite sample got out");
                assert!(played.len() > clean.len() * 8_000 / 20_011, "{rate} Hz, {bad}: only {} played", played.len());
                assert!(
                    played.len() < clean.len() * 10_000 / 20_011 + 1,
                    "{rate} Hz, {bad}: played past the bad sample"
                );
                assert_eq!(played[..], clean[..played.len()], "{rate} Hz, {bad}: what played before it is the line");

                voice.play_clip(clip());
                let next = drain(&mut voice, &mut none());
                assert_eq!(max_abs_diff(&next, &clean), 0.0, "{rate} Hz, {bad}: the next line plays clean");
                assert!(!voice.take_silenced());
            }
        }
    }

    #[test]
    fn a_non_finite_sample_in_a_live_stream_silences_the_rest_of_it() {
        for rate in HOST_RATES {
            let mut voice = Voice::new(ENGINE_RATE, rate).unwrap();
            voice.play_live(1);
            let clean = drain(&mut voice, &mut Trickle { samples: clip(), position: 0, calls: 0 });
            voice.play_live(2);
            let played = drain(&mut voice, &mut Trickle { samples: poisoned(10_000, f32::NAN), position: 0, calls: 0 });
            assert!(voice.take_silenced(), "{rate} Hz");
            assert!(played.iter().all(|s| s.is_finite()), "{rate} Hz: a non-finite sample got out");
            assert!(played.len() < clean.len() * 10_000 / 20_011 + 1, "{rate} Hz: played past the bad sample");
            assert_eq!(played[..], clean[..played.len()], "{rate} Hz: what played before it is the line");
        }
    }

    #[test]
    fn a_stopped_voice_goes_idle_at_once_and_gives_back_its_clip() {
        let mut voice = Voice::new(ENGINE_RATE, 44_100).unwrap();
        voice.play_clip(clip());
        let mut none = Trickle { samples: Arc::from(&[][..]), position: 0, calls: 0 };
        assert!(voice.next_sample(&mut none).is_some());
        voice.stop();
        assert!(voice.is_idle());
        assert!(voice.next_sample(&mut none).is_none());
        assert!(voice.take_retired().is_some());
    }
}
