//! `voxcpm batch --shard I/N` and `--merge`: a script rendered by separate processes, one per
//! shard, and joined; and the Slurm and Kubernetes examples in docs/examples/ run as written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::VOXCPM;
use crate::common::fixtures;

/// Ids chosen to give each of 3 shards a line; `defeat` fails (its voice clip is missing) and
/// the last row has no id.
const SCRIPT: &str = "id\ttext\tvoice\n\
                      intro\tWelcome back, commander.\t\n\
                      alarm\tHull breach on deck four!\t\n\
                      briefing\tThe convoy leaves at dawn.\t\n\
                      defeat\tWe lost them.\tmissing.wav\n\
                      radio_1\tCopy that.\t\n\
                      a\tA.\t\n\
                      foobar\tFoo bar.\t\n\
                      \tA line without an id.\t\n";

/// The ids of [`SCRIPT`] in order (the last row has none).
const SCRIPT_IDS: [Option<&str>; 8] =
    [Some("intro"), Some("alarm"), Some("briefing"), Some("defeat"), Some("radio_1"), Some("a"), Some("foobar"), None];

/// Short takes with the demo checkpoint; the seeds are derived from each line's id and text.
const SHORT: [&str; 4] = ["--min-len", "2", "--max-len", "2"];

/// `voxcpm batch` with the demo checkpoint.
fn batch() -> Command {
    let mut command = Command::new(VOXCPM);
    command.arg("batch").env_remove("VOXCPM_MODEL");
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

fn ids(manifest: &Value) -> Vec<Option<String>> {
    manifest["lines"].as_array().unwrap().iter().map(|line| line["id"].as_str().map(str::to_owned)).collect()
}

/// `voxcpm batch SCRIPT -o OUT [--shard I/N]` with short takes; the exit status is not checked
/// (a script with a failing line exits 1).
fn render(script: &Path, out: &Path, shard: Option<&str>) -> Output {
    let mut command = batch();
    command.arg(script).arg("-o").arg(out).args(SHORT);
    if let Some(shard) = shard {
        command.args(["--shard", shard]);
    }
    command.output().unwrap()
}

/// Renders every shard of `count` into `root/shard-I`, each in its own process.
fn render_shards(script: &Path, root: &Path, count: u64) -> Vec<PathBuf> {
    (0..count)
        .map(|index| {
            let dir = root.join(format!("shard-{index}"));
            render(script, &dir, Some(&format!("{index}/{count}")));
            assert!(dir.join("manifest.json").is_file(), "shard {index}/{count} wrote no manifest");
            dir
        })
        .collect()
}

fn merge(dirs: &[PathBuf], out: &Path) -> Output {
    batch().arg("--merge").args(dirs).arg("-o").arg(out).output().unwrap()
}

/// FNV-1a 64 of "a" and of "foobar": the test vectors published with the FNV specification.
const FNV1A_64_OF_A: u64 = 0xaf63_dc4c_8601_ec8c;
const FNV1A_64_OF_FOOBAR: u64 = 0x8594_4171_f739_67e8;

#[test]
fn shards_rendered_apart_merge_into_what_one_run_renders() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("lines.tsv");
    std::fs::write(&script, SCRIPT).unwrap();
    let whole = tmp.path().join("whole");
    // Finished with failed lines: exit status 3, told apart from a run that stopped (1).
    assert_eq!(render(&script, &whole, None).status.code(), Some(3), "a failed line fails the run");
    let shards = render_shards(&script, tmp.path(), 3);

    let mut owned = Vec::new();
    for (index, dir) in shards.iter().enumerate() {
        let manifest = manifest(dir);
        assert_eq!((&manifest["shard"]["index"], &manifest["shard"]["count"]), (&index.into(), &3.into()));
        assert!(!manifest["lines"].as_array().unwrap().is_empty(), "shard {index} got no line");
        owned.push(ids(&manifest));
    }
    // The id decides the shard: FNV-1a 64 of the id, modulo the count; a row without one is shard 0's.
    assert!(owned[(FNV1A_64_OF_A % 3) as usize].contains(&Some("a".into())), "{owned:?}");
    assert!(owned[(FNV1A_64_OF_FOOBAR % 3) as usize].contains(&Some("foobar".into())), "{owned:?}");
    assert!(owned[0].contains(&None), "{owned:?}");

    let merged = tmp.path().join("merged");
    let output = merge(&shards, &merged);
    assert_eq!(output.status.code(), Some(3), "the failed lines fail the merge too");
    assert!(stderr(&output).contains("3 shards merged: 8 lines (6 rendered, 0 unchanged, 2 failed)"), "{output:?}");
    let (merged, whole_manifest) = (manifest(&merged), manifest(&whole));
    let expected: Vec<Option<String>> = SCRIPT_IDS.iter().map(|id| id.map(str::to_owned)).collect();
    assert_eq!(ids(&merged), expected, "every line once, in script order");
    // Seeds, keys, durations, rows, statuses and errors: as the unsharded run recorded them.
    assert_eq!(merged["lines"], whole_manifest["lines"]);
    let failed = &merged["lines"][3];
    assert_eq!((&failed["id"], &failed["status"]), (&"defeat".into(), &"failed".into()));
    assert!(failed["error"].as_str().unwrap().contains("missing.wav"), "{failed}");
    for line in merged["lines"].as_array().unwrap() {
        let Some(file) = line["file"].as_str() else { continue };
        let (ours, theirs) = (std::fs::read(tmp.path().join("merged").join(file)).unwrap(), whole.join(file));
        assert_eq!(ours, std::fs::read(theirs).unwrap(), "{file} differs from the unsharded take");
    }
}

