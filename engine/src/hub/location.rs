//! Where the Hub is and where its downloads are kept: an explicit value, so that tests (and a
//! plugin that wants another cache) never have to change the process environment.

use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError, ApiRepo};
use hf_hub::{Cache, Repo};

/// The public Hub, used when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// A Hub endpoint and the local cache its files are downloaded into (the layout Python's
/// `huggingface_hub` and hf-hub share: `models--owner--name/{blobs,snapshots,refs}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubLocation {
    /// Base URL without a trailing slash, e.g. `https://huggingface.co`.
    pub endpoint: String,
    /// The hub cache directory (the folder holding `models--…` folders).
    pub cache_dir: PathBuf,
}

impl HubLocation {
    pub fn new(endpoint: impl Into<String>, cache_dir: impl Into<PathBuf>) -> HubLocation {
        let endpoint = endpoint.into().trim_end_matches('/').to_owned();
        HubLocation { endpoint, cache_dir: cache_dir.into() }
    }

    /// From the environment, as the Hugging Face tools read it: `HF_ENDPOINT`; the cache is
    /// `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`. (hf-hub 0.4.3 reads
    /// only `HF_HOME`; `HF_HUB_CACHE` is honoured too so that a cache moved for Python is found.)
    pub fn from_env() -> HubLocation {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let endpoint = var("HF_ENDPOINT").and_then(|v| v.into_string().ok());
        let cache_dir = var("HF_HUB_CACHE").map(PathBuf::from).unwrap_or_else(|| {
            var("HF_HOME").map(|home| PathBuf::from(home).join("hub")).unwrap_or_else(default_home_cache)
        });
        HubLocation::new(endpoint.unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned()), cache_dir)
    }

    /// The cache folder of model repository `repo` (`models--owner--name`).
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.cache_dir.join(Repo::model(repo.to_owned()).folder_name())
    }

    /// hf-hub's handle on `repo` at this endpoint and cache, without its own progress bars.
    pub(crate) fn api(&self, repo: &str) -> Result<ApiRepo, ApiError> {
        let api = ApiBuilder::from_cache(Cache::new(self.cache_dir.clone()))
            .with_endpoint(self.endpoint.clone())
            .with_progress(false)
            .build()?;
        Ok(api.model(repo.to_owned()))
    }

    /// The nearest existing folder at or above the cache (the cache may not exist yet): where
    /// free space is measured.
    pub(crate) fn existing_ancestor(&self) -> &Path {
        self.cache_dir.ancestors().find(|dir| dir.is_dir()).unwrap_or(Path::new("."))
    }
}

/// `~/.cache/huggingface/hub`, or a relative `.cache/huggingface/hub` when there is no home.
fn default_home_cache() -> PathBuf {
    std::env::home_dir().unwrap_or_default().join(".cache").join("huggingface").join("hub")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_folders_follow_the_hub_cache_layout() {
        let location = HubLocation::new("http://127.0.0.1:9/", "/cache");
        assert_eq!(location.endpoint, "http://127.0.0.1:9");
        assert_eq!(location.repo_dir("openbmb/VoxCPM2"), Path::new("/cache/models--openbmb--VoxCPM2"));
    }
}
