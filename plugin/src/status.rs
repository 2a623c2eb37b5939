//! What the editor shows and the audio thread needs to know about each line and the model.
//!
//! The worker writes it. The audio thread only reads the per-line atomics (to know, in offline
//! rendering, whether a render it waits for can still come) and bumps atomic counters; the
//! editor reads the rest under a mutex the audio thread never touches.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use voxcpm_engine::config::Architecture;

use crate::project::MAX_LINES;
use crate::takes::TakeReport;

/// Where a line's render stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LineState {
    /// No such line (or live mode: nothing is rendered ahead).
    Absent = 0,
    Queued = 1,
    Rendering = 2,
    Ready = 3,
    Failed = 4,
}

impl LineState {
    fn from_u8(value: u8) -> LineState {
        match value {
            1 => LineState::Queued,
            2 => LineState::Rendering,
            3 => LineState::Ready,
            4 => LineState::Failed,
            _ => LineState::Absent,
        }
    }

    /// Whether a render may still arrive.
    pub fn is_pending(self) -> bool {
        matches!(self, LineState::Queued | LineState::Rendering)
    }
}

/// The editor's view of one line.
#[derive(Debug, Clone, PartialEq)]
pub struct LineReport {
    pub state: LineState,
    /// 0..1 while rendering.
    pub progress: f32,
    /// Seconds of speech once ready.
    pub seconds: f32,
    /// The error, or a note such as "from the render cache".
    pub message: String,
}

impl Default for LineReport {
    fn default() -> Self {
        LineReport { state: LineState::Absent, progress: 0.0, seconds: 0.0, message: String::new() }
    }
}

/// Why a live line has not started yet: its stream is held back until the generation rate
/// says it can play to its end without running dry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LiveWait {
    /// No chunk has come yet, so no start is predicted.
    Buffering,
    /// The predicted wait, in seconds.
    StartingIn(f32),
}

impl std::fmt::Display for LiveWait {
    /// "buffering", "starting in 1.2 s".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LiveWait::Buffering => f.write_str("buffering"),
            LiveWait::StartingIn(seconds) => write!(f, "starting in {seconds:.1} s"),
        }
    }
}

/// Which model family is loaded and the rate it speaks at: what decides how a line sounds
/// (and what it can do: v1 has no voice cloning), shown so a user knows which one plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelFamily {
    pub architecture: Architecture,
    pub sample_rate: u32,
}

impl std::fmt::Display for ModelFamily {
    /// "VoxCPM2 · 48 kHz", "VoxCPM (v1) · 16 kHz", "VoxCPM (v1) · 44.1 kHz".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.architecture {
            Architecture::V1 => "VoxCPM (v1)",
            Architecture::V2 => "VoxCPM2",
        };
        // f64's shortest form: 16, 44.1, 22.05.
        write!(f, "{name} · {} kHz", f64::from(self.sample_rate) / 1000.0)
    }
}

/// Everything the editor shows besides the lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelReport {
    /// "loading …", "ready: …", or the error.
    pub summary: String,
    /// The loaded model's family; `None` while none is loaded.
    pub family: Option<ModelFamily>,
    /// Whether the model is the random-weight demo checkpoint.
    pub demo: bool,
    /// Problems to show until the user dismisses them (state load notes, export results).
    pub notes: Vec<String>,
}

impl ModelReport {
    /// The model line the editor shows and the log records: the family first, once loaded.
    pub fn headline(&self) -> String {
        match self.family {
            Some(family) => format!("{family} — {}", self.summary),
            None => self.summary.clone(),
        }
    }
}

pub struct Status {
    states: [AtomicU8; MAX_LINES],
    line_count: AtomicUsize,
    /// Scans asked for (bumped at each activation, when the host may have loaded new state)
    /// and the last one the worker completed: states are current only when they are equal.
    scans_wanted: AtomicU64,
    scans_done: AtomicU64,
    /// Triggers that found no render ready while playing in real time.
    pub missed_triggers: AtomicU64,
    /// Live triggers that could not reach the worker (its queue was full).
    pub dropped_live_triggers: AtomicU64,
    /// Voices stopped because their audio was not finite (NaN or infinite).
    pub silenced_voices: AtomicU64,
    lines: Mutex<Vec<LineReport>>,
    /// Each line's live wait, while its stream is held back.
    live_waits: Mutex<Vec<Option<LiveWait>>>,
    /// Whether the host renders offline (set at activation): a live line then plays its
    /// chunks as they come, since the audio thread waits for them.
    pub offline: AtomicBool,
    /// Each line's takes (the line's own report is its chosen take's).
    takes: Mutex<Vec<Vec<TakeReport>>>,
    model: Mutex<ModelReport>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            states: std::array::from_fn(|_| AtomicU8::new(LineState::Absent as u8)),
            line_count: AtomicUsize::new(0),
            scans_wanted: AtomicU64::new(1),
            scans_done: AtomicU64::new(0),
            missed_triggers: AtomicU64::new(0),
            dropped_live_triggers: AtomicU64::new(0),
            silenced_voices: AtomicU64::new(0),
            lines: Mutex::new(vec![LineReport::default(); MAX_LINES]),
            live_waits: Mutex::new(vec![None; MAX_LINES]),
            offline: AtomicBool::new(false),
            takes: Mutex::new(vec![Vec::new(); MAX_LINES]),
            model: Mutex::new(ModelReport::default()),
        }
    }
}

