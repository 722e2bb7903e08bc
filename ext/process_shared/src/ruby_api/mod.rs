//! Ruby classes, one file each, each with its own `init`.

use crate::helpers::errors;
use magnus::{function, prelude::*, Error, Ruby};

pub mod atomic_integer;
pub mod barrier;
pub mod condition_variable;
pub mod count_down_latch;
pub mod counters;
pub mod event;
pub mod monitor;
pub mod mutex;
pub mod named_objects;
pub mod queue;
pub mod read_write_lock;
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
    atomic_integer::init(ruby, m)?;
    counters::init(ruby, m)?;
    event::init(ruby, m)?;
    count_down_latch::init(ruby, m)?;
    barrier::init(ruby, m)?;
    read_write_lock::init(ruby, m)?;
    queue::init(ruby, m)?;
    // Resolve each wrapped class now: magnus looks a class up lazily (running Ruby code) on its first use,
    // which, if that came during a call with an interrupt due, would see the interrupt as a failed lookup.
    use magnus::TypedData;
    let _ = (
        mutex::Mutex::class(ruby),
        monitor::Monitor::class(ruby),
        semaphore::Semaphore::class(ruby),
        condition_variable::ConditionVariable::class(ruby),
        shared_memory::SharedMemory::class(ruby),
        atomic_integer::AtomicInteger::class(ruby),
        counters::Counters::class(ruby),
        event::Event::class(ruby),
        count_down_latch::CountDownLatch::class(ruby),
        barrier::Barrier::class(ruby),
        read_write_lock::ReadWriteLock::class(ruby),
        queue::Queue::class(ruby),
    );
    m.define_singleton_method("_shm_unlink", function!(shm_unlink, 1))?;
    m.define_singleton_method("_shm_exist", function!(shm_exist, 1))?;
    m.define_singleton_method("_named_objects", function!(named_objects::named_objects, 0))?;
    m.define_singleton_method("_inspect_named", function!(named_objects::inspect_named, 1))?;
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

/// `Klass.unlink(name)`: remove a named object's name (`Errno::ENOENT` if there is none).
fn shm_unlink(ruby: &Ruby, name: String) -> Result<(), Error> {
    check_name(ruby, &name)?;
    process_shared_core::sys::shm::unlink(&name).map_err(|e| errors::io(ruby, e, &format!("unlinking {name:?}")))
}

/// `Klass.exist?(name)`.
fn shm_exist(ruby: &Ruby, name: String) -> Result<bool, Error> {
    check_name(ruby, &name)?;
    Ok(process_shared_core::sys::shm::exists(&name))
}

fn check_name(ruby: &Ruby, name: &str) -> Result<(), Error> {
    if process_shared_core::sys::shm::valid_name(name) {
        Ok(())
    } else {
        Err(errors::arg(ruby, format!("name must be 1..200 characters of [A-Za-z0-9._-], got {name:?}")))
    }
}
