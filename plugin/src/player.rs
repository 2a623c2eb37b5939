//! The audio thread's side: triggers, voices and the mix. Nothing here allocates, locks or
//! waits, except in offline rendering, where a trigger waits for its render (the host is not
//! playing in real time, and a bounce must not lose a line).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtrb::Consumer;

use crate::handoff::{AudioEnds, Clip, LiveSegment, ToAudio, ToWorker};
use crate::project::MAX_LINES;
use crate::status::Status;
use crate::voice::{LiveInput, Voice};

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
/// thread at the start of a block.
#[derive(Default)]
pub struct EditorTriggers {
    bits: [AtomicU64; MAX_LINES / 64],
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
}

/// The live ring's reading end.
struct LiveReader {
    samples: Consumer<f32>,
    segments: Consumer<LiveSegment>,
    current: Option<LiveSegment>,
}

impl LiveInput for LiveReader {
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
    voices: Vec<Voice>,
    next_token: u32,
    status: Arc<Status>,
    editor_triggers: Arc<EditorTriggers>,
    /// Clips that could not be sent back because the ring was full: leaked rather than freed
    /// on the audio thread (never seen in practice; counted for the log).
    pub leaked_clips: u64,
}

impl Player {
    pub fn new(ends: AudioEnds, status: Arc<Status>, editor_triggers: Arc<EditorTriggers>) -> Player {
        Player {
            from_worker: ends.from_worker,
            to_worker: ends.to_worker,
            live: LiveReader { samples: ends.live_samples, segments: ends.live_segments, current: None },
            clips: vec![None; MAX_LINES],
            voices: Vec::new(),
            next_token: 0,
            status,
            editor_triggers,
            leaked_clips: 0,
        }
    }

    /// Builds the voices for the host's rate (in `activate`, where allocation is allowed).
    pub fn prepare(&mut self, source_rate: u32, host_rate: u32) -> Result<(), String> {
        let voices = (0..VOICES).map(|_| Voice::new(source_rate, host_rate)).collect::<Result<Vec<_>, _>>()?;
        // Outside the audio thread: the old voices' clips may be dropped here.
        self.voices = voices;
        Ok(())
    }

    /// Takes the worker's messages; call at the start of every block.
    pub fn begin_block(&mut self) {
        self.receive();
        for voice in &mut self.voices {
            voice.age += 1;
        }
    }

