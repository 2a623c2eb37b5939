//! The fuzzing loop: pick a corpus entry, mutate it with the target's mutator, run the target
//! under `catch_unwind`, keep inputs that produce a new kind of outcome, record panics as
//! findings (deduplicated by panic location and message shape).
//!
//! For the runner's child processes there is also crash capture: the input of the execution
//! in progress is written to a file by a signal handler when the process aborts (allocation
//! failure, stack overflow, SIGSEGV) and by a watchdog thread when one execution runs too long.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::rng::Rng;
use crate::{Outcome, Target};

thread_local! {
    static IN_TARGET: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that stays quiet for panics inside a target, recording their
/// location and message for [`execute`], and leaves every other panic to the previous hook
/// (so failing tests still print).
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_TARGET.with(Cell::get) {
                let payload = voxcpm_engine::error::panic_message(info.payload());
                let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{location}: {payload}")));
            } else {
                previous(info);
            }
        }));
    });
}

// The input of the execution in progress, for the crash handlers.
static CURRENT_PTR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static CURRENT_LEN: AtomicUsize = AtomicUsize::new(0);
static CRASH_FD: AtomicI32 = AtomicI32::new(-1);
/// When the execution in progress started (ms since [`epoch`]), 0 when idle.
static STARTED_MS: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Runs one input; `Err` is a panic as "location: message".
pub fn execute(target: &Target, input: &[u8]) -> Result<Outcome, String> {
    install_panic_hook();
    CURRENT_LEN.store(input.len(), Ordering::SeqCst);
    CURRENT_PTR.store(input.as_ptr().cast_mut(), Ordering::SeqCst);
    STARTED_MS.store(epoch().elapsed().as_millis() as u64 + 1, Ordering::SeqCst);
    IN_TARGET.with(|f| f.set(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    IN_TARGET.with(|f| f.set(false));
    STARTED_MS.store(0, Ordering::SeqCst);
    CURRENT_PTR.store(std::ptr::null_mut(), Ordering::SeqCst);
    CURRENT_LEN.store(0, Ordering::SeqCst);
    result.map_err(|_| LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| "unknown panic".into()))
}

extern "C" fn on_fatal_signal(signal: libc::c_int) {
    // Only async-signal-safe calls: write(2) of the input, then the default action.
    let fd = CRASH_FD.load(Ordering::SeqCst);
    let ptr = CURRENT_PTR.load(Ordering::SeqCst);
    let len = CURRENT_LEN.load(Ordering::SeqCst);
    if fd >= 0 && !ptr.is_null() {
        let mut done = 0;
        while done < len {
            // SAFETY: ptr/len describe the input slice borrowed for the execution in progress,
            // which is still alive: this handler runs on the thread that is executing it
            // (abort, stack overflow) before anything is unwound.
            let n = unsafe { libc::write(fd, ptr.add(done).cast(), len - done) };
            if n <= 0 {
                break;
            }
            done += n as usize;
        }
    }
    // SAFETY: restoring the default disposition and re-raising is async-signal-safe.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// Arms crash capture for this process: on SIGABRT, SIGSEGV, SIGBUS, SIGILL or SIGFPE the
/// current input is written to `path`; an execution running longer than `limit` has its input
/// written there by a watchdog thread, which then exits the process with status 124.
pub fn arm_crash_capture(path: &Path, limit: Duration) {
    use std::os::fd::IntoRawFd;
    let file = std::fs::File::create(path).expect("creating the crash input file");
    CRASH_FD.store(file.into_raw_fd(), Ordering::SeqCst);
    for signal in [libc::SIGABRT, libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE] {
        // SAFETY: the handler only makes async-signal-safe calls. Rust's own SIGSEGV handler
        // (stack overflow report) is replaced; an overflow still ends the process by SIGSEGV.
        unsafe { libc::signal(signal, on_fatal_signal as *const () as libc::sighandler_t) };
    }
    let path = path.to_owned();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let started = STARTED_MS.load(Ordering::SeqCst);
            let now = epoch().elapsed().as_millis() as u64 + 1;
            if started != 0 && now.saturating_sub(started) > limit.as_millis() as u64 {
                let ptr = CURRENT_PTR.load(Ordering::SeqCst);
                let len = CURRENT_LEN.load(Ordering::SeqCst);
                if !ptr.is_null() {
                    // SAFETY: the execution is still running (it is hung), so its input is alive.
                    let input = unsafe { std::slice::from_raw_parts(ptr, len) };
                    let _ = std::fs::write(&path, input);
                }
                eprintln!("hang: one execution ran for more than {limit:?}");
                // SAFETY: _exit ends the process without running anything else.
                unsafe { libc::_exit(124) };
            }
        }
    });
}

/// Limits the address space of this process, so that a reader that trusts a huge declared
/// size fails its allocation (an abort, captured as a finding) instead of swapping the machine.
pub fn limit_memory(bytes: u64) {
    let limit = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
    // SAFETY: setrlimit with a valid struct has no memory-safety preconditions.
    unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
}

/// A message's shape: digits, quoted text and scratch paths removed, at most 160 characters.
pub fn shape(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(160));
    let mut in_quote = false;
    let mut last_digit = false;
    for c in message.chars() {
        if c == '"' {
            in_quote = !in_quote;
            if in_quote {
                out.push_str("\"…\"");
            }
            continue;
        }
        if in_quote {
            continue;
        }
        if c.is_ascii_digit() {
            if !last_digit {
                out.push('#');
            }
            last_digit = true;
            continue;
        }
        last_digit = false;
        out.push(c);
        if out.len() >= 160 {
            break;
        }
    }
    out
}

