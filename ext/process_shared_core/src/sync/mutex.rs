//! A process-shared mutex whose lock word names the owning process.
//!
//! Layout (`#[repr(C)]`, 16 bytes, valid when zeroed):
//!
//! | field          | written by            | meaning                                             |
//! |----------------|-----------------------|-----------------------------------------------------|
//! | `state: u32`   | everyone (CAS/swap)   | the lock word, see the state table below            |
//! | `_reserved`    | nobody                | keeps `owner_thread` 8-aligned; room for a generation |
//! | `owner_thread` | the owner only        | owner's thread token, 0 whenever nobody owns it yet |
//!
//! States of `state` (the robust-futex word format: the owner's id in the low 30 bits):
//!
//! | value                 | meaning                                                         |
//! |-----------------------|-----------------------------------------------------------------|
//! | `0`                   | unlocked                                                        |
//! | `pid`                 | locked by a thread of process `pid`; nobody is asleep on it      |
//! | `pid \| WAITERS`      | locked; someone may be asleep on it, so `unlock` must wake one   |
//! | `... \| OWNER_DIED`   | reserved for owner-death recovery                               |
//!
//! The owner's pid is in the word itself, set by the same CAS that takes the lock, so a holder that dies at
//! any instant (even between the CAS and writing `owner_thread`) is identifiable from the word alone.
//! `owner_thread` tells threads of the owning process apart; it is cleared before the word is released, so
//! a thread never mistakes a stale token for its own ownership.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{sleep_step, Owner, Wait, SPIN};
use crate::sys::{futex_wake, Deadline};

/// Low bits of `state`: the owner's pid (Linux pids are below 2^22).
pub const PID_MASK: u32 = (1 << 30) - 1;
/// Set while an owner's death has been noticed but not yet recovered from (reserved).
pub const OWNER_DIED: u32 = 1 << 30;
/// Set when a thread may be asleep on `state`: the unlocker must wake one.
pub const WAITERS: u32 = 1 << 31;

/// Misuse of a mutex by a thread that does not hold it, or holds it already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MutexError {
    /// `unlock` by a thread that does not hold the lock.
    NotOwner,
    /// `lock` by the thread that already holds it (it is not re-entrant).
    AlreadyOwned,
}

/// See the module documentation for the layout and the state table.
#[repr(C)]
#[derive(Debug, Default)]
pub struct RawMutex {
    state: AtomicU32,
    _reserved: u32,
    owner_thread: AtomicU64,
}

impl RawMutex {
    /// An unlocked mutex (all zero bytes, as in a fresh mapping).
    pub const fn new() -> RawMutex {
        RawMutex {
            state: AtomicU32::new(0),
            _reserved: 0,
            owner_thread: AtomicU64::new(0),
        }
    }

    /// Take the lock if it is free. Never sleeps. Returns false if anyone (including `me`) holds it.
    #[inline]
    pub fn try_lock(&self, me: Owner) -> bool {
        debug_assert!(me.pid != 0 && me.pid & !PID_MASK == 0);
        // Acquire: pairs with the Release in `unlock`, so the previous holder's writes are visible to us.
        if self
            .state
            .compare_exchange(0, me.pid, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            self.set_owner(me);
            true
        } else {
            false
        }
    }

    /// Block until the lock is taken, `deadline` passes, or (if `interruptible`) a signal arrives.
    ///
    /// Call after [`RawMutex::try_lock`] failed and after checking that `me` does not already hold it (that
    /// would wait forever). Spins briefly, then sleeps on the word with `WAITERS` set. On any outcome but
    /// `Done` nothing was changed except possibly a `WAITERS` bit, which only costs the holder one wake.
    #[cold]
    pub fn lock_slow(
        &self,
        me: Owner,
        deadline: Option<Deadline>,
        interruptible: bool,
    ) -> Wait<()> {
        for _ in 0..SPIN {
            // Relaxed: only a hint; the CAS below is what synchronises.
            if self.state.load(Ordering::Relaxed) == 0 && self.try_lock(me) {
                return Wait::Done(());
            }
            std::hint::spin_loop();
        }
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s == 0 {
                // We cannot know whether others sleep, so take it as contended (like std's state 2): our
                // unlock then wakes the next sleeper instead of stranding it.
                // Acquire: pairs with the Release in `unlock`.
                if self
                    .state
                    .compare_exchange(0, me.pid | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    self.set_owner(me);
                    return Wait::Done(());
                }
                continue;
            }
            if s & WAITERS == 0
                // Relaxed: the futex syscall re-reads the word; setting the bit only has to be atomic.
                && self.state.compare_exchange(s, s | WAITERS, Ordering::Relaxed, Ordering::Relaxed).is_err()
            {
                continue;
            }
            if let Some(out) = sleep_step(&self.state, s | WAITERS, deadline, interruptible) {
                return out;
            }
        }
    }

    /// Release the lock held by `me`, waking one sleeper if there may be any.
    #[inline]
    pub fn unlock(&self, me: Owner) -> Result<(), MutexError> {
        if !self.is_owned_by(me) {
            return Err(MutexError::NotOwner);
        }
        // Relaxed: ordered before the release below, which publishes it with the rest of our writes.
        self.owner_thread.store(0, Ordering::Relaxed);
        // Release: publishes the critical section to the next acquirer (its Acquire CAS).
        let old = self.state.swap(0, Ordering::Release);
        if old & WAITERS != 0 {
            self.wake_one();
        }
        Ok(())
    }

    #[cold]
    fn wake_one(&self) {
        futex_wake(&self.state, 1);
    }

    #[inline]
    fn set_owner(&self, me: Owner) {
        // Relaxed: read back by `me` itself (program order) or by threads of our process that, by coherence,
        // can only see 0 (cleared before release) or this token, never their own stale one.
        self.owner_thread.store(me.thread, Ordering::Relaxed);
    }

    /// Whether any thread of any process holds the lock.
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & PID_MASK != 0
    }

    /// Whether `me` (that exact process and thread) holds the lock.
    #[inline]
    pub fn is_owned_by(&self, me: Owner) -> bool {
        // Relaxed: if the pid bits are ours, a thread of our process wrote them, and the token check
        // distinguishes which (see `set_owner`).
        self.state.load(Ordering::Relaxed) & PID_MASK == me.pid
            && self.owner_thread.load(Ordering::Relaxed) == me.thread
    }

    /// The pid of the process holding the lock, if any.
    pub fn owner_pid(&self) -> Option<u32> {
        match self.state.load(Ordering::Relaxed) & PID_MASK {
            0 => None,
            p => Some(p),
        }
    }

    /// Whether a thread may be asleep waiting for the lock (a hint, for `inspect`).
    pub fn has_waiters(&self) -> bool {
        self.state.load(Ordering::Relaxed) & WAITERS != 0
    }

    /// Take the lock, retrying through signals: for Rust callers without an interrupt mechanism.
    pub fn lock(&self, me: Owner, deadline: Option<Deadline>) -> Result<Wait<()>, MutexError> {
        if self.is_owned_by(me) {
            return Err(MutexError::AlreadyOwned);
        }
        if self.try_lock(me) {
            return Ok(Wait::Done(()));
        }
        Ok(self.lock_slow(me, deadline, false))
    }
}
