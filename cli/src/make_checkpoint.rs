//! `voxcpm make-checkpoint`: random weights in the official layout, for benchmarks and load
//! tests at the released model's size without downloading it.

use std::path::{Path, PathBuf};

use voxcpm_engine::hub;
use voxcpm_engine::testkit::synthetic::{Preset, WeightDtype, preset_config, write_checkpoint};

#[derive(clap::Args)]
pub struct MakeCheckpointArgs {
    /// `full` (the released VoxCPM2 shapes, 2.29 B parameters), `mid`, or the released v1
    /// shapes `voxcpm-0.5b` and `voxcpm1.5`.
    #[arg(long, default_value = "full")]
    preset: Preset,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Store model.safetensors in bf16 (as released) instead of f32.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    bf16: bool,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(args: MakeCheckpointArgs) -> anyhow::Result<()> {
    let dtype = if args.bf16 { WeightDtype::BF16 } else { WeightDtype::F32 };
    // The tokenizer files are copied from the demo checkpoint: a preset describes only shapes.
    let tokenizer_dir = Path::new(hub::DEMO_CHECKPOINT);
    write_checkpoint(&preset_config(args.preset), &args.out, dtype, tokenizer_dir, args.seed)?;
    eprintln!("wrote {:?} checkpoint to {}", args.preset, args.out.display());
    Ok(())
}
