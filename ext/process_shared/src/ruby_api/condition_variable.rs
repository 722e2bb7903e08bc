//! `ProcessShared::ConditionVariable`: waits with a `ProcessShared::Mutex` or `ProcessShared::Monitor`.

use std::cell::Cell;

use magnus::{prelude::*, typed_data::Obj, Error, RClass, RModule, Ruby, TryConvert, Value};
use process_shared_core::sync::RawCondvar;

use super::monitor::Monitor;
use super::mutex::Mutex;
use super::shared::{self, NamedSpec, Primitive, Shared};
use super::threads::{self, me};
use crate::helpers::errors;
use crate::helpers::{args, nogvl};

#[magnus::wrap(class = "ProcessShared::ConditionVariable", free_immediately, size)]
pub struct ConditionVariable {
    sh: Shared<RawCondvar>,
}

/// The lock a condition wait releases and re-takes.
enum Lock {
    Mutex(Obj<Mutex>),
    Monitor(Obj<Monitor>),
}

impl Lock {
    /// Which lock `v` is, without raising (so no interrupt is run): `TypeError` for anything else.
    fn of(ruby: &Ruby, v: Value) -> Result<Lock, Error> {
        // Test the class first: a failed conversion would raise (and rescue) inside Ruby, which can run
        // and swallow a pending interrupt.
        if v.is_kind_of(<Mutex as magnus::TypedData>::class(ruby)) {
            return Ok(Lock::Mutex(Obj::<Mutex>::try_convert(v)?));
        }
        if v.is_kind_of(<Monitor as magnus::TypedData>::class(ruby)) {
            return Ok(Lock::Monitor(Obj::<Monitor>::try_convert(v)?));
        }
        Err(Error::new(
            ruby.exception_type_error(),
            format!("expected a ProcessShared::Mutex or ProcessShared::Monitor, got {}", v.class().inspect()),
        ))
    }
}

impl ConditionVariable {
    shared::constructors!(ConditionVariable);

    fn build(
        ruby: &Ruby,
        class: RClass,
        argv: &[Value],
        spec: Option<&NamedSpec>,
    ) -> Result<Obj<ConditionVariable>, Error> {
        args::arity(ruby, argv, 0, 0)?;
        let cv = ConditionVariable { sh: Shared::placed(ruby, "ProcessShared::ConditionVariable", spec, |_| {})? };
        Ok(ruby.obj_wrap_as(cv, class))
    }

    // `wait(lock, timeout = nil)` is Ruby (lib/process_shared/condition_variable.rb) over three steps, so that
    // the re-lock runs in an `ensure` with interrupts deferred (`Thread.handle_interrupt`), like
    // `Thread::Mutex#sleep`'s: a kill or raise that ends the sleep, or arrives during the re-lock, is
    // delivered only once the lock is held again.

    /// Step 1: check that the calling thread holds `lock` (a `Mutex`, or a `Monitor` it entered) and that
    /// the timeout is valid. Changes nothing. Returns the hold count to restore (1 for a mutex).
    fn begin(ruby: &Ruby, rb_self: &ConditionVariable, lock: Value, timeout: Option<Value>) -> Result<u32, Error> {
        args::timeout(ruby, timeout)?;
        rb_self.sh.get(ruby)?;
        let me = me();
        match Lock::of(ruby, lock)? {
            Lock::Mutex(m) if m.sh.get(ruby)?.is_owned_by(me) => Ok(1),
            Lock::Mutex(_) => Err(errors::process(ruby, "ConditionVariable#wait: mutex not locked by this thread")),
            Lock::Monitor(mon) => {
                let raw = mon.sh.get(ruby)?;
                if !raw.is_owned_by(me) {
                    return Err(errors::process(ruby, "ConditionVariable#wait: monitor not entered by this thread"));
                }
                Ok(raw.count().max(1))
            }
        }
    }

