//! Downloading a model from a Hub (a local stand-in on 127.0.0.1): progress, interruption and
//! resume, cancel and resume, corrupt files, a Hub that is down, and a full disk.

#[path = "../common/fake_hub.rs"]
mod fake_hub;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use fake_hub::{FakeHub, FakeRepo, TINY_CHECKPOINT};
use voxcpm_engine::hub::{self, DownloadError, DownloadProgress, Downloader, HubLocation, LocalState, local};

const REPO: &str = "test/tiny";
const WEIGHTS: &str = "model.safetensors";

fn tiny_repo() -> FakeRepo {
    FakeRepo::from_dir(REPO, Path::new(TINY_CHECKPOINT))
}

/// A Hub serving the tiny checkpoint, an empty cache, and a downloader between them.
fn setup() -> (FakeHub, tempfile::TempDir, Downloader) {
    let hub = FakeHub::start(vec![tiny_repo()]);
    let cache = tempfile::tempdir().unwrap();
    let downloader = Downloader::new(HubLocation::new(hub.endpoint(), cache.path()));
    (hub, cache, downloader)
}

/// Downloads `REPO`, keeping every progress report.
fn download(downloader: &Downloader, cancel: &AtomicBool) -> (Result<PathBuf, DownloadError>, Vec<DownloadProgress>) {
    let mut reports = Vec::new();
    let result = downloader.download(REPO, cancel, &mut |p| reports.push(p.clone()));
    (result, reports)
}

fn state(downloader: &Downloader) -> LocalState {
    local::state(downloader.location(), REPO)
}

/// Every file of the fixture is in `snapshot` with the same bytes.
fn assert_identical(snapshot: &Path) {
    let repo = tiny_repo();
    for file in &repo.files {
        let got = std::fs::read(snapshot.join(&file.name)).unwrap();
        assert!(got == file.bytes, "{} differs from the served file", file.name);
    }
}

fn weights_blob(downloader: &Downloader, extension: &str) -> PathBuf {
    let sha = fake_hub::hex_sha256(tiny_repo().file(WEIGHTS));
    downloader.location().repo_dir(REPO).join("blobs").join(format!("{sha}{extension}"))
}

#[test]
fn a_full_download_reports_monotone_progress_and_ends_installed() {
    let (_hub, _cache, downloader) = setup();
    let (result, reports) = download(&downloader, &AtomicBool::new(false));
    let snapshot = result.unwrap();
    let total: u64 = tiny_repo().files.iter().map(|f| f.bytes.len() as u64).sum();
    assert!(reports.len() > 5, "{} reports", reports.len());
    for pair in reports.windows(2) {
        assert!(pair[1].done_bytes >= pair[0].done_bytes, "progress went back: {pair:?}");
    }
    for report in &reports {
        assert_eq!(report.total_bytes, total);
        assert!(report.done_bytes <= total);
        assert!(report.bytes_per_second.is_finite() && report.bytes_per_second >= 0.0, "{report:?}");
        assert!(report.seconds_left.is_none_or(|s| s.is_finite() && s >= 0.0), "{report:?}");
    }
    assert_eq!(reports.last().unwrap().done_bytes, total);
    assert!(reports.iter().any(|r| r.file == WEIGHTS && r.done_bytes < total));
    assert_identical(&snapshot);
    assert_eq!(state(&downloader), LocalState::Installed { snapshot: snapshot.clone(), bytes_on_disk: total });
    assert_eq!(hub::resolve_cached(REPO, downloader.location()).unwrap(), snapshot);
}

#[test]
fn an_interrupted_download_is_partial_and_the_next_one_resumes_with_a_range() {
    let (hub, _cache, downloader) = setup();
    hub.cut_next_transfer(WEIGHTS, 300_000);
    let err = download(&downloader, &AtomicBool::new(false)).0.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, DownloadError::Unreachable { .. }), "{err:?}");
    assert!(message.contains(WEIGHTS) && message.contains(REPO), "{message}");
    assert!(matches!(state(&downloader), LocalState::Partial { .. }), "{:?}", state(&downloader));
    assert_eq!(std::fs::metadata(weights_blob(&downloader, ".part")).unwrap().len(), 300_000);
    let err = hub::resolve_cached(REPO, downloader.location()).unwrap_err().to_string();
    assert!(err.contains("partly downloaded") && err.contains("Models section"), "{err}");

    let snapshot = download(&downloader, &AtomicBool::new(false)).0.unwrap();
    assert_eq!(hub.transfer_starts(WEIGHTS), [0, 300_000]);
    assert_identical(&snapshot);
    assert!(state(&downloader).installed_dir().is_some());
}

