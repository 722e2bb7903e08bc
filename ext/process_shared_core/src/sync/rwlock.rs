//! A process-shared readers-writer lock that prefers writers and survives the death of any holder.
//!
//! Layout (`#[repr(C)]`, 64 KiB, valid when zeroed): a 64-byte header, then [`READER_SLOTS`] reader slots
//! of one cache line each.
//!
//! | field      | meaning                                                                               |
//! |------------|---------------------------------------------------------------------------------------|
//! | `write`    | a [`RawMutex`]: writers queue on it; it names the writer (pid in the word), so a dead writer is detected as for any mutex |
//! | `gate`     | futex word readers sleep on: `WRITER` (bit 31) while a writer holds or awaits the lock, and a sequence (bits 0..31) bumped whenever the writer leaves |
//! | `drain`    | futex word the writer sleeps on while readers leave: bumped by a reader leaving while `WRITER` is set |
//! | `used`     | how many reader slots were ever claimed (scans stop there)                             |
//! | `waiting`  | threads asleep in a slow path (a hint for `has_waiters?`; a waiter that is killed stays counted) |
//! | slot `pid`, `start` | the process (and its start time, against pid reuse) that owns the slot; 0: free; `RECLAIMING \| pid`: being freed by `pid` |
//! | slot `count` | read holds of that process |
//!
//! Readers are counted per process, in the process's own slot, never in a shared total: a process that
//! dies holding read locks leaves a count that is attributable to it, which a writer (or a process
//! claiming a slot) clears once `/proc` says the process is gone.
//!
//! | event | what changes |
//! |-------|--------------|
//! | read: enter | own slot `count += 1`, then `gate` has no `WRITER` (else undo, bump `drain`, sleep on `gate`) |
//! | read: leave | own slot `count -= 1`; if `WRITER`: bump `drain`, wake the writer |
//! | write: enter | lock `write`; `gate \|= WRITER`; sleep on `drain` until every live slot's `count` is 0 |
//! | write: leave | `gate = sequence + 1` (clears `WRITER`), wake all readers; unlock `write` |
//!
//! Enter-read (count, then look at `gate`) and enter-write (set `WRITER`, then look at the counts) are a
//! `SeqCst` Dekker pair: at least one of them sees the other, so a reader and a writer never both get in,
//! and once `WRITER` is set no new reader gets in (writers are not starved by a stream of readers).
//!
//! Owner death. A dead writer holds `write` (with `WRITER` set, or not yet): waiting writers take `write`
//! over as for a mutex ([`Acquired::OwnerDied`]). Readers check whether the writer died when they find
//! `WRITER` set and then every [`SLICE`] while they wait; the first to see it takes `write` over, counts
//! itself as a reader (no writer can get in meanwhile), clears `WRITER` and unlocks: it holds a read lock,
//! with [`Acquired::OwnerDied`]. Exactly one acquirer, reader or writer, learns of each death. Read holds
//! of a dead process are released silently.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{sleep_step, Acquired, MutexError, Owner, RawMutex, Wait, SLICE, SPIN};
use crate::sys::process::process_is_dead;
use crate::sys::{futex_wake, Deadline};

/// Reader slots: this many processes can hold (or have held) read locks on one lock at the same time.
pub const READER_SLOTS: usize = 1023;

const WRITER: u32 = 1 << 31; // in `gate`: a writer holds or awaits the lock; readers stay out
const SEQUENCE: u32 = WRITER - 1; // in `gate`: bumped when the writer leaves
const RECLAIMING: u32 = 1 << 31; // in a slot's `pid`: being freed by the pid in the low bits

/// One process's read holds, on a cache line of its own.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub struct ReaderSlot {
    pid: AtomicU32,
    count: AtomicU32,
    start: AtomicU64,
}

/// See the module documentation.
#[repr(C)]
#[derive(Debug)]
pub struct RawRwLock {
    write: RawMutex,
    gate: AtomicU32,
    drain: AtomicU32,
    used: AtomicU32,
    waiting: AtomicU32,
    _reserved: [u64; 3],
    slots: [ReaderSlot; READER_SLOTS],
}

/// Why a read lock could not be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Every reader slot belongs to a live process.
    NoSlot,
}

impl RawRwLock {
    /// Bytes the lock takes (a whole 64 KiB: map it on its own).
    pub const SIZE: usize = std::mem::size_of::<RawRwLock>();

    // ----- reader slots ----------------------------------------------------------------------------

