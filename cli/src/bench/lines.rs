//! Several streamed lines through one server at once, each timed as its client sees it, and
//! optionally one more line that arrives while they run.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use voxcpm_engine::runtime::{GenerateOptions, Server, SpeechStream};

/// One line's chunk arrivals, in seconds from its submission.
pub struct LineTiming {
    pub arrivals: Vec<f64>,
    /// When its stream ended.
    pub finished: f64,
    pub audio_seconds: f64,
}

impl LineTiming {
    pub fn first_chunk(&self) -> f64 {
        self.arrivals[0]
    }

    /// Mean time between its chunks after the first: one step of the batch it ran in.
    pub fn chunk_period(&self) -> Option<f64> {
        let n = self.arrivals.len();
        (n > 1).then(|| (self.arrivals[n - 1] - self.arrivals[0]) / (n - 1) as f64)
    }
}

/// A line submitted once the first line of the batch has received `after_chunks` chunks.
pub struct Late {
    pub options: GenerateOptions,
    pub after_chunks: usize,
}

/// What a run of lines gave.
pub struct Run {
    pub lines: Vec<LineTiming>,
    /// From the submissions to the end of the last of `lines`.
    pub wall_seconds: f64,
    /// The largest running batch seen while polling [`Server::info`].
    pub largest_batch: usize,
    pub late: Option<LineTiming>,
}

/// How often the watcher looks at the server and the first line's progress.
const POLL: Duration = Duration::from_millis(5);

/// Submits one line of `text` per entry of `batch` at once, then `late` when it is due, and
/// waits for all of them.
pub fn run(server: &Server, text: &str, batch: &[GenerateOptions], late: Option<Late>) -> anyhow::Result<Run> {
    let start = Instant::now();
    let streams =
        batch.iter().map(|options| server.generate_streaming(text, options)).collect::<Result<Vec<_>, _>>()?;
    let chunks: Vec<AtomicUsize> = batch.iter().map(|_| AtomicUsize::new(0)).collect();
    let ended: Vec<AtomicBool> = batch.iter().map(|_| AtomicBool::new(false)).collect();
    std::thread::scope(|scope| {
        let drains: Vec<_> = streams
            .into_iter()
            .zip(chunks.iter().zip(&ended))
            .map(|(stream, (chunks, ended))| {
                scope.spawn(move || {
                    let timing = drain(stream, start, chunks);
                    ended.store(true, Ordering::Relaxed);
                    timing
                })
            })
            .collect();
        let mut largest_batch = 0;
        let mut late = late;
        let mut late_drain = None;
        while !ended.iter().all(|e| e.load(Ordering::Relaxed)) {
            largest_batch = largest_batch.max(server.info().batch);
            if let Some(due) = late.take_if(|l| chunks[0].load(Ordering::Relaxed) >= l.after_chunks) {
                let submitted = Instant::now();
                let stream = server.generate_streaming(text, &due.options)?;
                late_drain = Some(scope.spawn(move || drain(stream, submitted, &AtomicUsize::new(0))));
            }
            std::thread::sleep(POLL);
        }
        if late.is_some() {
            anyhow::bail!("the batch ended before the late line was due");
        }
        let lines = drains.into_iter().map(|d| d.join().expect("a drain panicked")).collect::<Result<Vec<_>, _>>()?;
        let late = late_drain.map(|d| d.join().expect("a drain panicked")).transpose()?;
        let wall_seconds = lines.iter().map(|l| l.finished).fold(0.0, f64::max);
        Ok(Run { lines, wall_seconds, largest_batch, late })
    })
}

/// Reads `stream` to its end, timing each chunk from `start` and counting them in `chunks`.
fn drain(mut stream: SpeechStream, start: Instant, chunks: &AtomicUsize) -> anyhow::Result<LineTiming> {
    let (mut arrivals, mut samples) = (Vec::new(), 0);
    while let Some(chunk) = stream.next_chunk()? {
        arrivals.push(start.elapsed().as_secs_f64());
        samples += chunk.len();
        chunks.fetch_add(1, Ordering::Relaxed);
    }
    let finished = start.elapsed().as_secs_f64();
    anyhow::ensure!(!arrivals.is_empty(), "a line produced no chunk");
    let rate = stream.sample_rate().context("a stream never started")?;
    Ok(LineTiming { arrivals, finished, audio_seconds: samples as f64 / f64::from(rate) })
}
