//! Options shared by several subcommands. Their defaults are the engine's own
//! ([`ServerOptions::new`], [`SpeechOptions::default`]), so that the CLI, the plugin and the
//! bridge speak alike unless told otherwise.

use std::path::PathBuf;

use clap::Args;
use voxcpm_engine::pipeline::SpeechOptions;
use voxcpm_engine::runtime::{Precision, ServerOptions};

/// The runtime's defaults for everything but the model (which [`crate::setup::choose`] picks).
fn server_defaults() -> ServerOptions {
    ServerOptions::new(String::new())
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
    #[arg(long, default_value_t = server_defaults().device)]
    pub device: String,
    /// What the model computes in: f32; f16 on a GPU; bf16 on the cpu (bf16 products summed
    /// in f32, the official bf16 arithmetic, 1.25-1.4x faster on CPUs with AVX-512 BF16).
    #[arg(long, default_value = server_defaults().precision.name(), value_parser = parse_precision)]
    pub precision: Precision,
    /// A LoRA adapter directory (lora_weights.safetensors + lora_config.json) to apply.
    #[arg(long)]
    pub lora: Option<PathBuf>,
    /// The most requests the runtime generates together; not an option of its own: a command
    /// that keeps several requests in flight (`batch --jobs`) raises it to fit them.
    #[arg(skip = server_defaults().max_batch)]
    pub max_batch: usize,
}

fn parse_precision(name: &str) -> Result<Precision, String> {
    Precision::parse(name).map_err(|e| e.to_string())
}

/// How to speak: the official generation options.
#[derive(Args, Clone)]
pub struct VoiceArgs {
    /// Classifier-free guidance scale (the official docs suggest 1.0 to 3.0).
    #[arg(long, default_value_t = SpeechOptions::default().cfg_value)]
    pub cfg: f32,
    /// Flow-matching steps per patch (the official docs suggest 4 to 30).
    #[arg(long, default_value_t = SpeechOptions::default().inference_timesteps)]
    pub steps: usize,
    /// Patches (160 ms each for VoxCPM2 and VoxCPM1.5, 80 ms for VoxCPM-0.5B) generated before
    /// the model may end the line.
    #[arg(long, default_value_t = SpeechOptions::default().min_len)]
    pub min_len: usize,
    /// Upper bound on generated patches.
    #[arg(long, default_value_t = SpeechOptions::default().max_len)]
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
