//! Soak and churn: thousands of mixed requests through the runtime `Server` or the `voxcpm
//! bridge` pipe, or hundreds of create/activate/play/destroy cycles of the CLAP plugin in one
//! process, with resident memory and the thread count sampled along the way.
//!
//! ```sh
//! cargo run -p voxcpm-host-tests --features soak --bin soak -- runtime --out bench/soak-runtime-2core.json
//! cargo build -p voxcpm-cli   # the bridge mode drives target/<profile>/voxcpm
//! cargo run -p voxcpm-host-tests --features soak --bin soak -- bridge --out bench/soak-bridge-2core.json
//! cargo run -p voxcpm-host-tests --features soak --bin soak -- plugin --out bench/soak-plugin-2core.json
//! ```
//!
//! Options: `--requests N` (runtime/bridge, default 2000), `--cycles N` (plugin, default 200),
//! `--every N` (record a sample every N requests or cycles; default 10 requests, 1 cycle),
//! `--warmup N` (the reference sample; default 100 requests or 20 cycles), `--max-len N` (patch
//! cap per request, default 24), `--voxcpm PATH` (bridge binary; default `voxcpm` beside this
//! one), `--kinds a,b` (another schedule, e.g. one kind alone to find which one grows memory;
//! `ping` measures the harness itself), `--out FILE`. The JSON is rewritten every 10 samples, so
//! a run that hangs leaves what it had; a watchdog ends the process (exit 3) when one request or
//! cycle makes no progress for 5 minutes. Exit 0 when the verdict passes, 1 when it fails.
//!
//! The request mix (runtime and bridge), 12 requests repeated: generate, stream (collected),
//! stream dropped (after 2 chunks, 1, or at once), bad request, generate with a reference clip,
//! LoRA load, generate with the LoRA, LoRA unload, generate with a denoised reference, bad
//! request, streamed continuation of a denoised prompt clip, stream dropped. Bad requests rotate
//! through an empty text, absurd options (0 timesteps, NaN cfg, min_len above max_len, a
//! negative ratio), a missing, garbage, truncated or empty WAV, a missing LoRA folder and a
//! prompt clip without its text; over the bridge every other one is a protocol-level bad frame
//! instead (unknown type, not msgpack, no text, text not a string, not a map). Twelve reference
//! clips rotate, more than the runtime's clip cache holds, so it churns too.
//!
//! The verdict: the largest resident set after the warm-up sample is within 5 % of the
//! warm-up sample, and (plugin) the thread count is back to its value after the first cycle
//! once each instance is destroyed. Not part of CI: the `soak` feature gates it.

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use rmpv::Value;
use serde_json::{Value as Json, json};
use voxcpm_engine::bridge::{decode_map, read_frame, write_frame};
use voxcpm_engine::pipeline::SpeechOptions;
use voxcpm_engine::runtime::{GenerateOptions, Server, ServerOptions};

const LIMIT_PCT: f64 = 5.0;
/// A request (or a cycle) taking longer than this is a hang.
const HANG: Duration = Duration::from_secs(300);

/// Lines of 12 to 160 characters, in rotation.
const TEXTS: [&str; 8] = [
    "Hello there.",
    "A short line for the soak test, with a comma.",
    "Soak test, line three: the runtime serves two thousand requests of mixed kinds, one after another.",
    "The quick brown fox jumps over the lazy dog.",
    "Memory stays flat.",
    "One more request, and then another one, and then many more after that, until the soak test is \
     done and the curve is drawn.",
    "Numbers like 42 and 3.5 too.",
    "Goodbye for now.",
];

/// The shortest generation, in patches, in rotation (the demo model's random stop head often
/// stops at the minimum): lengths from 2 patches (0.32 s) up to the cap.
const MIN_LENS: [usize; 5] = [2, 4, 2, 8, 16];

fn main() {
    let args = Args::parse();
    let report = match args.mode.as_str() {
        "runtime" | "bridge" => requests_soak(&args),
        "plugin" => plugin_soak(&args),
        other => {
            eprintln!("unknown mode {other:?}: use runtime, bridge or plugin");
            std::process::exit(2);
        }
    };
    let pass = report["verdict"]["pass"].as_bool().unwrap_or(false);
    println!("{}", serde_json::to_string_pretty(&report["verdict"]).unwrap());
    std::process::exit(if pass { 0 } else { 1 });
}

struct Args {
    mode: String,
    count: usize,
    every: usize,
    warmup: usize,
    max_len: usize,
    voxcpm: Option<PathBuf>,
    out: Option<PathBuf>,
    schedule: Vec<Kind>,
}

impl Args {
    fn parse() -> Args {
        let mut it = std::env::args().skip(1);
        let mode = it.next().unwrap_or_else(|| {
            eprintln!("usage: soak runtime|bridge|plugin [--requests N|--cycles N] [--every N] [--warmup N] [--max-len N] [--voxcpm PATH] [--kinds a,b] [--out FILE]");
            std::process::exit(2)
        });
        let plugin = mode == "plugin";
        let mut args = Args {
            mode,
            count: if plugin { 200 } else { 2000 },
            every: if plugin { 1 } else { 10 },
            warmup: if plugin { 20 } else { 100 },
            max_len: 24,
            voxcpm: None,
            out: None,
            schedule: SCHEDULE.to_vec(),
        };
        while let Some(flag) = it.next() {
            let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
            let number = || value.parse::<usize>().unwrap_or_else(|_| panic!("{flag}: not a number: {value}"));
            match flag.as_str() {
                "--requests" | "--cycles" => args.count = number(),
                "--every" => args.every = number().max(1),
                "--warmup" => args.warmup = number(),
                "--max-len" => args.max_len = number(),
                "--voxcpm" => args.voxcpm = Some(value.into()),
                "--out" => args.out = Some(value.into()),
                "--kinds" => {
                    args.schedule = value
                        .split(',')
                        .map(|name| {
                            *ALL_KINDS.iter().find(|k| k.name() == name).unwrap_or_else(|| {
                                let names: Vec<&str> = ALL_KINDS.iter().map(|k| k.name()).collect();
                                panic!("unknown kind {name:?}: one of {names:?}")
                            })
                        })
                        .collect()
                }
                _ => panic!("unknown option {flag}"),
            }
        }
        args
    }
}

