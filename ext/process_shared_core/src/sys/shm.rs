//! POSIX shared memory objects (`shm_open`: files in `/dev/shm` on Linux), for named objects that
//! unrelated processes open by name. Every name gets the fixed prefix [`PREFIX`].
//!
//! macOS: a shm object is no file there. Its name has at most 30 bytes (`PSHMNAMLEN`, 31 with the NUL), so
//! a longer one is hashed ([`os_name`]; the user's name is what the bindings show); its size can be set
//! once (a second `ftruncate` is `EINVAL`) and cannot be written (no `posix_fallocate`, no `pwrite`: it is
//! anonymous memory, allocated when touched, with no filesystem to fill up); `fstat` tells the size and the
//! mode, not a device or inode, so [`ShmFile::identity`] asks the kernel which VM object a mapping of it
//! maps; `flock` refuses it, so the set-up lock is a `flock` of a lock file in `/tmp`
//! ([`super::darwin::setup_lock_file`]). Its namespace holds nothing but shm objects (no symlinks, FIFOs
//! or directories).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::mmap::{whole_pages, SharedMapping};

/// What every name is prefixed with (so `/dev/shm/process_shared.<name>`).
#[cfg(not(target_os = "macos"))]
pub const PREFIX: &str = "/process_shared.";
/// What every name is prefixed with: short, since macOS names have at most [`OS_NAME_MAX`] bytes.
#[cfg(target_os = "macos")]
pub const PREFIX: &str = "/ps.";

/// The longest name the system takes, in bytes, slash included (macOS: `PSHMNAMLEN` is 31 with the NUL).
#[cfg(target_os = "macos")]
pub const OS_NAME_MAX: usize = 30;

/// The longest name a caller may give.
pub const NAME_MAX: usize = 200;

/// Whether `name` is 1..=[`NAME_MAX`] characters of `[A-Za-z0-9._-]`.
pub fn valid_name(name: &str) -> bool {
    (1..=NAME_MAX).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// How [`open`] treats an existing or missing object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    /// Open it, creating it if missing.
    OpenOrCreate,
    /// Create it; `EEXIST` if it exists.
    CreateOnly,
    /// Open it; `ENOENT` if missing.
    OpenOnly,
}

