//! Live play: a trigger in live mode generates its line now and streams it to the audio thread
//! through the live ring, tagged with its rate, after the voices' resamplers for that rate. A
//! newer trigger replaces the stream; a voice that stops playing it cancels it.
//!
//! In real time the stream's chunks are held back on the worker (nothing is announced to the
//! audio thread) until [`StartSchedule`] says the line can play to its end without running
//! dry; then all that came is handed over at once and the rest follows as it comes. So a line
//! generated slower than real time starts later but never stutters, and the audio thread
//! needs no change. Offline, the audio thread waits for samples, so nothing is held.

#[cfg(debug_assertions)]
mod test_hooks;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use voxcpm_engine::runtime::SpeechStream;

use super::{LineSpec, TICK, WorkerState, failed, live_spec};
use crate::handoff::LiveSegment;
use crate::live_schedule::StartSchedule;
use crate::status::{LineReport, LiveWait};

/// A live stream being played: its line, when it was triggered, and what is held back.
struct LivePlay {
    line: usize,
    spec: LineSpec,
    /// The model the stream runs on, once loaded (what its length is learned for).
    model_key: Option<String>,
    trigger: Instant,
    schedule: StartSchedule,
    /// Samples that came before playback was released.
    held: Vec<f32>,
    released: bool,
    sample_rate: Option<u32>,
    /// Samples received in all.
    received: usize,
    /// The wait last shown to the editor.
    shown: Option<LiveWait>,
    #[cfg(debug_assertions)]
    trace: test_hooks::Trace,
}

impl LivePlay {
    fn new(line: usize, spec: LineSpec, model_key: Option<String>, expected_seconds: f64) -> LivePlay {
        LivePlay {
            line,
            model_key,
            trigger: Instant::now(),
            schedule: StartSchedule::new(expected_seconds),
            held: Vec::new(),
            released: false,
            sample_rate: None,
            received: 0,
            shown: None,
            #[cfg(debug_assertions)]
            trace: test_hooks::Trace::new(&spec.text),
            spec,
        }
    }

    /// Seconds since the trigger.
    fn now(&self) -> f64 {
        self.trigger.elapsed().as_secs_f64()
    }

    /// How long to wait for the next chunk: a tick, or less if playback is due sooner.
    fn poll(&self) -> Duration {
        if self.released {
            return TICK;
        }
        let now = self.now();
        self.schedule
            .start_at(now)
            .map_or(TICK, |start| Duration::from_secs_f64((start - now).clamp(0.0, TICK.as_secs_f64())))
    }

    /// The wait to show while held.
    fn wait(&self) -> Option<LiveWait> {
        if self.released {
            return None;
        }
        let now = self.now();
        Some(match self.schedule.start_at(now) {
            None => LiveWait::Buffering,
            // Tenths of a second: the editor shows no more, and the report changes no oftener.
            Some(start) => LiveWait::StartingIn(((start - now).max(0.0) * 10.0).ceil() as f32 / 10.0),
        })
    }
}

impl WorkerState {
    /// Streams `line` as live stream `token` until it ends, a newer trigger replaces it, or
    /// the plugin closes.
    pub(super) fn serve_live(&mut self, mut line: usize, mut token: u32) {
        self.follow_model_setting();
        loop {
            let next = self.stream_one(line, token);
            let Some((next_line, next_token)) = next else { return };
            line = next_line;
            token = next_token;
        }
    }

    /// Streams one live trigger; returns a newer trigger that interrupted it.
    fn stream_one(&mut self, line: usize, token: u32) -> Option<(usize, u32)> {
        let mut play = self.plan_live(line);
        let outcome = self.open_stream(&play).and_then(|stream| {
            #[cfg(debug_assertions)]
            let stream = test_hooks::Throttled::new(stream, test_hooks::throttle_rtf(&play.spec.text)?, play.trigger);
            self.feed_live(stream, token, &mut play)
        });
        #[cfg(debug_assertions)]
        play.trace.write(matches!(outcome, Ok(None)));
        self.status.set_live_wait(line, None);
        self.finish_live(line, token, outcome)
    }

