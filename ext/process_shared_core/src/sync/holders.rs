//! Per-process hold counts in shared memory: which live process holds how many of something (read holds of
//! a [`RawRwLock`](super::RawRwLock), permits of a [`RawSemaphore`](super::RawSemaphore), registered
//! waiters of a [`RawCondvar`](super::RawCondvar)), so that what a dead process held can be given back. The
//! one holder-table protocol of the crate.
//!
//! A table is a `used` counter and an array of [`HolderSlot`]s; each slot belongs to at most one process:
//!
//! | slot `owner`          | meaning                                                                 |
//! |-----------------------|-------------------------------------------------------------------------|
//! | `0`                   | free (its count is 0)                                                   |
//! | `id`                  | belongs to the live-looking process with [owner id](crate::sys::owner) `id`; `count` is what it holds |
//! | `RECLAIMING \| id`    | being freed (or handed over) by process `id`; a slot left so by a process that died is freed by the next claimer |
//!
//! | transition   | how                                                                               |
//! |--------------|-----------------------------------------------------------------------------------|
//! | claim        | CAS `0 → RECLAIMING\|me` (or from a dead owner's word), give back the dead count, `count = 0`, `owner = me` |
//! | reclaim      | CAS `dead → RECLAIMING\|me`, give back the count, `count = 0`, `owner = 0`        |
//!
//! A count is given back one unit at a time, each before it is taken off the slot, so a reclaimer killed
//! half-way leaves at most one unit to be given back twice.
//!
//! Every change of owner is a CAS from the very word judged dead, so a slot is reclaimed once, and never
//! one that a live process claimed meanwhile (a live process's id is never a dead one's). Only the owner
//! changes `count` while it owns the slot; the table's user decides what the counts mean and which
//! orderings its counts need (the lock and the semaphore make them part of a `SeqCst` protocol; the
//! condition variable's `waiting` only ever errs towards counting too many, by the order of its steps).

use crate::sys::atomic::{AtomicU32, AtomicU64};
use std::sync::atomic::Ordering;

use super::{owner_dead, Owner};

/// In a slot's owner word: being freed by the process whose id is in the low bits.
const RECLAIMING: u64 = 1 << 63;

/// One process's holds.
#[repr(C)]
#[derive(Debug, Default)]
pub struct HolderSlot {
    owner: AtomicU64,
    /// What the owner holds (only the owner changes it while it owns the slot).
    pub count: AtomicU32,
    /// How many of the owner's threads wait (only the owner changes it while it owns the slot).
    pub waiting: AtomicU32,
}

impl HolderSlot {
    /// A free slot (all zero bytes), for `const` initialisers.
    pub const fn new() -> HolderSlot {
        HolderSlot { owner: AtomicU64::new(0), count: AtomicU32::new(0), waiting: AtomicU32::new(0) }
    }

    /// Give the slot to owner word `o` (tests only: a slot left by a process that died).
    #[cfg(test)]
    pub(crate) fn owner_for_tests(&self, o: u64) {
        self.owner.store(o, Ordering::Relaxed);
    }
}

/// A [`HolderSlot`] on a cache line of its own (for counts that change often, like read holds).
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub struct PaddedSlot(pub HolderSlot);

impl AsRef<HolderSlot> for PaddedSlot {
    fn as_ref(&self) -> &HolderSlot {
        &self.0
    }
}

impl AsRef<HolderSlot> for HolderSlot {
    fn as_ref(&self) -> &HolderSlot {
        self
    }
}

/// Every slot belongs to a live process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoSlot;

/// A table: its `used` high-water mark (scans stop there) and its slots.
pub struct Holders<'a, S> {
    /// How many slots were ever claimed.
    pub used: &'a AtomicU32,
    /// The slots ([`HolderSlot`]s, or [`PaddedSlot`]s).
    pub slots: &'a [S],
}

