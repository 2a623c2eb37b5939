//! Downloading a repository into the cache, for `voxcpm fetch` and the plugin's model manager
//! alike: progress over all files, cancel, resume, a disk-space check first and a check of
//! every file after.
//!
//! The transfer itself is hf-hub 0.4.3's sync API (`ApiRepo::download_with_progress`). What it
//! does, read from its `src/api/sync.rs`, and what this module builds on:
//! - it writes `blobs/<etag>.part` in append mode under an exclusive lock on `blobs/<etag>.lock`,
//!   and when a `.part` exists it asks for `Range: bytes=<its length>-`: an interrupted
//!   download resumes. It renames the `.part` to the blob only when the body has been read to
//!   the end, then links `snapshots/<commit>/<file>` to it and writes `refs/main`;
//! - its progress sees `init(size)` (twice) and then `update(offset)` with the resume offset,
//!   then `update(n)` per read; `update` cannot fail, so a cancel unwinds out of it with a
//!   private payload ([`CancelUnwind`]) caught here. The unwind drops its file handle and its
//!   lock (the lock file stays, as after any hf-hub download), so the `.part` is kept and
//!   resumed by the next download;
//! - it verifies nothing, and follows a `Range` request whatever the server answers: the size
//!   and the SHA-256 are checked here.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use hf_hub::api::Progress;
use hf_hub::api::sync::ApiError;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::catalog::human_bytes;
use super::location::HubLocation;
use super::{OPTIONAL_FILES, REQUIRED, is_repo_id, required_files};

/// Where a download stands, sent to the caller's report function as bytes arrive.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadProgress {
    pub repo: String,
    /// The file being transferred.
    pub file: String,
    /// Bytes of the repository's files on disk, across all files (resumed ones included).
    pub done_bytes: u64,
    pub total_bytes: u64,
    /// Averaged over this download (resumed bytes are not counted as transferred).
    pub bytes_per_second: f64,
    pub seconds_left: Option<f64>,
}

/// Why a download did not finish. Every variant names the repository; what was downloaded
/// before stays in the cache and usable.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{0:?} is not a Hugging Face repository id (owner/name)")]
    InvalidRepo(String),

    #[error(
        "cannot download {file} from {repo} at {endpoint}: {reason}. Check the network; what was \
         downloaded before is kept and a later download resumes"
    )]
    Unreachable { repo: String, file: String, endpoint: String, reason: String },

    #[error("{repo} is not a VoxCPM checkpoint: it has {missing}")]
    NotACheckpoint { repo: String, missing: String },

    #[error(
        "not enough disk space for {repo} in {}: it needs {needed} more bytes ({}), {available} bytes \
         ({}) are free", dir.display(), human_bytes(*needed), human_bytes(*available)
    )]
    NoSpace { repo: String, dir: PathBuf, needed: u64, available: u64 },

    #[error("{file} of {repo} arrived damaged ({problem}); it was deleted: download it again")]
    Damaged { repo: String, file: String, problem: String },

    #[error("cannot use the cache at {}: {source}", path.display())]
    Cache { path: PathBuf, source: io::Error },

    #[error("{file} of {repo} is being downloaded by another program; try again when it is done")]
    Busy { repo: String, file: String },

    #[error("the download of {repo} was cancelled; it resumes where it stopped")]
    Cancelled { repo: String },
}

impl From<DownloadError> for crate::Error {
    fn from(e: DownloadError) -> Self {
        crate::Error::Fetch(e.to_string())
    }
}

/// Free bytes on the file system holding a directory (injectable for tests).
pub type FreeSpace = Arc<dyn Fn(&Path) -> io::Result<u64> + Send + Sync>;

/// Downloads repositories from one Hub into one cache.
#[derive(Clone)]
pub struct Downloader {
    location: HubLocation,
    free_space: FreeSpace,
}

impl Downloader {
    pub fn new(location: HubLocation) -> Downloader {
        Downloader { location, free_space: Arc::new(|dir: &Path| fs4::available_space(dir)) }
    }

