//! Test hooks for live play, compiled into debug builds only (release builds have none), for
//! the host tests to prove that live lines never stutter:
//!
//! - `VOXCPM_PLUGIN_TEST_RTF` names a JSON file mapping line texts to a real-time factor: the
//!   engine's stream of such a line is slowed to it (chunk k comes no earlier than the trigger
//!   plus RTF times the audio seconds up to the end of chunk k), as a slow CPU would.
//! - `VOXCPM_PLUGIN_TEST_LIVE_TRACE` names a file each live stream appends one JSON line to
//!   when it ends: its text, its chunks' arrival times and sizes, and when playback was
//!   released, in seconds since the trigger.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::Chunks;

const RTF_VARIABLE: &str = "VOXCPM_PLUGIN_TEST_RTF";
const TRACE_VARIABLE: &str = "VOXCPM_PLUGIN_TEST_LIVE_TRACE";

/// The RTF the test file asks for `text`, if any.
pub(super) fn throttle_rtf(text: &str) -> Result<Option<f64>, String> {
    let Some(path) = std::env::var_os(RTF_VARIABLE) else { return Ok(None) };
    let path = PathBuf::from(path);
    let bad = |why: String| format!("{RTF_VARIABLE} ({}): {why}", path.display());
    let json = match std::fs::read_to_string(&path) {
        Ok(json) => json,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    let rtfs: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&json).map_err(|e| bad(format!("not a JSON object of line texts to RTFs: {e}")))?;
    let Some(value) = rtfs.get(text) else { return Ok(None) };
    match value.as_f64() {
        Some(rtf) if rtf.is_finite() && rtf > 0.0 => Ok(Some(rtf)),
        _ => Err(bad(format!("the RTF for {text:?} is not a positive number: {value}"))),
    }
}

/// A stream slowed to an RTF.
pub(super) struct Throttled<S> {
    inner: S,
    rtf: Option<f64>,
    trigger: Instant,
    /// Audio seconds handed out so far.
    audio: f64,
    /// A chunk taken from the engine that is not due yet.
    pending: Option<Vec<f32>>,
}

impl<S: Chunks> Throttled<S> {
    pub(super) fn new(inner: S, rtf: Option<f64>, trigger: Instant) -> Throttled<S> {
        Throttled { inner, rtf, trigger, audio: 0.0, pending: None }
    }
}

impl<S: Chunks> Chunks for Throttled<S> {
    fn next_chunk_timeout(&mut self, timeout: Duration) -> voxcpm_engine::Result<Option<Vec<f32>>> {
        let Some(rtf) = self.rtf else { return self.inner.next_chunk_timeout(timeout) };
        let chunk = match self.pending.take() {
            Some(chunk) => chunk,
            None => match self.inner.next_chunk_timeout(timeout)? {
                Some(chunk) => chunk,
                None => return Ok(None),
            },
        };
        let rate = self.inner.sample_rate().unwrap_or(1) as f64;
        let end = self.audio + chunk.len() as f64 / rate;
        let due = self.trigger + Duration::from_secs_f64(rtf * end);
        let wait = due.saturating_duration_since(Instant::now());
        if wait > timeout {
            std::thread::sleep(timeout);
            self.pending = Some(chunk);
            return Err(voxcpm_engine::Error::Timeout(timeout));
        }
        std::thread::sleep(wait);
        self.audio = end;
        Ok(Some(chunk))
    }

    fn sample_rate(&self) -> Option<u32> {
        self.inner.sample_rate()
    }
}

/// One live stream's trace, written when it ends if the test asked for traces.
pub(super) struct Trace {
    file: Option<PathBuf>,
    text: String,
    /// (seconds since the trigger, samples) per chunk.
    chunks: Vec<(f64, usize)>,
    sample_rate: Option<u32>,
    released: Option<f64>,
}

impl Trace {
    pub(super) fn new(text: &str) -> Trace {
        let file = std::env::var_os(TRACE_VARIABLE).map(PathBuf::from);
        Trace { file, text: text.to_owned(), chunks: Vec::new(), sample_rate: None, released: None }
    }

    pub(super) fn chunk(&mut self, at: f64, samples: usize, sample_rate: u32) {
        self.chunks.push((at, samples));
        self.sample_rate = Some(sample_rate);
    }

    pub(super) fn released(&mut self, at: f64) {
        self.released.get_or_insert(at);
    }

    /// Appends the trace as one line (one write, so traces of parallel streams do not mix).
    pub(super) fn write(&self, ended: bool) {
        let Some(file) = &self.file else { return };
        let record = serde_json::json!({
            "text": self.text,
            "chunks": self.chunks,
            "sample_rate": self.sample_rate,
            "released": self.released,
            "ended": ended,
        });
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| f.write_all(format!("{record}\n").as_bytes()));
        if let Err(e) = appended {
            tracing::warn!("{TRACE_VARIABLE} ({}): {e}", file.display());
        }
    }
}
