//! Lock-free shared integers: [`RawAtomicInt`] (one signed 64-bit value) and [`RawCounter`] (the same,
//! padded to a cache line of its own, for arrays of independent counters: the raindrops layout).
//!
//! Nothing here ever blocks or sleeps, so nothing needs the waiting machinery: a process killed at any
//! instant leaves each value either before or after its last operation (every update is one atomic
//! instruction, or one compare-and-swap the caller retries).
//!
//! Arithmetic wraps like C's `int64_t` under `-fwrapv`: `i64::MAX + 1 == i64::MIN`.
//!
//! Ordering: every operation is `SeqCst`. A shared integer is often a flag or a ticket that publishes
//! other shared memory (fill a `SharedMemory`, then `value = 1`), so the cheapest ordering that is always
//! right is the one used; on x86-64 a read-modify-write is one locked instruction whatever the ordering,
//! and a load is a plain load.

use crate::sys::atomic::AtomicI64;
use std::sync::atomic::Ordering;

/// One signed 64-bit integer in shared memory (8 bytes, valid when zeroed: 0).
#[repr(C)]
#[derive(Debug, Default)]
pub struct RawAtomicInt {
    value: AtomicI64,
}

impl RawAtomicInt {
    /// A zero.
    pub const fn new() -> RawAtomicInt {
        RawAtomicInt { value: AtomicI64::new(0) }
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> i64 {
        self.value.load(Ordering::SeqCst)
    }

    /// Replace the value.
    #[inline]
    pub fn set(&self, v: i64) {
        self.value.store(v, Ordering::SeqCst)
    }

    /// Add `delta` (wrapping) and return the *new* value.
    #[inline]
    pub fn add(&self, delta: i64) -> i64 {
        self.value.fetch_add(delta, Ordering::SeqCst).wrapping_add(delta)
    }

    /// Subtract `delta` (wrapping) and return the *new* value.
    #[inline]
    pub fn sub(&self, delta: i64) -> i64 {
        self.value.fetch_sub(delta, Ordering::SeqCst).wrapping_sub(delta)
    }

    /// Set the value to `new` if it is `expected`; whether it was.
    #[inline]
    pub fn compare_and_set(&self, expected: i64, new: i64) -> bool {
        self.value.compare_exchange(expected, new, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// Set the value to `new` and return the old one.
    #[inline]
    pub fn swap(&self, new: i64) -> i64 {
        self.value.swap(new, Ordering::SeqCst)
    }
}

/// A [`RawAtomicInt`] alone on a 64-byte cache line, so that counters updated by different processes
/// never contend for one line (false sharing). 64 bytes, valid when zeroed.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub struct RawCounter {
    int: RawAtomicInt,
}

impl RawCounter {
    /// Bytes each counter takes (one cache line).
    pub const SIZE: usize = 64;
}

impl std::ops::Deref for RawCounter {
    type Target = RawAtomicInt;
    #[inline]
    fn deref(&self) -> &RawAtomicInt {
        &self.int
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_wraps_and_returns_the_new_value() {
        let a = RawAtomicInt::new();
        assert_eq!(a.add(5), 5);
        assert_eq!(a.sub(7), -2);
        a.set(i64::MAX);
        assert_eq!(a.add(1), i64::MIN);
        assert_eq!(a.sub(1), i64::MAX);
        assert_eq!(a.add(i64::MIN), -1);
    }

    #[test]
    fn compare_and_set_and_swap() {
        let a = RawAtomicInt::new();
        assert!(!a.compare_and_set(1, 2));
        assert!(a.compare_and_set(0, 2));
        assert_eq!(a.swap(9), 2);
        assert_eq!(a.get(), 9);
    }

    #[test]
    fn a_counter_has_a_cache_line_to_itself() {
        assert_eq!(std::mem::size_of::<RawCounter>(), RawCounter::SIZE);
        assert_eq!(std::mem::align_of::<RawCounter>(), 64);
        assert_eq!(std::mem::size_of::<RawAtomicInt>(), 8);
    }
}
