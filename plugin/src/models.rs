//! The model manager behind the editor's Models section: downloads a repository into the
//! Hugging Face cache on a thread of its own (never the GUI's or the audio thread), at most one
//! download per repository in the whole process, with progress the editor reads under a short
//! lock, and a cancel that keeps what arrived for the next download to resume.
//!
//! One manager serves every instance in the process ([`ModelManager::shared`]); it lives while
//! an instance holds it, and dropping the last one cancels and joins its downloads, so that no
//! thread outlives the plugin's code when a host unloads it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;

use voxcpm_engine::hub::{DownloadError, DownloadProgress, Downloader, HubLocation, LocalState, local};

/// Downloads completed in this process: a worker whose model was missing tries again when it
/// changes.
static INSTALLS: AtomicU64 = AtomicU64::new(0);

/// How many downloads have completed in this process.
pub fn installs() -> u64 {
    INSTALLS.load(Ordering::Acquire)
}

/// Where the download of one repository stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Transfer {
    /// None started since the manager was made.
    Idle,
    /// Running; the latest progress once the Hub has answered.
    Running(Option<DownloadProgress>),
    Finished,
    /// Stopped by the user; the next download resumes it.
    Cancelled,
    Failed(String),
}

struct Job {
    cancel: AtomicBool,
    transfer: Mutex<Transfer>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Job {
    fn is_running(&self) -> bool {
        matches!(*lock(&self.transfer), Transfer::Running(_))
    }
}

pub struct ModelManager {
    downloader: Downloader,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

impl ModelManager {
    pub fn new(downloader: Downloader) -> ModelManager {
        ModelManager { downloader, jobs: Mutex::default() }
    }

    /// The process-wide manager over the Hub and cache the environment names (the ones the
    /// worker resolves models in), made on first use.
    pub fn shared() -> Arc<ModelManager> {
        static SHARED: Mutex<Weak<ModelManager>> = Mutex::new(Weak::new());
        let mut shared = lock(&SHARED);
        shared.upgrade().unwrap_or_else(|| {
            let manager = Arc::new(ModelManager::new(Downloader::new(HubLocation::from_env())));
            *shared = Arc::downgrade(&manager);
            manager
        })
    }

    pub fn location(&self) -> &HubLocation {
        self.downloader.location()
    }

    /// What the cache holds of `repo` (read from the disk; a few file look-ups).
    pub fn local_state(&self, repo: &str) -> LocalState {
        local::state(self.location(), repo)
    }

    /// Starts downloading `repo` on a new thread; false (and nothing started) when it is
    /// already being downloaded.
    pub fn start(&self, repo: &str) -> bool {
        let mut jobs = lock(&self.jobs);
        if jobs.get(repo).is_some_and(|job| job.is_running()) {
            return false;
        }
        let job = Arc::new(Job {
            cancel: AtomicBool::new(false),
            transfer: Mutex::new(Transfer::Running(None)),
            thread: Mutex::new(None),
        });
        let (downloader, running, name) = (self.downloader.clone(), Arc::clone(&job), repo.to_owned());
        let thread = std::thread::Builder::new()
            .name("voxcpm-model-download".into())
            .spawn(move || download(&downloader, &name, &running));
        match thread {
            Ok(thread) => *lock(&job.thread) = Some(thread),
            Err(e) => *lock(&job.transfer) = Transfer::Failed(format!("cannot start the download thread: {e}")),
        }
        jobs.insert(repo.to_owned(), job);
        true
    }