    /// A live trigger of `line`, with its expected length on the current model.
    fn plan_live(&mut self, line: usize) -> LivePlay {
        let spec = live_spec(&self.params, line);
        let model = self.model.as_ref().and_then(|m| Some((m.key.clone()?, m.sample_rate?, m.engine.server.info())));
        let (key, expected) = match model {
            Some((key, rate, info)) => {
                let dir = info.model_dir.unwrap_or_else(|| info.model.into());
                let expected = self.lengths.expected_seconds(&key, &dir, rate, &spec.text, spec.normalize);
                (Some(key), expected)
            }
            None => (None, self.lengths.unknown_model_seconds(&spec.text)),
        };
        LivePlay::new(line, spec, key, expected)
    }

    /// The live stream of a line on the current model, which may still be loading (the engine
    /// serves the stream once it has loaded, or fails it with the load error); a failure of the
    /// line's last stream is cleared once a new one starts.
    fn open_stream(&self, play: &LivePlay) -> Result<SpeechStream, String> {
        let model = self.model.as_ref().ok_or_else(|| format!("no model: {}", self.status.model().summary))?;
        let spec = &play.spec;
        let stream = model.engine.server.generate_streaming(&spec.text, &spec.options()).map_err(|e| e.to_string())?;
        self.status.set_line(play.line, LineReport::default());
        Ok(stream)
    }

    /// Passes a stream's chunks to the audio thread until it ends, holding them back until
    /// its start; returns a newer trigger that interrupted it, or the error that ended it
    /// (what came before it is played).
    fn feed_live(
        &mut self,
        mut stream: impl Chunks,
        token: u32,
        play: &mut LivePlay,
    ) -> Result<Option<(usize, u32)>, String> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            if let Some(newer) = self.take_audio_messages() {
                // Dropping the stream cancels it; the audio thread skips what is left of it.
                return Ok(Some(newer));
            }
            if self.abandoned_live == Some(token) {
                return Ok(None);
            }
            match stream.next_chunk_timeout(play.poll()) {
                Ok(Some(chunk)) => {
                    let sample_rate = stream
                        .sample_rate()
                        .ok_or_else(|| "the stream's audio came without its sample rate".to_owned())?;
                    // The voice waits for resamplers for the stream's rate: they go first.
                    if !self.supply_resamplers(sample_rate)? {
                        return Err("the plugin is not active (no host sample rate)".into());
                    }
                    let at = play.now();
                    play.schedule.arrived(at, chunk.len() as f64 / f64::from(sample_rate));
                    play.sample_rate = Some(sample_rate);
                    play.received += chunk.len();
                    #[cfg(debug_assertions)]
                    play.trace.chunk(at, chunk.len(), sample_rate);
                    if play.released {
                        if !self.announce_live(&chunk, token, sample_rate) {
                            return Ok(None);
                        }
                    } else {
                        play.held.extend_from_slice(&chunk);
                    }
                }
                Ok(None) => {
                    play.schedule.ended();
                    self.release_live(token, play);
                    self.learn_from_stream(play);
                    return Ok(None);
                }
                Err(voxcpm_engine::Error::Timeout(_)) => {}
                Err(e) => {
                    self.release_live(token, play);
                    return Err(e.to_string());
                }
            }
            let due = self.status.offline.load(Ordering::Relaxed) || play.schedule.should_start(play.now());
            if !play.released && due && !self.release_live(token, play) {
                return Ok(None);
            }
            let wait = play.wait();
            if wait != play.shown {
                self.status.set_live_wait(play.line, wait);
                play.shown = wait;
            }
        }
    }

    /// Hands what was held back to the audio thread, as one segment, and plays the rest as it
    /// comes; false if the plugin closes first.
    fn release_live(&mut self, token: u32, play: &mut LivePlay) -> bool {
        if play.released {
            return true;
        }
        play.released = true;
        #[cfg(debug_assertions)]
        play.trace.released(play.now());
        let held = std::mem::take(&mut play.held);
        match play.sample_rate {
            Some(sample_rate) if !held.is_empty() => self.announce_live(&held, token, sample_rate),
            _ => true,
        }
    }

    /// Learns the speaking rate from a stream that ran to its end on a known model.
    fn learn_from_stream(&mut self, play: &LivePlay) {
        if let (Some(key), Some(rate)) = (&play.model_key, play.sample_rate) {
            self.lengths.learn(key, &play.spec.text, play.received as f64 / f64::from(rate));
        }
    }

    /// Learns the speaking rate from a take just rendered ahead.
    pub(super) fn learn_from_render(&mut self, line: usize, take: usize) {
        let slot = &self.lines[line];
        let (Some(spec), Some(clip)) = (&slot.spec, slot.takes.get(take).and_then(|t| t.clip.as_ref())) else {
            return;
        };
        self.lengths.learn(&slot.model_key, &spec.text, f64::from(clip.seconds()));
    }

    /// Ends live stream `token` unless a newer trigger took over: what was played stays, the
    /// rest is silence, and a failure marks the line failed.
    fn finish_live(
        &mut self,
        line: usize,
        token: u32,
        outcome: Result<Option<(usize, u32)>, String>,
    ) -> Option<(usize, u32)> {
        match outcome {
            Ok(Some(newer)) => return Some(newer),
            Ok(None) => {}
            Err(message) => self.status.set_line(line, failed(&message)),
        }
        let _ = self.ends.live_segments.push(LiveSegment { token, len: 0, end: true, sample_rate: 0 });
        None
    }

    /// Pushes samples into the live ring and announces them; false if the plugin closes first.
    fn announce_live(&mut self, samples: &[f32], token: u32, sample_rate: u32) -> bool {
        if !self.push_live(samples) {
            return false;
        }
        let segment = LiveSegment { token, len: samples.len(), end: false, sample_rate };
        let _ = self.ends.live_segments.push(segment);
        true
    }

    /// Pushes samples into the live ring, waiting for room; false if the plugin closes first.
    fn push_live(&mut self, mut samples: &[f32]) -> bool {
        while !samples.is_empty() {
            let room = self.ends.live_samples.slots().min(samples.len());
            if room == 0 {
                if self.stop.load(Ordering::Relaxed) {
                    return false;
                }
                std::thread::sleep(TICK);
                continue;
            }
            if let Ok(mut chunk) = self.ends.live_samples.write_chunk(room) {
                let (a, b) = chunk.as_mut_slices();
                let split = a.len();
                a.copy_from_slice(&samples[..split]);
                b.copy_from_slice(&samples[split..room]);
                chunk.commit_all();
            }
            samples = &samples[room..];
        }
        true
    }
}

