//! Live lines that never stutter: in real time, a line generated slower than it plays is held
//! back until it can play to its end, then plays without a gap; one generated faster starts at
//! its first chunk. The engine is slowed to a chosen RTF by the debug plugin's test hook, and
//! the plugin's trace of each stream says when each chunk came and when playback was released.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use voxcpm_engine::testkit::parity::max_abs_diff;
use voxcpm_host_tests::clap::{
    AudioThread, Instance, Run, edit_project, edit_state, entry, first_sound, instance, live_hooks, play_with,
};
use voxcpm_host_tests::{engine_render, fixture_model, wait_for_log};

use super::{BLOCKS, RATE};

/// Generated at RTF 2 (the fixture checkpoint speaks 2.88 s for it with seed 1).
const SLOW_LINE: &str = "Hello from the slow engine.";
/// Generated at RTF 0.5 (3.52 s).
const FAST_LINE: &str = "Hello from VoxCPM, quickly.";
/// How much later than the least start that would have worked a calibrated line may start.
const START_BOUND: f64 = 1.15;
/// Where the note falls in each run.
const NOTE_AT: usize = 4_321;

/// An audio thread that calls `process()` when the wall clock reaches each block's first
/// frame, as a host playing in real time does; notes how late it ever was.
struct WallClock {
    rate: u32,
    start: Option<Instant>,
    latest: Duration,
}

impl AudioThread for WallClock {
    fn started(&mut self) {
        self.start = Some(Instant::now());
    }

    fn process(&mut self, frame: usize, process: &mut dyn FnMut()) {
        let due = self.start.expect("started") + Duration::from_secs_f64(frame as f64 / f64::from(self.rate));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        self.latest = self.latest.max(Instant::now() - due);
        process();
    }
}

/// One live stream as the plugin traced it (seconds since the trigger).
struct Traced {
    /// (arrival, samples) per chunk.
    chunks: Vec<(f64, usize)>,
    sample_rate: f64,
    released: f64,
}

impl Traced {
    /// The least start that would have played every chunk in time: the max over chunks of
    /// arrival minus the audio offset where the chunk begins.
    fn least_start(&self) -> f64 {
        let mut offset = 0;
        let mut least = 0.0f64;
        for &(at, samples) in &self.chunks {
            least = least.max(at - offset as f64 / self.sample_rate);
            offset += samples;
        }
        least
    }
}

/// The traces of every live stream of `text` so far, oldest first.
fn traces(text: &str) -> Vec<Traced> {
    let log = std::fs::read_to_string(&live_hooks().trace).unwrap_or_default();
    log.lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("a trace line is JSON"))
        .filter(|record| record["text"] == text)
        .map(|record| Traced {
            chunks: serde_json::from_value(record["chunks"].clone()).expect("chunks"),
            sample_rate: record["sample_rate"].as_f64().expect("the stream's rate"),
            released: record["released"].as_f64().expect("playback was released"),
        })
        .collect()
}

/// Slows the streams of the two lines (the same file for every test, so it is written whole).
fn throttle_lines() {
    let rtfs = json!({ SLOW_LINE: 2.0, FAST_LINE: 0.5 }).to_string();
    let partial = live_hooks().rtf.with_extension("partial");
    std::fs::write(&partial, rtfs).unwrap();
    std::fs::rename(&partial, &live_hooks().rtf).unwrap();
}

/// The plugin in live mode on the fixture checkpoint, with `lines`, its model loaded.
fn live_plugin(model: &Path, lines: &[&str]) -> Instance {
    let mut plugin = instance(&entry());
    edit_state(&mut plugin, |state| state["params"]["live"] = json!({ "bool": true }));
    edit_project(&mut plugin, |project| {
        project["model"] = Value::from(model.display().to_string());
        for (index, text) in lines.iter().enumerate() {
            project["lines"][index]["text"] = Value::from(*text);
        }
    });
    // The worker starts at the first activation; the line is then planned on the loaded model.
    let run = Run { rate: RATE, frames: 512, blocks: &BLOCKS, notes: &[], pace: Duration::ZERO };
    play_with(&mut plugin, &run, &mut ());
    let ready = format!("ready: {}", model.display());
    assert!(wait_for_log(&ready, Duration::from_secs(60)), "the fixture model never loaded");
    plugin
}

