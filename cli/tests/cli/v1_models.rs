//! The `voxcpm` commands on v1 checkpoints (VoxCPM-0.5B and VoxCPM1.5 flavours): `v1_tiny`
//! (16 kHz, `pytorch_model.bin`, 1280 samples a patch) and `v1_odd` (44.1 kHz, no
//! `architecture` key, 126 samples a patch). Files come out at the model's own rate; a
//! reference clip, which v1 cannot take, is refused by the option's name.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use voxcpm_engine::testkit::parity::{TensorFile, ZeroShotCase};

use crate::VOXCPM;
use crate::common::{self, *};

fn checkpoint(config: &str) -> PathBuf {
    fixtures().join(config).join("checkpoint")
}

/// `voxcpm say TEXT --model <config's checkpoint>` with a fixed seed and `patches` patches.
fn say(config: &str, patches: usize, out: &Path, extra: &[&str]) -> Output {
    let patches = patches.to_string();
    Command::new(VOXCPM)
        .args(["say", "hello world", "--seed", "4", "--min-len", &patches, "--max-len", &patches, "--model"])
        .arg(checkpoint(config))
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn succeeded(output: &Output) {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// The rate and samples of a float WAV.
fn read_wav(path: &Path) -> (u32, Vec<f32>) {
    let reader = hound::WavReader::open(path).unwrap();
    let rate = reader.spec().sample_rate;
    (rate, reader.into_samples::<f32>().map(Result::unwrap).collect())
}

#[test]
fn say_writes_the_model_rate_whole_and_streamed() {
    let tmp = tempfile::tempdir().unwrap();
    for (config, rate, patch_samples) in [("v1_tiny", 16_000, 1280), ("v1_odd", 44_100, 126)] {
        let (whole, streamed) = (tmp.path().join(format!("{config}.wav")), tmp.path().join(format!("{config}-s.wav")));
        succeeded(&say(config, 3, &whole, &[]));
        let output = say(config, 3, &streamed, &["--stream"]);
        succeeded(&output);
        let (whole_rate, whole) = read_wav(&whole);
        let (streamed_rate, streamed) = read_wav(&streamed);
        assert_eq!((whole_rate, whole.len()), (rate, 3 * patch_samples), "{config}");
        assert_eq!(streamed_rate, rate, "{config}: the streamed file's rate");
        assert_close(&format!("{config} streamed vs whole"), &streamed, &whole, 1e-5);
        let seconds = format!("({:.2} s, seed 4)", (3 * patch_samples) as f64 / rate as f64);
        assert!(String::from_utf8_lossy(&output.stderr).contains(&seconds), "the duration at the model's rate");
    }
}

#[test]
fn batch_renders_at_the_model_rate_and_refuses_a_voice_column_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let voice = tmp.path().join("voice.wav");
    write_wav_i16(&voice, 16_000, 1, 4000, |i, _| ((i as f32 * 0.05).sin() * 8000.0) as i16);
    let script = tmp.path().join("lines.csv");
    std::fs::write(
        &script,
        format!("id,text,voice\none,hello world,\ntwo,good morning,\ncloned,hi,{}\n", voice.display()),
    )
    .unwrap();
    let out = tmp.path().join("renders");
    let output = Command::new(VOXCPM)
        .arg("batch")
        .arg(&script)
        .arg("-o")
        .arg(&out)
        .args(["--min-len", "2", "--max-len", "2", "--model"])
        .arg(checkpoint("v1_tiny"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the refused line fails the batch: {stderr}");
    assert!(stderr.contains("2 rendered, 0 unchanged, 1 failed"), "{stderr}");
    for id in ["one", "two"] {
        let (rate, samples) = read_wav(&out.join(format!("{id}.wav")));
        assert_eq!((rate, samples.len()), (16_000, 2 * 1280), "{id}");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let refused = &manifest["lines"][2];
    assert_eq!(refused["status"], "failed", "{manifest}");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("the voice column") && error.contains("needs a VoxCPM2 model"), "{error}");
    assert!(!out.join("cloned.wav").exists());
}

#[test]
fn info_reports_the_v1_architecture_beside_the_rate() {
    for (config, rate) in [("v1_tiny", 16_000), ("v1_odd", 44_100)] {
        let json = Command::new(VOXCPM).args(["info", "--json", "--model"]).arg(checkpoint(config)).output().unwrap();
        succeeded(&json);
        let info: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!((&info["architecture"], &info["sample_rate"]), (&"voxcpm".into(), &rate.into()), "{config}");

        let text = Command::new(VOXCPM).args(["info", "--model"]).arg(checkpoint(config)).output().unwrap();
        succeeded(&text);
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("architecture: voxcpm\n"), "{text}");
        assert!(text.contains(&format!("sample rate:  {rate} Hz")), "{text}");
    }
}

#[test]
fn parity_command_reproduces_a_v1_golden() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    let case = fixtures().join("v1_tiny/case_full.safetensors");
    let output = Command::new(VOXCPM)
        .args(["parity", "--model"])
        .arg(checkpoint("v1_tiny"))
        .arg("--case")
        .arg(&case)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    succeeded(&output);
    let expected = ZeroShotCase::read(&case).unwrap();
    let written = TensorFile::read(&out).unwrap();
    let latents = written.f32("latents").unwrap();
    assert_close("cli v1 latents", &latents, &expected.latents.unwrap().0, LATENT_TOLERANCE);
    assert_close("cli v1 audio", &written.f32("audio").unwrap(), &expected.audio.unwrap(), AUDIO_TOLERANCE);
}

/// `--voice` needs VoxCPM2: a non-zero exit, one line naming the option, and no file, whole or
/// streamed.
#[test]
fn voice_on_a_v1_model_is_refused_by_name_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let voice = tmp.path().join("voice.wav");
    write_wav_i16(&voice, 16_000, 1, 4000, |i, _| ((i as f32 * 0.05).sin() * 8000.0) as i16);
    let wav = tmp.path().join("out.wav");
    for stream in [false, true] {
        let mut extra = vec!["--voice", voice.to_str().unwrap()];
        if stream {
            extra.push("--stream");
        }
        let output = say("v1_tiny", 2, &wav, &extra);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "stream {stream}: {stderr}");
        assert!(stderr.contains("--voice") && stderr.contains("needs a VoxCPM2 model"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(!wav.exists(), "stream {stream}: {} was written", wav.display());
    }
}

/// A v1 config with a VoxCPM2 key that would change the model, and a damaged
/// `pytorch_model.bin`: one line naming the key or the file, no panic.
#[test]
fn damaged_v1_checkpoints_give_one_line_naming_the_key_or_file() {
    let (tmp, contradicting) = common::damage::scratch_copy("v1_tiny");
    common::damage::edit_config(&contradicting, |c| c["residual_lm_no_rope"] = true.into());
    let (_tmp2, damaged) = common::damage::scratch_copy("v1_tiny");
    common::damage::rewrite_zip_entry(&damaged.join("pytorch_model.bin"), "/data.pkl", |p| vec![0xff; p.len()]);
    for (model, expected) in [(&contradicting, "residual_lm_no_rope"), (&damaged, "pytorch_model.bin")] {
        crate::assert_say_fails_in_one_line(model, &tmp.path().join("out.wav"), expected);
    }
}

/// The bench times each stage of a v1 model (its DiT takes a condition half VoxCPM2's width)
/// and its stream, whose audio is measured at the model's rate.
#[test]
fn bench_times_a_v1_model() {
    for (config, rate, patch_samples) in [("v1_tiny", 16_000, 1280), ("v1_odd", 44_100, 126)] {
        let output = Command::new(VOXCPM)
            .args(["bench", "--runs", "1", "--context", "8", "--stream-patches", "2", "--model"])
            .arg(checkpoint(config))
            .output()
            .unwrap();
        succeeded(&output);
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert!(report["seconds_per_patch"]["dit_calls"].as_f64().is_some_and(f64::is_finite), "{report}");
        assert_eq!(report["streaming"]["chunks"], 2, "{config}");
        let seconds = report["streaming"]["audio_seconds"].as_f64().unwrap();
        assert!((seconds - (2 * patch_samples) as f64 / rate as f64).abs() < 1e-9, "{config}: {seconds}");
    }
}