// ---------------------------------------------------------------------------------------------
// Process measurements.

/// VmRSS and RssAnon (bytes) and the thread count of a process (`self` or a pid).
fn measure(pid: &str) -> (u64, u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    (field("VmRSS:"), field("RssAnon:"), threads)
}

/// The number of memory mappings of a process: a new glibc malloc arena shows as one more
/// (its 64 MiB reservation), which tells an allocator step from a growing heap.
fn mappings(pid: &str) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).map_or(0, |maps| maps.lines().count())
}

/// Thread names of a process, counted.
fn thread_names(pid: &str) -> BTreeMap<String, usize> {
    let mut names = BTreeMap::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default().trim().to_owned();
            *names.entry(name).or_insert(0) += 1;
        }
    }
    names
}

fn names_json(names: &BTreeMap<String, usize>) -> Json {
    json!(names)
}

/// Names in `after` beyond those in `before`.
fn extra_threads(before: &BTreeMap<String, usize>, after: &BTreeMap<String, usize>) -> BTreeMap<String, usize> {
    after
        .iter()
        .filter_map(|(name, &n)| {
            let extra = n.saturating_sub(before.get(name).copied().unwrap_or(0));
            (extra > 0).then(|| (name.clone(), extra))
        })
        .collect()
}

fn machine() -> Json {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned()))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_bytes": memory,
    })
}

fn date() -> String {
    Command::new("date")
        .arg("-Iseconds")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn profile() -> &'static str {
    if cfg!(debug_assertions) { "dev (our crates opt-level 1, dependencies opt-level 2)" } else { "release" }
}

/// One measurement. Kept as plain numbers (not JSON values) and written straight to the file, so
/// that the harness's own bookkeeping adds as little as possible to the resident set it measures
/// (in the runtime and plugin modes it measures its own process).
#[derive(Clone, Copy, Default)]
struct Sample {
    step: usize,
    rss: u64,
    anon: u64,
    threads: usize,
    mappings: usize,
    elapsed_s: f64,
    plugin: Option<PluginSample>,
}

/// What a plugin cycle adds to its sample.
#[derive(Clone, Copy, Default)]
struct PluginSample {
    threads_while_alive: usize,
    threads_back: bool,
    settle_ms: f64,
    cycle_s: f64,
    live: bool,
    sound: bool,
}

impl Sample {
    fn write(&self, out: &mut impl Write, step_key: &str) -> std::io::Result<()> {
        write!(
            out,
            "{{\"{step_key}\": {}, \"rss_bytes\": {}, \"rss_anon_bytes\": {}, \"threads\": {}, \"mappings\": {}, \
             \"elapsed_s\": {:.3}",
            self.step, self.rss, self.anon, self.threads, self.mappings, self.elapsed_s
        )?;
        if let Some(p) = &self.plugin {
            write!(
                out,
                ", \"threads_while_alive\": {}, \"threads_back\": {}, \"settle_ms\": {:.1}, \"cycle_s\": {:.3}, \
                 \"live\": {}, \"sound\": {}",
                p.threads_while_alive, p.threads_back, p.settle_ms, p.cycle_s, p.live, p.sound
            )?;
        }
        write!(out, "}}")
    }
}

/// Writes `head` (a JSON map) with `samples` added as its last key, one sample per line.
fn write_report(out: Option<&Path>, head: &Json, samples: &[Sample], step_key: &str) {
    let Some(path) = out else { return };
    let write = || -> std::io::Result<()> {
        let mut file = BufWriter::new(std::fs::File::create(path)?);
        let text = serde_json::to_string_pretty(head).expect("JSON");
        let body = text.trim_end().strip_suffix('}').expect("a JSON map").trim_end();
        write!(file, "{body},\n  \"samples\": [\n")?;
        for (k, sample) in samples.iter().enumerate() {
            write!(file, "    ")?;
            sample.write(&mut file, step_key)?;
            writeln!(file, "{}", if k + 1 < samples.len() { "," } else { "" })?;
        }
        writeln!(file, "  ]\n}}")?;
        file.flush()
    };
    write().unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Ends the process when `progress` has not moved for [`HANG`]: a hang is a finding, and the
/// JSON written at the last sample says where it stopped.
fn watchdog(progress: Arc<AtomicU64>, what: Arc<std::sync::Mutex<String>>) {
    std::thread::Builder::new()
        .name("soak-watchdog".into())
        .spawn(move || {
            let mut last = (progress.load(Ordering::Relaxed), Instant::now());
            loop {
                std::thread::sleep(Duration::from_secs(5));
                let now = progress.load(Ordering::Relaxed);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > HANG {
                    let doing = what.lock().map(|w| w.clone()).unwrap_or_default();
                    eprintln!("HANG: no progress for {} s at step {now} ({doing})", HANG.as_secs());
                    eprintln!("threads: {:?}", thread_names("self"));
                    std::process::exit(3);
                }
            }
        })
        .expect("watchdog thread");
}

/// The verdict over the samples: the largest RSS after `warmup` against the RSS at `warmup`
/// (the first sample at or after it).
fn rss_verdict(samples: &[Sample], warmup: usize) -> Json {
    let Some(warm) = samples.iter().find(|s| s.step >= warmup) else {
        return json!({ "pass": false, "rss_flat": false, "why": "no sample after the warm-up" });
    };
    let (warm_step, warm_rss) = (warm.step, warm.rss);
    let after = || samples.iter().filter(|s| s.step > warm_step).map(|s| s.rss);
    let max_after = after().max().unwrap_or(warm_rss);
    let min_after = after().min().unwrap_or(warm_rss);
    let end = samples.last().map_or(0, |s| s.rss);
    let drift = |v: u64| (v as f64 - warm_rss as f64) / warm_rss as f64 * 100.0;
    // Least-squares slope over the samples from the warm-up on, in bytes per 1000 steps.
    let tail = || samples.iter().filter(|s| s.step >= warm_step).map(|s| (s.step as f64, s.rss as f64));
    let n = tail().count() as f64;
    let (mx, my) = (tail().map(|p| p.0).sum::<f64>() / n, tail().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = tail().map(|p| (p.0 - mx).powi(2)).sum();
    let slope = if sxx > 0.0 { tail().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / sxx } else { 0.0 };
    json!({
        "start_rss_bytes": samples.first().map_or(0, |s| s.rss),
        "warmup_step": warm_step,
        "warmup_rss_bytes": warm_rss,
        "max_rss_after_warmup_bytes": max_after,
        "min_rss_after_warmup_bytes": min_after,
        "end_rss_bytes": end,
        "max_drift_pct": drift(max_after),
        "end_drift_pct": drift(end),
        "slope_bytes_per_1000_steps": slope * 1000.0,
        "limit_pct": LIMIT_PCT,
        "rss_flat": drift(max_after) <= LIMIT_PCT,
    })
}

// ---------------------------------------------------------------------------------------------
// The request mix (runtime and bridge).

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Generate,
    GenerateReference,
    Stream,
    StreamDropped,
    Bad,
    LoraLoad,
    GenerateLora,
    LoraUnload,
    Denoise,
    DenoiseStream,
    /// Not in the schedule: the harness's own cost (`Server::info` in process, a `ping` frame
    /// over the bridge), for a baseline with `--kinds ping`.
    Ping,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Generate => "generate",
            Kind::GenerateReference => "generate_reference",
            Kind::Stream => "stream",
            Kind::StreamDropped => "stream_dropped",
            Kind::Bad => "bad_request",
            Kind::LoraLoad => "lora_load",
            Kind::GenerateLora => "generate_with_lora",
            Kind::LoraUnload => "lora_unload",
            Kind::Denoise => "denoise_reference",
            Kind::DenoiseStream => "denoise_prompt_stream",
            Kind::Ping => "ping",
        }
    }
}

