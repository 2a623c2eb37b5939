//! The audio thread's side: triggers, voices and the mix. Nothing here allocates, frees, locks
//! or waits, except in offline rendering, where a trigger waits for its render (the host is not
//! playing in real time, and a bounce must not lose a line). Voices resample with resamplers
//! the worker builds for each model rate; only [`Player::prepare`], called at activation,
//! builds any here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtrb::Consumer;
use voxcpm_engine::resample::StreamResampler;

use crate::envelope::release_samples;
use crate::handoff::{AudioEnds, Clip, LiveSegment, ToAudio, ToWorker};
use crate::project::{MAX_LINES, MAX_TAKES};
use crate::status::Status;
use crate::takes::{self, Audition};
use crate::voice::{LiveInput, LiveStart, Voice};

/// Lines that can sound at once in overlap mode.
pub const VOICES: usize = 8;

/// The longest an offline render waits for one line (a long line on a slow machine).
const OFFLINE_PATIENCE: Duration = Duration::from_secs(600);
const OFFLINE_POLL: Duration = Duration::from_millis(2);

/// How a trigger plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerMode {
    /// Stop what plays first.
    pub cut: bool,
    /// Generate now and stream, instead of playing the render made ahead.
    pub live: bool,
}

/// Play requests from the editor: one bit per line, set from any thread, taken by the audio
/// thread at the start of a block; and the newest take to audition ([`takes::pack`]).
#[derive(Default)]
pub struct EditorTriggers {
    bits: [AtomicU64; MAX_LINES / 64],
    audition: AtomicU32,
}

impl EditorTriggers {
    pub fn request(&self, line: usize) {
        if let Some(word) = self.bits.get(line / 64) {
            word.fetch_or(1 << (line % 64), Ordering::AcqRel);
        }
    }

    fn take(&self, word: usize) -> u64 {
        self.bits[word].swap(0, Ordering::AcqRel)
    }

    /// Asks for one take to play once; replaces a request the audio thread has not taken yet.
    pub fn request_audition(&self, audition: Audition) {
        self.audition.store(takes::pack(audition), Ordering::Release);
    }

    fn take_audition(&self) -> Option<Audition> {
        takes::unpack(self.audition.swap(0, Ordering::AcqRel))
    }
}

/// The live ring's reading end.
struct LiveReader {
    samples: Consumer<f32>,
    segments: Consumer<LiveSegment>,
    current: Option<LiveSegment>,
}

impl LiveInput for LiveReader {
    fn start(&mut self, token: u32) -> LiveStart {
        loop {
            let segment = match self.current.take() {
                Some(segment) => segment,
                None => match self.segments.pop() {
                    Ok(segment) => segment,
                    Err(_) => return LiveStart::Waiting,
                },
            };
            if segment.token < token {
                self.skip(segment.len);
                continue;
            }
            if segment.token > token {
                self.current = Some(segment);
                return LiveStart::Ended;
            }
            if segment.len > 0 {
                self.current = Some(segment);
                return LiveStart::Rate(segment.sample_rate);
            }
            if segment.end {
                return LiveStart::Ended;
            }
        }
    }

    fn read(&mut self, token: u32, out: &mut [f32]) -> (usize, bool) {
        loop {
            let segment = match self.current.take() {
                Some(segment) => segment,
                None => match self.segments.pop() {
                    Ok(segment) => segment,
                    Err(_) => return (0, false),
                },
            };
            if segment.token < token {
                // A cancelled stream's leftovers.
                self.skip(segment.len);
                continue;
            }
            if segment.token > token {
                // A newer stream has started: this one is over.
                self.current = Some(segment);
                return (0, true);
            }
            let n = out.len().min(segment.len);
            if let Ok(chunk) = self.samples.read_chunk(n) {
                let (a, b) = chunk.as_slices();
                out[..a.len()].copy_from_slice(a);
                out[a.len()..n].copy_from_slice(b);
                chunk.commit_all();
            }
            let rest = LiveSegment { len: segment.len - n, ..segment };
            if rest.len > 0 {
                self.current = Some(rest);
                return (n, false);
            }
            if n > 0 || rest.end {
                return (n, rest.end);
            }
        }
    }
}

impl LiveReader {
    fn skip(&mut self, len: usize) {
        if let Ok(chunk) = self.samples.read_chunk(len.min(self.samples.slots())) {
            chunk.commit_all();
        }
    }
}

