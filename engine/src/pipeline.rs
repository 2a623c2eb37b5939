//! Text in, 48 kHz samples out: the tokenizer, the network and the VAE decoder put together
//! the way the official `VoxCPM.generate` does for zero-shot speech (§6.5).

use std::ops::ControlFlow;
use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};

use crate::clip::{ClipCache, ClipPadding, pad_to_whole_patches};
use crate::error::{Error, Result, ensure_finite};
use crate::kernels::Products;
use crate::model::audio_vae::DecoderStream;
use crate::model::nn::to_vec;
use crate::model::{
    AUDIO_START, CfmSettings, DEFAULT_RATIO_THRESHOLD, GenerationSettings, Sequence, VoxCpm2, patch_cap,
};
use crate::noise::NoiseSource;
use crate::tokenizer::TextTokenizer;

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
    model: VoxCpm2,
    tokenizer: TextTokenizer,
    clips: ClipCache,
}

impl TextToSpeech {
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::load_with_products(dir, device, Products::F32)
    }

    /// As [`load`](Self::load), the CPU's linear layers computing their products in `products`.
    pub fn load_with_products(dir: &Path, device: &Device, products: Products) -> Result<Self> {
        let model = VoxCpm2::load_with_products(dir, device, products)?;
        let tokenizer = TextTokenizer::load(&dir.join("tokenizer.json"))?;
        Ok(TextToSpeech { model, tokenizer, clips: ClipCache::default() })
    }

    pub fn model(&self) -> &VoxCpm2 {
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

    /// Samples per generated patch at the output rate (7680 for VoxCPM2).
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
    /// the run with [`Error::Cancelled`].
    pub fn speak(
        &self,
        request: &SpeechRequest,
        noise: &mut dyn NoiseSource,
        mut on_progress: impl FnMut(Progress) -> ControlFlow<()>,
    ) -> Result<Vec<f32>> {
        let PreparedRequest { sequence, settings, target_tokens } = self.prepare(request)?;
        let options = request.options;
        let attempts = if options.retry_badcase { options.retry_badcase_max_times } else { 1 };
        let too_long = target_tokens as f64 * options.retry_badcase_ratio_threshold;
        let patch_len = self.model.config().patch_size * self.model.config().feat_dim;
        let mut generated = Vec::new();
        for attempt in 1..=attempts {
            let mut patches = 0;
            generated = self.model.generate(&sequence, settings, noise, |_| {
                patches += 1;
                on_progress(Progress { patches, cap: settings.max_len, attempt })
            })?;
            let n = generated.len() / patch_len;
            if (n as f64) < too_long || attempt == attempts {
                break;
            }
            tracing::warn!(patches = n, target_tokens, attempt, "audio too long for its text, generating again");
        }
        // Continuation: the decoder warms up on the prompt's last patches, whose audio is cut.
        let context = sequence.context_patches();
        let latents = self.model.patches_to_latents(&[context, &generated].concat());
        let audio = to_vec(self.model.audio_vae().decode(latents))?;
        ensure_finite(&audio, "the decoded audio")?;
        Ok(audio[context.len() / patch_len * self.patch_samples()..].to_vec())
    }

    /// Speaks a request as a stream: `on_chunk` gets each patch's audio (`patch_samples()`
    /// samples) as soon as it is generated, decoded by the stateful decoder as the official
    /// streaming path does (starting cold, without the prompt's context patches). Returning
    /// `Break` from `on_chunk` cancels the run with [`Error::Cancelled`]. Never retries.
    pub fn speak_streaming(
        &self,
        request: &SpeechRequest,
        noise: &mut dyn NoiseSource,
        mut on_chunk: impl FnMut(&[f32]) -> ControlFlow<()>,
    ) -> Result<()> {
        let PreparedRequest { sequence, settings, .. } = self.prepare(request)?;
        let mut stream = DecoderStream::new();
        let mut failure = None;
        let outcome = self.model.generate(&sequence, settings, noise, |patch| {
            let latents = self.model.patches_to_latents(patch);
            let chunk = to_vec(self.model.audio_vae().decode_chunk(latents, &mut stream))
                .and_then(|chunk| ensure_finite(&chunk, "the decoded audio").map(|()| chunk));
            match chunk {
                Ok(chunk) => on_chunk(&chunk),
                Err(e) => {
                    failure = Some(e);
                    ControlFlow::Break(())
                }
            }
        });
        match (failure, outcome) {
            (Some(e), _) => Err(e),
            (None, outcome) => outcome.map(drop),
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
