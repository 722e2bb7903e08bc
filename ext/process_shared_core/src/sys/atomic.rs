//! The atomic words of shared memory, as the state machines of [`crate::sync`] see them.
//!
//! Each type is `#[repr(transparent)]` over the std atomic of the same width (same size, alignment and
//! zero-validity, so the layouts of `crate::sync` do not change) and offers the std methods the state
//! machines use, each `#[inline(always)]` and forwarding to std. With the `model` feature, each access is
//! first a scheduling point of the model checker ([`crate::sys::model`]), which may run another participant
//! or stop this one for good (a SIGKILL between any two accesses); without it, the types compile to the std
//! atomics themselves.
//!
//! There is deliberately no `Deref` to the std type: an access that bypassed the scheduling point would
//! be invisible to the model checker.

use std::sync::atomic::Ordering;

/// The std read-modify-write methods of one argument, each a scheduling point and then the std call.
macro_rules! read_modify_write {
    ($int:ty, $($method:ident),*) => {
        $(
            /// As the std method of the same name.
            #[inline(always)]
            pub fn $method(&self, v: $int, order: Ordering) -> $int {
                point();
                self.0.$method(v, order)
            }
        )*
    };
}

/// The std compare-and-exchange methods, each a scheduling point and then the std call.
macro_rules! compare_exchange {
    ($int:ty, $($method:ident),*) => {
        $(
            /// As the std method of the same name.
            #[inline(always)]
            pub fn $method(&self, current: $int, new: $int, success: Ordering, failure: Ordering) -> Result<$int, $int> {
                point();
                self.0.$method(current, new, success, failure)
            }
        )*
    };
}

macro_rules! shared_atomic {
    ($(#[$doc:meta])* $name:ident, $std:ty, $int:ty) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Debug, Default)]
        pub struct $name($std);

        impl $name {
            /// A word holding `v`.
            #[inline(always)]
            pub const fn new(v: $int) -> Self {
                Self(<$std>::new(v))
            }

            /// The std atomic itself: only for the system calls that take the word's address (futex).
            #[inline(always)]
            #[allow(dead_code)] // used for the futex word (a U32) only
            pub(crate) fn as_std(&self) -> &$std {
                &self.0
            }

            /// As the std method of the same name.
            #[inline(always)]
            pub fn load(&self, order: Ordering) -> $int {
                point();
                self.0.load(order)
            }

            /// As the std method of the same name.
            #[inline(always)]
            pub fn store(&self, v: $int, order: Ordering) {
                point();
                self.0.store(v, order)
            }

            compare_exchange!($int, compare_exchange, compare_exchange_weak);
            read_modify_write!($int, swap, fetch_add, fetch_sub, fetch_or, fetch_and, fetch_max);

            /// As the std method of the same name (one scheduling point: the update is one atomic step of
            /// the model, as a CAS loop without interference would be).
            #[inline(always)]
            pub fn fetch_update<F>(&self, set: Ordering, fetch: Ordering, f: F) -> Result<$int, $int>
            where
                F: FnMut($int) -> Option<$int>,
            {
                point();
                self.0.fetch_update(set, fetch, f)
            }

            /// As the std method of the same name.
            #[inline(always)]
            pub fn as_ptr(&self) -> *mut $int {
                self.0.as_ptr()
            }
        }
    };
}

shared_atomic!(
    /// A 32-bit word of shared memory (lock words, futex words, counts).
    AtomicU32,
    std::sync::atomic::AtomicU32,
    u32
);
shared_atomic!(
    /// A 64-bit word of shared memory (owner ids, sequence numbers, ring positions).
    AtomicU64,
    std::sync::atomic::AtomicU64,
    u64
);
shared_atomic!(
    /// A signed 64-bit word of shared memory (atomic integers and counters).
    AtomicI64,
    std::sync::atomic::AtomicI64,
    i64
);

/// The scheduling point before every access (nothing without the `model` feature).
#[inline(always)]
fn point() {
    #[cfg(feature = "model")]
    super::model::point();
}
