//! The `voxcpm` binary as users run it: its commands, and its bridge driven over pipes. One test
//! target for both, since linking a test executable is most of a cold build.

// The engine's test helpers and fixtures, shared rather than copied.
#[path = "../../../engine/tests/common/mod.rs"]
mod common;

mod batch_jobs;
mod batch_shards;
mod bridge;
mod commands;
mod engine_options;
mod fetch;
mod v1_models;

/// The binary under test, built by Cargo for this package's tests.
const VOXCPM: &str = env!("CARGO_BIN_EXE_voxcpm");

/// `voxcpm say hello --model MODEL -o OUT` fails with exactly one line on stderr that names
/// `expected`, without a panic message, and writes no file.
fn assert_say_fails_in_one_line(model: &std::path::Path, out: &std::path::Path, expected: &str) {
    let output = std::process::Command::new(VOXCPM)
        .args(["say", "hello", "--model"])
        .arg(model)
        .arg("-o")
        .arg(out)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(expected), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("internal"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!out.exists(), "{} was written", out.display());
}