    /// Measures free space with `free_space` instead of asking the file system.
    pub fn with_free_space(self, free_space: impl Fn(&Path) -> io::Result<u64> + Send + Sync + 'static) -> Downloader {
        Downloader { free_space: Arc::new(free_space), ..self }
    }

    pub fn location(&self) -> &HubLocation {
        &self.location
    }

    /// Downloads what the cache lacks of `repo` (the checkpoint's files from its file list) and
    /// returns the snapshot directory. `report` hears of every step; setting `cancel` stops at
    /// the next bytes received, keeping them for a later download.
    pub fn download(
        &self,
        repo: &str,
        cancel: &AtomicBool,
        report: &mut dyn FnMut(&DownloadProgress),
    ) -> Result<PathBuf, DownloadError> {
        if !is_repo_id(repo) {
            return Err(DownloadError::InvalidRepo(repo.to_owned()));
        }
        let unreachable = |file: &str, reason: String| DownloadError::Unreachable {
            repo: repo.to_owned(),
            file: file.to_owned(),
            endpoint: self.location.endpoint.clone(),
            reason,
        };
        // The file list comes first; without it nothing, starting with the config, can come.
        let first = REQUIRED[0][0];
        let api = self.location.api(repo).map_err(|e| unreachable(first, e.to_string()))?;
        let listing: Listing = api
            .info_request()
            .query("blobs", "true")
            .call()
            .map_err(|e| unreachable(first, format!("its file list did not come ({e})")))?
            .into_json()
            .map_err(|e| unreachable(first, format!("its file list is unreadable ({e})")))?;
        let plan = Plan::new(repo, &self.location, &listing)?;
        self.check_space(repo, &plan)?;
        let mut tracker = Tracker::new(repo, &plan, cancel, report);
        tracker.emit();
        for file in plan.files.iter().filter(|f| !f.present) {
            if cancel.load(Ordering::Relaxed) {
                return Err(DownloadError::Cancelled { repo: repo.to_owned() });
            }
            remove_stale_link(&plan.snapshot.join(&file.name))?;
            tracker.start_file(file);
            let outcome = catch_unwind(AssertUnwindSafe(|| api.download_with_progress(&file.name, &mut tracker)));
            let pointer = match outcome {
                Ok(Ok(pointer)) => pointer,
                Ok(Err(ApiError::LockAcquisition(_))) => {
                    return Err(DownloadError::Busy { repo: repo.to_owned(), file: file.name.clone() });
                }
                Ok(Err(e)) => return Err(unreachable(&file.name, e.to_string())),
                Err(payload) if payload.is::<CancelUnwind>() => {
                    return Err(DownloadError::Cancelled { repo: repo.to_owned() });
                }
                Err(payload) => resume_unwind(payload),
            };
            verify(repo, &file.name, &pointer, tracker.file_size)?;
            tracker.finish_file();
        }
        Ok(plan.snapshot)
    }

    /// Refuses before any transfer when the file system cannot hold what is left to fetch.
    fn check_space(&self, repo: &str, plan: &Plan) -> Result<(), DownloadError> {
        let needed = plan.remaining_bytes(&self.location.repo_dir(repo).join("blobs"))?;
        let dir = self.location.existing_ancestor();
        let available =
            (self.free_space)(dir).map_err(|source| DownloadError::Cache { path: dir.to_owned(), source })?;
        if available < needed {
            return Err(DownloadError::NoSpace { repo: repo.to_owned(), dir: dir.to_owned(), needed, available });
        }
        Ok(())
    }
}

/// The Hub's answer to `GET /api/models/{repo}/revision/main?blobs=true`.
#[derive(Deserialize)]
struct Listing {
    sha: String,
    siblings: Vec<ListedFile>,
}

#[derive(Deserialize)]
struct ListedFile {
    rfilename: String,
    size: Option<u64>,
    #[serde(rename = "blobId")]
    blob_id: Option<String>,
    lfs: Option<LfsFile>,
}

#[derive(Deserialize)]
struct LfsFile {
    sha256: String,
    size: u64,
}