const ALL_KINDS: [Kind; 11] = [
    Kind::Generate,
    Kind::GenerateReference,
    Kind::Stream,
    Kind::StreamDropped,
    Kind::Bad,
    Kind::LoraLoad,
    Kind::GenerateLora,
    Kind::LoraUnload,
    Kind::Denoise,
    Kind::DenoiseStream,
    Kind::Ping,
];

/// Twelve requests, repeated: every kind, LoRA loaded for one generation then unloaded.
const SCHEDULE: [Kind; 12] = [
    Kind::Generate,
    Kind::Stream,
    Kind::StreamDropped,
    Kind::Bad,
    Kind::GenerateReference,
    Kind::LoraLoad,
    Kind::GenerateLora,
    Kind::LoraUnload,
    Kind::Denoise,
    Kind::Bad,
    Kind::DenoiseStream,
    Kind::StreamDropped,
];

/// The bad requests, in rotation. The bridge adds protocol-level ones (`BAD_FRAMES`).
#[derive(Clone, Copy, Debug)]
enum Bad {
    EmptyText,
    ZeroTimesteps,
    NanCfg,
    MinAboveMax,
    NegativeRatio,
    MissingReference,
    GarbageWav,
    TruncatedWav,
    EmptyWav,
    MissingLora,
    PromptWithoutText,
}

const BADS: [Bad; 11] = [
    Bad::EmptyText,
    Bad::ZeroTimesteps,
    Bad::NanCfg,
    Bad::MinAboveMax,
    Bad::NegativeRatio,
    Bad::MissingReference,
    Bad::GarbageWav,
    Bad::TruncatedWav,
    Bad::EmptyWav,
    Bad::MissingLora,
    Bad::PromptWithoutText,
];

/// Files the requests use: reference clips (more than the clip cache's 8, so it churns), bad
/// WAVs, the LoRA adapter.
struct Fixtures {
    _dir: tempfile::TempDir,
    clips: Vec<PathBuf>,
    garbage_wav: PathBuf,
    truncated_wav: PathBuf,
    empty_wav: PathBuf,
    missing: PathBuf,
    lora: PathBuf,
    missing_lora: PathBuf,
}

impl Fixtures {
    fn new() -> Fixtures {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine_fixtures = voxcpm_host_tests::workspace().join("engine/tests/fixtures");
        let speech = engine_fixtures.join("speech_16k.wav");
        let (samples, rate) = voxcpm_engine::audio_io::read_wav_mono(&speech).expect("speech clip");
        // 12 different clips of 1 s each: other slices and gains of the speech fixture.
        let clips = (0..12)
            .map(|k| {
                let start = (k * rate as usize / 8).min(samples.len() - rate as usize);
                let gain = 0.5 + 0.05 * k as f32;
                let clip: Vec<f32> = samples[start..start + rate as usize].iter().map(|s| s * gain).collect();
                let path = dir.path().join(format!("clip{k}.wav"));
                voxcpm_engine::wav::write_float_file(&path, &clip, rate).expect("clip");
                path
            })
            .collect();
        let garbage_wav = dir.path().join("garbage.wav");
        std::fs::write(&garbage_wav, b"this is not a RIFF file at all, just text").unwrap();
        let truncated_wav = dir.path().join("truncated.wav");
        let whole = std::fs::read(&speech).unwrap();
        std::fs::write(&truncated_wav, &whole[..30]).unwrap();
        let empty_wav = dir.path().join("empty.wav");
        voxcpm_engine::wav::write_float_file(&empty_wav, &[], rate).unwrap();
        Fixtures {
            clips,
            garbage_wav,
            truncated_wav,
            empty_wav,
            missing: dir.path().join("no-such-clip.wav"),
            lora: engine_fixtures.join("tiny/lora"),
            missing_lora: dir.path().join("no-such-lora"),
            _dir: dir,
        }
    }

    fn clip(&self, i: usize) -> &Path {
        &self.clips[i % self.clips.len()]
    }
}