pub struct Player {
    from_worker: Consumer<ToAudio>,
    to_worker: rtrb::Producer<ToWorker>,
    live: LiveReader,
    clips: Vec<Option<Clip>>,
    /// Every rendered take of each line, for auditions (the line's clip is its chosen take).
    takes: Vec<[Option<Clip>; MAX_TAKES]>,
    voices: Vec<Voice>,
    host_rate: u32,
    /// A gated voice's release fade at the host rate, in samples.
    release_len: u32,
    /// Where the worker reads the host rate.
    shared_host_rate: Arc<AtomicU32>,
    /// The rate of the newest resamplers: the model's.
    model_rate: Option<u32>,
    next_token: u32,
    status: Arc<Status>,
    editor_triggers: Arc<EditorTriggers>,
    /// Clips and resamplers that could not be sent back because the ring was full: leaked
    /// rather than freed on the audio thread (never seen in practice; counted for the log).
    pub leaked: u64,
}

impl Player {
    pub fn new(ends: AudioEnds, status: Arc<Status>, editor_triggers: Arc<EditorTriggers>) -> Player {
        Player {
            from_worker: ends.from_worker,
            to_worker: ends.to_worker,
            live: LiveReader { samples: ends.live_samples, segments: ends.live_segments, current: None },
            clips: vec![None; MAX_LINES],
            takes: vec![Default::default(); MAX_LINES],
            voices: Vec::new(),
            host_rate: 0,
            release_len: 1,
            shared_host_rate: ends.host_rate,
            model_rate: None,
            next_token: 0,
            status,
            editor_triggers,
            leaked: 0,
        }
    }

    /// Builds the voices for the host's rate (in `activate`, where allocation is allowed), with
    /// resamplers from the model's rate if it is known already; the worker sends them for any
    /// other model rate.
    pub fn prepare(&mut self, host_rate: u32) -> Result<(), String> {
        let mut voices: Vec<Voice> = (0..VOICES).map(|_| Voice::default()).collect();
        if let Some(model_rate) = self.model_rate {
            for voice in &mut voices {
                let resampler = StreamResampler::new(model_rate, host_rate).map_err(|e| e.to_string())?;
                voice.adopt(Box::new(resampler));
            }
        }
        // Outside the audio thread: the old voices' clips and resamplers may be dropped here.
        self.voices = voices;
        self.host_rate = host_rate;
        self.release_len = release_samples(host_rate);
        self.shared_host_rate.store(host_rate, Ordering::Release);
        Ok(())
    }

    /// Takes the worker's messages and starts the editor's audition; call at the start of
    /// every block.
    pub fn begin_block(&mut self) {
        self.receive();
        for voice in &mut self.voices {
            voice.age += 1;
        }
        if let Some(audition) = self.editor_triggers.take_audition() {
            self.audition(audition);
        }
    }

    /// Plays one take of a line once, as the play button plays the line; the line's own clip
    /// (what MIDI plays) is left as it is. A take not rendered yet is a missed trigger.
    fn audition(&mut self, audition: Audition) {
        let take = self.takes.get(audition.line).and_then(|takes| takes.get(audition.take));
        let Some(clip) = take.cloned().flatten() else {
            self.status.missed_triggers.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let voice = self.free_voice(audition.cut);
        if !self.voices[voice].play_clip(clip) {
            self.status.missed_triggers.fetch_add(1, Ordering::Relaxed);
        }
        self.retire_finished();
    }

    /// The lines the editor asked to play since the last block.
    pub fn editor_requests(&self) -> impl Iterator<Item = usize> + '_ {
        (0..MAX_LINES / 64).flat_map(move |word| {
            let bits = self.editor_triggers.take(word);
            (0..64).filter(move |bit| bits & (1 << bit) != 0).map(move |bit| word * 64 + bit)
        })
    }

    /// Plays `line` to its end at full level (the editor's play button).
    pub fn trigger(&mut self, line: usize, mode: TriggerMode, offline: bool) {
        self.start_line(line, mode, offline);
    }

    /// Plays `line` from `key` at `gain` (a velocity's, finite and in 0..1); the key's
    /// [`release`](Self::release) may end it before its end.
    pub fn trigger_key(&mut self, line: usize, mode: TriggerMode, offline: bool, key: u8, gain: f32) {
        if let Some(voice) = self.start_line(line, mode, offline) {
            self.voices[voice].hold(key, gain);
        }
    }

