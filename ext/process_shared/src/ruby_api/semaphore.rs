//! `ProcessShared::Semaphore` and its subclass `ProcessShared::BinarySemaphore` (maximum value 1).

use std::cell::Cell;

use magnus::{typed_data::Obj, Error, RClass, RModule, Ruby, Value};
use process_shared_core::sync::{suspects, Owner, PostError, RawSemaphore};

use super::shared::{self, NamedSpec, Primitive, Shared};
use super::threads::me;
use crate::helpers::errors;
use crate::helpers::{args, nogvl};

#[magnus::wrap(class = "ProcessShared::Semaphore", free_immediately, size)]
pub struct Semaphore {
    sh: Shared<RawSemaphore>,
    binary: bool,
    /// (owner id, index) of this process's holder slot, once claimed.
    slot: Cell<(u64, usize)>,
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
        Ok(ruby.obj_wrap_as(Semaphore { sh, binary, slot: Cell::new((0, 0)) }, class))
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

    /// This process's holder slot (claimed on first use, again in a forked child); `None` if every slot
    /// belongs to a live process (then permits are taken untracked).
    fn holder_slot(&self, raw: &RawSemaphore, me: Owner) -> Option<usize> {
        let (id, i) = self.slot.get();
        if id == me.id && raw.slot_is(i, me) {
            return Some(i);
        }
        let i = raw.claim_slot(me).ok()?;
        self.slot.set((me.id, i));
        Some(i)
    }

    /// The slot that `post` gives a hold back to: this handle's, else one an other handle of this process
    /// claimed (never claims one: a producer's posts are nobody's holds).
    fn posting_slot(&self, raw: &RawSemaphore, me: Owner) -> Option<usize> {
        let (id, i) = self.slot.get();
        if id == me.id && raw.slot_is(i, me) {
            return Some(i);
        }
        raw.find_slot(me)
    }

    /// Take a permit; `undo`: held by this process until it posts, given back if it dies first.
    fn acquire(ruby: &Ruby, rb_self: &Semaphore, raw: &RawSemaphore, undo: bool) -> Result<(), Error> {
        let me = me();
        let slot = if undo { rb_self.holder_slot(raw, me) } else { None };
        if raw.try_wait(slot) {
            return Ok(());
        }
        nogvl::wait(ruby, || raw.wait_slow(me, slot, None, true), |()| give_back(raw, slot))?;
        Ok(())
    }

    /// `_wait(undo)`, behind `wait(undo: false)`.
    fn wait(ruby: &Ruby, rb_self: &Semaphore, undo: bool) -> Result<(), Error> {
        let raw = rb_self.sh.pin(ruby)?;
        Self::acquire(ruby, rb_self, &raw, undo)
    }

    fn post(ruby: &Ruby, rb_self: &Semaphore) -> Result<(), Error> {
        Self::release(ruby, rb_self, rb_self.sh.get(ruby)?)
    }

    fn release(ruby: &Ruby, rb_self: &Semaphore, raw: &RawSemaphore) -> Result<(), Error> {
        let slot = rb_self.posting_slot(raw, me());
        raw.post(slot).map_err(|PostError::AtMax(max)| {
            if rb_self.binary {
                errors::process(ruby, "cannot post a BinarySemaphore whose value is already 1")
            } else {
                errors::errno(ruby, libc::EOVERFLOW, &format!("sem_post: value would exceed {max}"))
            }
        })
    }

    /// Give back dead holders' permits if it is time to look again (at first sight, then every
    /// `suspects::RECHECK`): a failed `try_wait` and the queries learn of deaths within that time.
    fn reclaim_if_due(raw: &RawSemaphore) {
        if suspects::due(raw as *const RawSemaphore as usize, 0) {
            raw.reclaim_dead(me());
        }
    }

    /// `_try_wait(timeout, undo)`, behind `try_wait(timeout = nil, undo: false)`.
    fn try_wait(ruby: &Ruby, rb_self: &Semaphore, timeout: Value, undo: bool) -> Result<(), Error> {
        let timeout = args::timeout(ruby, Some(timeout))?;
        let raw = rb_self.sh.pin(ruby)?;
        let me = me();
        let slot = if undo { rb_self.holder_slot(&raw, me) } else { None };
        if raw.try_wait(slot) {
            return Ok(());
        }
        Self::reclaim_if_due(&raw);
        if raw.try_wait(slot) {
            return Ok(());
        }
        match timeout {
            Some(t) if !t.is_zero() => {
                let deadline = args::deadline(Some(t));
                match nogvl::wait(ruby, || raw.wait_slow(me, slot, deadline, true), |()| give_back(&raw, slot))? {
                    Some(()) => Ok(()),
                    None => Err(errors::errno(ruby, libc::ETIMEDOUT, "sem_timedwait: timed out")),
                }
            }
            Some(_) => Err(errors::errno(ruby, libc::ETIMEDOUT, "sem_timedwait: timed out")),
            None => Err(errors::errno(ruby, libc::EAGAIN, "sem_trywait: value is 0")),
        }
    }

    fn synchronize(ruby: &Ruby, rb_self: &Semaphore) -> Result<Value, Error> {
        if !ruby.block_given() {
            return Err(Error::new(ruby.exception_thread_error(), "must be called with a block"));
        }
        let raw = rb_self.sh.pin(ruby)?;
        Self::acquire(ruby, rb_self, &raw, true)?;
        let out = ruby.yield_values::<(), Value>(());
        let posted = Self::release(ruby, rb_self, &raw);
        let v = out?;
        posted.map(|_| v)
    }

    fn value(ruby: &Ruby, rb_self: &Semaphore) -> Result<u32, Error> {
        let raw = rb_self.sh.get(ruby)?;
        Self::reclaim_if_due(raw);
        Ok(raw.value())
    }

    fn waiters(ruby: &Ruby, rb_self: &Semaphore) -> Result<u32, Error> {
        let raw = rb_self.sh.get(ruby)?;
        Self::reclaim_if_due(raw);
        Ok(raw.waiters())
    }

    /// `take_reclaimed` → Integer: permits given back from processes that died holding them since the last
    /// call (by any process).
    fn take_reclaimed(ruby: &Ruby, rb_self: &Semaphore) -> Result<u32, Error> {
        let raw = rb_self.sh.get(ruby)?;
        Self::reclaim_if_due(raw);
        Ok(raw.take_reclaimed())
    }
}

/// Return a permit taken by a wait that is then interrupted. It cannot be at the maximum unless another
/// process posted more than it took meanwhile; the permit is then one too many and is dropped.
fn give_back(raw: &RawSemaphore, slot: Option<usize>) {
    let _ = raw.post(slot);
}

impl Primitive for Semaphore {
    type Raw = RawSemaphore;

    fn shared(&self) -> &Shared<RawSemaphore> {
        &self.sh
    }

    fn describe(raw: &RawSemaphore) -> String {
        format!("value={} held={} waiters={}", raw.value(), raw.held(), raw.waiters())
    }
}

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    let c = shared::define_class!(ruby, m, "Semaphore" < ruby.class_object(), Semaphore {
        constructors;
        fn "_wait" => wait(1);
        fn "post" => post(0);
        fn "_try_wait" => try_wait(2);
        fn "synchronize" => synchronize(0);
        fn "value" => value(0);
        fn "waiters" => waiters(0);
        fn "take_reclaimed" => take_reclaimed(0);
        lifecycle;
    });
    shared::define_class!(ruby, m, "BinarySemaphore" < c, Semaphore {
        singleton fn "new" => new_binary(-1);
        singleton fn "_new_named" => new_binary_named(-1);
    });
    Ok(())
}