/// A source of speech chunks: the engine's stream (a scripted one in tests).
trait Chunks {
    fn next_chunk_timeout(&mut self, timeout: Duration) -> voxcpm_engine::Result<Option<Vec<f32>>>;
    /// The rate of its chunks, known once the first has come.
    fn sample_rate(&self) -> Option<u32>;
}

impl Chunks for SpeechStream {
    fn next_chunk_timeout(&mut self, timeout: Duration) -> voxcpm_engine::Result<Option<Vec<f32>>> {
        SpeechStream::next_chunk_timeout(self, timeout)
    }

    fn sample_rate(&self) -> Option<u32> {
        SpeechStream::sample_rate(self)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc::channel;

    use super::*;
    use crate::handoff::{self, AudioEnds, ToWorker};
    use crate::params::VoxParams;
    use crate::player::{EditorTriggers, Player, TriggerMode};
    use crate::project::Line;
    use crate::render_cache::RenderCache;
    use crate::status::{LineState, LiveWait, Status};
    use crate::worker::tests::{fresh_demo_model, start, switch_on, wait_until};

    /// A stream that hands out scripted chunks and errors at a sample rate.
    struct Scripted(u32, Vec<voxcpm_engine::Result<Option<Vec<f32>>>>);

    impl Chunks for Scripted {
        fn next_chunk_timeout(&mut self, _timeout: Duration) -> voxcpm_engine::Result<Option<Vec<f32>>> {
            if self.1.is_empty() { Ok(None) } else { self.1.remove(0) }
        }

        fn sample_rate(&self) -> Option<u32> {
            Some(self.0)
        }
    }

    /// Plays `frames` samples in blocks, as `process()` does.
    fn render(player: &mut Player, frames: usize) -> Vec<f32> {
        let mut mix = vec![0.0; frames];
        for block in mix.chunks_mut(256) {
            player.begin_block();
            player.render(block, false);
        }
        mix
    }

    /// A worker and a player joined by fresh rings, with no engine: the tests feed the worker's
    /// live path scripted chunks. The cache folder lives as long as the returned guard.
    fn worker_and_player(host_rate: u32, lines: usize) -> (WorkerState, Player, Arc<Status>, tempfile::TempDir) {
        let (audio, ends) = handoff::channels();
        let status = Arc::new(Status::default());
        let cache = tempfile::tempdir().unwrap();
        let worker = WorkerState::new(
            Arc::new(VoxParams::default()),
            Arc::clone(&status),
            ends,
            channel().1,
            Arc::new(AtomicBool::new(false)),
            RenderCache::new(cache.path().into()),
        );
        let mut player = Player::new(audio, Arc::clone(&status), Arc::new(EditorTriggers::default()));
        player.prepare(host_rate).unwrap();
        status.set_line_count(lines);
        (worker, player, status, cache)
    }

    /// Feeds a stream as an offline render does: every chunk passes as it comes.
    fn feed_offline(
        worker: &mut WorkerState,
        stream: impl Chunks,
        line: usize,
        token: u32,
    ) -> Result<Option<(usize, u32)>, String> {
        worker.status.offline.store(true, Ordering::Relaxed);
        let mut play = worker.plan_live(line);
        worker.feed_live(stream, token, &mut play)
    }

    /// A stream that, before each read, lets the audio thread play a block and notes the
    /// line's live wait, as the editor would see it.
    struct Watched<'a> {
        player: &'a mut Player,
        status: Arc<Status>,
        script: Vec<voxcpm_engine::Result<Option<Vec<f32>>>>,
        heard: Vec<f32>,
        waits: Vec<Option<LiveWait>>,
    }

