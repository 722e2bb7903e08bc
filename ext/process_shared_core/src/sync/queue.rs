//! A process-shared bounded FIFO of byte records in a ring buffer (the Ruby binding stores Marshal dumps).
//!
//! Layout: a [`QUEUE_HEADER`]-byte (1 KiB) [`QueueHeader`], then the ring of `ring_size` bytes. A record is
//! a 4-byte length (little-endian) and its bytes, wrapping at the end of the ring.
//!
//! | header field       | meaning                                                                     |
//! |--------------------|-----------------------------------------------------------------------------|
//! | `mutex`            | guards everything below (a [`RawMutex`]: a dead holder is detected)         |
//! | `format`           | [`QUEUE_FORMAT`], set by `init` (0 in the 256-byte header of format 1, whose condition variables had no waiter tables): a named queue of another format is refused |
//! | `not_empty`, `not_full` | condition variables poppers and pushers wait on (their waiters, counted per process, are [`QueueRef::num_waiting`]) |
//! | `head`, `tail`     | ring offsets of the oldest record and of the next one                       |
//! | `used`             | bytes in records                                                            |
//! | `pushes`, `pops`   | records ever pushed and popped (the length is their difference)             |
//! | `pending`, `log`   | redo log: the values of the four fields above and `pops`/`pushes` after an operation, applied while `pending` is 1 |
//! | `ring_size`, `max` | set once; `max` is the element limit (0: none)                              |
//! | `closed`           | no more pushes; pops drain what is left                                     |
//!
//! Killed at any instruction. Every operation runs with `mutex` held and changes the queue's fields only
//! through the redo log: it writes the new values to `log`, sets `pending`, copies them into the fields,
//! and clears `pending`. Whoever takes `mutex` over from a dead holder ([`Acquired::OwnerDied`]) replays a
//! pending log, so the fields always describe whole records. A push writes its bytes into free space before
//! its commit (a push killed before it leaves garbage in free space, invisible); a pop copies its record out
//! before its commit (a pop killed before it leaves the record in the queue). No torn record is ever read.
//!
//! The lock is never held while the caller does anything else (it is not held across a GVL release or
//! Ruby code): every call locks, does its work in memory, and unlocks.

use crate::sys::atomic::{AtomicU32, AtomicU64};
use std::sync::atomic::Ordering;

use super::{Acquired, Owner, RawCondvar, RawMutex, Wait};
use crate::sys::Deadline;

/// Bytes before the ring.
pub const QUEUE_HEADER: usize = 1024;
/// The layout version in a queue's `format` word (format 1, with a 256-byte header, left it 0).
pub const QUEUE_FORMAT: u32 = 2;
/// Bytes of a record's length prefix.
pub const RECORD_HEADER: usize = 4;

/// The shared header (see the module documentation). Valid when zeroed, before `init`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct QueueHeader {
    mutex: RawMutex,
    format: AtomicU32,
    _pad0: u32,
    not_empty: RawCondvar,
    not_full: RawCondvar,
    head: AtomicU64,
    tail: AtomicU64,
    used: AtomicU64,
    pushes: AtomicU64,
    pops: AtomicU64,
    pending: AtomicU64,
    log: [AtomicU64; 5],
    ring_size: AtomicU64,
    max: AtomicU64,
    closed: AtomicU32,
    _pad1: u32,
}

/// The header's queries: plain loads, for [`QueueRef`] and for readers of a copy ([`crate::inspect`]).
impl QueueHeader {
    /// The layout version ([`QueueRef::format`]).
    pub fn format(&self) -> u32 {
        // Relaxed: set once before sharing (published by fork, or by the named object's `ready`).
        self.format.load(Ordering::Relaxed)
    }

    /// The ring's size in bytes, as recorded (unchecked: [`QueueRef`] clamps it to its mapping).
    pub fn ring_size(&self) -> u64 {
        // Relaxed: set once before sharing.
        self.ring_size.load(Ordering::Relaxed)
    }

