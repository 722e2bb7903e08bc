//! Reading named objects without taking their locks: what an operator (the `process_shared` command) or an
//! exporter may know about every named object of this machine while the objects are in use.
//!
//! The reader never locks, writes, maps, sizes or unlinks anything: it opens the name read-only
//! ([`shm::open_read_only`]: `O_NOFOLLOW`, `O_NONBLOCK`), checks that it is a regular file, and copies the
//! header and the part of the object it reports with `pread` ([`shm::ShmFile::read_at`]) into a buffer of
//! its own, which it decodes with the crate's own accessors ([`named::decode`] for the header, the
//! primitives' snapshot queries for the rest). So a file that is foreign, empty, short, garbage, cut short
//! meanwhile or being created is reported as unreadable ([`Report::object`] is `Err` with the reason),
//! never a fault; and the values are a snapshot: a moment old, each word as some process last wrote it (a
//! word being changed during the copy may, on some CPUs, be seen half old and half new: what is shown is
//! never acted upon).
//!
//! Owners are judged by the owner registry ([`owner::liveness`]: `Alive`, `Dead`, or `Unknown` when this
//! process cannot tell, e.g. an owner in another mount namespace); the pid is the one the owner saw
//! itself as, for display only.
//!
//! What [`State`] holds, by class (the names are the Ruby API's and the command's JSON schema):
//!
//! | class | fields |
//! |-------|--------|
//! | Mutex | `locked`, `owner_died` (its owning thread ended, not yet taken over), `has_waiters` |
//! | Monitor | `locked`, `owner_died`, `has_waiters`, `count` (the owner's re-entries) |
//! | Semaphore, BinarySemaphore | `value`, `max`, `held` (permits of live processes' tracked waits), `reclaimed` (permits given back from dead holders, not yet taken) |
//! | ConditionVariable | (its waiters only) |
//! | AtomicInteger | `value` |
//! | Counters | `values` (the first [`COUNTERS_SHOWN`]), `count` (how many there are) |
//! | Event | `set`, `has_waiters` |
//! | CountDownLatch | `count`, `has_waiters` |
//! | Barrier | `parties`, `broken` |
//! | ReadWriteLock | `write_locked`, `readers` (read holds of live processes), `dead_writer` (pid, or null), `has_waiters` |
//! | Queue | `length`, `capacity`, `max` (null: none), `closed`, `locked` |
//! | SharedMemory, SharedArray | (nothing: their bytes are the user's) |

use std::io;

use crate::named::{self, Class, NAMED_HEADER};
use crate::sync::{
    QueueHeader, RawAtomicInt, RawBarrier, RawCondvar, RawCounter, RawEvent, RawLatch, RawMonitor, RawMutex, RawRwLock,
    RawSemaphore, QUEUE_FORMAT, RECORD_HEADER,
};
use crate::sys::owner::{self, Liveness};
use crate::sys::shm::{self, FileInfo};

/// The most counter values a report of a Counters object holds (`count` tells how many there are).
pub const COUNTERS_SHOWN: usize = 4096;

/// One value of a [`State`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// true or false.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// Integers.
    Ints(Vec<i64>),
    /// No value (e.g. no dead writer).
    Null,
}

/// An object's state, as (field name, value) pairs in a fixed order per class (see the module table).
pub type State = Vec<(&'static str, Field)>;

/// Who holds a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The pid the holder saw itself as (`None` if it did not record one): for display only.
    pub pid: Option<u32>,
    /// Whether it lives, by the owner registry.
    pub alive: Liveness,
}

/// What a readable named object is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// Its class.
    pub class: Class,
    /// The object's length in bytes (its header's `payload_len`).
    pub size: u64,
    /// The holder of its lock (a Mutex's or Monitor's owner, a ReadWriteLock's writer, a Queue's pusher or
    /// popper of the moment), if it is held; `None` for classes without an owner.
    pub owner: Option<Holder>,
    /// Threads waiting on it, where the object counts them (a Semaphore, ConditionVariable, Queue,
    /// Barrier); 0 for what nobody waits on (AtomicInteger, Counters, SharedMemory, SharedArray); `None`
    /// where it only knows whether someone may wait (`has_waiters` in its state).
    pub waiters: Option<u64>,
    /// Its state.
    pub state: State,
}

