//! `voxcpm`: the command-line front end over the engine library.

mod batch;
mod bench;
mod bridge;
mod info;
mod normalize;
mod say;
mod setup;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use voxcpm_engine::hub;
use voxcpm_engine::parity::ParityCase;
use voxcpm_engine::pipeline::{SpeechOptions, TextToSpeech};
use voxcpm_engine::runtime::Precision;
use voxcpm_engine::synthetic::{Preset, WeightDtype, preset_config, write_checkpoint};

#[derive(Parser)]
#[command(name = "voxcpm", version, about = "Native VoxCPM2 text-to-speech")]
struct Cli {
    /// Log what the engine does (device choice, retries) to stderr.
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

/// Which model and device to run on.
#[derive(Args, Clone)]
pub struct EngineArgs {
    /// Checkpoint directory or Hugging Face repo id; default: $VOXCPM_MODEL, then a copy
    /// downloaded by `voxcpm fetch`, then the random-weight demo checkpoint.
    #[arg(long)]
    pub model: Option<String>,
    /// cpu, gpu, cuda, cuda:N, vulkan, mps or wgpu; GPUs need a build with `--features wgpu`
    /// and fall back to cpu when unavailable.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// What the model computes in: f32; f16 on a GPU; bf16 on the cpu (bf16 products summed
    /// in f32, the official bf16 arithmetic, 1.25-1.4x faster on CPUs with AVX-512 BF16).
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    pub precision: Precision,
    /// A LoRA adapter directory (lora_weights.safetensors + lora_config.json) to apply.
    #[arg(long)]
    pub lora: Option<PathBuf>,
}

fn parse_precision(name: &str) -> Result<Precision, String> {
    Precision::parse(name).map_err(|e| e.to_string())
}

/// How to speak: the official generation options.
#[derive(Args, Clone)]
pub struct VoiceArgs {
    /// Classifier-free guidance scale (the official docs suggest 1.0 to 3.0).
    #[arg(long, default_value_t = 2.0)]
    pub cfg: f32,
    /// Flow-matching steps per patch (the official docs suggest 4 to 30).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Patches (160 ms each) generated before the model may end the line.
    #[arg(long, default_value_t = 2)]
    pub min_len: usize,
    /// Upper bound on generated patches.
    #[arg(long, default_value_t = 4096)]
    pub max_len: usize,
    /// Do not regenerate lines whose audio is far too long for their text.
    #[arg(long)]
    pub no_retry: bool,
    /// Say numbers, dates, money, units and abbreviations as words first (English and
    /// Chinese; `voxcpm normalize TEXT` shows the result).
    #[arg(long)]
    pub normalize: bool,
    /// Denoise the --voice / --prompt-wav clips (RNNoise, then -20 LUFS) before cloning.
    #[arg(long)]
    pub denoise: bool,
}

impl VoiceArgs {
    pub fn speech_options(&self) -> SpeechOptions {
        SpeechOptions {
            cfg_value: self.cfg,
            inference_timesteps: self.steps,
            min_len: self.min_len,
            max_len: self.max_len,
            retry_badcase: !self.no_retry,
            ..SpeechOptions::default()
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Speak a line of text into a WAV file (48 kHz, 32-bit float).
    Say(say::SayArgs),
    /// Render a script of voice lines (TSV or CSV) to one WAV per line, plus a manifest.
    Batch(batch::BatchArgs),
    /// Print TEXT as `--normalize` speaks it (numbers, dates, units... as words). With "-",
    /// normalise standard input line by line.
    Normalize(normalize::NormalizeArgs),
    /// Show which model and device would be used, and load it to check it.
    Info {
        #[command(flatten)]
        engine: EngineArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Download a model from Hugging Face into the local cache (default: openbmb/VoxCPM2).
    Fetch {
        #[arg(default_value = hub::DEFAULT_REPO)]
        repo: String,
    },
    /// Write a random-weight checkpoint in the official layout (for benchmarks and load tests).
    MakeCheckpoint {
        /// `full` (the released VoxCPM2 shapes, 2.29 B parameters) or `mid`.
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
    },
    /// Time each stage of one generated patch and streaming latency; print JSON.
    Bench(bench::BenchArgs),
    /// Serve the VoxCPMEx v2.1 protocol on stdin/stdout (a drop-in for its Python bridge).
    /// Writes nothing but frames; logs go to --log, or nowhere.
    Bridge {
        /// Append a log of requests and errors to this file.
        #[arg(long)]
        log: Option<PathBuf>,
    },
    /// Run a parity case recorded from the official implementation and write the engine's output.
    Parity {
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
    },
}

/// glibc raises its mmap threshold each time a large block is freed, so after loading the
/// weights (and after every big activation) large blocks come from the heap and are neither
/// returned to the system nor reused well: resident memory doubles when a model is reloaded,
/// and steps slow down with page faults. A fixed 4 MB threshold keeps big blocks mapped (freed
/// at once), and a 64 MB trim threshold keeps the heap that an inference step reuses instead
/// of handing it back and faulting it in again on the next step. Only this binary does it;
/// the library never tunes the allocator of the process it lives in (a DAW, say).
fn pin_large_allocations_to_mmap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called first thing, single-threaded.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

/// Warnings to stderr (everything from INFO with `--verbose`). The GPU stack's own diagnostics
/// only with `--verbose`: wgpu reports every graphics API it probes and cannot open (an
/// "EGL ... failed to load driver" ERROR on a Vulkan-only machine), which is noise when the
/// adapter it settles on works; a device that does not work is reported by the engine.
fn init_logging(verbose: bool) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let level = if verbose { LevelFilter::INFO } else { LevelFilter::WARN };
    let gpu_stack = if verbose { level } else { LevelFilter::OFF };
    let filter = Targets::new()
        .with_default(level)
        .with_target("wgpu_hal", gpu_stack)
        .with_target("wgpu_core", gpu_stack)
        .with_target("naga", gpu_stack);
    let output = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false);
    tracing_subscriber::registry().with(output.with_filter(filter)).init();
}

/// A panic is a bug in voxcpm, never the user's input, and it is caught and answered as an
/// error where it happens: one line that says so instead of the default hook's message and
/// backtrace hint. `RUST_BACKTRACE` keeps the default hook, for whoever debugs it.
fn report_panics_briefly() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let message = voxcpm_engine::error::panic_message(info.payload());
        eprintln!("voxcpm: internal error ({message}); this is a bug, please report it (RUST_BACKTRACE=1 shows where)");
    }));
}

