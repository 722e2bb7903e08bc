//! Process-shared one-word waitables: [`RawEvent`] (a flag that is set and reset) and [`RawLatch`] (a
//! count-down latch). Waiters sleep on the word itself; neither keeps per-waiter state, so a process that
//! dies while waiting leaves nothing behind, and none can die "holding" anything.
//!
//! [`RawEvent`] word (`state`):
//!
//! | bits     | meaning                                                                       |
//! |----------|-------------------------------------------------------------------------------|
//! | 0 `SET`  | the event is set: `wait` returns at once                                      |
//! | 1 `WAITERS` | someone may be asleep on the word: `set` must wake them                    |
//! | 2..32    | generation: +1 on every unset → set transition                                |
//!
//! A waiter returns when it sees `SET` *or* a generation other than the one it started in, so a `set`
//! immediately followed by `reset` still releases everyone who was waiting (as with a condition variable's
//! broadcast), instead of leaving sleepers that woke too late to see the flag.
//!
//! [`RawLatch`] word (`state`): the count in bits 0..31, `WAITERS` in bit 31. `count_down` to 0 wakes all;
//! a waiter returns once the count is 0. The count never goes up again.

use crate::sys::atomic::AtomicU32;
use std::sync::atomic::Ordering;

use super::{wait_loop, Look, Step, Wait};
use crate::sys::{futex_wake, Deadline};

const SET: u32 = 1; // the flag
const EVENT_WAITERS: u32 = 2; // a waiter may sleep: `set` wakes all
const GENERATION: u32 = 4; // one generation step (bits 2..32)

/// See the module documentation.
#[repr(C)]
#[derive(Debug, Default)]
pub struct RawEvent {
    state: AtomicU32,
    _reserved: u32,
}

impl RawEvent {
    /// An unset event (all zero bytes).
    pub const fn new() -> RawEvent {
        RawEvent { state: AtomicU32::new(0), _reserved: 0 }
    }

    /// Whether it is set. Acquire: what the setter wrote before `set` is visible after seeing it set.
    #[inline]
    pub fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) & SET != 0
    }

    /// Whether a waiter may be asleep on it (a hint: cleared by the next `set`).
    pub fn has_waiters(&self) -> bool {
        // Relaxed: a snapshot.
        self.state.load(Ordering::Relaxed) & EVENT_WAITERS != 0
    }

    /// Set it and wake every waiter. Returns false if it was already set (then nothing changes).
    pub fn set(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & SET != 0 {
                return false;
            }
            let new = (s & !EVENT_WAITERS).wrapping_add(GENERATION) | SET;
            // Release: publishes the setter's writes to waiters (their Acquire loads).
            match self.state.compare_exchange_weak(s, new, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(cur) => s = cur,
            }
        }
        if s & EVENT_WAITERS != 0 {
            futex_wake(&self.state, i32::MAX);
        }
        true
    }

    /// Unset it. Returns false if it was not set.
    pub fn reset(&self) -> bool {
        // Relaxed: resetting publishes nothing; a waiter that sees the old generation sleeps again.
        self.state.fetch_and(!SET, Ordering::Relaxed) & SET != 0
    }

    /// Where a wait begins: pass it to every [`RawEvent::wait_slow`] call of the same wait, so that a `set`
    /// and `reset` in between (say while the waiter handles a signal) still releases it.
    #[inline]
    pub fn ticket(&self) -> u32 {
        self.state.load(Ordering::Acquire)
    }

    /// Block until the event is set (or was set, perhaps reset again, since `start` was taken with
    /// [`RawEvent::ticket`]), `deadline` passes, or (if `interruptible`) a signal arrives. Changes nothing
    /// but possibly the `WAITERS` bit.
    #[cold]
    pub fn wait_slow(&self, start: u32, deadline: Option<Deadline>, interruptible: bool) -> Wait<()> {
        let released = |s: u32| s & SET != 0 || (s ^ start) >> 2 != 0;
        wait_loop(&self.state, deadline, interruptible, |look: Look| {
            // Acquire: pairs with the setter's Release.
            let s = self.state.load(Ordering::Acquire);
            if released(s) {
                return Step::Done(());
            }
            if look.may_spin {
                return Step::Spin;
            }
            Step::park_flagged(&self.state, s, EVENT_WAITERS)
        })
    }

    /// Wait, retrying through signals: for Rust callers without an interrupt mechanism.
    pub fn wait(&self, deadline: Option<Deadline>) -> Wait<()> {
        self.wait_slow(self.ticket(), deadline, false)
    }
}

