//! `voxcpm`: the command-line front end over the engine library.

mod args;
mod batch;
mod bench;
mod bridge;
mod fetch;
mod info;
mod make_checkpoint;
mod models;
mod normalize;
mod parity;
mod say;
mod setup;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "voxcpm", version, about = "Native VoxCPM text-to-speech (VoxCPM2, VoxCPM1.5, VoxCPM-0.5B)")]
struct Cli {
    /// Log what the engine does (device choice, retries) to stderr.
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Speak a line of text into a WAV file (32-bit float, at the model's rate: 48 kHz for
    /// VoxCPM2, 44.1 kHz for VoxCPM1.5, 16 kHz for VoxCPM-0.5B).
    Say(say::SayArgs),
    /// Render a script of voice lines (TSV or CSV) to one WAV per line, plus a manifest.
    Batch(batch::BatchArgs),
    /// Print TEXT as `--normalize` speaks it (numbers, dates, units... as words). With "-",
    /// normalise standard input line by line.
    Normalize(normalize::NormalizeArgs),
    /// Show which model and device would be used, and load it to check it.
    Info(info::InfoArgs),
    /// Download a model from Hugging Face into the local cache (default: openbmb/VoxCPM2).
    Fetch(fetch::FetchArgs),
    /// List the official VoxCPM releases with their size and what the local cache holds.
    Models,
    /// Write a random-weight checkpoint in the official layout (for benchmarks and load tests).
    MakeCheckpoint(make_checkpoint::MakeCheckpointArgs),
    /// Time each stage of one generated patch and streaming latency; print JSON. The device
    /// must answer: the bench never falls back to the cpu.
    Bench(bench::BenchArgs),
    /// Serve the VoxCPMEx v2.1 protocol on stdin/stdout (a drop-in for its Python bridge).
    /// Writes nothing but frames; logs go to --log, or nowhere.
    Bridge(bridge::BridgeArgs),
    /// Run a parity case recorded from the official implementation and write the engine's output.
    Parity(parity::ParityArgs),
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
    if let Command::Bridge(args) = cli.command {
        // The bridge owns stdout and stderr (see bridge.rs); it reports failures as frames.
        return bridge::run(args).unwrap_or(ExitCode::FAILURE);
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
        Command::Info(args) => info::run(args)?,
        Command::Fetch(args) => fetch::run(args)?,
        Command::Models => models::run(),
        Command::MakeCheckpoint(args) => make_checkpoint::run(args)?,
        Command::Bench(args) => println!("{}", serde_json::to_string_pretty(&bench::run(args)?)?),
        Command::Bridge(_) => unreachable!("handled in main"),
        Command::Parity(args) => parity::run(args)?,
    }
    Ok(ExitCode::SUCCESS)
}
