//! A process-shared condition variable: a sequence counter on a futex word (the shape of Rust std's
//! `condvar/futex.rs`, with shared futexes), plus a count of wake-ups owed, so that `signal` wakes exactly
//! one waiter even when others are still on their way into the kernel, plus a per-process count of waiters
//! (a [holder table](super::holders)), so that a process killed while it waits stops being counted.
//!
//! Layout (`#[repr(C, align(64))]`, [`RawCondvar::SIZE`] = 256 bytes, valid when zeroed): `seq` (bumped by
//! every signal and broadcast; the futex word), `used` (the table's high-water mark), `counts` (one atomic
//! word: `waiters` in the low 32 bits, `pending` wake-ups in the high 32 bits), then [`CONDVAR_SLOTS`]
//! holder slots: slot `waiting` is how many threads of the slot's process are registered (its `count` is
//! unused).
//!
//! | event                  | seq    | waiters | pending                                    | own slot `waiting` |
//! |------------------------|--------|---------|--------------------------------------------|--------------------|
//! | `begin_wait`           | read (the ticket) | +1 | –                                     | +1 after (if it has a slot) |
//! | `signal`               | +1, wake 1   | –  | +1 up to `waiters` (nothing if no waiter)  | –                  |
//! | `broadcast`            | +1, wake all | –  | `= waiters`                                | –                  |
//! | woken (consume)        | –      | -1      | -1 (only if `pending > 0` and `seq != ticket`) | -1 before (+1 back if the consume fails) |
//! | timeout / interrupt    | –      | -1      | clamped to `waiters`; a surplus is passed on | -1 before        |
//! | process found dead     | –      | − its slot's `waiting` | clamped to `waiters`; a surplus is passed on | slot freed |
//!
//! A waiter takes its ticket *before* releasing its mutex and returns "woken" only by consuming a pending
//! wake-up after `seq` moved past its ticket, so a signal sent after the mutex was released is never missed,
//! a waiter that arrives after a signal cannot take it, and a waiter that was not yet asleep when the
//! kernel woke another does not return as well. A signal with no waiter creates nothing to consume: it is
//! not remembered.
//!
//! Dead waiters: whoever reads the count ([`RawCondvar::waiters`]) or claims a slot first takes the
//! registrations of dead processes' slots off `waiters` (see [`super::holders`]: exactly once per slot).
//! The order of the steps makes every kill err on the side of counting too many: a waiter is counted in
//! `waiters` before its slot and taken off its slot before `waiters`, so a slot never holds more than its
//! process's registrations, and a registration is never taken off twice. (A count too low could make a
//! `signal` see no waiter and be lost; a count too high costs a spurious wake-up at most.) What is still
//! counted for good: a waiter killed between its two steps, the waiters of processes that found every
//! slot taken by live processes (they wait untracked), and one reclaim lost to a reader killed in the
//! middle of it.

use crate::sys::atomic::{AtomicU32, AtomicU64};
use std::sync::atomic::Ordering;

use super::holders::{HolderSlot, Holders};
use super::{wait_loop, Look, Owner, Step, Wait};
use crate::sys::{futex_wake, Deadline};

/// Processes whose waiters are counted per process (the waiters of more wait untracked: counted, but not
/// taken off if their process is killed).
pub const CONDVAR_SLOTS: usize = 15;

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

/// The calling process, as the table knows it (the thread token does not matter: slots are per process).
#[inline]
fn me() -> Owner {
    Owner::current(1)
}

/// See the module documentation.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub struct RawCondvar {
    seq: AtomicU32,
    used: AtomicU32,
    counts: AtomicU64,
    slots: [HolderSlot; CONDVAR_SLOTS],
}

impl RawCondvar {
    /// Bytes a condition variable takes (256).
    pub const SIZE: usize = std::mem::size_of::<RawCondvar>();

    /// A condition variable nobody waits on (all zero bytes).
    pub const fn new() -> RawCondvar {
        RawCondvar {
            seq: AtomicU32::new(0),
            used: AtomicU32::new(0),
            counts: AtomicU64::new(0),
            slots: [const { HolderSlot::new() }; CONDVAR_SLOTS],
        }
    }

