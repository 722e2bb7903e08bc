//! A process-shared condition variable: a sequence counter on a futex word (the shape of Rust std's
//! `condvar/futex.rs`, with shared futexes), plus a count of wake-ups owed, so that `signal` wakes exactly
//! one waiter even when others are still on their way into the kernel.
//!
//! Layout (`#[repr(C)]`, 16 bytes): `seq` (bumped by every signal and broadcast; the futex word) and
//! `counts` (one atomic word: `waiters` in the low 32 bits, `pending` wake-ups in the high 32 bits).
//!
//! | event                  | seq    | waiters | pending                                    |
//! |------------------------|--------|---------|--------------------------------------------|
//! | `begin_wait`           | read (the ticket) | +1 | –                                     |
//! | `signal`               | +1, wake 1   | –  | +1 up to `waiters` (nothing if no waiter)  |
//! | `broadcast`            | +1, wake all | –  | `= waiters`                                |
//! | woken (consume)        | –      | -1      | -1 (only if `pending > 0` and `seq != ticket`) |
//! | timeout / interrupt    | –      | -1      | clamped to `waiters`; a surplus is passed on |
//!
//! A waiter takes its ticket *before* releasing its mutex and returns "woken" only by consuming a pending
//! wake-up after `seq` moved past its ticket, so a signal sent after the mutex was released is never missed,
//! a waiter that arrives after a signal cannot take it, and a waiter that was not yet asleep when the
//! kernel woke another does not return as well. A signal with no waiter creates nothing to consume: it is
//! not remembered. No per-waiter state is kept; a waiter that dies leaves at most a stale count, which
//! costs a spurious wake-up, never a hang of the others.

use crate::sys::atomic::{AtomicU32, AtomicU64};
use std::sync::atomic::Ordering;

use super::Wait;
use crate::sys::{futex_wait, futex_wake, Deadline, FutexWait};

const ONE_WAITER: u64 = 1;
const ONE_PENDING: u64 = 1 << 32;

#[inline]
fn waiters(c: u64) -> u64 {
    c & 0xFFFF_FFFF
}

#[inline]
fn pending(c: u64) -> u64 {
    c >> 32
}

/// See the module documentation.
#[repr(C)]
#[derive(Debug, Default)]
pub struct RawCondvar {
    seq: AtomicU32,
    _reserved: u32,
    counts: AtomicU64,
}

impl RawCondvar {
    /// A condition variable nobody waits on (all zero bytes).
    pub const fn new() -> RawCondvar {
        RawCondvar { seq: AtomicU32::new(0), _reserved: 0, counts: AtomicU64::new(0) }
    }

    /// Register as a waiter and take a ticket. Call while holding the associated mutex, *before* unlocking
    /// it, then sleep with [`RawCondvar::wait_slow`] (which unregisters on every outcome).
    #[inline]
    pub fn begin_wait(&self) -> u32 {
        // SeqCst: ordered with `notify` (counts update, then seq bump): if the notifier did not count us,
        // our ticket already includes its bump.
        self.counts.fetch_add(ONE_WAITER, Ordering::SeqCst);
        self.seq.load(Ordering::SeqCst)
    }

    /// Sleep until a signal or broadcast sent after `ticket` was taken wakes us, `deadline` passes, or (if
    /// `interruptible`) a signal handler runs. `Done` and `TimedOut` unregister the waiter; after
    /// `Interrupted` or `Failed` call it again with the same ticket, or [`RawCondvar::abandon_wait`].
    #[cold]
    pub fn wait_slow(&self, ticket: u32, deadline: Option<Deadline>, interruptible: bool) -> Wait<()> {
        loop {
            // Relaxed: the mutex re-acquisition after the wait provides the ordering the caller relies on.
            let s = self.seq.load(Ordering::Relaxed);
            if s != ticket && self.try_consume() {
                return Wait::Done(());
            }
            match futex_wait(&self.seq, s, deadline) {
                FutexWait::Woken | FutexWait::ValueChanged => continue,
                FutexWait::TimedOut => {
                    // A wake-up that raced with the deadline is taken rather than passed on.
                    if self.seq.load(Ordering::Relaxed) != ticket && self.try_consume() {
                        return Wait::Done(());
                    }
                    self.abandon_wait();
                    return Wait::TimedOut;
                }
                FutexWait::Interrupted if interruptible => return Wait::Interrupted,
                FutexWait::Interrupted => continue,
                FutexWait::Failed(e) => return Wait::Failed(e),
            }
        }
    }

    /// Take one pending wake-up (and unregister), if there is one.
    fn try_consume(&self) -> bool {
        let mut c = self.counts.load(Ordering::Relaxed);
        while pending(c) > 0 && waiters(c) > 0 {
            // Acquire: pairs with the notifier's Release so its writes before `signal` are visible.
            match self.counts.compare_exchange_weak(
                c,
                c - ONE_PENDING - ONE_WAITER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(cur) => c = cur,
            }
        }
        false
    }

    /// Unregister a waiter that leaves without being woken (timeout, interrupt). A wake-up that was owed
    /// to it is passed on to another sleeper; one owed to nobody is dropped.
    pub fn abandon_wait(&self) {
        let mut c = self.counts.load(Ordering::Relaxed);
        loop {
            let w = waiters(c).saturating_sub(1);
            let p = pending(c).min(w);
            // Relaxed: bookkeeping only; the wake below is what matters to others.
            match self.counts.compare_exchange_weak(c, (p << 32) | w, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    if p > 0 {
                        futex_wake(&self.seq, 1);
                    }
                    return;
                }
                Err(cur) => c = cur,
            }
        }
    }

    /// Wake one waiter, if any. Not remembered when nobody waits.
    #[inline]
    pub fn signal(&self) {
        self.notify(false);
    }

    /// Wake every waiter.
    #[inline]
    pub fn broadcast(&self) {
        self.notify(true);
    }

    #[inline]
    fn notify(&self, all: bool) {
        let mut c = self.counts.load(Ordering::Relaxed);
        loop {
            let (w, p) = (waiters(c), pending(c));
            if w == 0 {
                return; // nobody waits: not remembered
            }
            // Owe one more wake-up (all, for a broadcast), never more than there are waiters. Even when
            // every waiter is already owed one (a credit left by a waiter that gave up), the bump below
            // still makes the waiters that registered since eligible to take it.
            let p = if all { w } else { (p + 1).min(w) };
            // SeqCst: ordered with `begin_wait` (see there); Release half publishes our writes to the waker.
            match self.counts.compare_exchange_weak(c, (p << 32) | w, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => break,
                Err(cur) => c = cur,
            }
        }
        // SeqCst: the bump must follow the counts update for waiters that test `seq` then consume.
        self.seq.fetch_add(1, Ordering::SeqCst);
        futex_wake(&self.seq, if all { i32::MAX } else { 1 });
    }

    /// How many threads are waiting (a hint).
    pub fn waiters(&self) -> u32 {
        waiters(self.counts.load(Ordering::Relaxed)) as u32
    }
}
