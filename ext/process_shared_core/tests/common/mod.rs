//! Helpers for multi-process tests: a value in a shared mapping, forked children with a deadline.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use process_shared_core::sync::Owner;
use process_shared_core::sys::SharedMapping;

/// A `T` (valid when zeroed) in its own anonymous shared mapping, visible to children forked later.
pub struct SharedBox<T> {
    map: SharedMapping,
    _t: std::marker::PhantomData<T>,
}

impl<T> SharedBox<T> {
    pub fn new() -> Self {
        SharedBox { map: SharedMapping::anonymous(std::mem::size_of::<T>()).unwrap(), _t: std::marker::PhantomData }
    }
}

impl<T> std::ops::Deref for SharedBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the mapping is page-aligned, at least size_of::<T>() bytes, zeroed, and every T used in
        // these tests is valid as zero bytes; it lives as long as the box.
        unsafe { &*self.map.as_ptr().cast::<T>() }
    }
}

/// The calling process's owner token (thread 1: these tests use one thread per process unless noted).
pub fn me() -> Owner {
    Owner::current(1)
}

/// An owner id of our registry that no process holds (the `n`th of a few fixed ones): a dead process.
#[allow(dead_code)]
pub fn dead_id(n: u32) -> u64 {
    (process_shared_core::sys::owner::current_id() & !0xffff_ffff) | u64::from(0x7fff_ff01 + 2 * n)
}

/// A name for a named object that no other test (or earlier run) uses (removed first, in case).
pub fn fresh_name(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let name = format!("test-{tag}-{}-{nanos}", std::process::id());
    let _ = process_shared_core::sys::shm::unlink(&name);
    name
}

/// Fork a child that runs `f` and exits 0, or 1 if it panicked. Never returns in the child.
pub fn fork_child(f: impl FnOnce()) -> libc::pid_t {
    // SAFETY: the test process is single-threaded at fork time except for the test harness's own threads,
    // which the child never touches: it runs `f` and leaves with _exit, without running destructors.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
        // SAFETY: _exit is always safe to call; skipping atexit handlers is what we want in a child.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    pid
}

/// Wait for a child, killing it and failing if it takes longer than `limit`. Returns its exit code.
pub fn wait_child(pid: libc::pid_t, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            assert!(libc::WIFEXITED(status), "child {pid} died: status {status:#x}");
            return libc::WEXITSTATUS(status);
        }
        if start.elapsed() > limit {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("child {pid} hung for {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Run `n` children doing `f(i)`, all must exit 0 within `limit`.
pub fn hammer(n: usize, limit: Duration, f: impl Fn(usize)) {
    let pids: Vec<_> = (0..n).map(|i| fork_child(|| f(i))).collect();
    for pid in pids {
        assert_eq!(wait_child(pid, limit), 0, "child {pid} failed");
    }
}

/// Reap a child we killed (waiting for it to be gone).
pub fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid status pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid({pid})");
}

/// A queue in its own shared mapping, for tests.
pub struct TestQueue {
    pub map: process_shared_core::sys::SharedMapping,
    len: usize,
}

impl TestQueue {
    pub fn new(ring: usize, max: u64) -> TestQueue {
        let len = process_shared_core::sync::QueueRef::size_for(ring).unwrap();
        let t = TestQueue { map: process_shared_core::sys::SharedMapping::anonymous(len).unwrap(), len };
        t.q().init(max);
        t
    }

    pub fn q(&self) -> process_shared_core::sync::QueueRef<'_> {
        // SAFETY: a fresh zeroed page-aligned mapping of `len` bytes, used only as a queue, alive with `self`.
        unsafe { process_shared_core::sync::QueueRef::new(self.map.as_ptr(), self.len) }
    }
}
