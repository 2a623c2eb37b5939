//! Text in, samples at the model's output rate out (48 kHz for VoxCPM2, 16 kHz for
//! VoxCPM-0.5B, 44.1 kHz for VoxCPM1.5): the tokenizer, the network and the VAE decoder put
//! together the way the official `VoxCPM.generate` does (§6.5).
//!
//! Where the architectures differ here: a reference clip needs VoxCPM2; the prompt patches that
//! seed the decoder (3 in v2, 2 in v1) and the audio cut from the front (v2: exactly theirs; v1:
//! a fixed two patches' worth); what the bad-case check counts; and what a stream starts from
//! (see [`TextToSpeech::speak_streaming`]).

use std::ops::ControlFlow;
use std::path::Path;

use burn::tensor::{Tensor, TensorData};

use crate::clip::{ClipCache, ClipPadding, pad_to_whole_patches};
use crate::config::Architecture;
use crate::error::{Error, Result, ensure_finite};
use crate::model::nn::to_vec;
use crate::model::{
    AUDIO_START, CfmSettings, DEFAULT_RATIO_THRESHOLD, GenerationSettings, LoadOptions, Sequence, VoxCpm, patch_cap,
};
use crate::noise::NoiseSource;
use crate::tokenizer::TextTokenizer;

mod utterance;

pub use utterance::{Delivery, Step, Utterance};

/// Per-request options, with the defaults of the official `VoxCPM.generate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeechOptions {
    pub cfg_value: f32,
    pub inference_timesteps: usize,
    pub min_len: usize,
    pub max_len: usize,
    /// Regenerate when the audio is too long for its text (a "bad case": at least
    /// `retry_badcase_ratio_threshold` patches per target token), up to
    /// `retry_badcase_max_times` runs in all, keeping the last. Streaming never retries.
    pub retry_badcase: bool,
    pub retry_badcase_max_times: usize,
    /// Patches per target token; also sets the cap on generated patches.
    pub retry_badcase_ratio_threshold: f64,
}

impl Default for SpeechOptions {
    fn default() -> Self {
        SpeechOptions {
            cfg_value: 2.0,
            inference_timesteps: 10,
            min_len: 2,
            max_len: 4096,
            retry_badcase: true,
            retry_badcase_max_times: 3,
            retry_badcase_ratio_threshold: DEFAULT_RATIO_THRESHOLD,
        }
    }
}

impl SpeechOptions {
    /// Rejects values the model cannot run with, naming the option.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidInput(m));
        if !self.cfg_value.is_finite() {
            return bad(format!("cfg_value must be a finite number, got {}", self.cfg_value));
        }
        if self.inference_timesteps == 0 || self.inference_timesteps > 1000 {
            return bad(format!("inference_timesteps must be in 1..=1000, got {}", self.inference_timesteps));
        }
        if self.max_len == 0 {
            return bad("max_len must be at least 1".into());
        }
        if self.min_len > self.max_len {
            return bad(format!("min_len {} exceeds max_len {}", self.min_len, self.max_len));
        }
        if !(1..=100).contains(&self.retry_badcase_max_times) {
            return bad(format!("retry_badcase_max_times must be in 1..=100, got {}", self.retry_badcase_max_times));
        }
        let ratio = self.retry_badcase_ratio_threshold;
        if !ratio.is_finite() || ratio <= 0.0 {
            return bad(format!("retry_badcase_ratio_threshold must be a positive number, got {ratio}"));
        }
        Ok(())
    }
}

/// A continuation prompt: a clip and its transcript; generation carries on from it.
#[derive(Debug, Clone)]
pub struct PromptClip {
    /// Mono samples at the VAE encoder rate (`audio_vae_config.sample_rate`).
    pub audio: Vec<f32>,
    pub text: String,
}

/// What to say and how, in any of the official modes: zero-shot, reference-voice cloning
/// (`reference_audio`), continuation (`prompt`), or both together.
#[derive(Debug, Clone, Default)]
pub struct SpeechRequest {
    pub text: String,
    /// Mono samples at the encoder rate of a voice to clone.
    pub reference_audio: Option<Vec<f32>>,
    pub prompt: Option<PromptClip>,
    pub options: SpeechOptions,
}

/// Where a generation stands, reported after every patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Patches generated so far in this attempt.
    pub patches: usize,
    /// The most patches this attempt can generate.
    pub cap: usize,
    /// 1 for the first run, higher for bad-case retries.
    pub attempt: usize,
}

/// A validated request, ready for the generation loop.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    pub sequence: Sequence,
    pub settings: GenerationSettings,
    /// Tokens of the target text alone (the bad-case ratio is measured against them).
    pub target_tokens: usize,
}

/// A loaded checkpoint ready to speak.
pub struct TextToSpeech {
    model: VoxCpm,
    tokenizer: TextTokenizer,
    clips: ClipCache,
}

