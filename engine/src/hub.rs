//! Where a model comes from: a local checkpoint directory, or a Hugging Face repository
//! downloaded into the standard Hugging Face cache (shared with Python's `huggingface_hub`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The official VoxCPM2 release.
pub const DEFAULT_REPO: &str = "openbmb/VoxCPM2";

/// What a checkpoint directory must hold: for each part, the names the official loader accepts,
/// in the order it tries them. The weights are `model.safetensors` (VoxCPM2, VoxCPM1.5) or
/// `pytorch_model.bin` (VoxCPM-0.5B ships only that); the AudioVAE `audiovae.safetensors` or
/// `audiovae.pth`.
const REQUIRED: [&[&str]; 4] = [
    &["config.json"],
    &["model.safetensors", "pytorch_model.bin"],
    &["audiovae.safetensors", "audiovae.pth"],
    &["tokenizer.json"],
];
/// Fetched when the repository has them.
const OPTIONAL_FILES: [&str; 2] = ["tokenizer_config.json", "special_tokens_map.json"];

/// The file to use for each part of [`REQUIRED`], given which names exist: the first existing
/// name of each, as the loader picks them. `Err` describes the first part with none.
fn required_files(exists: impl Fn(&str) -> bool) -> std::result::Result<Vec<&'static str>, String> {
    REQUIRED
        .iter()
        .map(|names| {
            names.iter().copied().find(|name| exists(name)).ok_or_else(|| format!("no {}", names.join(" or ")))
        })
        .collect()
}

/// True when `dir` holds every part of a checkpoint.
fn is_complete(dir: &Path) -> bool {
    required_files(|name| dir.join(name).is_file()).is_ok()
}

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
    let config = cache.get(REQUIRED[0][0])?;
    let dir = config.parent()?.to_owned();
    is_complete(&dir).then_some(dir)
}

/// Downloads `repo` into the Hugging Face cache (skipping files already there) and returns its
/// snapshot directory. Which weight files to take comes from the repository's file list.
/// `progress` shows indicatif bars on the terminal.
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
    // The config first: a missing network or repository is reported on the first file.
    let config = api.get(REQUIRED[0][0]).map_err(|e| failed(REQUIRED[0][0], &e))?;
    let listing = api.info().map_err(|e| failed("the file list", &e))?;
    let exists = |name: &str| listing.siblings.iter().any(|file| file.rfilename == name);
    let files = required_files(exists)
        .map_err(|missing| Error::Fetch(format!("{repo} is not a VoxCPM checkpoint: it has {missing}")))?;
    for file in files {
        api.get(file).map_err(|e| failed(file, &e))?;
    }
    for file in OPTIONAL_FILES.into_iter().filter(|name| exists(name)) {
        if let Err(e) = api.get(file) {
            tracing::info!(file, error = %e, "optional file not fetched");
        }
    }
    config
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::Fetch(format!("{repo}: the cache returned no directory")))
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

    /// Listings shaped like the releases' (voxcpm-family.md §1): VoxCPM-0.5B ships its weights
    /// only as `pytorch_model.bin`, VoxCPM2 as `model.safetensors`.
    const VOXCPM_0_5B: [&str; 6] = [
        "config.json",
        "pytorch_model.bin",
        "audiovae.pth",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ];
    const VOXCPM2: [&str; 5] =
        ["config.json", "model.safetensors", "audiovae.pth", "tokenizer.json", "tokenizer_config.json"];

    fn chosen(listing: &[&str]) -> std::result::Result<Vec<&'static str>, String> {
        required_files(|name| listing.contains(&name))
    }

    #[test]
    fn each_part_takes_the_first_name_the_loader_tries() {
        assert_eq!(
            chosen(&VOXCPM_0_5B).unwrap(),
            ["config.json", "pytorch_model.bin", "audiovae.pth", "tokenizer.json"]
        );
        assert_eq!(chosen(&VOXCPM2).unwrap(), ["config.json", "model.safetensors", "audiovae.pth", "tokenizer.json"]);
        let both = [&VOXCPM_0_5B[..], &["model.safetensors", "audiovae.safetensors"]].concat();
        assert_eq!(
            chosen(&both).unwrap(),
            ["config.json", "model.safetensors", "audiovae.safetensors", "tokenizer.json"]
        );
    }

    #[test]
    fn a_missing_part_names_every_accepted_file() {
        let no_weights: Vec<&str> = VOXCPM_0_5B.into_iter().filter(|f| *f != "pytorch_model.bin").collect();
        assert_eq!(chosen(&no_weights).unwrap_err(), "no model.safetensors or pytorch_model.bin");
        assert_eq!(
            chosen(&["config.json", "model.safetensors"]).unwrap_err(),
            "no audiovae.safetensors or audiovae.pth"
        );
        assert_eq!(chosen(&[]).unwrap_err(), "no config.json");
    }

    #[test]
    fn a_snapshot_with_only_pytorch_model_bin_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        for file in &VOXCPM_0_5B[..4] {
            std::fs::write(dir.path().join(file), b"").unwrap();
        }
        assert!(is_complete(dir.path()));
        std::fs::remove_file(dir.path().join("audiovae.pth")).unwrap();
        assert!(!is_complete(dir.path()), "no VAE");
        std::fs::write(dir.path().join("audiovae.safetensors"), b"").unwrap();
        assert!(is_complete(dir.path()));
        std::fs::remove_file(dir.path().join("pytorch_model.bin")).unwrap();
        assert!(!is_complete(dir.path()), "no weights");
    }

    #[test]
    fn a_directory_resolves_to_itself_and_nonsense_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve(dir.path().to_str().unwrap()).unwrap(), dir.path());
        let err = resolve("no such thing").unwrap_err().to_string();
        assert!(err.contains("no such thing"), "{err}");
    }
}
