//! The system layer: the only code in the crate that makes syscalls or touches libc.
//!
//! Every function documents its contract and maps `errno` explicitly; nothing here panics.

pub mod atomic;
pub mod clock;
#[cfg(target_os = "macos")]
mod darwin;
pub mod futex;
pub mod mmap;
#[cfg(feature = "model")]
pub mod model;
pub mod owner;
pub mod process;
pub mod shm;

pub use clock::Deadline;
pub use futex::{futex_wait, futex_wake, FutexWait};
pub use mmap::SharedMapping;

/// The calling thread's `errno` after a failed libc call.
#[inline]
pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}
