//! `voxcpm fetch`: a Hugging Face model into the local cache, where later commands find it.

use voxcpm_engine::hub;

#[derive(clap::Args)]
pub struct FetchArgs {
    /// The Hugging Face repository to download.
    #[arg(default_value = hub::DEFAULT_REPO)]
    repo: String,
}

pub fn run(args: FetchArgs) -> anyhow::Result<()> {
    let dir = hub::fetch(&args.repo, true)?;
    println!("{}", dir.display());
    if args.repo == hub::DEFAULT_REPO {
        eprintln!("voxcpm now uses this copy when no --model or VOXCPM_MODEL is given");
    }
    Ok(())
}
