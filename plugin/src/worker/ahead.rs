//! Rendering ahead: every take of every line, from the render cache or the engine, each
//! handed to the audio thread as it comes (for auditions), the chosen take also as the line's
//! clip (what MIDI and the play button play). Chosen takes render before the others, so every
//! line is playable before any line's variations are. Several takes render at once, each on a
//! helper thread, so that the engine generates them together as one batch.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::thread::JoinHandle;

use rtrb::Producer;
use voxcpm_engine::Error;
use voxcpm_engine::pipeline::Progress;
use voxcpm_engine::runtime::{DEFAULT_MAX_BATCH, Speech, request_key};

use super::{LinePlan, LineSlot, LineSpec, TakeSlot, WorkerState, current_plan, current_plans, failed};
use crate::handoff::{Clip, ToAudio};
use crate::status::{LineReport, LineState};
use crate::takes::{self, TakeReport};
use crate::thumbnail;

/// A take rendering on the shared engine, on a helper thread of its own; the engine batches
/// it with the others in flight.
pub(super) struct RenderInFlight {
    index: usize,
    take: usize,
    /// Whether it was the line's chosen take when it started.
    chosen: bool,
    /// The line's take-1 spec and the model it renders with: the line may have changed by the
    /// time it comes back.
    base: LineSpec,
    model_key: String,
    /// Its key in the render cache.
    request: String,
    result: Receiver<voxcpm_engine::Result<Speech>>,
    /// Joined once its result is in, or when the worker stops: no thread of the plugin may
    /// outlive its instance (a host may unload the library next), nor keep its model loaded.
    thread: JoinHandle<()>,
}

impl WorkerState {
    /// Compares the lines with what was rendered; changed lines are withdrawn from the audio
    /// thread and queued, added takes queued, removed ones withdrawn, a new choice delivered.
    pub(super) fn scan_lines(&mut self, scan: u64) {
        if !self.params.project().dropped.is_empty() {
            for note in std::mem::take(&mut self.params.project_mut().dropped) {
                self.status.add_note(format!("project state: dropped {note}"));
            }
        }
        let plans = current_plans(&self.params);
        self.status.set_line_count(plans.len());
        let model_key = self.model.as_ref().and_then(|m| m.key.clone()).unwrap_or_default();
        for index in 0..self.lines.len() {
            let plan = plans.get(index).cloned().flatten();
            let slot = &self.lines[index];
            let spec = plan.as_ref().map(|p| &p.spec);
            if slot.spec.as_ref() != spec || (slot.model_key != model_key && spec.is_some()) {
                self.queue_line(index, plan, &model_key);
            } else if let Some(plan) = plan {
                self.follow_takes(index, &plan);
            }
        }
        self.status.finish_scan(scan);
        if self.model.as_ref().is_none_or(|m| m.key.is_none()) {
            self.fail_queued_lines_without_a_model();
        }
    }

    /// Withdraws everything of a line that changed and queues each of its takes afresh.
    fn queue_line(&mut self, index: usize, plan: Option<LinePlan>, model_key: &str) {
        let slot = &mut self.lines[index];
        withdraw_line_clip(&mut self.ends.to_audio, index, slot);
        for (take, old) in std::mem::take(&mut slot.takes).into_iter().enumerate() {
            withdraw_take(&mut self.ends.to_audio, index, take, old);
        }
        slot.model_key = model_key.to_owned();
        slot.spec = plan.as_ref().map(|p| p.spec.clone());
        slot.chosen = plan.as_ref().map_or(0, |p| p.chosen);
        let Some(plan) = plan else {
            self.status.set_takes(index, Vec::new());
            return self.status.set_line(index, LineReport::default());
        };
        slot.takes = (0..plan.takes).map(|_| TakeSlot { clip: None, dirty: true }).collect();
        self.status.set_takes(index, (0..plan.takes).map(|take| queued(&plan, take)).collect());
        self.status.set_line(index, LineReport { state: LineState::Queued, ..LineReport::default() });
    }

