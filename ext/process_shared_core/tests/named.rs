//! Named objects across real processes: shm_open, flock, the creation race, crashes while creating.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{fork_child, fresh_name, hammer, wait_child};
use process_shared_core::named::{attach, NamedError};
use process_shared_core::sys::shm::{self, Create};

const LIMIT: Duration = Duration::from_secs(60);

fn counter(named: &process_shared_core::named::Named) -> &AtomicU64 {
    // SAFETY: the payload is at least 8 bytes, 64-byte aligned, and used only as this counter here.
    unsafe { &*named.payload().cast::<AtomicU64>() }
}

#[test]
fn names_are_validated() {
    assert!(shm::valid_name("myapp.jobs-1_x"));
    assert!(!shm::valid_name(""));
    assert!(!shm::valid_name("a/b"));
    assert!(!shm::valid_name(&"x".repeat(201)));
    assert!(shm::valid_name(&"x".repeat(200)));
    let e = attach("bad name", 0o600, Create::OpenOrCreate, 1, 8, false, |_| {}).unwrap_err();
    assert!(matches!(e, NamedError::Io(ref e) if e.raw_os_error() == Some(libc::EINVAL)), "{e:?}");
}

#[test]
fn create_open_unlink_and_exist() {
    let name = fresh_name("basic");
    assert!(!shm::exists(&name));
    let e = attach(&name, 0o600, Create::OpenOnly, 1, 8, false, |_| {}).unwrap_err();
    assert!(matches!(e, NamedError::Io(ref e) if e.raw_os_error() == Some(libc::ENOENT)), "{e:?}");
    let a = attach(&name, 0o600, Create::CreateOnly, 1, 8, false, |p| {
        // SAFETY: 8 bytes of the payload, aligned.
        unsafe { (*p.cast::<AtomicU64>()).store(41, Ordering::Relaxed) }
    })
    .unwrap();
    assert!(a.created);
    assert!(shm::exists(&name));
    let e = attach(&name, 0o600, Create::CreateOnly, 1, 8, false, |_| {}).unwrap_err();
    assert!(matches!(e, NamedError::Io(ref e) if e.raw_os_error() == Some(libc::EEXIST)), "{e:?}");
    let b = attach(&name, 0o600, Create::OpenOrCreate, 1, 8, false, |_| panic!("initialised twice")).unwrap();
    assert!(!b.created);
    counter(&b).fetch_add(1, Ordering::SeqCst);
    assert_eq!(counter(&a).load(Ordering::SeqCst), 42); // the same memory
    assert!(matches!(attach(&name, 0o600, Create::OpenOnly, 2, 8, false, |_| {}), Err(NamedError::WrongClass(1))));
    assert!(matches!(attach(&name, 0o600, Create::OpenOnly, 1, 16, false, |_| {}), Err(NamedError::WrongSize(8))));
    shm::unlink(&name).unwrap();
    assert!(!shm::exists(&name));
    counter(&a).fetch_add(1, Ordering::SeqCst); // still usable after unlink
    assert_eq!(counter(&b).load(Ordering::SeqCst), 43);
}

/// `share`: every attach of an object this process maps gets the first one's mapping (so per-address
/// records mean the object); the mapping lives while any handle does; a re-created name is another object.
#[test]
fn one_mapping_per_object_in_a_process() {
    use process_shared_core::named::share;
    let name = fresh_name("share");
    let a = share(attach(&name, 0o600, Create::CreateOnly, 1, 8, false, |_| {}).unwrap());
    let b = share(attach(&name, 0o600, Create::OpenOnly, 1, 8, false, |_| {}).unwrap());
    assert_eq!(a.payload(), b.payload());
    assert_eq!(a.file, b.file);
    let unshared = attach(&name, 0o600, Create::OpenOnly, 1, 8, false, |_| {}).unwrap();
    assert_ne!(unshared.payload(), a.payload()); // without `share`: a mapping of its own, same bytes
    drop(unshared);
    let at = a.payload();
    drop(a);
    counter(&b).fetch_add(1, Ordering::SeqCst); // still mapped through b
    let c = share(attach(&name, 0o600, Create::OpenOnly, 1, 8, false, |_| {}).unwrap());
    assert_eq!(c.payload(), at);
    assert_eq!(counter(&c).load(Ordering::SeqCst), 1);
    drop((b, c));
    shm::unlink(&name).unwrap();
    let d = share(attach(&name, 0o600, Create::CreateOnly, 1, 8, false, |_| {}).unwrap());
    assert_eq!(counter(&d).load(Ordering::SeqCst), 0); // a new object, never an old mapping
    shm::unlink(&name).unwrap();
}

/// Four processes attach at once: exactly one initialises, all share the result.
#[test]
fn concurrent_creators_initialise_once() {
    let name = fresh_name("race");
    hammer(4, LIMIT, |_| {
        let n = attach(&name, 0o600, Create::OpenOrCreate, 7, 64, false, |p| {
            // SAFETY: 8 bytes of the payload, aligned.
            unsafe { (*p.cast::<AtomicU64>()).fetch_add(1000, Ordering::SeqCst) };
        })
        .unwrap();
        counter(&n).fetch_add(1, Ordering::SeqCst);
    });
    let n = attach(&name, 0o600, Create::OpenOnly, 7, 64, false, |_| {}).unwrap();
    assert_eq!(counter(&n).load(Ordering::SeqCst), 1004);
    shm::unlink(&name).unwrap();
}

/// A creator that dies half-way (after sizing, before `ready`) leaves an object the next opener
/// initialises from zero.
#[test]
fn a_creator_killed_mid_initialisation_is_redone() {
    let name = fresh_name("crash");
    let pid = fork_child(|| {
        let _ = attach(&name, 0o600, Create::OpenOrCreate, 3, 8, false, |p| {
            // SAFETY: 8 bytes of the payload, aligned.
            unsafe { (*p.cast::<AtomicU64>()).store(666, Ordering::Relaxed) };
            // SAFETY: dying inside the initialiser, as a SIGKILL would.
            unsafe { libc::_exit(0) };
        });
    });
    assert_eq!(wait_child(pid, LIMIT), 0);
    let n = attach(&name, 0o600, Create::OpenOrCreate, 3, 8, false, |p| {
        // SAFETY: 8 bytes of the payload, aligned.
        assert_eq!(unsafe { (*p.cast::<AtomicU64>()).load(Ordering::Relaxed) }, 0, "not zeroed");
    })
    .unwrap();
    assert!(n.created);
    shm::unlink(&name).unwrap();
}
