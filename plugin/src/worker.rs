//! The instance's worker thread: keeps every line rendered ahead (from the disk cache or the
//! shared engine), serves live triggers by streaming ([`live`]), builds the voices' resamplers
//! for the model's rate, frees what the audio thread lets go of, and runs the editor's chores.
//! Generation never runs on nice-plug's background thread, which every instance in the process
//! shares.

mod ahead;
mod export;
mod live;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use voxcpm_engine::hub::ModelSource;
use voxcpm_engine::pipeline::SpeechOptions;
use voxcpm_engine::resample::StreamResampler;
use voxcpm_engine::runtime::{GenerateOptions, Status as EngineStatus, model_key};

use crate::handoff::{Clip, ToAudio, ToWorker, WorkerEnds};
use crate::models;
use crate::params::VoxParams;
use crate::player::VOICES;
use crate::project::{Line, MAX_LINES, Project, Prompt};
use crate::render_cache::RenderCache;
use crate::shared_engine::{self, SharedEngine};
use crate::speaking_rate::LineLengths;
use crate::status::{LineReport, LineState, ModelFamily, Status};
use crate::takes;

/// How often the worker looks for edits and messages when idle.
const TICK: Duration = Duration::from_millis(10);

/// Chores the editor asks for.
pub enum Command {
    /// Write a line's chosen take, or each of its rendered takes, as WAVs into the export folder.
    Export { line: usize, takes: ExportTakes },
}

/// Which takes an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportTakes {
    Chosen,
    All,
}

/// Everything that shapes one line's render.
#[derive(Debug, Clone, PartialEq)]
struct LineSpec {
    text: String,
    voice: Option<PathBuf>,
    /// The line's continuation prompt, else the project's.
    prompt: Prompt,
    cfg: f32,
    steps: usize,
    seed: u64,
    normalize: bool,
    denoise: bool,
}

impl LineSpec {
    fn options(&self) -> GenerateOptions {
        GenerateOptions {
            audio_prompt: self.voice.clone(),
            prompt_wav_path: self.prompt.wav.clone(),
            prompt_text: self.prompt.text.clone(),
            speech: SpeechOptions { cfg_value: self.cfg, inference_timesteps: self.steps, ..SpeechOptions::default() },
            seed: Some(self.seed),
            normalize: self.normalize,
            denoise: self.denoise,
        }
    }
}

impl LineSpec {
    /// The same line with take `take`'s seed (this spec's seed is take 1's).
    fn for_take(&self, take: usize) -> LineSpec {
        LineSpec { seed: takes::take_seed(self.seed, take), ..self.clone() }
    }

    /// A prompt clip without its transcript, or the reverse, named (the engine's own refusal
    /// does not say which half is missing).
    fn check_prompt(&self) -> Result<(), String> {
        match (&self.prompt.wav, &self.prompt.text) {
            (Some(wav), None) => Err(format!(
                "the continuation prompt {} has no transcript: type what it says as the prompt text",
                wav.display()
            )),
            (None, Some(text)) => {
                Err(format!("the continuation prompt text {text:?} has no prompt clip: give the WAV it transcribes"))
            }
            _ => Ok(()),
        }
    }
}

/// A line as the project and parameters describe it now: what shapes its takes (with take 1's
/// seed), how many there are and which one MIDI plays.
#[derive(Debug, Clone, PartialEq)]
struct LinePlan {
    spec: LineSpec,
    takes: usize,
    chosen: usize,
}

/// `line`'s spec with the parameters' seed (take 1's).
fn line_spec(params: &VoxParams, project: &Project, line: &Line) -> LineSpec {
    LineSpec {
        text: line.text.clone(),
        voice: line.voice.clone().or_else(|| project.voice.clone()),
        prompt: if line.prompt.is_empty() { project.prompt.clone() } else { line.prompt.clone() },
        cfg: params.cfg.value(),
        steps: params.steps.value().max(1) as usize,
        seed: params.seed.value().max(0) as u64,
        normalize: params.normalize.value(),
        denoise: params.denoise.value(),
    }
}

/// The lines as the project and parameters describe them now (`None`: nothing to render).
fn current_plans(params: &VoxParams) -> Vec<Option<LinePlan>> {
    let project = params.project();
    project.lines.iter().take(MAX_LINES).map(|line| plan(params, &project, line)).collect()
}

