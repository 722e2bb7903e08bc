//! `ProcessShared::CountDownLatch`: waiters are released once the count reaches 0 (concurrent-ruby's).

use magnus::{typed_data::Obj, Error, RClass, RModule, Ruby, Value};
use process_shared_core::sync::RawLatch;

use super::shared::{self, NamedSpec, Primitive, Shared};
use crate::helpers::{args, nogvl};

#[magnus::wrap(class = "ProcessShared::CountDownLatch", free_immediately, size)]
pub struct CountDownLatch {
    sh: Shared<RawLatch>,
}

impl CountDownLatch {
    shared::constructors!(CountDownLatch);

    /// The count applies to a new latch only (a named one that exists keeps its count).
    fn build(
        ruby: &Ruby,
        class: RClass,
        argv: &[Value],
        spec: Option<&NamedSpec>,
    ) -> Result<Obj<CountDownLatch>, Error> {
        args::arity(ruby, argv, 0, 1)?;
        let count = match argv.first() {
            None => 1,
            Some(&v) => args::int_in(ruby, v, "count", 0, i64::from(RawLatch::COUNT_MAX))?,
        };
        let sh = Shared::placed(ruby, "ProcessShared::CountDownLatch", spec, |raw: &RawLatch| raw.init(count as u32))?;
        Ok(ruby.obj_wrap_as(CountDownLatch { sh }, class))
    }

    /// Decrement the count (not below 0); reaching 0 releases every waiter.
    fn count_down(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        rb_self.sh.get(ruby)?.count_down();
        Ok(())
    }

    fn count(ruby: &Ruby, rb_self: &Self) -> Result<u32, Error> {
        Ok(rb_self.sh.get(ruby)?.count())
    }

    /// `wait(timeout = nil)`: true once the count is 0, false if the timeout passed first.
    fn wait(ruby: &Ruby, rb_self: &Self, argv: &[Value]) -> Result<bool, Error> {
        args::arity(ruby, argv, 0, 1)?;
        let timeout = args::timeout(ruby, argv.first().copied())?;
        let latch = rb_self.sh.pin(ruby)?;
        if latch.count() == 0 {
            return Ok(true);
        }
        if timeout.is_some_and(|t| t.is_zero()) {
            return Ok(false);
        }
        let deadline = args::deadline(timeout);
        // Waiting takes nothing, so an interrupt has nothing to give back.
        Ok(nogvl::wait(ruby, || latch.wait_slow(deadline, true), |()| {})?.is_some())
    }
}

impl Primitive for CountDownLatch {
    type Raw = RawLatch;

    fn shared(&self) -> &Shared<RawLatch> {
        &self.sh
    }

    fn describe(raw: &RawLatch) -> String {
        format!("count={}", raw.count())
    }
}

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    shared::define_class!(ruby, m, "CountDownLatch" < ruby.class_object(), CountDownLatch {
        constructors;
        fn "count_down" => count_down(0);
        fn "count" => count(0);
        fn "wait" => wait(-1);
        lifecycle;
    });
    Ok(())
}
