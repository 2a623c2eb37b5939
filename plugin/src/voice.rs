//! One playing line: reads speech (a render or a live stream) at the rate the model made it
//! and plays it at the host's rate through the engine's [`StreamResampler`], one sample at a
//! time, without allocating. A line played here is therefore the audio the engine's offline
//! [`resample`](voxcpm_engine::audio_io::resample) would write for that rate.
//!
//! A voice never hands out a non-finite sample: the resampler refuses the first NaN, infinity
//! or absurdly loud sample of a clip or stream, and the voice falls silent for the rest of
//! its line.

use voxcpm_engine::resample::StreamResampler;

use crate::envelope::Envelope;
use crate::handoff::Clip;
use crate::resamplers::Resamplers;

/// Where a voice's samples come from.
#[derive(Default)]
enum Source {
    #[default]
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

/// How a live stream begins, as a voice waiting for it sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveStart {
    /// No samples yet.
    Waiting,
    /// Its samples are coming, at this rate.
    Rate(u32),
    /// It ended without a sample.
    Ended,
}

/// What a live voice asks of the live ring.
pub trait LiveInput {
    /// How stream `token` begins; samples of older streams are skipped.
    fn start(&mut self, token: u32) -> LiveStart;
    /// Copies up to `out.len()` samples of stream `token` into `out`; returns how many and
    /// whether the stream has ended. Samples of other streams are skipped.
    fn read(&mut self, token: u32, out: &mut [f32]) -> (usize, bool);
}

#[derive(Default)]
pub struct Voice {
    source: Source,
    resamplers: Resamplers,
    /// Blocks the voice has been playing, for stealing the oldest.
    pub age: u64,
    /// A clip let go of, waiting to be sent back to the worker.
    retired: Option<Clip>,
    /// A live stream let go of before its end, to be reported to the worker.
    abandoned: Option<u32>,
    /// Stopped on samples that are not audio, not yet counted by the player.
    silenced: bool,
    /// The line's level: velocity gain and release fade.
    envelope: Envelope,
    /// The key that started the line, until its note-off.
    held_by: Option<u8>,
}

impl Voice {
    pub fn is_idle(&self) -> bool {
        matches!(self.source, Source::Idle)
    }

    /// Whether the voice has a resampler for speech at `source_rate`.
    pub fn can_play(&self, source_rate: u32) -> bool {
        self.resamplers.has(source_rate)
    }

    /// Takes a resampler built off the audio thread; returns the one it replaced, which must
    /// be freed off the audio thread too.
    pub fn adopt(&mut self, resampler: Box<StreamResampler>) -> Option<Box<StreamResampler>> {
        self.resamplers.adopt(resampler)
    }

    /// Starts a clip; false (and the clip waits in [`take_retired`](Self::take_retired)) if the
    /// voice has no resampler for its rate. The clip the voice played before waits there too;
    /// take it before the next start.
    pub fn play_clip(&mut self, clip: Clip) -> bool {
        let rate = clip.sample_rate;
        self.start(Source::Clip { clip, position: 0 });
        if self.resamplers.select(rate) {
            return true;
        }
        self.finish();
        false
    }