/// One file to have in the snapshot.
struct PlannedFile {
    name: String,
    /// From the file list (0 when it gives none: then the size the download announces counts).
    size: u64,
    /// The name its blob will have (the LFS SHA-256 or the git blob id), if listed.
    etag: Option<String>,
    /// Already in the snapshot with the listed size.
    present: bool,
}

struct Plan {
    snapshot: PathBuf,
    files: Vec<PlannedFile>,
}

impl Plan {
    fn new(repo: &str, location: &HubLocation, listing: &Listing) -> Result<Plan, DownloadError> {
        let commit_is_a_name = !listing.sha.is_empty() && listing.sha.chars().all(|c| c.is_ascii_alphanumeric());
        if !commit_is_a_name {
            let reason = format!("its file list names {:?} as the commit, which is not a commit id", listing.sha);
            return Err(DownloadError::Unreachable {
                repo: repo.to_owned(),
                file: REQUIRED[0][0].into(),
                endpoint: location.endpoint.clone(),
                reason,
            });
        }
        let listed = |name: &str| listing.siblings.iter().find(|f| f.rfilename == name);
        let required = required_files(|name| listed(name).is_some())
            .map_err(|missing| DownloadError::NotACheckpoint { repo: repo.to_owned(), missing })?;
        let optional = OPTIONAL_FILES.into_iter().filter(|name| listed(name).is_some());
        let snapshot = location.repo_dir(repo).join("snapshots").join(&listing.sha);
        let files = required
            .into_iter()
            .chain(optional)
            .filter_map(listed)
            .map(|file| {
                let size = file.lfs.as_ref().map(|lfs| lfs.size).or(file.size).unwrap_or(0);
                let on_disk = std::fs::metadata(snapshot.join(&file.rfilename)).map_or(0, |m| m.len());
                PlannedFile {
                    name: file.rfilename.clone(),
                    size,
                    etag: file.lfs.as_ref().map(|lfs| lfs.sha256.clone()).or_else(|| file.blob_id.clone()),
                    present: on_disk > 0 && (size == 0 || on_disk == size),
                }
            })
            .collect();
        Ok(Plan { snapshot, files })
    }

    /// Bytes still to transfer: the missing files less what their `.part` files hold. A
    /// `.part` as long as its file (or longer) is deleted: hf-hub would ask for a range past the
    /// end, which the Hub refuses.
    fn remaining_bytes(&self, blobs: &Path) -> Result<u64, DownloadError> {
        let mut needed = 0;
        for file in self.files.iter().filter(|f| !f.present) {
            let part = file.etag.as_ref().map(|etag| blobs.join(format!("{etag}.part")));
            let resumed = part.as_ref().and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len());
            if let Some(part) = part.filter(|_| file.size > 0 && resumed >= file.size) {
                std::fs::remove_file(&part).map_err(|source| DownloadError::Cache { path: part, source })?;
                needed += file.size;
            } else {
                needed += file.size.saturating_sub(resumed);
            }
        }
        Ok(needed)
    }
}

/// A link left in the snapshot whose blob is gone (a file deleted after failing verification,
/// or by hand): hf-hub would neither replace nor follow it.
fn remove_stale_link(pointer: &Path) -> Result<(), DownloadError> {
    let is_link = std::fs::symlink_metadata(pointer).is_ok_and(|m| m.file_type().is_symlink());
    if is_link && std::fs::metadata(pointer).is_err() {
        std::fs::remove_file(pointer).map_err(|source| DownloadError::Cache { path: pointer.to_owned(), source })?;
    }
    Ok(())
}

