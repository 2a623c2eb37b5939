//! Runs under the real-time checks: `process()` on an audio thread whose system calls are
//! watched ([`syscall_watch`](crate::syscall_watch)), in the debug plugin whose allocation
//! check aborts the host on any allocation inside `process()`; the editor's buttons are pressed
//! between blocks, as the editor's thread would press them.

use crate::clap::{AudioThread, Instance, KeyEvent, Played, Run, play_events};
use crate::plugin_hooks::{Button, PluginHooks};
use crate::syscall_watch::{Kind, Syscall, SyscallWatch};

/// The audio thread of a watched run.
struct Watched {
    /// In frame order: each pressed before the first block starting at or after its frame.
    presses: Vec<(usize, Button)>,
    hooks: Option<PluginHooks>,
    watch: Option<SyscallWatch>,
}

impl AudioThread for Watched {
    fn started(&mut self) {
        let watch = SyscallWatch::install_on_this_thread()
            .unwrap_or_else(|e| panic!("cannot watch the audio thread's system calls: {e}"));
        self.watch = Some(watch);
    }

    fn process(&mut self, frame: usize, process: &mut dyn FnMut()) {
        let due = self.presses.iter().take_while(|(at, _)| *at <= frame).count();
        for (_, button) in self.presses.drain(..due) {
            self.hooks.expect("hooks for the presses").press(button);
        }
        self.watch.as_ref().expect("the watch starts with the thread").during(process);
    }
}

/// Plays `run` and `keys` with the editor's buttons pressed at `presses` (each before the first
/// block starting at or after its frame); returns what played and the watched calls made
/// inside `process()`. Call on the thread that created `instance`.
pub fn play_watched(
    instance: &mut Instance,
    run: &Run,
    keys: &[KeyEvent],
    presses: &[(usize, Button)],
) -> (Played, Vec<Syscall>) {
    let mut presses = presses.to_vec();
    presses.sort_unstable();
    let hooks = (!presses.is_empty()).then(PluginHooks::of_last_instance);
    let mut audio = Watched { presses, hooks, watch: None };
    let played = play_events(instance, run, keys, &mut audio);
    let calls = audio.watch.take().expect("the audio thread ran").finish();
    (played, calls)
}

/// The calls a run must not have made inside `process()`: in real time, any watched call;
/// offline, any but waits (a bounce waits for renders by design).
pub fn forbidden(calls: &[Syscall], offline: bool) -> Vec<Syscall> {
    calls.iter().filter(|call| !(offline && call.kind == Kind::Wait)).copied().collect()
}