    /// The slot of process `me`, claiming a free one (or one of a dead process) if it has none. The
    /// caller caches the index for `me.pid` and re-checks it with [`RawRwLock::slot_is`].
    #[cold]
    pub fn claim_slot(&self, me: Owner) -> Result<usize, ReadError> {
        let used = self.used();
        // Already ours (another handle in this process claimed it)?
        if let Some(i) = (0..used).find(|&i| self.is_mine(&self.slots[i], me)) {
            return Ok(i);
        }
        for i in 0..READER_SLOTS {
            let slot = &self.slots[i];
            let p = slot.pid.load(Ordering::Acquire);
            let claimed = if p == 0 {
                self.take_slot(slot, 0, me)
            } else if p & RECLAIMING == 0 && self.slot_owner_dead(slot, p) {
                self.take_slot(slot, p, me)
            } else {
                false
            };
            if claimed {
                // SeqCst: part of the Dekker pair: a writer that misses our count must not miss the slot
                // (its SeqCst load of `used` follows its `gate |= WRITER`; our claim precedes our count).
                self.used.fetch_max(i as u32 + 1, Ordering::SeqCst);
                return Ok(i);
            }
        }
        Err(ReadError::NoSlot)
    }

    /// How many slots to scan.
    #[inline]
    fn used(&self) -> usize {
        // SeqCst: see `claim_slot`.
        (self.used.load(Ordering::SeqCst) as usize).min(READER_SLOTS)
    }

    /// Whether `slot` belongs to process `me` (its pid *and* start time: not to an earlier process that had
    /// the same pid and died).
    fn is_mine(&self, slot: &ReaderSlot, me: Owner) -> bool {
        // Acquire: the start time was written before the pid (Release) by the claimer.
        slot.pid.load(Ordering::Acquire) == me.pid && slot.start.load(Ordering::Relaxed) == me.start
    }

    /// Whether slot `i` (from [`RawRwLock::claim_slot`]) still belongs to `pid`.
    #[inline]
    pub fn slot_is(&self, i: usize, pid: u32) -> bool {
        i < READER_SLOTS && self.slots[i].pid.load(Ordering::Relaxed) == pid
    }

    /// Free a slot whose owner was `from` (0: free already) and give it to `me`, with a zero count.
    fn take_slot(&self, slot: &ReaderSlot, from: u32, me: Owner) -> bool {
        // Acquire: see the dead owner's last count before clearing it (nothing depends on it, but the
        // RECLAIMING mark must be ordered before our writes).
        if slot.pid.compare_exchange(from, RECLAIMING | me.pid, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return false;
        }
        // Relaxed: nobody counts on a slot marked RECLAIMING; the store below publishes both.
        slot.count.store(0, Ordering::Relaxed);
        slot.start.store(me.start, Ordering::Relaxed);
        // Release: publishes the zero count and start time with the new owner.
        slot.pid.store(me.pid, Ordering::Release);
        true
    }

    /// Whether the process owning `slot` (pid `p`) has died: gone, a zombie, or `p` now names a process
    /// started at another time (ours included).
    fn slot_owner_dead(&self, slot: &ReaderSlot, p: u32) -> bool {
        // Relaxed: a stale start makes the check conservative (or fail); the CAS on `pid` decides.
        process_is_dead(p, slot.start.load(Ordering::Relaxed))
    }

    /// Clear the read holds of dead processes (a writer waiting for readers calls this every slice).
    #[cold]
    fn reclaim_dead_readers(&self, me: Owner) {
        for slot in &self.slots[..self.used()] {
            let p = slot.pid.load(Ordering::Acquire);
            if p != 0 && p & RECLAIMING == 0 && !self.is_mine(slot, me) && slot.count.load(Ordering::Relaxed) != 0 {
                // Only by CAS, and only from the dead pid: a process that re-claimed the slot meanwhile
                // makes it fail.
                if self.slot_owner_dead(slot, p)
                    && slot.pid.compare_exchange(p, RECLAIMING | me.pid, Ordering::Acquire, Ordering::Relaxed).is_ok()
                {
                    slot.count.store(0, Ordering::Relaxed);
                    // Release: the slot is free, its count zero.
                    slot.pid.store(0, Ordering::Release);
                }
            }
        }
    }

    /// Whether every live slot's count is 0 (slots being reclaimed, or free, count as empty).
    fn readers_drained(&self) -> bool {
        self.slots[..self.used()].iter().all(|slot| {
            // SeqCst: the writer's half of the Dekker pair (after setting WRITER).
            let p = slot.pid.load(Ordering::SeqCst);
            p == 0 || p & RECLAIMING != 0 || slot.count.load(Ordering::SeqCst) == 0
        })
    }

    // ----- readers ---------------------------------------------------------------------------------

