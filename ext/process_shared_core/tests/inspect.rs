//! The lock-free reader of named objects ([`process_shared_core::inspect`]) against real processes and real
//! files in /dev/shm: owners alive and SIGKILLed, values, and every kind of file it must not trust.
//! (Linux: macOS has no directory of shm objects, and its shm objects cannot be read with `pread`.)

#![cfg(not(target_os = "macos"))]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{fork_child, fresh_name, me, reap, wait_child};
use process_shared_core::inspect::{self, Field, Holder};
use process_shared_core::named::{attach, Class};
use process_shared_core::sync::{RawCounter, RawMutex, RawSemaphore};
use process_shared_core::sys::owner::Liveness;
use process_shared_core::sys::shm::{self, Create};

const LIMIT: Duration = Duration::from_secs(60);

fn path(name: &str) -> String {
    format!("{}{}{name}", shm::SHM_DIR, shm::PREFIX)
}

fn state(r: &inspect::Report) -> &[(&'static str, Field)] {
    &r.object.as_ref().unwrap_or_else(|e| panic!("{}: unreadable: {e}", r.name)).state
}

fn field<'a>(r: &'a inspect::Report, k: &str) -> &'a Field {
    &state(r).iter().find(|(n, _)| *n == k).unwrap_or_else(|| panic!("no field {k}")).1
}

/// A named mutex held by a child that waits on a socket; the reader sees it held by a live owner with the
/// child's pid, then, once the child is SIGKILLed, by a dead one. The reader took no lock meanwhile: the
/// parent (another process) can still take the lock over only from the dead child.
#[test]
fn a_held_mutex_shows_its_owner_alive_then_dead() {
    let name = fresh_name("inspect-mutex");
    let len = std::mem::size_of::<RawMutex>();
    let m = attach(&name, 0o640, Create::CreateOnly, Class::Mutex.id(), len, false, |_| {}).unwrap();
    // SAFETY: the payload is a zeroed RawMutex, 64-byte aligned, mapped while `m` lives.
    let mutex = unsafe { &*m.payload().cast::<RawMutex>() };
    let (mut parent, mut child) = UnixStream::pair().unwrap();
    let pid = fork_child(|| {
        assert!(mutex.try_lock(me()));
        child.write_all(b"!").unwrap();
        let mut b = [0u8; 1];
        let _ = child.read(&mut b); // until killed
    });
    let mut b = [0u8; 1];
    parent.read_exact(&mut b).unwrap();

    let r = inspect::inspect(&name).unwrap();
    let o = r.object.as_ref().unwrap();
    assert_eq!(o.class, Class::Mutex);
    assert_eq!(o.size, len as u64);
    assert_eq!(o.owner, Some(Holder { pid: Some(pid as u32), alive: Liveness::Alive }));
    assert_eq!(field(&r, "locked"), &Field::Bool(true));
    assert_eq!(r.file.unwrap().mode, 0o640);
    assert!(inspect::list().unwrap().iter().any(|l| l.name == name && l.object == r.object));

    // SAFETY: killing our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    reap(pid);
    let r = inspect::inspect(&name).unwrap();
    assert_eq!(r.object.as_ref().unwrap().owner, Some(Holder { pid: Some(pid as u32), alive: Liveness::Dead }));
    assert!(mutex.try_acquire(me()).is_some(), "the reader left the dead owner's lock to be taken over");
    shm::unlink(&name).unwrap();
    assert_eq!(inspect::inspect(&name).unwrap_err().raw_os_error(), Some(libc::ENOENT));
}

/// Values written by another process, a semaphore's permits held by a live process, and a name that is
/// unlinked: gone from the list.
#[test]
fn values_and_holds_of_other_processes() {
    let counters = fresh_name("inspect-counters");
    let c = attach(&counters, 0o600, Create::CreateOnly, Class::Counters.id(), 3 * RawCounter::SIZE, false, |_| {});
    let c = c.unwrap();
    // SAFETY: three zeroed 64-byte counters, mapped while `c` lives.
    let cells = unsafe { std::slice::from_raw_parts(c.payload().cast::<RawCounter>(), 3) };
    let sem = fresh_name("inspect-semaphore");
    let s = attach(&sem, 0o600, Create::CreateOnly, Class::Semaphore.id(), RawSemaphore::SIZE, false, |p| {
        // SAFETY: the zeroed payload of a new semaphore, ours until it is ready.
        unsafe { &*p.cast::<RawSemaphore>() }.init(3, 0)
    })
    .unwrap();
    // SAFETY: as above, mapped while `s` lives.
    let semaphore = unsafe { &*s.payload().cast::<RawSemaphore>() };
    let (mut parent, mut child) = UnixStream::pair().unwrap();
    let pid = fork_child(|| {
        cells[1].add(41);
        cells[2].sub(2);
        let slot = semaphore.claim_slot(me()).unwrap();
        assert!(semaphore.try_wait(Some(slot)));
        child.write_all(b"!").unwrap();
        let mut b = [0u8; 1];
        let _ = child.read(&mut b); // until told to go
        semaphore.post(Some(slot)).unwrap();
    });
    let mut b = [0u8; 1];
    parent.read_exact(&mut b).unwrap();
    let r = inspect::inspect(&counters).unwrap();
    assert_eq!(field(&r, "values"), &Field::Ints(vec![0, 41, -2]));
    assert_eq!(field(&r, "count"), &Field::Int(3));
    let r = inspect::inspect(&sem).unwrap();
    assert_eq!(field(&r, "value"), &Field::Int(2));
    assert_eq!(field(&r, "held"), &Field::Int(1));
    assert_eq!(r.object.as_ref().unwrap().waiters, Some(0));
    parent.write_all(b"!").unwrap();
    assert_eq!(wait_child(pid, LIMIT), 0);
    let r = inspect::inspect(&sem).unwrap();
    assert_eq!((field(&r, "value"), field(&r, "held")), (&Field::Int(3), &Field::Int(0)));
    shm::unlink(&counters).unwrap();
    assert!(!inspect::list().unwrap().iter().any(|l| l.name == counters));
    shm::unlink(&sem).unwrap();
}

