//! The bundled .vst3 in a real VST3 host: pedalboard (PyPI), which embeds JUCE's VST3 hosting.
//! JUCE renders offline (non-realtime), so the plugin waits for its render; the note's audio
//! must be the engine's render, starting at the note's sample, at 48 and 96 kHz; in gate mode
//! with velocity to gain, scaled by the note's velocity and faded out at its note-off.
//!
//! pedalboard lives in `.venv-hosts`, made by `scripts/setup` (it is GPL and test-only: it is
//! never shipped or linked).

use std::path::PathBuf;
use std::process::Command;

use voxcpm_engine::testkit::parity::max_abs_diff;
use voxcpm_host_tests::{bundled_plugin, demo_model, engine_render, workspace};

const FIRST_LINE: &str = "Hello from VoxCPM.";

fn python() -> PathBuf {
    let python = workspace().join(".venv-hosts/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/setup (it installs pedalboard for this test)",
        python.display()
    );
    python
}

/// Renders one note on line 1 in pedalboard, with `extra` arguments for render.py (velocity,
/// note-off, parameters); returns (left, right, the host's summary).
fn render_in_pedalboard(rate: u32, seconds: f64, note_at: f64, extra: &[&str]) -> (Vec<f32>, Vec<f32>, String) {
    let cache = tempfile::tempdir().unwrap();
    let out = cache.path().join("out.f32");
    let script = workspace().join("tests/pedalboard/render.py");
    let plugin = bundled_plugin().join("VoxCPM.vst3");
    let output = Command::new(python())
        .arg(&script)
        .arg(&plugin)
        .arg(&out)
        .args([rate.to_string(), seconds.to_string(), note_at.to_string()])
        .args(extra)
        .env("VOXCPM_MODEL", demo_model())
        .env("VOXCPM_RENDER_CACHE", cache.path().join("renders"))
        .output()
        .expect("run pedalboard");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "pedalboard failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&out).expect("rendered audio");
    let samples: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (left, right, stdout)
}

fn check_rate(rate: u32) {
    let expected = engine_render(&demo_model(), FIRST_LINE, rate);
    let note_at = 0.25;
    let start = (note_at * f64::from(rate)).round() as usize;
    let seconds = note_at + expected.len() as f64 / f64::from(rate) + 0.5;
    let (left, right, summary) = render_in_pedalboard(rate, seconds, note_at, &[]);

    assert!(summary.contains(r#""is_instrument": true"#), "{summary}");
    for parameter in [
        "base_note",
        "cfg",
        "denoise_voice",
        "gain_db",
        "live",
        "normalize_text",
        "note_off",
        "output",
        "retrigger",
        "seed",
        "timesteps",
        "velocity",
    ] {
        assert!(summary.contains(&format!("\"{parameter}\"")), "parameter {parameter} missing: {summary}");
    }
    assert_eq!(left.len(), (seconds * f64::from(rate)) as usize);
    assert!(left[..start].iter().all(|s| *s == 0.0), "sound before the note");
    let played = &left[start..start + expected.len()];
    let error = max_abs_diff(played, &expected);
    assert!(error < 1e-4, "at {rate} Hz the line differs from the engine's render by {error}");
    assert!(left[start + expected.len()..].iter().all(|s| *s == 0.0), "sound after the line");
    assert_eq!(left, right);
}

#[test]
fn pedalboard_plays_a_note_as_the_engine_renders_it_at_48_khz() {
    check_rate(48_000);
}

#[test]
fn pedalboard_plays_a_note_as_the_engine_renders_it_at_96_khz() {
    check_rate(96_000);
}

/// Gate mode and velocity to gain through JUCE's VST3 hosting: the line plays scaled by the
/// note's velocity (MIDI 64 of 127, squared) until its note-off, fades out within 15 ms of it,
/// and is silent after.
#[test]
fn pedalboard_plays_a_gated_note_at_its_velocity() {
    let rate = 48_000;
    let expected = engine_render(&demo_model(), FIRST_LINE, rate);
    let (note_at, off_at) = (0.25, 0.25 + 0.3);
    let (start, off) = ((note_at * f64::from(rate)).round() as usize, (off_at * f64::from(rate)).round() as usize);
    assert!(off < start + expected.len(), "the note-off must come inside the line");
    let args = ["--velocity", "64", "--off", "0.55", "--set", "note_off=Gate", "--set", "velocity=To gain"];
    let (left, right, _) = render_in_pedalboard(rate, off_at + 0.5, note_at, &args);

    let gain = (64.0f32 / 127.0).powi(2);
    let held: Vec<f32> = expected[..off - start].iter().map(|s| s * gain).collect();
    let error = max_abs_diff(&left[start..off], &held);
    assert!(error < 1e-4, "before its note-off the line differs from the render at velocity 64 by {error}");
    let fade = (0.015 * f64::from(rate)).ceil() as usize;
    for (i, sample) in left[off..off + fade].iter().enumerate() {
        let bound = (expected[off - start + i] * gain).abs() + 1e-6;
        assert!(sample.is_finite() && sample.abs() <= bound, "the fade grows at {i}: {sample} > {bound}");
    }
    assert!(left[off + fade..].iter().all(|s| *s == 0.0), "sound after the note-off's fade");
    assert_eq!(left, right);
}
