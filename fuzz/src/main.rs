//! The campaign runner:
//!
//! ```text
//! cargo run -p voxcpm-fuzz --features runner -- <target|all> [--runs N] [--seconds T] [--seed S]
//!     [--timeout SECS] [--memory-mb MB] [--findings DIR] [--log FILE]
//! cargo run -p voxcpm-fuzz --features runner -- <target> --replay FILE [--replay FILE...]
//! ```
//!
//! Each target runs in a child process (this binary with `--child`), so that an abort (a
//! failed allocation under the memory limit, a stack overflow) or a hang (an execution over
//! `--timeout`) is recorded with its input and the campaign goes on in a fresh child. Panics
//! are caught inside the child. Findings go to `fuzz/findings/<target>/`, one JSON line per
//! target run to `fuzz/runs.jsonl`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use voxcpm_fuzz::campaign::{self, Finding, Options, hash_of, shape};
use voxcpm_fuzz::{TARGETS, Target, repo_root, target};

struct Args {
    targets: Vec<&'static Target>,
    runs: u64,
    seconds: f64,
    seed: u64,
    timeout: u64,
    memory_mb: u64,
    findings: PathBuf,
    log: PathBuf,
    child: bool,
    crash_file: Option<PathBuf>,
    replay: Vec<PathBuf>,
}

fn usage() -> ! {
    let names: Vec<_> = TARGETS.iter().map(|t| t.name).collect();
    eprintln!(
        "usage: voxcpm-fuzz <target|all> [--runs N] [--seconds T] [--seed S] [--timeout SECS] [--memory-mb MB] \
         [--findings DIR] [--log FILE]\ntargets: {}",
        names.join(", ")
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        targets: Vec::new(),
        runs: 1_000_000,
        seconds: 3600.0,
        seed: 1,
        timeout: 10,
        memory_mb: 8192,
        findings: repo_root().join("fuzz/findings"),
        log: repo_root().join("fuzz/runs.jsonl"),
        child: false,
        crash_file: None,
        replay: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        let number = |v: String| v.parse::<f64>().unwrap_or_else(|_| usage());
        match arg.as_str() {
            "--runs" => args.runs = number(value()) as u64,
            "--seconds" => args.seconds = number(value()),
            "--seed" => args.seed = number(value()) as u64,
            "--timeout" => args.timeout = number(value()) as u64,
            "--memory-mb" => args.memory_mb = number(value()) as u64,
            "--findings" => args.findings = PathBuf::from(value()),
            "--log" => args.log = PathBuf::from(value()),
            "--crash-file" => args.crash_file = Some(PathBuf::from(value())),
            "--child" => args.child = true,
            "--replay" => args.replay.push(PathBuf::from(value())),
            "all" => args.targets.extend(TARGETS.iter()),
            name => args.targets.push(target(name).unwrap_or_else(|| usage())),
        }
    }
    if args.targets.is_empty() {
        usage();
    }
    args
}

fn main() {
    let args = parse_args();
    if args.child {
        return child(&args);
    }
    if !args.replay.is_empty() {
        // Runs saved inputs once each and prints what they gave (a panic still panics here,
        // with its backtrace, so a reproducer can be debugged).
        for path in &args.replay {
            let input = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let started = Instant::now();
            let outcome = (args.targets[0].run)(&input);
            println!("{}: {outcome:?} ({:.3} s)", path.display(), started.elapsed().as_secs_f64());
        }
        return;
    }
    for target in &args.targets {
        supervise(&args, target);
    }
}

