//! Ruby classes, one file each, each with its own `init`.

use magnus::{function, prelude::*, Error, Ruby};

pub mod condition_variable;
pub mod errors;
pub mod monitor;
pub mod mutex;
pub mod semaphore;
pub mod shared;
pub mod shared_memory;
pub mod threads;

pub fn init(ruby: &Ruby) -> Result<(), Error> {
    let m = ruby.define_module("ProcessShared")?;
    errors::init(ruby, m)?;
    shared_memory::init(ruby, m)?;
    semaphore::init(ruby, m)?;
    mutex::init(ruby, m)?;
    monitor::init(ruby, m)?;
    condition_variable::init(ruby, m)?;
    // Called by the `Process._fork` hook in the child (a `pthread_atfork` handler resets the pid too).
    m.define_singleton_method("_after_fork_child", function!(after_fork_child, 0))?;
    // Called by a `TracePoint(:thread_end)` in every ending thread.
    m.define_singleton_method("_thread_ended", function!(threads::thread_ended, 0))?;
    Ok(())
}

fn after_fork_child() {
    process_shared_core::sys::process::reset_after_fork();
    threads::after_fork();
}
