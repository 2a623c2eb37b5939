//! `voxcpm bridge`: the VoxCPMEx v2.1 bridge on stdin/stdout.
//!
//! Only frames may reach stdout, and (for VoxCPMEx 0.3.0, which merges stderr into the frame
//! stream) nothing may reach stderr. So the bridge keeps a private duplicate of stdout for its
//! frames and points file descriptors 1 and 2 at the log file, or at /dev/null without one:
//! a stray print from any library, or a panic message, cannot corrupt the stream.

use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{Sender, channel};

use anyhow::Context;
use voxcpm_engine::bridge::{Event, Shutdown, serve, spawn_reader};

#[derive(clap::Args)]
pub struct BridgeArgs {
    /// Append a log of requests and errors to this file.
    #[arg(long)]
    log: Option<PathBuf>,
}

pub fn run(args: BridgeArgs) -> anyhow::Result<ExitCode> {
    let sink = match &args.log {
        Some(path) => OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening log {}", path.display()))?,
        None => OpenOptions::new().write(true).open(null_device()).context("opening the null device")?,
    };
    if args.log.is_some() {
        let writer = sink.try_clone()?;
        tracing_subscriber::fmt().with_writer(std::sync::Mutex::new(writer)).with_ansi(false).init();
    }
    std::panic::set_hook(Box::new(|info| tracing::error!(%info, "panic")));
    let frames = private_stdout(&sink)?;

    let shutdown = Shutdown::default();
    let (events, receiver) = channel();
    spawn_reader(std::io::stdin(), events.clone(), shutdown.clone());
    watch_signals(events, shutdown.clone())?;
    tracing::info!("bridge ready for frames");
    let code = serve(receiver, BufWriter::new(frames), shutdown);
    tracing::info!(code, "bridge exits");
    Ok(ExitCode::from(code as u8))
}

fn null_device() -> &'static str {
    if cfg!(windows) { "NUL" } else { "/dev/null" }
}

/// A handle on the original stdout for frames; fds 1 and 2 then point at `sink`.
#[cfg(unix)]
fn private_stdout(sink: &File) -> anyhow::Result<File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: dup/dup2 on the process's own standard descriptors; the duplicate is owned by
    // the returned File alone, and nothing else holds fd 1 or 2 open as a Rust object.
    unsafe {
        let frames = libc::dup(1);
        anyhow::ensure!(frames >= 0, "cannot duplicate stdout: {}", std::io::Error::last_os_error());
        for fd in [1, 2] {
            anyhow::ensure!(
                libc::dup2(sink.as_raw_fd(), fd) >= 0,
                "cannot redirect fd {fd}: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(File::from_raw_fd(frames))
    }
}

#[cfg(not(unix))]
fn private_stdout(_sink: &File) -> anyhow::Result<std::io::Stdout> {
    Ok(std::io::stdout())
}

/// SIGTERM and SIGINT stop the bridge: the running generation is cancelled and it exits.
#[cfg(unix)]
fn watch_signals(events: Sender<Event>, shutdown: Shutdown) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).context("installing signal handlers")?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            tracing::info!(signal, "signal received; stopping");
            let _ = events.send(Event::Terminate);
            shutdown.trigger();
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn watch_signals(_events: Sender<Event>, _shutdown: Shutdown) -> anyhow::Result<()> {
    Ok(())
}
