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