    /// Starts a live stream; its resampler is chosen when its first samples show their rate.
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
        self.age = 0;
        self.envelope = Envelope::default();
    }

    /// Marks the line just started as played by `key` (its note-off may
    /// [`release`](Self::release) it) at `gain` (a velocity's, finite and in 0..1).
    pub fn hold(&mut self, key: u8, gain: f32) {
        self.held_by = Some(key);
        self.envelope = Envelope::new(gain);
    }

    /// Whether `key` (`None`: any key) started the line and has not been let go of.
    pub fn is_held_by(&self, key: Option<u8>) -> bool {
        self.held_by.is_some_and(|held| key.is_none_or(|key| key == held))
    }

    /// Fades the line out over the next `fade_len` samples, then stops as [`stop`](Self::stop) does.
    pub fn release(&mut self, fade_len: u32) {
        self.held_by = None;
        if !self.is_idle() {
            self.envelope.release(fade_len);
        }
    }

    /// Whether the line is fading out after a [`release`](Self::release).
    pub fn is_released(&self) -> bool {
        !self.is_idle() && self.envelope.is_released()
    }

    /// The next output sample, at the line's level; `None` when no sample is available yet (a
    /// live stream running behind, or waiting for the resampler for its rate) or the voice has
    /// finished (then it is idle), its release fade included. Samples that are not audio stop
    /// the voice instead: what played stays, the rest of the line is silence.
    pub fn next_sample(&mut self, live: &mut impl LiveInput) -> Option<f32> {
        if self.envelope.is_over() {
            self.finish();
            return None;
        }
        let sample = self.next_unscaled(live)?;
        Some(self.envelope.apply(sample))
    }

    /// The line's next sample as the resampler makes it.
    fn next_unscaled(&mut self, live: &mut impl LiveInput) -> Option<f32> {
        loop {
            let Some(resampler) = self.resamplers.active() else {
                let Source::Live { token, .. } = self.source else { return None };
                match live.start(token) {
                    LiveStart::Waiting => return None,
                    LiveStart::Ended => {
                        self.source = Source::Live { token, ended: true };
                        self.finish();
                        return None;
                    }
                    // Without a resampler for the rate yet, it is on its way from the worker.
                    LiveStart::Rate(rate) => {
                        if !self.resamplers.select(rate) {
                            return None;
                        }
                        continue;
                    }
                }
            };
            if let Some(sample) = resampler.pull() {
                return Some(sample);
            }
            if resampler.is_finished() {
                self.finish();
                return None;
            }
            let space = resampler.input_space();
            let (got, ended) = match &mut self.source {
                Source::Clip { clip, position } => {
                    let n = space.len().min(clip.samples.len() - *position);
                    space[..n].copy_from_slice(&clip.samples[*position..*position + n]);
                    *position += n;
                    (n, *position == clip.samples.len())
                }
                Source::Live { token, ended } => {
                    let (n, end) = if *ended { (0, true) } else { live.read(*token, space) };
                    *ended = end;
                    (n, end)
                }
                Source::Idle => return None,
            };
            if resampler.commit(got).is_err() {
                self.silence();
                return None;
            }
            if ended {
                resampler.finish();
            } else if got == 0 {
                return None;
            }
        }
    }

    /// Whether the voice stopped on samples that are not audio since the last call.
    pub fn take_silenced(&mut self) -> bool {
        std::mem::take(&mut self.silenced)
    }

    /// Stops for the rest of the line, to be counted through [`take_silenced`](Self::take_silenced).
    fn silence(&mut self) {
        self.finish();
        self.silenced = true;
    }

    /// Goes idle, keeping the clip for [`take_retired`](Self::take_retired) and an unfinished
    /// live stream for [`take_abandoned`](Self::take_abandoned).
    fn finish(&mut self) {
        self.resamplers.release();
        self.held_by = None;
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

    use voxcpm_engine::audio_io::resample;
    use voxcpm_engine::testkit::parity::max_abs_diff;

    use crate::envelope::release_gain;

    /// The rates of the models (VoxCPM-0.5B, VoxCPM1.5, VoxCPM2) and of hosts.
    const MODEL_RATES: [u32; 3] = [16_000, 44_100, 48_000];
    const HOST_RATES: [u32; 4] = [44_100, 48_000, 88_200, 96_000];

    /// A voice able to play speech at `source_rate` into `host_rate`.
    fn voice(source_rate: u32, host_rate: u32) -> Voice {
        let mut voice = Voice::default();
        assert!(voice.adopt(Box::new(StreamResampler::new(source_rate, host_rate).unwrap())).is_none());
        voice
    }

    fn samples() -> Vec<f32> {
        (0..20_011).map(|i| ((i as f32 * 0.013).sin() + (i as f32 * 0.31).sin()) * 0.4).collect()
    }

    fn clip(rate: u32) -> Clip {
        Clip::new(samples(), rate)
    }

    /// Live input that hands out samples in uneven pieces, with empty reads in between (a stream
    /// running behind playback).
    struct Trickle {
        samples: Vec<f32>,
        rate: u32,
        position: usize,
        calls: usize,
    }

    impl Trickle {
        fn new(samples: Vec<f32>, rate: u32) -> Trickle {
            Trickle { samples, rate, position: 0, calls: 0 }
        }

        /// Input for voices that play clips: it has nothing.
        fn none() -> Trickle {
            Trickle::new(Vec::new(), 48_000)
        }
    }

    impl LiveInput for Trickle {
        fn start(&mut self, _token: u32) -> LiveStart {
            self.calls += 1;
            if self.calls < 3 {
                LiveStart::Waiting
            } else if self.samples.is_empty() {
                LiveStart::Ended
            } else {
                LiveStart::Rate(self.rate)
            }
        }

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
    fn a_clip_plays_exactly_as_the_engine_resamples_it_from_every_model_rate_at_every_host_rate() {
        for (model, host) in MODEL_RATES.into_iter().flat_map(|m| HOST_RATES.map(|h| (m, h))) {
            let expected = resample(&samples(), model, host).unwrap();
            let mut voice = voice(model, host);
            assert!(voice.play_clip(clip(model)));
            let played = drain(&mut voice, &mut Trickle::none());
            assert_eq!(played.len(), expected.len(), "{model} -> {host} Hz: length");
            let error = max_abs_diff(&played, &expected);
            assert!(error < 1e-6, "{model} -> {host} Hz: differs from the engine's resampling by {error}");
            assert!(
                voice.take_retired().is_some(),
                "{model} -> {host} Hz: the finished clip waits to be freed off the audio thread"
            );
        }
    }

    #[test]
    fn a_live_stream_arriving_in_pieces_plays_the_same_samples_as_the_whole_clip() {
        for (model, host) in MODEL_RATES.into_iter().flat_map(|m| HOST_RATES.map(|h| (m, h))) {
            let mut voice = voice(model, host);
            voice.play_clip(clip(model));
            let whole = drain(&mut voice, &mut Trickle::none());
            voice.play_live(7);
            let live = drain(&mut voice, &mut Trickle::new(samples(), model));
            assert_eq!(live.len(), whole.len(), "{model} -> {host} Hz: length");
            let first_difference = live.iter().zip(&whole).position(|(a, b)| a != b);
            assert_eq!(first_difference, None, "{model} -> {host} Hz: first differing sample");
        }
    }

    #[test]
    fn a_clip_at_a_rate_the_voice_cannot_play_is_refused_and_given_back() {
        let mut voice = voice(48_000, 44_100);
        assert!(!voice.play_clip(clip(16_000)));
        assert!(voice.is_idle());
        assert_eq!(voice.take_retired().map(|c| c.sample_rate), Some(16_000));
        voice.adopt(Box::new(StreamResampler::new(16_000, 44_100).unwrap()));
        assert!(voice.play_clip(clip(16_000)), "playable once its resampler came");
        assert!(voice.play_clip(clip(48_000)), "and the rate before it still plays");
    }

    #[test]
    fn a_live_stream_waits_for_the_resampler_for_its_rate_then_plays_from_its_first_sample() {
        let mut voice = voice(48_000, 48_000);
        voice.play_live(3);
        let mut stream = Trickle::new(samples(), 16_000);
        assert!((0..10).all(|_| voice.next_sample(&mut stream).is_none()), "a 16 kHz stream cannot play yet");
        assert!(!voice.is_idle(), "the voice waits");
        voice.adopt(Box::new(StreamResampler::new(16_000, 48_000).unwrap()));
        let played = drain(&mut voice, &mut stream);
        assert_eq!(played, resample(&samples(), 16_000, 48_000).unwrap());
    }

    #[test]
    fn a_live_stream_that_ends_before_its_first_sample_ends_the_voice() {
        let mut voice = voice(48_000, 44_100);
        voice.play_live(4);
        assert!(drain(&mut voice, &mut Trickle::none()).is_empty());
        assert_eq!(voice.take_abandoned(), None, "it ended: nothing to cancel");
    }

    /// `samples()` with `bad` at sample `at`.
    fn poisoned(at: usize, bad: f32) -> Vec<f32> {
        let mut samples = samples();
        samples[at] = bad;
        samples
    }

    #[test]
    fn a_non_finite_sample_silences_the_rest_of_the_line_and_the_voice_plays_the_next_one_clean() {
        for (model, host) in MODEL_RATES.into_iter().flat_map(|m| HOST_RATES.map(|h| (m, h))) {
            let mut voice = voice(model, host);
            voice.play_clip(clip(model));
            let clean = drain(&mut voice, &mut Trickle::none());
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0e37] {
                voice.play_clip(Clip::new(poisoned(10_000, bad), model));
                let played = drain(&mut voice, &mut Trickle::none());
                let case = format!("{model} -> {host} Hz, {bad}");
                assert!(voice.take_silenced(), "{case}: the voice reports that it was silenced");
                assert!(!voice.take_silenced(), "{case}: reported once");
                assert!(voice.take_retired().is_some(), "{case}: the clip goes back to the worker");
                assert!(played.iter().all(|s| s.is_finite()), "{case}: a non-finite sample got out");
                assert!(played.len() > clean.len() * 8_000 / 20_011, "{case}: only {} played", played.len());
                assert!(played.len() < clean.len() * 10_000 / 20_011 + 1, "{case}: played past the bad sample");
                assert_eq!(played[..], clean[..played.len()], "{case}: what played before it is the line");

                voice.play_clip(clip(model));
                let next = drain(&mut voice, &mut Trickle::none());
                assert_eq!(max_abs_diff(&next, &clean), 0.0, "{case}: the next line plays clean");
                assert!(!voice.take_silenced());
            }
        }
    }

    #[test]
    fn a_non_finite_sample_in_a_live_stream_silences_the_rest_of_it() {
        for (model, host) in MODEL_RATES.into_iter().flat_map(|m| HOST_RATES.map(|h| (m, h))) {
            let mut voice = voice(model, host);
            voice.play_live(1);
            let clean = drain(&mut voice, &mut Trickle::new(samples(), model));
            voice.play_live(2);
            let played = drain(&mut voice, &mut Trickle::new(poisoned(10_000, f32::NAN), model));
            assert!(voice.take_silenced(), "{model} -> {host} Hz");
            assert!(played.iter().all(|s| s.is_finite()), "{model} -> {host} Hz: a non-finite sample got out");
            assert!(
                played.len() < clean.len() * 10_000 / 20_011 + 1,
                "{model} -> {host} Hz: played past the bad sample"
            );
            assert_eq!(played[..], clean[..played.len()], "{model} -> {host} Hz: what played before it is the line");
            assert_eq!(voice.take_abandoned(), Some(2), "the worker is told to stop generating it");
        }
    }

    #[test]
    fn a_released_voice_fades_then_goes_idle_gives_back_its_clip_and_the_next_line_plays_in_full() {
        let mut voice = voice(48_000, 48_000);
        voice.play_clip(clip(48_000));
        let whole = drain(&mut voice, &mut Trickle::none());
        voice.take_retired();
        voice.play_clip(clip(48_000));
        voice.hold(60, 0.25);
        assert!(voice.is_held_by(Some(60)) && voice.is_held_by(None) && !voice.is_held_by(Some(61)));
        let before: Vec<f32> = (0..100).filter_map(|_| voice.next_sample(&mut Trickle::none())).collect();
        voice.release(10);
        assert!(!voice.is_held_by(Some(60)) && voice.is_released(), "let go of, fading");
        let fade = drain(&mut voice, &mut Trickle::none());
        let expected: Vec<f32> =
            (0..110).map(|i| whole[i] * 0.25 * if i < 100 { 1.0 } else { release_gain(i as u32 - 100, 10) }).collect();
        assert_eq!([before, fade].concat(), expected);
        assert!(voice.take_retired().is_some(), "the clip goes back to the worker");

        voice.play_clip(clip(48_000));
        assert!(!voice.is_held_by(None), "a new line is held by no key until told");
        assert_eq!(drain(&mut voice, &mut Trickle::none()), whole, "at full level, to its end");
    }

    #[test]
    fn a_stopped_voice_goes_idle_at_once_and_gives_back_its_clip() {
        let mut voice = voice(48_000, 44_100);
        voice.play_clip(clip(48_000));
        assert!(voice.next_sample(&mut Trickle::none()).is_some());
        voice.stop();
        assert!(voice.is_idle());
        assert!(voice.next_sample(&mut Trickle::none()).is_none());
        assert!(voice.take_retired().is_some());
    }
}