impl TextToSpeech {
    /// Loads an official checkpoint directory: the model (see [`VoxCpm::load`]) and its
    /// `tokenizer.json`.
    pub fn load(dir: &Path, options: &LoadOptions) -> Result<Self> {
        let model = VoxCpm::load(dir, options)?;
        let tokenizer = TextTokenizer::load(&dir.join("tokenizer.json"))?;
        Ok(TextToSpeech { model, tokenizer, clips: ClipCache::default() })
    }

    pub fn model(&self) -> &VoxCpm {
        &self.model
    }

    /// Applies a LoRA adapter directory (replacing any earlier one); (loaded, skipped) counts.
    pub fn load_lora(&mut self, dir: &Path) -> Result<(usize, usize)> {
        self.model.load_lora(dir)
    }

    /// Restores the base model exactly.
    pub fn unload_lora(&mut self) {
        self.model.unload_lora();
    }

    /// Output sample rate in Hz.
    pub fn output_sample_rate(&self) -> u32 {
        self.model.config().audio_vae_config.out_sample_rate
    }

    /// Samples per generated patch at the output rate (7680 for VoxCPM2, 1280 for VoxCPM-0.5B,
    /// 7056 for VoxCPM1.5).
    pub fn patch_samples(&self) -> usize {
        let config = self.model.config();
        config.patch_size * config.audio_vae_config.decoder_hop()
    }

    /// Encodes a clip at the encoder rate into patches `[n, P, D]` (row-major), zero-padded to
    /// whole patches on the given side, as the official `_encode_wav` does. Recent clips come
    /// from a cache.
    pub fn encode_clip(&self, samples: &[f32], padding: ClipPadding) -> Result<Vec<f32>> {
        self.clips.get_or_encode(samples, padding, || self.encode_clip_uncached(samples, padding))
    }

    fn encode_clip_uncached(&self, samples: &[f32], padding: ClipPadding) -> Result<Vec<f32>> {
        let config = self.model.config();
        let vae = &config.audio_vae_config;
        let (p, d, hop) = (config.patch_size, config.feat_dim, vae.encoder_hop());
        let padded = pad_to_whole_patches(samples, p * hop, hop, vae.sample_rate, padding)?;
        let len = padded.len();
        let audio = Tensor::<3>::from_data(TensorData::new(padded, [1, 1, len]), &self.model.device());
        let latents = self.model.audio_vae().encode(audio)?; // [1, D, F]
        let frames = latents.dims()[2];
        // [D, F] -> [F/P, P, D]: patch k holds frames kP..kP+P-1.
        let patches = to_vec(latents.reshape([d, frames]).swap_dims(0, 1).reshape([frames / p, p, d]))?;
        ensure_finite(&patches, "the encoded clip")?;
        Ok(patches)
    }

    /// Speaks a request. `on_progress` hears after each patch; returning `Break` cancels
    /// the run with [`Error::Cancelled`]. A batch of one (see [`TextToSpeech::step`]).
    pub fn speak(
        &self,
        request: &SpeechRequest,
        noise: &mut dyn NoiseSource,
        mut on_progress: impl FnMut(Progress) -> ControlFlow<()>,
    ) -> Result<Vec<f32>> {
        let (mut utterance, _) = self.begin(request, Delivery::Whole)?;
        loop {
            let step = self.step_alone(&mut utterance, noise)?;
            if on_progress(step.progress).is_break() {
                return Err(Error::Cancelled);
            }
            if step.done {
                return step.audio.ok_or_else(|| Error::Internal("a finished take came without its audio".into()));
            }
        }
    }

    /// One step of a batch of one.
    fn step_alone(&self, utterance: &mut Utterance, noise: &mut dyn NoiseSource) -> Result<Step> {
        let results = self.step(&mut [utterance], &mut [noise])?;
        results.into_iter().next().expect("one request in, one result out")
    }

    /// Samples cut from the front of the decoded `[context, generated]` patches. v2 cuts
    /// exactly the context's audio. v1 follows its public `VoxCPM.generate`: whenever the track
    /// holds prompt audio it cuts a fixed `2·P·prod(encoder_rates)` samples, which with a
    /// one-patch prompt (one context patch) also removes the first generated patch.
    fn leading_cut(&self, sequence: &Sequence) -> usize {
        let config = self.model.config();
        let patch_len = config.patch_size * config.feat_dim;
        match config.architecture {
            Architecture::V1 if sequence.audio_mask.contains(&true) => {
                config.architecture.context_patches() * config.patch_size * config.audio_vae_config.encoder_hop()
            }
            Architecture::V1 => 0,
            Architecture::V2 => self.model.context_patches(sequence).len() / patch_len * self.patch_samples(),
        }
    }

