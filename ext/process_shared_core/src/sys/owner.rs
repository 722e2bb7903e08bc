//! Process identity that every process sharing memory with us can check, across pid namespaces, under
//! `hidepid`, and after pid reuse: the one owner-id encoding of the crate.
//!
//! A process's **owner id** names a byte of a shared *registry* file on which the process holds a POSIX
//! record lock (`fcntl(F_SETLK)`) for as long as it lives. The kernel drops the lock when the process ends
//! (however it ends: `SIGKILL` included) and never before, and any process that opens the same file can ask
//! the kernel whether the byte is still locked (`F_GETLK`). Unlike a pid this means the same thing in every
//! pid namespace, needs no `/proc`, and a stopped (`SIGSTOP`) process still holds its lock.
//!
//! | bits   | field | meaning                                                                        |
//! |--------|-------|--------------------------------------------------------------------------------|
//! | 0..32  | slot  | the locked byte's offset (random, non-zero; unique among live processes: the lock is exclusive) |
//! | 32..62 | tag   | which registry file (a hash of its device and inode, never 0); 0: *untracked* (no registry could be used) |
//! | 62..64 | –     | always 0: free for the users' flags (see [`ID_MASK`])                          |
//!
//! Liveness ([`liveness`]) of an id is `Dead` only when the kernel says nobody holds its byte of *our*
//! registry; an id from another registry (a process in another mount namespace) or an untracked one is
//! `Unknown`, which every caller treats as alive. A dead process's slot can be taken again by a later
//! process (the slot is random among 2^32), which makes the dead one look alive: safe, never a wrong
//! take-over, and as unlikely as guessing a 32-bit number.
//!
//! The registry is `/dev/shm/process_shared-owners` (`/tmp/process_shared-owners` on macOS; mode 0666, empty:
//! record locks need no data, so it takes no space), opened once per process and inherited by forked children
//! (which take slots of their own: record locks are not inherited). If it cannot be used (no `/dev/shm`, a
//! hostile file there), a private, unlinked registry is made instead: forked children still share it,
//! unrelated processes can then not judge each other (`Unknown`). POSIX record locks are dropped when the
//! process closes *any* descriptor of the file: the descriptor is kept open for the life of the process (moved
//! to a high number, [`HIGH_FD`], out of the way of code that closes or reuses low ones) and the file is never
//! opened twice on purpose. Code that closes every descriptor anyway (a `closefrom` loop) drops our lock, and
//! others may then take our locks over as from a dead process: that is unsupported, and documented. What we
//! can do, we do: every [`liveness`] question first checks that our descriptor still is our registry (`fstat`,
//! compared with the tag) and answers `Unknown` if it is not, so a process whose descriptor was closed (or
//! reused for another file) never judges others dead by asking the wrong file; and it re-opens the registry
//! and locks its own byte again, so that it looks alive again.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

/// The bits of a `u64` an owner id can occupy; the two above are free for flags.
pub const ID_MASK: u64 = (1 << 62) - 1;
const TAG_SHIFT: u32 = 32;
const TAG_MASK: u64 = (1 << 30) - 1;
/// The lowest descriptor number the registry is moved to (when the limit on open files allows it).
pub const HIGH_FD: i32 = 512;
/// Where the shared registry lives (outside the names `shm::PREFIX` gives to named objects).
#[cfg(not(target_os = "macos"))]
pub const REGISTRY: &str = "/dev/shm/process_shared-owners";
/// Where the shared registry lives. macOS has no `/dev/shm` (its POSIX shm objects are no files, and take
/// no record locks): `/tmp` is, like `/dev/shm` on Linux, one directory for every user and every process of
/// the machine, sticky and world-writable (`$TMPDIR` is per user, and per sandbox, so processes of two
/// users, or a launchd job and a shell, would not share it and could not judge each other).
#[cfg(target_os = "macos")]
pub const REGISTRY: &str = "/tmp/process_shared-owners";
/// Where a private registry is made when the shared one cannot be used.
#[cfg(not(target_os = "macos"))]
const PRIVATE_DIRS: [&str; 2] = ["/dev/shm", "/tmp"];
#[cfg(target_os = "macos")]
const PRIVATE_DIRS: [&str; 1] = ["/tmp"];

static FD: AtomicI32 = AtomicI32::new(-1);
static TAG: AtomicU32 = AtomicU32::new(0);
static ID: AtomicU64 = AtomicU64::new(0);
static OPENING: AtomicBool = AtomicBool::new(false);

