//! The macOS system calls behind [`super::futex`], [`super::shm`] and [`super::owner`]: what Linux does with
//! futexes, `getrandom` and `O_TMPFILE`. Compiled for `target_os = "macos"` only; checked by `bin/matrix
//! cross` (aarch64 and x86_64), never run here (see the README's platform notes).
//!
//! Shared waits: `os_sync_wait_on_address` and friends (macOS 14.4+) with the `_SHARED` flags, looked up at
//! run time with `dlsym` so that the extension still loads on older systems, which get `__ulock_wait` /
//! `__ulock_wake` with `UL_COMPARE_AND_WAIT_SHARED` (private but exported by libSystem: libc++'s atomic waits
//! call them too). Which macOS first has the shared operation is not checked here.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use super::atomic::AtomicU32;
use super::clock::Deadline;
use super::futex::FutexWait;

// <sys/ulock.h> (xnu, not in the SDK): the operations and flags we use.
const UL_COMPARE_AND_WAIT_SHARED: u32 = 3;
const ULF_WAKE_ALL: u32 = 0x0000_0100;
// <os/clock.h>: the only clock os_sync_wait_on_address_with_timeout accepts (timeouts are relative).
const OS_CLOCK_MACH_ABSOLUTE_TIME: u32 = 32;

extern "C" {
    fn __ulock_wait(operation: u32, addr: *mut c_void, value: u64, timeout_us: u32) -> c_int;
    fn __ulock_wake(operation: u32, addr: *mut c_void, wake_value: u64) -> c_int;
}

type WaitFn = unsafe extern "C" fn(*mut c_void, u64, usize, u32) -> c_int;
type WaitTimeoutFn = unsafe extern "C" fn(*mut c_void, u64, usize, u32, u32, u64) -> c_int;
type WakeFn = unsafe extern "C" fn(*mut c_void, usize, u32) -> c_int;

/// 0: not looked up yet; 1: the os_sync functions are in `SYMS`; 2: they are not (use `__ulock_*`).
static RESOLVED: AtomicU8 = AtomicU8::new(0);
/// wait, wait_with_timeout, wake_by_address_any, wake_by_address_all.
static SYMS: [AtomicUsize; 4] = [AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)];

struct OsSync {
    wait: WaitFn,
    wait_timeout: WaitTimeoutFn,
    wake_any: WakeFn,
    wake_all: WakeFn,
}

/// The os_sync functions, if this macOS has all four. Looked up once per process; a race only looks them up
/// twice (no lock: a fork in the middle cannot leave a child stuck).
fn os_sync() -> Option<OsSync> {
    let mut state = RESOLVED.load(Ordering::Acquire);
    if state == 0 {
        let names = [
            c"os_sync_wait_on_address",
            c"os_sync_wait_on_address_with_timeout",
            c"os_sync_wake_by_address_any",
            c"os_sync_wake_by_address_all",
        ];
        let mut all = true;
        for (slot, name) in SYMS.iter().zip(names) {
            // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads the loaded images.
            let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) } as usize;
            all &= p != 0;
            slot.store(p, Ordering::Relaxed);
        }
        state = if all { 1 } else { 2 };
        // Release: the addresses stored above are seen by whoever reads state 1.
        RESOLVED.store(state, Ordering::Release);
    }
    if state != 1 {
        return None;
    }
    let p = |i: usize| SYMS[i].load(Ordering::Relaxed);
    // SAFETY: each address is non-zero (state 1) and is the libSystem function of that name, whose C
    // signature is the one of the type it is transmuted to (<os/os_sync_wait_on_address.h>).
    unsafe {
        Some(OsSync {
            wait: std::mem::transmute::<usize, WaitFn>(p(0)),
            wait_timeout: std::mem::transmute::<usize, WaitTimeoutFn>(p(1)),
            wake_any: std::mem::transmute::<usize, WakeFn>(p(2)),
            wake_all: std::mem::transmute::<usize, WakeFn>(p(3)),
        })
    }
}

