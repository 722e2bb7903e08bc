//! The calling fiber's identity, and the locks each one holds (so that a thread that ends holding one is
//! noticed by its own process, which then marks the lock for every other acquirer).
//!
//! Ownership is per **fiber**, as for `Thread::Mutex` and `Monitor` since Ruby 3.0: a lock taken in one
//! fiber is not owned by another fiber of the same thread (which waits for it, or gets `false` from a
//! `try_lock`). The owner token is the current fiber's `object_id`: unique in the process and never reused
//! (unlike the native thread id, which Ruby's thread cache and its M:N scheduler hand to other Ruby threads,
//! or the object's address, which the GC recycles). Computing it takes a table lookup, so the last fiber
//! seen is cached per native thread, keyed by the fiber object *and* the GC count: an object can only be
//! freed (and its address reused) by a GC, after which the cache is refreshed. Under M:N threads
//! (`RUBY_MN_THREADS=1`) a native thread runs many Ruby threads: the key still tells them apart.
//!
//! Held locks: `Mutex#lock`/`#try_lock` and a monitor's outermost entry record the lock's address with the
//! holding fiber and its Ruby thread in one per-process table; unlocking removes the record (and a
//! condition wait moves it aside while it has released the lock: [`suspend`], [`resume`]). Every Ruby
//! thread ending, normally or by an exception or `Thread#kill`, calls [`thread_ended`]
//! (lib/process_shared/fork.rb: an `ensure` around each thread's block, since Ruby's `TracePoint(:thread_end)`
//! fires only on a normal end), which marks what its fibers still hold `OWNER_DIED` (Ruby likewise releases
//! the `Thread::Mutex`es of a thread's fibers when the thread ends). (`Mutex#synchronize` needs no record:
//! its block always unwinds through the unlock.) The memory behind a recorded address stays mapped because
//! closing or collecting a lock that a thread of this process holds leaks its mapping; a named object is
//! mapped once per process (`named::share`), so an address means the object, whichever handle it came
//! through.
//!
//! Read locks of a `ReadWriteLock` are recorded per fiber too, with a count: releasing one the fiber does
//! not hold is an error, and a thread that ends holding some gives them back.
//!
//! The table is process-wide, not per native thread (which M:N threads share), and is only touched with the
//! GVL held (every caller is a Ruby method, or a forked child's only thread), by code that never calls back
//! into Ruby: that is its lock. The extension is not Ractor-safe, so no other Ractor calls in.

use std::cell::{Cell, UnsafeCell};

use magnus::{rb_sys::FromRawValue, Integer, Value};
use process_shared_core::sync::{Owner, RawMutex, RawRwLock};

thread_local! {
    /// (fiber VALUE, GC count, fiber token, thread token) of the fiber last seen on this native thread.
    static CURRENT: Cell<(u64, usize, u64, u64)> = const { Cell::new((0, usize::MAX, 0, 0)) };
}

/// What one record says: a lock held, a lock released by a condition wait in progress, or read holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum What {
    /// A `RawMutex` held through `lock`/`try_lock`/`enter` (its address).
    Held(usize),
    /// A `RawMutex` a condition wait released (moved out of `Held` so that a thread ending meanwhile does
    /// not touch a lock it does not hold, or that was closed); `resume` moves it back.
    Suspended(usize),
    /// `holds` read holds of a `RawRwLock` (its address) in reader slot `slot`.
    Reads { rw: usize, slot: usize, holds: u32 },
}

#[derive(Clone, Copy)]
struct Record {
    /// The holding fiber's token (the lock's owner token).
    fiber: u64,
    /// Its Ruby thread's token (whose end marks the record).
    thread: u64,
    what: What,
}

/// The per-process table of records (see the module docs for why the GVL is its lock).
struct Records(UnsafeCell<Vec<Record>>);

// SAFETY: only accessed through `with_records`, by a thread holding the GVL (see the module docs).
unsafe impl Sync for Records {}

static RECORDS: Records = Records(UnsafeCell::new(Vec::new()));

/// Run `f` on the table. Call only with the GVL held; `f` must not call into Ruby (nor `with_records`).
#[inline]
fn with_records<R>(f: impl FnOnce(&mut Vec<Record>) -> R) -> R {
    // SAFETY: the GVL serialises every caller, and `f` neither calls Ruby (which could switch threads) nor
    // re-enters: this is the only reference to the table for the duration of the call.
    f(unsafe { &mut *RECORDS.0.get() })
}

/// The calling fiber's identity: this process (its cached owner id and pid) and the fiber's token.
/// Call only from a Ruby thread holding the GVL.
#[inline]
pub fn me() -> Owner {
    Owner::current(tokens().0)
}

/// (fiber token, thread token) of the caller. Call only with the GVL held.
#[inline]
fn tokens() -> (u64, u64) {
    // SAFETY: called with the GVL held from a Ruby method: these calls only read VM state (the root fiber's
    // object is made on first use, which allocates but does not raise in practice).
    let (fiber, gc) = unsafe { (rb_sys::rb_fiber_current() as u64, rb_sys::rb_gc_count() as usize) };
    CURRENT.with(|c| {
        let (f, g, fiber_token, thread_token) = c.get();
        if f == fiber && g == gc {
            (fiber_token, thread_token)
        } else {
            // SAFETY: as above.
            let thread = unsafe { rb_sys::rb_thread_current() as u64 };
            let tokens = (object_id(fiber), object_id(thread));
            c.set((fiber, gc, tokens.0, tokens.1));
            tokens
        }
    })
}