#[test]
fn adding_a_line_moves_no_other_line_to_another_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("lines.csv");
    let lines = "intro,One.\nalarm,Two.\nbriefing,Three.\ndefeat,Four.\nradio_1,Five.\n";
    std::fs::write(&script, format!("id,text\n{lines}")).unwrap();
    let shards = render_shards(&script, tmp.path(), 2);
    let before: Vec<_> = shards.iter().map(|dir| ids(&manifest(dir))).collect();
    assert!(before.iter().all(|ids| !ids.is_empty()), "{before:?}");

    // A new first line: every row number moves, no shard does.
    std::fs::write(&script, format!("id,text\nnew_line,Zero.\n{lines}")).unwrap();
    render_shards(&script, tmp.path(), 2);
    let mut homes = Vec::new();
    for (dir, before) in shards.iter().zip(&before) {
        let manifest = manifest(dir);
        let lines = manifest["lines"].as_array().unwrap();
        let old: Vec<_> = ids(&manifest).into_iter().filter(|id| id.as_deref() != Some("new_line")).collect();
        assert_eq!(&old, before, "{}", dir.display());
        for line in lines {
            let new = line["id"] == "new_line";
            assert_eq!(line["status"], if new { "rendered" } else { "skipped" }, "{line}");
            if new {
                homes.push(dir);
            }
        }
    }
    assert_eq!(homes.len(), 1, "the new line is rendered by exactly one shard");

    let merged = tmp.path().join("merged");
    let output = merge(&shards, &merged);
    assert!(output.status.success(), "{}", stderr(&output));
    let merged = manifest(&merged);
    let order = ["new_line", "intro", "alarm", "briefing", "defeat", "radio_1"];
    assert_eq!(ids(&merged), order.map(|id| Some(id.to_owned())));
    assert_eq!(merged["lines"][1]["row"], 3, "rows renumbered by the new line");
}

