//! The options of `VoxCPMEx.Server` (start and per request), with the official defaults, and
//! their translation into an engine request.

use std::path::PathBuf;

use crate::audio_io::load_clip;
use crate::error::{Error, Result};
use crate::pipeline::{PromptClip, SpeechOptions, SpeechRequest};

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// A checkpoint directory or a Hugging Face repository id (downloaded when not cached).
    pub model: String,
    /// "cpu" (default), "gpu", "cuda", "cuda:N", "vulkan", "mps", "wgpu" or "auto".
    pub device: String,
    /// Load the prompt denoiser. No denoiser ships yet: the server starts without one, says so
    /// in the log and in `info`, and `denoise` requests leave the audio as it is (as the
    /// official code does when no denoiser is loaded).
    pub load_denoiser: bool,
    /// Accepted for VoxCPMEx compatibility (it turns on torch.compile there); no effect here.
    pub optimize: bool,
}

impl ServerOptions {
    pub fn new(model: impl Into<String>) -> Self {
        ServerOptions { model: model.into(), device: "cpu".into(), load_denoiser: false, optimize: true }
    }
}

/// Per-request options of `generate` / `generate_streaming`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateOptions {
    /// Reference clip whose voice to clone (WAV, any rate and channel count).
    pub audio_prompt: Option<PathBuf>,
    /// Continuation prompt (WAV); needs `prompt_text`.
    pub prompt_wav_path: Option<PathBuf>,
    /// Transcript of `prompt_wav_path`.
    pub prompt_text: Option<String>,
    /// cfg, timesteps, lengths and the bad-case retry.
    pub speech: SpeechOptions,
    /// Text normalisation of numbers, dates and units; not available yet, so `true` is an error.
    pub normalize: bool,
    /// Denoise the prompt clips when a denoiser is loaded.
    pub denoise: bool,
    /// Noise seed; `None` draws a fresh one (reported back with the audio).
    pub seed: Option<u64>,
}

impl GenerateOptions {
    /// Reads the clips and builds the engine request; `encoder_rate` is the VAE input rate.
    pub(crate) fn to_request(&self, text: &str, encoder_rate: u32) -> Result<SpeechRequest> {
        self.speech.validate()?;
        if self.normalize {
            return Err(Error::InvalidInput("normalize: text normalisation is not available in this version".into()));
        }
        let prompt = match (&self.prompt_wav_path, &self.prompt_text) {
            (Some(path), Some(text)) => Some(PromptClip { audio: load_clip(path, encoder_rate)?, text: text.clone() }),
            (None, None) => None,
            _ => {
                return Err(Error::InvalidInput(
                    "prompt_wav_path and prompt_text must both be given or both be left out".into(),
                ));
            }
        };
        let reference_audio = self.audio_prompt.as_deref().map(|path| load_clip(path, encoder_rate)).transpose()?;
        Ok(SpeechRequest { text: text.to_owned(), reference_audio, prompt, options: self.speech })
    }
}
