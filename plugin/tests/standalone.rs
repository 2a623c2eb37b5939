//! The standalone application, headless (`--backend dummy`, no display): it starts, loads the
//! model through the plugin, keeps running, and exits cleanly on Ctrl-C (SIGINT).
//!
//! It lives in the plugin package (not tests/) so that cargo builds the standalone binary for it
//! (`CARGO_BIN_EXE_*`); `cargo xtask bundle` only copies that same file into target/bundled.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn demo_model() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo-checkpoint")
}

#[test]
fn the_standalone_runs_headless_and_exits_cleanly_on_ctrl_c() {
    let cache = tempfile::tempdir().unwrap();
    let log = cache.path().join("standalone.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_voxcpm_plugin"))
        .args(["--backend", "dummy"])
        .env("VOXCPM_MODEL", demo_model())
        .env("VOXCPM_RENDER_CACHE", cache.path().join("renders"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start the standalone");

    // It loads the model (the plugin's worker starts on activation) and keeps running.
    let start = Instant::now();
    let read_log = || {
        let mut text = String::new();
        std::fs::File::open(&log).unwrap().read_to_string(&mut text).unwrap();
        text
    };
    while !read_log().contains("model ready") {
        assert!(child.try_wait().unwrap().is_none(), "the standalone exited early:\n{}", read_log());
        assert!(start.elapsed() < Duration::from_secs(60), "no model after 60 s:\n{}", read_log());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(child.try_wait().unwrap().is_none(), "the standalone stopped by itself:\n{}", read_log());

    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(stopped.elapsed() < Duration::from_secs(20), "no exit 20 s after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}:\n{}", read_log());
    assert!(!read_log().contains("panicked"), "{}", read_log());
}
