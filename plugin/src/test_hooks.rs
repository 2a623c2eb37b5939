//! Debug builds only: what the host tests drive from outside, through C functions the debug
//! library exports. A host cannot press the editor's buttons (there is no display in CI),
//! and the checks on `process()` need a fault on purpose to show they catch one.
//!
//! Each instance registers when it is created; the host test asks for the id of the instance
//! it created last on its own thread (tests run side by side in one process), then reaches that
//! instance by id from any thread.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::player::EditorTriggers;
use crate::takes::Audition;

/// Faults `process()` commits once on request (`voxcpm_test_fault_next_process`).
const NO_FAULT: u32 = 0;
/// Allocates: the allocation check must abort the host.
const ALLOCATE: u32 = 1;
/// Sleeps: the system-call watch must see a sleep.
const SLEEP: u32 = 2;
/// Takes a mutex another thread holds: the system-call watch must see a futex wait.
const LOCK: u32 = 3;

/// How long the holder of the contended mutex keeps it once `process()` is about to take it:
/// long enough that `process()` blocks on it rather than finding it free.
const HOLD_AFTER_WAITER: Duration = Duration::from_millis(250);
/// The holder gives up if `process()` never comes (a test that stopped early).
const HOLDER_PATIENCE: Duration = Duration::from_secs(60);

pub struct TestHooks {
    id: u64,
    triggers: Arc<EditorTriggers>,
    fault: AtomicU32,
    contended: Arc<Mutex<()>>,
    about_to_lock: Arc<AtomicBool>,
}

static INSTANCES: Mutex<Vec<Weak<TestHooks>>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static LAST_CREATED: Cell<u64> = const { Cell::new(0) };
}

impl TestHooks {
    /// Registers a new instance (in its constructor, on the thread the host created it on).
    pub fn register(triggers: &Arc<EditorTriggers>) -> Arc<TestHooks> {
        let hooks = Arc::new(TestHooks {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            triggers: Arc::clone(triggers),
            fault: AtomicU32::new(NO_FAULT),
            contended: Arc::new(Mutex::new(())),
            about_to_lock: Arc::new(AtomicBool::new(false)),
        });
        let mut instances = INSTANCES.lock().unwrap_or_else(|p| p.into_inner());
        instances.retain(|weak| weak.strong_count() > 0);
        instances.push(Arc::downgrade(&hooks));
        LAST_CREATED.with(|last| last.set(hooks.id));
        hooks
    }

    /// In `process()`: commits the fault asked for, once.
    pub fn commit_fault(&self) {
        match self.fault.swap(NO_FAULT, Ordering::AcqRel) {
            ALLOCATE => drop(std::hint::black_box(Box::new(0u8))),
            SLEEP => std::thread::sleep(Duration::from_millis(1)),
            LOCK => {
                self.about_to_lock.store(true, Ordering::Release);
                drop(self.contended.lock());
            }
            _ => {}
        }
    }

    /// Arms `fault` for the next `process()`; a lock fault first has another thread take the
    /// mutex `process()` will ask for.
    fn arm(&self, fault: u32) -> bool {
        if fault == LOCK {
            self.hold_the_mutex_until_process_waits();
        }
        self.fault.store(fault, Ordering::Release);
        true
    }

    fn hold_the_mutex_until_process_waits(&self) {
        let (contended, about_to_lock) = (Arc::clone(&self.contended), Arc::clone(&self.about_to_lock));
        about_to_lock.store(false, Ordering::Release);
        let (held, is_held) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _guard = contended.lock();
            let _ = held.send(());
            let start = Instant::now();
            while !about_to_lock.load(Ordering::Acquire) && start.elapsed() < HOLDER_PATIENCE {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(HOLD_AFTER_WAITER);
        });
        let _ = is_held.recv();
    }
}

fn find(id: u64) -> Option<Arc<TestHooks>> {
    let instances = INSTANCES.lock().unwrap_or_else(|p| p.into_inner());
    instances.iter().filter_map(Weak::upgrade).find(|hooks| hooks.id == id)
}

/// The id of the instance created last on the calling thread; 0 if none.
#[unsafe(no_mangle)]
pub extern "C" fn voxcpm_test_last_instance() -> u64 {
    LAST_CREATED.with(Cell::get)
}

/// Presses the editor's play button of `line` on instance `id`: the bit the editor sets, which
/// the next `process()` takes. False if there is no such instance.
#[unsafe(no_mangle)]
pub extern "C" fn voxcpm_test_press_play(id: u64, line: u32) -> bool {
    let Some(hooks) = find(id) else { return false };
    hooks.triggers.request(line as usize);
    true
}

/// Auditions take `take` of `line` on instance `id`, as the editor's take button does (`cut`:
/// stop what plays first). False if there is no such instance.
#[unsafe(no_mangle)]
pub extern "C" fn voxcpm_test_audition(id: u64, line: u32, take: u32, cut: bool) -> bool {
    let Some(hooks) = find(id) else { return false };
    hooks.triggers.request_audition(Audition { line: line as usize, take: take as usize, cut });
    true
}

/// Makes the next `process()` of instance `id` commit `fault` (1 allocate, 2 sleep, 3 take a
/// mutex another thread holds). False for an unknown instance or fault.
#[unsafe(no_mangle)]
pub extern "C" fn voxcpm_test_fault_next_process(id: u64, fault: u32) -> bool {
    match find(id) {
        Some(hooks) if matches!(fault, ALLOCATE | SLEEP | LOCK) => hooks.arm(fault),
        _ => false,
    }
}
