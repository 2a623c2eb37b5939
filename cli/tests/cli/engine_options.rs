//! The options every engine command shares: defaults that are the engine's own, and the bench
//! taking the same engine options as `say`.

use std::process::Command;

use voxcpm_engine::pipeline::SpeechOptions;
use voxcpm_engine::runtime::ServerOptions;

use crate::VOXCPM;
use crate::common::fixtures;

/// The `--help` text of a subcommand.
fn help(command: &str) -> String {
    let output = Command::new(VOXCPM).args([command, "--help"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// The help entry of `flag`: its line and those under it, up to the next option, with its
/// whitespace collapsed (clap wraps long entries at the terminal's width, even inside
/// `[default: ...]`).
fn entry(help: &str, flag: &str) -> String {
    let mut lines = help.lines().skip_while(|l| !l.trim_start().starts_with(&format!("{flag} ")));
    let first = lines.next().unwrap_or_else(|| panic!("{flag} is not in the help:\n{help}"));
    let rest = lines.take_while(|l| !l.trim_start().starts_with('-'));
    std::iter::once(first).chain(rest).flat_map(str::split_whitespace).collect::<Vec<_>>().join(" ")
}

#[test]
fn help_shows_the_engines_defaults() {
    let speech = SpeechOptions::default();
    let server = ServerOptions::new("");
    let engine = [("--device", server.device.clone()), ("--precision", server.precision.name().to_owned())];
    let voice = [
        ("--cfg", speech.cfg_value.to_string()),
        ("--steps", speech.inference_timesteps.to_string()),
        ("--min-len", speech.min_len.to_string()),
        ("--max-len", speech.max_len.to_string()),
    ];
    let commands = [
        ("say", [&engine[..], &voice[..]].concat()),
        ("batch", [&engine[..], &voice[..]].concat()),
        ("info", engine.to_vec()),
        ("bench", [&engine[..], &voice[1..2]].concat()),
    ];
    for (command, defaults) in commands {
        let help = help(command);
        for (flag, value) in defaults {
            let entry = entry(&help, flag);
            assert!(entry.contains(&format!("[default: {value}]")), "{command} {flag}: {entry}");
        }
    }
}

#[test]
fn bench_applies_the_lora_adapter_and_refuses_a_missing_one() {
    let checkpoint = fixtures().join("tiny/checkpoint");
    let bench = |adapter: &std::path::Path| {
        Command::new(VOXCPM)
            .args(["bench", "--runs", "1", "--stream-patches", "1", "--model"])
            .arg(&checkpoint)
            .arg("--lora")
            .arg(adapter)
            .output()
            .unwrap()
    };
    let adapter = fixtures().join("tiny/lora");
    let output = bench(&adapter);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["lora"]["adapter"], adapter.display().to_string());
    assert_eq!((&report["lora"]["loaded"], &report["lora"]["skipped"]), (&56.into(), &1.into()));
    assert_eq!(report["streaming"]["chunks"], 2);

    let missing = bench(std::path::Path::new("/nonexistent/adapter"));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success() && stderr.contains("/nonexistent/adapter"), "{stderr}");
}

/// `bench --concurrency` with options it cannot honour fails before loading anything, naming
/// the option.
#[test]
fn bench_concurrency_refuses_bad_arguments() {
    let checkpoint = fixtures().join("tiny/checkpoint");
    let cases: [(&[&str], &str); 4] = [
        (&["--concurrency", "1,0"], "--concurrency"),
        (&["--concurrency", "1", "--line-seconds", "0"], "--line-seconds"),
        (&["--line-seconds", "1"], "--concurrency"),
        (&["--concurrency", "1", "--scaling"], "--scaling"),
    ];
    for (args, named) in cases {
        let output = Command::new(VOXCPM).arg("bench").args(args).arg("--model").arg(&checkpoint).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains(named), "{args:?}: {stderr}");
    }
}

/// `bench --concurrency` runs each concurrency (ascending, once) as the same lines one at a
/// time on a server that never batches and through the running batch, then a line joining the
/// batch, then the stages of a step; its numbers agree with each other.
#[test]
fn bench_concurrency_reports_batched_runs_against_one_at_a_time() {
    let checkpoint = fixtures().join("tiny/checkpoint");
    let output = Command::new(VOXCPM)
        .args(["bench", "--concurrency", "2,1,2", "--line-seconds", "0.5", "--steps", "2", "--model"])
        .arg(&checkpoint)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let options = &report["options"];
    assert_eq!(options["concurrency"], serde_json::json!([1, 2]));
    // 0.5 s in 0.16 s patches, rounded up; a fixed length.
    assert_eq!(options["line_patches"], 4);
    let line_audio = options["line_audio_seconds"].as_f64().unwrap();
    assert!((line_audio - 0.64).abs() < 1e-9, "{line_audio}");

    let today = Command::new("date").args(["-u", "+%F"]).output().unwrap();
    assert!(report["date"].as_str().unwrap().starts_with(String::from_utf8_lossy(&today.stdout).trim()));
    assert_eq!(report["load_average_before"].as_array().map(Vec::len), Some(3));
    // The tiny checkpoint: 2 + 2 layers, 2 KV heads of 16, the text's tokens, the audio-start
    // token and 3 of the 4 patches.
    let positions = options["text_tokens"].as_u64().unwrap() + 4;
    assert_eq!(report["kv_cache"]["positions"], positions);
    assert_eq!(report["kv_cache"]["bytes_per_line"], 4 * 2 * 2 * 16 * positions * 4);

    // The baseline server never batched; the other took the batch of 2 and the line that
    // joined it.
    assert_eq!(report["one_at_a_time_server"]["peak_batch"], 1);
    assert_eq!(report["batching_server"]["peak_batch"], 3);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for (run, concurrency) in runs.iter().zip([1u64, 2]) {
        assert_eq!((&run["concurrency"], &run["lines"]), (&concurrency.into(), &concurrency.into()));
        let baseline = &run["one_at_a_time"];
        assert_eq!(baseline["lines"], concurrency);
        let baseline_rate = baseline["lines_per_minute"].as_f64().unwrap();
        assert_eq!(run["first_chunk_seconds"]["each"].as_array().map(Vec::len), Some(concurrency as usize));
        let audio = run["audio_seconds"].as_f64().unwrap();
        assert!((audio - line_audio * concurrency as f64).abs() < 1e-9, "{run}");
        let (rate, wall) = (run["lines_per_minute"].as_f64().unwrap(), run["wall_seconds"].as_f64().unwrap());
        assert!((rate - concurrency as f64 * 60.0 / wall).abs() < 1e-6 * rate, "{run}");
        let speedup = run["speedup_lines_per_minute"].as_f64().unwrap();
        assert!((speedup - rate / baseline_rate).abs() < 1e-9, "{run}");
        assert!(run["joining_line"]["time_to_first_chunk_seconds"].as_f64().unwrap() > 0.0, "{run}");
        assert!(run["conditions"]["peak_rss_bytes"].as_u64().unwrap() > 0, "{run}");
    }
    // The stages of one step, at each concurrency.
    let stages = report["stages_per_step"]["steps"].as_array().unwrap();
    let timed: Vec<_> = stages.iter().map(|row| row["concurrency"].as_u64()).collect();
    assert_eq!(timed, [Some(1), Some(2)]);
    for row in stages {
        let parts: f64 =
            ["base_lm_step", "residual_lm_step", "loc_enc", "dit_calls"].iter().map(|k| row[k].as_f64().unwrap()).sum();
        assert!((parts - row["total"].as_f64().unwrap()).abs() < 1e-9, "{row}");
    }
}