/// What the reader found under one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The name (as given to the API: without the prefix).
    pub name: String,
    /// The file's size in bytes, mode bits and owner's uid, if they could be had (even when the file
    /// cannot be opened: another user's object).
    pub file: Option<FileInfo>,
    /// The object, or why it cannot be read (not ours, truncated, being created, not permitted...).
    pub object: Result<Object, String>,
}

/// The object called `name`. `Err` only when there is nothing to report: `ENOENT` (no such name),
/// `EINVAL` (an invalid name); everything else (a foreign file, `EACCES`, a symlink...) is a [`Report`]
/// whose `object` says why it cannot be read.
pub fn inspect(name: &str) -> io::Result<Report> {
    let file = match shm::open_read_only(name) {
        Ok(f) => f,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::EINVAL)) => return Err(e),
        Err(e) => {
            let file = shm::info_of(name).ok();
            return Ok(Report { name: name.to_string(), file, object: Err(open_failure(&e)) });
        }
    };
    let (file_info, object) = match file.info() {
        Ok(i) => (Some(i), read(&file, i.size)),
        Err(e) => (None, Err(format!("cannot stat it: {e}"))),
    };
    Ok(Report { name: name.to_string(), file: file_info, object })
}

/// Every named object of this machine ([`shm::list`]), sorted by name: names removed while listing are
/// left out; a file under the prefix whose name no object can have is reported unreadable.
pub fn list() -> io::Result<Vec<Report>> {
    let mut out = Vec::new();
    for listed in shm::list()? {
        match listed {
            shm::Listed::Name(name) => match inspect(&name) {
                Ok(r) => out.push(r),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {} // unlinked meanwhile
                Err(e) => out.push(Report { name, file: None, object: Err(e.to_string()) }),
            },
            shm::Listed::Invalid(name) => out.push(Report {
                name,
                file: None,
                object: Err(
                    "not a valid name (1..200 characters of [A-Za-z0-9._-]): not a process_shared object".into()
                ),
            }),
        }
    }
    Ok(out)
}

fn open_failure(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ELOOP) => "a symlink (never followed): not a process_shared object".into(),
        Some(libc::EISDIR) => "a directory: not a process_shared object".into(),
        Some(libc::EACCES) => "permission denied (its mode does not let this user read it)".into(),
        _ => format!("cannot open it: {e}"),
    }
}

