//! A process-shared mutex whose lock word names the owning process.
//!
//! Layout (`#[repr(C)]`, 24 bytes, valid when zeroed):
//!
//! | field          | written by            | meaning                                             |
//! |----------------|-----------------------|-----------------------------------------------------|
//! | `state: u32`   | everyone (CAS/swap)   | the lock word, see the state table below            |
//! | `_reserved`    | nobody                | keeps `owner_thread` 8-aligned                      |
//! | `owner_thread` | the owner only        | owner's thread token, 0 whenever nobody owns it yet |
//! | `owner_start`  | the owner only        | owner process's start time, 0 whenever unknown      |
//!
//! States of `state` (the robust-futex word format: the owner's id in the low 30 bits):
//!
//! | value                 | meaning                                                         |
//! |-----------------------|-----------------------------------------------------------------|
//! | `0`                   | unlocked                                                        |
//! | `pid`                 | locked by a thread of process `pid`; nobody is asleep on it      |
//! | `pid \| WAITERS`      | locked; someone may be asleep on it, so `unlock` must wake one   |
//! | `pid \| OWNER_DIED ...` | its owner, a thread of process `pid`, died holding it (marked by that process, or by a taker that gave it back unused): the next acquirer takes it over at once |
//!
//! The owner's pid is in the word itself, set by the same CAS that takes the lock, so a holder that dies at
//! any instant (even between the CAS and writing `owner_thread`) is identifiable from the word alone.
//! `owner_thread` tells threads of the owning process apart; `owner_start` tells the owning process from a
//! later one that reuses its pid. Both are cleared before the word is released, so a thread never mistakes
//! a stale token for its own ownership.
//!
//! Owner death: a sleeping waiter wakes at least every [`SLICE`](super::SLICE) and, once a slice has passed
//! without the lock changing hands, checks `/proc` for the owning process ([`process_is_dead`]: gone, a
//! zombie, or its pid reused). If it is dead the waiter takes the lock over with one CAS from the very
//! word it inspected (so exactly one waiter wins) and reports [`Acquired::OwnerDied`]. A waiter never
//! decides this about its own process: when a *thread* ends holding a lock, its own process marks the word
//! with `OWNER_DIED` ([`RawMutex::mark_owner_died`]) and wakes a waiter, and the next acquirer, in any
//! process, takes it over without consulting `/proc`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{sleep_step, Owner, Wait, SLICE, SPIN};
use crate::sys::process::process_is_dead;
use crate::sys::{futex_wake, Deadline};

/// Low bits of `state`: the owner's pid (Linux pids are below 2^22).
pub const PID_MASK: u32 = (1 << 30) - 1;
/// Set by the owner's process when the owning thread ended holding the lock.
pub const OWNER_DIED: u32 = 1 << 30;
/// Set when a thread may be asleep on `state`: the unlocker must wake one.
pub const WAITERS: u32 = 1 << 31;

/// How a lock was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// From an unlocked state: the protected data is as the last owner left it.
    Clean,
    /// Taken over from this owner pid, which died holding it: the data may be half-updated.
    OwnerDied(u32),
}

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
    owner_start: AtomicU64,
}

impl RawMutex {
    /// An unlocked mutex (all zero bytes, as in a fresh mapping).
    pub const fn new() -> RawMutex {
        RawMutex {
            state: AtomicU32::new(0),
            _reserved: 0,
            owner_thread: AtomicU64::new(0),
            owner_start: AtomicU64::new(0),
        }
    }

    /// Take the lock if it is free. Never sleeps. Returns false if anyone (including `me`) holds it.
    #[inline]
    pub fn try_lock(&self, me: Owner) -> bool {
        debug_assert!(me.pid != 0 && me.pid & !PID_MASK == 0);
        // Acquire: pairs with the Release in `unlock`, so the previous holder's writes are visible to us.
        if self.state.compare_exchange(0, me.pid, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            self.set_owner(me);
            true
        } else {
            false
        }
    }

