//! `voxcpm batch --jobs N`: several lines in flight at once through the one runtime, batched
//! together, render what one line at a time renders: the same WAV bytes, the same manifest in
//! script order, the same failures and exit status.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::VOXCPM;

/// A long first line (it finishes last when lines run together), short ones after it, a line
/// whose voice clip is missing (refused before it starts), one whose cfg drives its audio to
/// infinity (it fails inside the batch, beside the others) and a row with no id.
const SCRIPT: &str = "id\ttext\tvoice\tcfg\tseed\tmin_len\tmax_len\n\
                      long\tThe longest line of this script, said slowly.\t\t\t\t9\t9\n\
                      short\tHi.\t\t\t\t2\t2\n\
                      missing_voice\tNobody speaks.\tmissing.wav\t\t\t\t\n\
                      mid\tA middle line.\t\t\t\t4\t4\n\
                      infinite\tToo loud.\t\t3e38\t3\t4\t4\n\
                      last\tThe end.\t\t2.5\t\t3\t3\n\
                      \tNo id here.\t\t\t\t\t\n";

/// `voxcpm batch SCRIPT -o OUT` with the demo checkpoint and `extra` arguments.
fn batch(script: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(VOXCPM)
        .arg("batch")
        .arg(script)
        .arg("-o")
        .arg(out)
        .args(["--min-len", "2", "--max-len", "3"])
        .args(extra)
        .env_remove("VOXCPM_MODEL")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn four_jobs_render_the_same_files_and_manifest_as_one() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("lines.tsv");
    std::fs::write(&script, SCRIPT).unwrap();
    let (one, four) = (tmp.path().join("one"), tmp.path().join("four"));
    let alone = batch(&script, &one, &["--jobs", "1"]);
    let together = batch(&script, &four, &["--jobs", "4"]);

    for (output, jobs) in [(&alone, 1), (&together, 4)] {
        let stderr = stderr(output);
        assert!(!output.status.success(), "--jobs {jobs}: failed lines fail the run");
        assert!(stderr.contains("4 rendered, 0 unchanged, 3 failed"), "--jobs {jobs}: {stderr}");
        assert!(stderr.contains("row 4: ") && stderr.contains("missing.wav"), "--jobs {jobs}: {stderr}");
        assert!(stderr.contains("row 6: ") && stderr.contains("non-finite"), "--jobs {jobs}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("internal error"), "--jobs {jobs}: {stderr}");
    }
    let (one_manifest, four_manifest) = (manifest(&one), manifest(&four));
    let ids: Vec<Value> = four_manifest["lines"].as_array().unwrap().iter().map(|line| line["id"].clone()).collect();
    let expected = ["long", "short", "missing_voice", "mid", "infinite", "last"].map(Value::from);
    assert_eq!(ids[..6], expected, "script order, though the long line finished last");
    assert_eq!(ids[6], Value::Null);
    assert_eq!(four_manifest["lines"], one_manifest["lines"], "seeds, keys, durations, rows, statuses, errors");

    let mut compared = 0;
    for line in four_manifest["lines"].as_array().unwrap() {
        let Some(file) = line["file"].as_str() else { continue };
        let (ours, theirs) = (std::fs::read(four.join(file)).unwrap(), std::fs::read(one.join(file)).unwrap());
        assert!(ours == theirs, "{file}: --jobs 4 wrote other bytes than --jobs 1");
        compared += 1;
    }
    assert_eq!(compared, 4, "every rendered line has its file");
    assert!(!four.join("infinite.wav").exists() && !four.join("missing_voice.wav").exists());

    // Unchanged lines are skipped with several jobs too, and the manifest keeps its order.
    let again = batch(&script, &four, &["--jobs", "4"]);
    assert!(stderr(&again).contains("0 rendered, 4 unchanged, 3 failed"), "{}", stderr(&again));
    let ids_again: Vec<Value> = manifest(&four)["lines"].as_array().unwrap().iter().map(|l| l["id"].clone()).collect();
    assert_eq!(ids_again, ids);
}

#[test]
fn jobs_outside_1_to_64_are_refused_naming_the_option() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("lines.tsv");
    std::fs::write(&script, "id\ttext\nonly\tOne line.\n").unwrap();
    for (jobs, why) in [("0", "at least 1"), ("100000", "more than 64"), ("four", "not a whole number")] {
        let out = tmp.path().join(format!("out-{jobs}"));
        let output = batch(&script, &out, &["--jobs", jobs]);
        let stderr = stderr(&output);
        assert!(!output.status.success(), "--jobs {jobs} was accepted");
        assert!(stderr.contains("--jobs") && stderr.contains(why), "--jobs {jobs}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out.exists(), "--jobs {jobs}: the output folder was made");
    }
}
