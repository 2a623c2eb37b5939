//! What of a repository the local Hugging Face cache holds, read from the disk alone (never the
//! network), so that the CLI and the plugin can show it at any time.
//!
//! The cache layout (hf-hub and Python's `huggingface_hub` share it):
//! `models--owner--name/refs/main` holds the commit; `snapshots/<commit>/<file>` are links to
//! `blobs/<etag>`; a file being downloaded is `blobs/<etag>.part` (hf-hub's sync API; Python's
//! is `.incomplete`).

use std::path::{Path, PathBuf};

use super::location::HubLocation;
use super::{REQUIRED, catalog::human_bytes};

/// Where a repository stands in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalState {
    /// Nothing of it is there.
    NotInstalled,
    /// Some files or an interrupted download (a later download resumes it).
    Partial { bytes_on_disk: u64 },
    /// Every file a checkpoint needs.
    Installed { snapshot: PathBuf, bytes_on_disk: u64 },
    /// A required file is unusable: a link whose blob is gone (also what a file that failed
    /// verification leaves), or an empty file.
    Damaged { snapshot: PathBuf, file: String, problem: String },
}

impl LocalState {
    /// The snapshot directory, when the repository is installed.
    pub fn installed_dir(&self) -> Option<&Path> {
        match self {
            LocalState::Installed { snapshot, .. } => Some(snapshot),
            _ => None,
        }
    }

    /// A few words for a list or an error: "installed (4.96 GB)", "damaged: …".
    pub fn describe(&self) -> String {
        match self {
            LocalState::NotInstalled => "not downloaded".into(),
            LocalState::Partial { bytes_on_disk } => {
                format!("partly downloaded ({} so far)", human_bytes(*bytes_on_disk))
            }
            LocalState::Installed { bytes_on_disk, .. } => format!("installed ({})", human_bytes(*bytes_on_disk)),
            LocalState::Damaged { file, problem, .. } => format!("damaged: {file} {problem}"),
        }
    }
}

/// The state of model repository `repo` in `location`'s cache.
pub fn state(location: &HubLocation, repo: &str) -> LocalState {
    let repo_dir = location.repo_dir(repo);
    let (parts, part_bytes) = part_files(&repo_dir.join("blobs"));
    let Some(snapshot) = current_snapshot(&repo_dir) else {
        return if parts > 0 { LocalState::Partial { bytes_on_disk: part_bytes } } else { LocalState::NotInstalled };
    };
    let mut complete = true;
    for names in REQUIRED {
        match names.iter().find_map(|name| present(&snapshot, name)) {
            None => complete = false,
            Some(Err((file, problem))) => return LocalState::Damaged { snapshot, file, problem },
            Some(Ok(())) => {}
        }
    }
    let bytes_on_disk = file_bytes(&snapshot);
    if complete {
        LocalState::Installed { snapshot, bytes_on_disk }
    } else if bytes_on_disk + part_bytes > 0 || parts > 0 {
        LocalState::Partial { bytes_on_disk: bytes_on_disk + part_bytes }
    } else {
        LocalState::NotInstalled
    }
}

/// `None` when `name` is not in the snapshot at all; `Err((name, problem))` when its entry is
/// there but unusable.
fn present(snapshot: &Path, name: &str) -> Option<Result<(), (String, String)>> {
    let path = snapshot.join(name);
    std::fs::symlink_metadata(&path).ok()?;
    let problem = match std::fs::metadata(&path) {
        Err(_) => "links to a missing blob (deleted, or removed after failing verification)",
        Ok(meta) if meta.len() == 0 => "is empty",
        Ok(_) => return Some(Ok(())),
    };
    Some(Err((name.to_owned(), problem.to_owned())))
}

/// The snapshot `refs/main` points at, if it exists.
fn current_snapshot(repo_dir: &Path) -> Option<PathBuf> {
    let commit = std::fs::read_to_string(repo_dir.join("refs").join("main")).ok()?;
    let commit = commit.trim();
    let valid = !commit.is_empty() && commit.chars().all(|c| c.is_ascii_alphanumeric());
    let snapshot = repo_dir.join("snapshots").join(commit);
    (valid && snapshot.is_dir()).then_some(snapshot)
}

/// How many interrupted downloads (`*.part`) `blobs` holds, and their bytes.
fn part_files(blobs: &Path) -> (usize, u64) {
    let Ok(entries) = std::fs::read_dir(blobs) else { return (0, 0) };
    entries
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "part"))
        .fold((0, 0), |(count, bytes), entry| (count + 1, bytes + entry.metadata().map_or(0, |m| m.len())))
}

/// The bytes of the files a snapshot links to.
fn file_bytes(snapshot: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(snapshot) else { return 0 };
    entries.flatten().filter_map(|entry| std::fs::metadata(entry.path()).ok()).map(|m| m.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache holding `files` (name, bytes) in the snapshot of commit `c0ffee`.
    fn cache_with(files: &[(&str, &[u8])]) -> (tempfile::TempDir, HubLocation) {
        let dir = tempfile::tempdir().unwrap();
        let location = HubLocation::new("http://127.0.0.1:9", dir.path());
        let repo = location.repo_dir("me/voice");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "c0ffee\n").unwrap();
        let snapshot = repo.join("snapshots/c0ffee");
        std::fs::create_dir_all(&snapshot).unwrap();
        for (name, bytes) in files {
            std::fs::write(snapshot.join(name), bytes).unwrap();
        }
        (dir, location)
    }

    const VOXCPM_0_5B: [(&str, &[u8]); 4] =
        [("config.json", b"{}"), ("pytorch_model.bin", b"w"), ("audiovae.pth", b"v"), ("tokenizer.json", b"t")];

    #[test]
    fn a_snapshot_with_only_pytorch_model_bin_is_installed_and_counts_its_bytes() {
        let (_dir, location) = cache_with(&VOXCPM_0_5B);
        let state = state(&location, "me/voice");
        let snapshot = location.repo_dir("me/voice").join("snapshots/c0ffee");
        assert_eq!(state, LocalState::Installed { snapshot, bytes_on_disk: 5 });
    }

    #[test]
    fn a_missing_part_is_partial_and_an_empty_one_is_damaged() {
        let (_dir, location) = cache_with(&VOXCPM_0_5B[..3]);
        assert_eq!(state(&location, "me/voice"), LocalState::Partial { bytes_on_disk: 4 });
        let (_dir, location) = cache_with(&[&VOXCPM_0_5B[..3], &[("tokenizer.json", b"")]].concat());
        let LocalState::Damaged { file, problem, .. } = state(&location, "me/voice") else { panic!("not damaged") };
        assert_eq!((file.as_str(), problem.as_str()), ("tokenizer.json", "is empty"));
    }

    #[test]
    fn only_a_part_file_is_partial_and_nothing_is_not_installed() {
        let dir = tempfile::tempdir().unwrap();
        let location = HubLocation::new("http://127.0.0.1:9", dir.path());
        assert_eq!(state(&location, "me/voice"), LocalState::NotInstalled);
        let blobs = location.repo_dir("me/voice").join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(blobs.join("abc.part"), b"123").unwrap();
        assert_eq!(state(&location, "me/voice"), LocalState::Partial { bytes_on_disk: 3 });
    }
}