    #[inline]
    fn holders(&self) -> Holders<'_, HolderSlot> {
        Holders { used: &self.used, slots: &self.slots }
    }

    /// Register as a waiter and take a ticket. Call while holding the associated mutex, *before* unlocking
    /// it, then sleep with [`RawCondvar::wait_slow`] (which unregisters on every outcome).
    #[inline]
    pub fn begin_wait(&self) -> u32 {
        // SeqCst: ordered with `notify` (counts update, then seq bump): if the notifier did not count us,
        // our ticket already includes its bump.
        self.counts.fetch_add(ONE_WAITER, Ordering::SeqCst);
        self.join_slot();
        self.seq.load(Ordering::SeqCst)
    }

    /// Count ourselves in our process's slot (claiming one on our process's first wait; a dead process's
    /// slot that the claim takes over has its waiters taken off first). After `waiters` was counted.
    #[inline]
    fn join_slot(&self) {
        let me = me();
        let t = self.holders();
        let slot = match t.find(me) {
            Some(i) => Some(i),
            None => t.claim(me, |_, dead_waiting| self.unregister(u64::from(dead_waiting))).ok(),
        };
        if let Some(i) = slot {
            // Relaxed: only our process changes its slot's count; a reclaimer reads it after our death.
            t.slot(i).waiting.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Take one registration off our process's slots (the first that has one), before `waiters` goes down;
    /// the slot, to put it back if we stay. None if our process has no slot with a registration (it waits
    /// untracked). Other threads of our process may have claimed a second slot at the same time: any of
    /// ours will do, since only their sum is taken off when the process dies.
    fn leave_slot(&self) -> Option<usize> {
        let (me, t) = (me(), self.holders());
        (0..CONDVAR_SLOTS).find(|&i| {
            t.slot_is(i, me)
                // Relaxed: as in `join_slot`.
                && t.slot(i).waiting.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| w.checked_sub(1)).is_ok()
        })
    }

    /// Take `n` registrations off `waiters` (of a waiter that leaves unwoken, or of a dead process), passing
    /// on the wake-ups still owed (up to `n` of them: what they may have swallowed) to other sleepers.
    fn unregister(&self, n: u64) {
        if n == 0 {
            return;
        }
        let mut c = self.counts.load(Ordering::Relaxed);
        loop {
            let w = waiters(c).saturating_sub(n);
            let p = pending(c).min(w);
            // Relaxed: bookkeeping only; the wake below is what matters to others.
            match self.counts.compare_exchange_weak(c, (p << 32) | w, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    if p > 0 {
                        futex_wake(&self.seq, p.min(n).min(i32::MAX as u64) as i32);
                    }
                    return;
                }
                Err(cur) => c = cur,
            }
        }
    }

    /// Take the registrations of dead processes off the count (each dead slot once).
    #[cold]
    fn reclaim_dead(&self) {
        self.holders().reclaim_dead(me(), |_, dead_waiting| self.unregister(u64::from(dead_waiting)));
    }

    /// Sleep until a signal or broadcast sent after `ticket` was taken wakes us, `deadline` passes, or (if
    /// `interruptible`) a signal handler runs. `Done` and `TimedOut` unregister the waiter; after
    /// `Interrupted` or `Failed` call it again with the same ticket, or [`RawCondvar::abandon_wait`].
    #[cold]
    pub fn wait_slow(&self, ticket: u32, deadline: Option<Deadline>, interruptible: bool) -> Wait<()> {
        match self.wait_inner(ticket, deadline, interruptible, false) {
            Wait::Done(_) => Wait::Done(()),
            Wait::TimedOut => Wait::TimedOut,
            Wait::Interrupted => Wait::Interrupted,
            Wait::Failed(e) => Wait::Failed(e),
        }
    }

    /// As [`RawCondvar::wait_slow`], but the wait also ends after about one [`SLICE`](super::SLICE) without
    /// a wake-up: `Done(false)`, unregistered (as after a timeout). `Done(true)`: woken. For a caller that
    /// re-checks a state under its mutex and waits again (the queue): a wake-up that went to a waiter killed
    /// before it acted on it, or that a process killed before its signal never sent, is made up for.
    #[cold]
    pub fn wait_bounded(&self, ticket: u32, deadline: Option<Deadline>, interruptible: bool) -> Wait<bool> {
        self.wait_inner(ticket, deadline, interruptible, true)
    }

    /// Both waits, through the crate's one [`wait_loop`]. A condition wait never spins (its wake-up comes
    /// from a signal, not from a holder about to leave): each look consumes a wake-up owed to us, or ends a
    /// bounded wait whose slice passed, or parks on the `seq` it saw.
    fn wait_inner(&self, ticket: u32, deadline: Option<Deadline>, interruptible: bool, bounded: bool) -> Wait<bool> {
        let out = wait_loop(&self.seq, deadline, interruptible, |look: Look| {
            // Relaxed: the mutex re-acquisition after the wait provides the ordering the caller relies on.
            let s = self.seq.load(Ordering::Relaxed);
            if s != ticket && self.try_consume() {
                return Step::Done(true);
            }
            if bounded && look.check_holders {
                return Step::Done(false); // a slice passed: the caller looks at its state again
            }
            Step::Park(s)
        });
        match out {
            Wait::Done(false) => self.abandon_wait(),
            // Relaxed: as above. A wake-up that raced with the deadline is taken rather than passed on.
            Wait::TimedOut if self.seq.load(Ordering::Relaxed) != ticket && self.try_consume() => {
                return Wait::Done(true)
            }
            Wait::TimedOut => self.abandon_wait(),
            _ => {}
        }
        out
    }

    /// Take one pending wake-up (and unregister), if there is one.
    fn try_consume(&self) -> bool {
        let mut c = self.counts.load(Ordering::Relaxed);
        if pending(c) == 0 || waiters(c) == 0 {
            return false;
        }
        let slot = self.leave_slot(); // before `waiters` (see the module documentation)
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
        if let Some(i) = slot {
            // Relaxed: as in `join_slot`. Still registered: back on our slot.
            self.slots[i].waiting.fetch_add(1, Ordering::Relaxed);
        }
        false
    }

    /// Unregister a waiter that leaves without being woken (timeout, interrupt). A wake-up that was owed
    /// to it is passed on to another sleeper; one owed to nobody is dropped.
    pub fn abandon_wait(&self) {
        self.leave_slot(); // before `waiters` (see the module documentation)
        self.unregister(1);
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

    /// How many threads are waiting, without the registrations of processes that died waiting: a snapshot
    /// that changes nothing (for readers that must not write, [`crate::inspect`]).
    pub fn live_waiters(&self) -> u32 {
        // Relaxed: a snapshot.
        let all = waiters(self.counts.load(Ordering::Relaxed)) as u32;
        all.saturating_sub(self.holders().dead_holds().1)
    }

    /// How many threads are waiting (a hint): the registrations of processes that died waiting are taken
    /// off first (see the module documentation for what may still be counted).
    pub fn waiters(&self) -> u32 {
        self.reclaim_dead();
        // Relaxed: a snapshot.
        waiters(self.counts.load(Ordering::Relaxed)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_a_header_and_a_table_in_four_arena_slots() {
        assert_eq!(std::mem::offset_of!(RawCondvar, slots), 16);
        assert_eq!(RawCondvar::SIZE, 256);
        assert_eq!(std::mem::align_of::<RawCondvar>(), 64);
    }

    /// A dead process's registrations come off the count once, its owed wake-up is kept for the living
    /// (clamped to them), and our own slot is left alone.
    #[test]
    fn a_dead_processs_waiters_come_off_once() {
        let c = RawCondvar::new();
        let _mine = c.begin_wait();
        let dead = (me().id & !0xffff_ffff) | 0x7fff_ffe1; // an id of our registry nobody holds
        c.slots[1].owner_for_tests(dead);
        c.slots[1].waiting.store(2, Ordering::Relaxed);
        c.used.store(2, Ordering::Relaxed);
        c.counts.fetch_add(2, Ordering::Relaxed);
        c.broadcast(); // three owed, two of them to the dead
        assert_eq!(c.waiters(), 1);
        assert_eq!(c.waiters(), 1, "not taken off twice");
        assert_eq!(pending(c.counts.load(Ordering::Relaxed)), 1);
        assert_eq!(c.slots[0].waiting.load(Ordering::Relaxed), 1);
        assert!(c.try_consume());
        assert_eq!((c.waiters(), c.slots[0].waiting.load(Ordering::Relaxed)), (0, 0));
    }
}