/// Line `index` alone as [`current_plans`] describes it: what a render in flight checks after
/// every patch, without building every line's plan.
fn current_plan(params: &VoxParams, index: usize) -> Option<LinePlan> {
    let project = params.project();
    project.lines.get(index).filter(|_| index < MAX_LINES).and_then(|line| plan(params, &project, line))
}

/// `line`'s plan, or `None` when nothing is rendered ahead for it (live mode, no text).
fn plan(params: &VoxParams, project: &Project, line: &Line) -> Option<LinePlan> {
    (!params.live.value() && !line.text.trim().is_empty()).then(|| {
        let spec = line_spec(params, project, line);
        let chosen = takes::chosen_take(line, spec.seed);
        LinePlan { spec, takes: takes::take_count(line), chosen }
    })
}

/// A line's spec for live play, with its chosen take's seed (live mode renders nothing ahead,
/// so `current_plans` is empty).
fn live_spec(params: &VoxParams, line: usize) -> LineSpec {
    let project = params.project();
    let line = project.lines.get(line).cloned().unwrap_or_default();
    let spec = line_spec(params, &project, &line);
    spec.for_take(takes::chosen_take(&line, spec.seed))
}

/// A line as the worker last handled it.
#[derive(Default)]
struct LineSlot {
    /// Take 1's spec.
    spec: Option<LineSpec>,
    /// The model the render was made with.
    model_key: String,
    /// The clip the audio thread holds as the line's: its chosen take's.
    clip: Option<Clip>,
    takes: Vec<TakeSlot>,
    /// The take MIDI plays.
    chosen: usize,
}

/// One take of a line as the worker last handled it.
#[derive(Default)]
struct TakeSlot {
    /// The render, also held by the audio thread (for auditions).
    clip: Option<Clip>,
    /// Needs rendering (or failed: then it waits for an edit).
    dirty: bool,
}

/// The model in use and what is known of it.
struct Model {
    engine: SharedEngine,
    /// Known once it has loaded.
    key: Option<String>,
    /// Its output rate, known once it has loaded.
    sample_rate: Option<u32>,
}

/// The worker's handle, owned by the plugin instance; dropping it stops and joins the thread.
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn spawn(
        params: Arc<VoxParams>,
        status: Arc<Status>,
        ends: WorkerEnds,
        inbox: Receiver<Command>,
        cache: RenderCache,
    ) -> std::io::Result<Worker> {
        let stop = Arc::new(AtomicBool::new(false));
        let state = WorkerState::new(params, status, ends, inbox, Arc::clone(&stop), cache);
        let thread = std::thread::Builder::new().name("voxcpm-plugin-worker".into()).spawn(move || state.run())?;
        Ok(Worker { stop, thread: Some(thread) })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // A render in progress is cancelled at its next patch.
            let _ = thread.join();
        }
    }
}

struct WorkerState {
    params: Arc<VoxParams>,
    status: Arc<Status>,
    ends: WorkerEnds,
    inbox: Receiver<Command>,
    stop: Arc<AtomicBool>,
    lines: Vec<LineSlot>,
    model: Option<Model>,
    /// The model setting last acted on (`Some(None)`: the automatic choice).
    model_request: Option<Option<PathBuf>>,
    /// [`models::installs`] when the model was last looked for: a download finishing since
    /// is a reason to look again.
    installs_seen: u64,
    cache: RenderCache,
    /// The newest live stream the audio thread stopped playing before its end.
    abandoned_live: Option<u32>,
    /// The (model, host) rates the audio thread was last sent resamplers for.
    resamplers_sent: Option<(u32, u32)>,
    /// How long lines speak on each model, learned from renders and streams: what a live
    /// line's start is planned on.
    lengths: LineLengths,
    /// The takes rendering on the engine now.
    renders: Vec<ahead::RenderInFlight>,
}

impl WorkerState {
    fn new(
        params: Arc<VoxParams>,
        status: Arc<Status>,
        ends: WorkerEnds,
        inbox: Receiver<Command>,
        stop: Arc<AtomicBool>,
        cache: RenderCache,
    ) -> WorkerState {
        WorkerState {
            params,
            status,
            ends,
            inbox,
            stop,
            lines: (0..MAX_LINES).map(|_| LineSlot::default()).collect(),
            model: None,
            model_request: None,
            installs_seen: models::installs(),
            cache,
            abandoned_live: None,
            resamplers_sent: None,
            lengths: LineLengths::default(),
            renders: Vec::new(),
        }
    }