pub fn hash_of(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// A distinct problem found by a campaign.
#[derive(Debug, Clone)]
pub struct Finding {
    /// "panic", "abort" or "hang".
    pub kind: String,
    /// What identifies it: the panic location and message shape, or the abort's last words.
    pub signature: String,
    /// The first occurrence's full message.
    pub message: String,
    pub count: u64,
    /// The first input that showed it.
    pub input: Vec<u8>,
    /// Where the input was saved, if it was.
    pub saved: Option<PathBuf>,
}

impl Finding {
    pub fn file_stem(&self) -> String {
        format!("{}-{:016x}", self.kind, hash_of(&self.signature))
    }

    /// Writes `<stem>.bin` (the input) and `<stem>.txt` (kind, signature, message) into `dir`.
    pub fn save(&mut self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}.bin", self.file_stem()));
        std::fs::write(&path, &self.input)?;
        let note = format!("{}\n{}\n\n{}\n", self.kind, self.signature, self.message);
        std::fs::write(path.with_extension("txt"), note)?;
        self.saved = Some(path.clone());
        Ok(path)
    }
}

pub struct Options {
    pub runs: u64,
    pub seconds: f64,
    pub seed: u64,
    /// Findings are saved here as they are found (none saved when `None`).
    pub findings_dir: Option<PathBuf>,
    /// Called about every `report_every` with the running totals.
    pub report_every: Duration,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub executions: u64,
    pub seconds: f64,
    pub corpus: usize,
    /// Distinct outcome shapes seen (the fuzzer's feedback).
    pub outcomes: usize,
    pub findings: Vec<Finding>,
    /// The slowest execution, in seconds.
    pub slowest: f64,
    /// Executions whose input the target accepted (`Ok`): how often mutation got past every check.
    pub accepted: u64,
}

const MAX_CORPUS: usize = 256;

/// Runs `target` until `runs` executions or `seconds` have passed. `on_report` sees the
/// totals from time to time and each new finding as it happens.
pub fn run(target: &Target, options: &Options, mut on_report: impl FnMut(&Stats, Option<&Finding>)) -> Stats {
    let mut rng = Rng::new(options.seed);
    let seeds = (target.seeds)();
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut findings: HashMap<String, Finding> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut stats = Stats::default();
    let start = Instant::now();
    let mut last_report = Instant::now();
    let mut record = |input: &[u8],
                      result: Result<Outcome, String>,
                      corpus: &mut Vec<Vec<u8>>,
                      rng: &mut Rng,
                      stats: &mut Stats,
                      on_report: &mut dyn FnMut(&Stats, Option<&Finding>)| {
        match result {
            Ok(outcome) => {
                stats.accepted += outcome.is_ok() as u64;
                let shape = match &outcome {
                    Ok(summary) => format!("ok {}", shape(summary)),
                    Err(message) => format!("err {}", shape(message)),
                };
                if seen.insert(hash_of(&shape)) {
                    if corpus.len() < MAX_CORPUS {
                        corpus.push(input.to_vec());
                    } else {
                        let at = seeds.len() + rng.below(MAX_CORPUS - seeds.len());
                        corpus[at] = input.to_vec();
                    }
                    stats.outcomes = seen.len();
                    stats.corpus = corpus.len();
                }
            }
            Err(panic) => {
                let signature = match panic.split_once(": ") {
                    Some((location, message)) => format!("{location}: {}", shape(message)),
                    None => shape(&panic),
                };
                if let Some(finding) = findings.get_mut(&signature) {
                    finding.count += 1;
                } else {
                    let mut finding = Finding {
                        kind: "panic".into(),
                        signature: signature.clone(),
                        message: panic,
                        count: 1,
                        input: input.to_vec(),
                        saved: None,
                    };
                    if let Some(dir) = &options.findings_dir
                        && let Err(e) = finding.save(dir)
                    {
                        eprintln!("cannot save a finding in {}: {e}", dir.display());
                    }
                    stats.findings.push(finding.clone());
                    on_report(stats, Some(&finding));
                    order.push(signature.clone());
                    findings.insert(signature, finding);
                }
            }
        }
    };
    for seed in &seeds {
        let t = Instant::now();
        let result = execute(target, seed);
        stats.slowest = stats.slowest.max(t.elapsed().as_secs_f64());
        stats.executions += 1;
        record(seed, result, &mut corpus, &mut rng, &mut stats, &mut on_report);
    }
    // Seeds stay in the corpus whatever they gave.
    for (i, seed) in seeds.iter().enumerate() {
        if !corpus.contains(seed) {
            corpus.insert(i.min(corpus.len()), seed.clone());
        }
    }
    while stats.executions < options.runs && start.elapsed().as_secs_f64() < options.seconds {
        // A quarter of the mutations start from a seed (a valid file), so that the corpus's
        // many early-failing inputs do not crowd out mutations deep in the format.
        let base = if rng.one_in(4) { rng.below(seeds.len().min(corpus.len())) } else { rng.below(corpus.len()) };
        let other = rng.below(corpus.len());
        let input = (target.mutate)(&mut rng, &corpus[base], &corpus[other]);
        let t = Instant::now();
        let result = execute(target, &input);
        stats.slowest = stats.slowest.max(t.elapsed().as_secs_f64());
        stats.executions += 1;
        record(&input, result, &mut corpus, &mut rng, &mut stats, &mut on_report);
        if last_report.elapsed() >= options.report_every {
            last_report = Instant::now();
            stats.seconds = start.elapsed().as_secs_f64();
            on_report(&stats, None);
        }
    }
    stats.seconds = start.elapsed().as_secs_f64();
    stats.corpus = corpus.len();
    stats.findings = order.iter().map(|s| findings[s].clone()).collect();
    stats
}