/// One request as plain data, turned into a `Server` call or a bridge frame.
#[derive(Clone, Debug)]
enum Call {
    Generate { text: String, options: GenerateOptions },
    Stream { text: String, options: GenerateOptions, drop_after: Option<usize> },
    LoadLora(PathBuf),
    UnloadLora,
    Ping,
}

/// The call for request `i`, the `nth` of its `kind`, and whether it must succeed.
fn call_for(kind: Kind, i: usize, nth: usize, fixtures: &Fixtures, max_len: usize) -> (Call, bool) {
    // Every kind meets every text and every length (8 and 5 are coprime).
    let text = TEXTS[(nth + kind as usize) % TEXTS.len()].to_owned();
    let speech = SpeechOptions {
        min_len: MIN_LENS[(nth + kind as usize) % MIN_LENS.len()].min(max_len),
        max_len,
        ..SpeechOptions::default()
    };
    let options = GenerateOptions { seed: Some(i as u64), speech, ..GenerateOptions::default() };
    let with_clip =
        |denoise| GenerateOptions { audio_prompt: Some(fixtures.clip(nth).to_owned()), denoise, ..options.clone() };
    match kind {
        Kind::Generate | Kind::GenerateLora => (Call::Generate { text, options }, true),
        Kind::GenerateReference => (Call::Generate { text, options: with_clip(false) }, true),
        Kind::Denoise => (Call::Generate { text, options: with_clip(true) }, true),
        Kind::DenoiseStream => {
            let options = GenerateOptions {
                prompt_wav_path: Some(fixtures.clip(nth + 5).to_owned()),
                prompt_text: Some("The prompt clip.".into()),
                denoise: true,
                ..options
            };
            (Call::Stream { text, options, drop_after: None }, true)
        }
        Kind::Stream => (Call::Stream { text, options, drop_after: None }, true),
        // Dropped after 2 chunks, after 1, or at once (while it may still be queued).
        Kind::StreamDropped => (Call::Stream { text, options, drop_after: Some([2, 1, 0][nth % 3]) }, true),
        Kind::LoraLoad => (Call::LoadLora(fixtures.lora.clone()), true),
        Kind::LoraUnload => (Call::UnloadLora, true),
        Kind::Ping => (Call::Ping, true),
        Kind::Bad => {
            let bad = BADS[nth % BADS.len()];
            let mut o = options.clone();
            let call = match bad {
                Bad::EmptyText => return (Call::Generate { text: "   ".into(), options }, false),
                Bad::ZeroTimesteps => {
                    o.speech.inference_timesteps = 0;
                    Call::Generate { text, options: o }
                }
                Bad::NanCfg => {
                    o.speech.cfg_value = f32::NAN;
                    Call::Stream { text, options: o, drop_after: None }
                }
                Bad::MinAboveMax => {
                    o.speech.min_len = o.speech.max_len + 1;
                    Call::Generate { text, options: o }
                }
                Bad::NegativeRatio => {
                    o.speech.retry_badcase_ratio_threshold = -1.0;
                    Call::Generate { text, options: o }
                }
                Bad::MissingReference => {
                    o.audio_prompt = Some(fixtures.missing.clone());
                    Call::Generate { text, options: o }
                }
                Bad::GarbageWav => {
                    o.audio_prompt = Some(fixtures.garbage_wav.clone());
                    o.denoise = true;
                    Call::Stream { text, options: o, drop_after: None }
                }
                Bad::TruncatedWav => {
                    o.prompt_wav_path = Some(fixtures.truncated_wav.clone());
                    o.prompt_text = Some("Truncated.".into());
                    Call::Generate { text, options: o }
                }
                Bad::EmptyWav => {
                    o.audio_prompt = Some(fixtures.empty_wav.clone());
                    Call::Generate { text, options: o }
                }
                Bad::MissingLora => Call::LoadLora(fixtures.missing_lora.clone()),
                Bad::PromptWithoutText => {
                    o.prompt_wav_path = Some(fixtures.clip(0).to_owned());
                    Call::Generate { text, options: o }
                }
            };
            (call, false)
        }
    }
}

/// What a request gave: Ok(chunks or samples) or the error text.
type Outcome = Result<Detail, String>;

#[derive(Default, Debug)]
struct Detail {
    /// Samples (generate) or chunks read (stream).
    amount: usize,
    /// A stream dropped before its end.
    dropped_midway: bool,
}

trait Target {
    /// Serves one call (`bad`: one that must be refused).
    fn serve(&mut self, call: &Call, bad: bool) -> Outcome;
    /// (RSS, anonymous RSS, threads) of the process under test.
    fn measure(&self) -> (u64, u64, usize);
    /// Its memory mappings.
    fn mappings(&self) -> usize;
    fn thread_names(&self) -> BTreeMap<String, usize>;
    fn describe(&self) -> Json;
    /// Ends the target; returns what the end looked like.
    fn finish(self: Box<Self>) -> Json;
}

#[derive(Default)]
struct KindStats {
    count: usize,
    ok: usize,
    errors: usize,
    unexpected: usize,
    dropped_midway: usize,
    /// Samples (generate over the runtime), WAV bytes (generate over the bridge) or chunks.
    amount: usize,
    seconds: f64,
    max_seconds: f64,
    error_examples: BTreeMap<String, usize>,
}