/// With more shards than lines, a shard may own none: it still writes its manifest, or the
/// merge would take it for a shard that never ran.
#[test]
fn a_shard_that_owns_no_line_still_reports_to_the_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("lines.csv");
    std::fs::write(&script, "id,text\na,A.\n").unwrap();
    let shards = render_shards(&script, tmp.path(), 2);
    let owner = (FNV1A_64_OF_A % 2) as usize;
    assert_eq!(manifest(&shards[1 - owner])["lines"], serde_json::json!([]));
    let output = merge(&shards, &tmp.path().join("merged"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(ids(&manifest(&tmp.path().join("merged"))), [Some("a".to_owned())]);
}

#[test]
fn merge_refuses_missing_repeated_foreign_and_unfinished_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("lines.tsv");
    std::fs::write(&script, SCRIPT).unwrap();
    let shards = render_shards(&script, tmp.path(), 3);
    let out = tmp.path().join("merged");
    let refused = |dirs: Vec<PathBuf>, out: &Path, expected: &[&str]| {
        let output = merge(&dirs, out);
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{dirs:?} was merged");
        assert!(expected.iter().all(|part| stderr.contains(part)), "expected {expected:?} in: {stderr}");
        assert!(!stderr.contains("panicked") && stderr.trim().lines().count() == 1, "{stderr}");
    };
    let shard = |index: usize| shards[index].clone();
    let name = |dir: &Path| dir.display().to_string();

    refused(vec![shard(0), shard(2)], &out, &["missing shard 1/3"]);
    refused(vec![shard(2)], &out, &["missing shards 0/3, 1/3"]);
    refused(vec![shard(0), shard(1), shard(2), shard(1)], &out, &["shard 1/3 is given twice", &name(&shard(1))]);

    let other_split = tmp.path().join("halves");
    render(&script, &other_split, Some("0/2"));
    refused(vec![shard(0), shard(1), shard(2), other_split.clone()], &out, &["shard 0/2", "split differently"]);

    let unsharded = tmp.path().join("unsharded");
    render(&script, &unsharded, None);
    refused(vec![shard(0), unsharded], &out, &["records no shard", "--shard I/N"]);
    refused(vec![shard(0), tmp.path().join("never_ran")], &out, &["never_ran", "no shard manifest"]);

    let edited = tmp.path().join("edited.tsv");
    std::fs::write(&edited, SCRIPT.replace("Copy that.", "Copy that, base.")).unwrap();
    let from_edited = tmp.path().join("from_edited");
    render(&edited, &from_edited, Some("1/3"));
    refused(vec![shard(0), from_edited, shard(2)], &out, &["different scripts", "edited.tsv"]);

    let other_model = tmp.path().join("other_model");
    let tiny = fixtures().join("tiny/checkpoint");
    batch()
        .arg(&script)
        .arg("-o")
        .arg(&other_model)
        .args(["--shard", "1/3", "--max-len", "2", "--model"])
        .arg(tiny)
        .output()
        .unwrap();
    refused(vec![shard(0), other_model, shard(2)], &out, &["rendered by the model", "tiny/checkpoint"]);

    refused(shards.clone(), &shard(2), &["is one of the shard directories"]);
    assert_eq!(manifest(&shard(2))["shard"]["index"], 2, "the shard's manifest is intact");

    // An interrupted shard: its manifest lists fewer lines than it owns.
    let manifest_path = shard(1).join("manifest.json");
    let mut interrupted = manifest(&shard(1));
    interrupted["lines"].as_array_mut().unwrap().pop();
    std::fs::write(&manifest_path, interrupted.to_string()).unwrap();
    refused(shards.clone(), &out, &["shard 1/3", "unfinished", "lists 1 of its 2 lines"]);
    assert!(!out.exists(), "a refused merge writes nothing");
}