/// What can be told about the process behind an owner id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// It holds its registry lock: alive (possibly stopped).
    Alive,
    /// Nobody holds its byte of our registry: it has ended.
    Dead,
    /// Another registry's id, an untracked one, or the kernel would not say: callers treat it as alive.
    Unknown,
}

/// This process's owner id (non-zero, within [`ID_MASK`]). Cached; a forked child gets its own on first use.
#[inline]
pub fn current_id() -> u64 {
    #[cfg(feature = "model")]
    if let Some(v) = super::model::with(|w| w.current_id()) {
        return v;
    }
    // Relaxed: the id is written once per process image by `register` (or reset in a fresh child).
    match ID.load(Ordering::Relaxed) {
        0 => register(),
        id => id,
    }
}

/// The registry tag in an owner id (0 for an untracked one).
#[inline]
pub fn tag_of(id: u64) -> u32 {
    ((id >> TAG_SHIFT) & TAG_MASK) as u32
}

/// Forget the cached id: for a forked child (called by the `pthread_atfork` child handler). Only atomics:
/// async-signal-safe.
pub(crate) fn forget_in_child() {
    ID.store(0, Ordering::Relaxed);
    OPENING.store(false, Ordering::Relaxed); // the thread that held it is not in the child
}

/// Whether the process whose owner id is `id` is alive. Never blocks (an `fstat` and an `fcntl(F_GETLK)`).
pub fn liveness(id: u64) -> Liveness {
    #[cfg(feature = "model")]
    if let Some(v) = super::model::with(|w| w.liveness(id)) {
        return v;
    }
    let id = id & ID_MASK;
    if id == 0 {
        return Liveness::Unknown;
    }
    let me = current_id();
    if id == me {
        return Liveness::Alive;
    }
    let tag = tag_of(id);
    // Relaxed: TAG and FD are set before `register` publishes our id, which `current_id` read above.
    if tag == 0 || tag != TAG.load(Ordering::Relaxed) {
        return Liveness::Unknown;
    }
    let fd = FD.load(Ordering::Relaxed);
    if checked_tag(fd) != Some(tag) {
        // Our descriptor was closed behind our back (or now names another file): our own lock is gone.
        // Never judge anyone by the wrong file; take our byte back for next time.
        relock(me);
        return Liveness::Unknown;
    }
    let mut fl = lock_request(WRLCK, id as u32);
    // SAFETY: F_GETLK on our registry descriptor with a valid, initialised `flock` that the call fills in.
    if unsafe { libc::fcntl(fd, libc::F_GETLK, &mut fl) } != 0 {
        return Liveness::Unknown;
    }
    if fl.l_type == UNLCK {
        Liveness::Dead
    } else {
        Liveness::Alive
    }
}

// `struct flock` takes shorts; the constants are ints on Linux, shorts on macOS.
#[allow(clippy::unnecessary_cast)]
const WRLCK: i16 = libc::F_WRLCK as i16;
#[allow(clippy::unnecessary_cast)]
const UNLCK: i16 = libc::F_UNLCK as i16;

fn lock_request(kind: i16, slot: u32) -> libc::flock {
    // SAFETY: `flock` is plain data; every field the kernel reads is set below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = libc::off_t::from(slot);
    fl.l_len = 1;
    fl
}

#[cold]
fn register() -> u64 {
    crate::sys::process::current_pid(); // installs the fork handlers that reset the cached id
    let fd = registry_fd();
    let tag = TAG.load(Ordering::Relaxed);
    let mut id = 0;
    if fd >= 0 && tag != 0 {
        for _ in 0..64 {
            let slot = random_u32() | 1;
            let fl = lock_request(WRLCK, slot);
            // SAFETY: F_SETLK (non-blocking) on our registry descriptor with a valid `flock`.
            if unsafe { libc::fcntl(fd, libc::F_SETLK, &fl) } == 0 {
                id = (u64::from(tag) << TAG_SHIFT) | u64::from(slot);
                break;
            }
            let e = super::errno();
            if e != libc::EAGAIN && e != libc::EACCES {
                break; // ENOLCK and the like: untracked
            }
        }
    }
    if id == 0 {
        id = u64::from(random_u32() | 1); // untracked: tag 0
    }
    // Relaxed: a value, not a publication (TAG and FD were stored before, in program order of whoever
    // stored them, and are only read by this process after it has read an id).
    match ID.compare_exchange(0, id, Ordering::SeqCst, Ordering::Relaxed) {
        Ok(_) => id,
        Err(winner) => {
            if tag_of(id) != 0 {
                // Another thread registered first: give our byte back (an unlock never touches theirs).
                let fl = lock_request(UNLCK, id as u32);
                // SAFETY: as above.
                unsafe { libc::fcntl(fd, libc::F_SETLK, &fl) };
            }
            winner
        }
    }
}