fn requests_soak(args: &Args) -> Json {
    let fixtures = Fixtures::new();
    let progress = Arc::new(AtomicU64::new(0));
    let doing = Arc::new(std::sync::Mutex::new(String::from("starting")));
    watchdog(Arc::clone(&progress), Arc::clone(&doing));
    let threads_before = thread_names("self");
    let started = Instant::now();
    let mut target: Box<dyn Target> = match args.mode.as_str() {
        "runtime" => Box::new(RuntimeTarget::start()),
        _ => Box::new(BridgeTarget::start(args.voxcpm.clone())),
    };
    let load_seconds = started.elapsed().as_secs_f64();
    eprintln!("{} ready in {load_seconds:.1} s; {} requests", args.mode, args.count);

    let mut stats: BTreeMap<Kind, KindStats> = BTreeMap::new();
    let mut unexpected: Vec<Json> = Vec::new();
    let mut samples = Vec::with_capacity(args.count / args.every + 16);
    let sample = |step: usize, target: &dyn Target| {
        let (rss, anon, threads) = target.measure();
        let mappings = target.mappings();
        Sample { step, rss, anon, threads, mappings, elapsed_s: started.elapsed().as_secs_f64(), plugin: None }
    };
    samples.push(sample(0, target.as_ref()));
    let threads_at_start = target.thread_names();
    let mut head = json!({});
    for i in 0..args.count {
        let kind = args.schedule[i % args.schedule.len()];
        let nth = stats.get(&kind).map_or(0, |s| s.count);
        let (call, must_succeed) = call_for(kind, i, nth, &fixtures, args.max_len);
        *doing.lock().unwrap() = format!("request {i}: {} {call:?}", kind.name());
        let t = Instant::now();
        let outcome = target.serve(&call, !must_succeed);
        let seconds = t.elapsed().as_secs_f64();
        progress.fetch_add(1, Ordering::Relaxed);
        let s = stats.entry(kind).or_default();
        s.count += 1;
        s.seconds += seconds;
        s.max_seconds = s.max_seconds.max(seconds);
        match &outcome {
            Ok(detail) => {
                s.ok += 1;
                s.amount += detail.amount;
                s.dropped_midway += usize::from(detail.dropped_midway);
            }
            Err(message) => {
                s.errors += 1;
                // The message's first words, to group them.
                let key: String = message.chars().take(70).collect();
                if let Some(n) = s.error_examples.get_mut(&key) {
                    *n += 1;
                } else {
                    s.error_examples.insert(key, 1);
                }
            }
        }
        if outcome.is_ok() != must_succeed {
            s.unexpected += 1;
            if unexpected.len() < 20 {
                unexpected.push(json!({ "request": i, "kind": kind.name(), "call": format!("{call:?}"),
                                         "outcome": format!("{outcome:?}") }));
            }
        }
        let step = i + 1;
        if step % args.every == 0 || step == args.warmup || step == args.count {
            let last = sample(step, target.as_ref());
            samples.push(last);
            // Progress and a checkpoint of the JSON every 10 samples (a hang leaves it).
            if step % (args.every * 10) == 0 || step == args.count {
                eprintln!(
                    "{step:>5} requests  {:>6.1} s  RSS {:>6.1} MB  threads {}",
                    last.elapsed_s,
                    last.rss as f64 / 1e6,
                    last.threads
                );
                head = requests_report(args, &target.describe(), load_seconds, &stats, &unexpected, &samples);
                write_report(args.out.as_deref(), &head, &samples, "request");
            }
        }
    }
    let threads_at_end = target.thread_names();
    let end = target.finish();
    let threads_after = thread_names("self");
    let mut verdict = head["verdict"].clone();
    let unexpected_count: usize = stats.values().map(|s| s.unexpected).sum();
    verdict["unexpected_outcomes"] = json!(unexpected_count);
    verdict["threads_at_start"] = names_json(&threads_at_start);
    verdict["threads_at_end"] = names_json(&threads_at_end);
    verdict["threads_grown"] = names_json(&extra_threads(&threads_at_start, &threads_at_end));
    verdict["end"] = end;
    if args.mode == "runtime" {
        // After the server is dropped: what is left beyond the threads before it started
        // (rayon's global pool stays with the process; its threads carry the name of the
        // thread that first used it).
        verdict["threads_left_after_stop"] = names_json(&extra_threads(&threads_before, &threads_after));
    }
    let threads_flat = extra_threads(&threads_at_start, &threads_at_end).is_empty();
    verdict["threads_flat"] = json!(threads_flat);
    verdict["pass"] = json!(verdict["rss_flat"].as_bool().unwrap_or(false) && threads_flat && unexpected_count == 0);
    head["verdict"] = verdict;
    head["complete"] = json!(true);
    write_report(args.out.as_deref(), &head, &samples, "request");
    head
}

fn requests_report(
    args: &Args,
    target: &Json,
    load_seconds: f64,
    stats: &BTreeMap<Kind, KindStats>,
    unexpected: &[Json],
    samples: &[Sample],
) -> Json {
    let kinds: serde_json::Map<String, Json> = stats
        .iter()
        .map(|(kind, s)| {
            (
                kind.name().to_owned(),
                json!({
                    "count": s.count, "ok": s.ok, "errors": s.errors, "unexpected": s.unexpected,
                    "dropped_midway": s.dropped_midway, "output_total": s.amount,
                    "mean_s": s.seconds / s.count.max(1) as f64, "max_s": s.max_seconds,
                    "errors_seen": s.error_examples,
                }),
            )
        })
        .collect();
    let total: f64 = stats.values().map(|s| s.seconds).sum();
    json!({
        "what": format!("soak: {} mixed requests through the {}", args.count,
                        if args.mode == "runtime" { "runtime Server (in process)" } else { "voxcpm bridge (child process, over its pipe)" }),
        "mode": args.mode,
        "date": date(),
        "profile": profile(),
        "machine": machine(),
        "checkpoint": "assets/demo-checkpoint (random weights, tiny shapes)",
        "target": target,
        "schedule": args.schedule.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "max_len_patches": args.max_len,
        "requests": args.count,
        "sample_every": args.every,
        "load_s": load_seconds,
        "requests_s": total,
        "kinds": kinds,
        "unexpected_examples": unexpected,
        "verdict": rss_verdict(samples, args.warmup),
        "complete": false,
    })
}

// ---------------------------------------------------------------------------------------------
// The runtime in this process.

struct RuntimeTarget {
    server: Server,
}

impl RuntimeTarget {
    fn start() -> RuntimeTarget {
        let options = ServerOptions {
            load_denoiser: true,
            ..ServerOptions::new(voxcpm_host_tests::demo_model().display().to_string())
        };
        let server = Server::start(options).expect("server");
        server.await_ready(Duration::from_secs(300)).expect("the demo model loads");
        RuntimeTarget { server }
    }
}