#[test]
fn bad_shard_values_and_flag_mixes_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("lines.tsv");
    std::fs::write(&script, SCRIPT).unwrap();
    let out = tmp.path().join("out");
    for (value, expected) in [
        ("0/0", "N is 0: there must be at least one shard"),
        ("3/2", "shard 3 of 2 does not exist: shards are counted from 0 to 1"),
        ("2/2", "shard 2 of 2 does not exist"),
        ("x/y", "I \"x\" is not a whole number"),
        ("1/y", "N \"y\" is not a whole number"),
        ("4", "no '/'"),
    ] {
        let output = batch().arg(&script).arg("-o").arg(&out).args(["--shard", value]).output().unwrap();
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "--shard {value}: {stderr}");
        assert!(stderr.contains(&format!("'{value}'")) && stderr.contains(expected), "--shard {value}: {stderr}");
    }
    assert!(!out.exists(), "nothing rendered");

    let dir = tmp.path();
    let both = batch().arg(&script).arg("--merge").arg(dir).arg("-o").arg(&out).output().unwrap();
    assert!(stderr(&both).contains("cannot be used with"), "{}", stderr(&both));
    let shard_and_merge = batch().args(["--shard", "0/2", "--merge"]).arg(dir).arg("-o").arg(dir).output().unwrap();
    assert!(stderr(&shard_and_merge).contains("cannot be used with"), "{}", stderr(&shard_and_merge));
    let neither = batch().arg("-o").arg(&out).output().unwrap();
    assert!(stderr(&neither).contains("<SCRIPT>"), "{}", stderr(&neither));
}

/// A script of lines that all render, for the examples (whose shard steps must succeed).
fn example_script(dir: &Path) -> PathBuf {
    let script = dir.join("lines.tsv");
    std::fs::write(&script, "id\ttext\nintro\tOne.\nalarm\tTwo.\nbriefing\tThree.\ndefeat\tFour.\n").unwrap();
    script
}

/// The merged manifest of an example's run holds every line of [`example_script`] in order.
fn assert_merged_in_order(merged: &Path) {
    let manifest = manifest(merged);
    let order = ["intro", "alarm", "briefing", "defeat"];
    assert_eq!(ids(&manifest), order.map(|id| Some(id.to_owned())), "{manifest}");
    for id in order {
        assert!(merged.join(format!("{id}.wav")).is_file(), "{id}.wav was not merged");
    }
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples").join(name)
}

/// PATH with the `voxcpm` under test (and `extra`) first, as the examples call it by name.
fn path_with_voxcpm(extra: &Path) -> std::ffi::OsString {
    let bin = Path::new(VOXCPM).parent().unwrap();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths([extra.to_path_buf(), bin.to_path_buf()].into_iter().chain(std::env::split_paths(&rest)))
        .unwrap()
}

/// The Slurm example run in its three roles: submitted by hand (with an `sbatch` that records
/// its arguments), as each task of the array it submitted, and as the merge job.
#[test]
fn slurm_example_renders_one_shard_per_array_task_and_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let script = example_script(tmp.path());
    let (bin, out, log) = (tmp.path().join("bin"), tmp.path().join("renders"), tmp.path().join("sbatch.log"));
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(bin.join("sbatch"), "#!/bin/sh\necho \"$@\" >> \"$SBATCH_LOG\"\necho 42\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("sbatch"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = |slurm: &[(&str, String)]| {
        let mut command = Command::new("bash");
        command.arg(example("slurm-array.sh")).env("PATH", path_with_voxcpm(&bin)).env_remove("VOXCPM_MODEL");
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SLURM_")) {
            command.env_remove(name);
        }
        let output = command
            .env("SCRIPT", &script)
            .env("OUT", &out)
            .env("SHARDS", "3")
            .env("SBATCH_LOG", &log)
            .envs(slurm.iter().map(|(name, value)| (name, value)))
            .output()
            .unwrap();
        assert!(output.status.success(), "{slurm:?}: {}", stderr(&output));
    };

    run(&[]);
    let submitted = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = submitted.lines().collect();
    assert_eq!(calls.len(), 2, "the array, then the merge: {submitted}");
    let range = calls[0].split_whitespace().find_map(|arg| arg.strip_prefix("--array=")).expect(calls[0]);
    let (first, last) = range.split_once('-').expect(range);
    let (first, last): (u64, u64) = (first.parse().unwrap(), last.parse().unwrap());
    assert_eq!(last - first + 1, 3, "one task per shard: {range}");
    assert!(calls[1].contains("--dependency=afterany:42"), "the merge waits for the array: {}", calls[1]);

    for task in first..=last {
        let count = (last - first + 1).to_string();
        let task_env = [("SLURM_JOB_ID", "42".to_string()), ("SLURM_ARRAY_TASK_ID", task.to_string())];
        run(&[&task_env[..], &[("SLURM_ARRAY_TASK_MIN", first.to_string()), ("SLURM_ARRAY_TASK_COUNT", count)]]
            .concat());
    }
    run(&[("SLURM_JOB_ID", "43".to_string())]);
    assert_merged_in_order(&out.join("merged"));
}

