//! Renders kept on disk by content key, so reopening a project (or a host re-creating the
//! plugin) plays at once instead of generating again.

use std::path::{Path, PathBuf};

use voxcpm_engine::audio_io::read_wav_mono;
use voxcpm_engine::wav::write_float_file;

/// `$VOXCPM_RENDER_CACHE`, else the platform's user cache folder + `voxcpm/renders`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VOXCPM_RENDER_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = if cfg!(windows) {
        env("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        env("HOME").map(|home| home.join("Library/Caches"))
    } else {
        env("XDG_CACHE_HOME").or_else(|| env("HOME").map(|home| home.join(".cache")))
    };
    base.unwrap_or_else(std::env::temp_dir).join("voxcpm").join("renders")
}

pub struct RenderCache {
    dir: PathBuf,
}

impl RenderCache {
    pub fn new(dir: PathBuf) -> Self {
        RenderCache { dir }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.wav"))
    }

    /// The cached render, if there is a readable one at the expected rate.
    pub fn load(&self, key: &str, sample_rate: u32) -> Option<Vec<f32>> {
        let path = self.path(key);
        match read_wav_mono(&path) {
            Ok((samples, rate)) if rate == sample_rate => Some(samples),
            Ok(_) => None,
            Err(e) => {
                if path.exists() {
                    tracing::warn!("ignoring unreadable cached render {}: {e}", path.display());
                }
                None
            }
        }
    }

    /// Stores a render; written beside and renamed, so a file under a key is always whole.
    pub fn store(&self, key: &str, samples: &[f32], sample_rate: u32) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let partial = self.dir.join(format!(".{key}.partial"));
        write_float_file(&partial, samples, sample_rate).map_err(|e| e.to_string())?;
        rename(&partial, &self.path(key))
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::rename(from, to).map_err(|e| format!("cannot write {}: {e}", to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_render_loads_back_exactly_and_other_rates_or_keys_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RenderCache::new(dir.path().join("renders"));
        let samples: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
        cache.store("abc", &samples, 48_000).unwrap();
        assert_eq!(cache.load("abc", 48_000).unwrap(), samples);
        assert!(cache.load("abc", 44_100).is_none());
        assert!(cache.load("other", 48_000).is_none());
        std::fs::write(cache.path("bad"), b"not a wav").unwrap();
        assert!(cache.load("bad", 48_000).is_none());
    }
}