/// The object in `file` (of `size` bytes at the last look).
fn read(file: &shm::ShmFile, size: u64) -> Result<Object, String> {
    if let Some(kind) = file.not_regular().map_err(|e| format!("cannot stat it: {e}"))? {
        return Err(format!("not a regular file ({kind}): not a process_shared object"));
    }
    if size == 0 {
        return Err("empty: being created, or its creator died before sizing it".into());
    }
    if size < NAMED_HEADER as u64 {
        return Err(format!("{size} bytes, too short for a header: not a process_shared object"));
    }
    let mut head = Snapshot::read(file, 0, NAMED_HEADER)?;
    // SAFETY: the copy is NAMED_HEADER bytes, 64-byte aligned, and the header is atomics (any bits valid).
    let (id, len) = match named::decode(unsafe { head.view::<named::NamedHeader>() }) {
        named::State::Ready { class, len } => (class, len),
        named::State::Unfinished => return Err("unfinished: being created, or its creator died".into()),
        named::State::Garbage => return Err("no valid header: not a process_shared object".into()),
    };
    let class = Class::from_id(id).ok_or_else(|| format!("of unknown class id {id} (made by another version?)"))?;
    // As `named::attach` judges it: the whole pages a mapping of the object takes.
    let need = usize::try_from(len).ok().and_then(|l| l.checked_add(NAMED_HEADER)).and_then(shm::mapped_len);
    let need = need.ok_or_else(|| format!("a {} of {len} bytes: more than can be mapped", class.name()))? as u64;
    if size < need {
        return Err(format!("truncated: {size} bytes, a {} of {len} bytes needs {need}", class.name()));
    }
    if let Some(fixed) = class.fixed_len() {
        if len != fixed as u64 {
            return Err(format!("a {} of {len} bytes, not of this version's {fixed}", class.name()));
        }
    }
    let mut object = Object { class, size: len, owner: None, waiters: None, state: Vec::new() };
    let at = NAMED_HEADER as u64;
    match class {
        Class::Mutex => {
            let mut c = Snapshot::read(file, at, std::mem::size_of::<RawMutex>())?;
            // SAFETY: see `Plain`; the copy has the fixed length of the class.
            mutex_state(unsafe { c.view::<RawMutex>() }, &mut object);
        }
        Class::Monitor => {
            let mut c = Snapshot::read(file, at, std::mem::size_of::<RawMonitor>())?;
            // SAFETY: as above.
            let m = unsafe { c.view::<RawMonitor>() };
            mutex_state(m.mutex(), &mut object);
            object.state.push(("count", Field::Int(m.count().into())));
        }
        Class::Semaphore | Class::BinarySemaphore => {
            let mut c = Snapshot::read(file, at, RawSemaphore::SIZE)?;
            // SAFETY: as above.
            let s = unsafe { c.view::<RawSemaphore>() };
            object.waiters = Some(s.live_waiters().into());
            object.state = vec![
                ("value", Field::Int(s.value().into())),
                ("max", Field::Int(s.max().into())),
                ("held", Field::Int(s.live_held().into())),
                ("reclaimed", Field::Int(s.reclaimed().into())),
            ];
        }
        Class::ConditionVariable => {
            let mut c = Snapshot::read(file, at, RawCondvar::SIZE)?;
            // SAFETY: as above.
            object.waiters = Some(unsafe { c.view::<RawCondvar>() }.live_waiters().into());
        }
        Class::AtomicInteger => {
            let mut c = Snapshot::read(file, at, std::mem::size_of::<RawAtomicInt>())?;
            object.waiters = Some(0);
            // SAFETY: as above.
            object.state.push(("value", Field::Int(unsafe { c.view::<RawAtomicInt>() }.get())));
        }
        Class::Event => {
            let mut c = Snapshot::read(file, at, std::mem::size_of::<RawEvent>())?;
            // SAFETY: as above.
            let e = unsafe { c.view::<RawEvent>() };
            object.state = vec![("set", Field::Bool(e.is_set())), ("has_waiters", Field::Bool(e.has_waiters()))];
        }
        Class::CountDownLatch => {
            let mut c = Snapshot::read(file, at, std::mem::size_of::<RawLatch>())?;
            // SAFETY: as above.
            let l = unsafe { c.view::<RawLatch>() };
            object.state = vec![("count", Field::Int(l.count().into())), ("has_waiters", Field::Bool(l.has_waiters()))];
        }
        Class::Barrier => {
            let mut c = Snapshot::read(file, at, std::mem::size_of::<RawBarrier>())?;
            // SAFETY: as above.
            let b = unsafe { c.view::<RawBarrier>() };
            object.waiters = Some(b.waiting().into());
            object.state = vec![("parties", Field::Int(b.parties().into())), ("broken", Field::Bool(b.is_broken()))];
        }
        Class::ReadWriteLock => {
            let mut c = Snapshot::read(file, at, RawRwLock::SIZE)?;
            // SAFETY: as above.
            let l = unsafe { c.view::<RawRwLock>() };
            object.owner = holder(l.write_mutex());
            object.state = vec![
                ("write_locked", Field::Bool(l.is_write_locked())),
                ("readers", Field::Int(l.live_readers().into())),
                ("dead_writer", l.dead_writer().map_or(Field::Null, |p| Field::Int(p.into()))),
                ("has_waiters", Field::Bool(l.has_waiters())),
            ];
        }
        Class::Counters => {
            let count = len / RawCounter::SIZE as u64;
            let shown = (count as usize).min(COUNTERS_SHOWN);
            let mut c = Snapshot::read(file, at, shown * RawCounter::SIZE)?;
            // SAFETY: `shown` cells of 64 bytes were copied (64-byte aligned); see `Plain`.
            let cells = unsafe { c.view_slice::<RawCounter>(shown) };
            object.waiters = Some(0);
            object.state = vec![
                ("values", Field::Ints(cells.iter().map(|c| c.get()).collect())),
                ("count", Field::Int(count as i64)),
            ];
        }
        Class::Queue => {
            if len <= crate::sync::QUEUE_HEADER as u64 {
                return Err(format!("a Queue of {len} bytes: too short for its header"));
            }
            let mut c = Snapshot::read(file, at, std::mem::size_of::<QueueHeader>())?;
            // SAFETY: as above (the header is the start of the object).
            let q = unsafe { c.view::<QueueHeader>() };
            if q.format() != QUEUE_FORMAT {
                return Err(format!("a Queue of format {}, not this version's {QUEUE_FORMAT}", q.format()));
            }
            object.owner = holder(q.mutex());
            object.waiters = Some(q.live_waiters().into());
            object.state = vec![
                ("length", Field::Int(q.len() as i64)),
                ("capacity", Field::Int(q.ring_size().saturating_sub(RECORD_HEADER as u64) as i64)),
                ("max", if q.max() == 0 { Field::Null } else { Field::Int(q.max() as i64) }),
                ("closed", Field::Bool(q.is_closed())),
                ("locked", Field::Bool(q.mutex().is_locked())),
            ];
        }
        Class::SharedMemory | Class::SharedArray => object.waiters = Some(0),
    }
    Ok(object)
}

