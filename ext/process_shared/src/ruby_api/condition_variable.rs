//! `ProcessShared::ConditionVariable`: waits with a `ProcessShared::Mutex` or `ProcessShared::Monitor`.

use magnus::{method, prelude::*, typed_data::Obj, Error, RClass, RModule, Ruby, TryConvert, Value};
use process_shared_core::sync::RawCondvar;

use super::errors;
use super::monitor::{release_wait_reenter, Monitor};
use super::mutex::Mutex;
use super::shared::{self, Primitive, Shared};
use super::threads::me;
use crate::helpers::{args, nogvl};

#[magnus::wrap(class = "ProcessShared::ConditionVariable", free_immediately, size)]
pub struct ConditionVariable {
    sh: Shared<RawCondvar>,
}

impl ConditionVariable {
    fn new(ruby: &Ruby, class: RClass, argv: &[Value]) -> Result<Obj<ConditionVariable>, Error> {
        args::arity(ruby, argv, 0, 0)?;
        let cv = ConditionVariable { sh: Shared::new(ruby, "ProcessShared::ConditionVariable")? };
        Ok(ruby.obj_wrap_as(cv, class))
    }

    /// `wait(lock, timeout = nil)`: true when signalled, false when the timeout expired. The lock is held
    /// again on return, whatever happened (also when an interrupt is raised out of the wait).
    fn wait(ruby: &Ruby, rb_self: &ConditionVariable, argv: &[Value]) -> Result<bool, Error> {
        args::arity(ruby, argv, 1, 2)?;
        let deadline = args::deadline(args::timeout(ruby, argv.get(1).copied())?);
        let cv = rb_self.sh.pin(ruby)?;
        let sleep = |ticket: u32| -> Result<bool, Error> {
            let woke = nogvl::wait(ruby, || cv.wait_slow(ticket, deadline, true));
            if woke.is_err() {
                cv.abandon_wait(); // interrupted: pass on any wake-up owed to us
            }
            woke.map(|r| r.is_some())
        };
        let lock = argv[0];
        if let Ok(m) = <&Mutex>::try_convert(lock) {
            let raw = m.sh.pin(ruby)?;
            let me = me();
            if !raw.is_owned_by(me) {
                return Err(errors::process(ruby, "ConditionVariable#wait: mutex not locked by this thread"));
            }
            let ticket = cv.begin_wait();
            let _ = raw.unlock(me); // cannot fail: we own it
            let woke = sleep(ticket);
            let pending = Mutex::relock(ruby, &raw);
            return match (woke, pending) {
                (Err(e), _) | (Ok(_), Some(e)) => Err(e),
                (Ok(w), None) => Ok(w),
            };
        }
        if let Ok(mon) = <&Monitor>::try_convert(lock) {
            let raw = mon.sh.pin(ruby)?;
            let ticket = cv.begin_wait();
            if !raw.is_owned_by(me()) {
                cv.abandon_wait();
                return Err(errors::process(ruby, "ConditionVariable#wait: monitor not entered by this thread"));
            }
            return release_wait_reenter(ruby, &raw, || sleep(ticket));
        }
        Err(Error::new(
            ruby.exception_type_error(),
            format!("expected a ProcessShared::Mutex or ProcessShared::Monitor, got {}", lock.class().inspect()),
        ))
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
    let c = m.define_class("ConditionVariable", ruby.class_object())?;
    c.define_singleton_method("new", method!(ConditionVariable::new, -1))?;
    c.define_method("wait", method!(ConditionVariable::wait, -1))?;
    c.define_method("signal", method!(ConditionVariable::signal, 0))?;
    c.define_method("broadcast", method!(ConditionVariable::broadcast, 0))?;
    c.define_method("waiters", method!(ConditionVariable::waiters, 0))?;
    shared::define_lifecycle!(c, ConditionVariable);
    Ok(())
}
