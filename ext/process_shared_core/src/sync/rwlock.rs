//! A process-shared readers-writer lock that prefers writers and survives the death of any holder.
//!
//! Layout (`#[repr(C)]`, 64 KiB, valid when zeroed): a 64-byte header, then [`READER_SLOTS`] reader slots
//! of one cache line each.
//!
//! | field      | meaning                                                                               |
//! |------------|---------------------------------------------------------------------------------------|
//! | `write`    | a [`RawMutex`]: writers queue on it; it names the writer (pid in the word), so a dead writer is detected as for any mutex |
//! | `gate`     | futex word readers sleep on: `WRITER` (bit 31) while a writer holds or awaits the lock, `READERS_WAITING` (bit 30) while a reader may sleep on it, and a sequence (bits 0..30) bumped whenever the writer leaves |
//! | `drain`    | futex word the writer sleeps on while readers leave: bumped by a reader leaving while `WRITER` is set |
//! | `used`     | how many reader slots were ever claimed (scans stop there)                             |
//! | `dirty`    | the pid of a dead writer whose update no writer has taken over yet, 0 if none (readers are told) |
//! | slot `owner`, `start` | the process that owns the slot: pid and start-time tag (against pid reuse), 0: free, `RECLAIMING \| pid`: being freed by `pid`; its full start time |
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
//! over as for a mutex ([`Acquired::OwnerDied`]): exactly one writer learns of each death, holding the
//! write lock, and can repair the data. Readers cannot repair, but must not wait forever for a writer that
//! may never come, nor read half-written data unawares: they check whether the writer died when they find
//! `WRITER` set and then every [`SLICE`] while they wait; the first to see it takes `write` over, counts
//! itself as a reader (no writer can get in meanwhile), records the dead pid in `dirty`, lets readers in
//! and leaves `write` marked `OWNER_DIED` for the next writer. Until a writer holds the write lock again
//! (taken over, readers drained: [`RawRwLock::write_acquired`] clears `dirty`), every reader that gets in
//! is told ([`Acquired::OwnerDied`], holding a read lock). Read holds of a dead process are released
//! silently.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{sleep_step, Acquired, MutexError, Owner, RawMutex, Wait, SLICE, SPIN};
use crate::sys::process::process_is_dead;
use crate::sys::{futex_wake, Deadline};

/// Reader slots: this many processes can hold (or have held) read locks on one lock at the same time.
pub const READER_SLOTS: usize = 1023;

const WRITER: u32 = 1 << 31; // in `gate`: a writer holds or awaits the lock; readers stay out
const READERS_WAITING: u32 = 1 << 30; // in `gate`: a reader may sleep on it (a hint for `has_waiters`)
const SEQUENCE: u32 = READERS_WAITING - 1; // in `gate`: bumped when the writer leaves
const RECLAIMING: u32 = 1 << 31; // in a slot's owner pid: being freed by the pid in the low bits

/// A slot's owner word: the pid in the low half, the low 32 bits of its start time in the high half (a
/// process that reuses the pid has another start time, so a CAS on the word cannot mistake one for the
/// other).
#[inline]
fn owner_word(pid: u32, start: u64) -> u64 {
    u64::from(pid) | (start << 32)
}

/// The owner word of a slot being freed by process `pid`.
#[inline]
fn reclaiming(pid: u32) -> u64 {
    u64::from(RECLAIMING | pid)
}

