//! The `voxcpm` commands as users run them.

use std::path::Path;
use std::process::Command;

use voxcpm_engine::testkit::parity::{TensorFile, ZeroShotCase};

use crate::VOXCPM;
use crate::common::{self, *};

fn voxcpm() -> Command {
    Command::new(VOXCPM)
}

/// `voxcpm parity --model <fixture checkpoint> --case CASE --out OUT` plus `extra` arguments.
fn parity(checkpoint: &str, case: &Path, out: &Path, extra: &[&std::ffi::OsStr]) -> std::process::Output {
    voxcpm()
        .args(["parity", "--model"])
        .arg(fixtures().join(checkpoint))
        .arg("--case")
        .arg(case)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn parity_command_reproduces_a_recorded_case() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    let case = fixtures().join("odd/case_full.safetensors");
    let output = parity("odd/checkpoint", &case, &out, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let expected = ZeroShotCase::read(&case).unwrap();
    let written = TensorFile::read(&out).unwrap();
    assert_close("cli latents", &written.f32("latents").unwrap(), &expected.latents.unwrap().0, LATENT_TOLERANCE);
    assert_close("cli audio", &written.f32("audio").unwrap(), &expected.audio.unwrap(), AUDIO_TOLERANCE);
}

#[test]
fn parity_command_fails_clearly_on_a_mismatched_case() {
    let tmp = tempfile::tempdir().unwrap();
    let output = parity(
        "tiny/checkpoint",
        &fixtures().join("odd/case_full.safetensors"),
        &tmp.path().join("out.safetensors"),
        &[],
    );
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
    write_wav_i16(&voice, 44100, 2, 22050, |i, channel| {
        let s = ((i as f32 * 0.05).sin() * 8000.0) as i16;
        if channel == 0 { s } else { s / 2 }
    });
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

fn read_wav(path: &std::path::Path) -> Vec<f32> {
    hound::WavReader::open(path).unwrap().samples::<f32>().map(Result::unwrap).collect()
}

#[test]
fn say_stream_writes_the_same_take_as_say_and_raw_floats_to_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, streamed) = (tmp.path().join("whole.wav"), tmp.path().join("streamed.wav"));
    let args = ["say", "hello world", "--seed", "9", "--min-len", "3", "--max-len", "3", "-o"];
    let run = |out: &std::path::Path, extra: &[&str]| voxcpm().args(args).arg(out).args(extra).output().unwrap();
    let output = run(&whole, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("seed 9"));
    assert!(run(&streamed, &["--stream"]).status.success());
    let (a, b) = (read_wav(&whole), read_wav(&streamed));
    assert_eq!(a.len(), 3 * 7680);
    assert_close("streamed file vs whole", &b, &a, 1e-5);

    let raw = voxcpm()
        .args(["say", "hello world", "--seed", "9", "--min-len", "3", "--max-len", "3", "--stream", "-o", "-"])
        .output()
        .unwrap();
    assert!(raw.status.success());
    let floats: Vec<f32> = raw.stdout.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(raw.stdout.len(), 3 * 7680 * 4, "only samples on stdout");
    assert_close("stdout vs whole", &floats, &a, 1e-5);
}

#[test]
fn batch_renders_each_line_skips_unchanged_ones_and_survives_a_bad_one() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("lines.tsv");
    std::fs::write(
        &script,
        "id\ttext\tvoice\tseed\tmax_len\n\
         intro\thello world\t\t\t\n\
         broken\tbad voice\tmissing.wav\t\t\n\
         bad_number\tx\t\t\tlots\n\
         zh\t今天天气很好\t\t5\t2\n\
         intro\tduplicate id\t\t\t\n",
    )
    .unwrap();
    let out = tmp.path().join("renders");
    let batch = || {
        voxcpm()
            .arg("batch")
            .arg(&script)
            .arg("-o")
            .arg(&out)
            .args(["--min-len", "2", "--max-len", "3"])
            .output()
            .unwrap()
    };
    let first = batch();
    assert!(!first.status.success(), "failed lines make the exit status non-zero");
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("missing.wav") && stderr.contains("lots") && stderr.contains("duplicate"), "{stderr}");
    assert!(stderr.contains("2 rendered, 0 unchanged, 3 failed"), "{stderr}");
    assert_eq!(read_wav(&out.join("intro.wav")).len(), 3 * 7680);
    assert_eq!(read_wav(&out.join("zh.wav")).len(), 2 * 7680, "per-line max_len");

    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let lines = manifest["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[3]["seed"], 5);
    assert_eq!(lines[1]["status"], "failed");

    let modified = std::fs::metadata(out.join("intro.wav")).unwrap().modified().unwrap();
    let second = batch();
    assert!(String::from_utf8_lossy(&second.stderr).contains("0 rendered, 2 unchanged, 3 failed"));
    assert_eq!(std::fs::metadata(out.join("intro.wav")).unwrap().modified().unwrap(), modified, "not rewritten");

    // Changing a line's text renders that line again, with the same derived seed rule.
    std::fs::write(&script, "id,text\nintro,hello there\nzh,今天天气很好\n").unwrap();
    let csv = tmp.path().join("lines.csv");
    std::fs::rename(&script, &csv).unwrap();
    let third = voxcpm()
        .arg("batch")
        .arg(&csv)
        .arg("-o")
        .arg(&out)
        .args(["--min-len", "2", "--max-len", "3"])
        .output()
        .unwrap();
    assert!(third.status.success(), "{}", String::from_utf8_lossy(&third.stderr));
    assert!(String::from_utf8_lossy(&third.stderr).contains("2 rendered"), "zh lost its seed and max_len columns");
}

