//! The one error-mapping module. The exception classes are defined (and documented) in Ruby, in
//! `lib/process_shared/errors.rb`; `init` looks them up (defining any that are missing, with the same
//! superclasses, so the extension also works when loaded on its own) and keeps them for the life of the
//! process. `ProcessShared::Error` is a tag module that each of them includes; each class subclasses what
//! the standard library raises for the same misuse.

use std::sync::OnceLock;

use magnus::{prelude::*, value::Opaque, Error, ExceptionClass, RModule, Ruby};

struct Classes {
    process: Opaque<ExceptionClass>,
    closed: Opaque<ExceptionClass>,
    closed_queue: Opaque<ExceptionClass>,
    incompatible: Opaque<ExceptionClass>,
    internal: Opaque<ExceptionClass>,
    owner_dead: Opaque<ExceptionClass>,
}

static CLASSES: OnceLock<Classes> = OnceLock::new();

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    let tag = m.define_module("Error")?;
    let define = |name: &str, superclass: ExceptionClass| -> Result<Opaque<ExceptionClass>, Error> {
        let class = m.define_error(name, superclass)?;
        class.include_module(tag)?;
        Ok(class.into())
    };
    // ClosedQueueError is core Ruby (< StopIteration); fall back to StopIteration if it were missing.
    let closed_queue = ruby
        .class_object()
        .const_get::<_, ExceptionClass>("ClosedQueueError")
        .unwrap_or_else(|_| ruby.exception_stop_iteration());
    let classes = Classes {
        process: define("ProcessError", ruby.exception_thread_error())?,
        closed: define("ClosedError", ruby.exception_io_error())?,
        closed_queue: define("ClosedQueueError", closed_queue)?,
        incompatible: define("IncompatibleError", ruby.exception_type_error())?,
        internal: define("InternalError", ruby.exception_runtime_error())?,
        owner_dead: define("OwnerDeadError", ruby.exception_standard_error())?,
    };
    let _ = CLASSES.set(classes);
    Ok(())
}

fn class(ruby: &Ruby, pick: fn(&Classes) -> Opaque<ExceptionClass>) -> ExceptionClass {
    match CLASSES.get() {
        Some(c) => ruby.get_inner(pick(c)),
        // Unreachable after init; fall back to a standard class rather than panic.
        None => ruby.exception_runtime_error(),
    }
}

/// `ProcessShared::ClosedError`: use after `close`.
pub fn closed(ruby: &Ruby, what: &str) -> Error {
    Error::new(class(ruby, |c| c.closed), format!("{what} is closed"))
}

/// `ProcessShared::ProcessError`: ownership misuse.
pub fn process(ruby: &Ruby, msg: impl Into<String>) -> Error {
    Error::new(class(ruby, |c| c.process), msg.into())
}

/// `ProcessShared::OwnerDeadError` (with `#pid`): the holder died holding the lock, which the caller
/// now holds.
pub fn owner_dead(ruby: &Ruby, pid: u32) -> Error {
    let msg = format!(
        "the owner of this lock (pid {pid}) died holding it; this thread holds it now: \
         repair the data it protects, then unlock"
    );
    owner_dead_with(ruby, pid, msg)
}

/// `OwnerDeadError` for a reader of a `ReadWriteLock` whose writer died and whose data no writer has
/// repaired yet: the caller holds a read lock.
pub fn writer_dead(ruby: &Ruby, pid: u32) -> Error {
    let msg = format!(
        "the writer holding this lock (pid {pid}) died; the data may be half-written and no writer has taken \
         the lock over since; this thread holds a read lock"
    );
    owner_dead_with(ruby, pid, msg)
}

fn owner_dead_with(ruby: &Ruby, pid: u32, msg: String) -> Error {
    let class = class(ruby, |c| c.owner_dead);
    match class.new_instance((msg.as_str(),)) {
        Ok(e) => {
            let _ = e.funcall::<_, _, magnus::Value>("instance_variable_set", ("@pid", pid));
            Error::from(e)
        }
        Err(e) => e,
    }
}

/// `ProcessShared::IncompatibleError` (a `TypeError`): a named object of another class or layout, or a
/// file under that name that is not one of ours.
pub fn incompatible(ruby: &Ruby, msg: impl Into<String>) -> Error {
    Error::new(class(ruby, |c| c.incompatible), msg.into())
}

/// `ProcessShared::ClosedQueueError` (a `::ClosedQueueError`): a push on a closed queue.
pub fn closed_queue(ruby: &Ruby) -> Error {
    Error::new(class(ruby, |c| c.closed_queue), "queue closed")
}

/// `ProcessShared::InternalError` (a `RuntimeError`): an internal failure that is not the caller's fault.
pub fn internal(ruby: &Ruby, msg: &str) -> Error {
    Error::new(class(ruby, |c| c.internal), format!("internal error: {msg}"))
}

/// The matching `Errno::*` exception, with a message saying what failed.
pub fn errno(ruby: &Ruby, errno: i32, what: &str) -> Error {
    match ruby.exception_system_call_error().funcall::<_, _, magnus::Exception>("new", (what, errno)) {
        Ok(e) => Error::from(e),
        Err(e) => e,
    }
}

/// `Errno::*` from an `io::Error`.
pub fn io(ruby: &Ruby, e: std::io::Error, what: &str) -> Error {
    match e.raw_os_error() {
        Some(n) => errno(ruby, n, what),
        None => internal(ruby, &format!("{what}: {e}")),
    }
}

/// `ArgumentError`.
pub fn arg(ruby: &Ruby, msg: impl Into<String>) -> Error {
    Error::new(ruby.exception_arg_error(), msg.into())
}
