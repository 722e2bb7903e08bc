//! A process-shared cyclic barrier: `parties` waiters meet, all are released together, and the barrier is
//! ready for the next round (a new *generation*).
//!
//! Layout (`#[repr(C)]`, 16 bytes): `state` (one 64-bit word, changed only by CAS, so every transition is
//! atomic), `seq` (the futex word: bumped after every transition that releases waiters), `parties`.
//!
//! `state` bits:
//!
//! | bits    | meaning                                                                            |
//! |---------|------------------------------------------------------------------------------------|
//! | 0..16   | `arrived`: waiters of the current generation (always `< parties`)                 |
//! | 16      | `BROKEN`: a waiter timed out; everyone waiting, and arriving, gets false until reset |
//! | 17..49  | generation (32 bits, wrapping after 2^32 rounds)                                   |
//! | 49..64  | outcomes: bit i tells whether generation `current - 1 - i` *tripped* (1) or was reset (0) |
//!
//! | event                      | arrived | BROKEN | generation | outcomes      | wakes |
//! |----------------------------|---------|--------|------------|---------------|-------|
//! | arrive (not the last)      | +1      | –      | –          | –             | –     |
//! | arrive (the last): trip    | 0       | –      | +1         | `<< 1 \| 1`   | all   |
//! | timeout: break             | –       | 1      | –          | –             | all   |
//! | interrupt: leave           | -1      | –      | –          | –             | –     |
//! | reset                      | 0       | 0      | +1         | `<< 1`        | all   |
//!
//! A waiter remembers its generation. Woken, it returns false if the barrier is broken in that generation;
//! true if the generation moved on and the outcomes bit says it tripped, false if it was reset.
//!
//! Limits (nothing per waiter is kept in shared memory, so a dead waiter leaves nothing to clean up):
//! - The outcomes remember the last 15 rounds. A waiter that gets to run only after more than 15 further
//!   rounds ended (which takes resets, or more participants than parties, while it is descheduled) cannot
//!   tell how its own round ended and reports that it tripped.
//! - The generation wraps after 2^32 rounds; a waiter descheduled for exactly that many would take the
//!   current round for its own.
//! - A waiter killed while waiting stays counted as arrived, so that round trips one arrival early.

use crate::sys::atomic::{AtomicU32, AtomicU64};
use std::sync::atomic::Ordering;

use super::{wait_loop, Look, Step, Wait};
use crate::sys::{futex_wake, Deadline};

const ARRIVED: u64 = 0xFFFF; // bits 0..16: waiters of this generation
const BROKEN: u64 = 1 << 16; // a waiter timed out: all return false until reset
const GEN_SHIFT: u32 = 17; // generation in bits 17..49
const GEN_MASK: u64 = 0xFFFF_FFFF; // 32 bits, wrapping
const OUTCOMES_SHIFT: u32 = 49; // bits 49..64: how the last 15 generations ended
const OUTCOMES_KEPT: u64 = 64 - OUTCOMES_SHIFT as u64;

#[inline]
fn generation(s: u64) -> u32 {
    ((s >> GEN_SHIFT) & GEN_MASK) as u32
}

/// `s` moved on to the next generation, with no one arrived and not broken; `tripped` records how the
/// generation that ends did.
#[inline]
fn next_generation(s: u64, tripped: bool) -> u64 {
    let outcomes = ((s >> OUTCOMES_SHIFT) << 1) | u64::from(tripped);
    let gen = (u64::from(generation(s)) + 1) & GEN_MASK;
    (outcomes << OUTCOMES_SHIFT) | (gen << GEN_SHIFT)
}

/// A waiter's place: which generation it arrived in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    generation: u32,
}

/// What `arrive` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrived {
    /// This was the last party: the barrier tripped and everyone is released.
    Tripped,
    /// The barrier is broken: return false at once.
    Broken,
    /// Counted; wait for the others with [`RawBarrier::wait_slow`].
    Waiting(Arrival),
}

/// See the module documentation.
#[repr(C)]
#[derive(Debug, Default)]
pub struct RawBarrier {
    state: AtomicU64,
    seq: AtomicU32,
    parties: AtomicU32,
}