impl<S: AsRef<HolderSlot>> Holders<'_, S> {
    /// Slot `i` (in range: callers pass indices below `slots.len()`).
    #[inline]
    pub fn slot(&self, i: usize) -> &HolderSlot {
        self.slots[i].as_ref()
    }

    /// The slot of process `me`, claiming a free one (or one of a dead process, whose count and waiting threads go
    /// to `give_back` first) if it has none. The caller may cache the index and re-check it with
    /// [`Holders::slot_is`].
    #[cold]
    pub fn claim(&self, me: Owner, mut give_back: impl FnMut(u32, u32)) -> Result<usize, NoSlot> {
        if let Some(i) = self.find(me) {
            return Ok(i);
        }
        for (i, slot) in self.slots.iter().map(AsRef::as_ref).enumerate() {
            // Acquire: see the count its last owner left with the owner word.
            let o = slot.owner.load(Ordering::Acquire);
            if (o == 0 || Self::owner_is_dead(o)) && Self::take(slot, o, me.id, me.id, &mut give_back) {
                // SeqCst: the users' Dekker pairs scan `used` after their own SeqCst store, and a claim
                // precedes the claimer's first count.
                self.used.fetch_max(i as u32 + 1, Ordering::SeqCst);
                return Ok(i);
            }
        }
        Err(NoSlot)
    }

    /// The slot of process `me`, if it has one (never claims).
    #[cold]
    pub fn find(&self, me: Owner) -> Option<usize> {
        (0..self.used()).find(|&i| self.slot_is(i, me))
    }

    /// Whether slot `i` belongs to process `me`.
    #[inline]
    pub fn slot_is(&self, i: usize, me: Owner) -> bool {
        // Relaxed: only our own process ever stores our id into a slot.
        self.slots.get(i).is_some_and(|s| s.as_ref().owner.load(Ordering::Relaxed) == me.id)
    }

    /// Free the slots of dead processes, giving each one's count to `give_back` (exactly once per death).
    #[cold]
    pub fn reclaim_dead(&self, me: Owner, mut give_back: impl FnMut(u32, u32)) {
        for slot in self.slots[..self.used()].iter().map(AsRef::as_ref) {
            // Acquire: as in `claim`.
            let o = slot.owner.load(Ordering::Acquire);
            if o != 0 && o != me.id && Self::owner_is_dead(o) {
                Self::take(slot, o, me.id, 0, &mut give_back);
            }
        }
    }

    /// The sum of the counts of slots owned by live-looking processes (a snapshot).
    pub fn total(&self) -> u32 {
        self.live_slots().fold(0u32, |a, s| a.saturating_add(s.count.load(Ordering::Relaxed)))
    }

    /// The sum of the waiting threads of slots owned by live-looking processes (a snapshot).
    pub fn total_waiting(&self) -> u32 {
        self.live_slots().fold(0u32, |a, s| a.saturating_add(s.waiting.load(Ordering::Relaxed)))
    }

    /// The counts and the waiting threads recorded in slots of processes that have provably ended: what the
    /// next reclaim gives back (a snapshot that changes nothing).
    pub fn dead_holds(&self) -> (u32, u32) {
        self.live_slots()
            // Relaxed: a snapshot.
            .filter(|s| Self::owner_is_dead(s.owner.load(Ordering::Relaxed)))
            .fold((0u32, 0u32), |(c, w), s| {
                (c.saturating_add(s.count.load(Ordering::Relaxed)), w.saturating_add(s.waiting.load(Ordering::Relaxed)))
            })
    }

    /// Whether every slot owned by a live-looking process has a zero count; `SeqCst` loads, for the users'
    /// Dekker pairs. Slots being freed, or free, count as empty: their counts belong to dead processes.
    pub fn all_zero(&self) -> bool {
        self.slots[..self.used()].iter().map(AsRef::as_ref).all(|slot| {
            // SeqCst: the scanning half of the users' Dekker pairs.
            let o = slot.owner.load(Ordering::SeqCst);
            o == 0 || o & RECLAIMING != 0 || slot.count.load(Ordering::SeqCst) == 0
        })
    }

    fn live_slots(&self) -> impl Iterator<Item = &HolderSlot> + '_ {
        self.slots[..self.used()].iter().map(AsRef::as_ref).filter(|s| {
            // Relaxed: a snapshot for queries.
            let o = s.owner.load(Ordering::Relaxed);
            o != 0 && o & RECLAIMING == 0
        })
    }

    #[inline]
    fn used(&self) -> usize {
        // SeqCst: see `claim`.
        (self.used.load(Ordering::SeqCst) as usize).min(self.slots.len())
    }

    /// Whether a slot's owner word names a dead process (one left `RECLAIMING` by a process that died
    /// while freeing it included).
    fn owner_is_dead(o: u64) -> bool {
        owner_dead(o & !RECLAIMING)
    }

    /// CAS the slot's owner from `from` to `RECLAIMING | me`, hand its count to `give_back` (a dead
    /// owner's; 0 for a free slot), zero it and give the slot to `to` (`me`, or 0 to free it).
    fn take(slot: &HolderSlot, from: u64, me: u64, to: u64, give_back: &mut impl FnMut(u32, u32)) -> bool {
        // Acquire: the dead owner's count is read after the claim.
        if slot.owner.compare_exchange(from, RECLAIMING | me, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return false;
        }
        // SeqCst (all below): part of the users' counting protocols (a count must not be seen twice).
        // `waiting` is a hint: taken off first, in one swap (a kill right after loses a correction, no more).
        let w = slot.waiting.swap(0, Ordering::SeqCst);
        if w != 0 {
            give_back(0, w);
        }
        // The count one unit at a time, each given back before it comes off the slot: a reclaimer killed
        // in between leaves that one unit for the next reclaimer to give back again (one too many, never a
        // whole count twice, and never one lost).
        let mut n = slot.count.load(Ordering::SeqCst);
        while n != 0 {
            give_back(1, 0);
            n -= 1;
            slot.count.store(n, Ordering::SeqCst);
        }
        // Release: publishes the zero count with the new owner word.
        slot.owner.store(to, Ordering::Release);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_processs_holds_are_given_back_once_and_a_live_one_keeps_its_slot() {
        let used = AtomicU32::new(0);
        let slots: Vec<HolderSlot> = (0..4).map(|_| HolderSlot::default()).collect();
        let t = Holders { used: &used, slots: &slots };
        let me = Owner::current(1);
        let dead_id = (me.id & !0xffff_ffff) | 0x7fff_fff3;
        slots[0].owner.store(dead_id, Ordering::Relaxed);
        slots[0].count.store(3, Ordering::Relaxed);
        used.store(1, Ordering::Relaxed);
        let mut back = 0;
        let i = t.claim(me, |n, _| back += n).unwrap();
        assert_eq!((i, back), (0, 3));
        assert!(t.slot_is(0, me));
        slots[0].count.store(2, Ordering::Relaxed);
        t.reclaim_dead(me, |n, _| back += n);
        assert_eq!(back, 3, "our own slot is not reclaimed");
        assert_eq!(t.total(), 2);
        assert_eq!(t.claim(me, |_, _| panic!()).unwrap(), 0);
    }

    /// A reclaimer killed while giving a dead holder's count back (here: its give-back of the second unit
    /// "dies" after adding it, before the slot's count goes down): the next reclaimer gives back the rest,
    /// so one unit comes back twice, not the whole count (review of 04b6b23, finding 2).
    #[test]
    fn a_reclaimer_killed_half_way_gives_back_at_most_one_unit_twice() {
        let used = AtomicU32::new(1);
        let slots: Vec<HolderSlot> = (0..2).map(|_| HolderSlot::default()).collect();
        let t = Holders { used: &used, slots: &slots };
        let me = Owner::current(1);
        let dead = |n: u64| (me.id & !0xffff_ffff) | (0x7fff_ff11 + 2 * n);
        slots[0].owner.store(dead(0), Ordering::Relaxed);
        slots[0].count.store(3, Ordering::Relaxed);
        let back = std::cell::Cell::new(0);
        let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Holders::<HolderSlot>::take(&slots[0], dead(0), dead(1), 0, &mut |n, _| {
                back.set(back.get() + n);
                assert!(back.get() < 2, "the reclaimer dies here");
            })
        }));
        assert!(killed.is_err());
        assert_eq!(slots[0].owner.load(Ordering::Relaxed), RECLAIMING | dead(1));
        t.reclaim_dead(me, |n, _| back.set(back.get() + n));
        assert_eq!(back.get(), 3 + 1, "one unit twice, the rest once");
        assert_eq!((slots[0].owner.load(Ordering::Relaxed), slots[0].count.load(Ordering::Relaxed)), (0, 0));
    }
}