/// Files under the prefix that are not (or not yet, or no longer) objects of ours: reported unreadable
/// with the reason, never trusted; files without the prefix are never listed.
#[test]
fn foreign_files_are_reported_not_trusted() {
    let write = |name: &str, bytes: &[u8]| std::fs::write(path(name), bytes).unwrap();
    let reason = |name: &str| inspect::inspect(name).unwrap().object.unwrap_err();

    let empty = fresh_name("inspect-empty");
    write(&empty, b"");
    assert!(reason(&empty).contains("empty"), "{}", reason(&empty));
    let short = fresh_name("inspect-short");
    write(&short, b"abc");
    assert!(reason(&short).contains("too short"), "{}", reason(&short));
    let garbage = fresh_name("inspect-garbage");
    write(&garbage, &[0xA5; 8192]);
    assert!(reason(&garbage).contains("no valid header"), "{}", reason(&garbage));
    let zeroed = fresh_name("inspect-zeroed");
    write(&zeroed, &[0; 4096]);
    assert!(reason(&zeroed).contains("unfinished"), "{}", reason(&zeroed));

    // A valid object cut short (by someone else: this library never shrinks a file).
    let cut = fresh_name("inspect-cut");
    drop(attach(&cut, 0o600, Create::CreateOnly, Class::Counters.id(), 64 * 1024, false, |_| {}).unwrap());
    std::fs::OpenOptions::new().write(true).open(path(&cut)).unwrap().set_len(4096).unwrap();
    assert!(reason(&cut).contains("truncated"), "{}", reason(&cut));
    // A header of a class this version does not know, and one of a known class with another layout.
    let unknown = fresh_name("inspect-unknown");
    drop(attach(&unknown, 0o600, Create::CreateOnly, 999, 8, false, |_| {}).unwrap());
    assert!(reason(&unknown).contains("unknown class id 999"), "{}", reason(&unknown));
    let layout = fresh_name("inspect-layout");
    drop(attach(&layout, 0o600, Create::CreateOnly, Class::Mutex.id(), 8, false, |_| {}).unwrap());
    assert!(reason(&layout).contains("not of this version"), "{}", reason(&layout));

    let fifo = fresh_name("inspect-fifo");
    let c = std::ffi::CString::new(path(&fifo)).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(reason(&fifo).contains("FIFO"), "{}", reason(&fifo));
    let link = fresh_name("inspect-link");
    std::os::unix::fs::symlink(path(&garbage), path(&link)).unwrap();
    assert!(reason(&link).contains("symlink"), "{}", reason(&link));
    let dir = fresh_name("inspect-dir");
    std::fs::create_dir(path(&dir)).unwrap();
    assert!(reason(&dir).contains("directory"), "{}", reason(&dir));
    let invalid = format!("{}{}bad name {}", shm::SHM_DIR, shm::PREFIX, std::process::id());
    std::fs::write(&invalid, b"").unwrap();
    let foreign = format!("{}/not-ours-{}", shm::SHM_DIR, std::process::id());
    std::fs::write(&foreign, b"").unwrap();

    let listed = inspect::list().unwrap();
    for name in [&empty, &short, &garbage, &zeroed, &cut, &unknown, &layout, &fifo, &link, &dir] {
        let l = listed.iter().find(|l| &l.name == name).unwrap_or_else(|| panic!("{name} not listed"));
        assert!(l.object.is_err(), "{name}: {:?}", l.object);
    }
    let bad = format!("bad name {}", std::process::id());
    assert!(listed.iter().find(|l| l.name == bad).unwrap().object.as_ref().unwrap_err().contains("not a valid name"));
    assert!(!listed.iter().any(|l| l.name.contains("not-ours") || l.name.contains("owners")));
    // Nothing was changed: the files are as they were.
    assert_eq!(std::fs::read(path(&garbage)).unwrap(), vec![0xA5; 8192]);
    assert_eq!(std::fs::metadata(path(&empty)).unwrap().len(), 0);

    std::fs::remove_dir(path(&dir)).unwrap();
    std::fs::remove_file(&invalid).unwrap();
    std::fs::remove_file(&foreign).unwrap();
    for name in [&empty, &short, &garbage, &zeroed, &cut, &unknown, &layout, &fifo, &link] {
        shm::unlink(name).unwrap();
    }
}

