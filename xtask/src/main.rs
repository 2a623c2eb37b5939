//! Project chores: `cargo xtask <task>`.
//!
//! `build` and `bundle` compile the same packages with the same arguments in one `cargo build`,
//! so the bundle reuses the set-up build (`scripts/speak` runs `cargo xtask build --release`)
//! instead of compiling the dependency graph again: cargo resolves features per invocation, and
//! building the CLI and the plugin apart gives shared crates (tracing, log, libc, and through
//! them burn and the engine) different feature sets, each compiled once per set.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

const USAGE: &str = "cargo xtask <task>

tasks:
  build [cargo build args]
          build what users run: the voxcpm CLI and the plugin, in one cargo build
  bundle voxcpm-plugin [cargo build args]
          the same build, then target/bundled/VoxCPM.clap, VoxCPM.vst3 and the VoxCPM
          standalone
  help    this list";

/// What users run, built together so that every shared crate is compiled once.
const RELEASE_SET: [&str; 2] = ["voxcpm-cli", "voxcpm-plugin"];
/// The package whose library is the plugin.
const PLUGIN: &str = "voxcpm-plugin";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some("build") => build(args.collect()),
        Some("bundle") => {
            match args.next().as_deref() {
                Some(PLUGIN) => {}
                other => bail!("bundle takes the package {PLUGIN}, got {other:?}\n\n{USAGE}"),
            }
            let cargo_args: Vec<String> = args.collect();
            build(cargo_args.clone())?;
            nice_plug_xtask::bundle(&target_dir()?, PLUGIN, &cargo_args, false)
        }
        Some(other) => bail!("unknown task {other:?}\n\n{USAGE}"),
    }
}

/// Builds [`RELEASE_SET`] from the workspace root with `cargo_args` (e.g. `--release`).
fn build(cargo_args: Vec<String>) -> anyhow::Result<()> {
    nice_plug_xtask::chdir_workspace_root()?;
    let packages = RELEASE_SET.map(str::to_owned);
    nice_plug_xtask::build(&packages, &cargo_args)
}

/// Where cargo puts build outputs (a `build.target-dir` or `CARGO_TARGET_DIR` included).
fn target_dir() -> anyhow::Result<PathBuf> {
    let output = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).context("reading cargo metadata")?;
    let dir = metadata["target_directory"].as_str().context("cargo metadata names no target_directory")?;
    Ok(PathBuf::from(dir))
}
