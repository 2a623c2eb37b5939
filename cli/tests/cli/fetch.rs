//! `voxcpm fetch` and `voxcpm models` against a local Hub, found through `HF_ENDPOINT` and
//! `HF_HOME` as users set them.

#[path = "../../../engine/tests/common/fake_hub.rs"]
mod fake_hub;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fake_hub::{FakeHub, FakeRepo, TINY_CHECKPOINT};

use super::VOXCPM;

/// `voxcpm ARGS` with the Hub at `endpoint` and the cache under `home`.
fn voxcpm(args: &[&str], endpoint: &str, home: &Path) -> Output {
    Command::new(VOXCPM)
        .args(args)
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HOME", home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

#[test]
fn fetch_downloads_into_hf_home_and_models_lists_the_releases() {
    let repo = FakeRepo::from_dir("test/tiny", Path::new(TINY_CHECKPOINT));
    let hub = FakeHub::start(vec![FakeRepo::from_dir("test/tiny", Path::new(TINY_CHECKPOINT))]);
    let home = tempfile::tempdir().unwrap();
    let output = voxcpm(&["fetch", "test/tiny"], &hub.endpoint(), home.path());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let snapshot = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    assert!(snapshot.starts_with(home.path().join("hub/models--test--tiny/snapshots")), "{}", snapshot.display());
    for file in &repo.files {
        assert!(std::fs::read(snapshot.join(&file.name)).unwrap() == file.bytes, "{} differs", file.name);
    }

    let listing = voxcpm(&["models"], &hub.endpoint(), home.path());
    let stdout = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
    for (name, repo) in
        [("VoxCPM2", "openbmb/VoxCPM2"), ("VoxCPM1.5", "openbmb/VoxCPM1.5"), ("VoxCPM-0.5B", "openbmb/VoxCPM-0.5B")]
    {
        let line = stdout.lines().find(|l| l.contains(repo)).unwrap_or_else(|| panic!("{repo} missing:\n{stdout}"));
        assert!(line.starts_with(name) && line.contains("not downloaded") && line.contains("GB"), "{line}");
        let folder = home.path().join("hub").join(format!("models--{}", repo.replace('/', "--")));
        assert!(line.ends_with(&folder.display().to_string()), "{line}");
    }
}

#[test]
fn fetch_of_an_unknown_repository_fails_in_one_line_naming_it() {
    let hub = FakeHub::start(Vec::new());
    let home = tempfile::tempdir().unwrap();
    let output = voxcpm(&["fetch", "nobody/nothing"], &hub.endpoint(), home.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("nobody/nothing") && stderr.contains(&hub.endpoint()), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