/// Plays one note of `key` in real time, long enough for a line of `expected` samples
/// generated at `rtf` to end; checks that it played as the engine renders it, without a gap,
/// and returns its trace and when it started as the host heard it (seconds after the note).
fn play_live_line(plugin: &mut Instance, key: u8, text: &str, expected: &[f32], rtf: f64) -> (Traced, f64) {
    let streams_before = traces(text).len();
    let seconds = expected.len() as f64 / f64::from(RATE);
    let frames = NOTE_AT + ((rtf + 1.0) * seconds * f64::from(RATE)) as usize + RATE as usize * 2;
    let run = Run { rate: RATE, frames, blocks: &BLOCKS, notes: &[(NOTE_AT, key)], pace: Duration::ZERO };
    let mut clock = WallClock { rate: RATE, start: None, latest: Duration::ZERO };
    let left = play_with(plugin, &run, &mut clock).left;
    let traced = traces(text).pop().expect("the stream's trace");
    assert_eq!(traces(text).len(), streams_before + 1, "one stream per note");
    let late = clock.latest.as_secs_f64();
    let what = format!("{text:?} at RTF {rtf} (the host was up to {late:.3} s late)");
    assert!(late < 0.25, "{what}: the host fell behind real time, which would hide a gap");

    assert!(left.iter().all(|s| s.is_finite()), "{what}: a non-finite sample");
    let lead = first_sound(expected).expect("the render has sound");
    let heard = first_sound(&left).expect("the line played") - lead;
    assert!(heard >= NOTE_AT, "{what}: sound before the note");
    let played = &left[heard..];
    assert!(played.len() >= expected.len(), "{what}: the run ended before the line did");
    let error = max_abs_diff(&played[..expected.len()], expected);
    assert!(error < 1e-4, "{what}: the line differs from the engine's render by {error}: it had a gap");
    assert!(played[expected.len()..].iter().all(|s| *s == 0.0), "{what}: sound after the line's end");
    (traced, (heard - NOTE_AT) as f64 / f64::from(RATE))
}

/// Checks that a line started no earlier than it could play through, and returns how much
/// later than the least start that would have worked it started (a ratio).
fn check_start(traced: &Traced, heard: f64, what: &str) -> f64 {
    let least = traced.least_start();
    let released = traced.released;
    assert!(released >= least, "{what}: released at {released:.3} s, before {least:.3} s: it would run dry");
    // As heard: after the worker took the trigger and the next block took the release.
    assert!(
        (heard - released).abs() < 0.1,
        "{what}: heard {heard:.3} s after the note, but released {released:.3} s after the trigger"
    );
    released / least
}

#[test]
fn a_live_line_slower_than_real_time_waits_until_it_can_play_to_its_end_and_never_stutters() {
    throttle_lines();
    let model = fixture_model("tiny");
    let slow = engine_render(&model, SLOW_LINE, RATE);
    let fast = engine_render(&model, FAST_LINE, RATE);
    for render in [&slow, &fast] {
        assert!(render.len() > 2 * RATE as usize, "a line of a few seconds: {}", render.len());
    }
    let mut plugin = live_plugin(&model, &[SLOW_LINE, FAST_LINE]);

    // The first line on a model this instance has not heard: its length is a cautious guess.
    let (traced, heard) = play_live_line(&mut plugin, 60, SLOW_LINE, &slow, 2.0);
    let first = check_start(&traced, heard, "the first slow line");
    assert!(traced.chunks.len() > 5, "{} chunks", traced.chunks.len());

    // Calibrated by the first: it starts when the buffer covers the rest, and no later.
    let (traced, heard) = play_live_line(&mut plugin, 60, SLOW_LINE, &slow, 2.0);
    let calibrated = check_start(&traced, heard, "the calibrated slow line");
    assert!(calibrated <= START_BOUND, "started {calibrated:.3}x the least start (first line: {first:.3}x)");
    assert!(traced.released > 1.0, "at RTF 2 a {:.1} s line cannot start at once", slow.len() as f64 / 44_100.0);

    // Faster than real time: it starts at its first chunk.
    let (traced, heard) = play_live_line(&mut plugin, 61, FAST_LINE, &fast, 0.5);
    let ratio = check_start(&traced, heard, "the fast line");
    assert!(ratio <= START_BOUND, "started {ratio:.3}x the least start");
    assert!(traced.released <= traced.chunks[0].0 + 0.01, "{:.3} s, not at the first chunk", traced.released);
}
