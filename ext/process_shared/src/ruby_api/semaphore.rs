//! `ProcessShared::Semaphore` and its subclass `ProcessShared::BinarySemaphore` (maximum value 1).

use magnus::{method, prelude::*, typed_data::Obj, Error, RClass, RModule, Ruby, Value};
use process_shared_core::sync::{PostError, RawSemaphore};

use super::errors;
use super::shared::{self, NamedSpec, Primitive, Shared};
use crate::helpers::{args, nogvl};

#[magnus::wrap(class = "ProcessShared::Semaphore", free_immediately, size)]
pub struct Semaphore {
    sh: Shared<RawSemaphore>,
    binary: bool,
}

impl Semaphore {
    /// The value applies to a new semaphore only (a named one that exists keeps its value).
    fn build(
        ruby: &Ruby,
        class: RClass,
        argv: &[Value],
        binary: bool,
        spec: Option<&NamedSpec>,
    ) -> Result<Obj<Semaphore>, Error> {
        args::arity(ruby, argv, 0, 1)?;
        let max = if binary { 1 } else { i64::from(RawSemaphore::VALUE_MAX) };
        let value = match argv.first() {
            None => 1,
            Some(&v) => args::int_in(ruby, v, "semaphore value", 0, max)?,
        };
        let what = if binary { "ProcessShared::BinarySemaphore" } else { "ProcessShared::Semaphore" };
        let sh = Shared::placed(ruby, what, spec, |raw: &RawSemaphore| raw.init(value as u32, max as u32))?;
        Ok(ruby.obj_wrap_as(Semaphore { sh, binary }, class))
    }

    fn new(ruby: &Ruby, class: RClass, argv: &[Value]) -> Result<Obj<Semaphore>, Error> {
        Self::build(ruby, class, argv, false, None)
    }

    fn new_binary(ruby: &Ruby, class: RClass, argv: &[Value]) -> Result<Obj<Semaphore>, Error> {
        Self::build(ruby, class, argv, true, None)
    }

    fn new_named(ruby: &Ruby, class: RClass, argv: &[Value]) -> Result<Obj<Semaphore>, Error> {
        let (spec, rest) = args::named_args(ruby, argv)?;
        Self::build(ruby, class, rest, false, Some(&spec))
    }

    fn new_binary_named(ruby: &Ruby, class: RClass, argv: &[Value]) -> Result<Obj<Semaphore>, Error> {
        let (spec, rest) = args::named_args(ruby, argv)?;
        Self::build(ruby, class, rest, true, Some(&spec))
    }

    fn acquire(ruby: &Ruby, raw: &RawSemaphore) -> Result<(), Error> {
        if raw.try_wait() {
            return Ok(());
        }
        nogvl::wait(ruby, || raw.wait_slow(None, true), |()| give_back(raw))?;
        Ok(())
    }

    fn wait(ruby: &Ruby, rb_self: &Semaphore) -> Result<(), Error> {
        let raw = rb_self.sh.pin(ruby)?;
        Self::acquire(ruby, &raw)
    }

    fn post(ruby: &Ruby, rb_self: &Semaphore) -> Result<(), Error> {
        Self::release(ruby, rb_self, rb_self.sh.get(ruby)?)
    }

    fn release(ruby: &Ruby, rb_self: &Semaphore, raw: &RawSemaphore) -> Result<(), Error> {
        raw.post().map_err(|PostError::AtMax(max)| {
            if rb_self.binary {
                errors::process(ruby, "cannot post a BinarySemaphore whose value is already 1")
            } else {
                errors::errno(ruby, libc::EOVERFLOW, &format!("sem_post: value would exceed {max}"))
            }
        })
    }

    fn try_wait(ruby: &Ruby, rb_self: &Semaphore, argv: &[Value]) -> Result<(), Error> {
        args::arity(ruby, argv, 0, 1)?;
        let timeout = args::timeout(ruby, argv.first().copied())?;
        let raw = rb_self.sh.pin(ruby)?;
        if raw.try_wait() {
            return Ok(());
        }
        match timeout {
            None => Err(errors::errno(ruby, libc::EAGAIN, "sem_trywait: value is 0")),
            Some(t) => {
                let deadline = args::deadline(Some(t));
                match nogvl::wait(ruby, || raw.wait_slow(deadline, true), |()| give_back(&raw))? {
                    Some(()) => Ok(()),
                    None => Err(errors::errno(ruby, libc::ETIMEDOUT, "sem_timedwait: timed out")),
                }
            }
        }
    }

    fn synchronize(ruby: &Ruby, rb_self: &Semaphore) -> Result<Value, Error> {
        if !ruby.block_given() {
            return Err(Error::new(ruby.exception_thread_error(), "must be called with a block"));
        }
        let raw = rb_self.sh.pin(ruby)?;
        Self::acquire(ruby, &raw)?;
        let out = ruby.yield_values::<(), Value>(());
        let posted = Self::release(ruby, rb_self, &raw);
        let v = out?;
        posted.map(|_| v)
    }

    fn value(ruby: &Ruby, rb_self: &Semaphore) -> Result<u32, Error> {
        Ok(rb_self.sh.get(ruby)?.value())
    }

    fn waiters(ruby: &Ruby, rb_self: &Semaphore) -> Result<u32, Error> {
        Ok(rb_self.sh.get(ruby)?.waiters())
    }
}

/// Return a permit taken by a wait that is then interrupted. It cannot be at the maximum unless another
/// process posted more than it took meanwhile; the permit is then one too many and is dropped.
fn give_back(raw: &RawSemaphore) {
    let _ = raw.post();
}

impl Primitive for Semaphore {
    type Raw = RawSemaphore;

    fn shared(&self) -> &Shared<RawSemaphore> {
        &self.sh
    }

    fn describe(raw: &RawSemaphore) -> String {
        format!("value={} waiters={}", raw.value(), raw.waiters())
    }
}

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    let c = m.define_class("Semaphore", ruby.class_object())?;
    c.define_singleton_method("new", method!(Semaphore::new, -1))?;
    c.define_singleton_method("_new_named", method!(Semaphore::new_named, -1))?;
    c.define_method("wait", method!(Semaphore::wait, 0))?;
    c.define_method("post", method!(Semaphore::post, 0))?;
    c.define_method("try_wait", method!(Semaphore::try_wait, -1))?;
    c.define_method("synchronize", method!(Semaphore::synchronize, 0))?;
    c.define_method("value", method!(Semaphore::value, 0))?;
    c.define_method("waiters", method!(Semaphore::waiters, 0))?;
    shared::define_lifecycle!(c, Semaphore);
    let b = m.define_class("BinarySemaphore", c)?;
    b.define_singleton_method("new", method!(Semaphore::new_binary, -1))?;
    b.define_singleton_method("_new_named", method!(Semaphore::new_binary_named, -1))?;
    Ok(())
}
