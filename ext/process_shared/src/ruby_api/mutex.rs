//! `ProcessShared::Mutex`: a non-re-entrant lock owned by (process, Ruby thread).

use magnus::{prelude::*, typed_data::Obj, Error, RClass, RModule, Ruby, Value};
use process_shared_core::sync::{Acquired, Owner, RawMutex};

use super::shared::{self, NamedSpec, Primitive, Shared};
use super::threads::{self, me};
use crate::helpers::args::{self, Patience};
use crate::helpers::errors;
use crate::helpers::nogvl;

#[magnus::wrap(class = "ProcessShared::Mutex", free_immediately, size)]
pub struct Mutex {
    pub(crate) sh: Shared<RawMutex>,
}

impl Mutex {
    shared::constructors!(Mutex);

    fn build(ruby: &Ruby, class: RClass, argv: &[Value], spec: Option<&NamedSpec>) -> Result<Obj<Mutex>, Error> {
        args::arity(ruby, argv, 0, 0)?;
        let m = Mutex { sh: Shared::placed(ruby, "ProcessShared::Mutex", spec, |_| {})? };
        Ok(ruby.obj_wrap_as(m, class))
    }

    /// Take the lock for the calling thread, sleeping (GVL released, interruptible) while another holds it.
    /// `Acquired::OwnerDied` means the lock is held now, taken over from a dead owner.
    pub(crate) fn acquire(ruby: &Ruby, raw: &RawMutex) -> Result<Acquired, Error> {
        let me = me();
        // A plain try first: a dead owner is taken over by the slow path (released GVL, interruptible).
        let fast = raw.try_lock(me).then_some(Acquired::Clean);
        if fast.is_none() && raw.is_owned_by(me) {
            return Err(errors::process(ruby, "deadlock; lock already owned by this thread"));
        }
        let slow = |deadline| raw.lock_slow(me, deadline, true);
        Ok(nogvl::acquire(ruby, fast, Patience::FOREVER, slow, |a| give_back(raw, me, a))?.unwrap_or(Acquired::Clean))
    }

    /// Take the lock back after a condition wait, even if the thread is interrupted meanwhile (as
    /// `Thread::Mutex#sleep` does); returns the error to raise once the lock is held: the interrupt's
    /// exception, or `OwnerDeadError` if the lock had to be taken over from a dead owner.
    pub(crate) fn relock(ruby: &Ruby, raw: &RawMutex) -> Option<Error> {
        let me = me();
        if raw.try_lock(me) {
            return None;
        }
        match nogvl::wait_uninterruptibly(ruby, || raw.lock_slow(me, None, true)) {
            (_, Some(e)) => Some(e),
            (Some(Acquired::OwnerDied(pid)), None) => Some(errors::owner_dead(ruby, pid)),
            _ => None,
        }
    }

    fn lock(ruby: &Ruby, rb_self: Obj<Mutex>) -> Result<Obj<Mutex>, Error> {
        let raw = rb_self.sh.pin(ruby)?;
        let acquired = Self::acquire(ruby, &raw)?;
        threads::hold(&raw);
        match acquired {
            Acquired::Clean => Ok(rb_self),
            Acquired::OwnerDied(pid) => Err(errors::owner_dead(ruby, pid)),
        }
    }

    /// `_relock` (Mutex#sleep's `ensure`, interrupts deferred): take the lock back whatever interrupts
    /// arrive meanwhile, then raise the interrupt's exception (or `OwnerDeadError`) holding it.
    fn relock_after_sleep(ruby: &Ruby, rb_self: Obj<Mutex>) -> Result<Obj<Mutex>, Error> {
        let raw = rb_self.sh.pin(ruby)?;
        if raw.is_owned_by(me()) {
            return Ok(rb_self);
        }
        let error = Self::relock(ruby, &raw);
        if raw.is_owned_by(me()) {
            threads::hold(&raw); // not if the futex call itself failed: then nothing is held
        }
        error.map_or(Ok(rb_self), Err)
    }

    fn unlock(ruby: &Ruby, rb_self: Obj<Mutex>) -> Result<Obj<Mutex>, Error> {
        let raw = rb_self.sh.get(ruby)?;
        raw.unlock(me())
            .map_err(|_| errors::process(ruby, "attempt to unlock a mutex which is not locked by this thread"))?;
        threads::release(raw);
        Ok(rb_self)
    }

