//! The primitives: `#[repr(C)]` state machines over words in shared memory.
//!
//! Each type is plain data, valid when zeroed, that can be placed in a `MAP_SHARED` mapping and used from
//! every process that maps it. None keeps per-waiter state in shared memory, so a process that dies while
//! waiting leaves nothing behind. The lock and semaphore slow paths (and the queue's waits) sleep through
//! [`crate::sys::futex_wait`] in bounded slices (at most [`SLICE`]), so that even a wake-up lost to a
//! process killed between being woken and acting on it is recovered from by the others. A bare
//! [`RawCondvar`] wait sleeps until it is signalled or its deadline passes: like any condition variable's,
//! its signal goes to one waiter, even one that then dies.

mod atomic;
mod barrier;
mod condvar;
mod event;
mod monitor;
mod mutex;
mod queue;
mod rwlock;
mod semaphore;

pub use atomic::{RawAtomicInt, RawCounter};
pub use barrier::{Arrival, Arrived, RawBarrier};
pub use condvar::RawCondvar;
pub use event::{RawEvent, RawLatch};
pub use monitor::{MonitorError, RawMonitor};
pub use mutex::{Acquired, MutexError, RawMutex, OWNER_DIED, PID_MASK, WAITERS};
pub use queue::{PopOutcome, PushOutcome, Pushed, QueueHeader, QueueRef, QUEUE_HEADER, RECORD_HEADER};
pub use rwlock::{RawRwLock, ReadError, ReaderSlot, READER_SLOTS};
pub use semaphore::{PostError, RawSemaphore};

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
    /// Process id; must be non-zero and fit in [`RawMutex`]'s pid bits.
    pub pid: u32,
    /// Thread token, unique among the live threads of `pid`; must be non-zero.
    pub thread: u64,
    /// The process's start time ([`crate::sys::process::current_start_time`]), to survive pid reuse.
    pub start: u64,
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

/// One bounded sleep on `word` while it equals `expected`: the shared sleep step of every slow path.
///
/// Returns `None` to mean "re-check the state and sleep again" (woken, value changed, or a slice ended
/// before the caller's deadline) and `Some(outcome)` when the caller must stop waiting.
#[inline]
pub(crate) fn sleep_step<T>(
    word: &std::sync::atomic::AtomicU32,
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
