//! Where a model comes from: a local checkpoint directory, or a Hugging Face repository
//! downloaded into the standard Hugging Face cache (shared with Python's `huggingface_hub`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The official VoxCPM2 release.
pub const DEFAULT_REPO: &str = "openbmb/VoxCPM2";

/// Files a checkpoint directory must hold; `tokenizer_config.json` is fetched when present.
const REQUIRED_FILES: [&str; 4] = ["config.json", "model.safetensors", "audiovae.pth", "tokenizer.json"];
const OPTIONAL_FILES: [&str; 2] = ["tokenizer_config.json", "special_tokens_map.json"];

/// True when `name` has the shape of a Hugging Face repository id (`owner/name`).
pub fn is_repo_id(name: &str) -> bool {
    let mut parts = name.split('/');
    let valid = |p: &str| {
        !p.is_empty() && !p.starts_with('.') && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if valid(a) && valid(b))
}

/// The snapshot directory of `repo` in the local Hugging Face cache, if every required file is
/// there. Never touches the network.
pub fn cached(repo: &str) -> Option<PathBuf> {
    let cache = hf_hub::Cache::from_env().model(repo.to_owned());
    let config = cache.get(REQUIRED_FILES[0])?;
    let dir = config.parent()?.to_owned();
    REQUIRED_FILES.iter().all(|f| dir.join(f).is_file()).then_some(dir)
}

/// Downloads `repo` into the Hugging Face cache (skipping files already there) and returns its
/// snapshot directory. `progress` shows indicatif bars on the terminal.
pub fn fetch(repo: &str, progress: bool) -> Result<PathBuf> {
    let failed = |file: &str, e: &dyn std::fmt::Display| {
        Error::Fetch(format!(
            "cannot download {file} from {repo} ({e}); check the network, or pass a local checkpoint directory"
        ))
    };
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(progress)
        .build()
        .map_err(|e| failed("anything", &e))?;
    let api = api.model(repo.to_owned());
    let mut dir = None;
    for file in REQUIRED_FILES {
        let path = api.get(file).map_err(|e| failed(file, &e))?;
        dir = path.parent().map(Path::to_path_buf);
    }
    for file in OPTIONAL_FILES {
        if let Err(e) = api.get(file) {
            tracing::info!(file, error = %e, "optional file not fetched");
        }
    }
    dir.ok_or_else(|| Error::Fetch(format!("{repo}: the cache returned no directory")))
}

/// The random-weight demo checkpoint in the source tree's assets/ (present in a checkout, not
/// in an installed binary).
pub const DEMO_CHECKPOINT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/demo-checkpoint");

/// A model argument for the runtime (a directory or a repository id) and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChoice {
    pub model: String,
    pub source: ModelSource,
}

/// Where a [`ModelChoice`] came from, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSource {
    /// Named by the user (a flag, a plugin setting).
    Explicit,
    /// `$VOXCPM_MODEL`.
    Environment,
    /// The release fetched into the Hugging Face cache by `voxcpm fetch`.
    Fetched,
    /// The random-weight demo checkpoint: the pipeline runs but the audio is noise.
    Demo,
}

impl ModelSource {
    pub fn describe(self) -> &'static str {
        match self {
            ModelSource::Explicit => "given",
            ModelSource::Environment => "VOXCPM_MODEL",
            ModelSource::Fetched => "fetched copy",
            ModelSource::Demo => "demo checkpoint (random weights)",
        }
    }
}

/// Picks the model: `explicit`, then `$VOXCPM_MODEL`, then a copy fetched with `voxcpm fetch`,
/// then the demo checkpoint. Never touches the network.
pub fn choose(explicit: Option<&str>) -> Result<ModelChoice> {
    let pick = |model: String, source| Ok(ModelChoice { model, source });
    if let Some(model) = explicit.filter(|m| !m.is_empty()) {
        return pick(model.to_owned(), ModelSource::Explicit);
    }
    if let Some(model) = std::env::var("VOXCPM_MODEL").ok().filter(|m| !m.is_empty()) {
        return pick(model, ModelSource::Environment);
    }
    if let Some(dir) = cached(DEFAULT_REPO) {
        return pick(dir.display().to_string(), ModelSource::Fetched);
    }
    match Path::new(DEMO_CHECKPOINT).canonicalize() {
        Ok(demo) => pick(demo.display().to_string(), ModelSource::Demo),
        Err(_) => Err(Error::ModelUnavailable(
            "no model found: choose a checkpoint directory, set VOXCPM_MODEL, or download the release with \
             `voxcpm fetch`"
                .into(),
        )),
    }
}

/// Resolves a user's model argument: an existing directory is used as is; a repository id is
/// looked up in the cache and downloaded when missing.
pub fn resolve(model: &str) -> Result<PathBuf> {
    let path = Path::new(model);
    if path.is_dir() {
        return Ok(path.to_owned());
    }
    if is_repo_id(model) && !path.exists() {
        return match cached(model) {
            Some(dir) => Ok(dir),
            None => fetch(model, false),
        };
    }
    Err(Error::InvalidInput(format!(
        "model {model:?} is neither a checkpoint directory nor a Hugging Face repository id (owner/name)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_are_told_from_paths() {
        assert!(is_repo_id("openbmb/VoxCPM2"));
        assert!(is_repo_id("me/my-voice_v1.2"));
        for not in ["", "VoxCPM2", "/abs/path", "a/b/c", "./x", "../up", "a//b", "sp ace/x"] {
            assert!(!is_repo_id(not), "{not}");
        }
    }

    #[test]
    fn a_directory_resolves_to_itself_and_nonsense_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve(dir.path().to_str().unwrap()).unwrap(), dir.path());
        let err = resolve("no such thing").unwrap_err().to_string();
        assert!(err.contains("no such thing"), "{err}");
    }
}
