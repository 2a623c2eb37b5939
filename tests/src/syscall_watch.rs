//! Watches the system calls of one thread (the host's audio thread) for those real-time code
//! must not make: waits (futex waits, sleeps, poll/select, yields), file and socket I/O, and
//! mapping memory (an allocation the plugin's allocation check cannot see, e.g. from C code).
//! Futex wakes, clock reads and everything else pass untouched.
//!
//! A seccomp filter installed without TSYNC applies to the calling thread alone. It hands each
//! watched call to a supervisor thread (`SECCOMP_RET_USER_NOTIF`), which records it when the
//! thread is inside [`SyscallWatch::during`] and lets it go on (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`,
//! Linux 5.5). So the watched code runs exactly as it would unwatched: a trapped call
//! (`SECCOMP_RET_TRAP`) would fail instead, and a sleep that fails panics in std; a killed
//! process (`SECCOMP_RET_KILL_PROCESS`) would report only the first call.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use libc::{c_long, sock_filter, sock_fprog};

/// What a watched call does that real-time code must not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Blocks until another thread, a timer or a file is ready.
    Wait,
    /// Reads, writes, opens or inspects a file or socket.
    Io,
    /// Maps or unmaps memory.
    Memory,
    /// A call through another system-call ABI (x32 or 32-bit), which the filter does not decode.
    ForeignAbi,
}

/// One watched call made inside [`SyscallWatch::during`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syscall {
    pub number: i32,
    pub name: &'static str,
    pub kind: Kind,
    pub args: [u64; 6],
}

impl fmt::Display for Syscall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, ..] = self.args;
        write!(f, "{} (#{}, {:?}; args {a:#x}, {b:#x}, {c:#x})", self.name, self.number, self.kind)
    }
}

/// `futex_wait` (Linux 6.7), not yet named by the libc crate; the same number on every arch.
const SYS_FUTEX_WAIT: c_long = 455;

/// The futex operations that wait (`op & FUTEX_CMD_MASK`); wakes and requeues do not.
const FUTEX_WAITS: [i32; 5] =
    [libc::FUTEX_WAIT, libc::FUTEX_WAIT_BITSET, libc::FUTEX_LOCK_PI, libc::FUTEX_LOCK_PI2, libc::FUTEX_WAIT_REQUEUE_PI];

/// Watched calls on every architecture (futex is decoded apart, by operation).
const WATCHED: &[(c_long, &str, Kind)] = &[
    (libc::SYS_futex_waitv, "futex_waitv", Kind::Wait),
    (SYS_FUTEX_WAIT, "futex_wait", Kind::Wait),
    (libc::SYS_nanosleep, "nanosleep", Kind::Wait),
    (libc::SYS_clock_nanosleep, "clock_nanosleep", Kind::Wait),
    (libc::SYS_sched_yield, "sched_yield", Kind::Wait),
    (libc::SYS_ppoll, "ppoll", Kind::Wait),
    (libc::SYS_pselect6, "pselect6", Kind::Wait),
    (libc::SYS_epoll_pwait, "epoll_pwait", Kind::Wait),
    (libc::SYS_epoll_pwait2, "epoll_pwait2", Kind::Wait),
    (libc::SYS_wait4, "wait4", Kind::Wait),
    (libc::SYS_waitid, "waitid", Kind::Wait),
    (libc::SYS_rt_sigsuspend, "rt_sigsuspend", Kind::Wait),
    (libc::SYS_rt_sigtimedwait, "rt_sigtimedwait", Kind::Wait),
    (libc::SYS_openat, "openat", Kind::Io),
    (libc::SYS_openat2, "openat2", Kind::Io),
    (libc::SYS_close, "close", Kind::Io),
    (libc::SYS_read, "read", Kind::Io),
    (libc::SYS_readv, "readv", Kind::Io),
    (libc::SYS_pread64, "pread64", Kind::Io),
    (libc::SYS_preadv, "preadv", Kind::Io),
    (libc::SYS_preadv2, "preadv2", Kind::Io),
    (libc::SYS_write, "write", Kind::Io),
    (libc::SYS_writev, "writev", Kind::Io),
    (libc::SYS_pwrite64, "pwrite64", Kind::Io),
    (libc::SYS_pwritev, "pwritev", Kind::Io),
    (libc::SYS_pwritev2, "pwritev2", Kind::Io),
    (libc::SYS_fsync, "fsync", Kind::Io),
    (libc::SYS_fdatasync, "fdatasync", Kind::Io),
    (libc::SYS_newfstatat, "newfstatat", Kind::Io),
    (libc::SYS_fstat, "fstat", Kind::Io),
    (libc::SYS_statx, "statx", Kind::Io),
    (libc::SYS_faccessat, "faccessat", Kind::Io),
    (libc::SYS_getdents64, "getdents64", Kind::Io),
    (libc::SYS_sendto, "sendto", Kind::Io),
    (libc::SYS_sendmsg, "sendmsg", Kind::Io),
    (libc::SYS_recvfrom, "recvfrom", Kind::Io),
    (libc::SYS_recvmsg, "recvmsg", Kind::Io),
    (libc::SYS_mmap, "mmap", Kind::Memory),
    (libc::SYS_munmap, "munmap", Kind::Memory),
    (libc::SYS_mremap, "mremap", Kind::Memory),
    (libc::SYS_brk, "brk", Kind::Memory),
    (libc::SYS_madvise, "madvise", Kind::Memory),
];

