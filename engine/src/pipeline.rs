//! Text in, 48 kHz samples out: the tokenizer, the network and the VAE decoder put together
//! the way the official `VoxCPM.generate` does for zero-shot speech (§6.5).

use std::path::Path;

use burn::tensor::Device;

use crate::error::{Error, Result};
use crate::model::nn::to_vec;
use crate::model::{AUDIO_START, CfmSettings, GenerationSettings, Sequence, VoxCpm2, patch_cap};
use crate::noise::NoiseSource;
use crate::tokenizer::TextTokenizer;

/// Per-request options, with the official defaults.
#[derive(Debug, Clone, Copy)]
pub struct SpeechOptions {
    pub cfg_value: f32,
    pub inference_timesteps: usize,
    pub min_len: usize,
    pub max_len: usize,
}

impl Default for SpeechOptions {
    fn default() -> Self {
        SpeechOptions { cfg_value: 2.0, inference_timesteps: 10, min_len: 2, max_len: 4096 }
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
        Ok(())
    }
}

/// A loaded checkpoint ready to speak.
pub struct TextToSpeech {
    model: VoxCpm2,
    tokenizer: TextTokenizer,
}

impl TextToSpeech {
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let model = VoxCpm2::load(dir, device)?;
        let tokenizer = TextTokenizer::load(&dir.join("tokenizer.json"))?;
        Ok(TextToSpeech { model, tokenizer })
    }

    pub fn model(&self) -> &VoxCpm2 {
        &self.model
    }

    /// Output sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.model.config().audio_vae_config.out_sample_rate
    }

    /// Speaks `text`; `on_patch(done, cap)` reports progress after each generated patch.
    pub fn speak(
        &self,
        text: &str,
        options: SpeechOptions,
        noise: &mut dyn NoiseSource,
        mut on_patch: impl FnMut(usize, usize),
    ) -> Result<Vec<f32>> {
        options.validate()?;
        let text = normalize_whitespace(text);
        if text.is_empty() {
            return Err(Error::InvalidInput("text is empty or only whitespace".into()));
        }
        let mut tokens = self.tokenizer.encode(&text)?;
        let target_tokens = tokens.len();
        tokens.push(AUDIO_START);
        let config = self.model.config();
        let cap = patch_cap(target_tokens, options.max_len);
        let settings = GenerationSettings {
            min_len: options.min_len,
            max_len: cap,
            cfm: CfmSettings { timesteps: options.inference_timesteps, cfg_value: options.cfg_value },
        };
        let sequence = Sequence::zero_shot(tokens, config.patch_size * config.feat_dim);
        let mut done = 0;
        let patches = self.model.generate(&sequence, settings, noise, |_| {
            done += 1;
            on_patch(done, cap);
        })?;
        let audio = self.model.audio_vae().decode(self.model.patches_to_latents(&patches));
        to_vec(audio)
    }
}

/// The wrapper's preprocessing: newlines become spaces and whitespace runs collapse to one.
fn normalize_whitespace(text: &str) -> String {
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