    fn run(mut self) {
        while !self.stop.load(Ordering::Relaxed) {
            let tick = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.tick()));
            if tick.is_err() {
                self.status.add_note("internal error in the plugin worker (see the log); it carries on".into());
                for take in self.lines.iter_mut().flat_map(|line| line.takes.iter_mut()) {
                    take.dirty = take.clip.is_none();
                }
            }
        }
        self.join_renders();
    }

    fn tick(&mut self) {
        match self.inbox.recv_timeout(TICK) {
            Ok(Command::Export { line, takes }) => self.export(line, takes),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
        if let Some((line, token)) = self.take_audio_messages() {
            self.serve_live(line, token);
            return;
        }
        // Taken before anything is read, so a scan never vouches for a project older than it.
        let scan = self.status.begin_scan();
        self.follow_model_setting();
        self.scan_lines(scan);
        // Every tick, so that a reactivation at another host rate is followed too.
        let model_rate = self.model.as_ref().and_then(|m| m.sample_rate);
        let supplied = model_rate.map(|rate| self.supply_resamplers(rate));
        self.collect_renders();
        let Some((line, take)) = self.next_render() else { return };
        // Renders go to the audio thread only after resamplers for their rate.
        match supplied {
            Some(Ok(true)) => self.render_ahead((line, take)),
            Some(Err(e)) => {
                for take in 0..self.lines[line].takes.len() {
                    self.fail_take(line, take, &e);
                }
            }
            // No model (then `scan_lines` fails the line or it waits for the load), or no
            // host rate yet (the audio thread is being activated).
            None | Some(Ok(false)) => {}
        }
    }

    /// Sends the audio thread one resampler per voice from `source_rate` to the host's rate,
    /// unless it has them already; false while the host rate is not known yet.
    fn supply_resamplers(&mut self, source_rate: u32) -> Result<bool, String> {
        let host_rate = self.ends.host_rate.load(Ordering::Acquire);
        if host_rate == 0 {
            return Ok(false);
        }
        if self.resamplers_sent == Some((source_rate, host_rate)) {
            return Ok(true);
        }
        for _ in 0..VOICES {
            let resampler = StreamResampler::new(source_rate, host_rate).map_err(|e| e.to_string())?;
            if self.ends.to_audio.push(ToAudio::Resampler(Box::new(resampler))).is_err() {
                return Err("the audio thread is not taking messages (queue full)".into());
            }
        }
        self.resamplers_sent = Some((source_rate, host_rate));
        Ok(true)
    }

    /// Frees retired clips; returns the newest live trigger, if any.
    fn take_audio_messages(&mut self) -> Option<(usize, u32)> {
        let mut live = None;
        while let Ok(message) = self.ends.from_audio.pop() {
            match message {
                ToWorker::Retired(clip) => drop(clip),
                ToWorker::RetiredResampler(resampler) => drop(resampler),
                ToWorker::Live { line, token } => live = Some((line, token)),
                ToWorker::LiveAbandoned { token } => self.abandoned_live = Some(token),
            }
        }
        live
    }

    /// Starts the model the project names when that setting changes.
    /// A model that was missing is looked for again when a download in the editor finishes.
    fn follow_model_setting(&mut self) {
        let wanted = self.params.project().model.clone();
        let installs = models::installs();
        let newly_installed = self.model.is_none() && installs != self.installs_seen;
        if self.model_request.as_ref() != Some(&wanted) || newly_installed {
            self.model_request = Some(wanted.clone());
            self.installs_seen = installs;
            self.model = None;
            // Every line is judged afresh against the new model (lines that failed for want
            // of one are queued again rather than left failed while it loads).
            for slot in &mut self.lines {
                slot.spec = None;
            }
            let name = wanted.as_ref().map(|p| p.display().to_string());
            match shared_engine::acquire(name.as_deref()) {
                Ok(engine) => {
                    let demo = engine.choice.source == ModelSource::Demo;
                    self.status.set_model_summary(format!("loading {}", engine.choice.model), demo, None);
                    self.model = Some(Model { engine, key: None, sample_rate: None });
                }
                Err(e) => self.status.set_model_summary(e.to_string(), false, None),
            }
        }
        let Some(model) = self.model.as_mut().filter(|m| m.key.is_none()) else { return };
        let info = model.engine.server.info();
        match info.status {
            EngineStatus::Ready => {
                let dir = info.model_dir.unwrap_or_else(|| PathBuf::from(&info.model));
                let (Some(sample_rate), Some(architecture)) = (info.sample_rate, info.architecture) else {
                    let why = "the model loaded without its sample rate or architecture";
                    self.status.set_model_summary(why.into(), false, None);
                    self.model = None;
                    return;
                };
                match model_key(&dir, None) {
                    Ok(key) => {
                        model.key = Some(key);
                        model.sample_rate = Some(sample_rate);
                        let family = ModelFamily { architecture, sample_rate };
                        let shared = shared_engine::loaded_models();
                        let demo = model.engine.choice.source == ModelSource::Demo;
                        let label = if demo { " (DEMO: random weights, speaks noise)" } else { "" };
                        self.status.set_model_summary(
                            format!("ready: {}{label} [{shared} model(s) in this process]", dir.display()),
                            demo,
                            Some(family),
                        );
                    }
                    Err(e) => self.status.set_model_summary(format!("cannot identify the model: {e}"), false, None),
                }
            }
            EngineStatus::Failed(message) => {
                self.status.set_model_summary(format!("model failed to load: {message}"), false, None);
                self.model = None;
            }
            EngineStatus::Loading | EngineStatus::Stopped => {}
        }
    }
}