#[test]
fn a_cancelled_download_keeps_its_part_and_lock_files_and_resumes() {
    let (hub, _cache, downloader) = setup();
    let cancel = AtomicBool::new(false);
    let weights = tiny_repo().file(WEIGHTS).len() as u64;
    let mut reports = Vec::new();
    let result = downloader.download(REPO, &cancel, &mut |p| {
        if p.file == WEIGHTS && p.done_bytes > 200_000 {
            cancel.store(true, Ordering::Relaxed);
        }
        reports.push(p.clone());
    });
    let err = result.unwrap_err();
    assert!(matches!(&err, DownloadError::Cancelled { repo } if repo == REPO), "{err:?}");
    let part = std::fs::metadata(weights_blob(&downloader, ".part")).unwrap().len();
    assert!(part > 0 && part < weights, "{part} bytes of {weights} kept");
    assert!(weights_blob(&downloader, ".lock").exists());
    assert!(matches!(state(&downloader), LocalState::Partial { .. }));

    let snapshot = download(&downloader, &AtomicBool::new(false)).0.unwrap();
    assert_eq!(hub.transfer_starts(WEIGHTS), [0, part]);
    assert_identical(&snapshot);
}

#[test]
fn a_corrupt_file_is_named_deleted_and_leaves_the_model_damaged_until_downloaded_again() {
    let (hub, _cache, downloader) = setup();
    hub.corrupt("audiovae.pth", true);
    let err = download(&downloader, &AtomicBool::new(false)).0.unwrap_err();
    let message = err.to_string();
    assert!(matches!(&err, DownloadError::Damaged { file, .. } if file == "audiovae.pth"), "{err:?}");
    assert!(message.contains("audiovae.pth") && message.contains("SHA-256") && message.contains(REPO), "{message}");
    let LocalState::Damaged { file, .. } = state(&downloader) else { panic!("{:?}", state(&downloader)) };
    assert_eq!(file, "audiovae.pth");
    assert!(hub::resolve_cached(REPO, downloader.location()).is_err());

    hub.corrupt("audiovae.pth", false);
    let snapshot = download(&downloader, &AtomicBool::new(false)).0.unwrap();
    assert_identical(&snapshot);
    assert!(state(&downloader).installed_dir().is_some());
}

#[test]
fn a_hub_that_is_down_is_a_clear_error_and_an_installed_model_stays_installed() {
    let (hub, _cache, downloader) = setup();
    let snapshot = download(&downloader, &AtomicBool::new(false)).0.unwrap();
    let endpoint = hub.endpoint();
    drop(hub);
    let err = download(&downloader, &AtomicBool::new(false)).0.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, DownloadError::Unreachable { .. }), "{err:?}");
    assert!(message.contains(REPO) && message.contains(&endpoint) && message.contains("file list"), "{message}");
    assert_eq!(state(&downloader).installed_dir(), Some(snapshot.as_path()));
    assert_identical(&snapshot);
}

#[test]
fn a_full_disk_is_refused_before_any_transfer_and_counts_only_what_is_left() {
    let (hub, _cache, downloader) = setup();
    let total: u64 = tiny_repo().files.iter().map(|f| f.bytes.len() as u64).sum();
    let full = downloader.clone().with_free_space(|_| Ok(1000));
    let err = download(&full, &AtomicBool::new(false)).0.unwrap_err();
    assert!(matches!(err, DownloadError::NoSpace { needed, available: 1000, .. } if needed == total), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&total.to_string()) && message.contains("1000 bytes"), "{message}");
    assert!(hub.served().is_empty(), "{:?}", hub.served());
    assert_eq!(state(&downloader), LocalState::NotInstalled);

    // After an interruption only the rest is needed.
    hub.cut_next_transfer(WEIGHTS, 300_000);
    download(&downloader, &AtomicBool::new(false)).0.unwrap_err();
    let config = tiny_repo().file("config.json").len() as u64;
    let left = total - config - 300_000;
    let tight = downloader.clone().with_free_space(move |_| Ok(left - 1));
    let err = download(&tight, &AtomicBool::new(false)).0.unwrap_err();
    assert!(matches!(err, DownloadError::NoSpace { needed, .. } if needed == left), "{err:?}");
    let enough = downloader.clone().with_free_space(move |_| Ok(left));
    assert_identical(&download(&enough, &AtomicBool::new(false)).0.unwrap());
}

#[test]
fn a_repository_without_weights_is_not_a_checkpoint() {
    let mut repo = tiny_repo();
    repo.files.retain(|f| f.name != WEIGHTS);
    let hub = FakeHub::start(vec![repo]);
    let cache = tempfile::tempdir().unwrap();
    let downloader = Downloader::new(HubLocation::new(hub.endpoint(), cache.path()));
    let err = download(&downloader, &AtomicBool::new(false)).0.unwrap_err().to_string();
    assert!(err.contains(REPO) && err.contains("model.safetensors or pytorch_model.bin"), "{err}");
}