/// Inside the child: fuzz, reporting progress and findings on stdout.
fn child(args: &Args) {
    let target = args.targets[0];
    campaign::limit_memory(args.memory_mb << 20);
    if let Some(path) = &args.crash_file {
        campaign::arm_crash_capture(path, Duration::from_secs(args.timeout));
    }
    let options = Options {
        runs: args.runs,
        seconds: args.seconds,
        seed: args.seed,
        findings_dir: Some(args.findings.join(target.name)),
        report_every: Duration::from_secs(1),
    };
    let stats = campaign::run(target, &options, |stats, finding| match finding {
        Some(f) => println!("finding {} {} {}", f.kind, f.file_stem(), f.signature.replace('\n', " ")),
        None => println!(
            "progress {} {:.3} {} {} {:.6} {}",
            stats.executions, stats.seconds, stats.corpus, stats.outcomes, stats.slowest, stats.accepted
        ),
    });
    for f in &stats.findings {
        println!("count {} {}", f.file_stem(), f.count);
    }
    let totals = format!(
        "{} {:.3} {} {} {:.6} {}",
        stats.executions, stats.seconds, stats.corpus, stats.outcomes, stats.slowest, stats.accepted
    );
    println!("done {totals}");
    // The main thread's scratch folder is not removed by a thread-local destructor.
    let _ = std::fs::remove_dir_all(voxcpm_fuzz::scratch_dir());
}

#[derive(Default, Clone)]
struct Tally {
    executions: u64,
    seconds: f64,
    corpus: usize,
    outcomes: usize,
    slowest: f64,
    accepted: u64,
}

impl Tally {
    fn parse(fields: &[&str]) -> Option<Tally> {
        Some(Tally {
            executions: fields.first()?.parse().ok()?,
            seconds: fields.get(1)?.parse().ok()?,
            corpus: fields.get(2)?.parse().ok()?,
            outcomes: fields.get(3)?.parse().ok()?,
            slowest: fields.get(4)?.parse().ok()?,
            accepted: fields.get(5)?.parse().ok()?,
        })
    }
}

struct Summary {
    kind: String,
    signature: String,
    count: u64,
    file: String,
}

