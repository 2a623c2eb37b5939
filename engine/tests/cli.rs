//! The `voxcpm` binary as users run it.

mod common;

use std::process::Command;

use common::*;
use voxcpm_engine::parity::{TensorFile, ZeroShotCase};

fn voxcpm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_voxcpm"))
}

#[test]
fn parity_command_reproduces_a_recorded_case() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    let case = fixtures().join("odd/case_full.safetensors");
    let status = voxcpm()
        .args(["parity", "--model"])
        .arg(fixtures().join("odd/checkpoint"))
        .arg("--case")
        .arg(&case)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let expected = ZeroShotCase::read(&case).unwrap();
    let written = TensorFile::read(&out).unwrap();
    assert_close("cli latents", &written.f32("latents").unwrap(), &expected.latents.unwrap().0, LATENT_TOLERANCE);
    assert_close("cli audio", &written.f32("audio").unwrap(), &expected.audio.unwrap(), AUDIO_TOLERANCE);
}

#[test]
fn parity_command_fails_clearly_on_a_mismatched_case() {
    let tmp = tempfile::tempdir().unwrap();
    let output = voxcpm()
        .args(["parity", "--model"])
        .arg(fixtures().join("tiny/checkpoint"))
        .arg("--case")
        .arg(fixtures().join("odd/case_full.safetensors"))
        .arg("--out")
        .arg(tmp.path().join("out.safetensors"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("feat_dim") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn say_writes_a_48khz_wav_with_the_demo_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let wav = tmp.path().join("line.wav");
    let output = voxcpm().args(["say", "Hello there.", "-o"]).arg(&wav).env_remove("VOXCPM_MODEL").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("RANDOM WEIGHTS"));
    let reader = hound::WavReader::open(&wav).unwrap();
    assert_eq!(reader.spec().sample_rate, 48000);
    let samples = reader.len() as usize;
    assert!(samples >= 4 * 7680 && samples.is_multiple_of(7680), "{samples} samples: whole 160 ms patches, at least 4");
}

#[test]
fn say_rejects_blank_text_and_a_missing_model() {
    let blank = voxcpm().args(["say", "  \n ", "-o", "/dev/null"]).output().unwrap();
    assert!(!blank.status.success());
    assert!(String::from_utf8_lossy(&blank.stderr).contains("empty"));
    let missing = voxcpm().args(["say", "hi", "--model", "/nonexistent/model", "-o", "/dev/null"]).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/model"));
}

#[test]
fn say_clones_a_voice_from_a_wav_at_another_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let voice = tmp.path().join("voice.wav");
    let spec = hound::WavSpec { channels: 2, sample_rate: 44100, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(&voice, spec).unwrap();
    for i in 0..22050 {
        let s = ((i as f32 * 0.05).sin() * 8000.0) as i16;
        w.write_sample(s).unwrap();
        w.write_sample(s / 2).unwrap();
    }
    w.finalize().unwrap();
    let wav = tmp.path().join("out.wav");
    let output = voxcpm()
        .args(["say", "hello", "--min-len", "3", "--max-len", "4", "--voice"])
        .arg(&voice)
        .arg("-o")
        .arg(&wav)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(hound::WavReader::open(&wav).unwrap().len(), 4 * 7680);

    let half = voxcpm().args(["say", "hello", "--prompt-wav"]).arg(&voice).output().unwrap();
    assert!(!half.status.success(), "a prompt clip without its transcript is refused");
    assert!(String::from_utf8_lossy(&half.stderr).contains("--prompt-text"));
}
