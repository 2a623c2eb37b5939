//! Content keys for rendered speech: a hash of everything that shapes a take, so callers that
//! cache renders (the batch command, the plugin) can tell when one is still valid.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::GenerateOptions;
use crate::error::{Error, Result};
use crate::pipeline::SpeechOptions;

/// The engine version, the checkpoint's identity (its files' sizes and modification times;
/// hashing gigabytes of weights on every start would cost more than it saves) and the bytes of
/// the LoRA adapter's files, if one is applied.
pub fn model_key(model_dir: &Path, lora: Option<&Path>) -> Result<String> {
    let mut hash = Sha256::new();
    hash.update(env!("CARGO_PKG_VERSION"));
    hash.update(model_dir.display().to_string());
    for path in sorted_files(model_dir)? {
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        let modified =
            meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
        hash.update(format!("{}:{}:{}\n", path.display(), meta.len(), modified.as_nanos()));
    }
    if let Some(dir) = lora {
        for path in sorted_files(dir)? {
            hash.update(path.file_name().unwrap_or_default().to_string_lossy().as_bytes());
            hash.update(std::fs::read(&path).map_err(|e| Error::io(&path, e))?);
        }
    }
    Ok(format!("{:x}", hash.finalize()))
}

/// The key of one request: the model key, the text, every option, and the bytes of its clips.
///
/// The request is written in [`KeyWriter`]'s fixed format, not through `Debug` (whose output
/// Rust does not promise to keep), so a key recorded by one build is found by the next and the
/// caches it guards survive upgrades. Every field is destructured by name: a new option does
/// not compile until it is part of the key.
pub fn request_key(model_key: &str, text: &str, options: &GenerateOptions) -> Result<String> {
    let GenerateOptions { audio_prompt, prompt_wav_path, prompt_text, speech, normalize, denoise, seed } = options;
    let SpeechOptions {
        cfg_value,
        inference_timesteps,
        min_len,
        max_len,
        retry_badcase,
        retry_badcase_max_times,
        retry_badcase_ratio_threshold,
    } = speech;
    let mut key = KeyWriter(Sha256::new());
    key.bytes("format", b"request-key/1");
    key.bytes("model", model_key.as_bytes());
    key.bytes("text", text.as_bytes());
    for (name, clip) in [("audio_prompt", audio_prompt), ("prompt_wav_path", prompt_wav_path)] {
        match clip {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
                key.bytes(name, &Sha256::digest(&bytes));
            }
            None => key.absent(name),
        }
    }
    match prompt_text {
        Some(prompt) => key.bytes("prompt_text", prompt.as_bytes()),
        None => key.absent("prompt_text"),
    }
    key.bytes("cfg_value", &cfg_value.to_le_bytes());
    key.number("inference_timesteps", *inference_timesteps as u64);
    key.number("min_len", *min_len as u64);
    key.number("max_len", *max_len as u64);
    key.number("retry_badcase", u64::from(*retry_badcase));
    key.number("retry_badcase_max_times", *retry_badcase_max_times as u64);
    key.bytes("retry_badcase_ratio_threshold", &retry_badcase_ratio_threshold.to_le_bytes());
    key.number("normalize", u64::from(*normalize));
    key.number("denoise", u64::from(*denoise));
    match seed {
        Some(seed) => key.number("seed", *seed),
        None => key.absent("seed"),
    }
    Ok(format!("{:x}", key.0.finalize()))
}

/// Feeds named fields to a hash as `name`, a presence byte, a little-endian length and the
/// value, so no two different requests write the same bytes.
struct KeyWriter(Sha256);

impl KeyWriter {
    fn bytes(&mut self, name: &str, value: &[u8]) {
        self.0.update(name.as_bytes());
        self.0.update([1]);
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value);
    }

    fn number(&mut self, name: &str, value: u64) {
        self.bytes(name, &value.to_le_bytes());
    }

    fn absent(&mut self, name: &str) {
        self.0.update(name.as_bytes());
        self.0.update([0]);
    }
}

fn sorted_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files =
        entries.map(|e| e.map(|e| e.path())).collect::<std::io::Result<Vec<_>>>().map_err(|e| Error::io(dir, e))?;
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key recorded by an earlier build: if this changes, every cached render is thrown away
    /// on upgrade, so change it only on purpose (and bump the format tag).
    #[test]
    fn the_key_format_is_stable_across_builds() {
        let options = GenerateOptions { seed: Some(7), ..Default::default() };
        let recorded = "7c6c125347f5d0aa0475b0006abefd150e95575aa50b32b6381e0d08e2f7c0fc";
        assert_eq!(request_key("model", "Hello.", &options).unwrap(), recorded);
    }

    #[test]
    fn every_option_changes_the_key() {
        let base = GenerateOptions { seed: Some(1), ..Default::default() };
        let key = |options: &GenerateOptions| request_key("m", "text", options).unwrap();
        let speech = |change: fn(&mut SpeechOptions)| {
            let mut options = base.clone();
            change(&mut options.speech);
            options
        };
        let variants = [
            GenerateOptions { seed: None, ..base.clone() },
            GenerateOptions { seed: Some(2), ..base.clone() },
            GenerateOptions { normalize: true, ..base.clone() },
            GenerateOptions { denoise: true, ..base.clone() },
            GenerateOptions { prompt_text: Some(String::new()), ..base.clone() },
            speech(|s| s.cfg_value = 2.5),
            speech(|s| s.inference_timesteps = 11),
            speech(|s| s.min_len = 3),
            speech(|s| s.max_len = 100),
            speech(|s| s.retry_badcase = false),
            speech(|s| s.retry_badcase_max_times = 4),
            speech(|s| s.retry_badcase_ratio_threshold = 7.0),
        ];
        let mut keys: Vec<String> = variants.iter().map(key).collect();
        keys.push(key(&base));
        keys.push(request_key("other model", "text", &base).unwrap());
        keys.push(request_key("m", "other text", &base).unwrap());
        let distinct: std::collections::HashSet<&String> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "two requests share a key");
        assert_eq!(key(&base), key(&base.clone()), "the same request has the same key");
    }

    #[test]
    fn a_clip_enters_the_key_by_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("voice.wav");
        std::fs::write(&clip, b"one").unwrap();
        let options = GenerateOptions { audio_prompt: Some(clip.clone()), ..Default::default() };
        let first = request_key("m", "t", &options).unwrap();
        std::fs::write(&clip, b"two").unwrap();
        assert_ne!(request_key("m", "t", &options).unwrap(), first);
        std::fs::remove_file(&clip).unwrap();
        assert!(request_key("m", "t", &options).unwrap_err().to_string().contains("voice.wav"));
    }
}