/// Watched calls only x86-64 still has (aarch64 has just their newer forms, above).
#[cfg(target_arch = "x86_64")]
const WATCHED_LEGACY: &[(c_long, &str, Kind)] = &[
    (libc::SYS_pause, "pause", Kind::Wait),
    (libc::SYS_poll, "poll", Kind::Wait),
    (libc::SYS_select, "select", Kind::Wait),
    (libc::SYS_epoll_wait, "epoll_wait", Kind::Wait),
    (libc::SYS_open, "open", Kind::Io),
    (libc::SYS_creat, "creat", Kind::Io),
    (libc::SYS_stat, "stat", Kind::Io),
    (libc::SYS_lstat, "lstat", Kind::Io),
    (libc::SYS_access, "access", Kind::Io),
];
#[cfg(not(target_arch = "x86_64"))]
const WATCHED_LEGACY: &[(c_long, &str, Kind)] = &[];

/// `AUDIT_ARCH_*` of this build: EM_X86_64 / EM_AARCH64, 64-bit, little-endian.
#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: u32 = 0xC000_00B7;
/// Calls with this bit set are x32's (x86-64 only; the bit is above every aarch64 number).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offsets into `struct seccomp_data`: nr, arch, then args (the low half of args[1] on a
/// little-endian machine).
const NR: u32 = 0;
const ARCH: u32 = 4;
const FUTEX_OP: u32 = 16 + 8;

/// Records kept per watch; more are counted, not kept (the supervisor never allocates while
/// the watched thread waits on it).
const RECORDED: usize = 4096;

/// A watch on the thread that installed it, until that thread exits.
pub struct SyscallWatch {
    inside: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    supervisor: JoinHandle<Recorded>,
}

struct Recorded {
    calls: Vec<Syscall>,
    dropped: usize,
    /// Why the supervisor stopped answering early, if it did.
    error: Option<io::Error>,
}

/// The listener's descriptor, handed from the watched thread to the supervisor.
const LISTENER_PENDING: i32 = -1;
const LISTENER_REFUSED: i32 = -2;

impl SyscallWatch {
    /// Installs the filter on the calling thread only, and starts its supervisor.
    pub fn install_on_this_thread() -> io::Result<SyscallWatch> {
        let listener = Arc::new(AtomicI32::new(LISTENER_PENDING));
        let inside = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        // Started before the filter exists: a new thread inherits its creator's filters, and a
        // supervisor watched by itself would wait on itself.
        let supervisor = {
            let (listener, inside, stop) = (Arc::clone(&listener), Arc::clone(&inside), Arc::clone(&stop));
            std::thread::Builder::new().name("syscall watch".into()).spawn(move || {
                let Some(listener) = receive_listener(&listener) else {
                    return Recorded { calls: Vec::new(), dropped: 0, error: None };
                };
                supervise(&listener, &inside, &stop)
            })?
        };
        match install_filter() {
            Ok(fd) => {
                // One atomic store: the watched thread makes no call the supervisor must answer
                // before it has the listener.
                listener.store(fd, Ordering::Release);
                Ok(SyscallWatch { inside, stop, supervisor })
            }
            Err(error) => {
                listener.store(LISTENER_REFUSED, Ordering::Release);
                let _ = supervisor.join();
                Err(error)
            }
        }
    }

    /// Runs `f` with its watched calls recorded (on the watched thread).
    pub fn during<R>(&self, f: impl FnOnce() -> R) -> R {
        self.inside.store(true, Ordering::Release);
        let result = f();
        self.inside.store(false, Ordering::Release);
        result
    }

    /// The watched calls made inside [`during`](Self::during). Call after the watched thread
    /// has exited: once the supervisor is gone, a watched call fails with ENOSYS.
    pub fn finish(self) -> Vec<Syscall> {
        self.stop.store(true, Ordering::Release);
        let recorded = self.supervisor.join().expect("the syscall watch's supervisor panicked");
        if let Some(error) = recorded.error {
            panic!("the syscall watch stopped answering: {error}");
        }
        assert_eq!(recorded.dropped, 0, "more than {RECORDED} watched calls; the first: {:?}", recorded.calls.first());
        recorded.calls
    }
}