    /// Follows a change of a line's take count or choice (its audio is unchanged).
    fn follow_takes(&mut self, index: usize, plan: &LinePlan) {
        let slot = &mut self.lines[index];
        if slot.takes.len() != plan.takes {
            while slot.takes.len() > plan.takes {
                let take = slot.takes.len() - 1;
                let removed = slot.takes.pop().unwrap_or_default();
                withdraw_take(&mut self.ends.to_audio, index, take, removed);
            }
            let mut reports = self.status.takes(index);
            reports.truncate(plan.takes);
            while slot.takes.len() < plan.takes {
                reports.push(queued(plan, slot.takes.len()));
                slot.takes.push(TakeSlot { clip: None, dirty: true });
            }
            self.status.set_takes(index, reports);
        }
        if slot.chosen != plan.chosen {
            slot.chosen = plan.chosen;
            self.deliver_chosen(index);
        }
    }

    /// Makes the line's clip on the audio thread its chosen take's (withdrawn while that take
    /// is not rendered), and the line's report that take's.
    fn deliver_chosen(&mut self, index: usize) {
        let slot = &mut self.lines[index];
        let clip = slot.takes.get(slot.chosen).and_then(|take| take.clip.clone());
        match clip {
            Some(clip) => {
                slot.clip = Some(clip.clone());
                if self.ends.to_audio.push(ToAudio::Clip { line: index, clip: Some(clip) }).is_err() {
                    slot.clip = None;
                    return self.status.set_line(index, failed("the audio thread is not taking renders (queue full)"));
                }
            }
            None => withdraw_line_clip(&mut self.ends.to_audio, index, slot),
        }
        let report = self.status.takes(index).get(slot.chosen).map(|take| take.report.clone());
        self.status.set_line(index, report.unwrap_or_default());
    }

    /// With no model coming, queued takes fail (and say why) instead of waiting forever.
    pub(super) fn fail_queued_lines_without_a_model(&mut self) {
        if self.model.is_some() {
            return; // still loading
        }
        let why = format!("no model: {}", self.status.model().summary);
        for index in 0..self.lines.len() {
            for take in 0..self.lines[index].takes.len() {
                if self.lines[index].takes[take].dirty {
                    self.fail_take(index, take, &why);
                }
            }
        }
    }

    /// The next take to render: a line's chosen take first (MIDI plays it), then the others.
    pub(super) fn next_render(&self) -> Option<(usize, usize)> {
        let chosen = self.lines.iter().enumerate().find_map(|(index, slot)| {
            slot.takes.get(slot.chosen).filter(|take| take.dirty).map(|_| (index, slot.chosen))
        });
        chosen.or_else(|| {
            self.lines
                .iter()
                .enumerate()
                .find_map(|(index, slot)| slot.takes.iter().position(|take| take.dirty).map(|take| (index, take)))
        })
    }

    /// Keeps up to the engine's batch of takes rendering at once, starting with `first` (the
    /// next take due): they generate together as one batch. Chosen takes still come first: no
    /// other take starts while a chosen one renders.
    pub(super) fn render_ahead(&mut self, first: (usize, usize)) {
        let mut next = Some(first);
        while let Some((index, take)) = next {
            let chosen = take == self.lines[index].chosen;
            if self.renders.len() >= DEFAULT_MAX_BATCH || (!chosen && self.renders.iter().any(|r| r.chosen)) {
                return;
            }
            self.render(index, take);
            if self.lines[index].takes.get(take).is_none_or(|t| t.dirty) {
                return; // it could not start: the next tick tries again
            }
            next = self.next_render();
        }
    }

    /// Delivers the takes whose renders have come back (in the order they finish).
    pub(super) fn collect_renders(&mut self) {
        for render in std::mem::take(&mut self.renders) {
            match render.result.try_recv() {
                Err(TryRecvError::Empty) => self.renders.push(render),
                Ok(result) => self.finish_render(render, result),
                Err(TryRecvError::Disconnected) => {
                    let lost = Error::Internal("the render thread ended without a result".into());
                    self.finish_render(render, Err(lost));
                }
            }
        }
    }

    /// Waits for the renders in flight; with the worker stopping, each is cancelled at its
    /// next patch (its progress callback sees the stop flag).
    pub(super) fn join_renders(&mut self) {
        for render in self.renders.drain(..) {
            let _ = render.thread.join();
        }
    }