/// The Kubernetes example's commands run as its pods would: each `exec voxcpm ...` line of
/// the manifest through `sh -c`, with the environment the manifest gives its containers.
#[test]
fn kubernetes_example_renders_one_shard_per_index_and_merges() {
    let yaml = std::fs::read_to_string(example("k8s-indexed-job.yaml")).unwrap();
    let commands: Vec<&str> = yaml
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("voxcpm ") || line.starts_with("exec voxcpm "))
        .collect();
    let [render_command, merge_command] = commands[..] else { panic!("expected two voxcpm commands: {commands:?}") };
    assert!(render_command.contains("--shard") && merge_command.contains("--merge"), "{commands:?}");

    // Every variable the commands use is set in the manifest (or by the Job controller), and
    // the Job runs as many indexes as SHARDS says there are shards.
    let lines: Vec<&str> = yaml.lines().map(str::trim).collect();
    let value_of = |name: &str| {
        let at = lines.iter().position(|line| *line == format!("- name: {name}"));
        at.and_then(|at| lines[at + 1].strip_prefix("value: ")).map(|v| v.trim_matches('"').to_owned())
    };
    for variable in commands.iter().flat_map(|command| command.split('$').skip(1)) {
        let name: String = variable.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
        if variable.starts_with('?') {
            continue; // the shell's exit status, not a variable
        }
        assert!(name == "JOB_COMPLETION_INDEX" || value_of(&name).is_some(), "${name} is not set in the manifest");
    }
    let completions = lines.iter().find_map(|line| line.strip_prefix("completions: ")).expect("completions");
    assert_eq!(Some(completions.to_owned()), value_of("SHARDS"), "SHARDS must equal completions");

    // The example's lines, and one that fails (its voice clip is missing): the pod rendering it
    // still succeeds, so the Job completes, and the merge lists the line as failed.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("renders");
    let script = example_script(tmp.path());
    let mut lines = std::fs::read_to_string(&script).unwrap().replacen("id\ttext\n", "id\ttext\tvoice\n", 1);
    lines.push_str("lost\tFive.\t/nonexistent/lost-voice.wav\n");
    std::fs::write(&script, lines).unwrap();
    let run = |command: &str, index: Option<u64>| {
        let mut shell = Command::new("sh");
        shell.args(["-c", command]).env("PATH", path_with_voxcpm(tmp.path())).env_remove("VOXCPM_MODEL");
        shell.env("SCRIPT", &script).env("OUT", &out).env("SHARDS", "3");
        if let Some(index) = index {
            shell.env("JOB_COMPLETION_INDEX", index.to_string());
        }
        shell.output().unwrap()
    };
    for index in 0..3 {
        let output = run(render_command, Some(index));
        assert!(output.status.success(), "index {index}: {}", stderr(&output));
    }
    let merged = run(merge_command, None);
    assert_eq!(merged.status.code(), Some(3), "the merge reports the failed line: {}", stderr(&merged));
    let manifest = manifest(&out.join("merged"));
    let order = ["intro", "alarm", "briefing", "defeat", "lost"];
    assert_eq!(ids(&manifest), order.map(|id| Some(id.to_owned())), "{manifest}");
    let lost = &manifest["lines"][4];
    assert!(lost["status"] == "failed" && lost["error"].to_string().contains("lost-voice.wav"), "{lost}");
}