    /// The element limit (0: none).
    pub fn max(&self) -> u64 {
        // Relaxed: set once before sharing.
        self.max.load(Ordering::Relaxed)
    }

    /// Records in the queue (a snapshot).
    pub fn len(&self) -> u64 {
        // Relaxed: a snapshot; `pops` is read first so the difference cannot go negative.
        let pops = self.pops.load(Ordering::Relaxed);
        self.pushes.load(Ordering::Relaxed).saturating_sub(pops)
    }

    /// Whether the queue holds no record (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        // Acquire: a pop that sees it closed sees every push before the close.
        self.closed.load(Ordering::Acquire) != 0
    }

    /// The mutex that guards the queue (held for the moment of a push or pop).
    pub fn mutex(&self) -> &RawMutex {
        &self.mutex
    }

    /// Threads waiting to push or pop, without the registrations of processes that died waiting: a snapshot
    /// that changes nothing.
    pub fn live_waiters(&self) -> u32 {
        self.not_empty.live_waiters().saturating_add(self.not_full.live_waiters())
    }
}

/// What a successful push did, for [`QueueRef::retract`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pushed {
    seq: u64,
    len: u64,
}

/// The outcome of a push step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Enqueued.
    Pushed(Pushed),
    /// The queue is closed: nothing was enqueued.
    Closed,
    /// Full, and the caller asked not to wait: nothing was enqueued.
    Full,
}

/// The outcome of a pop step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PopOutcome {
    /// A record, removed from the queue.
    Item(Vec<u8>),
    /// Empty, and the caller asked not to wait (closed or not).
    Empty,
    /// Empty and closed: nothing will come.
    ClosedEmpty,
}

/// The queue's fields after an operation: (head, tail, used, pushes, pops).
type Fields = [u64; 5];

/// A queue at some address: the header, then the ring.
#[derive(Clone, Copy)]
pub struct QueueRef<'a> {
    hdr: &'a QueueHeader,
    ring: *mut u8,
    ring_len: usize,
}

impl<'a> QueueRef<'a> {
    /// The bytes a queue with a ring of `ring_size` bytes needs.
    pub fn size_for(ring_size: usize) -> Option<usize> {
        ring_size.checked_add(QUEUE_HEADER)
    }

