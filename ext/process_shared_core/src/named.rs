//! Named objects: an object's bytes in a POSIX shared memory object ([`crate::sys::shm`]), behind a
//! 64-byte header that records what the object is, so that unrelated processes can open it by name.
//!
//! | header field  | meaning                                                                   |
//! |---------------|---------------------------------------------------------------------------|
//! | `magic`       | `PSNAMED1`                                                                |
//! | `class`       | the object's [`Class`] id (different classes never open each other's objects) |
//! | `payload_len` | the object's length in bytes (its layout: a SharedMemory's size, a Queue's capacity, ...) |
//! | `ready`       | 1 once the creator initialised the object                                 |
//!
//! [`crate::inspect`] reads the header (and the object) of any name without its lock, for operators.
//!
//! Layout versions: `payload_len` tells apart the layouts of fixed-size objects (a ConditionVariable of the
//! 16-byte layout from before its table of waiters is [`NamedError::WrongSize`]). An object whose length
//! comes from an argument, so that two layouts can have the same length, carries its own format word,
//! which its binding checks after attaching (the Queue's [`crate::sync::QUEUE_FORMAT`]).
//!
//! Creation race: only the process whose exclusive create (`O_EXCL`) succeeded initialises a new object,
//! holding an exclusive `flock` meanwhile; openers take the lock before looking and wait until the object
//! is ready. One left unfinished by a creator that died is initialised by a later opener after a grace
//! period. The size is only ever set on a file that is new or unfinished and never shrunk, and a file
//! without a valid header is refused, so nobody's mapping is cut short by this library.
//!
//! One mapping per object per process: [`share`] hands every later attach of an object this process
//! already maps (the same file: device and inode) the first attach's mapping, so all handles on a name
//! see the object at one address. What a process records about an object by its address (the locks a
//! thread holds, its read holds) then means the object, not the handle it came through.
//!
//! Hostile files: the name is opened with `O_NOFOLLOW` (a symlink: `ELOOP`) and `O_NONBLOCK`, and what
//! was opened is checked before it is trusted: a regular file (a FIFO or device is refused before it is
//! locked or mapped), a header with our magic and `ready`, this class, this layout, and a size covering
//! the object (a truncated one is refused). Nothing refused is written, sized or unlinked.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::sys::shm::{self, Create};
use crate::sys::SharedMapping;

/// Bytes of the header in front of the object.
pub const NAMED_HEADER: usize = 64;
const MAGIC: u64 = u64::from_le_bytes(*b"PSNAMED1");

#[repr(C)]
pub(crate) struct NamedHeader {
    magic: AtomicU64,
    class: AtomicU32,
    ready: AtomicU32,
    payload_len: AtomicU64,
}

/// The classes of named objects, by the id their header records (stable: part of the on-disk format; a
/// new class takes a new number, never a used one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// `ProcessShared::Mutex`: a [`crate::sync::RawMutex`].
    Mutex = 1,
    /// `ProcessShared::Monitor`: a [`crate::sync::RawMonitor`].
    Monitor = 2,
    /// `ProcessShared::Semaphore`: a [`crate::sync::RawSemaphore`].
    Semaphore = 3,
    /// `ProcessShared::BinarySemaphore`: a [`crate::sync::RawSemaphore`] of maximum 1.
    BinarySemaphore = 4,
    /// `ProcessShared::ConditionVariable`: a [`crate::sync::RawCondvar`].
    ConditionVariable = 5,
    /// `ProcessShared::AtomicInteger`: a [`crate::sync::RawAtomicInt`].
    AtomicInteger = 6,
    /// `ProcessShared::Event`: a [`crate::sync::RawEvent`].
    Event = 7,
    /// `ProcessShared::CountDownLatch`: a [`crate::sync::RawLatch`].
    CountDownLatch = 8,
    /// `ProcessShared::Barrier`: a [`crate::sync::RawBarrier`].
    Barrier = 9,
    /// `ProcessShared::SharedMemory`: `payload_len` bytes.
    SharedMemory = 10,
    /// `ProcessShared::SharedArray`: `payload_len` bytes.
    SharedArray = 11,
    /// `ProcessShared::Counters`: `payload_len / 64` [`crate::sync::RawCounter`]s.
    Counters = 12,
    /// `ProcessShared::ReadWriteLock`: a [`crate::sync::RawRwLock`].
    ReadWriteLock = 13,
    /// `ProcessShared::Queue`: a [`crate::sync::QueueHeader`] and its ring.
    Queue = 14,
}

