//! How long a line will speak, before it is spoken: what a live line's start is planned on.
//!
//! The engine stops when its model says so, so the length cannot be known in advance. Seconds
//! per character of text is the estimate: it follows the text's length and is stable for one
//! model and voice. It is learned per model from every line this instance renders or streams,
//! as the largest of the recent lines (an estimate too short makes a live line run dry, one
//! too long only starts it later). An unknown model starts from a slow speaker's rate, which
//! also covers Chinese (about 4 characters a second). No estimate exceeds the engine's own
//! cap on the line's length.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use voxcpm_engine::config::VoxCpmConfig;
use voxcpm_engine::model::{DEFAULT_RATIO_THRESHOLD, patch_cap};
use voxcpm_engine::pipeline::SpeechOptions;
use voxcpm_engine::tokenizer::TextTokenizer;

/// Seconds per character assumed for a model that has spoken nothing yet.
pub const DEFAULT_SECONDS_PER_CHAR: f64 = 0.3;
/// Lines per model the learned rate is taken over.
const REMEMBERED: usize = 8;

/// Learned seconds per character, per model.
#[derive(Debug, Default)]
pub struct SpeakingRates {
    per_model: HashMap<String, VecDeque<f64>>,
}

impl SpeakingRates {
    /// `model` spoke `text` in `seconds`.
    pub fn learn(&mut self, model: &str, text: &str, seconds: f64) {
        let chars = spoken_chars(text);
        if chars == 0 || !seconds.is_finite() || seconds <= 0.0 {
            return;
        }
        let rates = self.per_model.entry(model.to_owned()).or_default();
        if rates.len() == REMEMBERED {
            rates.pop_front();
        }
        rates.push_back(seconds / chars as f64);
    }

    /// The seconds `model` is expected to take for `text`, at most `cap` seconds.
    pub fn expected_seconds(&self, model: &str, text: &str, cap: Option<f64>) -> f64 {
        let per_char = self
            .per_model
            .get(model)
            .and_then(|rates| rates.iter().copied().reduce(f64::max))
            .unwrap_or(DEFAULT_SECONDS_PER_CHAR);
        let expected = per_char * spoken_chars(text) as f64;
        cap.map_or(expected, |cap| expected.min(cap))
    }
}

/// The learned rates and each model's cap: what the worker estimates a line's length with.
#[derive(Default)]
pub struct LineLengths {
    rates: SpeakingRates,
    /// Per model key; `None` where the checkpoint's files could not be read (no cap then).
    caps: HashMap<String, Option<LengthCap>>,
}

impl LineLengths {
    pub fn learn(&mut self, model: &str, text: &str, seconds: f64) {
        self.rates.learn(model, text, seconds);
    }

    /// The expected seconds of `text` on a model not known yet (still loading).
    pub fn unknown_model_seconds(&self, text: &str) -> f64 {
        self.rates.expected_seconds("", text, None)
    }

    /// The expected seconds of `text` on `model` (checkpoint `dir`, output `sample_rate`),
    /// text-normalised first if `normalize`.
    pub fn expected_seconds(&mut self, model: &str, dir: &Path, sample_rate: u32, text: &str, normalize: bool) -> f64 {
        let cap = self.caps.entry(model.to_owned()).or_insert_with(|| match LengthCap::load(dir, sample_rate) {
            Ok(cap) => Some(cap),
            Err(e) => {
                tracing::warn!("live lines are planned without the model's length cap: {e}");
                None
            }
        });
        let cap_seconds = cap.as_ref().and_then(|cap| cap.seconds(text, normalize));
        self.rates.expected_seconds(model, text, cap_seconds)
    }
}

