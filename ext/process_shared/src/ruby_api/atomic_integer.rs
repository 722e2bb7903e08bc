//! `ProcessShared::AtomicInteger`: a lock-free signed 64-bit integer. `update { }`, `up`/`down` and the
//! other aliases are Ruby sugar in `lib/process_shared/atomic_integer.rb`.

use magnus::{typed_data::Obj, Error, RClass, RModule, Ruby, Value};
use process_shared_core::sync::RawAtomicInt;

use super::shared::{self, NamedSpec, Primitive, Shared};
use crate::helpers::args;

#[magnus::wrap(class = "ProcessShared::AtomicInteger", free_immediately, size)]
pub struct AtomicInteger {
    sh: Shared<RawAtomicInt>,
}

impl AtomicInteger {
    shared::constructors!(AtomicInteger);

    /// The initial value applies to a new object only (a named one that exists keeps its value).
    fn build(
        ruby: &Ruby,
        class: RClass,
        argv: &[Value],
        spec: Option<&NamedSpec>,
    ) -> Result<Obj<AtomicInteger>, Error> {
        args::arity(ruby, argv, 0, 1)?;
        let initial = match argv.first() {
            None => 0,
            Some(&v) => args::int64(ruby, v, "initial value")?,
        };
        let sh = Shared::placed(ruby, "ProcessShared::AtomicInteger", spec, |raw: &RawAtomicInt| raw.set(initial))?;
        Ok(ruby.obj_wrap_as(AtomicInteger { sh }, class))
    }

    /// The optional `delta` argument of `increment`/`decrement` (default 1).
    fn delta(ruby: &Ruby, argv: &[Value]) -> Result<i64, Error> {
        args::arity(ruby, argv, 0, 1)?;
        argv.first().map_or(Ok(1), |&v| args::int64(ruby, v, "delta"))
    }

    fn value(ruby: &Ruby, rb_self: &Self) -> Result<i64, Error> {
        Ok(rb_self.sh.get(ruby)?.get())
    }

    fn set_value(ruby: &Ruby, rb_self: &Self, v: Value) -> Result<Value, Error> {
        let n = args::int64(ruby, v, "value")?;
        rb_self.sh.get(ruby)?.set(n);
        Ok(v)
    }

    fn increment(ruby: &Ruby, rb_self: &Self, argv: &[Value]) -> Result<i64, Error> {
        let d = Self::delta(ruby, argv)?;
        Ok(rb_self.sh.get(ruby)?.add(d))
    }

    fn decrement(ruby: &Ruby, rb_self: &Self, argv: &[Value]) -> Result<i64, Error> {
        let d = Self::delta(ruby, argv)?;
        Ok(rb_self.sh.get(ruby)?.sub(d))
    }

    fn compare_and_set(ruby: &Ruby, rb_self: &Self, expected: Value, new: Value) -> Result<bool, Error> {
        let expected = args::int64(ruby, expected, "expected value")?;
        let new = args::int64(ruby, new, "new value")?;
        Ok(rb_self.sh.get(ruby)?.compare_and_set(expected, new))
    }

    fn get_and_set(ruby: &Ruby, rb_self: &Self, new: Value) -> Result<i64, Error> {
        let new = args::int64(ruby, new, "new value")?;
        Ok(rb_self.sh.get(ruby)?.swap(new))
    }
}

impl Primitive for AtomicInteger {
    type Raw = RawAtomicInt;

    fn shared(&self) -> &Shared<RawAtomicInt> {
        &self.sh
    }

    fn describe(raw: &RawAtomicInt) -> String {
        format!("value={}", raw.get())
    }
}

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    shared::define_class!(ruby, m, "AtomicInteger" < ruby.class_object(), AtomicInteger {
        constructors;
        fn "value" => value(0);
        fn "value=" => set_value(1);
        fn "increment" => increment(-1);
        fn "decrement" => decrement(-1);
        fn "compare_and_set" => compare_and_set(2);
        fn "get_and_set" => get_and_set(1);
        lifecycle;
    });
    Ok(())
}
