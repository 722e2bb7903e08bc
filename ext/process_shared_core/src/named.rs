//! Named objects: an object's bytes in a POSIX shared memory object ([`crate::sys::shm`]), behind a
//! 64-byte header that records what the object is, so that unrelated processes can open it by name.
//!
//! | header field  | meaning                                                                   |
//! |---------------|---------------------------------------------------------------------------|
//! | `magic`       | `PSNAMED1`                                                                |
//! | `class`       | the caller's class id (different classes never open each other's objects) |
//! | `payload_len` | the object's length in bytes (its layout: a SharedMemory's size, a Queue's capacity, ...) |
//! | `ready`       | 1 once the creator initialised the object                                 |
//!
//! Creation race: every opener takes an exclusive `flock` on the object before looking at it, so exactly
//! one initialises it (the first to find it not ready: new, or left half-initialised by a creator that
//! died, which releases the lock). Others wait for the lock and then only validate the header. The size is
//! set (`ftruncate`) only under the lock and only while the object is not ready, so nobody's mapping ever
//! shrinks under them.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::sys::shm::{self, Create};
use crate::sys::SharedMapping;

/// Bytes of the header in front of the object.
pub const NAMED_HEADER: usize = 64;
const MAGIC: u64 = u64::from_le_bytes(*b"PSNAMED1");

#[repr(C)]
struct NamedHeader {
    magic: AtomicU64,
    class: AtomicU32,
    ready: AtomicU32,
    payload_len: AtomicU64,
}

/// Why a named object could not be attached.
#[derive(Debug)]
pub enum NamedError {
    /// A system call failed (`EEXIST` for [`Create::CreateOnly`], `ENOENT` for [`Create::OpenOnly`],
    /// `EINVAL` for an invalid name, `EACCES`, ...).
    Io(io::Error),
    /// The name belongs to an object of another class (its id).
    WrongClass(u32),
    /// The name belongs to an object of this class with another layout (its length).
    WrongSize(u64),
}

impl From<io::Error> for NamedError {
    fn from(e: io::Error) -> Self {
        NamedError::Io(e)
    }
}

/// An attached named object.
#[derive(Debug)]
pub struct Named {
    /// The whole mapping (header and object).
    pub mapping: SharedMapping,
    /// Whether this call initialised it.
    pub created: bool,
}

impl Named {
    /// The object's bytes (64-byte aligned).
    pub fn payload(&self) -> *mut u8 {
        // SAFETY: the mapping is at least NAMED_HEADER + payload_len bytes long.
        unsafe { self.mapping.as_ptr().add(NAMED_HEADER) }
    }
}

/// Open (or create) the object called `name` as one of class `class` with `payload_len` bytes, running
/// `init` on its (zeroed) bytes if this call is the one that creates it.
pub fn attach(
    name: &str,
    mode: u32,
    create: Create,
    class: u32,
    payload_len: usize,
    init: impl FnOnce(*mut u8),
) -> Result<Named, NamedError> {
    let total = NAMED_HEADER.checked_add(payload_len).ok_or_else(shm::invalid)?;
    let want = shm::mapped_len(total).ok_or_else(shm::invalid)? as u64;
    let file = shm::open(name, mode, create)?;
    file.lock_exclusive()?; // released when `file` is dropped (or the process dies)
    let size = file.size()?;
    if size >= NAMED_HEADER as u64 {
        // Look at what is there first: a ready object is never resized.
        let existing = file.map(NAMED_HEADER)?;
        // SAFETY: at least NAMED_HEADER bytes are mapped; the header is plain atomics, valid for any bytes.
        let hdr = unsafe { &*existing.as_ptr().cast::<NamedHeader>() };
        // Acquire: pairs with the creator's Release store of `ready` (the object is initialised).
        if hdr.ready.load(Ordering::Acquire) == 1 && hdr.magic.load(Ordering::Relaxed) == MAGIC {
            let found = hdr.class.load(Ordering::Relaxed);
            if found != class {
                return Err(NamedError::WrongClass(found));
            }
            let len = hdr.payload_len.load(Ordering::Relaxed);
            if len != payload_len as u64 || size < want {
                return Err(NamedError::WrongSize(len));
            }
            return Ok(Named { mapping: file.map(want as usize)?, created: false });
        }
    }
    // New, or left half-initialised by a creator that died: ours to initialise (we hold the lock).
    if size != want {
        file.set_size(0)?; // zero whatever a dead creator left
        file.set_size(want)?;
    }
    let mapping = file.map(want as usize)?;
    // SAFETY: the mapping is `want >= total` bytes; nobody else uses it until `ready` (we hold the lock).
    let hdr = unsafe { &*mapping.as_ptr().cast::<NamedHeader>() };
    if size == want {
        // Same size, not ready: a creator died mid-way; start from zero bytes again.
        // SAFETY: as above.
        unsafe { std::ptr::write_bytes(mapping.as_ptr(), 0, want as usize) };
    }
    // Relaxed: published by the Release store of `ready`.
    hdr.magic.store(MAGIC, Ordering::Relaxed);
    hdr.class.store(class, Ordering::Relaxed);
    hdr.payload_len.store(payload_len as u64, Ordering::Relaxed);
    // SAFETY: NAMED_HEADER + payload_len bytes are mapped.
    init(unsafe { mapping.as_ptr().add(NAMED_HEADER) });
    hdr.ready.store(1, Ordering::Release);
    Ok(Named { mapping, created: true })
}