#[cold]
fn object_id(obj: u64) -> u64 {
    // SAFETY: `obj` is the live current fiber or thread; rb_obj_id returns an Integer and does not raise.
    let id = unsafe { Value::from_raw(rb_sys::rb_obj_id(obj as rb_sys::VALUE)) };
    // object_ids are positive Fixnums in practice; never 0, which means "no owner".
    Integer::from_value(id).and_then(|i| i.to_u64().ok()).filter(|&t| t != 0).unwrap_or(obj)
}

fn addr_of<T>(x: &T) -> usize {
    x as *const T as usize
}

/// Record that the calling fiber now holds `raw` (after `lock`, `try_lock`, a monitor's first `enter`).
#[inline]
pub fn hold(raw: &RawMutex) {
    let (fiber, thread) = tokens();
    with_records(|r| r.push(Record { fiber, thread, what: What::Held(addr_of(raw)) }));
}

/// Forget one record of `raw` for the calling fiber (after the unlock that matches a `hold`).
#[inline]
pub fn release(raw: &RawMutex) {
    let fiber = tokens().0;
    with_records(|r| take_record(r, fiber, What::Held(addr_of(raw))));
}

/// A condition wait has released `raw`: move the calling fiber's record of it (if any: `synchronize`
/// keeps none) aside, so that a thread ending while it waits does not touch a lock it does not hold.
pub fn suspend(raw: &RawMutex) {
    let (fiber, thread) = tokens();
    with_records(|r| {
        if take_record(r, fiber, What::Held(addr_of(raw))) {
            r.push(Record { fiber, thread, what: What::Suspended(addr_of(raw)) });
        }
    });
}

/// The condition wait has taken `raw` back: restore the record [`suspend`] moved aside, if there was one.
pub fn resume(raw: &RawMutex) {
    let (fiber, thread) = tokens();
    with_records(|r| {
        if take_record(r, fiber, What::Suspended(addr_of(raw))) {
            r.push(Record { fiber, thread, what: What::Held(addr_of(raw)) });
        }
    });
}

/// Remove the latest record of `what` by `fiber` from `list`; whether there was one.
fn take_record(list: &mut Vec<Record>, fiber: u64, what: What) -> bool {
    list.iter().rposition(|e| e.fiber == fiber && e.what == what).map(|i| list.swap_remove(i)).is_some()
}

/// The calling fiber's read-hold record of `rw`: (index in the table, slot, holds).
fn find_reads(list: &[Record], fiber: u64, rw: &RawRwLock) -> Option<(usize, usize, u32)> {
    let addr = addr_of(rw);
    list.iter().enumerate().find_map(|(i, e)| match e.what {
        What::Reads { rw, slot, holds } if e.fiber == fiber && rw == addr => Some((i, slot, holds)),
        _ => None,
    })
}

/// Record one more read hold of `rw` (reader slot `slot`) by the calling fiber.
pub fn hold_read(rw: &RawRwLock, slot: usize) {
    let (fiber, thread) = tokens();
    with_records(|r| match find_reads(r, fiber, rw) {
        Some((i, slot, holds)) => r[i].what = What::Reads { rw: addr_of(rw), slot, holds: holds + 1 },
        None => r.push(Record { fiber, thread, what: What::Reads { rw: addr_of(rw), slot, holds: 1 } }),
    });
}

/// How many read holds of `rw` the calling fiber has.
pub fn read_holds(rw: &RawRwLock) -> u32 {
    let fiber = tokens().0;
    with_records(|r| find_reads(r, fiber, rw).map_or(0, |(_, _, holds)| holds))
}

/// The reader slot of the calling fiber's read holds of `rw`, if it has any.
pub fn read_slot(rw: &RawRwLock) -> Option<usize> {
    let fiber = tokens().0;
    with_records(|r| find_reads(r, fiber, rw).map(|(_, slot, _)| slot))
}

/// Forget one read hold of `rw` by the calling fiber; the reader slot to release it in, or `None` if the
/// fiber holds none.
pub fn release_read(rw: &RawRwLock) -> Option<usize> {
    let fiber = tokens().0;
    with_records(|r| {
        let (i, slot, holds) = find_reads(r, fiber, rw)?;
        if holds == 1 {
            r.swap_remove(i);
        } else {
            r[i].what = What::Reads { rw: addr_of(rw), slot, holds: holds - 1 };
        }
        Some(slot)
    })
}

/// Called in every Ruby thread as it ends: mark each lock its fibers still hold `OWNER_DIED`, waking a
/// waiter, and give back their read locks (a reader cannot have left anything half-written).
pub fn thread_ended() {
    let thread = tokens().1;
    let mut mine = with_records(|r| {
        let (mine, others) = std::mem::take(r).into_iter().partition(|e| e.thread == thread);
        *r = others;
        mine
    });
    // Read holds first, then the locks (as before: a writer woken by the marking finds the readers gone).
    mine.sort_by_key(|e| !matches!(e.what, What::Reads { .. }));
    for e in mine {
        match e.what {
            What::Reads { rw, slot, holds } => {
                // SAFETY: the lock's mapping stays mapped while a thread of this process holds a read lock
                // on it (closing or collecting it then leaks the mapping).
                let rw = unsafe { &*(rw as *const RawRwLock) };
                for _ in 0..holds {
                    rw.release_read(slot);
                }
            }
            What::Held(addr) => {
                // SAFETY: `addr` was recorded from a live `&RawMutex` in a mapping that stays mapped while a
                // thread of this process holds the lock (see the module docs); `mark_owner_died` only acts
                // if that fiber owns it.
                let raw = unsafe { &*(addr as *const RawMutex) };
                raw.mark_owner_died(Owner::current(e.fiber));
            }
            What::Suspended(_) => {} // a lock it had released: not ours to mark
        }
    }
    CURRENT.with(|c| c.set((0, usize::MAX, 0, 0)));
}

/// In a forked child: the records are the parent's business (its threads hold those locks).
pub fn after_fork() {
    with_records(Vec::clear);
}