impl Status {
    /// Real-time safe.
    pub fn state(&self, line: usize) -> LineState {
        self.states.get(line).map_or(LineState::Absent, |s| LineState::from_u8(s.load(Ordering::Acquire)))
    }

    /// Real-time safe.
    pub fn line_count(&self) -> usize {
        self.line_count.load(Ordering::Acquire)
    }

    pub fn set_line_count(&self, count: usize) {
        self.line_count.store(count, Ordering::Release);
    }

    /// Real-time safe.
    pub fn worker_has_scanned(&self) -> bool {
        self.scans_done.load(Ordering::Acquire) >= self.scans_wanted.load(Ordering::Acquire)
    }

    /// The lines may have changed behind the worker's back (a state load): until its next
    /// scan, the line states are stale.
    pub fn request_scan(&self) {
        self.scans_wanted.fetch_add(1, Ordering::AcqRel);
    }

    /// Call before reading the lines; pass the result to [`finish_scan`](Self::finish_scan).
    pub fn begin_scan(&self) -> u64 {
        self.scans_wanted.load(Ordering::Acquire)
    }

    pub fn finish_scan(&self, begun: u64) {
        self.scans_done.fetch_max(begun, Ordering::AcqRel);
    }

    /// Failures also go to the log, so they are seen with the editor closed.
    pub fn set_line(&self, line: usize, report: LineReport) {
        if report.state == LineState::Failed {
            tracing::warn!("line {}: {}", line + 1, report.message);
        }
        if let Some(state) = self.states.get(line) {
            state.store(report.state as u8, Ordering::Release);
            if let Some(slot) = lock(&self.lines).get_mut(line) {
                *slot = report;
            }
        }
    }

    pub fn set_progress(&self, line: usize, progress: f32) {
        if let Some(slot) = lock(&self.lines).get_mut(line) {
            slot.progress = progress;
        }
    }

    /// The live wait of `line` (`None`: not waiting).
    pub fn set_live_wait(&self, line: usize, wait: Option<LiveWait>) {
        if let Some(slot) = lock(&self.live_waits).get_mut(line) {
            *slot = wait;
        }
    }

    pub fn live_wait(&self, line: usize) -> Option<LiveWait> {
        lock(&self.live_waits).get(line).copied().flatten()
    }

    pub fn line(&self, line: usize) -> LineReport {
        lock(&self.lines).get(line).cloned().unwrap_or_default()
    }

    /// Replaces a line's take reports (when its takes are queued afresh or their count changes).
    pub fn set_takes(&self, line: usize, takes: Vec<TakeReport>) {
        if let Some(slot) = lock(&self.takes).get_mut(line) {
            *slot = takes;
        }
    }

    /// Updates one take's report in place; `update` is not called for a take that is not listed.
    pub fn update_take(&self, line: usize, take: usize, update: impl FnOnce(&mut TakeReport)) {
        if let Some(report) = lock(&self.takes).get_mut(line).and_then(|takes| takes.get_mut(take)) {
            update(report);
        }
    }

    pub fn takes(&self, line: usize) -> Vec<TakeReport> {
        lock(&self.takes).get(line).cloned().unwrap_or_default()
    }

    pub fn model(&self) -> ModelReport {
        lock(&self.model).clone()
    }

    /// `family` is the loaded model's (`None` while loading or after a failure).
    pub fn set_model_summary(&self, summary: String, demo: bool, family: Option<ModelFamily>) {
        let mut model = lock(&self.model);
        model.summary = summary;
        model.demo = demo;
        model.family = family;
        tracing::info!("model: {}", model.headline());
    }

    pub fn add_note(&self, note: String) {
        tracing::warn!("{note}");
        lock(&self.model).notes.push(note);
    }

    pub fn clear_notes(&self) {
        lock(&self.model).notes.clear();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_family_names_the_architecture_and_the_rate_in_khz() {
        let family = |architecture, sample_rate| ModelFamily { architecture, sample_rate }.to_string();
        assert_eq!(family(Architecture::V2, 48_000), "VoxCPM2 · 48 kHz");
        assert_eq!(family(Architecture::V1, 16_000), "VoxCPM (v1) · 16 kHz");
        assert_eq!(family(Architecture::V1, 44_100), "VoxCPM (v1) · 44.1 kHz");
        assert_eq!(family(Architecture::V1, 22_050), "VoxCPM (v1) · 22.05 kHz");
    }

    #[test]
    fn a_held_live_line_says_it_buffers_or_when_it_starts() {
        let status = Status::default();
        assert_eq!(status.live_wait(0), None);
        status.set_live_wait(0, Some(LiveWait::StartingIn(1.23)));
        assert_eq!(status.live_wait(0).map(|w| w.to_string()).as_deref(), Some("starting in 1.2 s"));
        assert_eq!(LiveWait::Buffering.to_string(), "buffering");
        status.set_live_wait(0, None);
        assert_eq!(status.live_wait(0), None);
        status.set_live_wait(MAX_LINES, Some(LiveWait::Buffering));
    }

    #[test]
    fn the_headline_leads_with_the_loaded_family_and_drops_it_while_the_next_model_loads() {
        let status = Status::default();
        let family = ModelFamily { architecture: Architecture::V1, sample_rate: 16_000 };
        status.set_model_summary("ready: /models/v1".into(), false, Some(family));
        assert_eq!(status.model().headline(), "VoxCPM (v1) · 16 kHz — ready: /models/v1");
        status.set_model_summary("loading /models/v2".into(), false, None);
        assert_eq!(status.model().headline(), "loading /models/v2", "the old model's family stayed up");
    }
}
