//! `voxcpm info`: which model and device a command would use, checked by loading it.

use voxcpm_engine::runtime::Status;

use crate::args::EngineArgs;
use crate::setup;

#[derive(clap::Args)]
pub struct InfoArgs {
    #[command(flatten)]
    engine: EngineArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    let (server, choice) = setup::start_server(&args.engine, false)?;
    let info = server.info();
    let status = match &info.status {
        Status::Ready => "ready".to_owned(),
        Status::Loading => "loading".to_owned(),
        Status::Failed(message) => format!("failed: {message}"),
        Status::Stopped => "stopped".to_owned(),
    };
    let dir = info.model_dir.as_ref().map(|d| d.display().to_string());
    // The CPU kernel level (`VOXCPM_KERNEL` can choose a lower one), or why it is unusable.
    let kernels = match &info.cpu_kernels {
        Ok(level) => level.to_string(),
        Err(error) => format!("unusable: {error}"),
    };
    if args.json {
        let report = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "model": info.model,
            "model_source": choice.source.describe(),
            "checkpoint": dir,
            "status": status,
            "device": info.device,
            "precision": info.precision.map(|p| p.name()),
            "device_note": info.device_note,
            "architecture": info.architecture.map(|a| a.to_string()),
            "sample_rate": info.sample_rate,
            "cpu_kernels": kernels,
            "denoiser": info.denoiser,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("voxcpm {}", env!("CARGO_PKG_VERSION"));
    let field = |label: &str, value: String| println!("{:<14}{value}", format!("{label}:"));
    field("model", format!("{} ({})", info.model, choice.source.describe()));
    field("checkpoint", dir.unwrap_or_else(|| "-".into()));
    field("status", status);
    let note = info.device_note.map(|n| format!(" ({n})")).unwrap_or_default();
    let precision = info.precision.map_or("-", |p| p.name());
    field("device", format!("{} ({precision}){note}", info.device.as_deref().unwrap_or("-")));
    field("architecture", info.architecture.map_or("-".into(), |a| a.to_string()));
    field("sample rate", info.sample_rate.map_or("-".into(), |r| format!("{r} Hz")));
    field("cpu kernels", kernels);
    field("denoiser", if info.denoiser { "loaded" } else { "none" }.into());
    Ok(())
}