    /// Takes a take from the render cache, or starts rendering it on a helper thread.
    fn render(&mut self, index: usize, take: usize) {
        let Some(model) = self.model.as_ref() else { return };
        let (Some(key), Some(sample_rate), Some(base)) =
            (model.key.clone(), model.sample_rate, self.lines[index].spec.clone())
        else {
            return;
        };
        let server = Arc::clone(&model.engine.server);
        self.lines[index].takes[take].dirty = false;
        let spec = base.for_take(take);
        if let Err(why) = spec.check_prompt() {
            return self.fail_take(index, take, &why);
        }
        let options = spec.options();
        let request = match request_key(&key, &spec.text, &options) {
            Ok(request) => request,
            Err(e) => return self.fail_take(index, take, &e.to_string()),
        };
        if let Some(samples) = self.cache.load(&request, sample_rate) {
            self.deliver_take(index, take, Clip::new(samples, sample_rate), "from the render cache".to_owned());
            return self.learn_from_render(index, take);
        }
        self.report_take(index, take, LineReport { state: LineState::Rendering, ..LineReport::default() }, None);
        let status = Arc::clone(&self.status);
        let params = Arc::clone(&self.params);
        let stop = Arc::clone(&self.stop);
        let chosen = take == self.lines[index].chosen;
        let wanted = base.clone();
        let progress = move |p: Progress| {
            let progress = p.patches as f32 / p.cap.max(1) as f32;
            status.update_take(index, take, |report| report.report.progress = progress);
            if chosen {
                status.set_progress(index, progress);
            }
            let plan = current_plan(&params, index);
            let still_wanted = plan.is_some_and(|plan| plan.spec == wanted && take < plan.takes);
            if still_wanted && !stop.load(Ordering::Relaxed) {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        };
        let (send, result) = channel();
        let spawned = std::thread::Builder::new().name("voxcpm-plugin-render".into()).spawn(move || {
            let _ = send.send(server.generate_with_progress(&spec.text, &options, progress));
        });
        match spawned {
            Ok(thread) => {
                self.renders.push(RenderInFlight { index, take, chosen, base, model_key: key, request, result, thread })
            }
            Err(e) => self.fail_take(index, take, &format!("cannot start a render thread: {e}")),
        }
    }

    /// Delivers a finished render, unless its line changed meanwhile (then the new version is
    /// queued already and this one is dropped).
    fn finish_render(&mut self, render: RenderInFlight, result: voxcpm_engine::Result<Speech>) {
        let RenderInFlight { index, take, base, model_key, request, thread, .. } = render;
        // It has sent its result: it is ending.
        let _ = thread.join();
        let slot = &self.lines[index];
        let awaited = slot.spec.as_ref() == Some(&base)
            && slot.model_key == model_key
            && slot.takes.get(take).is_some_and(|t| !t.dirty && t.clip.is_none());
        if !awaited {
            return;
        }
        match result {
            Ok(speech) => {
                let note = match self.cache.store(&request, &speech.samples, speech.sample_rate) {
                    Ok(()) => String::new(),
                    Err(e) => format!("not cached: {e}"),
                };
                self.deliver_take(index, take, Clip::new(speech.samples, speech.sample_rate), note);
                self.learn_from_render(index, take);
            }
            // Edited while rendering: the next scan queues the new version (or drops the take,
            // if it is no longer wanted).
            Err(Error::Cancelled) => {
                self.lines[index].takes[take].dirty = true;
                let queued = LineReport { state: LineState::Queued, ..LineReport::default() };
                self.report_take(index, take, queued, None);
            }
            Err(e) => self.fail_take(index, take, &e.to_string()),
        }
    }

    /// Hands a rendered take to the audio thread (as the line's clip too when it is the chosen
    /// one) and reports it with its outline.
    fn deliver_take(&mut self, index: usize, take: usize, clip: Clip, note: String) {
        let peaks: Arc<[(f32, f32)]> = thumbnail::peaks(&clip.samples, thumbnail::COLUMNS).into();
        let seconds = clip.seconds();
        let slot = &mut self.lines[index];
        slot.takes[take].clip = Some(clip.clone());
        let mut sent = self.ends.to_audio.push(ToAudio::Take { line: index, take, clip: Some(clip.clone()) }).is_ok();
        if take == slot.chosen {
            slot.clip = Some(clip.clone());
            sent &= self.ends.to_audio.push(ToAudio::Clip { line: index, clip: Some(clip) }).is_ok();
        }
        if !sent {
            return self.fail_take(index, take, "the audio thread is not taking renders (queue full)");
        }
        let ready = LineReport { state: LineState::Ready, progress: 1.0, seconds, message: note };
        self.report_take(index, take, ready, Some(peaks));
    }

    pub(super) fn fail_take(&mut self, index: usize, take: usize, message: &str) {
        if let Some(slot) = self.lines[index].takes.get_mut(take) {
            slot.dirty = false;
        }
        self.report_take(index, take, failed(message), None);
    }

    /// Sets a take's report (and its outline, when given); the chosen take's is the line's too.
    fn report_take(&self, index: usize, take: usize, report: LineReport, peaks: Option<Arc<[(f32, f32)]>>) {
        if take == self.lines[index].chosen {
            self.status.set_line(index, report.clone());
        } else if report.state == LineState::Failed {
            tracing::warn!("line {} take {}: {}", index + 1, take + 1, report.message);
        }
        self.status.update_take(index, take, |slot| {
            slot.report = report;
            if let Some(peaks) = peaks {
                slot.peaks = peaks;
            }
        });
    }
}

/// A queued take's report.
fn queued(plan: &LinePlan, take: usize) -> TakeReport {
    TakeReport {
        seed: takes::take_seed(plan.spec.seed, take),
        report: LineReport { state: LineState::Queued, ..LineReport::default() },
        peaks: Arc::new([]),
    }
}

/// Takes the line's clip back from the audio thread, if it has one. A full queue leaves the
/// old clip playable until the next render replaces it.
fn withdraw_line_clip(to_audio: &mut Producer<ToAudio>, index: usize, slot: &mut LineSlot) {
    if slot.clip.take().is_some() {
        let _ = to_audio.push(ToAudio::Clip { line: index, clip: None });
    }
}

/// Takes a take's clip back from the audio thread, if it has one.
fn withdraw_take(to_audio: &mut Producer<ToAudio>, index: usize, take: usize, slot: TakeSlot) {
    if slot.clip.is_some() {
        let _ = to_audio.push(ToAudio::Take { line: index, take, clip: None });
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use voxcpm_engine::pipeline::SpeechOptions;
    use voxcpm_engine::runtime::{DEFAULT_MAX_BATCH, GenerateOptions};

    use super::*;
    use crate::handoff::AudioEnds;
    use crate::params::VoxParams;
    use crate::project::{Line, Prompt};
    use crate::shared_engine;
    use crate::worker::tests::{Running, demo_model, next_clip, settled, start, wait_until};

    /// The next render message (a line's clip or a take), waiting for it; withdrawals skipped.
    fn next_render(audio: &mut AudioEnds) -> (usize, Option<usize>, Clip) {
        let mut found = None;
        wait_until("a render", || {
            found = match audio.from_worker.pop() {
                Ok(ToAudio::Clip { line, clip: Some(clip) }) => Some((line, None, clip)),
                Ok(ToAudio::Take { line, take, clip: Some(clip) }) => Some((line, Some(take), clip)),
                _ => None,
            };
            found.is_some()
        });
        found.expect("waited for")
    }

    /// Every take of line `line` as it reaches the audio thread, by take, once all `count` have.
    fn takes_of(running: &mut Running, line: usize, count: usize) -> Vec<Clip> {
        let mut takes = vec![None; count];
        while takes.iter().any(Option::is_none) {
            if let (l, Some(take), clip) = next_render(&mut running.audio)
                && l == line
            {
                takes[take] = Some(clip);
            }
        }
        takes.into_iter().flatten().collect()
    }

    /// What the engine renders for line `line`'s take `take` as the plugin's settings describe it.
    fn engine_render(params: &VoxParams, line: usize, take: usize) -> Vec<f32> {
        let plan = current_plans(params)[line].clone().expect("the line is rendered ahead");
        engine_render_with(&plan.spec.text, &plan.spec.for_take(take).options())
    }

    fn engine_render_with(text: &str, options: &GenerateOptions) -> Vec<f32> {
        let engine = shared_engine::acquire(Some(&demo_model().display().to_string())).unwrap();
        engine.server.await_ready(std::time::Duration::from_secs(120)).unwrap();
        engine.server.generate(text, options).unwrap().samples
    }

    #[test]
    fn n_takes_render_n_different_clips_each_the_engines_render_for_its_shown_seed() {
        let cache = tempfile::tempdir().unwrap();
        let mut running = start(vec![Line { takes: 3, ..Line::new("Three takes of this.") }], cache.path());
        let takes = takes_of(&mut running, 0, 3);
        let reports = running.status.takes(0);
        let seeds: Vec<_> = reports.iter().map(|t| t.seed).collect();
        assert_eq!(seeds, [1, 2, 3], "take k shows the seed parameter + k - 1");
        for (take, clip) in takes.iter().enumerate() {
            let report = &reports[take];
            assert_eq!(report.report.state, LineState::Ready, "{report:?}");
            assert_eq!(report.report.seconds, clip.seconds());
            assert_eq!(report.peaks.len(), thumbnail::COLUMNS, "an outline for the editor");
            assert_eq!(clip.samples.to_vec(), engine_render(&running.params, 0, take), "take {}", take + 1);
        }
        assert_ne!(takes[0], takes[1]);
        assert_ne!(takes[1], takes[2]);
        assert_ne!(takes[0], takes[2]);
        wait_until("the line", || settled(&running.status, 0));
        assert_eq!(running.status.line(0).seconds, takes[0].seconds(), "the line reports its chosen take");
    }

    #[test]
    fn chosen_takes_render_first_and_one_take_renders_what_a_line_rendered_before_takes() {
        let cache = tempfile::tempdir().unwrap();
        let lines = vec![
            Line { takes: 3, ..Line::new("First line.") },
            Line { takes: 3, chosen_seed: Some(3), ..Line::new("Second line.") },
            Line::new("Third line."),
        ];
        let mut running = start(lines, cache.path());
        let mut order = Vec::new();
        let mut line_clips = Vec::new();
        while order.len() < 7 {
            match next_render(&mut running.audio) {
                (line, Some(take), _) => order.push((line, take)),
                (line, None, clip) => line_clips.push((line, clip)),
            }
        }
        // The chosen takes render together, then the others, each group in the order its
        // renders finish.
        let sorted = |takes: &[(usize, usize)]| {
            let mut takes = takes.to_vec();
            takes.sort();
            takes
        };
        assert_eq!(sorted(&order[..3]), [(0, 0), (1, 2), (2, 0)], "chosen takes first: {order:?}");
        assert_eq!(sorted(&order[3..]), [(0, 1), (0, 2), (1, 0), (1, 1)], "{order:?}");
        line_clips.sort_by_key(|(line, _)| *line);
        let lines: Vec<_> = line_clips.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [0, 1, 2], "each line's clip comes with its chosen take");
        let one_take = &line_clips[2].1;
        let before_takes = GenerateOptions { seed: Some(1), ..GenerateOptions::default() };
        assert_eq!(one_take.samples.to_vec(), engine_render_with("Third line.", &before_takes));
    }

    #[test]
    fn many_lines_render_as_one_batch_with_the_clips_they_get_one_at_a_time() {
        let cache = tempfile::tempdir().unwrap();
        let texts =
            ["First of many.", "A second line, longer than the first.", "Third.", "The fourth line here.", "Five."];
        let mut running = start(texts.iter().map(|text| Line::new(*text)).collect(), cache.path());
        // A model no other test uses: its server's peak batch is this test's alone.
        let model = crate::worker::tests::fresh_demo_model();
        running.params.project_mut().model = Some(model.path().to_owned());
        running.status.request_scan();
        wait_until("a scan of the new model", || running.status.worker_has_scanned());
        wait_until("every line on the new model", || (0..texts.len()).all(|line| settled(&running.status, line)));
        let mut clips = vec![None; texts.len()];
        while let Ok(message) = running.audio.from_worker.pop() {
            if let ToAudio::Clip { line, clip } = message {
                clips[line] = clip;
            }
        }
        let engine = shared_engine::acquire(Some(&model.path().display().to_string())).unwrap();
        let peak = engine.server.info().peak_batch;
        assert!(peak > 1, "the lines rendered one at a time (peak batch {peak})");
        for (line, clip) in clips.into_iter().enumerate() {
            let clip = clip.unwrap_or_else(|| panic!("line {line} has no clip"));
            let plan = current_plans(&running.params)[line].clone().expect("rendered ahead");
            let spec = plan.spec.for_take(plan.chosen);
            let alone = engine.server.generate(&spec.text, &spec.options()).unwrap().samples;
            assert!(clip.samples.to_vec() == alone, "line {line}: its batched clip differs from its render alone");
        }
    }

    /// No render thread outlives its worker: stopping a worker waits for its takes in flight
    /// (cancelled at their next patch), so the model it was the last user of is freed with it,
    /// and a host may unload the library right after. The test's own long streams fill the
    /// engine's batch, so the worker's renders are still waiting in its queue when it stops.
    #[test]
    fn a_stopped_worker_leaves_no_render_running_and_frees_its_model() {
        let model = crate::worker::tests::fresh_demo_model();
        let dir = model.path().display().to_string();
        let engine = shared_engine::acquire(Some(&dir)).unwrap();
        let long = GenerateOptions {
            speech: SpeechOptions { min_len: 4000, max_len: 4000, ..SpeechOptions::default() },
            ..GenerateOptions::default()
        };
        let streams: Vec<_> =
            (0..DEFAULT_MAX_BATCH).map(|_| engine.server.generate_streaming("Busy.", &long).unwrap()).collect();

        let cache = tempfile::tempdir().unwrap();
        let running = start(vec![Line { takes: 2, ..Line::new("Waiting in the queue.") }], cache.path());
        running.params.project_mut().model = Some(model.path().to_owned());
        running.status.request_scan();
        wait_until("a render queued on the busy model", || {
            running.status.model().summary.contains(&dir) && running.status.state(0) == LineState::Rendering
        });
        let (stopped, done) = channel();
        let stopper = std::thread::spawn(move || {
            drop(running);
            let _ = stopped.send(());
        });
        if done.recv_timeout(Duration::from_millis(300)).is_ok() {
            // It stopped without waiting for its renders, which still wait for the engine.
            assert_eq!(Arc::strong_count(&engine.server), 1, "the stopped worker's renders still hold the model");
        }
        drop(streams);
        stopper.join().unwrap();
        assert_eq!(Arc::strong_count(&engine.server), 1, "the stopped worker's renders still hold the model");
    }

    #[test]
    fn choosing_take_3_makes_it_the_lines_clip_without_rendering_again() {
        let cache = tempfile::tempdir().unwrap();
        let mut running = start(vec![Line { takes: 3, ..Line::new("Choose a take.") }], cache.path());
        let takes = takes_of(&mut running, 0, 3);
        running.params.project_mut().lines[0].chosen_seed = Some(3);
        assert_eq!(next_clip(&mut running.audio, 0).as_ref(), Some(&takes[2]), "take 3 is the line's clip");
        wait_until("the report", || running.status.line(0).seconds == takes[2].seconds());
        assert_eq!(running.status.line(0).state, LineState::Ready);

        // A chosen seed not among the takes (as after the seed parameter moved): take 1 plays,
        // and the choice is kept.
        running.params.project_mut().lines[0].chosen_seed = Some(99);
        assert_eq!(next_clip(&mut running.audio, 0).as_ref(), Some(&takes[0]), "no longer among the takes: take 1");
        assert_eq!(running.params.project().lines[0].chosen_seed, Some(99));
        assert!(running.audio.from_worker.pop().is_err(), "nothing rendered again");
    }

    #[test]
    fn more_takes_render_only_the_new_ones_and_fewer_withdraw_the_rest() {
        let cache = tempfile::tempdir().unwrap();
        let mut running = start(vec![Line { takes: 2, ..Line::new("Add takes.") }], cache.path());
        let before = takes_of(&mut running, 0, 2);
        running.params.project_mut().lines[0].takes = 3;
        assert_eq!(next_render(&mut running.audio).1, Some(2), "only take 3 is rendered");
        wait_until("take 3's report", || running.status.takes(0).get(2).is_some_and(|t| t.report.seconds > 0.0));
        assert_eq!(running.status.takes(0)[1].report.seconds, before[1].seconds(), "take 2 is kept");

        running.params.project_mut().lines[0].takes = 1;
        let mut withdrawn = Vec::new();
        wait_until("the withdrawals", || {
            if let Ok(ToAudio::Take { line: 0, take, clip: None }) = running.audio.from_worker.pop() {
                withdrawn.push(take);
            }
            withdrawn.len() == 2
        });
        assert_eq!(withdrawn, [2, 1]);
        wait_until("one take listed", || running.status.takes(0).len() == 1);
    }

    /// A two-second tone the test writes as a prompt clip.
    fn prompt_clip(dir: &Path) -> PathBuf {
        let path = dir.join("prompt.wav");
        let tone: Vec<f32> = (0..32_000).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
        voxcpm_engine::wav::write_float_file(&path, &tone, 16_000).unwrap();
        path
    }

    #[test]
    fn a_line_with_a_continuation_prompt_renders_what_the_engine_renders_with_it() {
        let cache = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let prompt = Prompt { wav: Some(prompt_clip(scratch.path())), text: Some("A steady tone.".into()) };
        let lines = vec![Line { prompt: prompt.clone(), ..Line::new("Carry on.") }, Line::new("Carry on.")];
        let mut running = start(lines, cache.path());
        // The two lines render together: their clips come in the order they finish.
        let mut first_clips = [None, None];
        while first_clips.iter().any(Option::is_none) {
            if let (line, None, clip) = next_render(&mut running.audio) {
                first_clips[line].get_or_insert(clip);
            }
        }
        let [with_prompt, without] = first_clips.map(|clip| clip.expect("waited for"));
        let options = GenerateOptions {
            prompt_wav_path: prompt.wav.clone(),
            prompt_text: prompt.text.clone(),
            seed: Some(1),
            ..GenerateOptions::default()
        };
        assert_eq!(with_prompt.samples.to_vec(), engine_render_with("Carry on.", &options));
        assert_ne!(without, with_prompt, "the prompt shapes the render");

        // The project's prompt serves every line without one of its own.
        running.params.project_mut().prompt = prompt;
        assert!(next_clip(&mut running.audio, 1).is_none(), "line 2's render is withdrawn");
        assert_eq!(next_clip(&mut running.audio, 1).expect("line 2 again"), with_prompt);
    }

    #[test]
    fn half_a_continuation_prompt_fails_its_line_naming_the_missing_half() {
        let cache = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let clip = prompt_clip(scratch.path());
        let no_text = Prompt { wav: Some(clip.clone()), text: None };
        let no_clip = Prompt { wav: None, text: Some("Said before.".into()) };
        let lines = vec![
            Line { prompt: no_text, takes: 2, ..Line::new("Hello.") },
            Line { prompt: no_clip, ..Line::new("Hello.") },
            Line::new("Fine."),
        ];
        let running = start(lines, cache.path());
        wait_until("the lines", || (0..3).all(|line| settled(&running.status, line)));
        let report = running.status.line(0);
        assert_eq!(report.state, LineState::Failed);
        assert!(report.message.contains("no transcript"), "{}", report.message);
        assert!(report.message.contains(&clip.display().to_string()), "{}", report.message);
        wait_until("take 2", || running.status.takes(0)[1].report.state == LineState::Failed);
        let report = running.status.line(1);
        assert_eq!(report.state, LineState::Failed);
        assert!(report.message.contains("no prompt clip"), "{}", report.message);
        assert!(report.message.contains("Said before."), "{}", report.message);
        assert_eq!(running.status.state(2), LineState::Ready, "the other line is unaffected");
    }
}