impl Target for RuntimeTarget {
    fn serve(&mut self, call: &Call, _bad: bool) -> Outcome {
        let e = |e: voxcpm_engine::Error| e.to_string();
        match call {
            Call::Generate { text, options } => {
                let speech = self.server.generate(text, options).map_err(e)?;
                Ok(Detail { amount: speech.samples.len(), dropped_midway: false })
            }
            Call::Stream { text, options, drop_after } => {
                let mut stream = self.server.generate_streaming(text, options).map_err(e)?;
                let mut chunks = 0;
                loop {
                    if Some(chunks) == *drop_after {
                        drop(stream);
                        return Ok(Detail { amount: chunks, dropped_midway: true });
                    }
                    match stream.next_chunk().map_err(e)? {
                        Some(_) => chunks += 1,
                        None => return Ok(Detail { amount: chunks, dropped_midway: false }),
                    }
                }
            }
            Call::LoadLora(path) => self.server.load_lora(path).map(|_| Detail::default()).map_err(e),
            Call::UnloadLora => self.server.unload_lora().map(|()| Detail::default()).map_err(e),
            Call::Ping => Ok(Detail { amount: self.server.info().patches_generated as usize, dropped_midway: false }),
        }
    }

    fn measure(&self) -> (u64, u64, usize) {
        measure("self")
    }

    fn mappings(&self) -> usize {
        mappings("self")
    }

    fn thread_names(&self) -> BTreeMap<String, usize> {
        thread_names("self")
    }

    fn describe(&self) -> Json {
        let info = self.server.info();
        json!({ "kind": "runtime::Server in this process, load_denoiser on",
                "device": info.device, "patches_generated": info.patches_generated })
    }

    fn finish(self: Box<Self>) -> Json {
        let patches = self.server.info().patches_generated;
        let t = Instant::now();
        drop(self.server);
        json!({ "patches_generated": patches, "stop_s": t.elapsed().as_secs_f64() })
    }
}

// ---------------------------------------------------------------------------------------------
// The bridge as a child process.

struct BridgeTarget {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    frames: Receiver<Result<Vec<(String, Value)>, String>>,
    pid: String,
    binary: PathBuf,
    log: PathBuf,
    _scratch: tempfile::TempDir,
    /// Bad frames in rotation with the request-level bad requests.
    bad_frames: usize,
    bad_calls: usize,
}

/// Protocol-level bad requests, sent in place of every other request-level bad request.
const BAD_FRAMES: [&str; 5] = ["unknown_type", "not_msgpack", "text_missing", "text_not_a_string", "not_a_map"];

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
}

fn get<'a>(frame: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    frame.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

impl BridgeTarget {
    fn start(binary: Option<PathBuf>) -> BridgeTarget {
        let binary = binary.unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("executable path");
            exe.parent().expect("profile folder").join("voxcpm")
        });
        assert!(
            binary.is_file(),
            "{} is missing: build it with `cargo build -p voxcpm-cli` (or pass --voxcpm)",
            binary.display()
        );
        let scratch = tempfile::tempdir().expect("temp dir");
        let log = scratch.path().join("bridge.log");
        let mut child = Command::new(&binary)
            .arg("bridge")
            .arg("--log")
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let stdin = BufWriter::new(child.stdin.take().unwrap());
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (sender, frames) = channel();
        std::thread::Builder::new()
            .name("soak-bridge-rx".into())
            .spawn(move || {
                loop {
                    let frame = read_frame(&mut stdout)
                        .map_err(|e| format!("{e:?}"))
                        .and_then(|payload| decode_map(&payload).map_err(|e| format!("{e:?}")));
                    let end = frame.is_err();
                    if sender.send(frame).is_err() || end {
                        return;
                    }
                }
            })
            .expect("reader thread");
        let pid = child.id().to_string();
        let mut bridge = BridgeTarget {
            child,
            stdin: Some(stdin),
            frames,
            pid,
            binary,
            log,
            _scratch: scratch,
            bad_frames: 0,
            bad_calls: 0,
        };
        let model = voxcpm_host_tests::demo_model().display().to_string();
        bridge.send(&map(vec![
            ("type", "init".into()),
            ("model", model.into()),
            ("device", "cpu".into()),
            ("load_denoiser", true.into()),
            ("optimize", false.into()),
        ]));
        let ready = bridge.recv().expect("the init reply");
        assert_eq!(get(&ready, "status").and_then(Value::as_str), Some("ok"), "init failed: {ready:?}");
        bridge
    }

    fn send(&mut self, value: &Value) {
        let stdin = self.stdin.as_mut().expect("bridge stdin");
        write_frame(stdin, value).expect("writing to the bridge");
    }

    fn send_raw(&mut self, payload: &[u8]) {
        let stdin = self.stdin.as_mut().expect("bridge stdin");
        stdin.write_all(&((payload.len() + 4) as u32).to_be_bytes()).unwrap();
        stdin.write_all(payload).unwrap();
        stdin.flush().unwrap();
    }

    fn recv(&mut self) -> Result<Vec<(String, Value)>, String> {
        match self.frames.recv_timeout(HANG) {
            Ok(frame) => frame,
            Err(e) => Err(format!("no frame from the bridge: {e}")),
        }
    }

    /// A status reply: Ok(frame) for status ok, Err(error text) for status error.
    fn status_reply(&mut self) -> Result<Vec<(String, Value)>, String> {
        let frame = self.recv().map_err(|e| format!("BRIDGE: {e}"))?;
        match get(&frame, "status").and_then(Value::as_str) {
            Some("ok") => Ok(frame),
            Some("error") => Err(get(&frame, "error").and_then(Value::as_str).unwrap_or("?").to_owned()),
            _ => Err(format!("PROTOCOL: not a status reply: {}", describe_frame(&frame))),
        }
    }

    fn options(text: &str, options: &GenerateOptions, kind: &str) -> Value {
        let s = &options.speech;
        let mut entries: Vec<(&str, Value)> = vec![
            ("type", kind.into()),
            ("text", text.into()),
            ("cfg_value", f64::from(s.cfg_value).into()),
            ("inference_timesteps", (s.inference_timesteps as u64).into()),
            ("min_len", (s.min_len as u64).into()),
            ("max_len", (s.max_len as u64).into()),
            ("retry_badcase_ratio_threshold", s.retry_badcase_ratio_threshold.into()),
            ("denoise", options.denoise.into()),
        ];
        if let Some(seed) = options.seed {
            entries.push(("seed", seed.into()));
        }
        let path = |p: &PathBuf| Value::from(p.display().to_string());
        if let Some(p) = &options.audio_prompt {
            entries.push(("audio_prompt", path(p)));
        }
        if let Some(p) = &options.prompt_wav_path {
            entries.push(("prompt_wav_path", path(p)));
        }
        if let Some(t) = &options.prompt_text {
            entries.push(("prompt_text", t.as_str().into()));
        }
        map(entries)
    }
}

