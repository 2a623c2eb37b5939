//! Helpers for the host tests: the bundled plugin, the demo model and the engine's own render
//! of a line, which what a host hears must match.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use voxcpm_engine::audio_io::resample;
use voxcpm_engine::runtime::{GenerateOptions, Server, ServerOptions};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

/// The random-weight demo checkpoint the tests run on.
pub fn demo_model() -> PathBuf {
    workspace().join("assets/demo-checkpoint")
}

/// Points the plugin (loaded into this process) at the demo model and a fresh render cache.
/// Call before loading the plugin; returns the cache folder (kept for the process's life).
pub fn isolate_plugin_environment() -> &'static Path {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let cache = tempfile::tempdir().expect("temp dir");
            // SAFETY: set once, before the plugin's threads exist.
            unsafe {
                std::env::set_var("VOXCPM_MODEL", demo_model());
                std::env::set_var("VOXCPM_RENDER_CACHE", cache.path());
            }
            cache
        })
        .path()
}

/// The target folder of this build (the test binary lives in `<target>/<profile>/deps`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors().nth(3).expect("target dir").to_owned()
}

/// Bundles the plugin built for these tests with nice-plug-xtask (the code behind
/// `cargo xtask bundle`) and returns `target/bundled`.
pub fn bundled_plugin() -> PathBuf {
    static BUNDLED: OnceLock<PathBuf> = OnceLock::new();
    BUNDLED
        .get_or_init(|| {
            let target = target_dir();
            let profile = target.join(profile_name());
            let library = profile.join("libvoxcpm_plugin.so");
            // Built as a dependency, the library may sit only in deps/.
            let in_deps = profile.join("deps/libvoxcpm_plugin.so");
            if in_deps.is_file() && (!library.is_file() || modified(&in_deps) > modified(&library)) {
                std::fs::copy(&in_deps, &library).expect("copy the plugin library");
            }
            nice_plug_xtask::chdir_workspace_root().expect("workspace root");
            let args = if profile_name() == "release" { vec!["--release".to_owned()] } else { Vec::new() };
            nice_plug_xtask::bundle(&target, "voxcpm-plugin", &args, false).expect("bundle the plugin");
            target.join("bundled")
        })
        .clone()
}

fn profile_name() -> String {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors().nth(2).and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).expect("profile")
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).and_then(|m| m.modified()).expect("file time")
}

/// What the engine renders for `text` with the plugin's default settings (cfg 2, 10 steps,
/// seed 1), resampled to `host_rate` as the engine's offline resampler does.
pub fn engine_render(text: &str, host_rate: u32) -> Vec<f32> {
    let server = Server::start(ServerOptions::new(demo_model().display().to_string())).expect("server");
    server.await_ready(std::time::Duration::from_secs(120)).expect("demo model loads");
    let options = GenerateOptions { seed: Some(1), ..GenerateOptions::default() };
    let speech = server.generate(text, &options).expect("engine render");
    resample(&speech.samples, speech.sample_rate, host_rate).expect("resample")
}
