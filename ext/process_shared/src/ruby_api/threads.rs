//! The calling Ruby thread's identity, and the locks each thread holds (so that a thread that ends holding
//! one is noticed by its own process, which then marks the lock for every other acquirer).
//!
//! The thread token is the Ruby thread's `object_id`: unique in the process and never reused (unlike the
//! native thread id, which Ruby's thread cache hands to the next Ruby thread, or the object's address,
//! which the GC recycles). Computing it takes a table lookup, so it is cached per native thread, keyed by
//! the thread object *and* the GC count: a thread object can only be freed (and its address reused) by a
//! GC, after which the cache is refreshed.
//!
//! Held locks: `Mutex#lock`/`#try_lock` and a monitor's outermost entry record the lock's address in a
//! per-native-thread list; unlocking removes it (and a condition wait moves it aside while it has released
//! the lock: [`suspend`], [`resume`]). Every thread ending, normally or by an exception or `Thread#kill`,
//! calls [`thread_ended`] (lib/process_shared/fork.rb: an `ensure` around each thread's block, since Ruby's
//! `TracePoint(:thread_end)` fires only on a normal end), which marks what is left `OWNER_DIED`. (`Mutex#synchronize`
//! needs no entry: its block always unwinds through the unlock.) The memory behind a recorded address stays
//! mapped because closing or collecting a lock that a thread of this process holds leaks its mapping.
//!
//! Read locks of a `ReadWriteLock` are recorded per thread too, with a count: releasing one the thread does
//! not hold is an error, and a thread that ends holding some gives them back.

use std::cell::{Cell, RefCell};

use magnus::{rb_sys::FromRawValue, Integer, Value};
use process_shared_core::sync::{Owner, RawMutex, RawRwLock};

thread_local! {
    /// (thread VALUE, GC count, token) of the Ruby thread last seen on this native thread.
    static CURRENT: Cell<(u64, usize, u64)> = const { Cell::new((0, usize::MAX, 0)) };
    /// Addresses of the `RawMutex`es held through `lock`/`enter` by the Ruby thread on this native thread.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// Records moved out of `HELD` by [`suspend`] while a condition wait has released the lock (so a lock
    /// closed meanwhile is never touched by [`thread_ended`]); [`resume`] moves one back.
    static SUSPENDED: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// Read locks held by that thread: (`RawRwLock` address, reader slot, holds).
    static READS: RefCell<Vec<(usize, usize, u32)>> = const { RefCell::new(Vec::new()) };
}

/// The calling Ruby thread's identity: this process (its cached owner id and pid) and the thread's token.
/// Call only from a Ruby thread holding the GVL.
#[inline]
pub fn me() -> Owner {
    // SAFETY: called with the GVL held from a Ruby method: both calls only read VM state.
    let (thread, gc) = unsafe { (rb_sys::rb_thread_current() as u64, rb_sys::rb_gc_count() as usize) };
    let token = CURRENT.with(|c| {
        let (t, g, token) = c.get();
        if t == thread && g == gc {
            token
        } else {
            let token = object_id(thread);
            c.set((thread, gc, token));
            token
        }
    });
    Owner::current(token)
}

#[cold]
fn object_id(thread: u64) -> u64 {
    // SAFETY: `thread` is the live current thread object; rb_obj_id returns an Integer and does not raise.
    let id = unsafe { Value::from_raw(rb_sys::rb_obj_id(thread as rb_sys::VALUE)) };
    // object_ids are positive Fixnums in practice; never 0, which means "no owner".
    Integer::from_value(id).and_then(|i| i.to_u64().ok()).filter(|&t| t != 0).unwrap_or(thread)
}

/// Record that the calling thread now holds `raw` (after `lock`, `try_lock`, a monitor's first `enter`).
#[inline]
pub fn hold(raw: &RawMutex) {
    HELD.with(|h| h.borrow_mut().push(raw as *const RawMutex as usize));
}

/// Forget one record of `raw` for the calling thread (after the unlock that matches a `hold`).
#[inline]
pub fn release(raw: &RawMutex) {
    HELD.with(|h| take_record(&mut h.borrow_mut(), raw));
}