/// Checks a downloaded file: its size is the one the server announced and, for LFS files
/// (whose etag is their SHA-256), its SHA-256. A bad blob is deleted, so that its snapshot link
/// dangles and the repository reads as damaged until downloaded again.
fn verify(repo: &str, name: &str, pointer: &Path, announced: Option<u64>) -> Result<(), DownloadError> {
    let cache_error = |path: &Path, source| DownloadError::Cache { path: path.to_owned(), source };
    let blob = std::fs::canonicalize(pointer).map_err(|e| cache_error(pointer, e))?;
    let length = std::fs::metadata(&blob).map_err(|e| cache_error(&blob, e))?.len();
    let etag = blob.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
    let problem = match announced {
        Some(size) if size != length => format!("{length} bytes where the Hub announced {size}"),
        _ if is_sha256(&etag) && sha256_hex(&blob).map_err(|e| cache_error(&blob, e))? != etag => {
            "its SHA-256 differs from the Hub's".to_owned()
        }
        _ => return Ok(()),
    };
    std::fs::remove_file(&blob).map_err(|e| cache_error(&blob, e))?;
    Err(DownloadError::Damaged { repo: repo.to_owned(), file: name.to_owned(), problem })
}

fn is_sha256(etag: &str) -> bool {
    etag.len() == 64 && etag.chars().all(|c| c.is_ascii_hexdigit())
}

fn sha256_hex(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The unwind payload that carries a cancel out of hf-hub's transfer loop.
struct CancelUnwind;

/// Turns hf-hub's per-file progress calls into [`DownloadProgress`] over the whole repository.
struct Tracker<'a> {
    repo: &'a str,
    cancel: &'a AtomicBool,
    report: &'a mut dyn FnMut(&DownloadProgress),
    total: u64,
    /// Bytes of the files complete on disk.
    finished: u64,
    file: String,
    /// The current file's size in the file list.
    file_planned: u64,
    /// The current file's size as its download announced it.
    file_size: Option<u64>,
    file_done: u64,
    /// The next `update` carries the resume offset, not bytes received.
    expect_offset: bool,
    started: Instant,
    transferred: u64,
}

impl<'a> Tracker<'a> {
    fn new(repo: &'a str, plan: &Plan, cancel: &'a AtomicBool, report: &'a mut dyn FnMut(&DownloadProgress)) -> Self {
        Tracker {
            repo,
            cancel,
            report,
            total: plan.files.iter().map(|f| f.size).sum(),
            finished: plan.files.iter().filter(|f| f.present).map(|f| f.size).sum(),
            file: String::new(),
            file_planned: 0,
            file_size: None,
            file_done: 0,
            expect_offset: false,
            started: Instant::now(),
            transferred: 0,
        }
    }

    fn start_file(&mut self, file: &PlannedFile) {
        self.file = file.name.clone();
        self.file_planned = file.size;
        self.file_size = None;
        self.file_done = 0;
    }

    fn finish_file(&mut self) {
        self.finished += self.file_size.unwrap_or(self.file_planned);
        self.file_done = 0;
        self.emit();
    }

    fn emit(&mut self) {
        let done = self.finished + self.file_done;
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = if seconds > 0.0 { self.transferred as f64 / seconds } else { 0.0 };
        let seconds_left = (rate > 0.0).then(|| self.total.saturating_sub(done) as f64 / rate);
        (self.report)(&DownloadProgress {
            repo: self.repo.to_owned(),
            file: self.file.clone(),
            done_bytes: done,
            total_bytes: self.total,
            bytes_per_second: rate,
            seconds_left,
        });
    }
}

impl Progress for &mut Tracker<'_> {
    fn init(&mut self, size: usize, _filename: &str) {
        let size = size as u64;
        if self.file_size.is_none() {
            // The listing's size is a plan; the server's answer is what arrives.
            self.total = self.total - self.file_planned + size;
            self.file_planned = size;
        }
        self.file_size = Some(size);
        self.file_done = 0;
        self.expect_offset = true;
    }

    fn update(&mut self, size: usize) {
        if self.cancel.load(Ordering::Relaxed) {
            resume_unwind(Box::new(CancelUnwind));
        }
        let size = size as u64;
        if std::mem::take(&mut self.expect_offset) {
            self.file_done = size;
        } else {
            self.file_done += size;
            self.transferred += size;
        }
        self.file_done = self.file_done.min(self.file_size.unwrap_or(u64::MAX));
        self.emit();
    }

    fn finish(&mut self) {}
}