fn describe_frame(frame: &[(String, Value)]) -> String {
    let keys: Vec<String> = frame
        .iter()
        .map(|(k, v)| match v {
            Value::Binary(b) => format!("{k}: <{} bytes>", b.len()),
            other => format!("{k}: {other}"),
        })
        .collect();
    format!("{{{}}}", keys.join(", "))
}

impl Target for BridgeTarget {
    fn serve(&mut self, call: &Call, bad: bool) -> Outcome {
        // Every other bad request is replaced by a protocol-level bad frame.
        if bad {
            self.bad_calls += 1;
        }
        if bad && self.bad_calls.is_multiple_of(2) {
            let which = BAD_FRAMES[self.bad_frames % BAD_FRAMES.len()];
            self.bad_frames += 1;
            match which {
                "unknown_type" => self.send(&map(vec![("type", "frobnicate".into())])),
                "not_msgpack" => self.send_raw(&[0xc1, 0xc1, 0xc1]),
                "text_missing" => self.send(&map(vec![("type", "generate".into())])),
                "text_not_a_string" => self.send(&map(vec![("type", "generate".into()), ("text", 42.into())])),
                _ => self.send_raw(&[0x93, 1, 2, 3]),
            }
            return self.status_reply().map(|_| Detail::default());
        }
        match call {
            Call::Generate { text, options } => {
                self.send(&Self::options(text, options, "generate"));
                let frame = self.status_reply()?;
                match get(&frame, "audio") {
                    Some(Value::Binary(wav)) => Ok(Detail { amount: wav.len(), dropped_midway: false }),
                    _ => Err(format!("PROTOCOL: generate reply without audio: {}", describe_frame(&frame))),
                }
            }
            Call::Stream { text, options, drop_after } => {
                self.send(&Self::options(text, options, "generate_streaming"));
                let first = self.recv().map_err(|e| format!("BRIDGE: {e}"))?;
                match get(&first, "type").and_then(Value::as_str) {
                    Some("stream_start") => {}
                    _ => {
                        return match get(&first, "status").and_then(Value::as_str) {
                            Some("error") => {
                                Err(get(&first, "error").and_then(Value::as_str).unwrap_or("?").to_owned())
                            }
                            _ => Err(format!("PROTOCOL: expected stream_start: {}", describe_frame(&first))),
                        };
                    }
                }
                // The protocol has no cancel: a client that stops listening half-way (as an
                // Elixir caller that never drains its stream) still receives every frame.
                let mut chunks = 0;
                let mut wanted = 0;
                loop {
                    let frame = self.recv().map_err(|e| format!("BRIDGE: {e}"))?;
                    match get(&frame, "type").and_then(Value::as_str) {
                        Some("stream_chunk") => {
                            chunks += 1;
                            if drop_after.is_none_or(|n| chunks <= n) {
                                wanted += 1;
                            }
                        }
                        Some("stream_end") => {
                            let dropped = drop_after.is_some_and(|n| chunks > n);
                            return Ok(Detail { amount: wanted, dropped_midway: dropped });
                        }
                        Some("stream_error") => {
                            return Err(get(&frame, "error").and_then(Value::as_str).unwrap_or("?").to_owned());
                        }
                        _ => return Err(format!("PROTOCOL: inside a stream: {}", describe_frame(&frame))),
                    }
                }
            }
            Call::LoadLora(path) => {
                self.send(&map(vec![("type", "load_lora".into()), ("lora_path", path.display().to_string().into())]));
                self.status_reply().map(|_| Detail::default())
            }
            Call::UnloadLora => {
                self.send(&map(vec![("type", "unload_lora".into())]));
                self.status_reply().map(|_| Detail::default())
            }
            Call::Ping => {
                self.send(&map(vec![("type", "ping".into())]));
                self.status_reply().map(|_| Detail::default())
            }
        }
    }

    fn measure(&self) -> (u64, u64, usize) {
        measure(&self.pid)
    }

    fn mappings(&self) -> usize {
        mappings(&self.pid)
    }

    fn thread_names(&self) -> BTreeMap<String, usize> {
        thread_names(&self.pid)
    }

    fn describe(&self) -> Json {
        json!({ "kind": "voxcpm bridge child process, init with load_denoiser true",
                "binary": self.binary.display().to_string(), "pid": self.pid })
    }