/// [`super::futex_wait`] on macOS: the same contract and results. The kernel returns success both when woken
/// and when the word no longer held `expected`, so a changed word is usually reported as `Woken` (callers
/// re-check either way); a deadline already passed is answered without a system call.
pub(super) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> FutexWait {
    let addr = word.as_ptr().cast::<c_void>();
    let timeout_ns = match deadline {
        None => None,
        Some(d) => {
            let left = d.remaining();
            if left.is_zero() {
                // Relaxed: only a hint of what the caller re-reads anyway.
                return if word.load(Ordering::Relaxed) == expected {
                    FutexWait::TimedOut
                } else {
                    FutexWait::ValueChanged
                };
            }
            Some(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX).max(1))
        }
    };
    let rc = match os_sync() {
        // SAFETY: `addr` is a valid, aligned 4-byte word for the whole call (the caller keeps its mapping
        // alive); the size is 4 and the flags are the documented shared ones.
        Some(f) => unsafe {
            match timeout_ns {
                None => (f.wait)(addr, u64::from(expected), 4, libc::OS_SYNC_WAIT_ON_ADDRESS_SHARED),
                Some(ns) => (f.wait_timeout)(
                    addr,
                    u64::from(expected),
                    4,
                    libc::OS_SYNC_WAIT_ON_ADDRESS_SHARED,
                    OS_CLOCK_MACH_ABSOLUTE_TIME,
                    ns,
                ),
            }
        },
        None => {
            // Microseconds, 0 meaning forever: a longer timeout is cut to u32::MAX µs (71 minutes) and an
            // early ETIMEDOUT is then reported as a spurious wake-up (below).
            let us = timeout_ns.map_or(0, |ns| u32::try_from(ns.div_ceil(1000)).unwrap_or(u32::MAX).max(1));
            // SAFETY: as above; UL_COMPARE_AND_WAIT_SHARED compares the 32-bit word at `addr`.
            unsafe { __ulock_wait(UL_COMPARE_AND_WAIT_SHARED, addr, u64::from(expected), us) }
        }
    };
    if rc >= 0 {
        return FutexWait::Woken;
    }
    match super::errno() {
        libc::EINTR => FutexWait::Interrupted,
        libc::ETIMEDOUT if deadline.is_some_and(|d| d.expired()) => FutexWait::TimedOut,
        libc::ETIMEDOUT => FutexWait::Woken,
        e => FutexWait::Failed(e),
    }
}

/// [`super::futex_wake`] on macOS: wakes one waiter for `count == 1`, every waiter for more (callers treat
/// every wake-up as possibly spurious, so waking more than `count` is allowed). Returns 1 if any waiter was
/// there to wake (the kernel does not count them), else 0.
pub(super) fn wake(word: &AtomicU32, count: i32) -> usize {
    if count <= 0 {
        return 0;
    }
    let addr = word.as_ptr().cast::<c_void>();
    let rc = match os_sync() {
        // SAFETY: `addr` is a valid, aligned 4-byte word; size 4 and the shared flag as documented.
        Some(f) => unsafe {
            if count == 1 {
                (f.wake_any)(addr, 4, libc::OS_SYNC_WAKE_BY_ADDRESS_SHARED)
            } else {
                (f.wake_all)(addr, 4, libc::OS_SYNC_WAKE_BY_ADDRESS_SHARED)
            }
        },
        None => {
            let op = if count == 1 { UL_COMPARE_AND_WAIT_SHARED } else { UL_COMPARE_AND_WAIT_SHARED | ULF_WAKE_ALL };
            // SAFETY: as above; the wake value is unused by these operations.
            unsafe { __ulock_wake(op, addr, 0) }
        }
    };
    // ENOENT: nobody was waiting. Any other failure woke nobody either.
    usize::from(rc >= 0)
}

/// Fill `buf` with random bytes (`arc4random_buf`: never fails, never blocks).
pub(super) fn random_bytes(buf: &mut [u8]) {
    // SAFETY: arc4random_buf writes exactly `buf.len()` bytes into our buffer.
    unsafe { libc::arc4random_buf(buf.as_mut_ptr().cast(), buf.len()) }
}

