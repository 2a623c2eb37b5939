//! Real-time checks over what the plugin plays: overlapping lines past the voice count (voice
//! stealing), cut retriggers, live streams, gate note-offs and the editor's play and audition
//! buttons, each played in real time on an audio thread whose system calls are watched (no wait, sleep, poll
//! or file I/O inside `process()`), under the debug plugin's allocation check, with every
//! sample finite. Canaries show that each check catches a fault committed on purpose, and that
//! an offline bounce, which waits by design, is not reported.
//!
//! A new way of playing is one more [`Scenario`] checked by [`check_in_real_time`].

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use voxcpm_host_tests::clap::{
    Instance, KeyEvent, Run, edit_project, edit_state, entry, first_sound, instance, play, set_offline,
};
use voxcpm_host_tests::plugin_hooks::{Button, Fault, PluginHooks};
use voxcpm_host_tests::realtime::{forbidden, play_watched};
use voxcpm_host_tests::syscall_watch::{Kind, Syscall, SyscallWatch};
use voxcpm_host_tests::{PARENT_BUNDLE, bundled_plugin};
use voxcpm_plugin::player::VOICES;

use super::RATE;

/// Block sizes of the real-time runs: usual host sizes and odd ones.
const BLOCKS: [usize; 5] = [256, 17, 512, 1, 127];
/// Where line 2 starts in the run that renders the lines ahead: after line 1 has ended.
const SECOND_AT: usize = 4 * RATE as usize;
/// Keys of lines 1 and 2 (the default base note).
const KEYS: [u8; 2] = [60, 61];

