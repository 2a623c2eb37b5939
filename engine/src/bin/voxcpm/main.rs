//! `voxcpm`: the command-line front end over the engine library.

mod bench;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use voxcpm_engine::noise::SeededNoise;
use voxcpm_engine::parity::ParityCase;
use voxcpm_engine::audio_io::load_clip;
use voxcpm_engine::pipeline::{PromptClip, SpeechOptions, SpeechRequest, TextToSpeech};
use voxcpm_engine::synthetic::{Preset, WeightDtype, preset_config, write_checkpoint};

/// The random-weight demo checkpoint shipped in the repository.
const DEMO_CHECKPOINT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/demo-checkpoint");

#[derive(Parser)]
#[command(name = "voxcpm", version, about = "Native VoxCPM2 text-to-speech")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Speak a line of text into a WAV file (48 kHz, 32-bit float).
    Say {
        /// The text to speak.
        text: String,
        /// Output WAV path.
        #[arg(short, long, default_value = "out.wav")]
        output: PathBuf,
        /// Checkpoint directory; default: $VOXCPM_MODEL, else the demo checkpoint.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Reference clip (WAV, any rate and channels) whose voice to clone.
        #[arg(long)]
        voice: Option<PathBuf>,
        /// Prompt clip to continue from (WAV); needs --prompt-text.
        #[arg(long, requires = "prompt_text")]
        prompt_wav: Option<PathBuf>,
        /// Transcript of --prompt-wav.
        #[arg(long, requires = "prompt_wav")]
        prompt_text: Option<String>,
        /// Classifier-free guidance scale.
        #[arg(long, default_value_t = 2.0)]
        cfg: f32,
        /// Flow-matching steps per patch.
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Seed of the sampling noise; the same seed gives the same audio.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Patches generated before the stop head may end the line.
        #[arg(long, default_value_t = 2)]
        min_len: usize,
        /// Upper bound on generated patches (160 ms each).
        #[arg(long, default_value_t = 4096)]
        max_len: usize,
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
    /// Time each stage of one generated patch and print the result as JSON.
    Bench {
        /// Checkpoint directory; default: $VOXCPM_MODEL, else the demo checkpoint.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Flow-matching steps per patch.
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Timed repetitions per stage (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Positions already in the LM caches when a step is timed.
        #[arg(long, default_value_t = 64)]
        context: usize,
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
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let device = burn::tensor::Device::flex();
    match cli.command {
        Command::Say { text, output, model, voice, prompt_wav, prompt_text, cfg, steps, seed, min_len, max_len } => {
            let dir = resolve_model(model);
            let tts = TextToSpeech::load(&dir, &device).with_context(|| format!("loading {}", dir.display()))?;
            let rate = tts.model().config().audio_vae_config.sample_rate;
            let reference_audio = voice.map(|path| load_clip(&path, rate)).transpose()?;
            let prompt = match (prompt_wav, prompt_text) {
                (Some(path), Some(text)) => Some(PromptClip { audio: load_clip(&path, rate)?, text }),
                _ => None,
            };
            let options = SpeechOptions { cfg_value: cfg, inference_timesteps: steps, min_len, max_len, ..SpeechOptions::default() };
            let request = SpeechRequest { text, reference_audio, prompt, options };
            let audio = tts.speak(&request, &mut SeededNoise::new(seed), |p| {
                eprint!("\rpatch {} (at most {})", p.patches, p.cap);
                std::ops::ControlFlow::Continue(())
            })?;
            eprintln!();
            write_wav(&output, &audio, tts.output_sample_rate())?;
            eprintln!("wrote {} ({:.2} s)", output.display(), audio.len() as f64 / tts.output_sample_rate() as f64);
            Ok(())
        }
        Command::MakeCheckpoint { preset, out, bf16, seed } => {
            let dtype = if bf16 { WeightDtype::BF16 } else { WeightDtype::F32 };
            write_checkpoint(&preset_config(preset), &out, dtype, Path::new(DEMO_CHECKPOINT), seed)?;
            eprintln!("wrote {preset:?} checkpoint to {}", out.display());
            Ok(())
        }
        Command::Bench { model, steps, runs, context } => {
            let report = bench::run(&resolve_model(model), &device, steps, runs.max(1), context.max(1))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Parity { model, case, out } => {
            let tts = TextToSpeech::load(&model, &device).with_context(|| format!("loading {}", model.display()))?;
            let case_data = ParityCase::read(&case)?;
            let output = case_data.run(&tts, &case)?;
            output.write(&out)?;
            eprintln!(
                "wrote {} ({} samples of audio)",
                out.display(),
                output.audio.len()
            );
            Ok(())
        }
    }
}

/// `--model`, then `$VOXCPM_MODEL`, then the demo checkpoint (with a notice: it cannot speak).
fn resolve_model(flag: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = flag.or_else(|| std::env::var_os("VOXCPM_MODEL").map(PathBuf::from)) {
        return dir;
    }
    eprintln!(
        "notice: no model given (--model or VOXCPM_MODEL); using the demo checkpoint in assets/.\n\
         It has RANDOM WEIGHTS: the pipeline runs end to end but the audio is noise, not speech."
    );
    PathBuf::from(DEMO_CHECKPOINT)
}

fn write_wav(path: &Path, samples: &[f32], sample_rate: u32) -> anyhow::Result<()> {
    let spec = hound::WavSpec { channels: 1, sample_rate, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
    let mut writer = hound::WavWriter::create(path, spec).with_context(|| format!("creating {}", path.display()))?;
    for &s in samples {
        writer.write_sample(s)?;
    }
    writer.finalize().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