    fn finish(mut self: Box<Self>) -> Json {
        // EOF on stdin ends the bridge.
        self.stdin = None;
        let t = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break Some(status);
            }
            if t.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let log_errors: Vec<&str> =
            log.lines().filter(|l| l.contains("ERROR") || l.contains("panic")).take(10).collect();
        json!({
            "exit_code": status.and_then(|s| s.code()),
            "exited_on_eof": status.is_some(),
            "exit_s": t.elapsed().as_secs_f64(),
            "log_lines": log.lines().count(),
            "log_error_lines": log_errors,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The plugin in clack-host.

fn plugin_soak(args: &Args) -> Json {
    use voxcpm_host_tests::clap::{Run, edit_project, edit_state, entry, first_sound, instance, play, set_offline};

    let progress = Arc::new(AtomicU64::new(0));
    let doing = Arc::new(std::sync::Mutex::new(String::from("loading the plugin")));
    watchdog(Arc::clone(&progress), Arc::clone(&doing));
    let started = Instant::now();
    let entry = entry();
    let threads_before = thread_names("self");
    let (rss_before, _, _) = measure("self");
    let mut samples = Vec::with_capacity(args.count + 1);
    let mut baseline: Option<(usize, BTreeMap<String, usize>)> = None;
    let mut leftovers: Vec<Json> = Vec::new();
    let mut silent = Vec::new();
    let mut not_back = 0;
    let mut head = json!({});
    for cycle in 0..args.count {
        *doing.lock().unwrap() = format!("cycle {cycle}");
        let t = Instant::now();
        let mut plugin = instance(&entry);
        // A new text each cycle, so the line is really generated (not read from the render
        // cache); odd cycles stream it (live mode).
        let live = cycle % 2 == 1;
        let text = format!("{} Cycle {cycle}.", TEXTS[cycle % TEXTS.len()]);
        edit_project(&mut plugin, |project| project["lines"][0]["text"] = json!(text));
        if live {
            edit_state(&mut plugin, |state| state["params"]["live"] = json!({ "bool": true }));
        }
        set_offline(&mut plugin, true);
        let run = Run { rate: 48_000, frames: 96_000, blocks: &[512], notes: &[(0, 60)], pace: Duration::ZERO };
        let played = play(&mut plugin, &run);
        let sound = first_sound(&played.left).is_some();
        drop(played);
        if !sound {
            silent.push(cycle);
        }
        let (_, _, threads_while_alive) = measure("self");
        drop(plugin);
        let destroyed = Instant::now();
        // Threads the instance started are joined on destroy; allow a short wait.
        let expected = baseline.as_ref().map(|(n, _)| *n);
        let mut threads = measure("self").2;
        while expected.is_some_and(|n| threads > n) && destroyed.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
            threads = measure("self").2;
        }
        let settle_ms = destroyed.elapsed().as_secs_f64() * 1e3;
        if baseline.is_none() {
            // After the first destroy: process-wide threads (rayon's global pool) stay.
            std::thread::sleep(Duration::from_millis(500));
            let names = thread_names("self");
            baseline = Some((names.values().sum(), names));
            threads = measure("self").2;
        }
        let (rss, anon, _) = measure("self");
        let threads_back = threads <= baseline.as_ref().unwrap().0;
        not_back += usize::from(!threads_back);
        if !threads_back && leftovers.len() < 20 {
            leftovers.push(json!({ "cycle": cycle + 1,
                "extra": names_json(&extra_threads(&baseline.as_ref().unwrap().1, &thread_names("self"))) }));
        }
        let plugin = PluginSample {
            threads_while_alive,
            threads_back,
            settle_ms,
            cycle_s: t.elapsed().as_secs_f64(),
            live,
            sound,
        };
        let elapsed_s = started.elapsed().as_secs_f64();
        // Every cycle is checked; every `--every`th (and each of the warm-up) is recorded.
        if (cycle + 1).is_multiple_of(args.every) || cycle < args.warmup || !threads_back {
            let mappings = mappings("self");
            samples.push(Sample { step: cycle + 1, rss, anon, threads, mappings, elapsed_s, plugin: Some(plugin) });
        }
        progress.fetch_add(1, Ordering::Relaxed);
        if (cycle + 1) % 10 != 0 && cycle + 1 != args.count {
            continue;
        }
        eprintln!(
            "{:>4} cycles  {elapsed_s:>6.1} s  RSS {:>6.1} MB  threads {threads} (alive {threads_while_alive})",
            cycle + 1,
            rss as f64 / 1e6
        );
        let (base_threads, base_names) = baseline.as_ref().unwrap();
        let mut verdict = rss_verdict(&samples, args.warmup);
        verdict["rss_before_first_instance_bytes"] = json!(rss_before);
        verdict["threads_before_first_instance"] = json!(threads_before.values().sum::<usize>());
        verdict["thread_names_before_first_instance"] = names_json(&threads_before);
        verdict["threads_after_first_destroy"] = json!(base_threads);
        verdict["thread_names_after_first_destroy"] = names_json(base_names);
        verdict["threads_kept_by_the_process"] = names_json(&extra_threads(&threads_before, base_names));
        // Each cycle's instance is the model's only user: it is loaded and freed every cycle.
        verdict["model_loads_logged"] = json!(voxcpm_host_tests::plugin_log().matches("model ready").count());
        verdict["cycles_with_threads_left"] = json!(not_back);
        verdict["leftover_examples"] = json!(leftovers);
        verdict["silent_cycles"] = json!(silent);
        verdict["threads_flat"] = json!(not_back == 0);
        verdict["pass"] = json!(verdict["rss_flat"].as_bool().unwrap_or(false) && not_back == 0 && silent.is_empty());
        head = json!({
            "what": format!("soak: the bundled .clap in clack-host created, activated, played (a note, offline, \
                             one freshly generated line; odd cycles in live/streaming mode), deactivated and \
                             destroyed {} times in one process", args.count),
            "mode": "plugin",
            "date": date(),
            "profile": profile(),
            "machine": machine(),
            "checkpoint": "assets/demo-checkpoint (random weights, tiny shapes)",
            "plugin_library": plugin_library(),
            "cycles": args.count,
            "sample_every": args.every,
            "verdict": verdict,
            "complete": cycle + 1 == args.count,
        });
        write_report(args.out.as_deref(), &head, &samples, "cycle");
    }
    drop(entry);
    head
}

/// Which build of the plugin was measured: the bundled library's size and time (the shared
/// target folder's library is whatever build of the plugin ran last).
fn plugin_library() -> Json {
    // On Linux the .clap bundle is the shared library itself.
    let file = voxcpm_host_tests::bundled_plugin().join("VoxCPM.clap");
    let meta = std::fs::metadata(&file).ok();
    let modified = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    json!({ "path": file.display().to_string(), "bytes": meta.map_or(0, |m| m.len()), "modified_unix": modified })
}