/// The set-up lock file of the shm object `os_name` (`/tmp/process_shared-setup.ps.<name>`, empty, never
/// removed: unlinking a lock file others may hold or wait on would let two lockers in at once), opened
/// read-only (all `flock` needs, so that other users' processes can lock a file made by one user: made
/// 0644). `None` if it cannot be opened or is not a regular file (a symlink is refused, a FIFO does not
/// block the open), and the caller falls back to a record lock, which does not exclude the processes that
/// use the file: only a file planted by someone else gets there.
pub(super) fn setup_lock_file(os_name: &str) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let path = std::ffi::CString::new(format!("/tmp/process_shared-setup{}", os_name.replace('/', "."))).ok()?;
    let flags = libc::O_RDONLY | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    // SAFETY: a valid NUL-terminated path; open returns a new descriptor or -1.
    let fd = unsafe { libc::open(path.as_ptr(), flags, 0o644 as libc::c_uint) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: fchmod on our descriptor. Best effort: only the file's owner can, and it undoes the umask
    // (a file made 0600 would send other users' processes to the fallback lock, which does not exclude
    // this one).
    unsafe { libc::fchmod(std::os::fd::AsRawFd::as_raw_fd(&fd), 0o644) };
    // SAFETY: `st` is plain data written by fstat before it is read; fstat on our descriptor.
    let regular = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd), &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG
    };
    regular.then_some(fd)
}

/// An open, unlinked regular file in `dir` (what `O_TMPFILE` gives on Linux): `mkstemp`, then `unlink`.
pub(super) fn unnamed_file(dir: &str) -> Option<i32> {
    let mut template = format!("{dir}/process_shared-owners.XXXXXX\0").into_bytes();
    // SAFETY: `template` is a writable, NUL-terminated buffer ending in XXXXXX, as mkstemp requires.
    let fd = unsafe { libc::mkstemp(template.as_mut_ptr().cast()) };
    if fd < 0 {
        return None;
    }
    // SAFETY: unlinking the file mkstemp just made (the template now holds its name); fcntl on our own
    // descriptor.
    unsafe {
        libc::unlink(template.as_ptr().cast());
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    Some(fd)
}

/// `struct proc_regioninfo` of <sys/proc_info.h> (not in the `libc` crate).
#[repr(C)]
#[derive(Default)]
#[allow(dead_code)] // filled in by the kernel; only some fields are read
struct ProcRegionInfo {
    pri_protection: u32,
    pri_max_protection: u32,
    pri_inheritance: u32,
    pri_flags: u32,
    pri_offset: u64,
    pri_behavior: u32,
    pri_user_wired_count: u32,
    pri_user_tag: u32,
    pri_pages_resident: u32,
    pri_pages_shared_now_private: u32,
    pri_pages_swapped_out: u32,
    pri_pages_dirtied: u32,
    pri_ref_count: u32,
    pri_shadow_depth: u32,
    pri_share_mode: u32,
    pri_private_pages_resident: u32,
    pri_shared_pages_resident: u32,
    pri_obj_id: u32,
    pri_depth: u32,
    pri_address: u64,
    pri_size: u64,
}
const PROC_PIDREGIONINFO: c_int = 7;
// PROC_PIDREGIONINFO_SIZE: the kernel fills exactly this many bytes.
const _: () = assert!(std::mem::size_of::<ProcRegionInfo>() == 96);

/// The kernel's id of the VM object mapped at `addr` in this process (`proc_pidinfo(PROC_PIDREGIONINFO)`:
/// the same object, mapped by any process, has the same id), or 0 if the kernel gave none.
pub(super) fn region_object_id(addr: *mut u8) -> u64 {
    let mut info = ProcRegionInfo::default();
    let size = std::mem::size_of::<ProcRegionInfo>() as c_int;
    // SAFETY: `info` is a writable buffer of `size` bytes that proc_pidinfo fills (and returns how many it
    // wrote); asking about our own pid and an address of ours.
    let n = unsafe {
        libc::proc_pidinfo(libc::getpid(), PROC_PIDREGIONINFO, addr as u64, std::ptr::addr_of_mut!(info).cast(), size)
    };
    // The call describes the region at `addr`, or the next one if none holds it: check it holds `addr`.
    let a = addr as u64;
    if n != size || a < info.pri_address || a - info.pri_address >= info.pri_size {
        return 0;
    }
    u64::from(info.pri_obj_id)
}
