//! The primitives: `#[repr(C)]` state machines over words in shared memory.
//!
//! Each type is plain data, valid when zeroed, that can be placed in a `MAP_SHARED` mapping and used from
//! every process that maps it. None keeps per-waiter state in shared memory (what is kept is per process,
//! in [holder tables](holders), and judged by the process's liveness), so a process that dies while
//! waiting leaves nothing behind that the others do not clear up. Every slow path (locks, semaphore, event, latch, barrier, condition
//! variable, and so the queue) waits through the one `wait_loop`, which sleeps on
//! [`crate::sys::futex_wait`] in bounded slices (at most [`SLICE`]), so that even a wake-up lost to a
//! process killed between being woken and acting on it is recovered from by the others. A bare
//! [`RawCondvar`] wait still ends only when it is signalled or its deadline passes: like any condition
//! variable's, its signal goes to one waiter, even one that then dies; the queue's waits are bounded
//! ([`RawCondvar::wait_bounded`]) and look at the queue again every slice.

mod atomic;
mod barrier;
mod condvar;
mod event;
pub mod holders;
mod monitor;
mod mutex;
mod queue;
mod rwlock;
mod semaphore;

pub use atomic::{RawAtomicInt, RawCounter};
pub use barrier::{Arrival, Arrived, RawBarrier};
pub use condvar::{RawCondvar, CONDVAR_SLOTS};
pub use event::{RawEvent, RawLatch};
pub use monitor::{MonitorError, RawMonitor};
pub use mutex::{suspects, Acquired, MutexError, RawMutex, OWNER_DIED, OWNER_MASK, WAITERS};
pub use queue::{PopOutcome, PushOutcome, Pushed, QueueHeader, QueueRef, QUEUE_FORMAT, QUEUE_HEADER, RECORD_HEADER};
pub use rwlock::{RawRwLock, ReadError, READER_SLOTS};
pub use semaphore::{PostError, RawSemaphore, SEMAPHORE_SLOTS};

use std::time::Duration;

use crate::sys::{Deadline, FutexWait};

/// Longest single futex sleep. Waits longer than this are made of several sleeps with the same deadline.
pub const SLICE: Duration = Duration::from_millis(200);

/// How many times a slow path polls the word (with a CPU pause) before going to sleep: at most some tens of
/// microseconds, and only with the GVL released. A wake-up through the kernel costs tens of microseconds
/// here; a bounded spin catches a partner that is about to post or unlock. Measured on this 2-core machine
/// (cross-process semaphore ping-pong): 100 polls gave 0.4–1.7 µs per round trip, 1000 gave 0.27 µs,
/// 3000 no better. A waiter that really blocks spends one spin and then sleeps (its CPU time stays near
/// zero; `rake bench` shows it).
pub const SPIN: u32 = 1000;

/// Who holds a lock: a process and a thread token inside it (the Ruby binding uses the Ruby thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The process's owner id ([`crate::sys::owner::current_id`]): non-zero, within
    /// [`crate::sys::owner::ID_MASK`], and what liveness is judged by.
    pub id: u64,
    /// Thread token, unique among the live threads of the process; must be non-zero.
    pub thread: u64,
    /// The process's pid as it sees itself (for error messages only: it means nothing in another pid
    /// namespace).
    pub pid: u32,
}

impl Owner {
    /// The calling process, with thread token `thread`.
    #[inline]
    pub fn current(thread: u64) -> Owner {
        Owner { id: crate::sys::owner::current_id(), thread, pid: crate::sys::process::current_pid() }
    }
}

/// Whether the process behind owner id `id` has provably ended ("cannot tell" is alive).
#[inline]
pub(crate) fn owner_dead(id: u64) -> bool {
    crate::sys::owner::liveness(id) == crate::sys::owner::Liveness::Dead
}

/// The outcome of one call to a blocking slow path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait<T> {
    /// The operation completed.
    Done(T),
    /// The deadline passed; nothing changed.
    TimedOut,
    /// A signal interrupted the sleep; nothing changed. Call again (same deadline) after handling it.
    Interrupted,
    /// The futex call failed with this errno; nothing changed.
    Failed(i32),
}

