//! The process's pid, cached (reset in forked children by `pthread_atfork` handlers, which also reset the
//! owner id of [`super::owner`]), and a fork epoch. Liveness is [`super::owner`]'s business: a pid means
//! nothing in another pid namespace.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

static PID: AtomicU32 = AtomicU32::new(0);
static EPOCH: AtomicU64 = AtomicU64::new(0);
static ATFORK_INSTALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn reset_in_child() {
    PID.store(0, Ordering::Relaxed);
    super::owner::forget_in_child();
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
#[cfg_attr(target_os = "macos", link_section = "__DATA,__mod_init_func")]
#[cfg_attr(not(target_os = "macos"), link_section = ".init_array")]
static INSTALL_ATFORK_AT_LOAD: extern "C" fn() = install_atfork;

/// This process's pid, cached (a `getpid` syscall costs more than a whole uncontended lock).
///
/// The cache is cleared in every forked child by a `pthread_atfork` handler installed on first use, so the
/// value is always the caller's own pid.
#[inline]
pub fn current_pid() -> u32 {
    #[cfg(feature = "model")]
    if let Some(v) = super::model::with(|w| w.current_pid()) {
        return v;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_is_ours() {
        assert_eq!(current_pid(), std::process::id());
    }
}
