//! Renders kept on disk by content key, so reopening a project (or a host re-creating the
//! plugin) plays at once instead of generating again.

use std::path::PathBuf;

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

    /// The cached render, if there is a readable one at the expected rate. A render holding a
    /// non-finite sample (stored by an engine that did not yet reject them) is unreadable to
    /// `read_wav_mono`, so the line is generated again rather than silenced for good.
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

    /// Stores a render; the engine writes it beside and renames it, so a file under a key is
    /// always whole (a full disk leaves none). The error names the file and the OS error.
    pub fn store(&self, key: &str, samples: &[f32], sample_rate: u32) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        write_float_file(&self.path(key), samples, sample_rate).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_render_loads_back_exactly_and_other_rates_or_keys_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RenderCache::new(dir.path().join("renders"));
        let samples: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
        // The model rates: VoxCPM-0.5B, VoxCPM1.5, VoxCPM2.
        let rates = [16_000, 44_100, 48_000];
        for stored in rates {
            let key = format!("at-{stored}");
            cache.store(&key, &samples, stored).unwrap();
            assert_eq!(cache.load(&key, stored).unwrap(), samples);
            for other in rates.into_iter().filter(|&rate| rate != stored) {
                assert!(cache.load(&key, other).is_none(), "a {stored} Hz render served as {other} Hz");
            }
        }
        assert!(cache.load("other", 48_000).is_none());
        std::fs::write(cache.path("bad"), b"not a wav").unwrap();
        assert!(cache.load("bad", 48_000).is_none());
    }

    #[test]
    fn a_render_with_non_finite_samples_is_not_played_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RenderCache::new(dir.path().to_owned());
        cache.store("nan", &[0.5, f32::NAN, 0.5], 48_000).unwrap();
        cache.store("inf", &[0.5, f32::NEG_INFINITY], 48_000).unwrap();
        assert!(cache.load("nan", 48_000).is_none());
        assert!(cache.load("inf", 48_000).is_none());
    }

    #[test]
    fn a_cache_folder_that_cannot_be_made_gives_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let cache = RenderCache::new(file.join("renders"));
        let error = cache.store("abc", &[0.25], 48_000).unwrap_err();
        assert!(error.contains(&file.join("renders").display().to_string()), "{error}");
        assert!(error.contains("Not a directory"), "{error}");
    }

    /// A full disk: the file written before the rename is a link to /dev/full, which fails
    /// every write with ENOSPC, for root too (a chmod-based test would not stop root).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_gives_an_error_naming_the_file_and_leaves_no_render_under_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RenderCache::new(dir.path().to_owned());
        std::os::unix::fs::symlink("/dev/full", voxcpm_engine::whole_file::partial_path(&cache.path("abc"))).unwrap();
        let error = cache.store("abc", &[0.25; 100_000], 48_000).unwrap_err();
        assert!(error.contains(&cache.path("abc").display().to_string()), "{error}");
        assert!(error.contains("No space left on device"), "{error}");
        assert!(!cache.path("abc").exists(), "a half-written render under the key");
        assert!(cache.load("abc", 48_000).is_none());
    }
}