/// A file cut short and grown again in a loop by another process while it is read: every report is
/// readable or unreadable, never a fault (the reader copies with pread; it maps nothing).
#[test]
fn a_file_resized_while_read_never_faults() {
    let name = fresh_name("inspect-resized");
    drop(attach(&name, 0o600, Create::CreateOnly, Class::Counters.id(), 64 * 1024, false, |_| {}).unwrap());
    let file = std::fs::OpenOptions::new().write(true).open(path(&name)).unwrap();
    let (mut parent, mut child) = UnixStream::pair().unwrap();
    let pid = fork_child(|| {
        child.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        child.write_all(b"!").unwrap();
        while child.read(&mut b).is_err() {
            file.set_len(100).unwrap();
            file.set_len(4096 + 64 * 1024).unwrap();
        }
    });
    let mut b = [0u8; 1];
    parent.read_exact(&mut b).unwrap();
    let (mut readable, mut unreadable) = (0, 0);
    for _ in 0..2000 {
        match inspect::inspect(&name).unwrap().object {
            Ok(o) => {
                assert_eq!(o.class, Class::Counters);
                readable += 1;
            }
            Err(_) => unreadable += 1,
        }
    }
    parent.write_all(b"!").unwrap();
    assert_eq!(wait_child(pid, LIMIT), 0);
    assert_eq!(readable + unreadable, 2000);
    shm::unlink(&name).unwrap();
}

/// Objects being created and removed by another process while they are listed: each is seen whole, or as
/// not yet made (empty, unfinished), or not at all; never a fault, never a wrong class.
#[test]
fn objects_created_and_removed_while_listed() {
    let tag = fresh_name("churn");
    let made = common::SharedBox::<std::sync::atomic::AtomicU64>::new();
    let (mut parent, mut child) = UnixStream::pair().unwrap();
    let pid = fork_child(|| {
        child.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        let mut i = 0u64;
        let mut previous: Option<String> = None;
        while child.read(&mut b).is_err() {
            // Each object lives until the next one is made: one is always there, whole.
            let name = format!("{tag}.{}", i % 8);
            let len = std::mem::size_of::<RawMutex>();
            drop(attach(&name, 0o600, Create::OpenOrCreate, Class::Mutex.id(), len, false, |_| {}).unwrap());
            if let Some(p) = previous.replace(name) {
                shm::unlink(&p).unwrap();
            }
            i += 1;
            made.store(i, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let mut seen = [0usize; 2];
    let start = std::time::Instant::now();
    // Until the child made 300 objects (a count it bumps: the parent waits for progress, not for time) and
    // one was seen whole (on a loaded host the child may make 300 before the parent lists once).
    while (made.load(std::sync::atomic::Ordering::Relaxed) < 300 || seen[0] == 0) && start.elapsed() < LIMIT {
        for r in inspect::list().unwrap().into_iter().filter(|r| r.name.starts_with(&tag)) {
            match r.object {
                Ok(o) => {
                    assert_eq!((o.class, o.owner), (Class::Mutex, None));
                    seen[0] += 1;
                }
                Err(e) => {
                    assert!(e.contains("empty") || e.contains("unfinished"), "{}: {e}", r.name);
                    seen[1] += 1;
                }
            }
        }
    }
    parent.write_all(b"!").unwrap();
    assert_eq!(wait_child(pid, LIMIT), 0);
    assert!(seen[0] > 0, "no object of the child's was ever seen whole");
    for i in 0..8 {
        let _ = shm::unlink(&format!("{tag}.{i}")); // the last one
    }
    eprintln!("objects seen whole: {}, not yet made: {}", seen[0], seen[1]);
}

/// Another user's object that this user may not read: reported with its mode and owner, as unreadable.
#[test]
fn another_users_object_is_reported_with_its_mode() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root (to be another user in a child)");
        return;
    }
    let name = fresh_name("private");
    let len = std::mem::size_of::<RawMutex>();
    drop(attach(&name, 0o600, Create::CreateOnly, Class::Mutex.id(), len, false, |_| {}).unwrap());
    let pid = fork_child(|| {
        // SAFETY: dropping privileges in our own single-threaded child.
        assert_eq!(unsafe { libc::setgid(65534) + libc::setuid(65534) }, 0);
        let r = inspect::inspect(&name).unwrap();
        let info = r.file.expect("lstat of the file works without permission to open it");
        assert_eq!((info.mode, info.uid), (0o600, 0));
        assert!(r.object.unwrap_err().contains("permission denied"));
    });
    assert_eq!(wait_child(pid, LIMIT), 0);
    shm::unlink(&name).unwrap();
}
