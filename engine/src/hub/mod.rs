//! Where a model comes from: a local checkpoint directory, or a Hugging Face repository
//! downloaded into the standard Hugging Face cache (shared with Python's `huggingface_hub`).
//!
//! [`catalog`] lists the official releases, [`local`] reads what the cache holds (never the
//! network), [`download`] fetches a repository with progress, cancel and resume, and
//! [`HubLocation`] says which Hub and which cache.

pub mod catalog;
pub mod download;
pub mod local;
mod location;

use std::path::{Path, PathBuf};

pub use download::{DownloadError, DownloadProgress, Downloader};
pub use local::LocalState;
pub use location::{DEFAULT_ENDPOINT, HubLocation};

use crate::error::{Error, Result};

/// The official VoxCPM2 release.
pub const DEFAULT_REPO: &str = "openbmb/VoxCPM2";

/// What a checkpoint directory must hold: for each part, the names the official loader accepts,
/// in the order it tries them. The weights are `model.safetensors` (VoxCPM2, VoxCPM1.5) or
/// `pytorch_model.bin` (VoxCPM-0.5B ships only that); the AudioVAE `audiovae.safetensors` or
/// `audiovae.pth`.
pub(crate) const REQUIRED: [&[&str]; 4] = [
    &["config.json"],
    &["model.safetensors", "pytorch_model.bin"],
    &["audiovae.safetensors", "audiovae.pth"],
    &["tokenizer.json"],
];
/// Fetched when the repository has them.
pub(crate) const OPTIONAL_FILES: [&str; 2] = ["tokenizer_config.json", "special_tokens_map.json"];

/// The file to use for each part of [`REQUIRED`], given which names exist: the first existing
/// name of each, as the loader picks them. `Err` describes the first part with none.
pub(crate) fn required_files(exists: impl Fn(&str) -> bool) -> std::result::Result<Vec<&'static str>, String> {
    REQUIRED
        .iter()
        .map(|names| {
            names.iter().copied().find(|name| exists(name)).ok_or_else(|| format!("no {}", names.join(" or ")))
        })
        .collect()
}

/// True when `name` has the shape of a Hugging Face repository id (`owner/name`).
pub fn is_repo_id(name: &str) -> bool {
    let mut parts = name.split('/');
    let valid = |p: &str| {
        !p.is_empty() && !p.starts_with('.') && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if valid(a) && valid(b))
}

/// The snapshot directory of `repo` in the Hugging Face cache the environment names, if it is
/// installed (see [`local::state`]). Never touches the network.
pub fn cached(repo: &str) -> Option<PathBuf> {
    local::state(&HubLocation::from_env(), repo).installed_dir().map(Path::to_path_buf)
}

/// Downloads `repo` into the Hugging Face cache the environment names (skipping files already
/// there, resuming interrupted ones) and returns its snapshot directory, without progress
/// output. `voxcpm fetch` and the plugin use [`Downloader`] for progress and cancel.
pub fn fetch(repo: &str) -> Result<PathBuf> {
    let never = std::sync::atomic::AtomicBool::new(false);
    Ok(Downloader::new(HubLocation::from_env()).download(repo, &never, &mut |_| {})?)
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
/// looked up in the cache and downloaded when missing (the command line's habit).
pub fn resolve(model: &str) -> Result<PathBuf> {
    if let Some(dir) = local_dir(model)? {
        return Ok(dir);
    }
    match cached(model) {
        Some(dir) => Ok(dir),
        None => fetch(model),
    }
}

/// Resolves a model argument from the disk alone: a directory, or a repository id installed in
/// `location`'s cache. A repository that is not installed is an error that says to download it:
/// the plugin never downloads behind the user's back (its Models section does, on request).
pub fn resolve_cached(model: &str, location: &HubLocation) -> Result<PathBuf> {
    if let Some(dir) = local_dir(model)? {
        return Ok(dir);
    }
    match local::state(location, model) {
        LocalState::Installed { snapshot, .. } => Ok(snapshot),
        state => Err(Error::ModelUnavailable(format!(
            "{model} is {}: download it in the plugin's Models section (or with `voxcpm fetch {model}`)",
            state.describe()
        ))),
    }
}

/// `Some(dir)` when `model` is an existing directory, `None` when it is a repository id, and an
/// error naming it when it is neither.
fn local_dir(model: &str) -> Result<Option<PathBuf>> {
    let path = Path::new(model);
    if path.is_dir() {
        return Ok(Some(path.to_owned()));
    }
    if is_repo_id(model) && !path.exists() {
        return Ok(None);
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
    fn a_directory_resolves_to_itself_and_nonsense_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve(dir.path().to_str().unwrap()).unwrap(), dir.path());
        let err = resolve("no such thing").unwrap_err().to_string();
        assert!(err.contains("no such thing"), "{err}");
    }
}