/// After our registry descriptor was lost: open the shared registry again and, if it is the same file (same
/// tag as our id), lock our own byte again. The old descriptor number is left alone: it is no longer ours.
#[cold]
fn relock(me: u64) {
    let old = FD.load(Ordering::SeqCst);
    opening(|| {
        if FD.load(Ordering::SeqCst) != old {
            return; // another thread did it meanwhile
        }
        // Losing the descriptor dropped every lock we held on the registry, so the `move_high` in here
        // cannot drop one.
        let Some((fd, tag)) = open_shared() else {
            return;
        };
        if u64::from(tag) == me >> TAG_SHIFT {
            let fl = lock_request(WRLCK, me as u32);
            // SAFETY: F_SETLK (non-blocking) on the descriptor just opened, with a valid `flock`. Fails only
            // if another live process drew our slot meanwhile (then we stay Unknown to it: safe).
            unsafe { libc::fcntl(fd, libc::F_SETLK, &fl) };
        }
        // Even another file (the registry was replaced): then our checks answer Unknown, as they should.
        FD.store(fd, Ordering::SeqCst);
    });
}

/// Run `f` as the only thread of this process opening the registry: so that no thread closes a
/// descriptor of it (in `move_high`) while another already holds a lock through another. A spin lock, not
/// a `Mutex`: a fork while it is held must not leave the child stuck (the child handler frees it).
fn opening<R>(f: impl FnOnce() -> R) -> R {
    // Acquire/Release: what one opener stored (FD, TAG) is seen by the next.
    while OPENING.swap(true, Ordering::Acquire) {
        std::thread::yield_now();
    }
    let r = f();
    OPENING.store(false, Ordering::Release);
    r
}

/// The registry descriptor, opened on first use and never closed (see the module documentation).
fn registry_fd() -> i32 {
    let fd = FD.load(Ordering::SeqCst);
    if fd >= 0 {
        return fd;
    }
    opening(|| {
        let fd = FD.load(Ordering::SeqCst);
        if fd >= 0 {
            return fd; // another thread opened it first
        }
        let Some((fd, tag)) = open_shared().or_else(open_private) else {
            return -1;
        };
        TAG.store(tag, Ordering::SeqCst);
        FD.store(fd, Ordering::SeqCst);
        fd
    })
}

fn open_shared() -> Option<(i32, u32)> {
    let path = std::ffi::CString::new(REGISTRY).ok()?;
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: a valid NUL-terminated path; open returns a new descriptor or -1.
    let fd = unsafe { libc::open(path.as_ptr(), flags, 0o666 as libc::c_uint) };
    if fd < 0 {
        return None;
    }
    let fd = move_high(fd);
    match checked_tag(fd) {
        Some(tag) => {
            // Best effort: let every user's processes lock it (the umask narrowed the creation mode). Only
            // the file's owner can; others find it as its creator left it.
            // SAFETY: fchmod on our descriptor.
            unsafe { libc::fchmod(fd, 0o666) };
            Some((fd, tag))
        }
        None => {
            // SAFETY: closing our own descriptor (no record locks were taken through it).
            unsafe { libc::close(fd) };
            None
        }
    }
}

fn open_private() -> Option<(i32, u32)> {
    for dir in PRIVATE_DIRS {
        if let Some(fd) = unnamed_file(dir) {
            let fd = move_high(fd);
            if let Some(tag) = checked_tag(fd) {
                return Some((fd, tag));
            }
            // SAFETY: closing our own descriptor.
            unsafe { libc::close(fd) };
        }
    }
    None
}

/// macOS: the fallback lock of a named object's set-up, for [`super::shm::ShmFile::lock_exclusive`] when
/// the name's lock file cannot be used: a record lock on the byte `2^32 + key` of the registry, above every
/// owner slot, held until [`unlock_name`] (or the process's end). Record locks belong to the process, not
/// to a descriptor: two threads of one process do not exclude each other, and with a private registry (the
/// shared one unusable) processes do not either.
#[cfg(target_os = "macos")]
pub(crate) fn lock_name(key: u32, interruptible: bool) -> std::io::Result<()> {
    let fd = registry_fd();
    if fd < 0 {
        return Ok(()); // no registry at all: nothing to lock with (as with a private one)
    }
    let mut fl = lock_request(WRLCK, 0);
    fl.l_start = (1 << 32) + libc::off_t::from(key);
    loop {
        // SAFETY: F_SETLKW on our registry descriptor with a valid `flock`.
        if unsafe { libc::fcntl(fd, libc::F_SETLKW, &fl) } == 0 {
            return Ok(());
        }
        let e = super::errno();
        if e != libc::EINTR || interruptible {
            return Err(std::io::Error::from_raw_os_error(e));
        }
    }
}

