//! `voxcpm fetch`: a Hugging Face model into the local cache, where later commands find it.
//! An interrupted fetch (Ctrl-C, a dropped connection) resumes when run again.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};
use voxcpm_engine::hub::{self, DownloadProgress, Downloader, HubLocation};

#[derive(clap::Args)]
pub struct FetchArgs {
    /// The Hugging Face repository to download (`voxcpm models` lists the releases).
    #[arg(default_value = hub::DEFAULT_REPO)]
    repo: String,
}

pub fn run(args: FetchArgs) -> anyhow::Result<()> {
    let bar = ProgressBar::new(0)
        .with_style(ProgressStyle::with_template("{wide_bar} {bytes}/{total_bytes} {msg}").expect("valid template"));
    let never = AtomicBool::new(false);
    let fetched = Downloader::new(HubLocation::from_env()).download(&args.repo, &never, &mut |p| show(&bar, p));
    bar.finish_and_clear();
    let dir = fetched?;
    println!("{}", dir.display());
    if args.repo == hub::DEFAULT_REPO {
        eprintln!("voxcpm now uses this copy when no --model or VOXCPM_MODEL is given");
    }
    Ok(())
}

/// Bytes over all files on the bar; rate, time left and the current file beside it.
fn show(bar: &ProgressBar, progress: &DownloadProgress) {
    bar.set_length(progress.total_bytes);
    bar.set_position(progress.done_bytes);
    let left = progress.seconds_left.filter(|s| s.is_finite()).map_or_else(
        || "time left unknown".to_owned(),
        |s| format!("{} left", HumanDuration(Duration::from_secs_f64(s))),
    );
    bar.set_message(format!("{}/s, {left}  {}", HumanBytes(progress.bytes_per_second as u64), progress.file));
}