    /// The lines the editor asked to play since the last block.
    pub fn editor_requests(&self) -> impl Iterator<Item = usize> + '_ {
        (0..MAX_LINES / 64).flat_map(move |word| {
            let bits = self.editor_triggers.take(word);
            (0..64).filter(move |bit| bits & (1 << bit) != 0).map(move |bit| word * 64 + bit)
        })
    }

    pub fn trigger(&mut self, line: usize, mode: TriggerMode, offline: bool) {
        if offline {
            self.wait_for_worker();
        }
        if line >= self.status.line_count() {
            return;
        }
        if mode.live {
            self.next_token = self.next_token.wrapping_add(1);
            let token = self.next_token;
            if self.to_worker.push(ToWorker::Live { line, token }).is_err() {
                self.status.dropped_live_triggers.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let voice = self.free_voice(mode.cut);
            self.voices[voice].play_live(token);
        } else {
            if self.clips[line].is_none() && offline {
                self.wait_for_render(line);
            }
            let Some(clip) = self.clips[line].clone() else {
                self.status.missed_triggers.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let voice = self.free_voice(mode.cut);
            self.voices[voice].play_clip(clip);
        }
        self.retire_finished();
    }

    /// Adds the voices' next `mix.len()` samples into `mix`; a voice silenced for non-finite
    /// audio is counted.
    pub fn render(&mut self, mix: &mut [f32], offline: bool) {
        for voice in &mut self.voices {
            if voice.is_idle() {
                continue;
            }
            for sample in mix.iter_mut() {
                match next_sample(voice, &mut self.live, offline) {
                    Some(s) => *sample += s,
                    None if voice.is_idle() => break,
                    None => {}
                }
            }
            if voice.take_silenced() {
                self.status.silenced_voices.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.retire_finished();
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
        while let Ok(ToAudio::Clip { line, clip }) = self.from_worker.pop() {
            if let Some(slot) = self.clips.get_mut(line) {
                let old = std::mem::replace(slot, clip);
                self.retire(old);
            } else {
                self.retire(clip);
            }
        }
    }

    /// Offline only: waits until the worker has looked at the lines (right after activation).
    fn wait_for_worker(&self) {
        let start = Instant::now();
        while !self.status.worker_has_scanned() && start.elapsed() < OFFLINE_PATIENCE {
            std::thread::sleep(OFFLINE_POLL);
        }
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
        if let Some(clip) = clip
            && let Err(rtrb::PushError::Full(ToWorker::Retired(clip))) = self.to_worker.push(ToWorker::Retired(clip))
        {
            std::mem::forget(clip);
            self.leaked_clips += 1;
        }
    }
}

/// A voice's next sample; offline, a live voice waits for the stream instead of falling silent.
fn next_sample(voice: &mut Voice, live: &mut LiveReader, offline: bool) -> Option<f32> {
    let start = offline.then(Instant::now);
    loop {
        if let Some(sample) = voice.next_sample(live) {
            return Some(sample);
        }
        match start {
            Some(start) if !voice.is_idle() && start.elapsed() < OFFLINE_PATIENCE => std::thread::sleep(OFFLINE_POLL),
            Some(_) if !voice.is_idle() => {
                voice.stop();
                return None;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff;
    use crate::voice::LiveInput;

    const HOST_RATE: u32 = 44_100;
    const BLOCK: usize = 512;

    fn line() -> Vec<f32> {
        (0..20_000).map(|i| (i as f32 * 0.01).sin() * 0.5).collect()
    }

    /// What a voice alone makes of `clip` at the host rate.
    fn played_alone(clip: &[f32]) -> Vec<f32> {
        struct NoLive;
        impl LiveInput for NoLive {
            fn read(&mut self, _token: u32, _out: &mut [f32]) -> (usize, bool) {
                (0, true)
            }
        }
        let mut voice = Voice::new(48_000, HOST_RATE).unwrap();
        voice.play_clip(clip.into());
        std::iter::from_fn(|| voice.next_sample(&mut NoLive)).collect()
    }

    #[test]
    fn a_line_with_non_finite_audio_falls_silent_is_counted_and_the_other_voices_play_on() {
        let (audio, mut worker) = handoff::channels();
        let status = Arc::new(Status::default());
        status.set_line_count(2);
        let mut player = Player::new(audio, Arc::clone(&status), Arc::new(EditorTriggers::default()));
        player.prepare(48_000, HOST_RATE).unwrap();
        let mut bad = line();
        bad[12_000] = f32::NAN;
        for (line, clip) in [(0, bad), (1, line())] {
            assert!(worker.to_audio.push(ToAudio::Clip { line, clip: Some(clip.into()) }).is_ok());
        }
        let overlap = TriggerMode { cut: false, live: false };
        player.begin_block();
        player.trigger(0, overlap, false);
        player.trigger(1, overlap, false);
        let mut mix = vec![0.0; 25_000];
        for block in mix.chunks_mut(BLOCK) {
            player.render(block, false);
        }

        assert!(mix.iter().all(|s| s.is_finite()), "a non-finite sample reached the mix");
        assert_eq!(status.silenced_voices.load(Ordering::Relaxed), 1);
        let good = played_alone(&line());
        let both: Vec<f32> = good[..8_000].iter().map(|s| s + s).collect();
        assert_eq!(mix[..8_000], both[..], "both lines play until the bad audio");
        assert_eq!(mix[11_100..good.len()], good[11_100..], "then only the good line");
        assert!(!player.is_playing());
    }
}
