//! The fuzz targets in the normal test suite: every saved crasher in `fuzz/regressions/`
//! replays without a panic, and a short fixed-seed campaign of each target finds nothing.

use std::time::Duration;

use voxcpm_fuzz::campaign::{self, Options};
use voxcpm_fuzz::{TARGETS, repo_root, target};

#[test]
fn saved_crashers_replay_without_a_panic() {
    let root = repo_root().join("fuzz/regressions");
    let mut failures = Vec::new();
    let mut replayed = 0;
    for dir in std::fs::read_dir(&root).expect("fuzz/regressions") {
        let dir = dir.expect("listing").path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let target = target(&name).unwrap_or_else(|| panic!("fuzz/regressions/{name} names no target"));
        let mut files: Vec<_> = std::fs::read_dir(&dir).expect("listing").map(|e| e.expect("entry").path()).collect();
        files.sort();
        for file in files.iter().filter(|f| f.extension().is_none_or(|e| e != "txt" && e != "md")) {
            let input = std::fs::read(file).expect("reading a regression case");
            replayed += 1;
            if let Err(panic) = campaign::execute(target, &input) {
                failures.push(format!("{}: {panic}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {replayed} cases panic:\n{}", failures.len(), failures.join("\n"));
}

/// A short campaign: the seeds, then up to 2000 mutated inputs or 5 s, whichever comes first.
fn smoke(name: &str) {
    let target = target(name).expect("a target");
    let options =
        Options { runs: 2000, seconds: 5.0, seed: 7, findings_dir: None, report_every: Duration::from_secs(3600) };
    let stats = campaign::run(target, &options, |_, _| {});
    let found: Vec<_> = stats.findings.iter().map(|f| format!("{} x{}: {}", f.kind, f.count, f.message)).collect();
    assert!(
        found.is_empty(),
        "{name}: {} findings in {} executions:\n{}",
        found.len(),
        stats.executions,
        found.join("\n")
    );
    assert!(stats.executions > (target.seeds)().len() as u64, "{name}: no mutated input ran");
}

macro_rules! smoke_tests {
    ($($name:ident),*) => {
        $(#[test] fn $name() { smoke(stringify!($name)); })*
        #[test]
        fn every_target_has_a_smoke_test() {
            let tested = [$(stringify!($name)),*];
            for t in TARGETS {
                assert!(tested.contains(&t.name), "no smoke test for {}", t.name);
            }
        }
    };
}

smoke_tests!(safetensors, torch, config, tokenizer, wav, script, plugin_state, lora, bridge);