    /// Speaks a request as a stream: `on_chunk` gets each patch's audio (`patch_samples()`
    /// samples) as soon as it is generated, decoded by the stateful decoder (exact: the chunks
    /// put together equal one decode of all the patches). Returning `Break` from `on_chunk`
    /// cancels the run with [`Error::Cancelled`]. Never retries.
    ///
    /// What the stream starts from follows each architecture's parity target:
    /// - v2, as the official streaming path: the decoder starts cold, without the prompt's
    ///   context patches, so a continuation's stream differs from [`speak`](Self::speak)'s
    ///   audio near its start;
    /// - v1: exactly [`speak`](Self::speak)'s audio. The decoder first runs over the context
    ///   patches, and the same leading samples are cut (with a one-patch prompt the first
    ///   generated patch yields no chunk). The official v1 stream instead re-decodes a cold
    ///   window of the last 3 patches per chunk, which on the golden checkpoints differs from
    ///   the full decode by up to 0.9 of the audio's peak (tools/golden/V1_NOTES.md §6): we
    ///   chose an exact, seamless stream over reproducing that approximation.
    pub fn speak_streaming(
        &self,
        request: &SpeechRequest,
        noise: &mut dyn NoiseSource,
        mut on_chunk: impl FnMut(&[f32]) -> ControlFlow<()>,
    ) -> Result<()> {
        let (mut utterance, warm_up) = self.begin(request, Delivery::Streaming)?;
        if let Some(chunk) = warm_up
            && on_chunk(&chunk).is_break()
        {
            return Err(Error::Cancelled);
        }
        loop {
            let step = self.step_alone(&mut utterance, noise)?;
            if let Some(chunk) = step.audio
                && on_chunk(&chunk).is_break()
            {
                return Err(Error::Cancelled);
            }
            if step.done {
                return Ok(());
            }
        }
    }

    /// Validates the request and builds its prefill sequence and generation settings.
    pub fn prepare(&self, request: &SpeechRequest) -> Result<PreparedRequest> {
        let options = request.options;
        options.validate()?;
        let target = normalize_whitespace(&request.text);
        if target.is_empty() {
            return Err(Error::InvalidInput("text is empty or only whitespace".into()));
        }
        let architecture = self.model.config().architecture;
        if request.reference_audio.is_some() && architecture == Architecture::V1 {
            return Err(Error::InvalidInput(format!(
                "the reference clip needs a VoxCPM2 model: this checkpoint's architecture is \"{architecture}\" \
                 (VoxCPM-0.5B / VoxCPM1.5), which speaks zero-shot or continues a prompt clip with its transcript"
            )));
        }
        let reference = match &request.reference_audio {
            Some(audio) => Some(self.encode_clip(audio, ClipPadding::Right)?),
            None => None,
        };
        // The model reads the prompt's transcript and the target as one text; the cap and the
        // bad-case ratio count the target's tokens alone.
        let (prompt, mut tokens, target_tokens) = match &request.prompt {
            Some(clip) => {
                let tokens = self.tokenizer.encode(&format!("{}{target}", clip.text))?;
                (Some(self.encode_clip(&clip.audio, ClipPadding::Left)?), tokens, self.tokenizer.encode(&target)?.len())
            }
            None => {
                let tokens = self.tokenizer.encode(&target)?;
                let count = tokens.len();
                (None, tokens, count)
            }
        };
        tokens.push(AUDIO_START);

        let config = self.model.config();
        let patch_len = config.patch_size * config.feat_dim;
        let sequence = Sequence::build(&tokens, reference.as_deref(), prompt.as_deref(), patch_len);
        let settings = GenerationSettings {
            min_len: options.min_len,
            max_len: patch_cap(target_tokens, options.max_len, options.retry_badcase_ratio_threshold),
            cfm: CfmSettings { timesteps: options.inference_timesteps, cfg_value: options.cfg_value },
        };
        Ok(PreparedRequest { sequence, settings, target_tokens })
    }
}

/// Drops the first samples of a stream, across chunks, then passes the rest on.
struct LeadingCut(usize);

impl LeadingCut {
    /// What is left of `chunk` after the cut (nothing when the cut takes it all).
    fn apply(&mut self, mut chunk: Vec<f32>) -> Option<Vec<f32>> {
        let dropped = self.0.min(chunk.len());
        self.0 -= dropped;
        chunk.drain(..dropped);
        (!chunk.is_empty()).then_some(chunk)
    }
}

/// The wrapper's preprocessing: newlines become spaces and whitespace runs collapse to one.
pub(crate) fn normalize_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    if out.trim().is_empty() { String::new() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_collapses_like_the_wrapper() {
        assert_eq!(normalize_whitespace("a\n\n b\t\tc "), "a b c ");
        assert_eq!(normalize_whitespace(" \n\t "), "");
    }

    #[test]
    fn absurd_options_are_named() {
        let nan = SpeechOptions { cfg_value: f32::NAN, ..Default::default() };
        assert!(nan.validate().unwrap_err().to_string().contains("cfg_value"));
        let zero = SpeechOptions { inference_timesteps: 0, ..Default::default() };
        assert!(zero.validate().unwrap_err().to_string().contains("inference_timesteps"));
        let inverted = SpeechOptions { min_len: 10, max_len: 5, ..Default::default() };
        assert!(inverted.validate().unwrap_err().to_string().contains("min_len"));
        SpeechOptions::default().validate().unwrap();
    }
}