/// What one look at a primitive's state decided (see [`wait_loop`]).
pub(crate) enum Step<T> {
    /// Finished: the wait returns this.
    Done(T),
    /// The state moved under us (a CAS lost): look again at once.
    Again,
    /// Busy, but nobody sleeps yet (the holder is presumably running): worth polling a little longer.
    Spin,
    /// Announced as a sleeper (a waiters bit set or counted) and saw the futex word hold this value.
    Park(u32),
}

impl<T> Step<T> {
    /// Park on `word`, seen holding `seen`, once its waiters bit `bit` is set (setting it if need be): the
    /// last step of a look whose sleepers announce themselves by a bit in the futex word itself (event,
    /// latch). `Again` if the word changed meanwhile.
    #[inline]
    pub(crate) fn park_flagged(word: &crate::sys::atomic::AtomicU32, seen: u32, bit: u32) -> Step<T> {
        use std::sync::atomic::Ordering;
        // Relaxed: the futex syscall re-reads the word; the bit only has to be set atomically.
        if seen & bit == 0 && word.compare_exchange(seen, seen | bit, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return Step::Again;
        }
        Step::Park(seen | bit)
    }
}

/// What [`wait_loop`] tells each look.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Look {
    /// Still within the spin budget: the look may answer [`Step::Spin`] (otherwise it must park).
    pub may_spin: bool,
    /// A [`SLICE`] has passed since the wait began or since the last look that was told so: time to check
    /// whether a holder died.
    pub check_holders: bool,
}

/// The one deadline-aware spin-then-futex wait of the crate: looks at the state until it says done, polls
/// (with a CPU pause) while it says spinning is worthwhile and the budget of [`SPIN`] polls lasts, then
/// sleeps on `futex` in slices of at most [`SLICE`], each ended early by a wake, a change of the word, the
/// deadline, or (if `interruptible`) a signal. Nothing but the look's own steps changes any state.
#[cold]
pub(crate) fn wait_loop<T>(
    futex: &crate::sys::atomic::AtomicU32,
    deadline: Option<Deadline>,
    interruptible: bool,
    mut look: impl FnMut(Look) -> Step<T>,
) -> Wait<T> {
    let mut spins = 0;
    let spin_limit = spin_limit();
    let mut check_at = Deadline::after(SLICE);
    loop {
        let check_holders = check_at.expired();
        if check_holders {
            check_at = Deadline::after(SLICE);
        }
        match look(Look { may_spin: spins < spin_limit, check_holders }) {
            Step::Done(t) => return Wait::Done(t),
            Step::Again => {}
            Step::Spin => {
                spins += 1;
                std::hint::spin_loop();
            }
            Step::Park(expected) => {
                spins = spin_limit; // woken: look, then sleep again (spinning pays only before the first sleep)
                if let Some(out) = sleep_step(futex, expected, deadline, interruptible) {
                    return out;
                }
            }
        }
    }
}

/// The spin budget of [`wait_loop`]: [`SPIN`], or the model's (each poll is a step of a model).
#[inline]
fn spin_limit() -> u32 {
    #[cfg(feature = "model")]
    if let Some(n) = crate::sys::model::with(|w| w.spin_limit()) {
        return n;
    }
    SPIN
}

/// One bounded sleep on `word` while it equals `expected`: the sleep step of [`wait_loop`].
///
/// Returns `None` to mean "re-check the state and sleep again" (woken, value changed, or a slice ended
/// before the caller's deadline) and `Some(outcome)` when the caller must stop waiting.
#[inline]
fn sleep_step<T>(
    word: &crate::sys::atomic::AtomicU32,
    expected: u32,
    deadline: Option<Deadline>,
    interruptible: bool,
) -> Option<Wait<T>> {
    let slice_end = Deadline::after(SLICE);
    let until = slice_end.min_opt(deadline);
    match crate::sys::futex_wait(word, expected, Some(until)) {
        FutexWait::Woken | FutexWait::ValueChanged => None,
        FutexWait::TimedOut => match deadline {
            Some(d) if d.expired() => Some(Wait::TimedOut),
            _ => None,
        },
        FutexWait::Interrupted if interruptible => Some(Wait::Interrupted),
        FutexWait::Interrupted => None,
        FutexWait::Failed(e) => Some(Wait::Failed(e)),
    }
}
