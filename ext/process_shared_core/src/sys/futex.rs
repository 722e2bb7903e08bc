//! Shared (never `FUTEX_PRIVATE_FLAG`) futex wait and wake.
//!
//! Private futexes are keyed by (mm, address) and so never wake another process; every word we wait on lives
//! in a `MAP_SHARED` mapping and other processes must be able to wake it, so these calls use the shared
//! (inode/offset-keyed) form. On macOS the same two calls are `os_sync_wait_on_address` /
//! `os_sync_wake_by_address_*` with the shared flags, or `__ulock_*` before macOS 14.4 ([`super::darwin`]).

use super::atomic::AtomicU32;
use super::clock::Deadline;
#[cfg(target_os = "macos")]
use super::darwin::{wait as os_wait, wake as os_wake};

/// How a [`futex_wait`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FutexWait {
    /// Woken by a `futex_wake` (or spuriously; callers always re-check their state).
    Woken,
    /// The word did not hold `expected` when the kernel looked (`EAGAIN`): re-check, do not sleep.
    ValueChanged,
    /// The absolute deadline passed (`ETIMEDOUT`).
    TimedOut,
    /// A signal handler ran (`EINTR`): the caller must let its runtime check for interrupts.
    Interrupted,
    /// Any other errno (`EFAULT`, `EINVAL`, `ENOSYS`): a bug or an unsupported kernel, never silently retried.
    Failed(i32),
}

/// Sleep while `*word == expected`, until woken, until `deadline` (absolute, `CLOCK_MONOTONIC`), or until a
/// signal arrives.
///
/// Contract: `word` must live in memory that stays mapped for the whole call (callers keep the mapping
/// alive); the comparison with `expected` is atomic with going to sleep, so a wake that happens after the
/// caller last read the word is never lost.
#[inline]
pub fn futex_wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> FutexWait {
    #[cfg(feature = "model")]
    if let Some(v) = super::model::with(|w| w.futex_wait(word.as_std(), expected, deadline)) {
        return v;
    }
    os_wait(word, expected, deadline)
}

/// Linux: `FUTEX_WAIT_BITSET`, shared.
#[cfg(not(target_os = "macos"))]
#[inline]
fn os_wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> FutexWait {
    let ts = deadline.map(|d| d.as_timespec());
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; `ts_ptr` is null or points to a
    // timespec on our stack that outlives the call. FUTEX_WAIT_BITSET without FUTEX_CLOCK_REALTIME takes an
    // absolute CLOCK_MONOTONIC timeout; the unused uaddr2 argument is null.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT_BITSET,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            libc::FUTEX_BITSET_MATCH_ANY,
        )
    };
    if rc == 0 {
        return FutexWait::Woken;
    }
    match super::errno() {
        libc::EAGAIN => FutexWait::ValueChanged,
        libc::ETIMEDOUT => FutexWait::TimedOut,
        libc::EINTR => FutexWait::Interrupted,
        e => FutexWait::Failed(e),
    }
}

/// Wake up to `count` threads (in any process) sleeping in [`futex_wait`] on `word`. Returns how many woke.
///
/// Errors cannot happen for a valid mapped word; if one did, nobody was woken and 0 is returned.
#[inline]
pub fn futex_wake(word: &AtomicU32, count: i32) -> usize {
    #[cfg(feature = "model")]
    if let Some(v) = super::model::with(|w| w.futex_wake(word.as_std(), count)) {
        return v;
    }
    os_wake(word, count)
}

/// Linux: `FUTEX_WAKE`, shared.
#[cfg(not(target_os = "macos"))]
#[inline]
fn os_wake(word: &AtomicU32, count: i32) -> usize {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE reads no other argument.
    let rc = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count) };
    if rc < 0 {
        0
    } else {
        rc as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    #[test]
    fn mismatch_returns_at_once() {
        let w = AtomicU32::new(1);
        assert_eq!(futex_wait(&w, 0, None), FutexWait::ValueChanged);
    }

    #[test]
    fn deadline_expires() {
        let w = AtomicU32::new(0);
        let t = std::time::Instant::now();
        assert_eq!(futex_wait(&w, 0, Some(Deadline::after(Duration::from_millis(20)))), FutexWait::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(19));
    }

    #[test]
    fn wake_wakes_a_sleeper() {
        let w = std::sync::Arc::new(AtomicU32::new(0));
        let w2 = w.clone();
        let h = std::thread::spawn(move || {
            while w2.load(Ordering::SeqCst) == 0 {
                futex_wait(&w2, 0, Some(Deadline::after(Duration::from_secs(10))));
            }
        });
        std::thread::sleep(Duration::from_millis(10));
        w.store(1, Ordering::SeqCst);
        futex_wake(&w, 1);
        h.join().unwrap();
    }
}