fn c_name(name: &str) -> io::Result<CString> {
    if !valid_name(name) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    CString::new(os_name(name)).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The system's name for the (valid) name `name`: [`PREFIX`] and `name`.
#[cfg(not(target_os = "macos"))]
fn os_name(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// The system's name for the (valid) name `name`: [`fitted_name`] in [`OS_NAME_MAX`] bytes.
#[cfg(target_os = "macos")]
fn os_name(name: &str) -> String {
    fitted_name(PREFIX, name, OS_NAME_MAX)
}

/// `prefix` and `name` when that fits in `max` bytes; else `prefix`, the first bytes of `name` (readable in
/// listings), `~` (never in a valid name, so a hashed name never equals a short one) and 16 hex digits of
/// [`name_hash`], `max` bytes in all. (A valid name is ASCII, so the first bytes are whole characters.)
#[cfg(any(target_os = "macos", test))]
fn fitted_name(prefix: &str, name: &str, max: usize) -> String {
    if prefix.len() + name.len() <= max {
        return format!("{prefix}{name}");
    }
    let keep = max.saturating_sub(prefix.len() + 17).min(name.len());
    format!("{prefix}{}~{:016x}", name.get(..keep).unwrap_or_default(), name_hash(name))
}

/// FNV-1a over the bytes, then splitmix64's finaliser: stable across processes, builds and Rust versions
/// (std's hashers are not), spread over all 64 bits. Processes of every version must agree on it: never
/// change it (a test pins it).
#[cfg(any(target_os = "macos", test))]
fn name_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// What `stat` says about the file behind a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Bytes.
    pub size: u64,
    /// Permission bits (`0o600`...).
    pub mode: u32,
    /// The owner's uid.
    pub uid: u32,
}

impl FileInfo {
    #[allow(clippy::unnecessary_cast)] // `st_mode` is u32 here, u16 on macOS
    fn of(st: &libc::stat) -> FileInfo {
        FileInfo { size: st.st_size as u64, mode: st.st_mode as u32 & 0o7777, uid: st.st_uid }
    }
}

/// [`FileInfo`] of the file behind `name` without opening it (`lstat`: a symlink's own), for a name this
/// process may not open (another user's object). `EINVAL` for an invalid name.
#[cfg(not(target_os = "macos"))]
pub fn info_of(name: &str) -> io::Result<FileInfo> {
    if !valid_name(name) {
        return Err(invalid());
    }
    let path = CString::new(format!("{SHM_DIR}{PREFIX}{name}")).map_err(|_| invalid())?;
    // SAFETY: `st` is plain data, written by lstat before being read.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a pointer to our `st`.
    if unsafe { libc::lstat(path.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FileInfo::of(&st))
}

/// macOS: shm objects are no files: `ENOTSUP`.
#[cfg(target_os = "macos")]
pub fn info_of(_name: &str) -> io::Result<FileInfo> {
    Err(io::Error::from_raw_os_error(libc::ENOTSUP))
}

/// An open shared memory object (closed on drop; the mapping made from it stays valid).
#[derive(Debug)]
pub struct ShmFile {
    fd: OwnedFd,
    /// macOS: a hash of the name, half of the identity (and the fallback set-up lock's byte).
    #[cfg(target_os = "macos")]
    key: u64,
    /// macOS: the name's set-up lock file, if it could be opened.
    #[cfg(target_os = "macos")]
    setup: Option<OwnedFd>,
}

/// Open (or create, with permission bits `mode`) the object called `name` (validated with
/// [`valid_name`]: `EINVAL` otherwise). Errors are `shm_open`'s errno (`EEXIST`, `ENOENT`, `EACCES`, `ELOOP`
/// for a symlink, `EISDIR` for a directory, ...).
pub fn open(name: &str, mode: u32, create: Create) -> io::Result<ShmFile> {
    let create = match create {
        Create::OpenOrCreate => libc::O_CREAT,
        Create::CreateOnly => libc::O_CREAT | libc::O_EXCL,
        Create::OpenOnly => 0,
    };
    open_with(name, libc::O_RDWR | create, mode)
}

/// Open the existing object called `name` for reading only (no write permission needed, nothing created):
/// for the lock-free reader ([`crate::inspect`]). Errors as for [`open`] (a directory opens: check
/// [`ShmFile::not_regular`]).
pub fn open_read_only(name: &str) -> io::Result<ShmFile> {
    open_with(name, libc::O_RDONLY, 0)
}

fn open_with(name: &str, flags: libc::c_int, mode: u32) -> io::Result<ShmFile> {
    let c = c_name(name)?;
    // O_NOFOLLOW: a symlink under the prefix is refused (`ELOOP`), never followed; O_NONBLOCK: opening a
    // FIFO or device planted there cannot block (no effect on a regular file). What was opened is checked
    // with [`ShmFile::not_regular`] before being trusted. (macOS: shm objects only; neither flag applies.)
    let flags = flags | libc::O_CLOEXEC | FILE_FLAGS;
    // SAFETY: `c` is a valid NUL-terminated string; shm_open returns a new descriptor or -1. The mode is
    // passed as the `unsigned int` a variadic `mode_t` is promoted to.
    let fd = unsafe { libc::shm_open(c.as_ptr(), flags, (mode & 0o777) as libc::c_uint) };
    if fd < 0 {
        return Err(open_error(super::errno()));
    }
    // SAFETY: `fd` was just returned by shm_open and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(ShmFile {
        fd,
        #[cfg(target_os = "macos")]
        key: name_hash(name),
        #[cfg(target_os = "macos")]
        setup: super::darwin::setup_lock_file(&os_name(name)),
    })
}

/// The directory whose files are the shm objects (Linux, glibc and musl: `/dev/shm`).
#[cfg(not(target_os = "macos"))]
pub const SHM_DIR: &str = "/dev/shm";

/// What [`list`] found under the prefix: a name, or a file name that is not one (invalid characters or
/// length: no object of ours can have it), shown lossily.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listed {
    /// A valid name (the file is `PREFIX` and the name).
    Name(String),
    /// The rest of a file name under the prefix that is not a valid name.
    Invalid(String),
}

/// The names of every shm object under [`PREFIX`] (files of [`SHM_DIR`] whose name starts with it; the
/// owner registry and other programs' files are not), sorted. Nothing is opened.
#[cfg(not(target_os = "macos"))]
pub fn list() -> io::Result<Vec<Listed>> {
    let prefix = PREFIX.trim_start_matches('/');
    let mut out = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR)? {
        let file = entry?.file_name();
        let file = file.to_string_lossy();
        if let Some(rest) = file.strip_prefix(prefix) {
            out.push(if valid_name(rest) { Listed::Name(rest.to_string()) } else { Listed::Invalid(rest.to_string()) });
        }
    }
    out.sort_by(|a, b| listed_key(a).cmp(listed_key(b)));
    Ok(out)
}

