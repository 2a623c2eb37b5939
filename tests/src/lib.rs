//! Helpers for the host tests: the bundled plugin, the demo model and the engine's own render
//! of a line, which what a host hears must match.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub mod clap;
pub mod plugin_hooks;
pub mod realtime;
pub mod syscall_watch;

use voxcpm_engine::audio_io::resample;
use voxcpm_engine::runtime::{GenerateOptions, Server, ServerOptions};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

/// The random-weight demo checkpoint the tests run on (VoxCPM2, 48 kHz).
pub fn demo_model() -> PathBuf {
    workspace().join("assets/demo-checkpoint")
}

/// One of the engine's fixture checkpoints (`engine/tests/fixtures/<name>/checkpoint`), e.g.
/// the v1 ones: `v1_tiny` (16 kHz, as VoxCPM-0.5B) and `v1_odd` (44.1 kHz, as VoxCPM1.5).
pub fn fixture_model(name: &str) -> PathBuf {
    workspace().join("engine/tests/fixtures").join(name).join("checkpoint")
}

/// Points the plugin (loaded into this process) at the demo model, a fresh render cache and a
/// log file (`NICE_LOG`, read by [`plugin_log`]). Call before loading the plugin; returns the
/// folder holding both (kept for the process's life).
pub fn isolate_plugin_environment() -> &'static Path {
    static SCRATCH: OnceLock<tempfile::TempDir> = OnceLock::new();
    SCRATCH
        .get_or_init(|| {
            let scratch = tempfile::tempdir().expect("temp dir");
            // SAFETY: set once, before the plugin's threads exist.
            unsafe {
                std::env::set_var("VOXCPM_MODEL", demo_model());
                std::env::set_var("VOXCPM_RENDER_CACHE", scratch.path().join("renders"));
                std::env::set_var("NICE_LOG", scratch.path().join("plugin.log"));
            }
            scratch
        })
        .path()
}

/// Everything the plugin has logged in this process so far.
pub fn plugin_log() -> String {
    std::fs::read_to_string(isolate_plugin_environment().join("plugin.log")).unwrap_or_default()
}

/// Waits up to `timeout` for `text` to appear in the plugin's log.
pub fn wait_for_log(text: &str, timeout: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if plugin_log().contains(text) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// The build's profile folder (`target/debug`, `target/release`): where this executable lives,
/// or its parent for test binaries in `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let dir = exe.parent().expect("executable folder");
    if dir.ends_with("deps") { dir.parent().expect("profile folder") } else { dir }.to_owned()
}

/// Set in a test's child process: the bundle its parent made and has loaded, which the child
/// must not rewrite.
pub const PARENT_BUNDLE: &str = "VOXCPM_HOST_TEST_PARENT_BUNDLE";

/// Bundles the plugin built for these tests with nice-plug-xtask (the code behind
/// `cargo xtask bundle`) and returns `target/bundled`.
pub fn bundled_plugin() -> PathBuf {
    static BUNDLED: OnceLock<PathBuf> = OnceLock::new();
    BUNDLED
        .get_or_init(|| {
            if let Some(parents) = std::env::var_os(PARENT_BUNDLE) {
                return PathBuf::from(parents);
            }
            let profile = profile_dir();
            let target = profile.parent().expect("target dir").to_owned();
            let library = profile.join("libvoxcpm_plugin.so");
            // Built as a dependency, the library may sit only in deps/.
            let in_deps = profile.join("deps/libvoxcpm_plugin.so");
            if in_deps.is_file() && (!library.is_file() || modified(&in_deps) > modified(&library)) {
                std::fs::copy(&in_deps, &library).expect("copy the plugin library");
            }
            nice_plug_xtask::chdir_workspace_root().expect("workspace root");
            let args = if profile.ends_with("release") { vec!["--release".to_owned()] } else { Vec::new() };
            nice_plug_xtask::bundle(&target, "voxcpm-plugin", &args, false).expect("bundle the plugin");
            target.join("bundled")
        })
        .clone()
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).and_then(|m| m.modified()).expect("file time")
}

/// What the engine renders for `text` on `model` with the plugin's default settings (cfg 2,
/// 10 steps, seed 1), resampled from the model's rate to `host_rate` as the engine's offline
/// resampler does.
pub fn engine_render(model: &Path, text: &str, host_rate: u32) -> Vec<f32> {
    let server = Server::start(ServerOptions::new(model.display().to_string())).expect("server");
    server.await_ready(std::time::Duration::from_secs(120)).expect("the model loads");
    let options = GenerateOptions { seed: Some(1), ..GenerateOptions::default() };
    let speech = server.generate(text, &options).expect("engine render");
    resample(&speech.samples, speech.sample_rate, host_rate).expect("resample")
}