/// Release [`lock_name`]'s lock (a no-op if not held).
#[cfg(target_os = "macos")]
pub(crate) fn unlock_name(key: u32) {
    let fd = FD.load(Ordering::SeqCst);
    if fd < 0 {
        return;
    }
    let mut fl = lock_request(UNLCK, 0);
    fl.l_start = (1 << 32) + libc::off_t::from(key);
    // SAFETY: F_SETLK on our registry descriptor with a valid `flock`.
    unsafe { libc::fcntl(fd, libc::F_SETLK, &fl) };
}

/// An unnamed regular file in `dir`, open for reading and writing (close-on-exec).
#[cfg(not(target_os = "macos"))]
fn unnamed_file(dir: &str) -> Option<i32> {
    let path = std::ffi::CString::new(dir).ok()?;
    // SAFETY: a valid NUL-terminated directory path; O_TMPFILE makes an unnamed file in it.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC, 0o600) };
    (fd >= 0).then_some(fd)
}

#[cfg(target_os = "macos")]
use super::darwin::unnamed_file;

/// `fd` moved to a number of at least [`HIGH_FD`] (close-on-exec), or left where it is if the limit on
/// open files does not allow it. Called before any lock is taken through it (closing then drops nothing).
fn move_high(fd: i32) -> i32 {
    if fd >= HIGH_FD {
        return fd;
    }
    // SAFETY: F_DUPFD_CLOEXEC on our own descriptor returns a new one (or -1); then the old one is ours to
    // close: callers run under `opening` while this process holds no lock on the registry.
    unsafe {
        let high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, HIGH_FD);
        if high < 0 {
            return fd;
        }
        libc::close(fd);
        high
    }
}

/// The tag of an open registry: a regular file (not a FIFO, device or directory someone put there).
fn checked_tag(fd: i32) -> Option<u32> {
    // SAFETY: `st` is plain data written by fstat before it is read.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on our descriptor.
    if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    let h = mix(mix(st.st_dev as u64) ^ st.st_ino as u64);
    Some(((h % TAG_MASK) + 1) as u32)
}

/// splitmix64's finaliser: spreads the bits of the device and inode numbers over the tag.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(target_os = "macos")]
fn random_u32() -> u32 {
    let mut buf = [0u8; 4];
    super::darwin::random_bytes(&mut buf);
    u32::from_ne_bytes(buf)
}

#[cfg(not(target_os = "macos"))]
fn random_u32() -> u32 {
    let mut buf = [0u8; 4];
    // SAFETY: getrandom writes at most `buf.len()` bytes into our buffer.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), libc::GRND_NONBLOCK) };
    if n == buf.len() as isize {
        return u32::from_ne_bytes(buf);
    }
    // No entropy yet (early boot) or no getrandom: the clock, the pid and a counter.
    static SALT: AtomicU64 = AtomicU64::new(0);
    let t = crate::sys::Deadline::now().as_nanos();
    let s = SALT.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    mix(t ^ s ^ (u64::from(crate::sys::process::current_pid()) << 32)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_id_is_registered_alive_and_stable() {
        let id = current_id();
        assert_ne!(id, 0);
        assert_eq!(id & !ID_MASK, 0);
        assert_eq!(current_id(), id);
        assert_ne!(tag_of(id), 0, "the shared or a private registry is usable here");
        assert_eq!(liveness(id), Liveness::Alive);
        // A byte of our registry that nobody holds: dead. Another registry's id, or an untracked one: unknown.
        let free = (id & !0xffff_ffff) | u64::from((id as u32) ^ 0x8000_0000);
        assert_eq!(liveness(free), Liveness::Dead);
        assert_eq!(liveness(u64::from(id as u32)), Liveness::Unknown);
        let other_tag = (u64::from((tag_of(id) % 1000) + 1001) << 32) | 7;
        assert_eq!(liveness(other_tag), Liveness::Unknown);
        assert_eq!(liveness(0), Liveness::Unknown);
    }
}
