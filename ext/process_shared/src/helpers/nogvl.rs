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
//!
//! Under a fiber scheduler (`Fiber.set_scheduler`, a non-blocking fiber: what `rb_fiber_scheduler_current`
//! reports), blocking the native thread would stall every fiber of the thread. Like the test scheduler's
//! `blocking_operation_wait` and Ruby's own `Process.wait` hook, the wait then runs in a helper Ruby thread
//! ([`offload`]) while the calling fiber joins it, which a scheduler turns into `block`/`unblock`: other
//! fibers run meanwhile. The step is the same, so ownership (the caller's `Owner`, captured by the step),
//! deadlines and dead-owner recovery are unchanged. An exception raised into the waiting fiber (a
//! `Timeout`, `Thread#raise`) kills the helper, whose wait ends through the same interrupt path as a
//! thread's, and whatever the step took meanwhile is given back: as in a thread, an interrupted wait takes
//! nothing.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use magnus::{Error, Ruby};
use process_shared_core::sync::Wait;
use process_shared_core::sys::Deadline;

use super::args::Patience;

use crate::helpers::errors;

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
pub fn wait<T>(ruby: &Ruby, step: impl FnMut() -> Wait<T>, undo: impl FnOnce(T)) -> Result<Option<T>, Error> {
    if scheduled() {
        return offload(ruby, step, undo);
    }
    wait_here(ruby, step, undo)
}

/// Whether the calling fiber runs under a fiber scheduler (non-blocking, with a scheduler set).
#[inline]
fn scheduled() -> bool {
    // SAFETY: called with the GVL held; only reads the current thread's scheduler and fiber.
    let s = unsafe { rb_sys::rb_fiber_scheduler_current() };
    s != rb_sys::special_consts::Qnil as rb_sys::VALUE
}

/// [`wait`], on this native thread.
fn wait_here<T>(ruby: &Ruby, mut step: impl FnMut() -> Wait<T>, undo: impl FnOnce(T)) -> Result<Option<T>, Error> {
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
pub fn wait_uninterruptibly<T>(ruby: &Ruby, step: impl FnMut() -> Wait<T>) -> (Option<T>, Option<Error>) {
    if scheduled() {
        return offload_uninterruptibly(ruby, step);
    }
    wait_uninterruptibly_here(ruby, step)
}

fn wait_uninterruptibly_here<T>(ruby: &Ruby, mut step: impl FnMut() -> Wait<T>) -> (Option<T>, Option<Error>) {
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

/// The work a helper thread does for [`offload`]: a wait, with what it takes or must give back.
struct Job<F, T> {
    run: Option<F>,
    /// The helper's outcome (`None` until it ran).
    out: Option<T>,
}

/// The helper Ruby thread's body: run the job with the GVL, catching panics (none unwinds into C).
unsafe extern "C" fn job_body<F: FnOnce(&Ruby) -> T, T>(data: *mut c_void) -> rb_sys::VALUE {
    // SAFETY: `data` is the `&mut Job` that `in_helper` keeps alive until this thread has been joined;
    // only this thread touches it meanwhile (the caller waits in `join`).
    let job = unsafe { &mut *data.cast::<Job<F, T>>() };
    if let (Some(run), Ok(ruby)) = (job.run.take(), Ruby::get()) {
        if let Ok(out) = catch_unwind(AssertUnwindSafe(|| run(&ruby))) {
            job.out = Some(out);
        }
    }
    rb_sys::special_consts::Qnil as rb_sys::VALUE
}

/// Run `run` in a new Ruby thread and join it from the calling fiber (a scheduler runs other fibers
/// meanwhile). `run` and its result need not be `Send`: the helper only runs while this fiber is parked in
/// `join`, and the GVL hands over between them, so no two threads ever touch what `run` captured at once
/// (the steps only read shared memory through atomics, and use no thread-local state). If the join raises
/// (an exception for the caller), `on_raise(thread)` decides what the helper gets (`Thread#kill`, or
/// nothing) and the helper is joined again, until it has ended, before anything borrowed by `run` goes away. The helper's outcome (if it ran) and the first exception the join met.
fn in_helper<F: FnOnce(&Ruby) -> T, T>(run: F, on_raise: impl Fn(magnus::Value)) -> (Option<T>, Option<Error>) {
    use magnus::value::ReprValue;
    let mut job = Job { run: Some(run), out: None };
    // SAFETY: `job_body::<F, T>` matches `job`, which outlives the thread: it is joined below before this
    // function returns, whatever the joins raise (each join is protected: no longjmp skips this frame).
    // `rb_thread_create` raises ThreadError if no thread can be made: protected too.
    let created = magnus::rb_sys::protect(|| unsafe {
        rb_sys::rb_thread_create(Some(job_body::<F, T>), (&mut job as *mut Job<F, T>).cast())
    });
    let thread = match created {
        // SAFETY: a VALUE that `rb_thread_create` returned: a live Thread.
        Ok(t) => unsafe { <magnus::Value as magnus::rb_sys::FromRawValue>::from_raw(t) },
        Err(e) => return (None, Some(e)),
    };
    let mut first = None;
    loop {
        match thread.funcall::<_, _, magnus::Value>("join", ()) {
            Ok(_) => break,
            Err(e) => {
                if first.is_none() {
                    on_raise(thread);
                }
                first.get_or_insert(e);
            }
        }
    }
    (job.out, first)
}

/// [`wait`] under a fiber scheduler: the wait runs in a helper thread (see the module docs).
#[cold]
fn offload<T>(ruby: &Ruby, step: impl FnMut() -> Wait<T>, undo: impl FnOnce(T)) -> Result<Option<T>, Error> {
    ruby.thread_check_ints()?;
    // What the helper took but gave up on (its own interrupt, a kill): given back here, by `undo`.
    let run = |ruby: &Ruby| {
        let mut taken = None;
        let out = wait_here(ruby, step, |v| taken = Some(v));
        (out.map_err(|e| (e, taken.is_some())), taken)
    };
    use magnus::value::ReprValue;
    let kill = |thread: magnus::Value| {
        let _ = thread.funcall::<_, _, magnus::Value>("kill", ());
    };
    match in_helper(run, kill) {
        // The caller was interrupted: give back whatever the helper ended up with.
        (out, Some(e)) => {
            if let Some((Ok(Some(v)), _) | (_, Some(v))) = out {
                undo(v);
            }
            Err(e)
        }
        (Some((Ok(v), _)), None) => Ok(v),
        (Some((Err((e, _)), taken)), None) => {
            if let Some(v) = taken {
                undo(v);
            }
            Err(e)
        }
        (None, None) => Err(errors::internal(ruby, "a blocking wait's helper thread did not run")),
    }
}

/// [`wait_uninterruptibly`] under a fiber scheduler: the helper completes the step whatever the caller
/// meets meanwhile (it is not killed); the first exception comes back with the result.
#[cold]
fn offload_uninterruptibly<T>(ruby: &Ruby, step: impl FnMut() -> Wait<T>) -> (Option<T>, Option<Error>) {
    let run = |ruby: &Ruby| {
        let (v, e) = wait_uninterruptibly_here(ruby, step);
        (v, e.map(|e| e.to_string()))
    };
    match in_helper(run, |_| {}) {
        (Some((v, helper_error)), first) => {
            (v, first.or_else(|| helper_error.map(|m| errors::internal(ruby, &format!("blocking wait: {m}")))))
        }
        (None, first) => {
            (None, first.or_else(|| Some(errors::internal(ruby, "a blocking wait's helper thread did not run"))))
        }
    }
}