fn failed(message: &str) -> LineReport {
    LineReport { state: LineState::Failed, message: message.to_owned(), ..LineReport::default() }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::mpsc::{Sender, channel};
    use std::time::Instant;

    use voxcpm_engine::config::Architecture;
    use voxcpm_engine::testkit::parity::max_abs_diff;

    use super::*;
    use crate::handoff::{self, AudioEnds};
    use crate::player::{EditorTriggers, Player, TriggerMode};
    use crate::project::Line;

    const PATIENCE: Duration = Duration::from_secs(120);

    pub(super) fn demo_model() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo-checkpoint")
    }

    /// A copy of the demo under a new path: a model no server holds yet, so it loads.
    pub(super) fn fresh_demo_model() -> tempfile::TempDir {
        let copy = tempfile::tempdir().unwrap();
        for file in std::fs::read_dir(demo_model()).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, copy.path().join(file.file_name().unwrap())).unwrap();
        }
        copy
    }

    pub(super) struct Running {
        pub(super) params: Arc<VoxParams>,
        pub(super) status: Arc<Status>,
        pub(super) audio: AudioEnds,
        pub(super) commands: Sender<Command>,
        _worker: Worker,
    }

    /// A worker on the demo model with `lines`, rendering into `cache`.
    pub(super) fn start(lines: Vec<Line>, cache: &Path) -> Running {
        let params = Arc::new(VoxParams::default());
        {
            let mut project = params.project_mut();
            project.lines = lines;
            project.model = Some(demo_model());
        }
        let status = Arc::new(Status::default());
        let (audio, worker_ends) = handoff::channels();
        // As an activated player would.
        audio.host_rate.store(48_000, Ordering::Release);
        let (commands, inbox) = channel();
        let worker = Worker::spawn(
            Arc::clone(&params),
            Arc::clone(&status),
            worker_ends,
            inbox,
            RenderCache::new(cache.to_owned()),
        )
        .unwrap();
        Running { params, status, audio, commands, _worker: worker }
    }

    pub(super) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sets a parameter as the host would (its value is an atomic the worker reads).
    pub(super) fn switch_on(param: &nice_plug::prelude::BoolParam) {
        use nice_plug::params::InternalParamMut;
        // SAFETY: the value is stored atomically; nothing else sets it in these tests.
        unsafe { param._internal_set_plain_value(true) };
    }

    pub(super) fn settled(status: &Status, line: usize) -> bool {
        matches!(status.state(line), LineState::Ready | LineState::Failed)
    }

    /// The next clip message for `line` (skipping others), waiting for it.
    pub(super) fn next_clip(audio: &mut AudioEnds, line: usize) -> Option<Clip> {
        let mut found = None;
        wait_until("a clip message", || match audio.from_worker.pop() {
            Ok(ToAudio::Clip { line: l, clip }) if l == line => {
                found = Some(clip);
                true
            }
            _ => false,
        });
        found.flatten()
    }

    #[test]
    fn lines_render_ahead_and_a_later_worker_takes_them_from_the_render_cache() {
        let cache = tempfile::tempdir().unwrap();
        let mut first = start(vec![Line::new("First line."), Line::new("Second line.")], cache.path());
        wait_until("both renders", || settled(&first.status, 0) && settled(&first.status, 1));
        for line in 0..2 {
            assert_eq!(first.status.state(line), LineState::Ready, "{:?}", first.status.line(line));
            assert!(first.status.line(line).message.is_empty(), "rendered, not cached");
        }
        let clip = next_clip(&mut first.audio, 0).expect("line 1's render reaches the audio thread");
        assert!(clip.samples.len() > 1000);

        let mut second = start(vec![Line::new("First line."), Line::new("Second line.")], cache.path());
        wait_until("the cached renders", || settled(&second.status, 0) && settled(&second.status, 1));
        assert_eq!(second.status.line(0).message, "from the render cache");
        assert_eq!(next_clip(&mut second.audio, 0).expect("cached clip"), clip, "the cache returns the same audio");
    }

    /// The resamplers the worker sends before line 0's next render, by rates.
    fn resamplers_before_a_render(audio: &mut AudioEnds) -> Vec<(u32, u32)> {
        let mut rates = Vec::new();
        wait_until("a render", || match audio.from_worker.pop() {
            Ok(ToAudio::Resampler(r)) => {
                rates.push((r.source_rate(), r.target_rate()));
                false
            }
            Ok(ToAudio::Clip { line, clip }) => line == 0 && clip.is_some(),
            Ok(ToAudio::Take { .. }) | Err(_) => false,
        });
        rates
    }

    #[test]
    fn the_voices_get_resamplers_from_the_models_rate_to_the_hosts_before_its_first_render() {
        let cache = tempfile::tempdir().unwrap();
        let mut running = start(vec![Line::new("Resampled.")], cache.path());
        let model_rate = 48_000; // the demo checkpoint is a VoxCPM2
        assert_eq!(resamplers_before_a_render(&mut running.audio), [(model_rate, 48_000); VOICES]);

        // A reactivation at another host rate: the worker follows it, ahead of the next render.
        running.audio.host_rate.store(44_100, Ordering::Release);
        running.params.project_mut().lines[0].text = "Resampled again.".into();
        assert_eq!(resamplers_before_a_render(&mut running.audio), [(model_rate, 44_100); VOICES]);
    }

    #[test]
    fn a_render_is_served_from_the_cache_only_to_the_model_that_made_it() {
        let cache = tempfile::tempdir().unwrap();
        let mut running = start(vec![Line::new("Cached per model.")], cache.path());
        let ready = |running: &Running| {
            wait_until("the line", || settled(&running.status, 0));
            running.status.line(0)
        };
        assert!(next_clip(&mut running.audio, 0).is_some());
        assert_eq!(ready(&running).message, "", "rendered, not cached");

        // The same weights under another folder: another model as far as the cache knows.
        let other = fresh_demo_model();
        running.params.project_mut().model = Some(other.path().to_owned());
        assert!(next_clip(&mut running.audio, 0).is_none(), "the first model's render is withdrawn");
        assert!(next_clip(&mut running.audio, 0).is_some());
        assert_eq!(ready(&running).message, "", "rendered again, not the first model's render");

        running.params.project_mut().model = Some(demo_model());
        assert!(next_clip(&mut running.audio, 0).is_none());
        assert!(next_clip(&mut running.audio, 0).is_some());
        assert_eq!(ready(&running).message, "from the render cache", "the first model's own render");
    }

    /// The engine's 16 kHz v1 fixture checkpoint (VoxCPM-0.5B's layout, tiny).
    fn v1_model() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/v1_tiny/checkpoint")
    }

    /// Plays line 1 to its end as an offline bounce does (the trigger waits for its render).
    fn bounce_line_one(player: &mut Player) -> Vec<f32> {
        player.begin_block();
        player.trigger(0, TriggerMode { cut: true, live: false }, true);
        let mut played = Vec::new();
        let mut block = [0.0; 512];
        while player.is_playing() {
            block.fill(0.0);
            player.begin_block();
            player.render(&mut block, true);
            played.extend_from_slice(&block);
        }
        played
    }

    /// Switches the model setting and waits until line 1 is ready on the new model.
    fn switch_model(params: &VoxParams, status: &Status, model: PathBuf) -> LineReport {
        params.project_mut().model = Some(model);
        status.request_scan();
        wait_until("a scan of the new model setting", || status.worker_has_scanned());
        wait_until("line 1 on the new model", || settled(status, 0));
        status.line(0)
    }

    /// The engine's own render of line 1 on `model` with the line's settings: its rate, and
    /// the audio resampled to 48 kHz as the engine's offline resampler does.
    fn engine_render_of_line_one(params: &VoxParams, model: &Path) -> (u32, Vec<f32>) {
        let engine = shared_engine::acquire(Some(&model.display().to_string())).unwrap();
        engine.server.await_ready(PATIENCE).unwrap();
        let plan = current_plans(params)[0].clone().expect("line 1 is rendered ahead");
        let spec = plan.spec.for_take(plan.chosen);
        let speech = engine.server.generate(&spec.text, &spec.options()).unwrap();
        let resampled = voxcpm_engine::audio_io::resample(&speech.samples, speech.sample_rate, 48_000).unwrap();
        (speech.sample_rate, resampled)
    }

    fn assert_plays(played: &[f32], expected: &[f32], what: &str) {
        assert!(expected.len() > 1000, "{what}: too short a render to tell: {}", expected.len());
        let error = max_abs_diff(&played[..expected.len()], expected);
        assert!(error < 1e-4, "{what}: the line differs from the engine's render by {error}");
        assert!(played[expected.len()..].iter().all(|s| *s == 0.0), "{what}: sound after the line's end");
    }

    #[test]
    fn switching_between_a_v2_and_a_v1_model_renders_the_line_again_at_the_new_rate_and_back_from_the_cache() {
        let cache = tempfile::tempdir().unwrap();
        let Running { params, status, audio, commands: _commands, _worker } =
            start(vec![Line::new("Switch models.")], cache.path());
        let mut player = Player::new(audio, Arc::clone(&status), Arc::new(EditorTriggers::default()));
        player.prepare(48_000).unwrap();
        let v2 = ModelFamily { architecture: Architecture::V2, sample_rate: 48_000 };
        let v1 = ModelFamily { architecture: Architecture::V1, sample_rate: 16_000 };

        let on_v2 = bounce_line_one(&mut player);
        assert_eq!(status.line(0).message, "", "rendered, not cached");
        assert_eq!(status.model().family, Some(v2));
        let (rate, expected) = engine_render_of_line_one(&params, &demo_model());
        assert_eq!(rate, 48_000);
        assert_plays(&on_v2, &expected, "on VoxCPM2");

        let report = switch_model(&params, &status, v1_model());
        assert_eq!((report.state, report.message.as_str()), (LineState::Ready, ""), "rendered again, not cached");
        assert_eq!(status.model().family, Some(v1));
        let on_v1 = bounce_line_one(&mut player);
        let (rate, expected) = engine_render_of_line_one(&params, &v1_model());
        assert_eq!(rate, 16_000);
        assert!((report.seconds * 48_000.0 - expected.len() as f32).abs() < 48.0, "{report:?}: the 16 kHz length");
        assert_plays(&on_v1, &expected, "on VoxCPM (v1), resampled from 16 kHz");

        let report = switch_model(&params, &status, demo_model());
        assert_eq!((report.state, report.message.as_str()), (LineState::Ready, "from the render cache"));
        assert_eq!(status.model().family, Some(v2));
        assert_eq!(bounce_line_one(&mut player), on_v2, "the first model's own render plays again");
    }

    #[test]
    fn an_edited_line_withdraws_its_old_render_and_renders_the_new_text() {
        let cache = tempfile::tempdir().unwrap();
        let mut running = start(vec![Line::new("Before the edit.")], cache.path());
        let before = next_clip(&mut running.audio, 0).expect("first render");
        running.params.project_mut().lines[0].text = "After the edit, a different line.".into();
        assert!(next_clip(&mut running.audio, 0).is_none(), "the old render is withdrawn first");
        let after = next_clip(&mut running.audio, 0).expect("the new render");
        assert_ne!(after, before);
    }

    #[test]
    fn a_missing_voice_file_fails_its_line_with_a_message_naming_the_file() {
        let cache = tempfile::tempdir().unwrap();
        let voice = Some(PathBuf::from("/nonexistent/voice-for-line-1.wav"));
        let running = start(vec![Line { voice, ..Line::new("Hello.") }, Line::new("Fine.")], cache.path());
        wait_until("both lines", || settled(&running.status, 0) && settled(&running.status, 1));
        let report = running.status.line(0);
        assert_eq!(report.state, LineState::Failed);
        assert!(report.message.contains("voice-for-line-1.wav"), "{}", report.message);
        assert_eq!(running.status.state(1), LineState::Ready, "the other line is unaffected");
    }

    #[test]
    fn a_model_folder_that_does_not_exist_fails_every_line_and_says_why() {
        let cache = tempfile::tempdir().unwrap();
        let running = start(vec![Line::new("Hello.")], cache.path());
        running.params.project_mut().model = Some("/nonexistent/model-folder".into());
        wait_until("the failure", || running.status.state(0) == LineState::Failed);
        let summary = running.status.model().summary;
        assert!(summary.contains("/nonexistent/model-folder"), "{summary}");
        assert!(running.status.line(0).message.contains("no model"), "{:?}", running.status.line(0));
    }

    #[test]
    fn lines_that_failed_for_want_of_a_model_wait_for_the_next_one_while_it_loads() {
        let cache = tempfile::tempdir().unwrap();
        let running = start(vec![Line::new("Hello.")], cache.path());
        running.params.project_mut().model = Some("/nonexistent/model-folder".into());
        wait_until("the failure", || running.status.state(0) == LineState::Failed);

        let copy = fresh_demo_model();
        running.params.project_mut().model = Some(copy.path().to_owned());
        running.status.request_scan();
        wait_until("a scan of the new setting", || running.status.worker_has_scanned());
        assert!(running.status.state(0).is_pending(), "{:?} while the model loads", running.status.line(0));
        wait_until("the render", || running.status.state(0) == LineState::Ready);
    }

    #[test]
    fn the_normalize_setting_reaches_the_engine() {
        let cache = tempfile::tempdir().unwrap();
        // Only emoji: speakable as it is (the tokenizer takes them), nothing left once normalised.
        let mut running = start(vec![Line::new("🙂🙂")], cache.path());
        assert!(next_clip(&mut running.audio, 0).is_some(), "rendered as written");
        switch_on(&running.params.normalize);
        wait_until("the normalised failure", || running.status.state(0) == LineState::Failed);
        assert!(running.status.line(0).message.contains("normalisation"), "{:?}", running.status.line(0));
    }

    #[test]
    fn the_denoise_setting_cleans_the_voice_clip_before_cloning() {
        let cache = tempfile::tempdir().unwrap();
        let voice = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/speech_16k.wav");
        let mut running = start(vec![Line { voice: Some(voice), ..Line::new("Hello.") }], cache.path());
        let raw = next_clip(&mut running.audio, 0).expect("render with the clip as it is");
        switch_on(&running.params.denoise);
        assert!(next_clip(&mut running.audio, 0).is_none(), "the old render is withdrawn");
        let cleaned = next_clip(&mut running.audio, 0).expect("render with the denoised clip");
        assert_ne!(cleaned, raw, "denoising the reference changes the take");
    }

    #[test]
    fn a_render_cache_that_cannot_be_written_still_plays_the_line_and_says_why() {
        let scratch = tempfile::tempdir().unwrap();
        let file = scratch.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let mut running = start(vec![Line::new("Not cached.")], &file.join("renders"));
        assert!(next_clip(&mut running.audio, 0).is_some(), "the render reaches the audio thread");
        let report = running.status.line(0);
        assert_eq!(report.state, LineState::Ready, "{report:?}");
        assert!(report.message.starts_with("not cached"), "{report:?}");
        assert!(report.message.contains(&file.display().to_string()), "{report:?}");
        assert!(report.message.contains("Not a directory"), "{report:?}");
    }
}