#[test]
fn batch_rejects_a_script_without_the_required_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("lines.csv");
    std::fs::write(&script, "name,words\na,b\n").unwrap();
    let output = voxcpm().arg("batch").arg(&script).arg("-o").arg(tmp.path().join("o")).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown column \"name\""));
}

#[test]
fn info_names_the_model_device_and_rate() {
    let output = voxcpm().args(["info", "--json"]).env_remove("VOXCPM_MODEL").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(info["status"], "ready");
    assert_eq!(info["device"], "cpu");
    assert_eq!(info["sample_rate"], 48000);
    assert_eq!(info["architecture"], "voxcpm2");
    assert!(info["model_source"].as_str().unwrap().contains("random weights"));
    let best = voxcpm_engine::kernels::Level::supported().into_iter().max().expect("portable always runs");
    assert_eq!(info["cpu_kernels"], best.to_string(), "the best level by default");

    let chosen = voxcpm().args(["info", "--json"]).env("VOXCPM_KERNEL", "portable").output().unwrap();
    let chosen: serde_json::Value = serde_json::from_slice(&chosen.stdout).unwrap();
    assert_eq!(chosen["cpu_kernels"], "portable", "VOXCPM_KERNEL's choice");
}

#[test]
fn say_in_bf16_speaks_and_info_reports_the_precision() {
    let info = voxcpm().args(["info", "--json", "--precision", "bf16"]).env_remove("VOXCPM_MODEL").output().unwrap();
    assert!(info.status.success(), "{}", String::from_utf8_lossy(&info.stderr));
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!((&info["device"], &info["precision"]), (&"cpu".into(), &"bf16".into()));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bf16.wav");
    let say = voxcpm()
        .args(["say", "--precision", "bf16", "--seed", "1", "--max-len", "3", "--output"])
        .arg(&out)
        .arg("A line in bf16.")
        .env_remove("VOXCPM_MODEL")
        .output()
        .unwrap();
    assert!(say.status.success(), "{}", String::from_utf8_lossy(&say.stderr));
    let audio = read_wav(&out);
    assert!(!audio.is_empty() && audio.iter().all(|s| s.is_finite()));
}

#[test]
fn fetch_without_a_network_fails_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let output =
        voxcpm().args(["fetch"]).env("HF_HOME", tmp.path()).env("HF_ENDPOINT", "http://127.0.0.1:9").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot download config.json from openbmb/VoxCPM2"), "{stderr}");
}

#[test]
fn parity_command_applies_a_lora_adapter_first() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    let case = fixtures().join("tiny/lora_case.safetensors");
    let adapter = fixtures().join("tiny/lora");
    let output = parity("tiny/checkpoint", &case, &out, &["--lora".as_ref(), adapter.as_os_str()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("56 tensors loaded, 1 skipped"));
    let expected = ZeroShotCase::read(&case).unwrap();
    let written = TensorFile::read(&out).unwrap();
    assert_close("cli LoRA latents", &written.f32("latents").unwrap(), &expected.latents.unwrap().0, LATENT_TOLERANCE);
}

