//! `ProcessShared::Monitor`: a re-entrant lock owned by (process, Ruby thread). `new_cond`, the stdlib
//! aliases and `MonitorMixin` are Ruby sugar in `lib/process_shared/monitor.rb`.

use magnus::{typed_data::Obj, Error, RClass, RModule, Ruby, Value};
use process_shared_core::sync::{Acquired, MonitorError, Owner, RawMonitor};

use super::mutex;
use super::shared::{self, NamedSpec, Primitive, Shared};
use super::threads::{self, me};
use crate::helpers::args::{self, Patience};
use crate::helpers::errors;
use crate::helpers::nogvl;

#[magnus::wrap(class = "ProcessShared::Monitor", free_immediately, size)]
pub struct Monitor {
    pub(crate) sh: Shared<RawMonitor>,
}

fn monitor_error(ruby: &Ruby, e: MonitorError) -> Error {
    match e {
        MonitorError::NotOwner => errors::process(ruby, "current thread does not own this monitor"),
        MonitorError::TooDeep => errors::process(ruby, "monitor entered too many times"),
    }
}

impl Monitor {
    shared::constructors!(Monitor);

    fn build(ruby: &Ruby, class: RClass, argv: &[Value], spec: Option<&NamedSpec>) -> Result<Obj<Monitor>, Error> {
        args::arity(ruby, argv, 0, 0)?;
        let m = Monitor { sh: Shared::placed(ruby, "ProcessShared::Monitor", spec, |_| {})? };
        Ok(ruby.obj_wrap_as(m, class))
    }

    /// Enter for the calling thread, sleeping (GVL released, interruptible) while another holds it.
    /// `Acquired::OwnerDied` means it is held now (count 1), taken over from a dead owner.
    fn acquire(ruby: &Ruby, raw: &RawMonitor) -> Result<Acquired, Error> {
        // A plain try first: a dead owner is taken over by the slow path (released GVL, interruptible).
        let fast = raw.try_enter(me()).map_err(|e| monitor_error(ruby, e))?.then_some(Acquired::Clean);
        Ok(Self::take(ruby, raw, fast, Patience::FOREVER)?.unwrap_or(Acquired::Clean))
    }

    /// Finish entering for the calling thread, after the non-sleeping attempt that gave `fast`, within
    /// `patience`: `None` if it ran out.
    fn take(
        ruby: &Ruby,
        raw: &RawMonitor,
        fast: Option<Acquired>,
        patience: Patience,
    ) -> Result<Option<Acquired>, Error> {
        let me = me();
        let slow = |deadline| raw.enter_slow(me, deadline, true);
        let acquired = nogvl::acquire(ruby, fast, patience, slow, |a| give_back(raw, me, a))?;
        if acquired.is_some() {
            entered(raw);
        }
        Ok(acquired)
    }

    fn enter(ruby: &Ruby, rb_self: &Monitor) -> Result<(), Error> {
        let raw = rb_self.sh.pin(ruby)?;
        match Self::acquire(ruby, &raw)? {
            Acquired::Clean => Ok(()),
            Acquired::OwnerDied(pid) => Err(errors::owner_dead(ruby, pid)),
        }
    }

    fn exit(ruby: &Ruby, rb_self: &Monitor) -> Result<(), Error> {
        leave(ruby, rb_self.sh.get(ruby)?)
    }

    fn try_enter(ruby: &Ruby, rb_self: &Monitor, argv: &[Value]) -> Result<bool, Error> {
        let patience = Patience::of_try(ruby, argv)?;
        let raw = rb_self.sh.pin(ruby)?;
        let fast = raw.try_acquire(me()).map_err(|e| monitor_error(ruby, e))?;
        match Self::take(ruby, &raw, fast, patience)? {
            None => Ok(false),
            Some(Acquired::Clean) => Ok(true),
            Some(Acquired::OwnerDied(pid)) => Err(errors::owner_dead(ruby, pid)),
        }
    }

