//! The options of `VoxCPMEx.Server` (start and per request), with the official defaults, and
//! their translation into an engine request.

use std::path::PathBuf;

use super::device::Precision;
use crate::audio_io::{load_clip, read_wav_mono};
use crate::config::Architecture;
use crate::denoise::Denoiser;
use crate::error::{Error, Result};
use crate::pipeline::{PromptClip, SpeechOptions, SpeechRequest, normalize_whitespace};
use crate::text;

/// [`ServerOptions::max_batch`] unless told otherwise.
pub const DEFAULT_MAX_BATCH: usize = 8;

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// A checkpoint directory or a Hugging Face repository id (downloaded when not cached).
    pub model: String,
    /// "cpu" (default), "gpu", "cuda", "cuda:N", "vulkan", "mps", "wgpu" or "auto".
    pub device: String,
    /// What a GPU computes in (f32 by default; the cpu always computes in f32).
    pub precision: Precision,
    /// Load the prompt denoiser (RNNoise, built in; see [`crate::denoise`]) at start, so that
    /// `denoise: true` requests clean their clips. Without it `denoise` is ignored and clips
    /// are used as they are, as the official code does when no denoiser is loaded.
    pub load_denoiser: bool,
    /// Accepted for VoxCPMEx compatibility (it turns on torch.compile there); no effect here.
    pub optimize: bool,
    /// The most requests that generate together (continuous batching: each step's products
    /// then take one row per request, so the weights stream from memory once for all of
    /// them). At least 1; 1 serves one request at a time.
    pub max_batch: usize,
}

impl ServerOptions {
    pub fn new(model: impl Into<String>) -> Self {
        ServerOptions {
            model: model.into(),
            device: "cpu".into(),
            precision: Precision::F32,
            load_denoiser: false,
            optimize: true,
            max_batch: DEFAULT_MAX_BATCH,
        }
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
    /// Say numbers, dates, money, units and abbreviations as words ([`crate::text`]), in the
    /// target text only (not `prompt_text`), as the official `normalize` does. A text that
    /// normalises to nothing (only emoji or markup) is an error.
    pub normalize: bool,
    /// Denoise the reference and prompt clips (and bring them to −20 LUFS) before encoding,
    /// when the server was started with `load_denoiser`; otherwise ignored, as officially.
    pub denoise: bool,
    /// Noise seed; `None` draws a fresh one (reported back with the audio).
    pub seed: Option<u64>,
}

impl GenerateOptions {
    /// Refuses what a model of `architecture` cannot do, naming the option, before any clip is
    /// read: a reference clip (`audio_prompt`) needs VoxCPM2, as in the official `VoxCPM.generate`.
    pub(crate) fn check_for(&self, architecture: Architecture) -> Result<()> {
        if self.audio_prompt.is_some() && architecture == Architecture::V1 {
            return Err(Error::InvalidInput(format!(
                "audio_prompt (a reference clip to clone) needs a VoxCPM2 model: this checkpoint's architecture \
                 is \"{architecture}\" (VoxCPM-0.5B / VoxCPM1.5), which speaks zero-shot or continues \
                 prompt_wav_path given with its prompt_text"
            )));
        }
        Ok(())
    }

    /// Reads the clips (denoised when asked and a denoiser is loaded) and builds the engine
    /// request; `encoder_rate` is the VAE input rate.
    pub(crate) fn to_request(
        &self,
        text: &str,
        encoder_rate: u32,
        denoiser: Option<&Denoiser>,
    ) -> Result<SpeechRequest> {
        self.speech.validate()?;
        let text = if self.normalize { normalized_target(text)? } else { text.to_owned() };
        let denoiser = denoiser.filter(|_| self.denoise);
        let clip = |path: &std::path::Path| match denoiser {
            Some(denoiser) => {
                let (samples, rate) = read_wav_mono(path)?;
                denoiser.clean_clip(&samples, rate, encoder_rate)
            }
            None => load_clip(path, encoder_rate),
        };
        let prompt = match (&self.prompt_wav_path, &self.prompt_text) {
            (Some(path), Some(text)) => Some(PromptClip { audio: clip(path)?, text: text.clone() }),
            (None, None) => None,
            _ => {
                return Err(Error::InvalidInput(
                    "prompt_wav_path and prompt_text must both be given or both be left out".into(),
                ));
            }
        };
        let reference_audio = self.audio_prompt.as_deref().map(clip).transpose()?;
        Ok(SpeechRequest { text, reference_audio, prompt, options: self.speech })
    }
}

/// The official order: whitespace collapsed, then the normaliser. An empty text stays empty
/// (the pipeline names that error); one that normalises to nothing is refused here.
fn normalized_target(text: &str) -> Result<String> {
    let collapsed = normalize_whitespace(text);
    if collapsed.is_empty() {
        return Ok(collapsed);
    }
    let normalized = text::normalize(&collapsed);
    if normalized.trim().is_empty() {
        return Err(Error::InvalidInput(format!(
            "normalize: nothing is left to speak after normalisation (the text holds only emoji, markup or \
             code): {:?}",
            abbreviate(text)
        )));
    }
    Ok(normalized)
}

fn abbreviate(text: &str) -> String {
    let mut short: String = text.chars().take(60).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}
