//! The one place that releases the GVL. Every blocking call of every class goes through [`wait`].
//!
//! Facts this relies on (measured, see the project's design notes):
//! - `rb_thread_call_without_gvl2` never raises (unlike `..._gvl`, which may raise over a result we already
//!   have, losing an acquired lock or permit). It may return *without running the function* when an
//!   interrupt is already pending, so the result slot starts as "not run".
//! - With `RUBY_UBF_IO` as the unblock function, `Thread#raise`, `Thread#kill`, `Timeout` and Ctrl-C make
//!   Ruby send the blocked thread SIGVTALRM (repeatedly, until it leaves the region). Ruby installs that
//!   handler without `SA_RESTART`, so the shared futex wait returns `EINTR` and the core returns
//!   [`Wait::Interrupted`] having changed nothing.
//! - Then `rb_thread_check_ints` (under protect) runs the pending interrupt: an exception comes back as `Err`
//!   and unwinds through Rust normally; a signal trap that merely ran returns `Ok` and we wait again with the
//!   same absolute deadline. A plain signal arriving (SIGCHLD) is therefore never an error.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use magnus::{Error, Ruby};
use process_shared_core::sync::Wait;
use process_shared_core::sys::Deadline;

use super::args::Patience;

use crate::ruby_api::errors;

struct Slot<F, R> {
    func: Option<F>,
    result: Option<std::thread::Result<R>>,
}

/// Runs the closure in the slot, catching any panic so that none unwinds into C.
unsafe extern "C" fn trampoline<F: FnOnce() -> R, R>(data: *mut c_void) -> *mut c_void {
    // SAFETY: `data` is the `&mut Slot<F, R>` passed by `call_without_gvl`, alive and exclusively ours for
    // the duration of this call (Ruby calls the function at most once, on the calling thread).
    let slot = unsafe { &mut *data.cast::<Slot<F, R>>() };
    if let Some(f) = slot.func.take() {
        slot.result = Some(catch_unwind(AssertUnwindSafe(f)));
    }
    std::ptr::null_mut()
}

/// Run `func` with the GVL released, unblockable by Ruby's `RUBY_UBF_IO`. `None` if Ruby did not run it
/// because an interrupt was pending; `Some(Err)` if it panicked.
fn call_without_gvl<F: FnOnce() -> R, R>(func: F) -> Option<std::thread::Result<R>> {
    let mut slot = Slot { func: Some(func), result: None };
    // SAFETY: RUBY_UBF_IO is the C macro `((rb_unblock_function_t *)-1)`, a sentinel Ruby compares against
    // and never calls; bindgen does not emit it. A non-null function pointer value is valid to hold.
    let ubf_io = unsafe { std::mem::transmute::<isize, unsafe extern "C" fn(*mut c_void)>(-1) };
    // SAFETY: `trampoline::<F, R>` matches `slot`'s type; `slot` outlives the call; the function touches no
    // Ruby object (it only runs core code on shared memory the caller keeps mapped) and catches panics.
    unsafe {
        rb_sys::rb_thread_call_without_gvl2(
            Some(trampoline::<F, R>),
            (&mut slot as *mut Slot<F, R>).cast(),
            Some(ubf_io),
            std::ptr::null_mut(),
        );
    }
    slot.result
}

/// Run one blocking step of a core slow path (it must take an absolute deadline, so it can simply be
/// called again) with the GVL released, until it finishes or times out. Interrupts are handled between
/// steps. `Ok(Some(v))`: done; `Ok(None)`: timed out; `Err`: a Ruby exception (interrupt) or OS error. In
/// every `Err`/`None` case nothing was taken.
///
/// A step can succeed just as an interrupt arrives: the step takes the permit or lock without the GVL,
/// the interrupt is queued while the thread waits to get the GVL back, and would come out of the very
/// next Ruby instruction, over a result the caller can no longer give back. So after a success the due
/// interrupts are run here, and if one raises, `undo` gives back what the step took before the exception
/// propagates: as `Thread::Queue#pop` and `Thread::Mutex#lock` do, an interrupted wait takes nothing.
pub fn wait<T>(ruby: &Ruby, mut step: impl FnMut() -> Wait<T>, undo: impl FnOnce(T)) -> Result<Option<T>, Error> {
    // Like Ruby's own blocking calls, deliver what is due at a blocking point first: an interrupt queued
    // under `Thread.handle_interrupt(... => :on_blocking)` (rb_thread_check_ints is the blocking check).
    ruby.thread_check_ints()?;
    loop {
        match call_without_gvl(&mut step) {
            None | Some(Ok(Wait::Interrupted)) => ruby.thread_check_ints()?,
            Some(Ok(Wait::Done(v))) => {
                return match ruby.thread_check_ints() {
                    Ok(()) => Ok(Some(v)),
                    Err(e) => {
                        undo(v);
                        Err(e)
                    }
                };
            }
            Some(Ok(Wait::TimedOut)) => return Ok(None),
            Some(Ok(Wait::Failed(e))) => return Err(errors::errno(ruby, e, "futex wait")),
            Some(Err(_)) => return Err(errors::internal(ruby, "panic in a blocking wait")),
        }
    }
}

/// Finish an acquisition whose non-sleeping attempt (with the GVL held) gave `fast`: that, or `None` if
/// `patience` is [`Patience::NoWait`], or else the outcome of [`wait`]ing with `step(deadline)`. The one
/// try-then-sleep sequence of every lock-like call (Mutex, Monitor, the write side of ReadWriteLock).
pub fn acquire<T>(
    ruby: &Ruby,
    fast: Option<T>,
    patience: Patience,
    mut step: impl FnMut(Option<Deadline>) -> Wait<T>,
    undo: impl FnOnce(T),
) -> Result<Option<T>, Error> {
    match (fast, patience) {
        (Some(v), _) => Ok(Some(v)),
        (None, Patience::NoWait) => Ok(None),
        (None, Patience::Wait(deadline)) => wait(ruby, || step(deadline), undo),
    }
}

/// Like [`wait`], but for a step that must complete even if the thread is interrupted (re-taking a lock
/// after a condition wait): interrupts are still run between steps, and the first exception raised is
/// returned *after* the step has completed.
pub fn wait_uninterruptibly<T>(ruby: &Ruby, mut step: impl FnMut() -> Wait<T>) -> (Option<T>, Option<Error>) {
    let mut pending = None;
    loop {
        match call_without_gvl(&mut step) {
            None | Some(Ok(Wait::Interrupted)) => {
                // Each check consumes what is pending, so this cannot spin; keep the first exception.
                if let Err(e) = ruby.thread_check_ints() {
                    pending.get_or_insert(e);
                }
            }
            Some(Ok(Wait::Done(v))) => return (Some(v), pending),
            Some(Ok(Wait::TimedOut)) => return (None, pending),
            Some(Ok(Wait::Failed(e))) => return (None, Some(errors::errno(ruby, e, "futex wait"))),
            Some(Err(_)) => return (None, Some(errors::internal(ruby, "panic in a blocking wait"))),
        }
    }
}
