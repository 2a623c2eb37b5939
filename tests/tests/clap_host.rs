//! The bundled .clap in a real CLAP host (clack-host): notes in, speech out at 44.1 kHz in odd
//! block sizes, sample-accurate starts, live streaming, mono output, offline waiting, real-time never
//! waiting, state; and the v1 models (16 and 44.1 kHz) resampled to 44.1 and 48 kHz hosts.
//!
//! The plugin is the debug build, whose `assert_process_allocs` aborts this process if
//! `process()` ever allocates: every block processed here is also an allocation check.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use voxcpm_engine::testkit::parity::max_abs_diff;
use voxcpm_host_tests::clap::{
    Run, edit_project, edit_state, entry, first_sound, instance, load, play, save, set_offline, state_bytes,
};
use voxcpm_host_tests::{demo_model, engine_render, fixture_model, wait_for_log};

// A crate root's modules sit beside it; this one's stay in their own folder, out of cargo's
// test discovery.
#[path = "clap_host/instrument.rs"]
mod instrument;

#[path = "clap_host/live_lines.rs"]
mod live_lines;
#[path = "clap_host/realtime.rs"]
mod realtime;

#[path = "clap_host/takes.rs"]
mod takes;

const RATE: u32 = 44_100;
const FIRST_LINE: &str = "Hello from VoxCPM.";
const SECOND_LINE: &str = "This line plays on the next key.";
/// Block sizes cycled through: 1, primes and odd sizes up to the maximum.
const BLOCKS: [usize; 14] = [1, 3, 17, 64, 7, 33, 2, 5, 11, 127, 1021, 9, 13, 4];
/// The v1 fixture checkpoints and the family the plugin reports for each.
const V1_MODELS: [(&str, &str); 2] = [("v1_tiny", "VoxCPM (v1) · 16 kHz"), ("v1_odd", "VoxCPM (v1) · 44.1 kHz")];

/// Plays line 1 at `rate` from a note inside a block, offline, on `model` (`None`: the plugin's
/// automatic choice, the demo) with `setup` applied to the state first; checks the speech is
/// the engine's render from the note's sample on and finite, and returns both channels.
fn play_line_one(model: Option<&Path>, rate: u32, setup: impl FnOnce(&mut Value)) -> (Vec<f32>, Vec<f32>) {
    let expected = engine_render(model.map_or_else(demo_model, Path::to_owned).as_path(), FIRST_LINE, rate);
    // The smallest fixture (v1_odd) speaks 28 patches of 126 samples for this line.
    assert!(expected.len() > 2_000, "the render is too short to test with: {}", expected.len());
    let entry = entry();
    let mut plugin = instance(&entry);
    edit_state(&mut plugin, setup);
    if let Some(model) = model {
        edit_project(&mut plugin, |p| p["model"] = Value::from(model.display().to_string()));
    }
    set_offline(&mut plugin, true);
    let start = 1234;
    let total = start + expected.len() + 100_000;
    let run = Run { rate, frames: total, blocks: &BLOCKS, notes: &[(start, 60)], pace: Duration::ZERO };
    let played = play(&mut plugin, &run);
    let (left, right) = (&played.left, &played.right);

    assert!(played.blocks.len() > 1000, "only {} blocks", played.blocks.len());
    assert!(left.iter().chain(right).all(|s| s.is_finite()), "a non-finite sample");
    assert!(left[..start].iter().all(|s| *s == 0.0), "sound before the note");
    assert_eq!(first_sound(left), first_sound(&expected).map(|i| i + start), "the speech starts at the note's sample");
    let error = max_abs_diff(&left[start..start + expected.len()], &expected);
    assert!(error < 1e-4, "at {rate} Hz the played line differs from the engine's render by {error}");
    assert!(left[start + expected.len()..].iter().all(|s| *s == 0.0), "sound after the line's end");
    (played.left, played.right)
}

/// Each v1 fixture plays line 1 (rendered ahead, or streamed when `live`) in a host at `rate`
/// as the engine renders it, and the plugin reports its family.
fn check_v1_models(rate: u32, live: bool) {
    for (name, family) in V1_MODELS {
        let model = fixture_model(name);
        let (left, right) =
            play_line_one(Some(&model), rate, |state| state["params"]["live"] = json!({ "bool": live }));
        assert_eq!(left, right, "{name}: stereo output carries the same (mono) speech on both channels");
        assert!(wait_for_log(family, Duration::from_secs(10)), "{family} is not reported for {name}");
    }
}

#[test]
fn a_note_plays_the_engines_render_at_the_host_rate_from_its_sample_offset() {
    let (left, right) = play_line_one(None, RATE, |_| {});
    assert_eq!(left, right, "stereo output carries the same speech on both channels");
}

#[test]
fn live_mode_streams_the_same_speech_as_it_is_generated() {
    let (left, right) = play_line_one(None, RATE, |state| state["params"]["live"] = json!({ "bool": true }));
    assert_eq!(left, right);
}

#[test]
fn mono_output_leaves_the_second_channel_silent() {
    let (_, right) = play_line_one(None, RATE, |state| state["params"]["output"] = json!({ "string": "mono" }));
    assert!(right.iter().all(|s| *s == 0.0));
}

#[test]
fn a_16_khz_and_a_44_1_khz_v1_model_play_the_engines_render_in_a_44_1_khz_host() {
    check_v1_models(44_100, false);
}

#[test]
fn a_16_khz_and_a_44_1_khz_v1_model_play_the_engines_render_in_a_48_khz_host() {
    check_v1_models(48_000, false);
}

#[test]
fn a_v1_model_streams_live_the_same_speech_as_it_renders() {
    check_v1_models(44_100, true);
}

#[test]
fn in_real_time_a_trigger_never_waits_and_plays_once_the_render_is_ready() {
    let expected = engine_render(&demo_model(), SECOND_LINE, RATE);
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
