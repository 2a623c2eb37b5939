//! Project chores: `cargo xtask <task>`.

const USAGE: &str = "cargo xtask <task>

tasks:
  bundle voxcpm-plugin [--release] [cargo build args]
          build the plugin and write target/bundled/VoxCPM.clap, VoxCPM.vst3 and the
          VoxCPM standalone (with --features standalone)
  help    this list";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some("bundle") => {
            nice_plug_xtask::main_with_args("cargo xtask", std::iter::once("bundle".to_owned()).chain(args))
        }
        Some(other) => anyhow::bail!("unknown task {other:?}\n\n{USAGE}"),
    }
}