    /// Take a read hold in slot `i` unless a writer holds or awaits the lock. Never sleeps.
    #[inline]
    pub fn try_read(&self, i: usize) -> bool {
        let slot = &self.slots[i];
        // SeqCst (both): the reader's half of the Dekker pair with a writer's `gate |= WRITER` + scan.
        slot.count.fetch_add(1, Ordering::SeqCst);
        if self.gate.load(Ordering::SeqCst) & WRITER == 0 {
            return true;
        }
        self.leave_read(slot);
        false
    }

    /// Give back one read hold of slot `i`.
    #[inline]
    pub fn release_read(&self, i: usize) {
        self.leave_read(&self.slots[i]);
    }

    #[inline]
    fn leave_read(&self, slot: &ReaderSlot) {
        // SeqCst: the decrement precedes our `gate` check (the Dekker pair again): if we miss `WRITER`, the
        // writer's scan sees the decrement; if we see it, we wake the writer.
        slot.count.fetch_sub(1, Ordering::SeqCst);
        if self.gate.load(Ordering::SeqCst) & WRITER != 0 {
            self.drain.fetch_add(1, Ordering::SeqCst);
            futex_wake(&self.drain, i32::MAX);
        }
    }

    /// Take a read hold in slot `i` without sleeping: `Clean` if no writer holds or awaits the lock,
    /// `OwnerDied(pid)` if the writer that holds it is dead (see [`RawRwLock::read_slow`]), `None` if a
    /// live writer holds or awaits it. Reads `/proc` only in the last case.
    pub fn try_read_recovering(&self, i: usize, me: Owner) -> Option<Acquired> {
        if self.try_read(i) {
            return Some(Acquired::Clean);
        }
        self.recover_for_read(i, me).map(Acquired::OwnerDied)
    }

    /// If `WRITER` is set and the writers' mutex belongs to a dead writer: take the mutex over, take a read
    /// hold in slot `i` (no writer can get in meanwhile), let readers in and unlock. Returns the dead pid.
    #[cold]
    fn recover_for_read(&self, i: usize, me: Owner) -> Option<u32> {
        if self.gate.load(Ordering::Relaxed) & WRITER == 0 {
            return None;
        }
        let pid = self.write.try_recover(me)?;
        // SeqCst: as in `try_read`; counted before the gate opens, so the next writer waits for us.
        self.slots[i].count.fetch_add(1, Ordering::SeqCst);
        self.open_gate();
        let _ = self.write.unlock(me);
        Some(pid)
    }

    /// Block until a read hold in slot `i` is taken, `deadline` passes, or (if `interruptible`) a signal
    /// arrives; only `Done` leaves a hold. `Done(OwnerDied(pid))`: a writer had died holding the lock and
    /// this call took it over and released it (the data may be half-written).
    #[cold]
    pub fn read_slow(&self, i: usize, me: Owner, deadline: Option<Deadline>, interruptible: bool) -> Wait<Acquired> {
        for _ in 0..SPIN {
            if self.gate.load(Ordering::Relaxed) & WRITER == 0 && self.try_read(i) {
                return Wait::Done(Acquired::Clean);
            }
            std::hint::spin_loop();
        }
        let mut check_at = Deadline::after(std::time::Duration::ZERO);
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let out = loop {
            // Acquire: the writer's release of `gate` publishes its writes to us.
            let g = self.gate.load(Ordering::Acquire);
            if g & WRITER == 0 {
                if self.try_read(i) {
                    break Wait::Done(Acquired::Clean);
                }
                continue;
            }
            if check_at.expired() {
                check_at = Deadline::after(SLICE);
                if let Some(pid) = self.recover_for_read(i, me) {
                    break Wait::Done(Acquired::OwnerDied(pid));
                }
            }
            if let Some(out) = sleep_step(&self.gate, g, deadline, interruptible) {
                break out;
            }
        };
        // Relaxed: a hint.
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        out
    }

    // ----- writers ---------------------------------------------------------------------------------

    /// The writers' mutex: lock it first (`try_lock`, or [`RawRwLock::write_lock_slow`]), then
    /// [`RawRwLock::begin_write`].
    pub fn write_mutex(&self) -> &RawMutex {
        &self.write
    }

    /// [`RawMutex::lock_slow`] on the writers' mutex, counted in the waiters hint.
    #[cold]
    pub fn write_lock_slow(&self, me: Owner, deadline: Option<Deadline>, interruptible: bool) -> Wait<Acquired> {
        // Relaxed (both): a hint.
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let out = self.write.lock_slow(me, deadline, interruptible);
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        out
    }

    /// Holding the writers' mutex: shut readers out. True if no reader is left (the write lock is held).
    #[inline]
    pub fn begin_write(&self) -> bool {
        // SeqCst: the writer's half of the Dekker pair (then `readers_drained` scans).
        self.gate.fetch_or(WRITER, Ordering::SeqCst);
        self.readers_drained()
    }