    /// Step 2: take a ticket, release `lock` (completely, for a monitor), and sleep until signalled (true)
    /// or the timeout (false); interruptible. An interrupt unregisters the waiter, passing on any wake-up
    /// it was owed, and is raised. All in one native call, so nothing can come between the steps.
    fn sleep(ruby: &Ruby, rb_self: &ConditionVariable, lock: Value, timeout: Option<Value>) -> Result<bool, Error> {
        let deadline = args::deadline(args::timeout(ruby, timeout)?);
        let cv = rb_self.sh.pin(ruby)?;
        let me = me();
        let lock = Lock::of(ruby, lock)?;
        let ticket = cv.begin_wait();
        let released = match lock {
            Lock::Mutex(m) => m.sh.get(ruby).map(|raw| raw.unlock(me).is_ok().then(|| threads::suspend(raw)).is_some()),
            Lock::Monitor(mon) => {
                mon.sh.get(ruby).map(|raw| raw.release_all(me).is_ok().then(|| threads::suspend(raw.mutex())).is_some())
            }
        };
        match released {
            Ok(true) => {}
            Ok(false) => {
                cv.abandon_wait();
                return Err(errors::process(ruby, "ConditionVariable#wait: lock not held by this thread"));
            }
            Err(e) => {
                cv.abandon_wait();
                return Err(e);
            }
        }
        // Interrupted while asleep: unregister, passing on a wake-up owed to us. Interrupted just after
        // taking a wake-up (and unregistering): pass it on to another waiter by signalling again.
        let woken_then_interrupted = Cell::new(false);
        let woke = nogvl::wait(
            ruby,
            || cv.wait_slow(ticket, deadline, true),
            |()| {
                woken_then_interrupted.set(true);
                cv.signal();
            },
        );
        if woke.is_err() && !woken_then_interrupted.get() {
            cv.abandon_wait();
        }
        woke.map(|r| r.is_some())
    }

    /// Step 3 (in an `ensure`, interrupts deferred): take `lock` back if step 2 released it, restoring a
    /// monitor's hold `count`. Raises `OwnerDeadError`, holding the lock, if it had to be taken over from
    /// a dead owner.
    fn finish(ruby: &Ruby, lock: Value, count: u32) -> Result<(), Error> {
        let me = me();
        let error = match Lock::of(ruby, lock)? {
            Lock::Mutex(m) => {
                let raw = m.sh.pin(ruby)?;
                if raw.is_owned_by(me) {
                    return Ok(()); // interrupted before step 2 released it
                }
                let error = Mutex::relock(ruby, &raw);
                threads::resume(&raw);
                error
            }
            Lock::Monitor(mon) => {
                let raw = mon.sh.pin(ruby)?;
                if raw.is_owned_by(me) {
                    return Ok(());
                }
                let error = Mutex::relock(ruby, raw.mutex());
                threads::resume(raw.mutex());
                if raw.is_owned_by(me) {
                    raw.restore(count);
                }
                error
            }
        };
        error.map_or(Ok(()), Err)
    }

    fn signal(ruby: &Ruby, rb_self: Obj<ConditionVariable>) -> Result<Obj<ConditionVariable>, Error> {
        rb_self.sh.get(ruby)?.signal();
        Ok(rb_self)
    }

    fn broadcast(ruby: &Ruby, rb_self: Obj<ConditionVariable>) -> Result<Obj<ConditionVariable>, Error> {
        rb_self.sh.get(ruby)?.broadcast();
        Ok(rb_self)
    }

    fn waiters(ruby: &Ruby, rb_self: &ConditionVariable) -> Result<u32, Error> {
        Ok(rb_self.sh.get(ruby)?.waiters())
    }
}

impl Primitive for ConditionVariable {
    type Raw = RawCondvar;

    fn shared(&self) -> &Shared<RawCondvar> {
        &self.sh
    }

    fn describe(raw: &RawCondvar) -> String {
        format!("waiters={}", raw.waiters())
    }
}

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    shared::define_class!(ruby, m, "ConditionVariable" < ruby.class_object(), ConditionVariable {
        constructors;
        private fn "_begin" => begin(2);
        private fn "_sleep" => sleep(2);
        private function "_finish" => finish(2);
        fn "signal" => signal(0);
        fn "broadcast" => broadcast(0);
        fn "waiters" => waiters(0);
        lifecycle;
    });
    Ok(())
}