    /// `try_lock(timeout = nil)`: true if taken, false if still held by another after `timeout`. Raises
    /// `OwnerDeadError` (holding the lock) when its owner died holding it.
    fn try_lock(ruby: &Ruby, rb_self: &Mutex, argv: &[Value]) -> Result<bool, Error> {
        let patience = Patience::of_try(ruby, argv)?;
        let raw = rb_self.sh.pin(ruby)?;
        let me = me();
        let fast = raw.try_acquire(me);
        // Held by this very thread: waiting could never end, and Thread::Mutex#try_lock answers false.
        let patience = if fast.is_none() && raw.is_owned_by(me) { Patience::NoWait } else { patience };
        let slow = |deadline| raw.lock_slow(me, deadline, true);
        let acquired = nogvl::acquire(ruby, fast, patience, slow, |a| give_back(&raw, me, a))?;
        if acquired.is_some() {
            threads::hold(&raw);
        }
        match acquired {
            None => Ok(false),
            Some(Acquired::Clean) => Ok(true),
            Some(Acquired::OwnerDied(pid)) => Err(errors::owner_dead(ruby, pid)),
        }
    }

    fn is_locked(ruby: &Ruby, rb_self: &Mutex) -> Result<bool, Error> {
        Ok(rb_self.sh.get(ruby)?.is_locked())
    }

    fn is_owned(ruby: &Ruby, rb_self: &Mutex) -> Result<bool, Error> {
        Ok(rb_self.sh.get(ruby)?.is_owned_by(me()))
    }

    /// `synchronize(on_owner_dead: nil) { }`: the block's value. After a take-over from a dead owner,
    /// `on_owner_dead` runs holding the lock and then the block (see [`repair`]); without it the lock is
    /// released and `OwnerDeadError` raised.
    fn synchronize(ruby: &Ruby, rb_self: &Mutex, argv: &[Value]) -> Result<Value, Error> {
        if !ruby.block_given() {
            return Err(Error::new(ruby.exception_thread_error(), "must be called with a block"));
        }
        let on_owner_dead = args::on_owner_dead(ruby, argv)?;
        let raw = rb_self.sh.pin(ruby)?;
        if let Acquired::OwnerDied(pid) = Self::acquire(ruby, &raw)? {
            if let Err(e) = repair(ruby, on_owner_dead, pid) {
                let _ = raw.unlock(me());
                return Err(e);
            }
        }
        let out = ruby.yield_values::<(), Value>(());
        // The block may have unlocked it itself (or slept and relocked); only release what we hold.
        let _ = raw.unlock(me());
        out
    }

    fn owner_pid(ruby: &Ruby, rb_self: &Mutex) -> Result<Option<u32>, Error> {
        Ok(rb_self.sh.get(ruby)?.owner_pid())
    }
}

/// After a block-taking acquirer (`synchronize`, `with_write_lock`) took its lock over from the dead
/// `pid`, holding it: without a handler, the `OwnerDeadError` to raise once the caller has released the
/// lock; with one, call it with that error (it repairs the data, as a C program does before
/// `pthread_mutex_consistent`): `Ok` to go on and run the block, or what it raised, for the caller to
/// release the lock and raise.
pub(crate) fn repair(ruby: &Ruby, on_owner_dead: Option<Value>, pid: u32) -> Result<(), Error> {
    let error = errors::owner_dead(ruby, pid);
    // (Not an exception object only if making the OwnerDeadError itself failed: that failure is raised.)
    let exception = error.value().and_then(magnus::Exception::from_value);
    let (Some(handler), Some(exception)) = (on_owner_dead, exception) else {
        return Err(error);
    };
    handler.funcall::<_, _, Value>("call", (exception,)).map(|_| ())
}

/// Release a lock taken by a wait that is then interrupted (see [`RawMutex::give_back`]).
pub(crate) fn give_back(raw: &RawMutex, me: Owner, acquired: Acquired) {
    let _ = raw.give_back(me, acquired);
}

impl Drop for Mutex {
    fn drop(&mut self) {
        shared::leak_if_held(self);
    }
}

impl Primitive for Mutex {
    type Raw = RawMutex;

    fn held_in_this_process(raw: &RawMutex) -> bool {
        raw.is_held_by_process(process_shared_core::sys::owner::current_id())
    }

    fn shared(&self) -> &Shared<RawMutex> {
        &self.sh
    }

    fn describe(raw: &RawMutex) -> String {
        match raw.owner_pid() {
            None => "unlocked".to_string(),
            Some(pid) => {
                format!("locked owner_pid={pid} owned={} waiters={}", raw.is_owned_by(me()), raw.has_waiters())
            }
        }
    }
}

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    shared::define_class!(ruby, m, "Mutex" < ruby.class_object(), Mutex {
        constructors;
        fn "lock" => lock(0);
        fn "unlock" => unlock(0);
        private fn "_relock" => relock_after_sleep(0);
        fn "try_lock" => try_lock(-1);
        fn "locked?" => is_locked(0);
        fn "owned?" => is_owned(0);
        fn "synchronize" => synchronize(-1);
        fn "owner_pid" => owner_pid(0);
        lifecycle;
    });
    Ok(())
}
