//! `process_shared_core`: cross-process synchronisation primitives as `#[repr(C)]` state machines over
//! shared memory, with no Ruby in sight.
//!
//! Layers, dependencies pointing down:
//! - [`sys`]: the only module that makes syscalls or touches libc (mappings, futexes, clocks, pids).
//! - [`sync`]: the primitives (mutex, semaphore, condition variable, monitor, shared integers, event, latch,
//!   barrier) over [`sys`].
//! - [`arena`]: 64-byte shared slots for the primitives, carved out of shared chunks.
//! - [`named`]: objects in named POSIX shared memory, with a header saying what they are.
//! - [`inspect`]: reading named objects without their locks, for operators and exporters.
//! - [`marshal`]: which Marshal streams Ruby's `Marshal.load` may be given safely.
//! - [`segment`]: the layout rules of a `SharedMemory` segment (bounds, elements, object framing).
//!
//! Every blocking operation is split into an `#[inline]` fast path that never sleeps and a `#[cold]` slow
//! path that sleeps on a shared futex word and returns [`sync::Wait::Interrupted`] when a signal arrives,
//! so that a caller (the Ruby binding) can run its interrupt checks and call it again with the same absolute
//! deadline.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod arena;
pub mod inspect;
pub mod marshal;
pub mod named;
pub mod segment;
pub mod sync;
pub mod sys;
