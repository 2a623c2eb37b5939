//! The bundled .vst3 in a real VST3 host: pedalboard (PyPI), which embeds JUCE's VST3 hosting.
//! JUCE renders offline (non-realtime), so the plugin waits for its render; the note's audio
//! must be the engine's render, starting at the note's sample, at 48 and 96 kHz.
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

/// Renders one note on line 1 in pedalboard; returns (left, right, the host's summary).
fn render_in_pedalboard(rate: u32, seconds: f64, note_at: f64) -> (Vec<f32>, Vec<f32>, String) {
    let cache = tempfile::tempdir().unwrap();
    let out = cache.path().join("out.f32");
    let script = workspace().join("tests/pedalboard/render.py");
    let plugin = bundled_plugin().join("VoxCPM.vst3");
    let output = Command::new(python())
        .arg(&script)
        .arg(&plugin)
        .arg(&out)
        .args([rate.to_string(), seconds.to_string(), note_at.to_string()])
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
    let (left, right, summary) = render_in_pedalboard(rate, seconds, note_at);

    assert!(summary.contains(r#""is_instrument": true"#), "{summary}");
    for parameter in [
        "base_note",
        "cfg",
        "denoise_voice",
        "gain_db",
        "live",
        "normalize_text",
        "output",
        "retrigger",
        "seed",
        "timesteps",
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
