//! A process-shared counting semaphore with an optional maximum (1 for a binary semaphore) that gives back
//! the permits of processes that died holding them (SEM_UNDO semantics).
//!
//! Layout (`#[repr(C)]`, 4 KiB, valid when zeroed): a 64-byte header, then a [holder table](super::holders)
//! of [`SEMAPHORE_SLOTS`] slots, one per process that ever waited.
//!
//! | field       | meaning                                                                          |
//! |-------------|----------------------------------------------------------------------------------|
//! | `value`     | the free permits; the futex word                                                 |
//! | `waiters`   | threads in, or about to enter, a sleep (a hint that lets `post` skip the wake syscall; a killed waiter's count is taken back when its slot is reclaimed) |
//! | `max`       | the largest value `post` may reach; 0 means `i32::MAX`                          |
//! | `used`      | slots ever claimed                                                               |
//! | `reclaimed` | permits given back from dead processes since someone last asked ([`RawSemaphore::take_reclaimed`]) |
//! | slot `count`, `waiting` | a process's permits held (taken by a tracked wait, not yet posted by it) and its waiting threads |
//!
//! | transition             | value          | own slot `count`       | waiters                   |
//! |------------------------|----------------|------------------------|---------------------------|
//! | tracked `try_wait`     | v → v-1 (CAS)  | +1 before the CAS, -1 if it fails | –              |
//! | untracked `try_wait`   | v → v-1 (CAS)  | –                      | –                         |
//! | `post`                 | v → v+1 (CAS)  | -1 after, if > 0       | read; if > 0 wake one     |
//! | slow wait              | as `try_wait`  | `waiting` ±1           | +1 before sleeping, -1 on every exit |
//! | owner found dead       | v → min(v + count, max) | slot freed    | − its `waiting`           |
//!
//! `post` increments then reads `waiters`; a waiter increments `waiters` then reads `value`. Both pairs are
//! `SeqCst`, so at least one side sees the other (Dekker): a post never misses a sleeper. A permit is only
//! ever taken by a successful CAS, so an interrupted or timed-out wait consumes nothing.
//!
//! Accounting: a `post` by a process that holds permits returns one of them; a `post` by one that holds
//! none adds a permit that nobody holds (a producer's post). Where a kill can make one permit too many
//! come back (each bounded, never above `max`, which for a counting `Semaphore` is 2^31-1 and for a
//! `BinarySemaphore` 1): each thread of the killed process that was between the two steps of a tracked
//! take or of a post (its count one too high), and each reclaimer killed while giving a dead holder's
//! count back (one unit given twice, see [`super::holders`]). A permit is never lost. Dead holders are found every [`SLICE`](super::SLICE) by waiters and, throttled, by
//! failed `try_wait`s ([`RawSemaphore::reclaim_dead`]).

use crate::sys::atomic::AtomicU32;
use std::sync::atomic::Ordering;

use super::holders::{HolderSlot, Holders, NoSlot};
use super::{wait_loop, Look, Owner, Step, Wait};
use crate::sys::{futex_wake, Deadline};

/// Processes that can hold permits of one semaphore at the same time (more wait untracked).
pub const SEMAPHORE_SLOTS: usize = 252;

/// Why `post` refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostError {
    /// The value is already at the maximum; it is left unchanged.
    AtMax(u32),
}

/// See the module documentation.
#[repr(C)]
#[derive(Debug)]
pub struct RawSemaphore {
    value: AtomicU32,
    waiters: AtomicU32,
    max: AtomicU32,
    used: AtomicU32,
    reclaimed: AtomicU32,
    _reserved: [u32; 11],
    slots: [HolderSlot; SEMAPHORE_SLOTS],
}

impl RawSemaphore {
    /// Largest value any semaphore may hold.
    pub const VALUE_MAX: u32 = i32::MAX as u32;
    /// Bytes a semaphore takes (4 KiB).
    pub const SIZE: usize = std::mem::size_of::<RawSemaphore>();

