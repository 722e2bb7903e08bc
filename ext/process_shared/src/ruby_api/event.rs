//! `ProcessShared::Event`: a flag that processes wait for (concurrent-ruby's `Event`).

use magnus::{typed_data::Obj, Error, RClass, RModule, Ruby, Value};
use process_shared_core::sync::RawEvent;

use super::shared::{self, NamedSpec, Primitive, Shared};
use crate::helpers::{args, nogvl};

#[magnus::wrap(class = "ProcessShared::Event", free_immediately, size)]
pub struct Event {
    sh: Shared<RawEvent>,
}

impl Event {
    shared::constructors!(Event);

    fn build(ruby: &Ruby, class: RClass, argv: &[Value], spec: Option<&NamedSpec>) -> Result<Obj<Event>, Error> {
        args::arity(ruby, argv, 0, 0)?;
        let e = Event { sh: Shared::placed(ruby, "ProcessShared::Event", spec, |_| {})? };
        Ok(ruby.obj_wrap_as(e, class))
    }

    /// Set it, releasing every waiter; no effect if already set. Always true (as concurrent-ruby's).
    fn set(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        rb_self.sh.get(ruby)?.set();
        Ok(true)
    }

    /// `try?`: set it if it is not set; whether this call set it (concurrent-ruby's `Event#try?`).
    fn try_set(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        Ok(rb_self.sh.get(ruby)?.set())
    }

    /// Unset it. Always true (as concurrent-ruby's).
    fn reset(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        rb_self.sh.get(ruby)?.reset();
        Ok(true)
    }

    fn is_set(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        Ok(rb_self.sh.get(ruby)?.is_set())
    }

    /// `wait(timeout = nil)`: true once set (also if it was set and reset again meanwhile), false if the
    /// timeout passed first.
    fn wait(ruby: &Ruby, rb_self: &Self, argv: &[Value]) -> Result<bool, Error> {
        args::arity(ruby, argv, 0, 1)?;
        let timeout = args::timeout(ruby, argv.first().copied())?;
        let ev = rb_self.sh.pin(ruby)?;
        let ticket = ev.ticket();
        if ev.is_set() {
            return Ok(true);
        }
        if timeout.is_some_and(|t| t.is_zero()) {
            return Ok(false);
        }
        let deadline = args::deadline(timeout);
        // Waiting takes nothing, so an interrupt has nothing to give back.
        Ok(nogvl::wait(ruby, || ev.wait_slow(ticket, deadline, true), |()| {})?.is_some())
    }
}

impl Primitive for Event {
    type Raw = RawEvent;

    fn shared(&self) -> &Shared<RawEvent> {
        &self.sh
    }

    fn describe(raw: &RawEvent) -> String {
        format!("set={}", raw.is_set())
    }
}

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    shared::define_class!(ruby, m, "Event" < ruby.class_object(), Event {
        constructors;
        fn "set" => set(0);
        fn "try?" => try_set(0);
        fn "reset" => reset(0);
        fn "set?" => is_set(0);
        fn "wait" => wait(-1);
        lifecycle;
    });
    Ok(())
}
