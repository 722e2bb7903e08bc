//! A process-shared counting semaphore with an optional maximum (1 for a binary semaphore).
//!
//! Layout (`#[repr(C)]`, 16 bytes): `value` (the permits, the futex word), `waiters` (how many threads are
//! in, or about to enter, a sleep: a hint that lets `post` skip the wake syscall), `max` (the largest value
//! `post` may reach; 0 means `i32::MAX`).
//!
//! | transition        | value          | waiters                   |
//! |-------------------|----------------|---------------------------|
//! | `try_wait` ok     | v → v-1 (CAS)  | –                         |
//! | `post`            | v → v+1 (CAS)  | read; if > 0 wake one     |
//! | slow `wait`       | v → v-1 (CAS)  | +1 before sleeping, -1 on every exit |
//!
//! `post` increments then reads `waiters`; a waiter increments `waiters` then reads `value`. Both pairs are
//! `SeqCst`, so at least one side sees the other (Dekker): a post never misses a sleeper. A permit is only
//! ever taken by a successful CAS, so an interrupted or timed-out wait consumes nothing.

use std::sync::atomic::{AtomicU32, Ordering};

use super::{sleep_step, Wait, SPIN};
use crate::sys::{futex_wake, Deadline};

/// Why `post` refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostError {
    /// The value is already at the maximum; it is left unchanged.
    AtMax(u32),
}

/// See the module documentation.
#[repr(C)]
#[derive(Debug, Default)]
pub struct RawSemaphore {
    value: AtomicU32,
    waiters: AtomicU32,
    max: AtomicU32,
    _reserved: u32,
}

impl RawSemaphore {
    /// Largest value any semaphore may hold.
    pub const VALUE_MAX: u32 = i32::MAX as u32;

    /// Initialise in place (the memory is shared and zeroed; nobody else can see it yet).
    pub fn init(&self, value: u32, max: u32) {
        let max = if max == 0 { Self::VALUE_MAX } else { max.min(Self::VALUE_MAX) };
        // Relaxed: the object is published to other processes only by fork or by a later release.
        self.max.store(max, Ordering::Relaxed);
        self.value.store(value.min(max), Ordering::Relaxed);
    }

    /// The current value (a snapshot).
    #[inline]
    pub fn value(&self) -> u32 {
        self.value.load(Ordering::Relaxed)
    }

    /// The maximum value.
    pub fn max(&self) -> u32 {
        match self.max.load(Ordering::Relaxed) {
            0 => Self::VALUE_MAX,
            m => m,
        }
    }

    /// How many threads may be waiting (a hint).
    pub fn waiters(&self) -> u32 {
        self.waiters.load(Ordering::Relaxed)
    }

    /// Take a permit if one is available. Never sleeps.
    #[inline]
    pub fn try_wait(&self) -> bool {
        let mut v = self.value.load(Ordering::Relaxed);
        while v > 0 {
            // Acquire: pairs with the Release half of post's SeqCst CAS (what was done before a post is
            // visible after the matching wait).
            match self.value.compare_exchange_weak(v, v - 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(cur) => v = cur,
            }
        }
        false
    }

    /// Block until a permit is taken, `deadline` passes, or (if `interruptible`) a signal arrives.
    #[cold]
    pub fn wait_slow(&self, deadline: Option<Deadline>, interruptible: bool) -> Wait<()> {
        for _ in 0..SPIN {
            if self.try_wait() {
                return Wait::Done(());
            }
            std::hint::spin_loop();
        }
        // SeqCst: the Dekker pair with `post` (see the module docs).
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let out = loop {
            // SeqCst: second half of the Dekker pair.
            if self.value.load(Ordering::SeqCst) > 0 {
                if self.try_wait() {
                    break Wait::Done(());
                }
                continue;
            }
            if let Some(out) = sleep_step(&self.value, 0, deadline, interruptible) {
                break out;
            }
        };
        // Relaxed: only a hint for `post`; nothing is published by it.
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        out
    }

    /// Add a permit and wake one sleeper if there may be one. Fails (changing nothing) at the maximum.
    #[inline]
    pub fn post(&self) -> Result<(), PostError> {
        let max = self.max();
        let mut v = self.value.load(Ordering::Relaxed);
        loop {
            if v >= max {
                return Err(PostError::AtMax(max));
            }
            // SeqCst: releases our writes to the taker and is the first half of the Dekker pair.
            match self.value.compare_exchange_weak(v, v + 1, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => break,
                Err(cur) => v = cur,
            }
        }
        // SeqCst: second half of the Dekker pair with a waiter's increment of `waiters`.
        if self.waiters.load(Ordering::SeqCst) > 0 {
            futex_wake(&self.value, 1);
        }
        Ok(())
    }

    /// Take a permit, retrying through signals: for Rust callers without an interrupt mechanism.
    pub fn wait(&self, deadline: Option<Deadline>) -> Wait<()> {
        if self.try_wait() {
            return Wait::Done(());
        }
        self.wait_slow(deadline, false)
    }
}