/// Runs one target in child processes until its runs or time are used up.
fn supervise(args: &Args, target: &Target) {
    let dir = args.findings.join(target.name);
    std::fs::create_dir_all(&dir).expect("creating the findings folder");
    let started = Instant::now();
    let mut total = Tally::default();
    let mut findings: Vec<Summary> = Vec::new();
    let mut restarts = 0u32;
    let mut seed = args.seed;
    let mut stopped_early = None;
    eprintln!("== {}: {} (up to {} runs or {} s)", target.name, target.feeds, args.runs, args.seconds);
    while total.executions < args.runs && started.elapsed().as_secs_f64() < args.seconds {
        let crash_file = dir.join(format!(".crash-input-{}", std::process::id()));
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .arg(target.name)
            .arg("--child")
            .args(["--runs", &(args.runs - total.executions).to_string()])
            .args(["--seconds", &(args.seconds - started.elapsed().as_secs_f64()).max(1.0).to_string()])
            .args(["--seed", &seed.to_string()])
            .args(["--timeout", &args.timeout.to_string()])
            .args(["--memory-mb", &args.memory_mb.to_string()])
            .arg("--findings")
            .arg(&args.findings)
            .arg("--crash-file")
            .arg(&crash_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting a fuzzing child");
        let mut stderr = child.stderr.take().expect("piped");
        let stderr_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut last = Tally::default();
        let mut done = false;
        for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
            let Ok(line) = line else { break };
            let fields: Vec<&str> = line.split(' ').collect();
            match fields[0] {
                "progress" | "done" => {
                    if let Some(t) = Tally::parse(&fields[1..]) {
                        last = t;
                        let executions = total.executions + last.executions;
                        let seconds = started.elapsed().as_secs_f64();
                        eprint!(
                            "\r{}: {executions} execs, {:.0}/s, {:.0} s, corpus {}, outcomes {}, findings {}   ",
                            target.name,
                            executions as f64 / seconds,
                            seconds,
                            last.corpus,
                            last.outcomes,
                            findings.len()
                        );
                    }
                    done |= fields[0] == "done";
                }
                "finding" if fields.len() >= 4 => {
                    let stem = fields[2].to_owned();
                    if !findings.iter().any(|f| f.file == format!("{stem}.bin")) {
                        eprintln!("\nnew finding: {}", fields[3..].join(" "));
                        findings.push(Summary {
                            kind: fields[1].to_owned(),
                            signature: fields[3..].join(" "),
                            count: 0,
                            file: format!("{stem}.bin"),
                        });
                    }
                }
                "count" if fields.len() == 3 => {
                    if let Some(f) = findings.iter_mut().find(|f| f.file == format!("{}.bin", fields[1])) {
                        f.count += fields[2].parse::<u64>().unwrap_or(0);
                    }
                }
                _ => {}
            }
        }
        let status = child.wait().expect("waiting for the child");
        if !status.success() {
            // A child that died left its scratch folder behind.
            let _ = std::fs::remove_dir_all(voxcpm_fuzz::scratch_base().join(format!("voxcpm-fuzz-{}-0", child.id())));
        }
        let stderr = stderr_reader.join().unwrap_or_default();
        total.executions += last.executions;
        total.accepted += last.accepted;
        total.corpus = last.corpus;
        total.outcomes = total.outcomes.max(last.outcomes);
        total.slowest = total.slowest.max(last.slowest);
        if done && status.success() {
            let _ = std::fs::remove_file(&crash_file);
            break;
        }
        // The child died: an abort, a signal or the watchdog. Its input is in the crash file.
        total.executions += 1;
        restarts += 1;
        seed = seed.wrapping_add(1_000_003);
        // The line that says what happened, else the last one.
        let telling = ["memory allocation of", "overflowed its stack", "panicked at", "hang:", "fatal runtime error"];
        let words = stderr
            .lines()
            .find(|l| telling.iter().any(|t| l.contains(t)))
            .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("(no message)")
            .trim()
            .to_owned();
        let kind = if status.code() == Some(124) { "hang" } else { "abort" };
        let signature = format!("{} ({status})", shape(&words));
        let input = std::fs::read(&crash_file).unwrap_or_default();
        let _ = std::fs::remove_file(&crash_file);
        let mut finding = Finding {
            kind: kind.into(),
            signature: signature.clone(),
            message: stderr.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n"),
            count: 1,
            input,
            saved: None,
        };
        let file = format!("{}.bin", finding.file_stem());
        if let Some(existing) = findings.iter_mut().find(|f| f.file == file) {
            existing.count += 1;
            if existing.count >= 10 {
                stopped_early = Some(format!("{kind} repeated {} times: {signature}", existing.count));
                break;
            }
        } else {
            let _ = finding.save(&dir);
            eprintln!("\nnew finding: {kind}: {signature}");
            findings.push(Summary { kind: kind.into(), signature, count: 1, file });
        }
        if restarts >= 100 {
            stopped_early = Some("100 child restarts".into());
            break;
        }
    }
    total.seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "\n== {}: {} executions in {:.0} s ({:.0}/s), {} distinct findings{}",
        target.name,
        total.executions,
        total.seconds,
        total.executions as f64 / total.seconds,
        findings.len(),
        stopped_early.as_deref().map(|s| format!("; stopped: {s}")).unwrap_or_default()
    );
    let record = serde_json::json!({
        "date": today(),
        "machine": machine(),
        "target": target.name,
        "feeds": target.feeds,
        "executions": total.executions,
        "seconds": (total.seconds * 10.0).round() / 10.0,
        "exec_per_s": (total.executions as f64 / total.seconds).round(),
        "seed": args.seed,
        "runs_asked": args.runs,
        "seconds_asked": args.seconds,
        "accepted": total.accepted,
        "distinct_outcomes": total.outcomes,
        "corpus": total.corpus,
        "slowest_exec_s": (total.slowest * 1000.0).round() / 1000.0,
        "child_restarts": restarts,
        "stopped_early": stopped_early,
        "findings": findings.iter().map(|f| serde_json::json!({
            "kind": f.kind, "signature": f.signature, "count": f.count,
            "file": format!("fuzz/findings/{}/{}", target.name, f.file),
            "id": format!("{:016x}", hash_of(&f.signature)),
        })).collect::<Vec<_>>(),
    });
    append_line(&args.log, &record.to_string());
}

fn append_line(path: &Path, line: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("opening the run log");
    writeln!(file, "{line}").expect("writing the run log");
}

/// Today's UTC date, YYYY-MM-DD.
fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // Howard Hinnant's days-to-civil.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores}-core VM, {cpu}")
}
