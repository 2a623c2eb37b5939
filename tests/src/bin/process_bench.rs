//! Worst-case `process()` time per block, next to the block's real-time budget, for the bundled
//! .clap in a CLAP host (clack-host) while eight lines overlap, each played by a key with its
//! velocity and released in gate mode (so the envelopes and release fades run too).
//!
//! ```sh
//! cargo run --release -p voxcpm-host-tests --bin plugin-process-bench -- bench/plugin-process.json
//! ```
//!
//! Lines are rendered first (an offline pass), then each rate and block size plays 10 s in
//! real-time mode with a note every 50 ms in overlap mode, each released 450 ms later, as fast as
//! the host can call.
//! Timings include the CLAP wrapper's own work per call (event queue, buffer setup).

use std::time::Duration;

use serde_json::{Value, json};
use voxcpm_host_tests::clap::{KeyEvent, Run, edit_state, entry, first_sound, instance, play, play_keys, set_offline};

const RATES: [u32; 4] = [44_100, 48_000, 88_200, 96_000];
const BLOCK_SIZES: [usize; 7] = [1, 16, 64, 128, 256, 512, 1024];
const SECONDS: usize = 10;
/// Demo-model lines last about 0.6 s: a trigger every 50 ms keeps all 8 voices busy (stealing).
const TRIGGER_EVERY_S: f64 = 0.05;
/// Each key is held this long: nine notes overlap, so voices are stolen and fading at once.
const HOLD_S: f64 = 0.45;

fn main() {
    let out = std::env::args().nth(1);
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build; run with --release for numbers worth recording");
    }
    let entry = entry();
    let mut plugin = instance(&entry);

    // Render lines 1 and 2 ahead: offline, the plugin waits for them.
    set_offline(&mut plugin, true);
    let warm = Run { rate: 48_000, frames: 48_000, blocks: &[512], notes: &[(0, 60), (10, 61)], pace: Duration::ZERO };
    assert!(first_sound(&play(&mut plugin, &warm).left).is_some(), "the lines did not render");
    edit_state(&mut plugin, |state| {
        state["params"]["retrigger"] = json!({ "string": "overlap" });
        state["params"]["note_off"] = json!({ "string": "gate" });
        state["params"]["velocity"] = json!({ "string": "gain" });
    });
    set_offline(&mut plugin, false);

    let mut rows = Vec::new();
    println!(
        "{:>7} {:>6} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "rate", "block", "budget_us", "max_us", "p99_us", "mean_us", "max/bud"
    );
    for rate in RATES {
        for block in BLOCK_SIZES {
            let frames = rate as usize * SECONDS;
            let run = Run { rate, frames, blocks: &[block], notes: &[], pace: Duration::ZERO };
            let played = play_keys(&mut plugin, &run, &keys(rate, frames));
            assert!(first_sound(&played.left).is_some(), "no speech at {rate} Hz, block {block}");
            let row = summarise(rate, block, &played.blocks);
            println!(
                "{:>7} {:>6} {:>10.1} {:>10.1} {:>10.1} {:>10.2} {:>8.3}",
                rate,
                block,
                row["budget_us"].as_f64().unwrap(),
                row["max_us"].as_f64().unwrap(),
                row["p99_us"].as_f64().unwrap(),
                row["mean_us"].as_f64().unwrap(),
                row["max_over_budget"].as_f64().unwrap()
            );
            rows.push(row);
        }
    }
    let report = json!({
        "what": "process() time per block of the bundled .clap in clack-host, 8 voices busy, keys with velocity (to gain) released in gate mode",
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "machine": machine(),
        "seconds_per_case": SECONDS,
        "trigger_every_s": TRIGGER_EVERY_S,
        "hold_s": HOLD_S,
        "rows": rows,
    });
    if let Some(path) = out {
        std::fs::write(&path, serde_json::to_string_pretty(&report).expect("JSON") + "\n")
            .unwrap_or_else(|e| panic!("writing {path}: {e}"));
        eprintln!("wrote {path}");
    }
}

/// A note every [`TRIGGER_EVERY_S`] on two alternating keys, velocities from 0.3 to 1, each
/// released [`HOLD_S`] later (gate mode fades it out there).
fn keys(rate: u32, frames: usize) -> Vec<KeyEvent> {
    let every = (TRIGGER_EVERY_S * f64::from(rate)) as usize;
    let hold = (HOLD_S * f64::from(rate)) as usize;
    (0..frames / every)
        .flat_map(|i| {
            let (at, key) = (i * every + 3, 60 + (i % 2) as u8);
            let velocity = 0.3 + 0.7 * (i % 8) as f64 / 7.0;
            [KeyEvent::On { at, key, velocity }, KeyEvent::Off { at: at + hold, key, velocity: 0.5 }]
        })
        .filter(|event| event.at() < frames)
        .collect()
}

fn summarise(rate: u32, block: usize, blocks: &[(usize, Duration)]) -> Value {
    let mut micros: Vec<f64> = blocks.iter().filter(|(n, _)| *n == block).map(|(_, t)| t.as_secs_f64() * 1e6).collect();
    micros.sort_by(f64::total_cmp);
    let budget = block as f64 / f64::from(rate) * 1e6;
    let max = micros.last().copied().unwrap_or(0.0);
    let p99 = micros[(micros.len() * 99 / 100).min(micros.len() - 1)];
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    json!({
        "rate": rate, "block": block, "calls": micros.len(),
        "budget_us": budget, "max_us": max, "p99_us": p99, "mean_us": mean,
        "max_over_budget": max / budget,
    })
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    json!({ "cpu": cpu, "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) })
}
