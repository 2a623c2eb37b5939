//! `voxcpm say`: one line of text to a WAV file, whole or streamed as it is generated.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use voxcpm_engine::runtime::{GenerateOptions, Server, SpeechStream};
use voxcpm_engine::wav::{WavFileWriter, write_float_file};

use crate::args::{EngineArgs, VoiceArgs};
use crate::setup;

#[derive(clap::Args)]
pub struct SayArgs {
    /// The text to speak.
    text: String,
    /// Output WAV path; with --stream, "-" writes raw 32-bit float samples to stdout.
    #[arg(short, long, default_value = "out.wav")]
    output: PathBuf,
    /// Write the audio as it is generated, one patch at a time (160 ms for VoxCPM2 and
    /// VoxCPM1.5, 80 ms for VoxCPM-0.5B). The file is a valid WAV at every moment. Never retries.
    #[arg(long)]
    stream: bool,
    /// Reference clip (WAV, any rate and channels) whose voice to clone; needs a VoxCPM2 model.
    #[arg(long)]
    voice: Option<PathBuf>,
    /// Prompt clip to continue from (WAV); needs --prompt-text.
    #[arg(long, requires = "prompt_text")]
    prompt_wav: Option<PathBuf>,
    /// Transcript of --prompt-wav.
    #[arg(long, requires = "prompt_wav")]
    prompt_text: Option<String>,
    /// Seed of the sampling noise; the same seed gives the same audio. Default: a fresh one,
    /// printed so that a take can be reproduced.
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    voice_args: VoiceArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: SayArgs) -> anyhow::Result<()> {
    // --denoise loads the denoiser too: a CLI user expects the flag alone to work.
    let (server, _) = setup::start_server(&args.engine, args.voice_args.denoise)?;
    if args.voice.is_some() {
        setup::check_reference_clip(&server, "--voice").map_err(anyhow::Error::msg)?;
    }
    let options = GenerateOptions {
        audio_prompt: args.voice.clone(),
        prompt_wav_path: args.prompt_wav.clone(),
        prompt_text: args.prompt_text.clone(),
        speech: args.voice_args.speech_options(),
        normalize: args.voice_args.normalize,
        denoise: args.voice_args.denoise,
        seed: args.seed,
    };
    if args.stream {
        let stream = server.generate_streaming(&args.text, &options)?;
        return stream_out(stream, &args.output);
    }
    generate_to_file(&server, &args, &options)
}

fn generate_to_file(server: &Server, args: &SayArgs, options: &GenerateOptions) -> anyhow::Result<()> {
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} patch {pos}/{len} {msg} [{elapsed}]").expect("valid template"),
    );
    let progress = bar.clone();
    let speech = server.generate_with_progress(&args.text, options, move |p| {
        progress.set_length(p.cap as u64);
        progress.set_position(p.patches as u64);
        if p.attempt > 1 {
            progress.set_message(format!("retry {} (the last take was too long for the text)", p.attempt - 1));
        }
        std::ops::ControlFlow::Continue(())
    });
    bar.finish_and_clear();
    let speech = speech?;
    write_float_file(&args.output, &speech.samples, speech.sample_rate)?;
    eprintln!("wrote {} ({:.2} s, seed {})", args.output.display(), speech.duration_secs(), speech.seed);
    Ok(())
}

/// Chunks to a WAV file (header updated after each) or raw f32 to stdout.
fn stream_out(mut stream: SpeechStream, output: &Path) -> anyhow::Result<()> {
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} streamed {pos} chunks [{elapsed}]").expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let seed = stream.seed();
    let mut samples = 0;
    let result = if output.as_os_str() == "-" {
        let mut stdout = std::io::stdout().lock();
        pump(&mut stream, &bar, &mut samples, |chunk| {
            let bytes: Vec<u8> = chunk.iter().flat_map(|x| x.to_le_bytes()).collect();
            stdout.write_all(&bytes).and_then(|()| stdout.flush()).context("writing to stdout")
        })
    } else {
        let first = stream.next_chunk()?;
        let rate = stream.sample_rate().context("the stream ended before it started")?;
        let mut file = WavFileWriter::create(output, rate)?;
        let mut write = |chunk: &[f32]| file.append(chunk).map_err(anyhow::Error::from);
        if let Some(chunk) = first {
            samples += chunk.len();
            bar.inc(1);
            write(&chunk)?;
        }
        let result = pump(&mut stream, &bar, &mut samples, write);
        let finished = file.finish();
        result.and_then(|()| Ok(finished?)).map_err(|e| keep_or_remove_partial(e, output, samples, rate))
    };
    bar.finish_and_clear();
    result?;
    // A stream that ended without an error has started, so its rate (the model's) is known.
    let rate = stream.sample_rate().context("the stream ended before it started")?;
    let seconds = samples as f64 / rate as f64;
    eprintln!("streamed {} ({seconds:.2} s, seed {seed})", output.display());
    Ok(())
}

/// A stream that failed half-way: audio from a model that went non-finite is not kept (the
/// chunks before the NaN came from the same damaged model); otherwise the file, valid after
/// every chunk, keeps what was streamed, and the error says so.
fn keep_or_remove_partial(error: anyhow::Error, output: &Path, samples: usize, rate: u32) -> anyhow::Error {
    if let Some(voxcpm_engine::Error::NonFinite { .. }) = error.downcast_ref() {
        return match std::fs::remove_file(output) {
            Ok(()) => error.context(format!("{} was removed", output.display())),
            Err(e) => error.context(format!("{} could not be removed ({e}): do not use it", output.display())),
        };
    }
    let seconds = samples as f64 / rate as f64;
    error.context(format!("{} keeps the {seconds:.2} s streamed before the failure", output.display()))
}

fn pump(
    stream: &mut SpeechStream,
    bar: &ProgressBar,
    samples: &mut usize,
    mut write: impl FnMut(&[f32]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    while let Some(chunk) = stream.next_chunk()? {
        write(&chunk)?;
        *samples += chunk.len();
        bar.inc(1);
    }
    Ok(())
}