/// A condition wait has released `raw`: move the calling thread's record of it (if any: `synchronize`
/// keeps none) aside, so that a thread ending while it waits does not touch a lock it does not hold.
pub fn suspend(raw: &RawMutex) {
    if HELD.with(|h| take_record(&mut h.borrow_mut(), raw)) {
        SUSPENDED.with(|s| s.borrow_mut().push(raw as *const RawMutex as usize));
    }
}

/// The condition wait has taken `raw` back: restore the record [`suspend`] moved aside, if there was one.
pub fn resume(raw: &RawMutex) {
    if SUSPENDED.with(|s| take_record(&mut s.borrow_mut(), raw)) {
        hold(raw);
    }
}

/// Remove the latest record of `raw` from `list`; whether there was one.
fn take_record(list: &mut Vec<usize>, raw: &RawMutex) -> bool {
    let addr = raw as *const RawMutex as usize;
    list.iter().rposition(|&a| a == addr).map(|i| list.swap_remove(i)).is_some()
}

/// Record one more read hold of `rw` (reader slot `slot`) by the calling thread.
pub fn hold_read(rw: &RawRwLock, slot: usize) {
    let addr = rw as *const RawRwLock as usize;
    READS.with(|r| {
        let mut r = r.borrow_mut();
        match r.iter_mut().find(|e| e.0 == addr) {
            Some(e) => e.2 += 1,
            None => r.push((addr, slot, 1)),
        }
    });
}

/// How many read holds of `rw` the calling thread has.
pub fn read_holds(rw: &RawRwLock) -> u32 {
    let addr = rw as *const RawRwLock as usize;
    READS.with(|r| r.borrow().iter().find(|e| e.0 == addr).map_or(0, |e| e.2))
}

/// The reader slot of the calling thread's read holds of `rw`, if it has any.
pub fn read_slot(rw: &RawRwLock) -> Option<usize> {
    let addr = rw as *const RawRwLock as usize;
    READS.with(|r| r.borrow().iter().find(|e| e.0 == addr).map(|e| e.1))
}

/// Forget one read hold of `rw` by the calling thread; the reader slot to release it in, or `None` if the
/// thread holds none.
pub fn release_read(rw: &RawRwLock) -> Option<usize> {
    let addr = rw as *const RawRwLock as usize;
    READS.with(|r| {
        let mut r = r.borrow_mut();
        let i = r.iter().position(|e| e.0 == addr)?;
        let slot = r[i].1;
        r[i].2 -= 1;
        if r[i].2 == 0 {
            r.swap_remove(i);
        }
        Some(slot)
    })
}

/// Called in every Ruby thread as it ends: mark each lock it still holds `OWNER_DIED`, waking a waiter, and
/// give back its read locks (a reader cannot have left anything half-written).
pub fn thread_ended() {
    let me = me();
    let reads = READS.with(|r| std::mem::take(&mut *r.borrow_mut()));
    for (addr, slot, holds) in reads {
        // SAFETY: as for `HELD` below: the lock's mapping stays mapped while a thread of this process
        // holds a read lock on it (closing or collecting it then leaks the mapping).
        let rw = unsafe { &*(addr as *const RawRwLock) };
        for _ in 0..holds {
            rw.release_read(slot);
        }
    }
    SUSPENDED.with(|s| s.borrow_mut().clear()); // locks it had released: not ours to mark
    let held = HELD.with(|h| std::mem::take(&mut *h.borrow_mut()));
    for addr in held {
        // SAFETY: `addr` was recorded from a live `&RawMutex` in a mapping that stays mapped while a thread
        // of this process holds the lock (see the module docs); `mark_owner_died` only acts if we own it.
        let raw = unsafe { &*(addr as *const RawMutex) };
        raw.mark_owner_died(me);
    }
    CURRENT.with(|c| c.set((0, usize::MAX, 0)));
}

/// In a forked child: the forking thread's records are the parent's business.
pub fn after_fork() {
    HELD.with(|h| h.borrow_mut().clear());
    SUSPENDED.with(|s| s.borrow_mut().clear());
    READS.with(|r| r.borrow_mut().clear());
}