#[cfg(not(target_os = "macos"))]
fn listed_key(l: &Listed) -> &str {
    match l {
        Listed::Name(n) | Listed::Invalid(n) => n,
    }
}

/// macOS has no directory of shm objects to list: `ENOTSUP`.
#[cfg(target_os = "macos")]
pub fn list() -> io::Result<Vec<Listed>> {
    Err(io::Error::from_raw_os_error(libc::ENOTSUP))
}

#[cfg(not(target_os = "macos"))]
const FILE_FLAGS: libc::c_int = libc::O_NOFOLLOW | libc::O_NONBLOCK;
#[cfg(target_os = "macos")]
const FILE_FLAGS: libc::c_int = 0;

/// glibc folds EISDIR (a directory under the name) into EINVAL; the name is valid, so say what it is.
#[cfg(not(target_os = "macos"))]
fn open_error(e: i32) -> io::Error {
    io::Error::from_raw_os_error(if e == libc::EINVAL { libc::EISDIR } else { e })
}

#[cfg(target_os = "macos")]
fn open_error(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

/// Remove the name (processes that have the object open or mapped keep using it).
pub fn unlink(name: &str) -> io::Result<()> {
    let c = c_name(name)?;
    // SAFETY: a valid NUL-terminated string.
    if unsafe { libc::shm_unlink(c.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether an object called `name` exists (false for an invalid name).
pub fn exists(name: &str) -> bool {
    let Ok(c) = c_name(name) else { return false };
    // O_NONBLOCK: a FIFO under the name must not block this (opening one read-only waits for a writer).
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | FILE_FLAGS;
    // SAFETY: a valid NUL-terminated string; a returned descriptor is closed at once.
    let fd = unsafe { libc::shm_open(c.as_ptr(), flags, 0) };
    if fd >= 0 {
        // SAFETY: closing the descriptor we just got.
        unsafe { libc::close(fd) };
        return true;
    }
    super::errno() != libc::ENOENT
}

impl ShmFile {
    /// Hold an exclusive `flock` on the object until this handle is dropped (the kernel drops it if the
    /// process dies). Blocks while another process holds it; a signal ends the wait with `EINTR` if
    /// `interruptible`, else it is retried. (A mapping keeps the open file, and so a lock, alive: dropping
    /// the handle unlocks explicitly.)
    #[cfg(not(target_os = "macos"))]
    pub fn lock_exclusive(&self, interruptible: bool) -> io::Result<()> {
        flock_exclusive(self.fd.as_raw_fd(), interruptible)
    }

    /// Release the `flock` taken by [`ShmFile::lock_exclusive`].
    #[cfg(not(target_os = "macos"))]
    pub fn unlock(&self) {
        // SAFETY: flock on a descriptor we own; unlocking a lock we do not hold is a no-op.
        unsafe { libc::flock(self.fd.as_raw_fd(), libc::LOCK_UN) };
    }

    /// macOS: `flock` refuses shm descriptors, so this is an exclusive `flock` on the name's set-up lock
    /// file ([`super::darwin::setup_lock_file`]: the same semantics, per handle), held until
    /// [`ShmFile::unlock`] or the drop of this handle; `EINTR` as on Linux. Without a usable lock file, a
    /// record lock of the owner registry ([`super::owner::lock_name`]), which excludes other processes
    /// only.
    #[cfg(target_os = "macos")]
    pub fn lock_exclusive(&self, interruptible: bool) -> io::Result<()> {
        match &self.setup {
            Some(fd) => flock_exclusive(fd.as_raw_fd(), interruptible),
            None => super::owner::lock_name(self.key as u32, interruptible),
        }
    }

    /// macOS: release the lock taken by [`ShmFile::lock_exclusive`].
    #[cfg(target_os = "macos")]
    pub fn unlock(&self) {
        match &self.setup {
            // SAFETY: flock on a descriptor we own; unlocking a lock we do not hold is a no-op.
            Some(fd) => unsafe {
                libc::flock(fd.as_raw_fd(), libc::LOCK_UN);
            },
            None => super::owner::unlock_name(self.key as u32),
        }
    }

    /// Set the permission bits exactly (`shm_open`'s are reduced by the umask).
    ///
    /// macOS: `fchmod` of a shm object is not supported everywhere; a failure there is ignored, and the
    /// object keeps the mode `shm_open` gave it.
    pub fn set_mode(&self, mode: u32) -> io::Result<()> {
        // SAFETY: fchmod on a descriptor we own.
        let rc = unsafe { libc::fchmod(self.fd.as_raw_fd(), (mode & 0o777) as libc::mode_t) };
        if rc != 0 && !cfg!(target_os = "macos") {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn stat(&self) -> io::Result<libc::stat> {
        // SAFETY: `st` is plain data, written by fstat before being read; the descriptor is ours.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }

    /// The object's identity on this host: (device, inode). Stable while the object is open or mapped
    /// (which keeps the inode from being reused), whatever happens to its name.
    #[allow(clippy::unnecessary_cast)] // `st_dev`/`st_ino` are u64 here, narrower or signed elsewhere
    #[cfg(not(target_os = "macos"))]
    pub fn identity(&self) -> io::Result<(u64, u64)> {
        let st = self.stat()?;
        Ok((st.st_dev as u64, st.st_ino as u64))
    }

    /// The object's identity on this host: (hash of the name, id of the VM object a mapping of it maps).
    /// `fstat` gives no inode on macOS; the kernel's (obfuscated, 32-bit) id of the memory object tells a
    /// re-created object under the same name from the one this process may still map. If the kernel gives
    /// no id (0), the name alone: a process that still maps an unlinked object and opens a new one of the
    /// same name is then handed its old mapping. Needs the size set (the object is mapped to ask).
    #[cfg(target_os = "macos")]
    pub fn identity(&self) -> io::Result<(u64, u64)> {
        let probe = self.map(1)?;
        Ok((self.key, super::darwin::region_object_id(probe.as_ptr())))
    }

    /// The object's size in bytes.
    pub fn size(&self) -> io::Result<u64> {
        Ok(self.stat()?.st_size as u64)
    }

    /// `None` for a regular file (what `shm_open` makes); else what it is ("a FIFO", "a directory", ...),
    /// something planted under the name that must not be locked, sized or mapped.
    pub fn not_regular(&self) -> io::Result<Option<&'static str>> {
        if cfg!(target_os = "macos") {
            return Ok(None); // only shm objects there; their `st_mode` holds the permission bits alone
        }
        Ok(match self.stat()?.st_mode & libc::S_IFMT {
            libc::S_IFREG => None,
            libc::S_IFIFO => Some("a FIFO"),
            libc::S_IFDIR => Some("a directory"),
            libc::S_IFCHR => Some("a character device"),
            libc::S_IFBLK => Some("a block device"),
            libc::S_IFSOCK => Some("a socket"),
            libc::S_IFLNK => Some("a symlink"),
            _ => Some("of an unknown file type"),
        })
    }

    /// Set the size to `len` and reserve every page of it (`posix_fallocate`; where the filesystem cannot,
    /// zeros written page by page with `pwrite`), so that no later access through a mapping can raise
    /// SIGBUS for lack of space: `ENOSPC` (or `ENOMEM`) now instead. Only for a file nobody uses yet (the
    /// fallback writes zeros).
    #[cfg(not(target_os = "macos"))]
    pub fn set_size(&self, len: u64) -> io::Result<()> {
        let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        // SAFETY: posix_fallocate on a descriptor we own; it returns the error number instead of setting errno.
        match unsafe { libc::posix_fallocate(self.fd.as_raw_fd(), 0, len) } {
            0 => Ok(()),
            libc::EOPNOTSUPP | libc::EINVAL => self.write_zeros(len),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }

    /// Set the size to `len`: macOS takes one `ftruncate` per object (a second one is `EINVAL`), so an object
    /// that already has that size is left alone. Nothing to reserve: the object is anonymous memory.
    #[cfg(target_os = "macos")]
    pub fn set_size(&self, len: u64) -> io::Result<()> {
        if self.size()? == len {
            return Ok(());
        }
        let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        // SAFETY: ftruncate on a descriptor we own.
        if unsafe { libc::ftruncate(self.fd.as_raw_fd(), len) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// macOS: nothing to do (no filesystem backs the object; see [`ShmFile::set_size`]).
    #[cfg(target_os = "macos")]
    pub fn reserve_existing(&self, _len: u64) -> io::Result<()> {
        Ok(())
    }

    /// Reserve the first `len` bytes of a file others may be using (a sparse one made by someone else),
    /// without changing a byte: `fallocate(2)` (no emulation: writing zeros could overwrite live data).
    /// A filesystem without it is left as is.
    #[cfg(not(target_os = "macos"))]
    pub fn reserve_existing(&self, len: u64) -> io::Result<()> {
        let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        // SAFETY: fallocate (mode 0: allocate, never shrink or change data) on a descriptor we own.
        if unsafe { libc::fallocate(self.fd.as_raw_fd(), 0, 0, len) } != 0 {
            let e = super::errno();
            if e != libc::EOPNOTSUPP && e != libc::EINVAL {
                return Err(io::Error::from_raw_os_error(e));
            }
        }
        Ok(())
    }

    #[cfg(not(target_os = "macos"))]
    fn write_zeros(&self, len: libc::off_t) -> io::Result<()> {
        let page = vec![0u8; super::mmap::page_size()];
        let mut at: libc::off_t = 0;
        while at < len {
            let n = (page.len() as libc::off_t).min(len - at) as usize;
            // SAFETY: pwrite of `n <= page.len()` bytes from our buffer to a descriptor we own.
            let w = unsafe { libc::pwrite(self.fd.as_raw_fd(), page.as_ptr().cast(), n, at) };
            if w < 0 {
                if super::errno() == libc::EINTR {
                    continue;
                }
                return Err(io::Error::last_os_error());
            }
            at += w as libc::off_t;
        }
        Ok(())
    }

    /// The file's size, permission bits and owner.
    pub fn info(&self) -> io::Result<FileInfo> {
        Ok(FileInfo::of(&self.stat()?))
    }

    /// Copy bytes from `offset` into `buf` with `pread` (never through a mapping, so a file cut short
    /// meanwhile gives a short count, never a SIGBUS); how many were read (fewer at the end of the file).
    #[cfg(not(target_os = "macos"))]
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let at = libc::off_t::try_from(offset + done as u64).map_err(|_| invalid())?;
            let rest = &mut buf[done..];
            // SAFETY: pread writes at most `rest.len()` bytes into our buffer, from a descriptor we own.
            let n = unsafe { libc::pread(self.fd.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len(), at) };
            match n {
                0 => break,
                n if n > 0 => done += n as usize,
                _ if super::errno() == libc::EINTR => {}
                _ => return Err(io::Error::last_os_error()),
            }
        }
        Ok(done)
    }

    /// macOS: shm objects cannot be read with `pread` (and this reader maps nothing): `ENOTSUP`.
    #[cfg(target_os = "macos")]
    pub fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::ENOTSUP))
    }

    /// Map the first `len` bytes (rounded up to whole pages; the object must be at least that long).
    pub fn map(&self, len: usize) -> io::Result<SharedMapping> {
        SharedMapping::map(len, Some(self.fd.as_raw_fd()))
    }
}

/// Hold an exclusive `flock` on `fd`: blocks while another open file holds it; a signal ends the wait with
/// `EINTR` if `interruptible`, else it is retried.
fn flock_exclusive(fd: libc::c_int, interruptible: bool) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor the caller owns.
        if unsafe { libc::flock(fd, libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        if super::errno() != libc::EINTR || interruptible {
            return Err(io::Error::last_os_error());
        }
    }
}

impl Drop for ShmFile {
    fn drop(&mut self) {
        self.unlock();
    }
}

/// The errno values named objects report.
pub mod errno {
    /// The name exists (`create: :create_only`).
    pub const EEXIST: i32 = libc::EEXIST;
    /// A signal ended a wait.
    pub const EINTR: i32 = libc::EINTR;
    /// No such name (`create: :open_only`).
    pub const ENOENT: i32 = libc::ENOENT;
}

/// `EINVAL`, for a length or name the caller cannot use.
pub fn invalid() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

/// The size a mapping of `len` bytes takes (whole pages); `None` if it cannot be mapped.
pub fn mapped_len(len: usize) -> Option<usize> {
    whole_pages(len).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macos_names_fit_in_30_bytes_and_stay_apart() {
        // What macOS gets (`os_name` there): prefix "/ps.", at most 30 bytes.
        assert_eq!(fitted_name("/ps.", "myapp.deploy", 30), "/ps.myapp.deploy");
        let exact = "a".repeat(26);
        assert_eq!(fitted_name("/ps.", &exact, 30), format!("/ps.{exact}"));
        let long = fitted_name("/ps.", "myapp.workers.slots.production", 30);
        assert_eq!(long, "/ps.myapp.wor~d63923e6147dc852");
        assert_eq!(long.len(), 30);
        let other = fitted_name("/ps.", "myapp.workers.slots.productioN", 30);
        assert_ne!(long, other);
        assert_eq!(other.len(), 30);
        let longest = fitted_name("/ps.", &"x".repeat(NAME_MAX), 30);
        assert_eq!(longest.len(), 30);
        assert!(longest.starts_with("/ps.xxxxxxxxx~"));
    }
}