/// Characters that are spoken or shape the speech: everything but whitespace.
fn spoken_chars(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

/// The engine's cap on a line's length for one model: its tokenizer and patch duration.
pub struct LengthCap {
    tokenizer: TextTokenizer,
    patch_seconds: f64,
}

impl LengthCap {
    /// Reads the tokenizer and config of the checkpoint in `dir`, whose output rate is
    /// `sample_rate`.
    pub fn load(dir: &Path, sample_rate: u32) -> voxcpm_engine::Result<LengthCap> {
        let config = VoxCpmConfig::load(&dir.join("config.json"))?;
        let tokenizer = TextTokenizer::load(&dir.join("tokenizer.json"))?;
        let patch_samples = config.patch_size * config.audio_vae_config.decoder_hop();
        Ok(LengthCap { tokenizer, patch_seconds: patch_samples as f64 / f64::from(sample_rate) })
    }

    /// The most seconds the engine generates for `text` (text-normalised first if
    /// `normalize`) with the default options (the plugin's), as the engine computes it; `None`
    /// if the text does not tokenize.
    pub fn seconds(&self, text: &str, normalize: bool) -> Option<f64> {
        let mut target = collapse_whitespace(text);
        if normalize {
            target = collapse_whitespace(&voxcpm_engine::text::normalize(&target));
        }
        let tokens = self.tokenizer.encode(&target).ok()?.len();
        let patches = patch_cap(tokens, SpeechOptions::default().max_len, DEFAULT_RATIO_THRESHOLD);
        Some(patches as f64 * self.patch_seconds)
    }
}

/// The text as the engine reads it: each run of whitespace one space.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !c.is_whitespace() {
            out.push(c);
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "Hello there, general.";

    #[test]
    fn an_unknown_model_is_expected_to_speak_slowly() {
        let rates = SpeakingRates::default();
        let chars = spoken_chars(LINE) as f64;
        assert_eq!(chars, 19.0, "whitespace is not counted");
        assert_eq!(rates.expected_seconds("m", LINE, None), DEFAULT_SECONDS_PER_CHAR * chars);
    }

    #[test]
    fn the_rate_is_learned_per_model_as_the_slowest_of_its_recent_lines() {
        let mut rates = SpeakingRates::default();
        rates.learn("m", "abcd", 0.4);
        rates.learn("m", "abcdefgh", 0.4);
        assert!((rates.expected_seconds("m", "abcdefghij", None) - 1.0).abs() < 1e-12, "0.1 s a character");
        assert_eq!(rates.expected_seconds("other", "ab", None), 2.0 * DEFAULT_SECONDS_PER_CHAR);
        // Eight faster lines later, the slow one is forgotten.
        for _ in 0..REMEMBERED {
            rates.learn("m", "abcdefgh", 0.4);
        }
        assert!((rates.expected_seconds("m", "abcdefghij", None) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn nothing_is_learned_from_an_empty_text_or_a_length_that_is_not_a_duration() {
        let mut rates = SpeakingRates::default();
        rates.learn("m", "  ", 1.0);
        rates.learn("m", "ab", f64::NAN);
        rates.learn("m", "ab", 0.0);
        assert_eq!(rates.expected_seconds("m", "ab", None), 2.0 * DEFAULT_SECONDS_PER_CHAR);
    }

    #[test]
    fn the_engines_cap_bounds_the_estimate() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/tiny/checkpoint");
        let cap = LengthCap::load(&dir, 48_000).unwrap();
        // The fixture: 4 patches of 1920 samples at 48 kHz.
        assert!((cap.patch_seconds - 0.16).abs() < 1e-12);
        let tokens =
            TextTokenizer::load(&dir.join("tokenizer.json")).unwrap().encode(&format!(" {LINE} ")).unwrap().len();
        let seconds = cap.seconds(&format!(" {LINE}\n\n"), false).unwrap();
        assert!((seconds - (tokens as f64 * 6.0 + 10.0) * 0.16).abs() < 1e-9, "{seconds} s for {tokens} tokens");
        let rates = SpeakingRates::default();
        assert_eq!(rates.expected_seconds("m", &LINE.repeat(20), Some(seconds)), seconds);
    }

    #[test]
    fn a_checkpoint_without_its_tokenizer_names_the_missing_file() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/tiny/checkpoint");
        std::fs::copy(dir.join("config.json"), scratch.path().join("config.json")).unwrap();
        let error = LengthCap::load(scratch.path(), 48_000).err().expect("no tokenizer").to_string();
        assert!(error.contains("tokenizer.json"), "{error}");
    }
}