fn mutex_state(m: &RawMutex, object: &mut Object) {
    object.owner = holder(m);
    object.state = vec![
        ("locked", Field::Bool(m.is_locked())),
        ("owner_died", Field::Bool(m.died_owner().is_some())),
        ("has_waiters", Field::Bool(m.has_waiters())),
    ];
}

/// The holder of `m`, if it is held.
fn holder(m: &RawMutex) -> Option<Holder> {
    let id = m.owner_id()?;
    Some(Holder { pid: m.owner_pid().filter(|&p| p != 0), alive: owner::liveness(id) })
}

/// A 64-byte-aligned private copy of some of a file's bytes (the primitives' alignment is at most 64).
struct Snapshot {
    lines: Vec<Line>,
    len: usize,
}

#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([u8; 64]);

/// Types that are valid for every bit pattern: `#[repr(C)]` structs of atomic integers and arrays of them.
///
/// # Safety
/// Implement only for such types (no references, enums, `bool`s or padding-sensitive invariants).
unsafe trait Plain {}
// SAFETY: each is `#[repr(C)]` and made of atomic integers only (directly, or through RawMutex,
// RawCondvar, HolderSlot and PaddedSlot, which are too): any bits are a valid value.
unsafe impl Plain for named::NamedHeader {}
// SAFETY: as above.
unsafe impl Plain for RawMutex {}
// SAFETY: as above.
unsafe impl Plain for RawMonitor {}
// SAFETY: as above.
unsafe impl Plain for RawSemaphore {}
// SAFETY: as above.
unsafe impl Plain for RawCondvar {}
// SAFETY: as above.
unsafe impl Plain for RawAtomicInt {}
// SAFETY: as above.
unsafe impl Plain for RawCounter {}
// SAFETY: as above.
unsafe impl Plain for RawEvent {}
// SAFETY: as above.
unsafe impl Plain for RawLatch {}
// SAFETY: as above.
unsafe impl Plain for RawBarrier {}
// SAFETY: as above.
unsafe impl Plain for RawRwLock {}
// SAFETY: as above.
unsafe impl Plain for QueueHeader {}

impl Snapshot {
    /// `len` bytes of `file` from `offset`; an error message if fewer are there (cut short meanwhile).
    fn read(file: &shm::ShmFile, offset: u64, len: usize) -> Result<Snapshot, String> {
        let mut c = Snapshot { lines: vec![Line([0; 64]); len.div_ceil(64).max(1)], len };
        // SAFETY: the lines are `lines.len() * 64 >= len` contiguous initialised bytes that we own.
        let bytes = unsafe { std::slice::from_raw_parts_mut(c.lines.as_mut_ptr().cast::<u8>(), len) };
        match file.read_at(offset, bytes) {
            Ok(n) if n == len => Ok(c),
            Ok(n) => Err(format!("cut short while being read ({n} of {len} bytes at {offset})")),
            Err(e) => Err(format!("cannot read it: {e}")),
        }
    }

    /// The copy as a `T`.
    ///
    /// # Safety
    /// At least `size_of::<T>()` bytes were copied.
    unsafe fn view<T: Plain>(&mut self) -> &T {
        // SAFETY: per the contract: `size_of::<T>()` bytes, aligned to 64 (at least `align_of::<T>()`, at most 64
        // for every `Plain` type), valid for any bits (`Plain`), owned by us and borrowed mutably, so nothing else
        // aliases them while the reference lives.
        unsafe { &*self.lines.as_mut_ptr().cast::<T>() }
    }

    /// The copy as `n` `T`s.
    ///
    /// # Safety
    /// At least `n * size_of::<T>()` bytes were copied.
    unsafe fn view_slice<T: Plain>(&mut self, n: usize) -> &[T] {
        debug_assert!(n * std::mem::size_of::<T>() <= self.len && std::mem::align_of::<T>() <= 64);
        // SAFETY: see `view`.
        unsafe { std::slice::from_raw_parts(self.lines.as_mut_ptr().cast::<T>(), n) }
    }
}