    /// Block until the lock is taken, `deadline` passes, or (if `interruptible`) a signal arrives.
    ///
    /// Call after [`RawMutex::try_lock`] failed and after checking that `me` does not already hold it (that
    /// would wait forever). Spins briefly, then sleeps on the word with `WAITERS` set, checking every
    /// [`SLICE`] whether the owning process died. On any outcome but `Done` nothing was changed except
    /// possibly a `WAITERS` bit, which only costs the holder one wake.
    #[cold]
    pub fn lock_slow(&self, me: Owner, deadline: Option<Deadline>, interruptible: bool) -> Wait<Acquired> {
        for _ in 0..SPIN {
            // Relaxed: only a hint; the CAS below is what synchronises.
            if self.state.load(Ordering::Relaxed) == 0 && self.try_lock(me) {
                return Wait::Done(Acquired::Clean);
            }
            std::hint::spin_loop();
        }
        let mut check_at = Deadline::after(SLICE);
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s == 0 {
                // We cannot know whether others sleep, so take it as contended (like std's state 2): our
                // unlock then wakes the next sleeper instead of stranding it.
                if self.cas_take(0, me) {
                    return Wait::Done(Acquired::Clean);
                }
                continue;
            }
            if s & OWNER_DIED != 0 || check_at.expired() {
                check_at = Deadline::after(SLICE);
                if let Some(pid) = self.recover_from(s, me) {
                    return Wait::Done(Acquired::OwnerDied(pid));
                }
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

    /// After `try_lock` failed: if the lock's owner is another process that has died, take the lock over
    /// and return the dead pid. Never sleeps (reads `/proc`).
    #[cold]
    pub fn try_recover(&self, me: Owner) -> Option<u32> {
        let s = self.state.load(Ordering::Relaxed);
        if s == 0 {
            return None;
        }
        self.recover_from(s, me)
    }

    /// If the owner named by the observed word `s` is another process and is dead, replace exactly that
    /// word with ours (one CAS, so one taker) and return the dead pid.
    fn recover_from(&self, s: u32, me: Owner) -> Option<u32> {
        let pid = s & PID_MASK;
        if s & OWNER_DIED != 0 {
            return if self.cas_take(s, me) { Some(pid) } else { None };
        }
        if pid == 0 || pid == me.pid {
            return None;
        }
        // Acquire fence: `s` may have been read Relaxed; this makes the start time its taker wrote before
        // the word (or the 0 it cleared it to, see below) visible, never an older owner's start, which would
        // make a live owner look like a dead one whose pid was reused.
        std::sync::atomic::fence(Ordering::Acquire);
        // Relaxed: ordered by the fence; 0 means "unknown" and makes the check conservative.
        let start = self.owner_start.load(Ordering::Relaxed);
        if !process_is_dead(pid, start) {
            return None;
        }
        // Take the start time out first, by CAS from the one judged dead: of several recoverers only one
        // gets past it, and no later reader pairs our pid with the dead owner's start.
        // Relaxed: published by the Release half of the word CAS in `cas_take`.
        if self.owner_start.compare_exchange(start, 0, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return None;
        }
        if self.cas_take(s, me) {
            Some(pid)
        } else {
            None
        }
    }

    /// CAS the word from `from` to ours (with `WAITERS`) and record ownership. `owner_start` must be 0 (or
    /// ours) by now: the start time of whoever held it before must never be seen next to our pid.
    #[inline]
    fn cas_take(&self, from: u32, me: Owner) -> bool {
        // AcqRel: Acquire pairs with the Release in `unlock` (or the dead owner's last writes, as far as
        // they went); Release publishes the cleared `owner_start` to recoverers that read our word.
        if self.state.compare_exchange(from, me.pid | WAITERS, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            self.set_owner(me);
            true
        } else {
            false
        }
    }

    /// For the owning process, when the owning *thread* `owner` ended while holding the lock: mark the word
    /// `OWNER_DIED` (keeping the pid, for the error message) and wake one sleeper, so that the next acquirer,
    /// in any process, takes it over with [`Acquired::OwnerDied`]. Does nothing unless `owner` holds it.
    pub fn mark_owner_died(&self, owner: Owner) -> bool {
        if !self.is_owned_by(owner) {
            return false;
        }
        // Relaxed: no longer owned by any live thread; the RMW below publishes the state. The start is
        // cleared too: whoever takes the marked word over must not be paired with it (see `cas_take`).
        self.owner_thread.store(0, Ordering::Relaxed);
        self.owner_start.store(0, Ordering::Relaxed);
        // Release: the dead thread's writes are visible to whoever takes the lock over (Acquire CAS).
        let old = self.state.fetch_or(OWNER_DIED | WAITERS, Ordering::Release);
        if old & WAITERS != 0 {
            self.wake_one();
        }
        true
    }

    /// Give back a lock that `me` took over from the dead process `dead` (an [`Acquired::OwnerDied`]) before
    /// using it, e.g. because the taking call was interrupted: it is left marked `OWNER_DIED` with `dead`'s
    /// pid, so the next acquirer takes it over and learns what the taker would have.
    pub fn give_back_owner_died(&self, me: Owner, dead: u32) -> Result<(), MutexError> {
        if !self.is_owned_by(me) {
            return Err(MutexError::NotOwner);
        }
        // Relaxed: as in `unlock`, published by the release below.
        self.owner_thread.store(0, Ordering::Relaxed);
        self.owner_start.store(0, Ordering::Relaxed);
        // Release: whoever takes it over next (Acquire CAS) sees the state as we found it.
        let old = self.state.swap((dead & PID_MASK) | OWNER_DIED | WAITERS, Ordering::Release);
        if old & WAITERS != 0 {
            self.wake_one();
        }
        Ok(())
    }

    /// Release the lock held by `me`, waking one sleeper if there may be any.
    #[inline]
    pub fn unlock(&self, me: Owner) -> Result<(), MutexError> {
        if !self.is_owned_by(me) {
            return Err(MutexError::NotOwner);
        }
        // Relaxed: ordered before the release below, which publishes them with the rest of our writes.
        self.owner_thread.store(0, Ordering::Relaxed);
        self.owner_start.store(0, Ordering::Relaxed);
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
        self.owner_start.store(me.start, Ordering::Relaxed);
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

    /// If the lock is marked `OWNER_DIED` (its owner died and nobody has taken it over yet): that owner's pid.
    #[inline]
    pub fn died_owner(&self) -> Option<u32> {
        let s = self.state.load(Ordering::Relaxed);
        (s & OWNER_DIED != 0).then_some(s & PID_MASK)
    }

    /// Whether a thread may be asleep waiting for the lock (a hint, for `inspect`).
    pub fn has_waiters(&self) -> bool {
        self.state.load(Ordering::Relaxed) & WAITERS != 0
    }

    /// Take the lock, retrying through signals: for Rust callers without an interrupt mechanism.
    pub fn lock(&self, me: Owner, deadline: Option<Deadline>) -> Result<Wait<Acquired>, MutexError> {
        if self.is_owned_by(me) {
            return Err(MutexError::AlreadyOwned);
        }
        if self.try_lock(me) {
            return Ok(Wait::Done(Acquired::Clean));
        }
        if let Some(pid) = self.try_recover(me) {
            return Ok(Wait::Done(Acquired::OwnerDied(pid)));
        }
        Ok(self.lock_slow(me, deadline, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::process::{current_pid, current_start_time};

    /// The state right after a live taker's CAS and before its `set_owner`: `owner_start` still holds the
    /// previous (dead / thread-ended) owner's start. A third party's recover_from pairs the NEW pid with the
    /// OLD start, would conclude "pid reused, owner dead", and take the lock from the live taker; so the
    /// start is cleared whenever a lock changes hands. (Found by an independent review.)
    #[test]
    fn a_stale_owner_start_never_lets_a_third_party_take_a_live_lock() {
        let m = RawMutex::new();
        // Previous owner: a thread of process (pid p1, start s1) that ended; its process marked the lock.
        let x = Owner { pid: current_pid(), thread: 1, start: 4242 };
        assert!(m.try_lock(x));
        assert!(m.mark_owner_died(x)); // (it used to leave owner_start at 4242)
                                       // Live taker T (pid = ours, real start): the CAS of cas_take has happened ...
        let t = Owner { pid: current_pid(), thread: 2, start: current_start_time() };
        let s = m.state.load(Ordering::Relaxed);
        m.state.compare_exchange(s, t.pid | WAITERS, Ordering::Acquire, Ordering::Relaxed).unwrap();
        // ... set_owner not yet. A waiter of another process checks now:
        let thief = Owner { pid: 3_999_999, thread: 7, start: 1 };
        let stolen = m.try_recover(thief);
        m.set_owner(t); // T's set_owner lands
        assert_eq!(stolen, None, "took a LIVE owner's lock: state={:#x}", m.state.load(Ordering::Relaxed));
    }
}