impl Class {
    /// Every class, in id order.
    pub const ALL: [Class; 14] = [
        Class::Mutex,
        Class::Monitor,
        Class::Semaphore,
        Class::BinarySemaphore,
        Class::ConditionVariable,
        Class::AtomicInteger,
        Class::Event,
        Class::CountDownLatch,
        Class::Barrier,
        Class::SharedMemory,
        Class::SharedArray,
        Class::Counters,
        Class::ReadWriteLock,
        Class::Queue,
    ];

    /// The id a header records.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// The class of a header's id, if this version knows it.
    pub fn from_id(id: u32) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.id() == id)
    }

    /// The Ruby class's name (`"ProcessShared::Mutex"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Class::Mutex => "ProcessShared::Mutex",
            Class::Monitor => "ProcessShared::Monitor",
            Class::Semaphore => "ProcessShared::Semaphore",
            Class::BinarySemaphore => "ProcessShared::BinarySemaphore",
            Class::ConditionVariable => "ProcessShared::ConditionVariable",
            Class::AtomicInteger => "ProcessShared::AtomicInteger",
            Class::Event => "ProcessShared::Event",
            Class::CountDownLatch => "ProcessShared::CountDownLatch",
            Class::Barrier => "ProcessShared::Barrier",
            Class::SharedMemory => "ProcessShared::SharedMemory",
            Class::SharedArray => "ProcessShared::SharedArray",
            Class::Counters => "ProcessShared::Counters",
            Class::ReadWriteLock => "ProcessShared::ReadWriteLock",
            Class::Queue => "ProcessShared::Queue",
        }
    }

    /// The class called `name` (a Ruby class name), if any.
    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The payload length every object of this class has, for the classes of one fixed layout (`None`:
    /// the length comes from the creator's arguments).
    pub fn fixed_len(self) -> Option<usize> {
        use crate::sync::*;
        use std::mem::size_of;
        Some(match self {
            Class::Mutex => size_of::<RawMutex>(),
            Class::Monitor => size_of::<RawMonitor>(),
            Class::Semaphore | Class::BinarySemaphore => RawSemaphore::SIZE,
            Class::ConditionVariable => RawCondvar::SIZE,
            Class::AtomicInteger => size_of::<RawAtomicInt>(),
            Class::Event => size_of::<RawEvent>(),
            Class::CountDownLatch => size_of::<RawLatch>(),
            Class::Barrier => size_of::<RawBarrier>(),
            Class::ReadWriteLock => RawRwLock::SIZE,
            Class::SharedMemory | Class::SharedArray | Class::Counters | Class::Queue => return None,
        })
    }
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
    /// The name belongs to a file that is not a named object of this library.
    NotOurs,
    /// The name belongs to something that is not a regular file (what it is: "a FIFO", ...).
    NotRegular(&'static str),
    /// The name belongs to a ready object of this class and layout whose file was cut to `size` bytes,
    /// fewer than the `need` it is mapped with.
    Truncated {
        /// The file's size.
        size: u64,
        /// The mapped length the object needs.
        need: u64,
    },
    /// The name belongs to a file of `size` bytes, zeroed or with an unfinished header (a creator that died,
    /// or not ours), not the `need` this object needs: left alone (nothing shrinks or grows it).
    Unfinished {
        /// The file's size.
        size: u64,
        /// The mapped length the object needs.
        need: u64,
    },
}

impl From<io::Error> for NamedError {
    fn from(e: io::Error) -> Self {
        NamedError::Io(e)
    }
}

/// An attached named object.
#[derive(Debug)]
pub struct Named {
    /// The whole mapping (header and object); shared by every handle on the object in this process once
    /// it went through [`share`]. Unmapped when the last one is dropped.
    pub mapping: Arc<SharedMapping>,
    /// Whether this call initialised it.
    pub created: bool,
    /// The file's (device, inode).
    pub file: (u64, u64),
}

/// The objects this process maps: (device, inode, mapped length) and the mapping while anyone holds it.
type Mapped = Vec<((u64, u64, usize), Weak<SharedMapping>)>;
static MAPPED: Mutex<Mapped> = Mutex::new(Vec::new());

/// `n`, mapped at the address where this process already maps the same object if it does (the fresh
/// mapping `n` came with is then dropped), else registered as that address.
///
/// The lock taken here is held for a table lookup only, but a `fork` while another thread holds it would
/// leave it locked in the child for good: call it only under a lock that `fork` never splits (the
/// binding calls it with Ruby's GVL held, which the forking thread holds too).
pub fn share(n: Named) -> Named {
    let key = (n.file.0, n.file.1, n.mapping.len());
    // A poisoned lock (a panic while holding it) left the table whole: every step below is one Vec call.
    let mut mapped = MAPPED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    mapped.retain(|(_, m)| m.strong_count() > 0);
    if let Some(existing) = mapped.iter().find(|(k, _)| *k == key).and_then(|(_, m)| m.upgrade()) {
        return Named { mapping: existing, ..n };
    }
    mapped.push((key, Arc::downgrade(&n.mapping)));
    n
}

impl Named {
    /// The object's bytes (64-byte aligned).
    pub fn payload(&self) -> *mut u8 {
        // SAFETY: the mapping is at least NAMED_HEADER + payload_len bytes long.
        unsafe { self.mapping.as_ptr().add(NAMED_HEADER) }
    }
}

/// How long an opener waits for a creator to finish before taking the object for abandoned.
const CREATOR_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Open (or create) the object called `name` as one of class `class` with `payload_len` bytes, running
/// `init` on its (zeroed) bytes if this call is the one that creates it.
///
/// Waiting for another process's lock on the object ends with `EINTR` when a signal arrives, if
/// `interruptible`: nothing was created or taken then, and the call can be made again.
///
/// Only the process whose exclusive create (`O_EXCL`) succeeded initialises a new object, under the lock;
/// openers wait for it to be ready. An object left not ready for [`CREATOR_GRACE`] (its creator died) is
/// initialised by the next `OpenOrCreate` opener (an `OpenOnly` one gets `ENOENT`). A file that is not ours
/// (no valid header) is refused, and nothing ever shrinks a file that others may have mapped.
pub fn attach(
    name: &str,
    mode: u32,
    create: Create,
    class: u32,
    payload_len: usize,
    interruptible: bool,
    init: impl FnMut(*mut u8),
) -> Result<Named, NamedError> {
    let total = NAMED_HEADER.checked_add(payload_len).ok_or_else(shm::invalid)?;
    let want = shm::mapped_len(total).ok_or_else(shm::invalid)? as u64;
    if create != Create::OpenOnly {
        match shm::open(name, mode, Create::CreateOnly) {
            Ok(file) => {
                // Not interruptible: only an opener looking at the new file can hold the lock, for microseconds,
                // and giving up here would leave the new object for the grace period.
                file.lock_exclusive(false)?;
                // Stopped for longer than the grace between the create and the lock, an opener may have
                // taken the object over meanwhile: then it is an existing object, not ours to initialise.
                if file.size()? != 0 {
                    if let State::Ready { class: found, len } = state_of(&file, file.size()?)? {
                        return validate(&file, found, len, class, payload_len, want);
                    }
                }
                let made = file
                    .set_mode(mode)
                    .and_then(|()| file.set_size(want))
                    .map_err(NamedError::from)
                    .and_then(|()| initialise(&file, want, class, payload_len, init));
                if made.is_err() {
                    let _ = shm::unlink(name); // leave no half-made object behind (ENOSPC, ...)
                }
                return made;
            }
            Err(e) if e.raw_os_error() == Some(shm::errno::EEXIST) && create == Create::OpenOrCreate => {}
            Err(e) => return Err(e.into()),
        }
    }
    let file = shm::open(name, mode, Create::OpenOnly)?;
    // Something planted under the name (a FIFO, ...) is never locked, sized or mapped. (A symlink was
    // refused by the open; a directory cannot be opened for writing.)
    if let Some(what) = file.not_regular()? {
        return Err(NamedError::NotRegular(what));
    }
    let started = std::time::Instant::now();
    loop {
        file.lock_exclusive(interruptible)?;
        let size = file.size()?;
        match state_of(&file, size)? {
            State::Ready { class: found, len } => return validate(&file, found, len, class, payload_len, want),
            State::Garbage => return Err(NamedError::NotOurs),
            State::Unfinished if started.elapsed() < CREATOR_GRACE => {
                file.unlock(); // let the creator (between its create and its lock) in
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            State::Unfinished => {
                // Abandoned by a creator that died; never shrunk (someone may map it).
                if create == Create::OpenOnly {
                    return Err(std::io::Error::from_raw_os_error(shm::errno::ENOENT).into());
                }
                if size != 0 && size != want {
                    return Err(NamedError::Unfinished { size, need: want });
                }
                file.set_size(want)?;
                return initialise(&file, want, class, payload_len, init);
            }
        }
    }
}

/// A ready object: ours to use if it is of `class` and `payload_len` bytes.
fn validate(
    file: &shm::ShmFile,
    found: u32,
    len: u64,
    class: u32,
    payload_len: usize,
    want: u64,
) -> Result<Named, NamedError> {
    if found != class {
        return Err(NamedError::WrongClass(found));
    }
    if len != payload_len as u64 {
        return Err(NamedError::WrongSize(len));
    }
    let size = file.size()?;
    if size < want {
        return Err(NamedError::Truncated { size, need: want });
    }
    // A sparse file (made by another program) would raise SIGBUS on a full filesystem: reserve it now.
    file.reserve_existing(want)?;
    Ok(Named { mapping: Arc::new(file.map(want as usize)?), created: false, file: file.identity()? })
}

pub(crate) enum State {
    Ready { class: u32, len: u64 },
    Unfinished,
    Garbage,
}

/// What the object holds (the caller holds the lock).
fn state_of(file: &shm::ShmFile, size: u64) -> Result<State, NamedError> {
    if size == 0 {
        return Ok(State::Unfinished);
    }
    if size < NAMED_HEADER as u64 {
        return Ok(State::Garbage);
    }
    let head = file.map(NAMED_HEADER)?;
    // SAFETY: at least NAMED_HEADER bytes of the file are mapped; the header is plain atomics.
    Ok(decode(unsafe { &*head.as_ptr().cast::<NamedHeader>() }))
}

/// What a header says: the one reading of it, for [`attach`] (holding the lock) and for the lock-free
/// reader ([`crate::inspect`], on a copy).
pub(crate) fn decode(hdr: &NamedHeader) -> State {
    let magic = hdr.magic.load(Ordering::Relaxed);
    // Acquire: pairs with the creator's Release store of `ready` (the object is initialised).
    let ready = hdr.ready.load(Ordering::Acquire);
    let class = hdr.class.load(Ordering::Relaxed);
    let len = hdr.payload_len.load(Ordering::Relaxed);
    let zeroed = magic == 0 && ready == 0 && class == 0 && len == 0; // sized, header not written yet
    if magic == MAGIC && ready == 1 {
        State::Ready { class, len }
    } else if (magic == MAGIC && ready == 0) || zeroed {
        State::Unfinished
    } else {
        State::Garbage
    }
}

/// Holding the lock on a file of `want` bytes: zero it, write the header, run `init`, mark it ready.
fn initialise(
    file: &shm::ShmFile,
    want: u64,
    class: u32,
    payload_len: usize,
    mut init: impl FnMut(*mut u8),
) -> Result<Named, NamedError> {
    let id = file.identity()?;
    let mapping = file.map(want as usize)?;
    // SAFETY: `want` bytes are mapped; nobody else uses them until `ready` (we hold the lock).
    unsafe { std::ptr::write_bytes(mapping.as_ptr(), 0, want as usize) };
    // SAFETY: as above; the header is at the start.
    let hdr = unsafe { &*mapping.as_ptr().cast::<NamedHeader>() };
    // Relaxed: published by the Release store of `ready`.
    hdr.magic.store(MAGIC, Ordering::Relaxed);
    hdr.class.store(class, Ordering::Relaxed);
    hdr.payload_len.store(payload_len as u64, Ordering::Relaxed);
    // SAFETY: NAMED_HEADER + payload_len <= want bytes are mapped.
    init(unsafe { mapping.as_ptr().add(NAMED_HEADER) });
    hdr.ready.store(1, Ordering::Release);
    Ok(Named { mapping: Arc::new(mapping), created: true, file: id })
}
