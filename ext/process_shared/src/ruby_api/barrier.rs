//! `ProcessShared::Barrier`: a cyclic barrier for a fixed number of parties (concurrent-ruby's
//! `CyclicBarrier`, without the action block).

use magnus::{typed_data::Obj, Error, RClass, RModule, Ruby, Value};
use process_shared_core::sync::{Arrived, RawBarrier};

use super::shared::{self, NamedSpec, Primitive, Shared};
use crate::helpers::errors;
use crate::helpers::{args, nogvl};

#[magnus::wrap(class = "ProcessShared::Barrier", free_immediately, size)]
pub struct Barrier {
    sh: Shared<RawBarrier>,
}

impl Barrier {
    shared::constructors!(Barrier);

    /// A named barrier that exists must have the same number of parties.
    fn build(ruby: &Ruby, class: RClass, argv: &[Value], spec: Option<&NamedSpec>) -> Result<Obj<Barrier>, Error> {
        args::arity(ruby, argv, 1, 1)?;
        let parties = args::int_in(ruby, argv[0], "parties", 1, i64::from(RawBarrier::PARTIES_MAX))? as u32;
        let sh = Shared::placed(ruby, "ProcessShared::Barrier", spec, |raw: &RawBarrier| raw.init(parties))?;
        let found = sh.get(ruby)?.parties();
        if found != parties {
            let name = spec.map_or("", |s| s.name.as_str());
            return Err(errors::incompatible(
                ruby,
                format!("named Barrier {name:?} has {found} parties, not {parties}"),
            ));
        }
        Ok(ruby.obj_wrap_as(Barrier { sh }, class))
    }

    /// `wait(timeout = nil)`: true when all parties arrived; false if the barrier is (or becomes) broken
    /// or reset. A timeout breaks it for everyone (false) until `reset`.
    fn wait(ruby: &Ruby, rb_self: &Self, argv: &[Value]) -> Result<bool, Error> {
        args::arity(ruby, argv, 0, 1)?;
        let deadline = args::deadline(args::timeout(ruby, argv.first().copied())?);
        let b = rb_self.sh.pin(ruby)?;
        let arrival = match b.arrive() {
            Arrived::Tripped => return Ok(true),
            Arrived::Broken => return Ok(false),
            Arrived::Waiting(a) => a,
        };
        // An interrupt before the round ended withdraws the arrival (no waiter stays counted); one that
        // comes just after has nothing to give back: the round is over for everyone.
        match nogvl::wait(ruby, || b.wait_slow(arrival, deadline, true), |_| {}) {
            Ok(Some(tripped)) => Ok(tripped),
            Ok(None) => Ok(false), // timed out: broken
            Err(e) => {
                b.leave(arrival);
                Err(e)
            }
        }
    }

    fn reset(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        rb_self.sh.get(ruby)?.reset();
        Ok(())
    }

    fn is_broken(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        Ok(rb_self.sh.get(ruby)?.is_broken())
    }

    fn parties(ruby: &Ruby, rb_self: &Self) -> Result<u32, Error> {
        Ok(rb_self.sh.get(ruby)?.parties())
    }

    fn number_waiting(ruby: &Ruby, rb_self: &Self) -> Result<u32, Error> {
        Ok(rb_self.sh.get(ruby)?.waiting())
    }
}

impl Primitive for Barrier {
    type Raw = RawBarrier;

    fn shared(&self) -> &Shared<RawBarrier> {
        &self.sh
    }

    fn describe(raw: &RawBarrier) -> String {
        format!("parties={} waiting={} broken={}", raw.parties(), raw.waiting(), raw.is_broken())
    }
}

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    shared::define_class!(ruby, m, "Barrier" < ruby.class_object(), Barrier {
        constructors;
        fn "wait" => wait(-1);
        fn "reset" => reset(0);
        fn "broken?" => is_broken(0);
        fn "parties" => parties(0);
        fn "number_waiting" => number_waiting(0);
        lifecycle;
    });
    Ok(())
}