    impl Chunks for Watched<'_> {
        fn next_chunk_timeout(&mut self, _timeout: Duration) -> voxcpm_engine::Result<Option<Vec<f32>>> {
            self.heard.extend(render(self.player, 1000));
            self.waits.push(self.status.live_wait(0));
            if self.script.is_empty() { Ok(None) } else { self.script.remove(0) }
        }

        fn sample_rate(&self) -> Option<u32> {
            Some(48_000)
        }
    }

    #[test]
    fn in_real_time_a_slow_stream_is_held_back_then_plays_whole_from_its_start() {
        let (mut worker, mut player, status, _cache) = worker_and_player(48_000, 1);
        player.begin_block();
        player.trigger(0, TriggerMode { cut: true, live: true }, false);
        let (line, token) = worker.take_audio_messages().expect("the live trigger");
        let mut play = worker.plan_live(line);
        // Its first chunk came 2 s after the trigger: at RTF 12 a line of seconds must wait.
        play.trigger -= Duration::from_secs(2);
        let timeout = || Err(voxcpm_engine::Error::Timeout(TICK));
        let script = vec![timeout(), Ok(Some(vec![0.25; 7680])), timeout(), timeout()];
        let mut stream =
            Watched { player: &mut player, status: Arc::clone(&status), script, heard: vec![], waits: vec![] };
        assert_eq!(worker.feed_live(&mut stream, token, &mut play), Ok(None));
        let waits = &stream.waits;
        assert!(stream.heard.iter().all(|s| *s == 0.0), "nothing plays while the stream is held: {waits:?}");
        assert_eq!(waits[1], Some(LiveWait::Buffering), "before the first chunk: {waits:?}");
        let Some(LiveWait::StartingIn(wait)) = waits[2] else { panic!("no predicted start: {waits:?}") };
        assert!(wait > 5.0, "the predicted wait: {wait} s");
        assert_eq!(waits[3], waits[2], "{waits:?}");
        assert_eq!(worker.finish_live(line, token, Ok(None)), None);
        let played = render(&mut player, 20_000);
        assert_eq!(played[..7680], [0.25; 7680], "once the stream ended, all of it plays from its start");
        assert!(played[7680..].iter().all(|s| *s == 0.0));
    }

    #[test]
    fn offline_a_slow_stream_is_not_held_back() {
        let (mut worker, mut player, status, _cache) = worker_and_player(48_000, 1);
        status.offline.store(true, Ordering::Relaxed);
        player.begin_block();
        player.trigger(0, TriggerMode { cut: true, live: true }, false);
        let (_, token) = worker.take_audio_messages().expect("the live trigger");
        let mut play = worker.plan_live(0);
        play.trigger -= Duration::from_secs(2);
        let script = vec![Ok(Some(vec![0.25; 7680])), Err(voxcpm_engine::Error::Timeout(TICK))];
        let mut stream =
            Watched { player: &mut player, status: Arc::clone(&status), script, heard: vec![], waits: vec![] };
        assert_eq!(worker.feed_live(&mut stream, token, &mut play), Ok(None));
        assert_eq!(stream.heard[2000..3000], [0.25; 1000], "the chunk played before the stream ended");
        assert!(stream.waits.iter().all(Option::is_none), "{:?}", stream.waits);
    }

    #[test]
    fn a_live_stream_failing_midway_keeps_what_played_then_fails_its_line_and_the_next_line_plays() {
        let (mut worker, mut player, status, _cache) = worker_and_player(48_000, 2);
        let live = TriggerMode { cut: true, live: true };

        player.begin_block();
        player.trigger(0, live, false);
        let (line, token) = worker.take_audio_messages().expect("the live trigger");
        let failing = Scripted(
            48_000,
            vec![
                Ok(Some(vec![0.25; 300])),
                Ok(Some(vec![0.5; 200])),
                Err(voxcpm_engine::Error::NonFinite { stage: "the decoded audio" }),
            ],
        );
        let outcome = feed_offline(&mut worker, failing, line, token);
        assert_eq!(worker.finish_live(line, token, outcome), None);
        let report = status.line(0);
        assert_eq!(report.state, LineState::Failed);
        assert!(report.message.contains("non-finite values (NaN/Inf) in the decoded audio"), "{report:?}");
        let played = render(&mut player, 2000);
        assert_eq!(played[..300], [0.25; 300], "what was streamed before the failure plays");
        assert_eq!(played[300..500], [0.5; 200]);
        assert!(played[500..].iter().all(|s| *s == 0.0), "then silence");
        assert!(!player.is_playing(), "the voice has ended");

        player.begin_block();
        player.trigger(1, live, false);
        let (line, token) = worker.take_audio_messages().expect("the next live trigger");
        let outcome = feed_offline(&mut worker, Scripted(48_000, vec![Ok(Some(vec![0.75; 100]))]), line, token);
        assert_eq!(worker.finish_live(line, token, outcome), None);
        let played = render(&mut player, 1000);
        assert_eq!(played[..100], [0.75; 100], "the next line plays");
        assert!(played[100..].iter().all(|s| *s == 0.0));
        assert_ne!(status.state(1), LineState::Failed);
    }

    /// A stream whose every read first lets the audio thread play a block, as it would
    /// meanwhile; counts the chunks taken.
    struct PlayedMeanwhile<'a> {
        player: &'a mut Player,
        chunks: Vec<Vec<f32>>,
        taken: usize,
    }

    impl Chunks for PlayedMeanwhile<'_> {
        fn next_chunk_timeout(&mut self, _timeout: Duration) -> voxcpm_engine::Result<Option<Vec<f32>>> {
            render(self.player, 1000);
            self.taken += 1;
            Ok(self.chunks.get(self.taken - 1).cloned())
        }

        fn sample_rate(&self) -> Option<u32> {
            Some(48_000)
        }
    }

    impl<T: Chunks> Chunks for &mut T {
        fn next_chunk_timeout(&mut self, timeout: Duration) -> voxcpm_engine::Result<Option<Vec<f32>>> {
            (**self).next_chunk_timeout(timeout)
        }

        fn sample_rate(&self) -> Option<u32> {
            (**self).sample_rate()
        }
    }

    /// A live voice silenced by a NaN stops its stream: the worker cancels it rather than
    /// generating on into a ring nobody reads (which blocks once it is full).
    #[test]
    fn a_live_stream_whose_voice_stopped_is_cancelled() {
        let (mut worker, mut player, _status, _cache) = worker_and_player(48_000, 1);
        player.begin_block();
        player.trigger(0, TriggerMode { cut: true, live: true }, false);
        let (_, token) = worker.take_audio_messages().expect("the live trigger");
        let mut chunks = vec![vec![0.25; 300], vec![f32::NAN; 10]];
        chunks.extend((0..100).map(|_| vec![0.5; 200]));
        let mut stream = PlayedMeanwhile { player: &mut player, chunks, taken: 0 };
        assert_eq!(feed_offline(&mut worker, &mut stream, 0, token), Ok(None));
        assert!(stream.taken <= 4, "the stream went on after its voice stopped: {} chunks taken", stream.taken);
    }

    #[test]
    fn a_live_stream_from_a_16_khz_model_plays_at_its_pitch_and_length_in_a_44_1_khz_host() {
        let (mut worker, mut player, status, _cache) = worker_and_player(44_100, 1);
        player.begin_block();
        player.trigger(0, TriggerMode { cut: true, live: true }, false);
        let (line, token) = worker.take_audio_messages().expect("the live trigger");
        let speech: Vec<f32> =
            (0..8_000).map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 0.5).collect();
        let chunks = speech.chunks(1_280).map(|chunk| Ok(Some(chunk.to_vec()))).collect();
        let outcome = feed_offline(&mut worker, Scripted(16_000, chunks), line, token);
        assert_eq!(worker.finish_live(line, token, outcome), None);

        let played = render(&mut player, 30_000);
        // The engine's resampling keeps a tone's pitch and length (its own tests).
        let expected = voxcpm_engine::audio_io::resample(&speech, 16_000, 44_100).unwrap();
        assert!(expected.len().abs_diff(22_050) <= 1, "half a second at 44.1 kHz: {}", expected.len());
        assert_eq!(played[..expected.len()], expected[..], "the stream plays as the engine resamples it");
        assert!(played[expected.len()..].iter().all(|s| *s == 0.0), "then silence");
        assert_eq!(status.missed_triggers.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_live_stream_the_engine_refuses_fails_its_line_and_plays_once_fixed() {
        let cache = tempfile::tempdir().unwrap();
        let voice = Some(PathBuf::from("/nonexistent/live-voice.wav"));
        let mut running = start(vec![Line { voice, ..Line::new("Live.") }], cache.path());
        switch_on(&running.params.live);
        running.status.request_scan();
        wait_until("a scan in live mode", || running.status.worker_has_scanned());
        assert_eq!(running.status.state(0), LineState::Absent, "live mode renders nothing ahead");
        wait_until("the model", || running.status.model().summary.starts_with("ready"));

        assert!(running.audio.to_worker.push(ToWorker::Live { line: 0, token: 1 }).is_ok());
        wait_until("the failure", || running.status.state(0) == LineState::Failed);
        assert!(running.status.line(0).message.contains("live-voice.wav"), "{:?}", running.status.line(0));
        assert_eq!(live_segments(&mut running.audio, 1), (0, true), "no audio, and the voice is told it ended");

        running.params.project_mut().lines[0].voice = None;
        assert!(running.audio.to_worker.push(ToWorker::Live { line: 0, token: 2 }).is_ok());
        let (samples, ended) = live_segments(&mut running.audio, 2);
        assert!(ended && samples > 1000, "{samples} samples");
        assert_eq!(running.status.state(0), LineState::Absent, "the failure is cleared");
    }

    #[test]
    fn a_live_trigger_while_the_model_loads_streams_once_it_has_loaded() {
        let cache = tempfile::tempdir().unwrap();
        let mut running = start(vec![Line::new("Live while loading.")], cache.path());
        let model = fresh_demo_model();
        running.params.project_mut().model = Some(model.path().to_owned());
        switch_on(&running.params.live);
        assert!(running.audio.to_worker.push(ToWorker::Live { line: 0, token: 1 }).is_ok());
        let (samples, _) = live_segments(&mut running.audio, 1);
        assert!(samples > 1000, "{:?}", running.status.line(0));
        assert_ne!(running.status.state(0), LineState::Failed);
    }

    /// The samples announced for live stream `token` up to its end, and whether it ended.
    fn live_segments(audio: &mut AudioEnds, token: u32) -> (usize, bool) {
        let mut samples = 0;
        let mut ended = false;
        wait_until("the stream's end", || {
            while let Ok(segment) = audio.live_segments.pop() {
                if segment.token == token {
                    samples += segment.len;
                    ended |= segment.end;
                }
            }
            ended
        });
        (samples, ended)
    }
}