    /// # Safety
    /// `base` must point to at least `len` bytes of shared memory, 64-byte aligned, that stay mapped for
    /// `'a`, zeroed or initialised by [`QueueRef::init`] with a ring of `len - QUEUE_HEADER` bytes, and used
    /// by nothing but queue code.
    pub unsafe fn new(base: *mut u8, len: usize) -> QueueRef<'a> {
        debug_assert!(len > QUEUE_HEADER && base as usize % 64 == 0);
        // SAFETY: per the contract, the header is valid (zeroed or initialised) for 'a.
        let hdr = unsafe { &*base.cast::<QueueHeader>() };
        // SAFETY: the ring follows the header within the same mapping.
        QueueRef { hdr, ring: unsafe { base.add(QUEUE_HEADER) }, ring_len: len - QUEUE_HEADER }
    }

    /// Set the ring size (the whole ring) and element limit (0: none) before anyone else sees the queue.
    pub fn init(&self, max: u64) {
        // Relaxed: published to other processes by fork or a later release.
        self.hdr.ring_size.store(self.ring_len as u64, Ordering::Relaxed);
        self.hdr.max.store(max, Ordering::Relaxed);
        self.hdr.format.store(QUEUE_FORMAT, Ordering::Relaxed);
    }

    /// The layout version the queue was made with ([`QUEUE_FORMAT`] for one made by this code; check it
    /// before using a named queue another process made).
    pub fn format(&self) -> u32 {
        self.hdr.format()
    }

    fn ring_size(&self) -> u64 {
        // Clamped to the mapping so garbage cannot send us outside it.
        self.hdr.ring_size().clamp(1, self.ring_len as u64)
    }

    /// The element limit (0: none).
    pub fn max(&self) -> u64 {
        self.hdr.max()
    }

    /// Records in the queue (a snapshot).
    pub fn len(&self) -> u64 {
        self.hdr.len()
    }

    /// Whether the queue holds no record (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.hdr.is_closed()
    }

    /// Threads waiting to push or pop (a hint; those of processes that died waiting are taken off first).
    pub fn num_waiting(&self) -> u32 {
        self.hdr.not_empty.waiters() + self.hdr.not_full.waiters()
    }

    // ----- locking and the redo log ------------------------------------------------------------------

    /// Lock (sleeping if `interruptible` allows it), replaying a dead holder's pending commit.
    fn lock(&self, me: Owner, deadline: Option<Deadline>, interruptible: bool) -> Wait<()> {
        // A dead holder is taken over at once, even by a call that may not wait (timeout 0).
        let acquired = if let Some(a) = self.hdr.mutex.try_acquire(me) {
            a
        } else {
            match self.hdr.mutex.lock_slow(me, deadline, interruptible) {
                Wait::Done(a) => a,
                Wait::TimedOut => return Wait::TimedOut,
                Wait::Interrupted => return Wait::Interrupted,
                Wait::Failed(e) => return Wait::Failed(e),
            }
        };
        if let Acquired::OwnerDied(_) = acquired {
            self.replay();
        }
        Wait::Done(())
    }

    /// Lock with no deadline, retrying through signals (short critical sections only: giving back after an
    /// interrupt). False only if the futex call itself failed (then nothing is held).
    fn lock_uninterruptibly(&self, me: Owner) -> bool {
        matches!(self.lock(me, None, false), Wait::Done(()))
    }

    fn unlock(&self, me: Owner) {
        let _ = self.hdr.mutex.unlock(me);
    }

    /// The fields, made consistent with the ring whatever is in memory (garbage written into the mapping
    /// must not send a read or write outside it): offsets inside the ring, `used` at most its size, `pops`
    /// at most `pushes`.
    fn fields(&self) -> Fields {
        // Relaxed: read with the mutex held, which ordered the last writer's stores before us.
        let h = self.hdr;
        let [head, tail, used, pushes, pops] =
            [&h.head, &h.tail, &h.used, &h.pushes, &h.pops].map(|f| f.load(Ordering::Relaxed));
        let size = self.ring_size();
        [head % size, tail % size, used.min(size), pushes, pops.min(pushes)]
    }

    /// Commit new field values through the redo log.
    fn commit(&self, new: Fields) {
        let h = self.hdr;
        for (slot, v) in h.log.iter().zip(new) {
            // Relaxed: under the mutex; `pending` below orders them for a recoverer.
            slot.store(v, Ordering::Relaxed);
        }
        // Release: a recoverer that sees `pending` (after taking the mutex over) sees the whole log; the
        // Release fence keeps the field stores below from becoming visible before `pending` is 1.
        h.pending.store(1, Ordering::Release);
        std::sync::atomic::fence(Ordering::Release);
        self.apply(new);
        h.pending.store(0, Ordering::Release);
    }

    fn apply(&self, new: Fields) {
        let h = self.hdr;
        for (f, v) in [&h.head, &h.tail, &h.used, &h.pushes, &h.pops].into_iter().zip(new) {
            // Relaxed: under the mutex (readers of `len` take snapshots).
            f.store(v, Ordering::Relaxed);
        }
    }

    /// Holding the mutex taken over from a dead holder: finish its commit if it was applying one.
    #[cold]
    fn replay(&self) {
        let h = self.hdr;
        if h.pending.load(Ordering::Acquire) == 1 {
            let log = [0, 1, 2, 3, 4].map(|i| h.log[i].load(Ordering::Relaxed));
            self.apply(log);
            h.pending.store(0, Ordering::Release);
        }
    }

    // ----- ring bytes ---------------------------------------------------------------------------------

    fn write_ring(&self, at: u64, bytes: &[u8]) {
        let size = self.ring_size() as usize;
        let at = (at % size as u64) as usize;
        let first = bytes.len().min(size - at);
        // SAFETY: `at + first <= size <= ring_len` and the rest wraps to the start (`bytes.len() <= size`,
        // checked by callers); the mutex is held, so no other process touches these bytes meanwhile.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ring.add(at), first);
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), self.ring, bytes.len() - first);
        }
    }

    fn read_ring(&self, at: u64, out: &mut [u8]) {
        let size = self.ring_size() as usize;
        let at = (at % size as u64) as usize;
        let first = out.len().min(size - at);
        // SAFETY: as in `write_ring`.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ring.add(at), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(self.ring, out.as_mut_ptr().add(first), out.len() - first);
        }
    }

    /// Whether a record of `len` payload bytes can ever fit.
    pub fn fits_at_all(&self, len: usize) -> bool {
        (len as u64).saturating_add(RECORD_HEADER as u64) <= self.ring_size()
    }

    fn has_room(&self, f: &Fields, record: u64) -> bool {
        let max = self.max();
        f[2] + record <= self.ring_size() && (max == 0 || f[3] - f[4] < max)
    }

    /// Wake every pusher: room was made, and a pusher whose record does not fit must not swallow the
    /// wake-up that a smaller one could use.
    fn room_made(&self) {
        self.hdr.not_full.broadcast();
    }

    // ----- operations ----------------------------------------------------------------------------------

    /// One blocking step of a push of `bytes` (which must satisfy [`QueueRef::fits_at_all`]): waits while
    /// the queue is full (unless `non_block`: then `Full`). Locks and unlocks within the call, so it can
    /// simply be called again after `Interrupted`; on any outcome but `Done(Pushed)` nothing was enqueued.
    #[cold]
    pub fn push_step(
        &self,
        me: Owner,
        bytes: &[u8],
        non_block: bool,
        deadline: Option<Deadline>,
        interruptible: bool,
    ) -> Wait<PushOutcome> {
        if let Some(out) = self.lock(me, deadline, interruptible).stop() {
            return out;
        }
        loop {
            if let Some(out) = self.push_locked(me, bytes, non_block) {
                return Wait::Done(out);
            }
            if let Some(out) = self.wait_on(&self.hdr.not_full, me, deadline, interruptible) {
                return out;
            }
        }
    }

    /// A push that never sleeps (for the caller's fast path, with the GVL held): `None` if the lock is
    /// busy, or the queue full and `non_block` false.
    #[inline]
    pub fn try_push(&self, me: Owner, bytes: &[u8], non_block: bool) -> Option<PushOutcome> {
        if !self.try_lock(me) {
            return None;
        }
        let out = self.push_locked(me, bytes, non_block);
        if out.is_none() {
            self.unlock(me);
        }
        out
    }

    /// Holding the mutex: push if there is room (and unlock), or say why not (and unlock); `None` (still
    /// locked) if the caller should wait.
    fn push_locked(&self, me: Owner, bytes: &[u8], non_block: bool) -> Option<PushOutcome> {
        let record = (RECORD_HEADER + bytes.len()) as u64;
        let f = self.fields();
        let room = self.has_room(&f, record);
        // In Thread::SizedQueue#push's order: full and `non_block` is "full" even when closed; else closed
        // is "closed" whether full or not.
        if !room && non_block {
            self.unlock(me);
            return Some(PushOutcome::Full);
        }
        if self.is_closed() {
            self.unlock(me);
            return Some(PushOutcome::Closed);
        }
        if !room {
            return None;
        }
        self.write_ring(f[1], &(bytes.len() as u32).to_le_bytes());
        self.write_ring(f[1] + RECORD_HEADER as u64, bytes);
        let seq = f[3].wrapping_add(1);
        self.commit([f[0], (f[1] + record) % self.ring_size(), f[2] + record, seq, f[4]]);
        self.hdr.not_empty.signal();
        self.unlock(me);
        Some(PushOutcome::Pushed(Pushed { seq, len: record }))
    }

    /// Take the mutex if it is free, without sleeping (a dead holder is the slow path's business).
    #[inline]
    fn try_lock(&self, me: Owner) -> bool {
        self.hdr.mutex.try_lock(me)
    }

    /// One blocking step of a pop: waits while the queue is empty and open (unless `non_block`). Locks and
    /// unlocks within the call; on any outcome but `Done(Item)` nothing was removed.
    #[cold]
    pub fn pop_step(
        &self,
        me: Owner,
        non_block: bool,
        deadline: Option<Deadline>,
        interruptible: bool,
    ) -> Wait<PopOutcome> {
        if let Some(out) = self.lock(me, deadline, interruptible).stop() {
            return out;
        }
        loop {
            if let Some(out) = self.pop_locked(me, non_block) {
                return Wait::Done(out);
            }
            if let Some(out) = self.wait_on(&self.hdr.not_empty, me, deadline, interruptible) {
                return out;
            }
        }
    }

    /// A pop that never sleeps (for the caller's fast path, with the GVL held): `None` if the lock is busy,
    /// or the queue empty and open and `non_block` false.
    #[inline]
    pub fn try_pop(&self, me: Owner, non_block: bool) -> Option<PopOutcome> {
        if !self.try_lock(me) {
            return None;
        }
        let out = self.pop_locked(me, non_block);
        if out.is_none() {
            self.unlock(me);
        }
        out
    }

    /// Holding the mutex: pop if there is a record, or say why not (and unlock); `None` (still locked) if
    /// the caller should wait.
    fn pop_locked(&self, me: Owner, non_block: bool) -> Option<PopOutcome> {
        let f = self.fields();
        if f[3] > f[4] {
            let mut len = [0u8; RECORD_HEADER];
            self.read_ring(f[0], &mut len);
            // Clamped: a record never exceeds what is used (so never the ring), even if the ring were
            // scribbled on.
            let n = u64::from(u32::from_le_bytes(len)).min(f[2].saturating_sub(RECORD_HEADER as u64));
            let mut item = vec![0u8; n as usize];
            self.read_ring(f[0] + RECORD_HEADER as u64, &mut item);
            let record = (RECORD_HEADER as u64 + n).min(f[2]);
            self.commit([(f[0] + record) % self.ring_size(), f[1], f[2] - record, f[3], f[4] + 1]);
            self.room_made();
            self.unlock(me);
            return Some(PopOutcome::Item(item));
        }
        if non_block || self.is_closed() {
            self.unlock(me);
            // As Thread::Queue#pop(true): "empty" even when closed.
            return Some(if non_block { PopOutcome::Empty } else { PopOutcome::ClosedEmpty });
        }
        None
    }

    /// Holding the mutex: wait on `cv` (unlocking meanwhile) and lock again. `None`: locked again, check
    /// the state; `Some(outcome)`: stop, the mutex not held.
    fn wait_on<T>(
        &self,
        cv: &RawCondvar,
        me: Owner,
        deadline: Option<Deadline>,
        interruptible: bool,
    ) -> Option<Wait<T>> {
        let ticket = cv.begin_wait();
        self.unlock(me);
        // Bounded: a wake-up taken by a process killed before it acted on it (or owed by one killed
        // before it signalled, after its commit) is made up for by looking at the queue every SLICE.
        let woken = match cv.wait_bounded(ticket, deadline, interruptible) {
            Wait::Done(woken) => woken,
            Wait::TimedOut => return Some(Wait::TimedOut),
            Wait::Interrupted => {
                cv.abandon_wait();
                return Some(Wait::Interrupted);
            }
            Wait::Failed(e) => {
                cv.abandon_wait();
                return Some(Wait::Failed(e));
            }
        };
        match self.lock(me, deadline, interruptible) {
            Wait::Done(()) => None,
            other => {
                if woken {
                    cv.signal(); // the wake-up we took is passed on
                }
                Some(other.stop().unwrap_or(Wait::TimedOut))
            }
        }
    }

    /// Take back a push whose caller was interrupted right after it (the interrupt is raised instead), if
    /// the record is still the newest and nobody popped it. True if taken back.
    pub fn retract(&self, me: Owner, p: Pushed) -> bool {
        if !self.lock_uninterruptibly(me) {
            return false;
        }
        let f = self.fields();
        let size = self.ring_size();
        // `pushes` still ours: nothing pushed (or put back by `unshift`, which counts as a push) since.
        let ok = f[3] == p.seq && f[4] < p.seq && f[2] >= p.len && p.len <= size;
        if ok {
            self.commit([f[0], (f[1] + size - p.len % size) % size, f[2] - p.len, f[3] - 1, f[4]]);
            self.room_made();
        }
        self.unlock(me);
        ok
    }

    /// Put a popped record back at the front (its caller was interrupted right after the pop, or could not
    /// load it), if there is room: there is, unless pushers filled the space it left meanwhile (then it is
    /// lost: false). It may take the length one over `max`, and it goes before records pushed earlier that
    /// another consumer has popped meanwhile. Counts as a push (so no earlier push can be retracted).
    pub fn unshift(&self, me: Owner, bytes: &[u8]) -> bool {
        let record = (RECORD_HEADER as u64).saturating_add(bytes.len() as u64);
        if bytes.len() > u32::MAX as usize || record > self.ring_size() || !self.lock_uninterruptibly(me) {
            return false;
        }
        let f = self.fields();
        let size = self.ring_size();
        let ok = f[2] + record <= size;
        if ok {
            let head = (f[0] + size - record % size) % size;
            self.write_ring(head, &(bytes.len() as u32).to_le_bytes());
            self.write_ring(head + RECORD_HEADER as u64, bytes);
            self.commit([head, f[1], f[2] + record, f[3].wrapping_add(1), f[4]]);
            self.hdr.not_empty.signal();
        }
        self.unlock(me);
        ok
    }

    /// Remove every record (one blocking step: it may wait for the lock).
    pub fn clear(&self, me: Owner, interruptible: bool) -> Wait<()> {
        if let Some(out) = self.lock(me, None, interruptible).stop() {
            return out;
        }
        let f = self.fields();
        self.commit([f[1], f[1], 0, f[3], f[3]]);
        self.room_made();
        self.unlock(me);
        Wait::Done(())
    }

    /// Close: pushes fail from now on, poppers drain what is left and then get `ClosedEmpty` (one blocking
    /// step: it may wait for the lock).
    pub fn close(&self, me: Owner, interruptible: bool) -> Wait<()> {
        if let Some(out) = self.lock(me, None, interruptible).stop() {
            return out;
        }
        // Release: a popper that sees it also sees the last records (it takes the mutex anyway).
        self.hdr.closed.store(1, Ordering::Release);
        self.hdr.not_empty.broadcast();
        self.hdr.not_full.broadcast();
        self.unlock(me);
        Wait::Done(())
    }
}

trait Stop<T> {
    /// `None` to go on (locked), or the outcome to return.
    fn stop(self) -> Option<Wait<T>>;
}

impl<T> Stop<T> for Wait<()> {
    fn stop(self) -> Option<Wait<T>> {
        match self {
            Wait::Done(()) => None,
            Wait::TimedOut => Some(Wait::TimedOut),
            Wait::Interrupted => Some(Wait::Interrupted),
            Wait::Failed(e) => Some(Wait::Failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_fits() {
        assert!(std::mem::size_of::<QueueHeader>() <= QUEUE_HEADER);
    }

    /// The offsets tests/queue_regressions.rs writes at, and `format` where format 1 had zero padding.
    #[test]
    fn the_header_layout() {
        use std::mem::offset_of;
        let at = [
            offset_of!(QueueHeader, format),
            offset_of!(QueueHeader, not_empty),
            offset_of!(QueueHeader, not_full),
            offset_of!(QueueHeader, head),
            offset_of!(QueueHeader, used),
            offset_of!(QueueHeader, pushes),
            offset_of!(QueueHeader, pops),
            offset_of!(QueueHeader, closed),
        ];
        assert_eq!(at, [24, 64, 320, 576, 592, 600, 608, 680]);
    }
}
