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
//! | `slots`    | a [holder table](super::holders): per process, its read holds |
//!
//! Readers are counted per process, in the process's own slot, never in a shared total: a process that
//! dies holding read locks leaves a count that is attributable to it, which a writer (or a process
//! claiming a slot) clears once the process has provably ended.
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

use crate::sys::atomic::AtomicU32;
use std::sync::atomic::Ordering;

use super::holders::{Holders, NoSlot, PaddedSlot};
use super::{wait_loop, Acquired, Look, MutexError, Owner, RawMutex, Step, Wait};
use crate::sys::{futex_wake, Deadline};

/// Reader slots: this many processes can hold (or have held) read locks on one lock at the same time.
pub const READER_SLOTS: usize = 1023;

const WRITER: u32 = 1 << 31; // in `gate`: a writer holds or awaits the lock; readers stay out
const READERS_WAITING: u32 = 1 << 30; // in `gate`: a reader may sleep on it (a hint for `has_waiters`)
const SEQUENCE: u32 = READERS_WAITING - 1; // in `gate`: bumped when the writer leaves

/// See the module documentation.
#[repr(C)]
#[derive(Debug)]
pub struct RawRwLock {
    write: RawMutex,
    gate: AtomicU32,
    drain: AtomicU32,
    used: AtomicU32,
    dirty: AtomicU32,
    _reserved: [u32; 6],
    slots: [PaddedSlot; READER_SLOTS],
}

/// Why a read lock could not be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Every reader slot belongs to a live process.
    NoSlot,
}

impl From<NoSlot> for ReadError {
    fn from(_: NoSlot) -> Self {
        ReadError::NoSlot
    }
}

impl RawRwLock {
    /// Bytes the lock takes (a whole 64 KiB: map it on its own).
    pub const SIZE: usize = std::mem::size_of::<RawRwLock>();

    // ----- reader slots ----------------------------------------------------------------------------

    #[inline]
    fn holders(&self) -> Holders<'_, PaddedSlot> {
        Holders { used: &self.used, slots: &self.slots }
    }

    /// The slot of process `me`, claiming a free one (or one of a dead process) if it has none. The
    /// caller caches the index and re-checks it with [`RawRwLock::slot_is`].
    #[cold]
    pub fn claim_slot(&self, me: Owner) -> Result<usize, ReadError> {
        // A dead process's read holds are simply dropped.
        Ok(self.holders().claim(me, |_, _| {})?)
    }

    /// Whether slot `i` (from [`RawRwLock::claim_slot`]) still belongs to process `me`.
    #[inline]
    pub fn slot_is(&self, i: usize, me: Owner) -> bool {
        self.holders().slot_is(i, me)
    }

    /// Clear the read holds of dead processes (a writer waiting for readers calls this every slice).
    #[cold]
    fn reclaim_dead_readers(&self, me: Owner) {
        self.holders().reclaim_dead(me, |_, _| {});
    }

    /// Whether every live slot's count is 0.
    fn readers_drained(&self) -> bool {
        self.holders().all_zero()
    }

    // ----- readers ---------------------------------------------------------------------------------

    /// Take a read hold in slot `i` unless a writer holds or awaits the lock. Never sleeps.
    #[inline]
    pub fn try_read(&self, i: usize) -> bool {
        let slot = &self.slots[i].0;
        // SeqCst (both): the reader's half of the Dekker pair with a writer's `gate |= WRITER` + scan.
        slot.count.fetch_add(1, Ordering::SeqCst);
        if self.gate.load(Ordering::SeqCst) & WRITER == 0 {
            return true;
        }
        self.leave_read(slot);
        false
    }

    /// Take one more read hold in slot `i` for a thread that already holds one there: at once, even while a
    /// writer holds the gate closed (it is waiting for this very hold to go, so waiting would deadlock, and
    /// letting it in delays no writer any further). Never sleeps.
    #[inline]
    pub fn read_again(&self, i: usize) -> Acquired {
        // SeqCst: as in `try_read` (the slot is not 0, so a draining writer keeps waiting for it anyway).
        self.slots[i].0.count.fetch_add(1, Ordering::SeqCst);
        self.read_outcome()
    }

    /// Give back one read hold of slot `i`.
    #[inline]
    pub fn release_read(&self, i: usize) {
        self.leave_read(&self.slots[i].0);
    }

    #[inline]
    fn leave_read(&self, slot: &super::holders::HolderSlot) {
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
    /// live writer holds or awaits it. Asks the owner registry (`sys::owner::liveness`) only in the last case.
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
        self.slots[i].0.count.fetch_add(1, Ordering::SeqCst);
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
        wait_loop(&self.gate, deadline, interruptible, |look: Look| {
            // Acquire: the writer's release of `gate` publishes its writes to us.
            let g = self.gate.load(Ordering::Acquire);
            if g & WRITER == 0 {
                return if self.try_read(i) { Step::Done(self.read_outcome()) } else { Step::Again };
            }
            if look.check_holders {
                if let Some(pid) = self.recover_for_read(i, me) {
                    return Step::Done(Acquired::OwnerDied(pid));
                }
            }
            if look.may_spin && g & READERS_WAITING == 0 {
                return Step::Spin;
            }
            // Relaxed: the futex syscall re-reads the word; the bit is a hint for `has_waiters` and tells
            // the writer to wake us.
            if g & READERS_WAITING == 0
                && self.gate.compare_exchange(g, g | READERS_WAITING, Ordering::Relaxed, Ordering::Relaxed).is_err()
            {
                return Step::Again;
            }
            Step::Park(g | READERS_WAITING)
        })
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
        wait_loop(&self.drain, deadline, interruptible, |look: Look| {
            // SeqCst: read `drain` before scanning; a reader bumps it after decrementing, so either we see
            // its decrement or the futex sees the new `drain` and does not sleep.
            let d = self.drain.load(Ordering::SeqCst);
            if self.readers_drained() {
                return Step::Done(());
            }
            if look.check_holders {
                self.reclaim_dead_readers(me);
                return Step::Again;
            }
            if look.may_spin {
                return Step::Spin;
            }
            Step::Park(d)
        })
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
                let _ = self.write.give_back(me, acquired);
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

    /// The pid of a dead writer whose update no writer has taken over yet (readers are told), if any.
    pub fn dead_writer(&self) -> Option<u32> {
        // Relaxed: a snapshot.
        Some(self.dirty.load(Ordering::Relaxed)).filter(|&p| p != 0)
    }

    /// Read holds of the process owning slot `i`.
    pub fn slot_count(&self, i: usize) -> u32 {
        self.slots.get(i).map_or(0, |s| s.0.count.load(Ordering::Relaxed))
    }

    /// Read holds of live processes, without those of processes that died holding them (released by the
    /// next writer or slot claim): a snapshot that changes nothing.
    pub fn live_readers(&self) -> u32 {
        self.readers().saturating_sub(self.holders().dead_holds().0)
    }

    /// Read holds of live-looking processes (a snapshot).
    pub fn readers(&self) -> u32 {
        self.holders().total()
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
        assert_eq!(std::mem::size_of::<PaddedSlot>(), 64);
        assert_eq!(RawRwLock::SIZE, 64 * 1024);
        assert_eq!(std::mem::offset_of!(RawRwLock, slots), 64);
    }
}
