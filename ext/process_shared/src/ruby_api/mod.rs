//! Ruby classes, one file each, each with its own `init`.

use crate::helpers::errors;
use magnus::{prelude::*, Error, Ruby};

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
    shared::methods!(m, self {
        singleton function "_shm_unlink" => shm_unlink(1);
        singleton function "_shm_exist" => shm_exist(1);
        singleton function "_named_objects" => named_objects::named_objects(0);
        singleton function "_inspect_named" => named_objects::inspect_named(1);
        // Called by the `Process._fork` hook in the child (a `pthread_atfork` handler resets the pid too).
        singleton function "_after_fork_child" => after_fork_child(0);
        // Called by a `TracePoint(:thread_end)` in every ending thread.
        singleton function "_thread_ended" => threads::thread_ended(0);
    });
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
