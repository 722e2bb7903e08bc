//! `ProcessShared::Counters`: `size` independent lock-free signed 64-bit counters, each on a cache line of
//! its own (the raindrops layout), so processes bumping different counters never contend. `each` and
//! `Enumerable` are Ruby sugar in `lib/process_shared/counters.rb`.

use magnus::{prelude::*, typed_data::Obj, Error, RArray, RClass, RModule, Ruby, Value};
use process_shared_core::sync::RawCounter;

use super::shared::{self, NamedSpec, Region};
use crate::helpers::args;

/// The most counters one object holds (1 GiB of cache lines).
const MAX_SIZE: i64 = 1 << 24;

#[magnus::wrap(class = "ProcessShared::Counters", free_immediately, size)]
pub struct Counters {
    region: Region,
    size: usize,
}

impl Counters {
    shared::constructors!(Counters);

    fn build(ruby: &Ruby, class: RClass, argv: &[Value], spec: Option<&NamedSpec>) -> Result<Obj<Counters>, Error> {
        args::arity(ruby, argv, 1, 1)?;
        let size = args::int_in(ruby, argv[0], "size", 0, MAX_SIZE)? as usize;
        let what = "ProcessShared::Counters";
        // One counter fits an arena slot; more get a mapping of their own (a whole number of pages).
        let region = match spec {
            Some(spec) => Region::named(ruby, spec, size.max(1) * RawCounter::SIZE, what, |_| {})?,
            None if size <= 1 => Region::slot(ruby, RawCounter::SIZE, what)?,
            None => Region::anonymous(ruby, size * RawCounter::SIZE, what)?,
        };
        Ok(ruby.obj_wrap_as(Counters { region, size }, class))
    }

    /// The counters, for a call that neither yields nor releases the GVL before it is done with them.
    fn all(&self, ruby: &Ruby) -> Result<&[RawCounter], Error> {
        let p = self.region.ptr(ruby)?;
        // SAFETY: the region holds at least `size` zero-initialised 64-byte cells, 64-byte aligned (a slot
        // or a page-aligned mapping); a `RawCounter` is valid when zeroed. The slice is only used until the
        // method returns, without running Ruby code, so `close` cannot unmap it meanwhile.
        Ok(unsafe { std::slice::from_raw_parts(p.cast::<RawCounter>(), self.size) })
    }

    /// Counter `index` (negative counts from the end). `ClosedError` first, then `TypeError`/`IndexError`.
    fn counter(&self, ruby: &Ruby, index: Value) -> Result<&RawCounter, Error> {
        self.region.ptr(ruby)?;
        // Decoded before the counters are borrowed: an error message runs Ruby code (`inspect`).
        let i = args::index(ruby, index, self.size, "counters")?;
        Ok(&self.all(ruby)?[i])
    }

    fn delta(ruby: &Ruby, argv: &[Value]) -> Result<(Value, i64), Error> {
        args::arity(ruby, argv, 1, 2)?;
        let d = argv.get(1).map_or(Ok(1), |&v| args::int64(ruby, v, "delta"))?;
        Ok((argv[0], d))
    }

    fn incr(ruby: &Ruby, rb_self: &Self, argv: &[Value]) -> Result<i64, Error> {
        let (i, d) = Self::delta(ruby, argv)?;
        Ok(rb_self.counter(ruby, i)?.add(d))
    }

    fn decr(ruby: &Ruby, rb_self: &Self, argv: &[Value]) -> Result<i64, Error> {
        let (i, d) = Self::delta(ruby, argv)?;
        Ok(rb_self.counter(ruby, i)?.sub(d))
    }

    fn aref(ruby: &Ruby, rb_self: &Self, index: Value) -> Result<i64, Error> {
        Ok(rb_self.counter(ruby, index)?.get())
    }

    fn aset(ruby: &Ruby, rb_self: &Self, index: Value, v: Value) -> Result<Value, Error> {
        let n = args::int64(ruby, v, "value")?;
        rb_self.counter(ruby, index)?.set(n);
        Ok(v)
    }

    fn to_a(ruby: &Ruby, rb_self: &Self) -> Result<RArray, Error> {
        // Read first, then build the Array: allocating can run the GC (and finalizers), never while we
        // hold a reference into the mapping.
        let values: Vec<i64> = rb_self.all(ruby)?.iter().map(|c| c.get()).collect();
        Ok(ruby.ary_from_vec(values))
    }

    fn size(&self) -> usize {
        self.size
    }

    fn close(&self) {
        self.region.close()
    }

    fn is_closed(&self) -> bool {
        self.region.is_closed()
    }

    fn inspect(ruby: &Ruby, rb_self: Obj<Self>) -> String {
        let class = args::class_name(rb_self.as_value());
        let Ok(all) = rb_self.all(ruby) else {
            return format!("#<{class} size={} (closed)>", rb_self.size);
        };
        let shown: Vec<String> = all.iter().take(10).map(|c| c.get().to_string()).collect();
        let more = if all.len() > 10 { ", ..." } else { "" };
        format!("#<{class} size={} [{}{more}]>", rb_self.size, shown.join(", "))
    }
}

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    shared::define_class!(ruby, m, "Counters" < ruby.class_object(), Counters {
        constructors;
        fn "incr" => incr(-1);
        fn "decr" => decr(-1);
        fn "[]" => aref(1);
        fn "[]=" => aset(2);
        fn "to_a" => to_a(0);
        fn "size" => size(0);
        fn "close" => close(0);
        fn "closed?" => is_closed(0);
        fn "inspect" => inspect(0);
    });
    Ok(())
}