    /// After [`RawRwLock::begin_write`] returned false: block until the readers are gone (dead readers'
    /// holds are cleared every [`SLICE`]), `deadline` passes, or (if `interruptible`) a signal arrives.
    /// On any outcome but `Done`, call [`RawRwLock::abort_write`] (or call again).
    #[cold]
    pub fn drain_slow(&self, me: Owner, deadline: Option<Deadline>, interruptible: bool) -> Wait<()> {
        for _ in 0..SPIN {
            if self.readers_drained() {
                return Wait::Done(());
            }
            std::hint::spin_loop();
        }
        let mut check_at = Deadline::after(SLICE);
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let out = loop {
            // SeqCst: read `drain` before scanning; a reader bumps it after decrementing, so either we
            // see its decrement or the futex sees the new `drain` and does not sleep.
            let d = self.drain.load(Ordering::SeqCst);
            if self.readers_drained() {
                break Wait::Done(());
            }
            if check_at.expired() {
                check_at = Deadline::after(SLICE);
                self.reclaim_dead_readers(me);
                continue;
            }
            if let Some(out) = sleep_step(&self.drain, d, deadline, interruptible) {
                break out;
            }
        };
        // Relaxed: a hint.
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        out
    }

    /// Let readers in again (clear `WRITER`, wake them). For the writers' mutex holder only: on leaving,
    /// or when giving up waiting for readers; then unlock the writers' mutex.
    pub fn open_gate(&self) {
        let mut g = self.gate.load(Ordering::Relaxed);
        loop {
            let new = (g & SEQUENCE).wrapping_add(1) & SEQUENCE;
            // Release: publishes the writer's writes to readers (their Acquire load of `gate`).
            match self.gate.compare_exchange_weak(g, new, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(cur) => g = cur,
            }
        }
        if g & WRITER != 0 {
            futex_wake(&self.gate, i32::MAX);
        }
    }

    /// Leave the write lock held by `me`.
    pub fn release_write(&self, me: Owner) -> Result<(), MutexError> {
        if !self.write.is_owned_by(me) {
            return Err(MutexError::NotOwner);
        }
        self.open_gate();
        self.write.unlock(me)
    }

    /// Take the write lock, retrying through signals: for Rust callers without an interrupt mechanism.
    /// `TimedOut` leaves nothing held.
    pub fn write(&self, me: Owner, deadline: Option<Deadline>) -> Result<Wait<Acquired>, MutexError> {
        let acquired = match self.write.lock(me, deadline)? {
            Wait::Done(a) => a,
            other => return Ok(other),
        };
        if self.begin_write() {
            return Ok(Wait::Done(acquired));
        }
        match self.drain_slow(me, deadline, false) {
            Wait::Done(()) => Ok(Wait::Done(acquired)),
            other => {
                self.open_gate();
                let _ = self.write.unlock(me);
                Ok(match other {
                    Wait::Failed(e) => Wait::Failed(e),
                    _ => Wait::TimedOut,
                })
            }
        }
    }

    /// Take a read hold in slot `i`, retrying through signals: for Rust callers.
    pub fn read(&self, i: usize, me: Owner, deadline: Option<Deadline>) -> Wait<Acquired> {
        match self.try_read_recovering(i, me) {
            Some(a) => Wait::Done(a),
            None => self.read_slow(i, me, deadline, false),
        }
    }

    // ----- queries ---------------------------------------------------------------------------------

    /// Whether a writer holds the lock (or is waiting for readers to leave).
    pub fn is_write_locked(&self) -> bool {
        self.write.is_locked() && self.gate.load(Ordering::Relaxed) & WRITER != 0
    }

    /// Whether `me` holds the write lock.
    pub fn is_write_owned_by(&self, me: Owner) -> bool {
        self.write.is_owned_by(me)
    }

    /// Read holds of the process owning slot `i`.
    pub fn slot_count(&self, i: usize) -> u32 {
        self.slots.get(i).map_or(0, |s| s.count.load(Ordering::Relaxed))
    }

    /// Read holds of live-looking processes (a snapshot).
    pub fn readers(&self) -> u32 {
        self.slots[..self.used()]
            .iter()
            .filter(|s| {
                let p = s.pid.load(Ordering::Relaxed);
                p != 0 && p & RECLAIMING == 0
            })
            .map(|s| s.count.load(Ordering::Relaxed))
            .sum()
    }

    /// Whether any thread may be waiting for the lock (a hint).
    pub fn has_waiters(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_a_header_and_a_cache_line_per_slot() {
        assert_eq!(std::mem::size_of::<ReaderSlot>(), 64);
        assert_eq!(RawRwLock::SIZE, 64 * 1024);
        assert_eq!(std::mem::offset_of!(RawRwLock, slots), 64);
    }
}
