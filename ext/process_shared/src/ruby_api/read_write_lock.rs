//! `ProcessShared::ReadWriteLock`: many readers or one writer, across processes; writers are not starved;
//! a dead writer is reported (`OwnerDeadError`) to the next writer and, until one came, to every reader; a
//! dead reader's holds are released.
//! concurrent-ruby's method names. The lock takes a 64 KiB mapping of its own (its reader slots).

use std::cell::Cell;

use magnus::{prelude::*, typed_data::Obj, Error, RClass, RModule, Ruby, Value};
use process_shared_core::sync::{Acquired, Owner, RawRwLock, READER_SLOTS};
use process_shared_core::sys::owner::current_id;

use super::mutex;
use super::shared::{self, NamedSpec, Pin, Region};
use super::threads::{self, me};
use crate::helpers::args::{self, Patience};
use crate::helpers::errors;
use crate::helpers::nogvl;

#[magnus::wrap(class = "ProcessShared::ReadWriteLock", free_immediately, size)]
pub struct ReadWriteLock {
    region: Region,
    /// (pid, index) of this process's reader slot, once claimed.
    slot: Cell<(u64, usize)>,
}

/// The lock, kept mapped while a call uses it.
struct Held<'a>(Pin<'a>);

impl std::ops::Deref for Held<'_> {
    type Target = RawRwLock;
    fn deref(&self) -> &RawRwLock {
        // SAFETY: the region was created for a `RawRwLock` (zeroed is valid) and stays mapped while pinned.
        unsafe { self.0.as_ref::<RawRwLock>() }
    }
}

impl ReadWriteLock {
    shared::constructors!(ReadWriteLock);

    fn build(
        ruby: &Ruby,
        class: RClass,
        argv: &[Value],
        spec: Option<&NamedSpec>,
    ) -> Result<Obj<ReadWriteLock>, Error> {
        args::arity(ruby, argv, 0, 0)?;
        let what = "ProcessShared::ReadWriteLock";
        let region = match spec {
            None => Region::anonymous(ruby, RawRwLock::SIZE, what)?,
            Some(spec) => Region::named(ruby, spec, RawRwLock::SIZE, what, |_| {})?,
        };
        Ok(ruby.obj_wrap_as(ReadWriteLock { region, slot: Cell::new((0, 0)) }, class))
    }

