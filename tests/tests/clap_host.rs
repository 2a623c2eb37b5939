//! The bundled .clap in a real CLAP host (clack-host): notes in, speech out at 44.1 kHz in odd
//! block sizes, sample-accurate starts, live streaming, mono output, offline waiting, real-time never
//! waiting, state.
//!
//! The plugin is the debug build, whose `assert_process_allocs` aborts this process if
//! `process()` ever allocates: every block processed here is also an allocation check.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use voxcpm_engine::testkit::parity::max_abs_diff;
use voxcpm_host_tests::clap::{
    Run, edit_state, entry, first_sound, instance, load, play, save, set_offline, state_bytes,
};
use voxcpm_host_tests::engine_render;

const RATE: u32 = 44_100;
const FIRST_LINE: &str = "Hello from VoxCPM.";
const SECOND_LINE: &str = "This line plays on the next key.";
/// Block sizes cycled through: 1, primes and odd sizes up to the maximum.
const BLOCKS: [usize; 14] = [1, 3, 17, 64, 7, 33, 2, 5, 11, 127, 1021, 9, 13, 4];

/// Plays line 1 from a note inside a block, offline, with `setup` applied to the state first;
/// checks the speech is the engine's render from the note's sample on and returns both channels.
fn play_line_one(setup: impl FnOnce(&mut Value)) -> (Vec<f32>, Vec<f32>) {
    let expected = engine_render(FIRST_LINE, RATE);
    assert!(expected.len() > 10_000, "the render is too short to test with: {}", expected.len());
    let entry = entry();
    let mut plugin = instance(&entry);
    edit_state(&mut plugin, setup);
    set_offline(&mut plugin, true);
    let start = 1234;
    let total = start + expected.len() + 100_000;
    let run = Run { rate: RATE, frames: total, blocks: &BLOCKS, notes: &[(start, 60)], pace: Duration::ZERO };
    let played = play(&mut plugin, &run);
    let left = &played.left;

    assert!(played.blocks.len() > 1000, "only {} blocks", played.blocks.len());
    assert!(left[..start].iter().all(|s| *s == 0.0), "sound before the note");
    assert_eq!(first_sound(left), first_sound(&expected).map(|i| i + start), "the speech starts at the note's sample");
    let error = max_abs_diff(&left[start..start + expected.len()], &expected);
    assert!(error < 1e-4, "the played line differs from the engine's render by {error}");
    assert!(left[start + expected.len()..].iter().all(|s| *s == 0.0), "sound after the line's end");
    (played.left, played.right)
}

#[test]
fn a_note_plays_the_engines_render_at_the_host_rate_from_its_sample_offset() {
    let (left, right) = play_line_one(|_| {});
    assert_eq!(left, right, "stereo output carries the same speech on both channels");
}

#[test]
fn live_mode_streams_the_same_speech_as_it_is_generated() {
    let (left, right) = play_line_one(|state| state["params"]["live"] = json!({ "bool": true }));
    assert_eq!(left, right);
}

#[test]
fn mono_output_leaves_the_second_channel_silent() {
    let (_, right) = play_line_one(|state| state["params"]["output"] = json!({ "string": "mono" }));
    assert!(right.iter().all(|s| *s == 0.0));
}

#[test]
fn in_real_time_a_trigger_never_waits_and_plays_once_the_render_is_ready() {
    let expected = engine_render(SECOND_LINE, RATE);
    let lead = first_sound(&expected).expect("the render has sound");
    let entry = entry();
    let mut plugin = instance(&entry);
    // Re-trigger line 2 every 8192 frames while the host runs in real time (paced blocks).
    const EVERY: usize = 8192;
    let notes: Vec<(usize, u8)> = (0..60).map(|i| (i * EVERY, 61)).collect();
    let started = Instant::now();
    let run = Run { rate: RATE, frames: 60 * EVERY, blocks: &BLOCKS, notes: &notes, pace: Duration::from_millis(2) };
    let left = play(&mut plugin, &run).left;
    let first = first_sound(&left).expect("the line plays once rendered") - lead;
    assert!(first > 0, "the very first trigger cannot have had a render");
    assert_eq!(first % EVERY, 0, "speech starts exactly on a trigger, never late: {first}");
    let error = max_abs_diff(&left[first..first + EVERY], &expected[..EVERY]);
    assert!(error < 1e-4, "the played line differs from the engine's render by {error}");
    assert!(started.elapsed() < Duration::from_secs(120));
}

#[test]
fn state_round_trips_and_a_damaged_state_loads_what_it_can_without_harm() {
    let entry = entry();
    let mut first = instance(&entry);
    let text = save(&mut first);
    assert!(text.contains(FIRST_LINE), "{text}");

    // A project from elsewhere: its lines and parameters load into a second instance.
    let edited =
        text.replace(FIRST_LINE, "A line from another project.").replace(r#""seed":{"i32":1}"#, r#""seed":{"i32":7}"#);
    assert_ne!(edited, text);
    let mut second = instance(&entry);
    assert!(load(&mut second, &state_bytes(&edited)));
    assert_eq!(save(&mut second), edited, "state round trip");

    // Garbage is refused, and the plugin keeps its state.
    assert!(!load(&mut second, b"\x00garbage"));
    assert!(!load(&mut second, &state_bytes("{not json")));
    assert_eq!(save(&mut second), edited);

    // A project whose second line is damaged keeps the first and the rest of the state.
    let damaged = edited.replace(r#"{\"text\":\"This line plays on the next key.\",\"voice\":null}"#, "42");
    assert_ne!(damaged, edited);
    assert!(load(&mut second, &state_bytes(&damaged)));
    let recovered = save(&mut second);
    assert!(recovered.contains("A line from another project."), "{recovered}");
    assert!(recovered.contains(r#""seed":{"i32":7}"#), "{recovered}");

    // And it still plays (silence: no note).
    set_offline(&mut second, true);
    let run = Run { rate: RATE, frames: 20_000, blocks: &BLOCKS, notes: &[], pace: Duration::ZERO };
    assert!(play(&mut second, &run).left.iter().all(|s| *s == 0.0));
}
