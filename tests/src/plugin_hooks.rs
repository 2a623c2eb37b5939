//! The debug plugin's test hooks (plugin/src/test_hooks.rs), through the C functions its debug
//! build exports: the editor's play and audition buttons, and faults `process()` commits on
//! request to prove that the checks on it catch them.

use std::ffi::{CString, c_void};

use crate::bundled_plugin;

/// A fault the next `process()` commits once (the plugin's numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Fault {
    /// Allocates: the allocation check aborts the host.
    Allocate = 1,
    /// Sleeps for a millisecond.
    Sleep = 2,
    /// Takes a mutex another thread holds, and waits for it.
    Lock = 3,
}

/// A button of the editor that plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Button {
    /// A line's play button.
    Play { line: usize },
    /// One take of a line, played once (`cut`: stop what plays first).
    Audition { line: usize, take: usize, cut: bool },
}

/// One plugin instance's hooks, usable from any thread.
#[derive(Clone, Copy)]
pub struct PluginHooks {
    instance: u64,
    press_play: extern "C" fn(u64, u32) -> bool,
    audition: extern "C" fn(u64, u32, u32, bool) -> bool,
    fault_next_process: extern "C" fn(u64, u32) -> bool,
}

impl PluginHooks {
    /// The hooks of the instance the calling thread created last (tests run side by side in
    /// one process, each on its own thread).
    pub fn of_last_instance() -> PluginHooks {
        let library = loaded_plugin();
        let last_instance: extern "C" fn() -> u64 = symbol(library, "voxcpm_test_last_instance");
        let instance = last_instance();
        assert_ne!(instance, 0, "this thread has created no plugin instance");
        PluginHooks {
            instance,
            press_play: symbol(library, "voxcpm_test_press_play"),
            audition: symbol(library, "voxcpm_test_audition"),
            fault_next_process: symbol(library, "voxcpm_test_fault_next_process"),
        }
    }

    /// Does what the editor does for `button`: sets the request the next `process()` takes.
    pub fn press(&self, button: Button) {
        let number = |n: usize| u32::try_from(n).expect("a line or take number");
        let pressed = match button {
            Button::Play { line } => (self.press_play)(self.instance, number(line)),
            Button::Audition { line, take, cut } => (self.audition)(self.instance, number(line), number(take), cut),
        };
        assert!(pressed, "instance {} is gone", self.instance);
    }

    /// Makes the next `process()` commit `fault`.
    pub fn fault_next_process(&self, fault: Fault) {
        assert!((self.fault_next_process)(self.instance, fault as u32), "instance {} is gone", self.instance);
    }
}

/// The plugin library this process has loaded (`RTLD_NOLOAD`: never a second copy, whose
/// registry of instances would be empty). Never closed: the hooks are called for the
/// instances' lives.
fn loaded_plugin() -> *mut c_void {
    let path = bundled_plugin().join("VoxCPM.clap");
    let c_path = CString::new(path.as_os_str().as_encoded_bytes()).expect("a path without NUL");
    // SAFETY: a NUL-terminated path; RTLD_NOLOAD loads and initialises nothing.
    let library = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    assert!(!library.is_null(), "{} is not loaded in this process: load the plugin first", path.display());
    library
}

/// A function the debug build exports; only debug builds have them.
fn symbol<F: Copy>(library: *mut c_void, name: &str) -> F {
    assert_eq!(size_of::<F>(), size_of::<*mut c_void>());
    let c_name = CString::new(name).expect("a symbol name");
    // SAFETY: a live handle from dlopen and a NUL-terminated name.
    let address = unsafe { libc::dlsym(library, c_name.as_ptr()) };
    assert!(!address.is_null(), "the plugin exports no {name}: the host tests need its debug build");
    // SAFETY: `F` is the extern "C" fn type plugin/src/test_hooks.rs declares for `name`, a
    // pointer-sized function pointer.
    unsafe { std::mem::transmute_copy(&address) }
}