/// One way of playing, checked in real time.
#[derive(Default)]
struct Scenario {
    /// Parameters set first: (id, value as nice-plug saves it).
    params: Vec<(&'static str, Value)>,
    /// An edit of the project made first.
    project: Option<fn(&mut Value)>,
    keys: Vec<KeyEvent>,
    /// The editor's buttons, each pressed before the first block starting at or after its frame.
    presses: Vec<(usize, Button)>,
    frames: usize,
    /// Slept after each block (live streams need the time to arrive).
    pace: Duration,
}

/// Line 1 alone as a fresh instance plays it, and where its sound starts and ends.
struct LineOne {
    lead: usize,
    len: usize,
}

/// Plays `scenario` in real time on a fresh instance whose lines 1 and 2 were rendered ahead;
/// checks that no watched call was made inside `process()` and that every sample is finite;
/// returns the left channel and line 1 as played ahead.
fn check_in_real_time(scenario: &Scenario) -> (Vec<f32>, LineOne) {
    let entry = entry();
    let mut plugin = instance(&entry);
    edit_state(&mut plugin, |state| {
        for (id, value) in &scenario.params {
            state["params"][id] = value.clone();
        }
    });
    if let Some(edit) = scenario.project {
        edit_project(&mut plugin, edit);
    }
    let line_one = render_lines_ahead(&mut plugin);
    set_offline(&mut plugin, false);
    let run = Run { rate: RATE, frames: scenario.frames, blocks: &BLOCKS, notes: &[], pace: scenario.pace };
    let (played, calls) = play_watched(&mut plugin, &run, &scenario.keys, &scenario.presses);
    assert_none_forbidden(&calls, false);
    assert!(played.left.iter().chain(&played.right).all(|s| s.is_finite()), "a non-finite sample");
    (played.left, line_one)
}

/// An offline run that waits for lines 1 and 2 (line 2 after line 1 has ended), so that real-time
/// triggers find them; returns line 1's extent.
fn render_lines_ahead(plugin: &mut Instance) -> LineOne {
    set_offline(plugin, true);
    let notes = [(0, KEYS[0]), (SECOND_AT, KEYS[1])];
    let run = Run { rate: RATE, frames: 2 * SECOND_AT, blocks: &[512], notes: &notes, pace: Duration::ZERO };
    let left = play(plugin, &run).left;
    assert!(left.iter().all(|s| s.is_finite()), "a non-finite sample");
    let line = &left[..SECOND_AT];
    let lead = first_sound(line).expect("line 1 renders");
    let len = line.iter().rposition(|s| *s != 0.0).expect("line 1 renders") + 1;
    assert!(len < SECOND_AT - RATE as usize, "line 1 ({len} samples) runs into line 2");
    assert!(first_sound(&left[SECOND_AT..]).is_some(), "line 2 renders");
    LineOne { lead, len }
}

fn assert_none_forbidden(calls: &[Syscall], offline: bool) {
    let bad = forbidden(calls, offline);
    let list: Vec<String> = bad.iter().map(ToString::to_string).collect();
    assert!(bad.is_empty(), "process() made {} forbidden system call(s):\n{}", bad.len(), list.join("\n"));
}

fn on(at: usize, key: u8) -> KeyEvent {
    KeyEvent::On { at, key, velocity: 1.0 }
}

fn off(at: usize, key: u8) -> KeyEvent {
    KeyEvent::Off { at, key, velocity: 0.0 }
}

/// `count` note-ons `every` frames apart from frame 0, alternating lines 1 and 2.
fn note_ons(count: usize, every: usize) -> Vec<KeyEvent> {
    (0..count).map(|i| on(i * every, KEYS[i % 2])).collect()
}

fn param(id: &'static str, variant: &str) -> (&'static str, Value) {
    (id, json!({ "string": variant }))
}

#[test]
fn overlapping_lines_past_the_voice_count_steal_voices_in_real_time() {
    let mut scenario = Scenario { params: vec![param("retrigger", "overlap")], ..Scenario::default() };
    // Three times as many note-ons as voices, VOICES + 2 of them within one line's length.
    let every = RATE as usize / 20;
    scenario.keys = note_ons(3 * VOICES, every);
    scenario.frames = 3 * VOICES * every + SECOND_AT;
    let (left, line_one) = check_in_real_time(&scenario);
    assert!((VOICES + 2) * every < line_one.len, "line 1 ({} samples) is too short to fill the voices", line_one.len);
    assert_eq!(first_sound(&left), Some(line_one.lead), "the first note plays at once");
}

#[test]
fn cut_retriggers_in_real_time() {
    // A burst of note-ons a few frames apart, then ones a third of a second apart.
    let mut keys: Vec<KeyEvent> = (0..40).map(|i| on(i * 7, KEYS[i % 2])).collect();
    keys.extend((0..12).map(|i| on(300 + i * RATE as usize / 3, KEYS[i % 2])));
    let scenario =
        Scenario { params: vec![param("retrigger", "cut")], keys, frames: 5 * RATE as usize, ..Scenario::default() };
    let (left, _) = check_in_real_time(&scenario);
    assert!(first_sound(&left).is_some(), "nothing played");
}

#[test]
fn live_streams_cut_and_overlapping_in_real_time() {
    for retrigger in ["cut", "overlap"] {
        let keys = vec![on(0, KEYS[0]), on(RATE as usize / 2, KEYS[1]), on(RATE as usize, KEYS[0])];
        let scenario = Scenario {
            params: vec![param("retrigger", retrigger), ("live", json!({ "bool": true }))],
            keys,
            frames: 6 * RATE as usize,
            pace: Duration::from_millis(2),
            ..Scenario::default()
        };
        let (left, _) = check_in_real_time(&scenario);
        assert!(first_sound(&left).is_some(), "{retrigger}: no live speech arrived");
    }
}

#[test]
fn gate_note_offs_fade_lines_out_in_real_time() {
    let every = RATE as usize / 10;
    let mut keys = Vec::new();
    for i in 0..2 * VOICES {
        keys.extend([on(i * every, KEYS[i % 2]), off(i * every + every / 2 + 3, KEYS[i % 2])]);
    }
    let scenario = Scenario {
        params: vec![param("retrigger", "overlap"), param("note_off", "gate")],
        keys,
        frames: 2 * VOICES * every + RATE as usize,
        ..Scenario::default()
    };
    let (left, line_one) = check_in_real_time(&scenario);
    assert_eq!(first_sound(&left), Some(line_one.lead));
    let last_release = (2 * VOICES - 1) * every + every / 2 + 3;
    let last_sound = left.iter().rposition(|s| *s != 0.0);
    assert!(
        last_sound < Some(last_release + RATE as usize / 2),
        "a line outlived its note-off ({last_release}): sound until {last_sound:?}"
    );
}

#[test]
fn the_editors_play_button_plays_in_real_time() {
    let every = RATE as usize / 4;
    let presses: Vec<(usize, Button)> = (0..12).map(|i| (1000 + i * every, Button::Play { line: i % 2 })).collect();
    let scenario = Scenario {
        params: vec![param("retrigger", "overlap")],
        presses,
        frames: 12 * every + SECOND_AT,
        ..Scenario::default()
    };
    let (left, line_one) = check_in_real_time(&scenario);
    // No notes: all of it is the editor's. The first press plays in the first block that starts
    // at or after its frame.
    assert_eq!(first_sound(&left), Some(pressed_in(scenario.frames, 1000) + line_one.lead));
}

#[test]
fn auditions_of_takes_play_in_real_time() {
    let every = RATE as usize / 4;
    let presses: Vec<(usize, Button)> =
        (0..12).map(|i| (1000 + i * every, Button::Audition { line: 0, take: i % 3, cut: i % 2 == 0 })).collect();
    let scenario = Scenario {
        params: vec![param("retrigger", "overlap")],
        project: Some(|project| project["lines"][0]["takes"] = json!(3)),
        presses: presses.clone(),
        frames: 12 * every + SECOND_AT,
        // The takes the offline run did not wait for arrive meanwhile.
        pace: Duration::from_millis(2),
        ..Scenario::default()
    };
    let (left, line_one) = check_in_real_time(&scenario);
    // No notes: all of it is the auditions', and it starts in a block an audition was pressed for.
    let start = first_sound(&left).expect("no audition played") - line_one.lead;
    assert!(presses.iter().any(|(at, _)| pressed_in(scenario.frames, *at) == start), "sound from {start}, no audition");
}

/// The start of the block a button pressed at `frame` plays in: the first real-time block that
/// starts at or after it.
fn pressed_in(frames: usize, frame: usize) -> usize {
    BLOCKS
        .iter()
        .cycle()
        .scan(0, |start, n| {
            let this = *start;
            *start += n;
            Some(this)
        })
        .take_while(|start| *start < frames)
        .find(|start| *start >= frame)
        .expect("a block after the press")
}

/// A fault committed inside `process()` in real time, and the watched calls it made.
fn calls_with_fault(fault: Fault) -> Vec<Syscall> {
    let entry = entry();
    let mut plugin = instance(&entry);
    set_offline(&mut plugin, false);
    PluginHooks::of_last_instance().fault_next_process(fault);
    let run = Run { rate: RATE, frames: 4096, blocks: &BLOCKS, notes: &[], pace: Duration::ZERO };
    play_watched(&mut plugin, &run, &[], &[]).1
}

#[test]
fn canary_a_sleep_inside_process_is_caught() {
    let calls = calls_with_fault(Fault::Sleep);
    assert!(
        calls.iter().any(|call| matches!(call.name, "nanosleep" | "clock_nanosleep")),
        "the sleep was not seen: {calls:?}"
    );
    assert!(!forbidden(&calls, false).is_empty());
}

#[test]
fn canary_a_mutex_held_by_another_thread_inside_process_is_caught() {
    let calls = calls_with_fault(Fault::Lock);
    assert!(
        calls.iter().any(|call| call.name.starts_with("futex") && call.kind == Kind::Wait),
        "the wait for the mutex was not seen: {calls:?}"
    );
    assert!(!forbidden(&calls, false).is_empty());
}

/// Set in the child process the allocation canary runs in.
const CHILD: &str = "VOXCPM_HOST_TEST_ALLOCATION_CANARY";

#[test]
fn canary_an_allocation_inside_process_aborts_the_host() {
    if std::env::var_os(CHILD).is_some() {
        let entry = entry();
        let mut plugin = instance(&entry);
        PluginHooks::of_last_instance().fault_next_process(Fault::Allocate);
        let run = Run { rate: RATE, frames: 4096, blocks: &BLOCKS, notes: &[], pace: Duration::ZERO };
        play(&mut plugin, &run);
        return;
    }
    let child = run_alone_in_a_child("canary_an_allocation_inside_process_aborts_the_host");
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert_eq!(
        child.status.signal(),
        Some(libc::SIGABRT),
        "the allocation inside process() did not abort the host ({}):\n{stderr}",
        child.status
    );
    assert!(stderr.contains("memory allocation of 1 bytes failed"), "not the allocation check's abort:\n{stderr}");
}

/// Runs this module's test `name` alone in a child process of this test binary, with [`CHILD`]
/// set, this process's bundle of the plugin (which the child must not rewrite under this
/// process's other tests) and no core dump.
fn run_alone_in_a_child(name: &str) -> Output {
    let module = module_path!().split_once("::").expect("a module inside the test crate").1;
    let test = format!("{module}::{name}");
    let mut command = Command::new(std::env::current_exe().expect("this test binary"));
    command
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env(PARENT_BUNDLE, bundled_plugin());
    // SAFETY: setrlimit is async-signal-safe, as code between fork and exec must be.
    unsafe {
        command.pre_exec(|| {
            let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            if libc::setrlimit(libc::RLIMIT_CORE, &none) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.output().expect("run the child")
}

#[test]
fn an_offline_bounce_waits_for_its_render_and_is_not_reported() {
    let entry = entry();
    let mut plugin = instance(&entry);
    // A line no other test renders, so the bounce must wait for it.
    edit_project(&mut plugin, |p| p["lines"][0]["text"] = Value::from("Only the offline check says this."));
    set_offline(&mut plugin, true);
    let run = Run { rate: RATE, frames: 20_000, blocks: &BLOCKS, notes: &[], pace: Duration::ZERO };
    let (played, calls) = play_watched(&mut plugin, &run, &[on(100, KEYS[0])], &[]);
    assert!(first_sound(&played.left).is_some(), "the bounce did not wait for its line");
    assert!(calls.iter().any(|call| call.kind == Kind::Wait), "the offline wait was not seen: {calls:?}");
    assert_none_forbidden(&calls, true);
    assert!(!forbidden(&calls, false).is_empty(), "the same waits in real time are reported");
}

#[test]
fn the_watch_records_waits_and_file_io_only_inside_during_and_lets_wakes_pass() {
    let parked = std::thread::spawn(std::thread::park);
    let calls = std::thread::spawn(move || {
        let watch = SyscallWatch::install_on_this_thread().expect("the watch");
        std::thread::sleep(Duration::from_millis(1));
        watch.during(|| {
            std::thread::sleep(Duration::from_millis(1));
            std::fs::read("/proc/self/stat").expect("a file read");
            let _ = std::time::Instant::now();
            // A futex wake, if it is parked by now: allowed.
            parked.thread().unpark();
        });
        std::thread::sleep(Duration::from_millis(1));
        watch
    })
    .join()
    .expect("the watched thread")
    .finish();
    let names: Vec<&str> = calls.iter().map(|call| call.name).collect();
    let sleeps = names.iter().filter(|name| matches!(**name, "nanosleep" | "clock_nanosleep")).count();
    assert_eq!(sleeps, 1, "only the sleep inside `during` is recorded: {names:?}");
    for io in ["openat", "read", "close"] {
        assert!(names.contains(&io), "{io} is not recorded: {names:?}");
    }
    assert!(calls.iter().all(|call| !call.name.starts_with("futex")), "a futex wake was recorded: {names:?}");
}