/// Installs the filter on the calling thread (no TSYNC flag: on no other thread); returns the
/// listener's descriptor.
fn install_filter() -> io::Result<i32> {
    let program = filter();
    let fprog = sock_fprog { len: program.len() as u16, filter: program.as_ptr().cast_mut() };
    // SAFETY: prctl with integer arguments; no_new_privs is per thread and only affects
    // execve, which the audio thread never calls.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fprog` points at `program`, alive for the call; the kernel copies it.
    let listener = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER, &fprog)
    };
    if listener < 0 {
        let error = io::Error::last_os_error();
        return Err(io::Error::new(
            error.kind(),
            format!("seccomp user notification (Linux 5.5 or newer, seccomp allowed) refused: {error}"),
        ));
    }
    Ok(listener as i32)
}

/// The supervisor's side of the hand-over: waits for the listener (None if the filter was
/// refused).
fn receive_listener(cell: &AtomicI32) -> Option<OwnedFd> {
    loop {
        match cell.load(Ordering::Acquire) {
            LISTENER_PENDING => std::thread::sleep(Duration::from_millis(1)),
            LISTENER_REFUSED => return None,
            // SAFETY: the listener's new descriptor, handed over to this thread alone.
            fd => return Some(unsafe { OwnedFd::from_raw_fd(fd) }),
        }
    }
}

/// Answers the listener until told to stop: each watched call is recorded (inside `during`)
/// and then let go on as if unwatched.
fn supervise(listener: &OwnedFd, inside: &AtomicBool, stop: &AtomicBool) -> Recorded {
    let mut recorded = Recorded { calls: Vec::with_capacity(RECORDED), dropped: 0, error: None };
    let fd = listener.as_raw_fd();
    loop {
        let mut ready = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut ready, 1, 20) };
        if n == 0 || (n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted) {
            if stop.load(Ordering::Acquire) {
                return recorded;
            }
            continue;
        }
        if n < 0 {
            recorded.error = Some(io::Error::last_os_error());
            return recorded;
        }
        if ready.revents & libc::POLLIN == 0 {
            // POLLHUP: the watched thread has exited.
            return recorded;
        }
        // SAFETY: a zeroed seccomp_notif is valid (and required) for NOTIF_RECV.
        let mut call: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: `call` is a seccomp_notif the kernel fills in.
        if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut call) } != 0 {
            let error = io::Error::last_os_error();
            // ENOENT: the call was interrupted before it was taken; nothing to answer.
            if !matches!(error.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) {
                recorded.error = Some(error);
                return recorded;
            }
            continue;
        }
        if inside.load(Ordering::Acquire) {
            if recorded.calls.len() < RECORDED {
                recorded.calls.push(describe(&call.data));
            } else {
                recorded.dropped += 1;
            }
        }
        let mut answer = libc::seccomp_notif_resp {
            id: call.id,
            val: 0,
            error: 0,
            flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        };
        // SAFETY: `answer` is a seccomp_notif_resp for the call just received. ENOENT (the
        // call was interrupted meanwhile) needs nothing more.
        unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut answer) };
    }
}

fn describe(data: &libc::seccomp_data) -> Syscall {
    let number = data.nr;
    let (name, kind) = if data.arch != NATIVE_ARCH || number as u32 & X32_SYSCALL_BIT != 0 {
        ("(another ABI)", Kind::ForeignAbi)
    } else {
        // The filter passes on only the table's calls and futex waits.
        WATCHED
            .iter()
            .chain(WATCHED_LEGACY)
            .find(|(nr, ..)| *nr == c_long::from(number))
            .map_or(("futex (a waiting operation)", Kind::Wait), |&(_, name, kind)| (name, kind))
    };
    Syscall { number, name, kind, args: data.args }
}

/// The classic BPF program: foreign ABIs, every watched number, and the waiting futex
/// operations go to the supervisor; everything else is allowed. Each test jumps over the
/// return right after it, so no jump is long.
fn filter() -> Vec<sock_filter> {
    const NOTIFY: u32 = libc::SECCOMP_RET_USER_NOTIF;
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    let load = |offset: u32| stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
    let ret = |action: u32| stmt(libc::BPF_RET | libc::BPF_K, action);
    let skip_unless_equal = |k: u32| jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, k, 0, 1);

    let mut program =
        vec![load(ARCH), jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, NATIVE_ARCH, 1, 0), ret(NOTIFY)];
    program.push(load(NR));
    program.extend([jump(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K, X32_SYSCALL_BIT, 0, 1), ret(NOTIFY)]);
    for &(number, ..) in WATCHED.iter().chain(WATCHED_LEGACY) {
        program.extend([skip_unless_equal(number as u32), ret(NOTIFY)]);
    }
    program.extend([jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, libc::SYS_futex as u32, 1, 0), ret(ALLOW)]);
    program.push(load(FUTEX_OP));
    program.push(stmt(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, libc::FUTEX_CMD_MASK as u32));
    for op in FUTEX_WAITS {
        program.extend([skip_unless_equal(op as u32), ret(NOTIFY)]);
    }
    program.push(ret(ALLOW));
    program
}

fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter { code: code as u16, jt: 0, jf: 0, k }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code: code as u16, jt, jf, k }
}
