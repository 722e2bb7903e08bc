//! The one error-mapping module. The exception classes are defined (and documented) in Ruby, in
//! `lib/process_shared/errors.rb`; `init` looks them up (defining any that are missing, so the extension
//! also works when loaded on its own) and keeps them for the life of the process.

use std::sync::OnceLock;

use magnus::{prelude::*, value::Opaque, Error, ExceptionClass, RModule, Ruby};

struct Classes {
    error: Opaque<ExceptionClass>,
    process: Opaque<ExceptionClass>,
    closed: Opaque<ExceptionClass>,
    owner_dead: Opaque<ExceptionClass>,
}

static CLASSES: OnceLock<Classes> = OnceLock::new();

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    let error = m.define_error("Error", ruby.exception_standard_error())?;
    let classes = Classes {
        error: error.into(),
        process: m.define_error("ProcessError", error)?.into(),
        closed: m.define_error("ClosedError", error)?.into(),
        owner_dead: m.define_error("OwnerDeadError", error)?.into(),
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

/// `ProcessShared::Error` with a message.
pub fn error(ruby: &Ruby, msg: impl Into<String>) -> Error {
    Error::new(class(ruby, |c| c.error), msg.into())
}

/// `ProcessShared::Error`: an internal failure that is not the caller's fault.
pub fn internal(ruby: &Ruby, msg: &str) -> Error {
    Error::new(class(ruby, |c| c.error), format!("internal error: {msg}"))
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
