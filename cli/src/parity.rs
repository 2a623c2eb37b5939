//! `voxcpm parity`: replays a case recorded from the official implementation (parity-case.md)
//! on the cpu and writes what the engine made, for comparison outside Rust.

use std::path::PathBuf;

use anyhow::Context;
use voxcpm_engine::LoadOptions;
use voxcpm_engine::pipeline::TextToSpeech;
use voxcpm_engine::testkit::parity::ParityCase;

#[derive(clap::Args)]
pub struct ParityArgs {
    /// Checkpoint directory in the official layout.
    #[arg(long)]
    model: PathBuf,
    /// Case file (safetensors) as described in parity-case.md.
    #[arg(long)]
    case: PathBuf,
    /// Where to write `latents` and `audio`.
    #[arg(long)]
    out: PathBuf,
    /// A LoRA adapter directory to apply first.
    #[arg(long)]
    lora: Option<PathBuf>,
}

pub fn run(args: ParityArgs) -> anyhow::Result<()> {
    let device = burn::tensor::Device::flex();
    let mut tts = TextToSpeech::load(&args.model, &LoadOptions::on(&device))
        .with_context(|| format!("loading {}", args.model.display()))?;
    if let Some(dir) = &args.lora {
        let (loaded, skipped) = tts.load_lora(dir)?;
        eprintln!("LoRA {}: {loaded} tensors loaded, {skipped} skipped", dir.display());
    }
    let output = ParityCase::read(&args.case)?.run(&tts, &args.case)?;
    output.write(&args.out)?;
    eprintln!("wrote {} ({} samples of audio)", args.out.display(), output.audio.len());
    Ok(())
}