const LATCH_WAITERS: u32 = 1 << 31; // a waiter may sleep: the last count_down wakes all
const COUNT: u32 = LATCH_WAITERS - 1; // the count's bits

/// See the module documentation.
#[repr(C)]
#[derive(Debug, Default)]
pub struct RawLatch {
    state: AtomicU32,
    _reserved: u32,
}

impl RawLatch {
    /// The largest initial count.
    pub const COUNT_MAX: u32 = COUNT;

    /// A latch at 0 (all zero bytes): already open.
    pub const fn new() -> RawLatch {
        RawLatch { state: AtomicU32::new(0), _reserved: 0 }
    }

    /// Set the initial count (at most [`RawLatch::COUNT_MAX`]) before anyone else can see the latch.
    pub fn init(&self, count: u32) {
        // Relaxed: published to other processes by fork or a later release.
        self.state.store(count.min(COUNT), Ordering::Relaxed);
    }

    /// The current count. Acquire: at 0, every count-downer's earlier writes are visible.
    #[inline]
    pub fn count(&self) -> u32 {
        self.state.load(Ordering::Acquire) & COUNT
    }

    /// Whether a waiter may be asleep on it (a hint: it stays set once the count reached 0).
    pub fn has_waiters(&self) -> bool {
        // Relaxed: a snapshot.
        self.state.load(Ordering::Relaxed) & LATCH_WAITERS != 0
    }

    /// Decrement the count unless it is 0; the step to 0 wakes every waiter. Returns the new count.
    pub fn count_down(&self) -> u32 {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let c = s & COUNT;
            if c == 0 {
                return 0;
            }
            let new = if c == 1 { 0 } else { s - 1 };
            // AcqRel: releases our writes to the waiters; acquires earlier count-downers' (so the one that
            // opens the latch passes everything on).
            match self.state.compare_exchange_weak(s, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    if c == 1 && s & LATCH_WAITERS != 0 {
                        futex_wake(&self.state, i32::MAX);
                    }
                    return c - 1;
                }
                Err(cur) => s = cur,
            }
        }
    }

    /// Block until the count is 0, `deadline` passes, or (if `interruptible`) a signal arrives. Changes
    /// nothing but possibly the `WAITERS` bit.
    #[cold]
    pub fn wait_slow(&self, deadline: Option<Deadline>, interruptible: bool) -> Wait<()> {
        wait_loop(&self.state, deadline, interruptible, |look: Look| {
            // Acquire: pairs with the last count-down's Release.
            let s = self.state.load(Ordering::Acquire);
            if s & COUNT == 0 {
                return Step::Done(());
            }
            if look.may_spin {
                return Step::Spin;
            }
            Step::park_flagged(&self.state, s, LATCH_WAITERS)
        })
    }

    /// Wait, retrying through signals: for Rust callers without an interrupt mechanism.
    pub fn wait(&self, deadline: Option<Deadline>) -> Wait<()> {
        if self.count() == 0 {
            return Wait::Done(());
        }
        self.wait_slow(deadline, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_sets_resets_and_counts_generations() {
        let e = RawEvent::new();
        assert!(!e.is_set());
        assert!(e.set());
        assert!(!e.set());
        assert!(e.is_set());
        assert_eq!(e.wait(None), Wait::Done(()));
        assert!(e.reset());
        assert!(!e.reset());
        assert_eq!(e.state.load(Ordering::Relaxed) >> 2, 1);
        let soon = Some(Deadline::after(std::time::Duration::from_millis(20)));
        assert_eq!(e.wait(soon), Wait::TimedOut);
    }

    #[test]
    fn latch_counts_down_to_zero_and_stays() {
        let l = RawLatch::new();
        l.init(2);
        assert_eq!(l.count(), 2);
        assert_eq!(l.count_down(), 1);
        assert_eq!(l.count_down(), 0);
        assert_eq!(l.count_down(), 0);
        assert_eq!(l.wait(None), Wait::Done(()));
        l.init(u32::MAX);
        assert_eq!(l.count(), RawLatch::COUNT_MAX);
    }
}
