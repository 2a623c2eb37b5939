//! Content keys for rendered speech: a hash of everything that shapes a take, so callers that
//! cache renders (the batch command, the plugin) can tell when one is still valid.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::GenerateOptions;
use crate::error::{Error, Result};

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
pub fn request_key(model_key: &str, text: &str, options: &GenerateOptions) -> Result<String> {
    let mut hash = Sha256::new();
    hash.update(model_key);
    hash.update(format!("{text:?}\0{options:?}"));
    for clip in [&options.audio_prompt, &options.prompt_wav_path].into_iter().flatten() {
        let bytes = std::fs::read(clip).map_err(|e| Error::io(clip, e))?;
        hash.update(Sha256::digest(&bytes));
    }
    Ok(format!("{:x}", hash.finalize()))
}

fn sorted_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files =
        entries.map(|e| e.map(|e| e.path())).collect::<std::io::Result<Vec<_>>>().map_err(|e| Error::io(dir, e))?;
    files.sort();
    Ok(files)
}
