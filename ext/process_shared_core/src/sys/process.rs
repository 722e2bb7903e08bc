//! Process identity: a cached pid that is reset in forked children.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

static PID: AtomicU32 = AtomicU32::new(0);
static ATFORK: Once = Once::new();

extern "C" fn reset_in_child() {
    PID.store(0, Ordering::Relaxed);
}

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
    ATFORK.call_once(|| {
        // SAFETY: registering a plain extern "C" fn with no captured state; it only does an atomic store,
        // which is async-signal-safe and fine in a freshly forked child. Failure (ENOMEM) only means the
        // cache is not reset, which `reset_after_fork` (called by the Ruby fork hook) also covers.
        unsafe {
            libc::pthread_atfork(None, None, Some(reset_in_child));
        }
    });
    // SAFETY: getpid has no preconditions and cannot fail.
    let p = unsafe { libc::getpid() } as u32;
    PID.store(p, Ordering::Relaxed);
    p
}

/// Forget cached per-process state; call in a forked child (the `pthread_atfork` handler also does).
pub fn reset_after_fork() {
    PID.store(0, Ordering::Relaxed);
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
    fn pid_is_ours_and_alive() {
        assert_eq!(current_pid(), std::process::id());
        assert!(pid_alive(current_pid()));
        assert!(!pid_alive(0));
    }
}
