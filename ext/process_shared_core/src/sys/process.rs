//! Process identity and liveness: a cached pid and start time (reset in forked children), and whether the
//! process that recorded a (pid, start time) pair is still running.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

static PID: AtomicU32 = AtomicU32::new(0);
static START: AtomicU64 = AtomicU64::new(0);
static EPOCH: AtomicU64 = AtomicU64::new(0);
static ATFORK_INSTALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn reset_in_child() {
    PID.store(0, Ordering::Relaxed);
    START.store(0, Ordering::Relaxed);
    EPOCH.fetch_add(1, Ordering::Relaxed);
}

extern "C" fn note_fork_in_parent() {
    EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// Register the fork handlers, once. Runs as a load-time constructor (before `main`, or when the Ruby
/// extension is loaded), so no fork can race with it; the lazy call from `refresh_pid` is a fallback that
/// takes no lock, so a fork can never leave a child waiting on it.
extern "C" fn install_atfork() {
    if ATFORK_INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    // SAFETY: registering plain extern "C" fns with no captured state; they only do atomic operations,
    // which are async-signal-safe and fine in a freshly forked child. Failure (ENOMEM) only means the
    // caches are not reset, which `reset_after_fork` (called by the Ruby fork hook) also covers.
    unsafe {
        libc::pthread_atfork(None, Some(note_fork_in_parent), Some(reset_in_child));
    }
}

#[used]
#[link_section = ".init_array"]
static INSTALL_ATFORK_AT_LOAD: extern "C" fn() = install_atfork;

/// This process's pid, cached (a `getpid` syscall costs more than a whole uncontended lock).
///
/// The cache is cleared in every forked child by a `pthread_atfork` handler installed on first use, so the
/// value is always the caller's own pid.
#[inline]
pub fn current_pid() -> u32 {
    let p = PID.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    refresh_pid()
}

#[cold]
fn refresh_pid() -> u32 {
    install_atfork();
    // SAFETY: getpid has no preconditions and cannot fail.
    let p = unsafe { libc::getpid() } as u32;
    PID.store(p, Ordering::Relaxed);
    p
}

/// Forget cached per-process state; call in a forked child (the `pthread_atfork` handler also does).
pub fn reset_after_fork() {
    reset_in_child();
}

/// A counter that changes (in parent and child) at every `fork` since this module was first used. Memory
/// set up before a fork may be shared with the child, so process-local allocators compare epochs to know
/// what they may still hand out again.
pub fn fork_epoch() -> u64 {
    current_pid(); // installs the atfork handlers
    EPOCH.load(Ordering::Relaxed)
}

/// This process's start time (clock ticks after boot, `/proc/self/stat` field 22), cached like the pid.
/// Together with the pid it names a process uniquely, even after the pid is reused. 0 if unreadable.
#[inline]
pub fn current_start_time() -> u64 {
    let s = START.load(Ordering::Relaxed);
    if s != 0 {
        return s;
    }
    refresh_start_time()
}

#[cold]
fn refresh_start_time() -> u64 {
    current_pid(); // installs the atfork reset
    let s = match process_state(current_pid()) {
        ProcState::Running { start } => start,
        _ => 0,
    };
    START.store(s, Ordering::Relaxed);
    s
}

/// What `/proc/PID/stat` says about a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcState {
    /// No such process (or it cannot be read: treated as gone only when the file is absent).
    Gone,
    /// Dead but not yet reaped by its parent (`Z`), or being reaped (`X`).
    Zombie,
    /// Alive, started at this many clock ticks after boot.
    Running {
        /// `/proc/PID/stat` field 22.
        start: u64,
    },
    /// The file exists but could not be read or parsed: assume alive.
    Unknown,
}

/// Read `/proc/PID/stat`: whether the process exists, is a zombie, and when it started.
pub fn process_state(pid: u32) -> ProcState {
    if pid == 0 || pid > i32::MAX as u32 {
        return ProcState::Gone;
    }
    let text = match std::fs::read(format!("/proc/{pid}/stat")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ProcState::Gone,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return ProcState::Gone,
        Err(_) => return ProcState::Unknown,
    };
    parse_stat(&text)
}

/// Parse a `/proc/PID/stat` line. The command name (field 2) may hold spaces and parentheses, so the
/// fields are counted from the *last* `)`.
fn parse_stat(text: &[u8]) -> ProcState {
    let Some(close) = text.iter().rposition(|&b| b == b')') else {
        return ProcState::Unknown;
    };
    let rest = String::from_utf8_lossy(&text[close + 1..]);
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next();
    // Field 3 is the state; field 22 (starttime) is 19 fields later.
    let start = fields.nth(18).and_then(|f| f.parse::<u64>().ok());
    match (state, start) {
        (Some("Z" | "X" | "x"), _) => ProcState::Zombie,
        (Some(_), Some(start)) => ProcState::Running { start },
        _ => ProcState::Unknown,
    }
}

/// Whether the process that recorded `(pid, start)` is certainly dead: gone, a zombie, or the pid now
/// belongs to a process with another start time. `start == 0` means "unknown" and only the first two count.
pub fn process_is_dead(pid: u32, start: u64) -> bool {
    match process_state(pid) {
        ProcState::Gone | ProcState::Zombie => true,
        ProcState::Running { start: now } => start != 0 && now != start,
        ProcState::Unknown => false,
    }
}

/// Whether a process with this pid exists (`kill(pid, 0)`; `EPERM` still means it exists).
///
/// A pid can be reused, so this is only a hint; callers pair it with a start time when that matters.
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 performs only the existence and permission check.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || super::errno() == libc::EPERM
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let line = b"42 (a (b) c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 2 3";
        assert_eq!(parse_stat(line), ProcState::Running { start: 987654 });
        assert_eq!(parse_stat(b"42 (x) Z 1 2 3"), ProcState::Zombie);
        assert_eq!(parse_stat(b"garbage"), ProcState::Unknown);
    }

    #[test]
    fn our_own_start_time_is_known_and_stable() {
        let s = current_start_time();
        assert!(s > 0);
        assert_eq!(process_state(current_pid()), ProcState::Running { start: s });
        assert!(!process_is_dead(current_pid(), s));
        assert!(process_is_dead(current_pid(), s + 1)); // same pid, other start: a reused pid
        assert!(process_is_dead(i32::MAX as u32, 0));
    }

    #[test]
    fn pid_is_ours_and_alive() {
        assert_eq!(current_pid(), std::process::id());
        assert!(pid_alive(current_pid()));
        assert!(!pid_alive(0));
    }
}