    fn lock(&self, ruby: &Ruby) -> Result<Held<'_>, Error> {
        Ok(Held(self.region.pin(ruby)?))
    }

    /// This process's reader slot, claimed on first use (and again in a forked child).
    fn reader_slot(&self, ruby: &Ruby, rw: &RawRwLock, me: Owner) -> Result<usize, Error> {
        let (id, i) = self.slot.get();
        if id == me.id && rw.slot_is(i, me) {
            return Ok(i);
        }
        let i = rw.claim_slot(me).map_err(|_| {
            let what = format!("ReadWriteLock: all {READER_SLOTS} reader slots belong to live processes");
            errors::errno(ruby, libc::EAGAIN, &what)
        })?;
        self.slot.set((me.id, i));
        Ok(i)
    }

    /// Take a read lock for the calling thread: `None` if `patience` ran out.
    fn take_read(ruby: &Ruby, rb_self: &Self, rw: &RawRwLock, patience: Patience) -> Result<Option<Acquired>, Error> {
        let me = me();
        if rw.is_write_owned_by(me) {
            return Err(errors::process(ruby, "deadlock; this thread holds the write lock"));
        }
        let i = rb_self.reader_slot(ruby, rw, me)?;
        // Read locks are per thread and re-entrant: a thread holding one takes another at once, even past a
        // waiting writer (which waits for this thread's hold, so making it wait would deadlock both).
        if let Some(held) = threads::read_slot(rw).filter(|&h| h == i) {
            let acquired = rw.read_again(held);
            threads::hold_read(rw, held);
            return Ok(Some(acquired));
        }
        let acquired = match rw.try_read_recovering(i, me) {
            Some(a) => a,
            None => match patience {
                Patience::NoWait => return Ok(None),
                Patience::Wait(deadline) => {
                    match nogvl::wait(ruby, || rw.read_slow(i, me, deadline, true), |_| rw.release_read(i))? {
                        Some(a) => a,
                        None => return Ok(None),
                    }
                }
            },
        };
        threads::hold_read(rw, i);
        Ok(Some(acquired))
    }

    /// Take the write lock for the calling thread: `None` if `patience` ran out.
    fn take_write(ruby: &Ruby, rw: &RawRwLock, patience: Patience) -> Result<Option<Acquired>, Error> {
        let me = me();
        let m = rw.write_mutex();
        if rw.is_write_owned_by(me) {
            return Err(errors::process(ruby, "deadlock; write lock already held by this thread"));
        }
        if threads::read_holds(rw) > 0 {
            return Err(errors::process(ruby, "deadlock; this thread holds a read lock (release it first)"));
        }
        let slow = |deadline| m.lock_slow(me, deadline, true);
        let Some(acquired) = nogvl::acquire(ruby, m.try_acquire(me), patience, slow, |a| mutex::give_back(m, me, a))?
        else {
            return Ok(None);
        };
        if !rw.begin_write() {
            // Readers are inside: wait for them to leave, or give everything back.
            let abort = || {
                rw.open_gate();
                mutex::give_back(m, me, acquired);
            };
            let drained = match patience {
                Patience::NoWait => Ok(None),
                Patience::Wait(deadline) => nogvl::wait(ruby, || rw.drain_slow(me, deadline, true), |()| {}),
            };
            match drained {
                Ok(Some(())) => {}
                Ok(None) => {
                    abort();
                    return Ok(None);
                }
                Err(e) => {
                    abort();
                    return Err(e);
                }
            }
        }
        rw.write_acquired();
        threads::hold(m);
        Ok(Some(acquired))
    }

    fn acquire_read_lock(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        let rw = rb_self.lock(ruby)?;
        match Self::take_read(ruby, rb_self, &rw, Patience::FOREVER)? {
            Some(Acquired::OwnerDied(pid)) => Err(errors::writer_dead(ruby, pid)),
            _ => Ok(true),
        }
    }

    fn try_read_lock(ruby: &Ruby, rb_self: &Self, argv: &[Value]) -> Result<bool, Error> {
        let patience = Patience::of_try(ruby, argv)?;
        let rw = rb_self.lock(ruby)?;
        if rw.is_write_owned_by(me()) {
            return Ok(false); // would block forever: a try_* answers that, as try_write_lock does
        }
        match Self::take_read(ruby, rb_self, &rw, patience)? {
            Some(Acquired::OwnerDied(pid)) => Err(errors::writer_dead(ruby, pid)),
            held => Ok(held.is_some()),
        }
    }

    fn release_read_lock(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        let rw = rb_self.lock(ruby)?;
        let i = threads::release_read(&rw)
            .ok_or_else(|| errors::process(ruby, "attempt to release a read lock not held by this thread"))?;
        rw.release_read(i);
        Ok(true)
    }

    fn acquire_write_lock(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        let rw = rb_self.lock(ruby)?;
        match Self::take_write(ruby, &rw, Patience::FOREVER)? {
            Some(Acquired::OwnerDied(pid)) => Err(errors::owner_dead(ruby, pid)),
            _ => Ok(true),
        }
    }

    fn try_write_lock(ruby: &Ruby, rb_self: &Self, argv: &[Value]) -> Result<bool, Error> {
        let patience = Patience::of_try(ruby, argv)?;
        let rw = rb_self.lock(ruby)?;
        if rw.is_write_owned_by(me()) || threads::read_holds(&rw) > 0 {
            return Ok(false); // would block forever (as Thread::Mutex#try_lock answers for its owner)
        }
        match Self::take_write(ruby, &rw, patience)? {
            Some(Acquired::OwnerDied(pid)) => Err(errors::owner_dead(ruby, pid)),
            held => Ok(held.is_some()),
        }
    }

    fn release_write_lock(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        let rw = rb_self.lock(ruby)?;
        Self::leave_write(ruby, &rw)?;
        Ok(true)
    }

    fn leave_write(ruby: &Ruby, rw: &RawRwLock) -> Result<(), Error> {
        rw.release_write(me())
            .map_err(|_| errors::process(ruby, "attempt to release a write lock not held by this thread"))?;
        threads::release(rw.write_mutex());
        Ok(())
    }

    /// `with_read_lock { }`: the block's value. A dead writer's `OwnerDeadError` (its update not repaired
    /// yet) is raised without running the block, the read lock given back.
    fn with_read_lock(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        if !ruby.block_given() {
            return Err(Error::new(ruby.exception_thread_error(), "must be called with a block"));
        }
        let rw = rb_self.lock(ruby)?;
        let acquired = Self::take_read(ruby, rb_self, &rw, Patience::FOREVER)?;
        let before = threads::read_holds(&rw);
        if let Some(Acquired::OwnerDied(pid)) = acquired {
            Self::give_read_back(&rw, before);
            return Err(errors::writer_dead(ruby, pid));
        }
        let out = ruby.yield_values::<(), Value>(());
        // The block may have released it itself: only give back what is still ours.
        Self::give_read_back(&rw, before);
        out
    }

    /// Release one read hold if the thread still has `before` of them.
    fn give_read_back(rw: &RawRwLock, before: u32) {
        if threads::read_holds(rw) >= before {
            if let Some(i) = threads::release_read(rw) {
                rw.release_read(i);
            }
        }
    }

    /// `with_write_lock(on_owner_dead: nil) { }`: the block's value. After a take-over from a dead writer,
    /// as `Mutex#synchronize` (see [`mutex::repair`]): `on_owner_dead` runs holding the write lock, else
    /// `OwnerDeadError` is raised after unlocking.
    fn with_write_lock(ruby: &Ruby, rb_self: &Self, argv: &[Value]) -> Result<Value, Error> {
        if !ruby.block_given() {
            return Err(Error::new(ruby.exception_thread_error(), "must be called with a block"));
        }
        let on_owner_dead = args::on_owner_dead(ruby, argv)?;
        let rw = rb_self.lock(ruby)?;
        let acquired = Self::take_write(ruby, &rw, Patience::FOREVER)?;
        if let Some(Acquired::OwnerDied(pid)) = acquired {
            if let Err(e) = mutex::repair(ruby, on_owner_dead, pid) {
                let _ = Self::leave_write(ruby, &rw);
                return Err(e);
            }
        }
        let out = ruby.yield_values::<(), Value>(());
        if rw.is_write_owned_by(me()) {
            let _ = Self::leave_write(ruby, &rw);
        }
        out
    }

    fn is_write_locked(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        Ok(rb_self.lock(ruby)?.is_write_locked())
    }

    fn has_waiters(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        Ok(rb_self.lock(ruby)?.has_waiters())
    }

    /// Whether a thread of this process holds it (then closing or collecting it keeps the mapping, for
    /// the thread-end hook).
    fn held_here(&self) -> bool {
        let Some(p) = self.region.mapped_ptr() else { return false };
        // SAFETY: still mapped; a `RawRwLock`; read without running Ruby code.
        let rw = unsafe { &*p.cast::<RawRwLock>() };
        let (id, i) = self.slot.get();
        let here = current_id();
        rw.write_mutex().is_held_by_process(here) || (id == here && rw.slot_count(i) > 0)
    }

    fn close(&self) {
        if self.held_here() {
            self.region.leak();
        }
        self.region.close()
    }

    fn is_closed(&self) -> bool {
        self.region.is_closed()
    }

    fn inspect(ruby: &Ruby, rb_self: Obj<Self>) -> String {
        let class = args::class_name(rb_self.as_value());
        let Ok(rw) = rb_self.lock(ruby) else {
            return format!("#<{class} (closed)>");
        };
        let writer = match rw.write_mutex().owner_pid() {
            Some(pid) if rw.is_write_locked() => format!(" writer_pid={pid}"),
            _ => String::new(),
        };
        format!(
            "#<{class} readers={} write_locked={}{writer} waiters={}>",
            rw.readers(),
            rw.is_write_locked(),
            rw.has_waiters()
        )
    }
}

impl Drop for ReadWriteLock {
    fn drop(&mut self) {
        if self.held_here() {
            self.region.leak();
        }
    }
}

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    shared::define_class!(ruby, m, "ReadWriteLock" < ruby.class_object(), ReadWriteLock {
        constructors;
        fn "acquire_read_lock" => acquire_read_lock(0);
        fn "release_read_lock" => release_read_lock(0);
        fn "try_read_lock" => try_read_lock(-1);
        fn "with_read_lock" => with_read_lock(0);
        fn "acquire_write_lock" => acquire_write_lock(0);
        fn "release_write_lock" => release_write_lock(0);
        fn "try_write_lock" => try_write_lock(-1);
        fn "with_write_lock" => with_write_lock(-1);
        fn "write_locked?" => is_write_locked(0);
        fn "has_waiters?" => has_waiters(0);
        fn "close" => close(0);
        fn "closed?" => is_closed(0);
        fn "inspect" => inspect(0);
    });
    Ok(())
}