    /// Initialise in place (the memory is shared and zeroed; nobody else can see it yet).
    pub fn init(&self, value: u32, max: u32) {
        let max = if max == 0 { Self::VALUE_MAX } else { max.min(Self::VALUE_MAX) };
        // Relaxed: the object is published to other processes only by fork or by a later release.
        self.max.store(max, Ordering::Relaxed);
        self.value.store(value.min(max), Ordering::Relaxed);
    }

    #[inline]
    fn holders(&self) -> Holders<'_, HolderSlot> {
        Holders { used: &self.used, slots: &self.slots }
    }

    /// The slot of process `me` (claimed on first use; the caller caches it per process and re-checks it
    /// with [`RawSemaphore::slot_is`]). `Err` when every slot belongs to a live process: wait untracked.
    #[cold]
    pub fn claim_slot(&self, me: Owner) -> Result<usize, NoSlot> {
        self.holders().claim(me, |held, waiting| self.give_back(held, waiting))
    }

    /// The slot of process `me` if it has one (never claims one).
    pub fn find_slot(&self, me: Owner) -> Option<usize> {
        self.holders().find(me)
    }

    /// Whether slot `i` still belongs to process `me`.
    #[inline]
    pub fn slot_is(&self, i: usize, me: Owner) -> bool {
        self.holders().slot_is(i, me)
    }

    /// Give back the permits of processes that died holding them (and forget their waiting threads).
    #[cold]
    pub fn reclaim_dead(&self, me: Owner) {
        self.holders().reclaim_dead(me, |held, waiting| self.give_back(held, waiting));
    }

    fn give_back(&self, held: u32, waiting: u32) {
        if waiting != 0 {
            // Relaxed: a hint (see `waiters`); saturating, as a racing exit may have taken it already.
            let _ =
                self.waiters.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| Some(w.saturating_sub(waiting)));
        }
        if held == 0 {
            return;
        }
        let max = self.max();
        // SeqCst: like a post (the Dekker pair with waiters, and a release of what the dead did).
        let old =
            self.value.fetch_update(Ordering::SeqCst, Ordering::Relaxed, |v| Some(v.saturating_add(held).min(max)));
        let old = old.unwrap_or_else(|v| v);
        let added = old.saturating_add(held).min(max) - old;
        if added > 0 {
            // Relaxed: a count for `take_reclaimed`, not a publication.
            self.reclaimed.fetch_add(added, Ordering::Relaxed);
            if self.waiters.load(Ordering::SeqCst) > 0 {
                futex_wake(&self.value, added.min(i32::MAX as u32) as i32);
            }
        }
    }

    /// How many permits have come back from dead processes since the last call (which any process may
    /// make): the way for a caller to learn that a holder died, as `OwnerDied` tells for locks.
    pub fn take_reclaimed(&self) -> u32 {
        // Relaxed: a counter.
        self.reclaimed.swap(0, Ordering::Relaxed)
    }

    /// Permits come back from dead processes that no [`RawSemaphore::take_reclaimed`] took yet (a snapshot).
    pub fn reclaimed(&self) -> u32 {
        // Relaxed: a counter.
        self.reclaimed.load(Ordering::Relaxed)
    }

    /// Threads of live processes that may be waiting, without the registrations of processes that died
    /// waiting (which the next reclaim takes off): a snapshot that changes nothing.
    pub fn live_waiters(&self) -> u32 {
        self.waiters().saturating_sub(self.holders().dead_holds().1)
    }

    /// Permits held by live processes through tracked waits, without those of processes that died holding
    /// them (which the next reclaim gives back): a snapshot that changes nothing.
    pub fn live_held(&self) -> u32 {
        self.held().saturating_sub(self.holders().dead_holds().0)
    }

    /// The current value (a snapshot).
    #[inline]
    pub fn value(&self) -> u32 {
        self.value.load(Ordering::Relaxed)
    }

    /// The maximum value.
    pub fn max(&self) -> u32 {
        match self.max.load(Ordering::Relaxed) {
            0 => Self::VALUE_MAX,
            m => m,
        }
    }

    /// How many threads of live processes may be waiting (a hint).
    pub fn waiters(&self) -> u32 {
        self.waiters.load(Ordering::Relaxed)
    }

    /// Permits held by live-looking processes through tracked waits (a snapshot).
    pub fn held(&self) -> u32 {
        self.holders().total()
    }

    /// Take a permit if one is available, counting it in slot `slot` (a tracked take) unless `None`.
    /// Never sleeps.
    #[inline]
    pub fn try_wait(&self, slot: Option<usize>) -> bool {
        let mut v = self.value.load(Ordering::Relaxed);
        if v == 0 {
            return false;
        }
        let count = slot.map(|i| &self.slots[i].count);
        if let Some(c) = count {
            // Relaxed: only we change our slot's count; a reclaimer reads it only once we are dead.
            c.fetch_add(1, Ordering::Relaxed);
        }
        while v > 0 {
            // Acquire: pairs with the Release half of post's SeqCst CAS (what was done before a post is
            // visible after the matching wait).
            match self.value.compare_exchange_weak(v, v - 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(cur) => v = cur,
            }
        }
        if let Some(c) = count {
            c.fetch_sub(1, Ordering::Relaxed);
        }
        false
    }

    /// Block until a permit is taken (tracked in `slot` unless `None`), `deadline` passes, or (if
    /// `interruptible`) a signal arrives. Gives back dead holders' permits every slice.
    #[cold]
    pub fn wait_slow(
        &self,
        me: Owner,
        slot: Option<usize>,
        deadline: Option<Deadline>,
        interruptible: bool,
    ) -> Wait<()> {
        let mut counted = false;
        let out = wait_loop(&self.value, deadline, interruptible, |look: Look| {
            if self.try_wait(slot) {
                return Step::Done(());
            }
            if look.check_holders {
                self.reclaim_dead(me);
                return Step::Again;
            }
            if look.may_spin {
                return Step::Spin;
            }
            if !counted {
                counted = true;
                if let Some(i) = slot {
                    // Relaxed: a hint for `waiters`, only ours to change.
                    self.slots[i].waiting.fetch_add(1, Ordering::Relaxed);
                }
                // SeqCst: the Dekker pair with `post` (see the module docs).
                self.waiters.fetch_add(1, Ordering::SeqCst);
                return Step::Again;
            }
            // SeqCst: second half of the Dekker pair.
            match self.value.load(Ordering::SeqCst) {
                0 => Step::Park(0),
                _ => Step::Again,
            }
        });
        if counted {
            if let Some(i) = slot {
                // Relaxed: as above; saturating in case a reclaimer judged us dead (it cannot: we live).
                self.slots[i].waiting.fetch_sub(1, Ordering::Relaxed);
            }
            // Relaxed: only a hint for `post`; saturating, as a reclaim may have taken a killed waiter's.
            let _ = self.waiters.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| Some(w.saturating_sub(1)));
        }
        out
    }

    /// Add a permit and wake one sleeper if there may be one; then, if slot `slot` holds permits, one of
    /// them is no longer held. Fails (changing nothing) at the maximum.
    #[inline]
    pub fn post(&self, slot: Option<usize>) -> Result<(), PostError> {
        let max = self.max();
        let mut v = self.value.load(Ordering::Relaxed);
        loop {
            if v >= max {
                return Err(PostError::AtMax(max));
            }
            // SeqCst: releases our writes to the taker and is the first half of the Dekker pair.
            match self.value.compare_exchange_weak(v, v + 1, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => break,
                Err(cur) => v = cur,
            }
        }
        if let Some(i) = slot {
            // Relaxed: only we change our count.
            let _ = self.slots[i].count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_sub(1));
        }
        // SeqCst: second half of the Dekker pair with a waiter's increment of `waiters`.
        if self.waiters.load(Ordering::SeqCst) > 0 {
            futex_wake(&self.value, 1);
        }
        Ok(())
    }

    /// Take a permit (tracked in `slot` unless `None`), retrying through signals: for Rust callers without
    /// an interrupt mechanism.
    pub fn wait(&self, me: Owner, slot: Option<usize>, deadline: Option<Deadline>) -> Wait<()> {
        if self.try_wait(slot) {
            return Wait::Done(());
        }
        self.wait_slow(me, slot, deadline, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_a_header_and_a_table() {
        assert_eq!(std::mem::offset_of!(RawSemaphore, slots), 64);
        assert_eq!(RawSemaphore::SIZE, 4096);
    }
}