fn main() -> ExitCode {
    pin_large_allocations_to_mmap();
    let cli = Cli::parse();
    if let Command::Bridge { log } = cli.command {
        // The bridge owns stdout and stderr (see bridge.rs); it reports failures as frames.
        return bridge::run(log).unwrap_or(ExitCode::FAILURE);
    }
    init_logging(cli.verbose);
    report_panics_briefly();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Say(args) => say::run(args)?,
        Command::Batch(args) => return batch::run(args),
        Command::Normalize(args) => return normalize::run(args),
        Command::Info { engine, json } => info::run(engine, json)?,
        Command::Fetch { repo } => {
            let dir = hub::fetch(&repo, true)?;
            println!("{}", dir.display());
            if repo == hub::DEFAULT_REPO {
                eprintln!("voxcpm now uses this copy when no --model or VOXCPM_MODEL is given");
            }
        }
        Command::MakeCheckpoint { preset, out, bf16, seed } => {
            let dtype = if bf16 { WeightDtype::BF16 } else { WeightDtype::F32 };
            write_checkpoint(
                &preset_config(preset),
                &out,
                dtype,
                Path::new(voxcpm_engine::hub::DEMO_CHECKPOINT),
                seed,
            )?;
            eprintln!("wrote {preset:?} checkpoint to {}", out.display());
        }
        Command::Bench(args) => println!("{}", serde_json::to_string_pretty(&bench::run(args)?)?),
        Command::Bridge { .. } => unreachable!("handled in main"),
        Command::Parity { model, case, out, lora } => {
            let device = burn::tensor::Device::flex();
            let mut tts =
                TextToSpeech::load(&model, &device).with_context(|| format!("loading {}", model.display()))?;
            if let Some(dir) = lora {
                let (loaded, skipped) = tts.load_lora(&dir)?;
                eprintln!("LoRA {}: {loaded} tensors loaded, {skipped} skipped", dir.display());
            }
            let output = ParityCase::read(&case)?.run(&tts, &case)?;
            output.write(&out)?;
            eprintln!("wrote {} ({} samples of audio)", out.display(), output.audio.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}