    /// Asks `repo`'s download to stop at the next bytes received.
    pub fn cancel(&self, repo: &str) {
        if let Some(job) = lock(&self.jobs).get(repo) {
            job.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Where `repo`'s download stands.
    pub fn transfer(&self, repo: &str) -> Transfer {
        lock(&self.jobs).get(repo).map_or(Transfer::Idle, |job| lock(&job.transfer).clone())
    }

    /// Waits for `repo`'s download thread, if any, to end.
    pub fn wait(&self, repo: &str) {
        let job = lock(&self.jobs).get(repo).cloned();
        if let Some(thread) = job.and_then(|job| lock(&job.thread).take()) {
            let _ = thread.join();
        }
    }
}

impl Drop for ModelManager {
    fn drop(&mut self) {
        let jobs: Vec<Arc<Job>> = lock(&self.jobs).drain().map(|(_, job)| job).collect();
        for job in &jobs {
            job.cancel.store(true, Ordering::Relaxed);
        }
        for thread in jobs.iter().filter_map(|job| lock(&job.thread).take()) {
            let _ = thread.join();
        }
    }
}

/// The download thread's body: progress into the job as it comes, the outcome at the end.
fn download(downloader: &Downloader, repo: &str, job: &Job) {
    let result = downloader.download(repo, &job.cancel, &mut |progress| {
        *lock(&job.transfer) = Transfer::Running(Some(progress.clone()));
    });
    let outcome = match result {
        Ok(_) => {
            INSTALLS.fetch_add(1, Ordering::AcqRel);
            Transfer::Finished
        }
        Err(DownloadError::Cancelled { .. }) => Transfer::Cancelled,
        Err(e) => Transfer::Failed(e.to_string()),
    };
    *lock(&job.transfer) = outcome;
}

/// A lock that outlives a panic elsewhere (the state it guards is always whole).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[path = "../../engine/tests/common/fake_hub.rs"]
mod fake_hub;

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::fake_hub::{FakeHub, FakeRepo, TINY_CHECKPOINT};
    use super::*;

    const REPO: &str = "test/tiny";
    const WEIGHTS: &str = "model.safetensors";

    fn manager(hub: &FakeHub, cache: &Path) -> ModelManager {
        ModelManager::new(Downloader::new(HubLocation::new(hub.endpoint(), cache)))
    }

    /// Waits (up to a minute, a guard against a hang, not a timing check) until `done` holds.
    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "still waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_download_runs_once_per_repository_can_be_cancelled_mid_file_and_resumes() {
        let repo = FakeRepo::from_dir(REPO, Path::new(TINY_CHECKPOINT));
        let hub = FakeHub::start(vec![FakeRepo::from_dir(REPO, Path::new(TINY_CHECKPOINT))]);
        let cache = tempfile::tempdir().unwrap();
        let manager = manager(&hub, cache.path());
        assert_eq!(manager.transfer(REPO), Transfer::Idle);
        assert_eq!(manager.local_state(REPO), LocalState::NotInstalled);

        hub.pause_next_transfer(WEIGHTS, 200_000);
        assert!(manager.start(REPO));
        let in_weights =
            |t: &Transfer| matches!(t, Transfer::Running(Some(p)) if p.file == WEIGHTS && p.done_bytes > 200_000);
        wait_until("200 kB of the weights", || in_weights(&manager.transfer(REPO)));
        assert!(!manager.start(REPO), "a second download of the same repository started");
        manager.cancel(REPO);
        hub.resume_transfers();
        manager.wait(REPO);
        assert_eq!(manager.transfer(REPO), Transfer::Cancelled);
        assert!(matches!(manager.local_state(REPO), LocalState::Partial { .. }), "{:?}", manager.local_state(REPO));

        let installs_before = installs();
        assert!(manager.start(REPO));
        manager.wait(REPO);
        assert_eq!(manager.transfer(REPO), Transfer::Finished);
        assert!(installs() > installs_before);
        let starts = hub.transfer_starts(WEIGHTS);
        assert!(starts.len() == 2 && starts[0] == 0 && starts[1] >= 200_000, "{starts:?}");
        let snapshot = manager.local_state(REPO).installed_dir().unwrap().to_owned();
        for file in &repo.files {
            assert!(std::fs::read(snapshot.join(&file.name)).unwrap() == file.bytes, "{} differs", file.name);
        }
    }

    #[test]
    fn a_failed_download_says_why() {
        let hub = FakeHub::start(vec![FakeRepo::from_dir(REPO, Path::new(TINY_CHECKPOINT))]);
        let cache = tempfile::tempdir().unwrap();
        let manager = manager(&hub, cache.path());
        assert!(manager.start("nobody/nothing"));
        manager.wait("nobody/nothing");
        let Transfer::Failed(why) = manager.transfer("nobody/nothing") else { panic!("did not fail") };
        assert!(why.contains("nobody/nothing") && why.contains("file list"), "{why}");
        assert_eq!(manager.transfer(REPO), Transfer::Idle);
    }
}
