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
            "sample_rate": info.sample_rate,
            "denoiser": info.denoiser,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("voxcpm {}", env!("CARGO_PKG_VERSION"));
    println!("model:       {} ({})", info.model, choice.source.describe());
    println!("checkpoint:  {}", dir.as_deref().unwrap_or("-"));
    println!("status:      {status}");
    let note = info.device_note.map(|n| format!(" ({n})")).unwrap_or_default();
    let precision = info.precision.map_or("-", |p| p.name());
    println!("device:      {} ({precision}){note}", info.device.as_deref().unwrap_or("-"));
    println!("sample rate: {} Hz", info.sample_rate.map_or("-".into(), |r| r.to_string()));
    println!("denoiser:    {}", if info.denoiser { "loaded" } else { "none" });
    Ok(())
}
