//! Project chores: `cargo xtask <task>`. Bundling of the plugin arrives with the plugin crate.

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1);
    match task.as_deref() {
        Some("help") | None => {
            println!("cargo xtask <task>\n\ntasks:\n  help    this list");
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown task {other:?} (try `cargo xtask help`)"),
    }
}
