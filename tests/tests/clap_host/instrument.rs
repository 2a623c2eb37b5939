//! The plugin played as an instrument: note-offs (gate and one-shot) and velocity, from keys
//! inside odd-sized blocks, rendered ahead and streamed live.

use std::time::Duration;

use serde_json::json;
use voxcpm_engine::testkit::parity::max_abs_diff;
use voxcpm_host_tests::clap::{KeyEvent, Run, edit_state, entry, instance, play_keys, set_offline};
use voxcpm_host_tests::{demo_model, engine_render};
use voxcpm_plugin::envelope::{release_gain, release_samples};

use super::{BLOCKS, FIRST_LINE, RATE};

/// Where line 1's key (60) goes down.
const START: usize = 1234;

const GATE: (&str, &str) = ("note_off", "gate");
const TO_GAIN: (&str, &str) = ("velocity", "gain");

/// Line 1 as the engine renders it at `RATE`.
fn line_one() -> Vec<f32> {
    let line = engine_render(&demo_model(), FIRST_LINE, RATE);
    assert!(line.len() > 20_000, "the render is too short to test with: {}", line.len());
    line
}

fn on(at: usize, key: u8, velocity: f64) -> KeyEvent {
    KeyEvent::On { at, key, velocity }
}

fn off(at: usize, key: u8) -> KeyEvent {
    KeyEvent::Off { at, key, velocity: 0.5 }
}

/// Plays `keys` offline in a fresh instance with the enum parameters `settings` (id, variant)
/// set, and `live` streaming or not; returns the left channel, checked finite and equal to the
/// right one.
fn play(settings: &[(&str, &str)], live: bool, keys: &[KeyEvent], frames: usize) -> Vec<f32> {
    let entry = entry();
    let mut plugin = instance(&entry);
    edit_state(&mut plugin, |state| {
        for (id, variant) in settings {
            state["params"][id] = json!({ "string": variant });
        }
        state["params"]["live"] = json!({ "bool": live });
    });
    set_offline(&mut plugin, true);
    let run = Run { rate: RATE, frames, blocks: &BLOCKS, notes: &[], pace: Duration::ZERO };
    let played = play_keys(&mut plugin, &run, keys);
    assert!(played.left.iter().all(|s| s.is_finite()), "a non-finite sample");
    assert_eq!(played.left, played.right);
    played.left
}

/// Checks that `played` is `line` from `START` to its end, and silence around it.
fn assert_whole_line(played: &[f32], line: &[f32], case: &str) {
    assert!(played[..START].iter().all(|s| *s == 0.0), "{case}: sound before the note");
    let error = max_abs_diff(&played[START..START + line.len()], line);
    assert!(error < 1e-4, "{case}: the line differs from the engine's render by {error}");
    assert!(played[START + line.len()..].iter().all(|s| *s == 0.0), "{case}: sound after the line's end");
}

/// The largest step between neighbouring samples; NaN if there is one.
fn largest_step(samples: &[f32]) -> f32 {
    samples.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, |m, d| if d > m || d.is_nan() { d } else { m })
}

#[test]
fn in_gate_mode_a_line_fades_out_from_its_note_offs_sample_rendered_or_live() {
    let line = line_one();
    let frames = START + line.len() + 20_000;
    let note_off = START + line.len() / 2 + 7;
    let keys = [on(START, 60, 1.0), off(note_off, 60)];
    let fade = release_samples(RATE) as usize;
    for live in [false, true] {
        let whole = play(&[], live, &keys, frames);
        assert_whole_line(&whole, &line, &format!("one-shot, live {live}"));
        let gated = play(&[GATE], live, &keys, frames);
        let case = format!("gate, live {live}");

        assert_eq!(gated[..note_off], whole[..note_off], "{case}: the line plays until its note-off");
        let faded: Vec<f32> = (0..fade).map(|k| whole[note_off + k] * release_gain(k as u32, fade as u32)).collect();
        assert_eq!(gated[note_off..note_off + fade], faded[..], "{case}: then fades from the note-off's sample");
        assert!(gated[note_off + fade..].iter().all(|s| *s == 0.0), "{case}: silence after the fade");
        let gains: Vec<f32> =
            (note_off..note_off + fade).filter(|&i| whole[i].abs() > 1e-3).map(|i| gated[i] / whole[i]).collect();
        assert!(gains.len() > fade / 2, "{case}: too few samples to see the fade's gain");
        assert!(gains.iter().all(|g| (0.0..1.0).contains(g)), "{case}: a gain outside the fade: {gains:?}");
        assert!(gains.windows(2).all(|w| w[1] <= w[0] + 1e-6), "{case}: the fade's gain rises: {gains:?}");
        let (fade_step, line_step) = (largest_step(&gated[note_off - 1..=note_off + fade]), largest_step(&line));
        assert!(fade_step <= line_step, "{case}: the fade steps by {fade_step}, more than the line's own {line_step}");
    }
}

#[test]
fn in_one_shot_mode_a_note_off_leaves_the_line_playing_to_its_end() {
    let line = line_one();
    let keys = [on(START, 60, 1.0), off(START + 5_003, 60)];
    let played = play(&[], false, &keys, START + line.len() + 20_000);
    assert_whole_line(&played, &line, "one-shot");
}

#[test]
fn in_gate_mode_a_note_off_of_another_key_changes_nothing() {
    let line = line_one();
    let keys = [on(START, 60, 1.0), off(START + 5_003, 61), off(START + 6_001, 59), off(START + 7_919, 72)];
    let played = play(&[GATE], false, &keys, START + line.len() + 20_000);
    assert_whole_line(&played, &line, "gate, other keys");
}

#[test]
fn velocity_to_gain_plays_a_half_velocity_note_at_a_quarter_and_velocity_off_ignores_it() {
    let line = line_one();
    let keys = [on(START, 60, 0.5)];
    let frames = START + line.len() + 20_000;
    let full = play(&[], false, &keys, frames);
    assert_whole_line(&full, &line, "velocity off");
    let soft = play(&[TO_GAIN], false, &keys, frames);
    let quarter: Vec<f32> = full.iter().map(|s| s * 0.25).collect();
    assert_eq!(soft, quarter, "velocity 0.5 plays the line at 0.5² = 0.25");
}