#[test]
fn normalize_prints_the_spoken_text_and_refuses_bad_input() {
    let output = voxcpm().args(["normalize", "On Jan 1, 2020 I paid $5 for 2 kg."]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "On the first of january, twenty twenty I paid five dollars for two kilograms.\n"
    );

    let mut child = voxcpm()
        .args(["normalize", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all("I have 3 cats.\n我有3个苹果。\n".as_bytes()).unwrap();
    let lines = child.wait_with_output().unwrap();
    assert!(lines.status.success());
    assert_eq!(String::from_utf8_lossy(&lines.stdout), "I have three cats.\n我有三个苹果。\n");

    let emoji = voxcpm().args(["normalize", "😀😀"]).output().unwrap();
    assert!(!emoji.status.success());
    assert!(String::from_utf8_lossy(&emoji.stderr).contains("nothing is left to speak"));

    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"caf\xe9");
    let arg = voxcpm().arg("normalize").arg(bad).output().unwrap();
    assert!(!arg.status.success());
    assert!(String::from_utf8_lossy(&arg.stderr).contains("invalid UTF-8"), "{}", String::from_utf8_lossy(&arg.stderr));
    let mut child = voxcpm()
        .args(["normalize", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"fine\ncaf\xe9\n").unwrap();
    let stdin = child.wait_with_output().unwrap();
    assert!(!stdin.status.success());
    assert!(String::from_utf8_lossy(&stdin.stderr).contains("line 2 is not valid UTF-8"));
}

#[test]
fn say_and_batch_take_normalize_and_denoise() {
    let tmp = tempfile::tempdir().unwrap();
    let voice = tmp.path().join("voice.wav");
    write_wav_i16(&voice, 16000, 1, 16000, |i, _| ((i as f32 * 0.05).sin() * 8000.0) as i16);
    let say = |extra: &[&str], out: &str| {
        let wav = tmp.path().join(out);
        let output = voxcpm()
            .args(["say", "I have 2 cats.", "--seed", "3", "--min-len", "2", "--max-len", "2", "--voice"])
            .arg(&voice)
            .args(extra)
            .arg("-o")
            .arg(&wav)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        read_wav(&wav)
    };
    let plain = say(&[], "plain.wav");
    assert_ne!(say(&["--normalize"], "normalized.wav"), plain);
    assert_ne!(say(&["--denoise"], "denoised.wav"), plain, "--denoise alone loads the denoiser");

    let script = tmp.path().join("lines.tsv");
    let mut bytes = b"id\ttext\none\tI have 2 cats.\nbad\tcaf".to_vec();
    bytes.extend(b"\xe9\n");
    std::fs::write(&script, bytes).unwrap();
    let out = tmp.path().join("renders");
    let batch = voxcpm()
        .arg("batch")
        .arg(&script)
        .arg("-o")
        .arg(&out)
        .args(["--min-len", "2", "--max-len", "2", "--normalize", "--denoise"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&batch.stderr);
    assert!(!batch.status.success());
    assert!(stderr.contains("row 3") && stderr.contains("invalid utf-8"), "{stderr}");
    assert!(out.join("one.wav").is_file(), "{stderr}");
}

/// `voxcpm say` on a checkpoint whose weights compute NaN: a non-zero exit, one line naming the
/// cause, and no WAV left behind, whole or streamed.
#[test]
fn say_writes_no_file_when_the_model_computes_nan() {
    // NaN from the first patch, or (the stop head) after a finite first chunk was streamed.
    for (tensor, stream) in
        [("lm_to_dit_proj.weight", false), ("lm_to_dit_proj.weight", true), ("stop_head.weight", true)]
    {
        let (tmp, dir) = common::damage::scratch_checkpoint();
        common::damage::poison_tensor(&dir, tensor);
        let wav = tmp.path().join("out.wav");
        let mut command = voxcpm();
        command.args(["say", "hello", "--model"]).arg(&dir).arg("-o").arg(&wav);
        if stream {
            command.arg("--stream");
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{tensor}, stream {stream}: {stderr}");
        assert!(stderr.contains("non-finite values (NaN/Inf)") && stderr.contains("damaged"), "{stderr}");
        assert!(!wav.exists(), "{tensor}, stream {stream}: {} was left behind", wav.display());
    }
}

/// Damaged config values and tokenizer files: one line naming the file and the key, and no
/// panic message or backtrace hint.
#[test]
fn damaged_files_give_one_line_naming_the_file_and_key() {
    use common::damage::{scratch_checkpoint, set_config_value};
    let (tmp, dir) = scratch_checkpoint();
    set_config_value(&dir, "/residual_lm_num_layers", serde_json::json!(9223372036854775808u64));
    let (_tmp2, tokenizer_dir) = scratch_checkpoint();
    let tokenizer = tokenizer_dir.join("tokenizer.json");
    let text = std::fs::read(&tokenizer).unwrap();
    std::fs::write(&tokenizer, &text[..text.len() / 3]).unwrap();
    for (model, expected) in
        [(&dir, "residual_lm_num_layers = 9223372036854775808"), (&tokenizer_dir, "tokenizer.json")]
    {
        crate::assert_say_fails_in_one_line(model, &tmp.path().join("out.wav"), expected);
    }
}

/// A full disk (/dev/full) is a clear write error naming the output.
#[cfg(target_os = "linux")]
#[test]
fn say_to_a_full_disk_fails_with_the_path_and_the_reason() {
    let output =
        voxcpm().args(["say", "hi", "--max-len", "3", "-o", "/dev/full"]).env_remove("VOXCPM_MODEL").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("cannot write /dev/full") && stderr.contains("No space left"), "{stderr}");
}

/// In a batch, a line whose audio goes non-finite is recorded as failed with the cause, and
/// the batch goes on to the next line.
#[test]
fn batch_records_a_nan_line_and_goes_on() {
    let (tmp, dir) = common::damage::scratch_checkpoint();
    common::damage::poison_tensor(&dir, "lm_to_dit_proj.weight");
    let script = tmp.path().join("lines.csv");
    std::fs::write(&script, "id,text\none,hello\ntwo,world\n").unwrap();
    let out = tmp.path().join("renders");
    let output = voxcpm().arg("batch").arg(&script).arg("-o").arg(&out).arg("--model").arg(&dir).output().unwrap();
    assert!(!output.status.success());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let lines = manifest["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{manifest}");
    for line in lines {
        assert_eq!(line["status"], "failed");
        assert!(line["error"].as_str().unwrap().contains("non-finite"), "{line}");
    }
    assert!(!out.join("one.wav").exists() && !out.join("two.wav").exists());
}