    /// Fades out the lines `key` (`None`: every key) started and still holds; lines of other
    /// keys, and lines already cut or stolen, play on.
    pub fn release(&mut self, key: Option<u8>) {
        for voice in &mut self.voices {
            if voice.is_held_by(key) {
                voice.release(self.release_len);
            }
        }
    }

    /// Starts `line` on a voice and returns it, or `None` if the line could not start.
    fn start_line(&mut self, line: usize, mode: TriggerMode, offline: bool) -> Option<usize> {
        if offline {
            self.wait_for_worker();
        }
        if line >= self.status.line_count() {
            return None;
        }
        let voice = if mode.live {
            self.next_token = self.next_token.wrapping_add(1);
            let token = self.next_token;
            if self.to_worker.push(ToWorker::Live { line, token }).is_err() {
                self.status.dropped_live_triggers.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            let voice = self.free_voice(mode.cut);
            self.voices[voice].play_live(token);
            Some(voice)
        } else {
            if self.clips[line].is_none() && offline {
                self.wait_for_render(line);
            }
            let Some(clip) = self.clips[line].clone() else {
                self.status.missed_triggers.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            let voice = self.free_voice(mode.cut);
            // Only right after a reactivation at another host rate, before the worker's
            // resamplers for it arrive.
            let playing = self.voices[voice].play_clip(clip);
            if !playing {
                self.status.missed_triggers.fetch_add(1, Ordering::Relaxed);
            }
            playing.then_some(voice)
        };
        self.retire_finished();
        voice
    }

    /// Adds the voices' next `mix.len()` samples into `mix`; a voice silenced for non-finite
    /// audio is counted.
    pub fn render(&mut self, mix: &mut [f32], offline: bool) {
        for voice in 0..self.voices.len() {
            if self.voices[voice].is_idle() {
                continue;
            }
            for sample in mix.iter_mut() {
                match self.next_sample(voice, offline) {
                    Some(s) => *sample += s,
                    None if self.voices[voice].is_idle() => break,
                    None => {}
                }
            }
            if self.voices[voice].take_silenced() {
                self.status.silenced_voices.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.retire_finished();
    }

    /// A voice's next sample; offline, a live voice waits for the stream (and for its
    /// resamplers) instead of falling silent.
    fn next_sample(&mut self, voice: usize, offline: bool) -> Option<f32> {
        let start = offline.then(Instant::now);
        loop {
            if let Some(sample) = self.voices[voice].next_sample(&mut self.live) {
                return Some(sample);
            }
            match start {
                Some(start) if !self.voices[voice].is_idle() && start.elapsed() < OFFLINE_PATIENCE => {
                    std::thread::sleep(OFFLINE_POLL);
                    self.receive();
                }
                Some(_) if !self.voices[voice].is_idle() => {
                    self.voices[voice].stop();
                    return None;
                }
                // In real time, a released live voice with nothing to play (its stream running
                // behind, or not begun) is silent already: it stops rather than fade in later.
                None if self.voices[voice].is_released() => {
                    self.voices[voice].stop();
                    return None;
                }
                _ => return None,
            }
        }
    }

    pub fn is_playing(&self) -> bool {
        self.voices.iter().any(|v| !v.is_idle())
    }

    fn free_voice(&mut self, cut: bool) -> usize {
        if cut {
            for voice in &mut self.voices {
                voice.stop();
            }
            self.retire_finished();
            return 0;
        }
        let voice = match self.voices.iter().position(Voice::is_idle) {
            Some(idle) => idle,
            None => {
                let oldest = (0..self.voices.len()).max_by_key(|&v| self.voices[v].age).unwrap_or(0);
                self.voices[oldest].stop();
                oldest
            }
        };
        self.retire_finished();
        voice
    }

    fn receive(&mut self) {
        while let Ok(message) = self.from_worker.pop() {
            match message {
                ToAudio::Clip { line, clip } => match self.clips.get_mut(line) {
                    Some(slot) => {
                        let old = std::mem::replace(slot, clip);
                        self.retire(old);
                    }
                    None => self.retire(clip),
                },
                ToAudio::Take { line, take, clip } => {
                    match self.takes.get_mut(line).and_then(|takes| takes.get_mut(take)) {
                        Some(slot) => {
                            let old = std::mem::replace(slot, clip);
                            self.retire(old);
                        }
                        None => self.retire(clip),
                    }
                }
                ToAudio::Resampler(resampler) => self.adopt(resampler),
            }
        }
    }

    /// Gives a resampler from the worker to the first voice without one for its rate. One made
    /// for another host rate (sent before a reactivation) goes back.
    fn adopt(&mut self, resampler: Box<StreamResampler>) {
        let rate = resampler.source_rate();
        let taker = self.voices.iter_mut().find(|voice| !voice.can_play(rate));
        let replaced = match taker {
            Some(voice) if resampler.target_rate() == self.host_rate => {
                self.model_rate = Some(rate);
                voice.adopt(resampler)
            }
            _ => Some(resampler),
        };
        if let Some(replaced) = replaced {
            self.send_back(ToWorker::RetiredResampler(replaced));
        }
    }

    /// Offline only: waits until the worker has looked at the lines (right after activation),
    /// then takes what that look sent: a withdrawn render, or a line's newly chosen take, must
    /// not leave the line's old clip to play.
    fn wait_for_worker(&mut self) {
        let start = Instant::now();
        while !self.status.worker_has_scanned() && start.elapsed() < OFFLINE_PATIENCE {
            std::thread::sleep(OFFLINE_POLL);
        }
        self.receive();
    }

    /// Offline only: waits until the worker delivers the line or gives up on it.
    fn wait_for_render(&mut self, line: usize) {
        let start = Instant::now();
        while self.clips[line].is_none() && start.elapsed() < OFFLINE_PATIENCE {
            if self.status.worker_has_scanned() && !self.status.state(line).is_pending() {
                // One more look: the render may have landed just before its state did.
                self.receive();
                return;
            }
            std::thread::sleep(OFFLINE_POLL);
            self.receive();
        }
    }

    fn retire_finished(&mut self) {
        for v in 0..self.voices.len() {
            let clip = self.voices[v].take_retired();
            self.retire(clip);
            if let Some(token) = self.voices[v].take_abandoned() {
                // A full queue only means the worker streams on until the line's end.
                let _ = self.to_worker.push(ToWorker::LiveAbandoned { token });
            }
        }
    }

    fn retire(&mut self, clip: Option<Clip>) {
        if let Some(clip) = clip {
            self.send_back(ToWorker::Retired(clip));
        }
    }

    /// Sends what the audio thread lets go of to the worker, to be freed there.
    fn send_back(&mut self, message: ToWorker) {
        if let Err(rtrb::PushError::Full(message)) = self.to_worker.push(message) {
            std::mem::forget(message);
            self.leaked += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxcpm_engine::testkit::parity::max_abs_diff;

    use crate::handoff::{self, WorkerEnds};

    mod audition;
    mod keys;

    const HOST_RATE: u32 = 44_100;
    const BLOCK: usize = 512;

    fn line() -> Vec<f32> {
        (0..20_000).map(|i| (i as f32 * 0.01).sin() * 0.5).collect()
    }

    /// What a voice alone makes of `clip` at `host_rate`.
    fn played_alone(clip: Clip, host_rate: u32) -> Vec<f32> {
        struct NoLive;
        impl LiveInput for NoLive {
            fn start(&mut self, _token: u32) -> LiveStart {
                LiveStart::Ended
            }
            fn read(&mut self, _token: u32, _out: &mut [f32]) -> (usize, bool) {
                (0, true)
            }
        }
        let mut voice = Voice::default();
        voice.adopt(Box::new(StreamResampler::new(clip.sample_rate, host_rate).unwrap()));
        voice.play_clip(clip);
        std::iter::from_fn(|| voice.next_sample(&mut NoLive)).collect()
    }

    /// A player for `lines` lines at `host_rate`, and the worker's ends.
    fn player(lines: usize, host_rate: u32) -> (Player, WorkerEnds, Arc<Status>) {
        let (audio, worker) = handoff::channels();
        let status = Arc::new(Status::default());
        status.set_line_count(lines);
        let mut player = Player::new(audio, Arc::clone(&status), Arc::new(EditorTriggers::default()));
        player.prepare(host_rate).unwrap();
        (player, worker, status)
    }

    /// Sends one resampler per voice from `model_rate` to `host_rate`, as the worker does.
    fn send_resamplers(worker: &mut WorkerEnds, model_rate: u32, host_rate: u32) {
        for _ in 0..VOICES {
            let resampler = Box::new(StreamResampler::new(model_rate, host_rate).unwrap());
            assert!(worker.to_audio.push(ToAudio::Resampler(resampler)).is_ok());
        }
    }

    fn send_clip(worker: &mut WorkerEnds, line: usize, clip: Clip) {
        assert!(worker.to_audio.push(ToAudio::Clip { line, clip: Some(clip) }).is_ok());
    }

    /// Plays blocks of `BLOCK` until `frames` samples, as `process()` does.
    fn render(player: &mut Player, frames: usize) -> Vec<f32> {
        let mut mix = vec![0.0; frames];
        for block in mix.chunks_mut(BLOCK) {
            player.begin_block();
            player.render(block, false);
        }
        mix
    }

    const OVERLAP: TriggerMode = TriggerMode { cut: false, live: false };

    #[test]
    fn a_line_with_non_finite_audio_falls_silent_is_counted_and_the_other_voices_play_on() {
        let (mut player, mut worker, status) = player(2, HOST_RATE);
        send_resamplers(&mut worker, 48_000, HOST_RATE);
        let mut bad = line();
        bad[12_000] = f32::NAN;
        send_clip(&mut worker, 0, Clip::new(bad, 48_000));
        send_clip(&mut worker, 1, Clip::new(line(), 48_000));
        player.begin_block();
        player.trigger(0, OVERLAP, false);
        player.trigger(1, OVERLAP, false);
        let mut mix = vec![0.0; 25_000];
        for block in mix.chunks_mut(BLOCK) {
            player.render(block, false);
        }

        assert!(mix.iter().all(|s| s.is_finite()), "a non-finite sample reached the mix");
        assert_eq!(status.silenced_voices.load(Ordering::Relaxed), 1);
        let good = played_alone(Clip::new(line(), 48_000), HOST_RATE);
        let both: Vec<f32> = good[..8_000].iter().map(|s| s + s).collect();
        assert_eq!(mix[..8_000], both[..], "both lines play until the bad audio");
        assert_eq!(mix[11_100..good.len()], good[11_100..], "then only the good line");
        assert!(!player.is_playing());
    }

    /// Half a second of a 440 Hz tone at `rate`.
    fn tone(rate: u32, len: usize) -> Vec<f32> {
        (0..len).map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 0.5).collect()
    }

    #[test]
    fn clips_from_16_and_44_1_khz_models_play_at_their_pitch_and_length_in_a_48_khz_host() {
        let (mut player, mut worker, status) = player(2, 48_000);
        for (line, model_rate) in [(0, 16_000), (1, 44_100)] {
            send_resamplers(&mut worker, model_rate, 48_000);
            send_clip(&mut worker, line, Clip::new(tone(model_rate, model_rate as usize / 2), model_rate));
        }
        for line in 0..2 {
            player.begin_block();
            player.trigger(line, OVERLAP, false);
            let mix = render(&mut player, 48_000);
            assert!(!player.is_playing());
            let sounding = mix.iter().rposition(|s| *s != 0.0).expect("the line plays") + 1;
            assert!(sounding.abs_diff(24_000) <= 1, "line {line}: half a second is {sounding} samples at 48 kHz");
            let middle = 4_000..20_000;
            let error = max_abs_diff(&mix[middle.clone()], &tone(48_000, 24_000)[middle]);
            assert!(error < 2e-2, "line {line}: off the 440 Hz tone at 48 kHz by {error}");
        }
        assert_eq!(status.missed_triggers.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_new_model_rate_never_cuts_a_playing_line_and_its_own_lines_play_next() {
        let (mut player, mut worker, status) = player(2, HOST_RATE);
        send_resamplers(&mut worker, 48_000, HOST_RATE);
        send_clip(&mut worker, 0, Clip::new(line(), 48_000));
        player.begin_block();
        player.trigger(0, OVERLAP, false);
        let mut mix = render(&mut player, 4_096);
        // Two models load while line 1 plays, at 24 and then at 16 kHz.
        send_resamplers(&mut worker, 24_000, HOST_RATE);
        mix.extend(render(&mut player, 1_024));
        send_resamplers(&mut worker, 16_000, HOST_RATE);
        send_clip(&mut worker, 1, Clip::new(line(), 16_000));
        mix.extend(render(&mut player, 20_000));
        let alone = played_alone(Clip::new(line(), 48_000), HOST_RATE);
        assert_eq!(mix[..alone.len()], alone[..], "the 48 kHz line plays to its end");

        player.begin_block();
        player.trigger(1, OVERLAP, false);
        let mix = render(&mut player, 60_000);
        let alone = played_alone(Clip::new(line(), 16_000), HOST_RATE);
        assert_eq!(mix[..alone.len()], alone[..], "the 16 kHz line plays at its rate");
        assert_eq!(status.missed_triggers.load(Ordering::Relaxed), 0);
        assert!(worker.from_audio.pop().is_ok(), "a resampler or clip let go of is sent back");
    }

    #[test]
    fn resamplers_for_another_host_rate_go_back_and_a_reactivation_keeps_the_model_rate() {
        let (mut player, mut worker, status) = player(2, 48_000);
        send_resamplers(&mut worker, 16_000, 48_000);
        send_clip(&mut worker, 0, Clip::new(line(), 16_000));
        player.begin_block();
        player.prepare(96_000).unwrap();
        assert_eq!(worker.host_rate.load(Ordering::Acquire), 96_000, "the worker learns the host rate");
        // A 44.1 kHz model loaded meanwhile; the worker made its resamplers for the old host rate.
        send_resamplers(&mut worker, 44_100, 48_000);
        player.begin_block();
        let returned = std::iter::from_fn(|| worker.from_audio.pop().ok())
            .filter(|m| matches!(m, ToWorker::RetiredResampler(r) if r.target_rate() == 48_000))
            .count();
        assert_eq!(returned, VOICES, "each resampler for 48 kHz goes back");

        player.trigger(0, OVERLAP, false);
        let mix = render(&mut player, 130_000);
        let alone = played_alone(Clip::new(line(), 16_000), 96_000);
        assert_eq!(mix[..alone.len()], alone[..], "the 16 kHz line plays at 96 kHz at once");

        // Then the worker's resamplers for the new host rate.
        send_resamplers(&mut worker, 44_100, 96_000);
        send_clip(&mut worker, 1, Clip::new(line(), 44_100));
        player.begin_block();
        player.trigger(1, OVERLAP, false);
        let mix = render(&mut player, 100_000);
        let alone = played_alone(Clip::new(line(), 44_100), 96_000);
        assert_eq!(mix[..alone.len()], alone[..], "the 44.1 kHz line plays at 96 kHz");
        assert_eq!(status.missed_triggers.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_live_trigger_plays_a_stream_at_a_rate_whose_resamplers_come_after_it() {
        let (mut player, mut worker, status) = player(1, 48_000);
        send_resamplers(&mut worker, 48_000, 48_000);
        player.begin_block();
        player.trigger(0, TriggerMode { cut: true, live: true }, false);
        let Ok(ToWorker::Live { token, .. }) = worker.from_audio.pop() else { panic!("no live trigger") };
        // The model loading meanwhile turns out to be a 44.1 kHz one.
        let speech = tone(44_100, 30_000);
        send_resamplers(&mut worker, 44_100, 48_000);
        let chunk = worker.live_samples.write_chunk_uninit(speech.len()).unwrap();
        assert_eq!(chunk.fill_from_iter(speech.iter().copied()), speech.len());
        let segment = LiveSegment { token, len: speech.len(), end: true, sample_rate: 44_100 };
        assert!(worker.live_segments.push(segment).is_ok());
        let mix = render(&mut player, 40_000);
        let expected = voxcpm_engine::audio_io::resample(&speech, 44_100, 48_000).unwrap();
        assert_eq!(mix[..expected.len()], expected[..]);
        assert!(mix[expected.len()..].iter().all(|s| *s == 0.0));
        assert_eq!(status.missed_triggers.load(Ordering::Relaxed), 0);
    }

    /// Under nice-plug's allocation check, as `process()` runs in a debug build: an allocation
    /// or a free aborts this test binary.
    #[cfg(all(debug_assertions, feature = "assert_process_allocs"))]
    #[test]
    fn playing_and_taking_resamplers_never_allocate() {
        let (mut player, mut worker, _status) = player(2, 44_100);
        let mut mix = vec![0.0; BLOCK];
        for model_rate in [16_000, 48_000] {
            send_resamplers(&mut worker, model_rate, 44_100);
            send_clip(&mut worker, 0, Clip::new(line(), model_rate));
            send_clip(&mut worker, 1, Clip::new(tone(model_rate, 30_000), model_rate));
            nice_assert_no_alloc::assert_no_alloc(|| {
                for block in 0..100 {
                    player.begin_block();
                    if block % 10 == 0 {
                        player.trigger(block / 10 % 2, OVERLAP, false);
                    }
                    mix.fill(0.0);
                    player.render(&mut mix, false);
                }
            });
        }
    }
}