impl RawBarrier {
    /// The most parties a barrier may have.
    pub const PARTIES_MAX: u32 = ARRIVED as u32;

    /// Set the number of parties (1..=[`RawBarrier::PARTIES_MAX`]) before anyone else can see the barrier.
    pub fn init(&self, parties: u32) {
        // Relaxed: published to other processes by fork or a later release.
        self.parties.store(parties.clamp(1, Self::PARTIES_MAX), Ordering::Relaxed);
    }

    /// How many parties it waits for.
    pub fn parties(&self) -> u32 {
        self.parties.load(Ordering::Relaxed).max(1)
    }

    /// How many are waiting now (0 while broken).
    pub fn waiting(&self) -> u32 {
        let s = self.state.load(Ordering::Relaxed);
        if s & BROKEN != 0 {
            0
        } else {
            (s & ARRIVED) as u32
        }
    }

    /// Whether a waiter timed out since the last reset.
    pub fn is_broken(&self) -> bool {
        self.state.load(Ordering::Acquire) & BROKEN != 0
    }

    /// Arrive at the barrier. Never sleeps.
    pub fn arrive(&self) -> Arrived {
        let parties = u64::from(self.parties());
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & BROKEN != 0 {
                return Arrived::Broken;
            }
            let last = (s & ARRIVED) + 1 >= parties;
            let new = if last { next_generation(s, true) } else { s + 1 };
            // AcqRel: the last arrival acquires everyone's writes before the barrier and releases them to
            // all (with the `seq` bump that follows); the others release theirs to it.
            match self.state.compare_exchange_weak(s, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) if last => {
                    self.wake_all();
                    return Arrived::Tripped;
                }
                Ok(_) => return Arrived::Waiting(Arrival { generation: generation(s) }),
                Err(cur) => s = cur,
            }
        }
    }

    /// How the generation of `a` ended, if it has: `Some(true)` tripped, `Some(false)` broken or reset.
    fn outcome(&self, a: Arrival, s: u64) -> Option<bool> {
        let gen = generation(s);
        if gen == a.generation {
            return if s & BROKEN != 0 { Some(false) } else { None };
        }
        let behind = u64::from(gen.wrapping_sub(a.generation));
        if behind > OUTCOMES_KEPT {
            return Some(true); // too old to tell; see the module documentation
        }
        Some((s >> (OUTCOMES_SHIFT as u64 + behind - 1)) & 1 == 1)
    }

    /// After [`RawBarrier::arrive`] returned `Waiting(a)`: block until its generation ends (`Done(true)`
    /// tripped, `Done(false)` broken or reset), `deadline` passes (then the barrier is broken, unless it
    /// tripped just then), or (if `interruptible`) a signal arrives (then call again, or
    /// [`RawBarrier::leave`]).
    #[cold]
    pub fn wait_slow(&self, a: Arrival, deadline: Option<Deadline>, interruptible: bool) -> Wait<bool> {
        let out = wait_loop(&self.seq, deadline, interruptible, |look: Look| {
            // SeqCst (both loads): read `seq` before `state`; the waker changes `state` before bumping
            // `seq`, so either we see the new state or the futex sees the new `seq` and does not sleep.
            let q = self.seq.load(Ordering::SeqCst);
            match self.outcome(a, self.state.load(Ordering::SeqCst)) {
                Some(done) => Step::Done(done),
                None if look.may_spin => Step::Spin,
                None => Step::Park(q),
            }
        });
        match out {
            Wait::TimedOut => self.time_out(a),
            out => out,
        }
    }

    /// The deadline passed: break the barrier for everyone, unless the generation ended just now.
    fn time_out(&self, a: Arrival) -> Wait<bool> {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if let Some(done) = self.outcome(a, s) {
                return if done { Wait::Done(true) } else { Wait::TimedOut };
            }
            // AcqRel: as in `arrive`.
            match self.state.compare_exchange_weak(s, s | BROKEN, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.wake_all();
                    return Wait::TimedOut;
                }
                Err(cur) => s = cur,
            }
        }
    }

    /// Withdraw the arrival `a` (an interrupted wait), if its generation has not ended. True if withdrawn;
    /// false if it tripped (or broke) meanwhile and there is nothing to take back.
    pub fn leave(&self, a: Arrival) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if generation(s) != a.generation || s & BROKEN != 0 || s & ARRIVED == 0 {
                return false;
            }
            // Relaxed: withdrawing publishes nothing.
            match self.state.compare_exchange_weak(s, s - 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(cur) => s = cur,
            }
        }
    }

    /// Start a new generation, not broken: everyone waiting now returns false.
    pub fn reset(&self) {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            // Release: as a transition that waiters observe.
            match self.state.compare_exchange_weak(s, next_generation(s, false), Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(cur) => s = cur,
            }
        }
        self.wake_all();
    }

    fn wake_all(&self) {
        // SeqCst: after the state change (see `wait_slow`).
        self.seq.fetch_add(1, Ordering::SeqCst);
        futex_wake(&self.seq, i32::MAX);
    }

    /// Arrive and wait, retrying through signals: for Rust callers without an interrupt mechanism.
    pub fn wait(&self, deadline: Option<Deadline>) -> Wait<bool> {
        match self.arrive() {
            Arrived::Tripped => Wait::Done(true),
            Arrived::Broken => Wait::Done(false),
            Arrived::Waiting(a) => self.wait_slow(a, deadline, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_party_trips_at_once() {
        let b = RawBarrier::default();
        b.init(1);
        assert_eq!(b.arrive(), Arrived::Tripped);
        assert_eq!(b.arrive(), Arrived::Tripped);
    }

    #[test]
    fn a_timeout_breaks_it_until_reset() {
        let b = RawBarrier::default();
        b.init(2);
        let soon = Some(Deadline::after(Duration::from_millis(10)));
        assert_eq!(b.wait(soon), Wait::TimedOut);
        assert!(b.is_broken());
        assert_eq!(b.waiting(), 0);
        assert_eq!(b.arrive(), Arrived::Broken);
        b.reset();
        assert!(!b.is_broken());
        let Arrived::Waiting(a) = b.arrive() else { panic!("expected to wait") };
        assert_eq!(b.waiting(), 1);
        assert!(b.leave(a));
        assert_eq!(b.waiting(), 0);
    }

    #[test]
    fn outcomes_tell_trips_from_resets() {
        let b = RawBarrier::default();
        b.init(2);
        let Arrived::Waiting(first) = b.arrive() else { panic!() };
        b.reset(); // first's generation is reset ...
        let Arrived::Waiting(second) = b.arrive() else { panic!() };
        assert_eq!(b.arrive(), Arrived::Tripped); // ... and the next one trips
        let s = b.state.load(Ordering::Relaxed);
        assert_eq!(b.outcome(first, s), Some(false));
        assert_eq!(b.outcome(second, s), Some(true));
        assert!(!b.leave(second));
    }

    #[test]
    fn the_generation_wraps_and_the_outcomes_shift_out() {
        let b = RawBarrier::default();
        b.init(1);
        b.state.store((GEN_MASK - 1) << GEN_SHIFT, Ordering::Relaxed);
        for _ in 0..3 {
            assert_eq!(b.arrive(), Arrived::Tripped);
        }
        let s = b.state.load(Ordering::Relaxed);
        assert_eq!(generation(s), 1);
        assert_eq!(s >> OUTCOMES_SHIFT, 0b111);
        let old = Arrival { generation: GEN_MASK as u32 - 1 };
        assert_eq!(b.outcome(old, s), Some(true));
        for _ in 0..OUTCOMES_KEPT {
            b.reset();
        }
        let s = b.state.load(Ordering::Relaxed);
        assert_eq!(s >> OUTCOMES_SHIFT, 0, "only resets remembered");
        assert_eq!(b.outcome(Arrival { generation: 1 }, s), Some(false));
    }

    /// A waiter of a round that was reset, 16 rounds back: past what the outcomes remember.
    #[test]
    fn a_waiter_further_back_than_the_outcomes_reports_a_trip() {
        let b = RawBarrier::default();
        b.init(2);
        let Arrived::Waiting(a) = b.arrive() else { panic!() };
        for _ in 0..=OUTCOMES_KEPT {
            b.reset();
        }
        assert_eq!(b.outcome(a, b.state.load(Ordering::Relaxed)), Some(true)); // documented limit
    }
}