    /// `synchronize(on_owner_dead: nil) { }`: as `Mutex#synchronize` (see [`mutex::repair`]).
    fn synchronize(ruby: &Ruby, rb_self: &Monitor, argv: &[Value]) -> Result<Value, Error> {
        if !ruby.block_given() {
            // As ::Monitor#synchronize (Thread::Mutex#synchronize raises ThreadError instead).
            return Err(Error::new(ruby.exception_local_jump_error(), "no block given"));
        }
        let on_owner_dead = args::on_owner_dead(ruby, argv)?;
        let raw = rb_self.sh.pin(ruby)?;
        if let Acquired::OwnerDied(pid) = Self::acquire(ruby, &raw)? {
            if let Err(e) = mutex::repair(ruby, on_owner_dead, pid) {
                let _ = leave(ruby, &raw);
                return Err(e);
            }
        }
        let out = ruby.yield_values::<(), Value>(());
        let exited = leave(ruby, &raw);
        let v = out?;
        exited.map(|_| v)
    }

    fn is_locked(ruby: &Ruby, rb_self: &Monitor) -> Result<bool, Error> {
        Ok(rb_self.sh.get(ruby)?.is_locked())
    }

    fn is_owned(ruby: &Ruby, rb_self: &Monitor) -> Result<bool, Error> {
        Ok(rb_self.sh.get(ruby)?.is_owned_by(me()))
    }

    /// The calling thread's hold count (0 unless it owns the monitor).
    fn count(ruby: &Ruby, rb_self: &Monitor) -> Result<u32, Error> {
        let raw = rb_self.sh.get(ruby)?;
        Ok(if raw.is_owned_by(me()) { raw.count() } else { 0 })
    }

    fn owner_pid(ruby: &Ruby, rb_self: &Monitor) -> Result<Option<u32>, Error> {
        Ok(rb_self.sh.get(ruby)?.mutex().owner_pid())
    }
}

/// After entering: the outermost entry is recorded for the thread-end hook.
fn entered(raw: &RawMonitor) {
    if raw.count() == 1 {
        threads::hold(raw.mutex());
    }
}

/// Exit once; the record goes when the monitor is released.
fn leave(ruby: &Ruby, raw: &RawMonitor) -> Result<(), Error> {
    let me = me();
    raw.exit(me).map_err(|e| monitor_error(ruby, e))?;
    if !raw.is_owned_by(me) {
        threads::release(raw.mutex());
    }
    Ok(())
}

/// Leave a monitor entered by a wait that is then interrupted (see [`mutex::give_back`]).
fn give_back(raw: &RawMonitor, me: Owner, acquired: Acquired) {
    raw.restore(0);
    mutex::give_back(raw.mutex(), me, acquired);
}

impl Drop for Monitor {
    fn drop(&mut self) {
        shared::leak_if_held(self);
    }
}

impl Primitive for Monitor {
    type Raw = RawMonitor;

    fn held_in_this_process(raw: &RawMonitor) -> bool {
        raw.mutex().is_held_by_process(process_shared_core::sys::owner::current_id())
    }

    fn shared(&self) -> &Shared<RawMonitor> {
        &self.sh
    }

    fn describe(raw: &RawMonitor) -> String {
        match raw.mutex().owner_pid() {
            None => "unlocked".to_string(),
            Some(pid) => {
                let owned = raw.is_owned_by(me());
                let count = if owned { format!(" count={}", raw.count()) } else { String::new() };
                format!("locked owner_pid={pid} owned={owned}{count} waiters={}", raw.mutex().has_waiters())
            }
        }
    }
}

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    shared::define_class!(ruby, m, "Monitor" < ruby.class_object(), Monitor {
        constructors;
        fn "enter" => enter(0);
        fn "exit" => exit(0);
        fn "try_enter" => try_enter(-1);
        fn "synchronize" => synchronize(-1);
        fn "mon_locked?" => is_locked(0);
        fn "mon_owned?" => is_owned(0);
        fn "mon_count" => count(0);
        fn "owner_pid" => owner_pid(0);
        lifecycle;
    });
    Ok(())
}