/// One process's read holds, on a cache line of its own.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub struct ReaderSlot {
    owner: AtomicU64,
    count: AtomicU32,
    _reserved: u32,
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
    dirty: AtomicU32,
    _reserved: [u32; 5],
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
        let mine = owner_word(me.pid, me.start);
        // Already ours (another handle in this process claimed it)?
        if let Some(i) = (0..self.used()).find(|&i| self.slots[i].owner.load(Ordering::Acquire) == mine) {
            return Ok(i);
        }
        for i in 0..READER_SLOTS {
            let slot = &self.slots[i];
            let o = slot.owner.load(Ordering::Acquire);
            if (o == 0 || self.slot_owner_dead(slot, o)) && self.take_slot(slot, o, me) {
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

    /// Whether slot `i` (from [`RawRwLock::claim_slot`]) still belongs to process `me`.
    #[inline]
    pub fn slot_is(&self, i: usize, me: Owner) -> bool {
        i < READER_SLOTS && self.slots[i].owner.load(Ordering::Relaxed) == owner_word(me.pid, me.start)
    }

    /// Free a slot whose owner word was `from` (0: free already; else a dead owner's) and give it to `me`,
    /// with a zero count. The CAS compares pid *and* start tag, so a slot re-claimed meanwhile by a live
    /// process that reuses the dead pid is left alone.
    fn take_slot(&self, slot: &ReaderSlot, from: u64, me: Owner) -> bool {
        // Acquire: orders our writes below after the claim (nothing of the dead owner's is needed).
        if slot.owner.compare_exchange(from, reclaiming(me.pid), Ordering::Acquire, Ordering::Relaxed).is_err() {
            return false;
        }
        // Relaxed: nobody counts on a slot marked RECLAIMING; the store below publishes both.
        slot.count.store(0, Ordering::Relaxed);
        slot.start.store(me.start, Ordering::Relaxed);
        // Release: publishes the zero count and start time with the new owner.
        slot.owner.store(owner_word(me.pid, me.start), Ordering::Release);
        true
    }

    /// Whether the owner (word `o`, non-zero) of `slot` is dead: the process is gone, a zombie, or its pid
    /// now names a process started at another time (ours included); for a slot left `RECLAIMING` by a
    /// process killed while freeing it: that process is gone.
    fn slot_owner_dead(&self, slot: &ReaderSlot, o: u64) -> bool {
        let pid = o as u32;
        if pid & RECLAIMING != 0 {
            return process_is_dead(pid & !RECLAIMING, 0);
        }
        // Relaxed: `start` was written before the owner word (Release) we read with Acquire.
        process_is_dead(pid, slot.start.load(Ordering::Relaxed))
    }

    /// Clear the read holds of dead processes (a writer waiting for readers calls this every slice).
    #[cold]
    fn reclaim_dead_readers(&self, me: Owner) {
        let mine = owner_word(me.pid, me.start);
        for slot in &self.slots[..self.used()] {
            let o = slot.owner.load(Ordering::Acquire);
            // Only by CAS from the very owner word judged dead (see `take_slot`).
            if o != 0
                && o != mine
                && self.slot_owner_dead(slot, o)
                && slot.owner.compare_exchange(o, reclaiming(me.pid), Ordering::Acquire, Ordering::Relaxed).is_ok()
            {
                slot.count.store(0, Ordering::Relaxed);
                // Release: the slot is free, its count zero.
                slot.owner.store(0, Ordering::Release);
            }
        }
    }

    /// Whether every live slot's count is 0 (slots being reclaimed, or free, count as empty: their counts
    /// belong to dead processes).
    fn readers_drained(&self) -> bool {
        self.slots[..self.used()].iter().all(|slot| {
            // SeqCst: the writer's half of the Dekker pair (after setting WRITER).
            let o = slot.owner.load(Ordering::SeqCst);
            o == 0 || (o as u32) & RECLAIMING != 0 || slot.count.load(Ordering::SeqCst) == 0
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
            return Some(self.read_outcome());
        }
        self.recover_for_read(i, me).map(Acquired::OwnerDied)
    }

    /// For a reader that got in: whether a dead writer's update is still unrepaired (no writer has held the
    /// write lock since). Acquire: pairs with the recovering reader's store, made before it opened the gate.
    #[inline]
    fn read_outcome(&self) -> Acquired {
        match self.dirty.load(Ordering::Acquire) {
            0 => Acquired::Clean,
            pid => Acquired::OwnerDied(pid),
        }
    }

    /// If `WRITER` is set and the writers' mutex belongs to a dead writer: take the mutex over, take a read
    /// hold in slot `i` (no writer can get in meanwhile), let readers in and give the mutex back marked
    /// `OWNER_DIED` (for the next writer to repair). Returns the dead pid.
    #[cold]
    fn recover_for_read(&self, i: usize, me: Owner) -> Option<u32> {
        if self.gate.load(Ordering::Relaxed) & WRITER == 0 {
            return None;
        }
        let pid = self.write.try_recover(me)?;
        // SeqCst: as in `try_read`; counted before the gate opens, so the next writer waits for us.
        self.slots[i].count.fetch_add(1, Ordering::SeqCst);
        // Release: before the gate opens (its Release CAS orders it for every reader that gets in).
        self.dirty.store(pid.max(1), Ordering::Release);
        self.open_gate();
        let _ = self.write.give_back_owner_died(me, pid);
        Some(pid)
    }

    /// Block until a read hold in slot `i` is taken, `deadline` passes, or (if `interruptible`) a signal
    /// arrives; only `Done` leaves a hold. `Done(OwnerDied(pid))`: a writer had died holding the lock and
    /// this call took it over and released it (the data may be half-written).
    #[cold]
    pub fn read_slow(&self, i: usize, me: Owner, deadline: Option<Deadline>, interruptible: bool) -> Wait<Acquired> {
        for _ in 0..SPIN {
            if self.gate.load(Ordering::Relaxed) & WRITER == 0 && self.try_read(i) {
                return Wait::Done(self.read_outcome());
            }
            std::hint::spin_loop();
        }
        let mut check_at = Deadline::after(std::time::Duration::ZERO);
        loop {
            // Acquire: the writer's release of `gate` publishes its writes to us.
            let g = self.gate.load(Ordering::Acquire);
            if g & WRITER == 0 {
                if self.try_read(i) {
                    return Wait::Done(self.read_outcome());
                }
                continue;
            }
            if check_at.expired() {
                check_at = Deadline::after(SLICE);
                if let Some(pid) = self.recover_for_read(i, me) {
                    return Wait::Done(Acquired::OwnerDied(pid));
                }
            }
            if g & READERS_WAITING == 0
                // Relaxed: the futex syscall re-reads the word; the bit is a hint for `has_waiters`.
                && self.gate.compare_exchange(g, g | READERS_WAITING, Ordering::Relaxed, Ordering::Relaxed).is_err()
            {
                continue;
            }
            if let Some(out) = sleep_step(&self.gate, g | READERS_WAITING, deadline, interruptible) {
                return out;
            }
        }
    }

    // ----- writers ---------------------------------------------------------------------------------

    /// The writers' mutex: lock it first (`try_lock`, or its `lock_slow`), then [`RawRwLock::begin_write`].
    pub fn write_mutex(&self) -> &RawMutex {
        &self.write
    }

    /// Holding the write lock (readers drained): a dead writer's update, if one was pending, is now the
    /// caller's to repair, so readers are no longer told.
    pub fn write_acquired(&self) {
        // Relaxed: readers are shut out until the writer leaves; its Release in `open_gate` publishes this.
        self.dirty.store(0, Ordering::Relaxed);
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
        loop {
            // SeqCst: read `drain` before scanning; a reader bumps it after decrementing, so either we
            // see its decrement or the futex sees the new `drain` and does not sleep.
            let d = self.drain.load(Ordering::SeqCst);
            if self.readers_drained() {
                return Wait::Done(());
            }
            if check_at.expired() {
                check_at = Deadline::after(SLICE);
                self.reclaim_dead_readers(me);
                continue;
            }
            if let Some(out) = sleep_step(&self.drain, d, deadline, interruptible) {
                return out;
            }
        }
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
        // Only readers sleep on `gate`, and each sets READERS_WAITING first (see `read_slow`).
        if g & READERS_WAITING != 0 {
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
            self.write_acquired();
            return Ok(Wait::Done(acquired));
        }
        match self.drain_slow(me, deadline, false) {
            Wait::Done(()) => {
                self.write_acquired();
                Ok(Wait::Done(acquired))
            }
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
                let o = s.owner.load(Ordering::Relaxed);
                o != 0 && (o as u32) & RECLAIMING == 0
            })
            .map(|s| s.count.load(Ordering::Relaxed))
            .sum()
    }

    /// Whether any thread may be waiting for the lock (a hint: a reader that may sleep, a writer that may
    /// sleep on the writers' mutex, or a writer waiting for readers to leave; it can stay true while a
    /// writer that had to wait holds the lock). Waiters that were killed are forgotten once the lock is
    /// next released.
    pub fn has_waiters(&self) -> bool {
        let g = self.gate.load(Ordering::Relaxed);
        g & READERS_WAITING != 0 || self.write.has_waiters() || (g & WRITER != 0 && self.readers() > 0)
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
