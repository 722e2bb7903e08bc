//! Hooks through which a model checker runs the state machines of [`crate::sync`] (feature `model`, for
//! tests only: the Ruby extension never enables it).
//!
//! A test installs a [`World`] on its thread with [`enter`]; from then on, on that thread, every access to
//! a shared word ([`crate::sys::atomic`]) is first a [`World::point`], and the clock, the futex, the
//! process's owner id and pid, and the liveness oracle are the world's. A model checker that runs its
//! participants as coroutines of one thread (shuttle does) thereby controls every interleaving of the
//! accesses, can stop a participant for good at any of them (a SIGKILL), and can make the oracle lie.
//! With no world installed every hook falls through to the real system call.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::AtomicU32;

use super::owner::Liveness;
use super::{Deadline, FutexWait};

/// What the state machines see of the system while a model runs. Each participant of the model is one
/// "process": the world knows which one is running (`current_*`).
pub trait World {
    /// A scheduling point, before each access to a shared word: the world may run others first, or never
    /// return (the participant was killed here).
    fn point(&self);
    /// The monotonic clock.
    fn now(&self) -> Deadline;
    /// As [`crate::sys::futex_wait`]: sleep while `*word == expected` (compared atomically with going to
    /// sleep), until woken, until `deadline`, or spuriously.
    fn futex_wait(&self, word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> FutexWait;
    /// As [`crate::sys::futex_wake`].
    fn futex_wake(&self, word: &AtomicU32, count: i32) -> usize;
    /// The running participant's owner id (non-zero, within [`crate::sys::owner::ID_MASK`]).
    fn current_id(&self) -> u64;
    /// The running participant's pid.
    fn current_pid(&self) -> u32;
    /// Whether the participant behind owner id `id` has ended (the oracle may be made to lie).
    fn liveness(&self, id: u64) -> Liveness;
    /// How many polls a wait may spin before it sleeps (small: each poll is a step of the model).
    fn spin_limit(&self) -> u32 {
        2
    }
}

thread_local! {
    static WORLD: RefCell<Option<Rc<dyn World>>> = const { RefCell::new(None) };
}

/// Install `world` for the calling thread (replacing any other).
pub fn enter(world: Rc<dyn World>) {
    WORLD.with(|w| *w.borrow_mut() = Some(world));
}

/// Remove the calling thread's world: the hooks fall through to the system again.
pub fn leave() {
    WORLD.with(|w| *w.borrow_mut() = None);
}

/// `f` applied to the calling thread's world, if one is installed.
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&dyn World) -> R) -> Option<R> {
    // The Rc is cloned out so that no borrow is held while `f` runs (it may switch to other participants,
    // which use the world too).
    let world = WORLD.with(|w| w.borrow().clone())?;
    Some(f(&*world))
}

/// The scheduling point of [`crate::sys::atomic`].
#[inline]
pub(crate) fn point() {
    with(|w| w.point());
}
