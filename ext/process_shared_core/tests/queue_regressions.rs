//! Regression tests for sync/queue.rs from an independent review (each failed on the reviewed code).

mod common;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{fork_child, me, wait_child, TestQueue};
#[cfg(target_os = "linux")]
use process_shared_core::sync::RawCondvar;
use process_shared_core::sync::{PopOutcome, PushOutcome, QueueRef, Wait, QUEUE_HEADER};
use process_shared_core::sys::Deadline;

// Offsets in QueueHeader (#[repr(C)]; checked by the_header_layout in sync/queue.rs): mutex 0..24, format
// 24, not_empty 64..320, not_full 320..576, head 576, tail 584, used 592, pushes 600, pops 608, pending 616,
// log 624..664, ring_size 664, max 672, closed 680.
#[cfg(target_os = "linux")]
const NOT_EMPTY: usize = 64;
const HEAD: usize = 576;
const USED: usize = 592;
const PUSHES: usize = 600;
const POPS: usize = 608;
const CLOSED: usize = 680;

/// The condition variable at `off` in the header of `t`.
#[cfg(target_os = "linux")]
fn cv_at(t: &TestQueue, off: usize) -> &RawCondvar {
    // SAFETY: `off` is the offset of a condition variable in the header, inside the mapping.
    unsafe { &*t.map.as_ptr().add(off).cast::<RawCondvar>() }
}

fn soon(ms: u64) -> Option<Deadline> {
    Some(Deadline::after(Duration::from_millis(ms)))
}

/// Giving an element back may take the length one over `max` (documented: losing it would be worse), never
/// more.
#[test]
fn unshift_exceeds_max_by_at_most_the_element_it_gives_back() {
    let t = TestQueue::new(256, 2);
    let (q, me) = (t.q(), me());
    q.push_step(me, b"a", false, None, false);
    q.push_step(me, b"b", false, None, false);
    let Wait::Done(PopOutcome::Item(a)) = q.pop_step(me, false, None, false) else { panic!() };
    q.push_step(me, b"c", false, None, false); // full again (2 of max 2)
    assert!(q.unshift(me, &a)); // the binding's undo after an interrupt
    assert_eq!(q.len(), 3);
    assert_eq!(q.push_step(me, b"d", false, soon(10), false), Wait::TimedOut); // still full
    assert_eq!(q.pop_step(me, true, None, false), Wait::Done(PopOutcome::Item(b"a".to_vec())));
}

/// ABA in retract: a pop + pop + unshift of another record restores `pops < seq`; retract then removes
/// bytes that are not its record, leaving a count of 0 with `used` != 0 and a torn record next.
#[test]
fn retract_after_foreign_unshift_never_tears() {
    let t = TestQueue::new(256, 0);
    let (q, me) = (t.q(), me());
    let w = vec![b'W'; 20];
    q.push_step(me, &w, false, None, false);
    let Wait::Done(PushOutcome::Pushed(px)) = q.push_step(me, b"XXXXX", false, None, false) else { panic!() };
    // Interrupt lands on the pusher of X; before its undo runs (it needs the GVL back):
    let Wait::Done(PopOutcome::Item(w1)) = q.pop_step(me, true, None, false) else { panic!() }; // C1 pops W
    let Wait::Done(PopOutcome::Item(x1)) = q.pop_step(me, true, None, false) else { panic!() }; // C2 pops X
    assert_eq!(x1, b"XXXXX"); // X delivered
    assert!(q.unshift(me, &w1)); // C1 interrupted / Marshal.load failed: W put back
    let retracted = q.retract(me, px); // the pusher's undo
    q.push_step(me, b"Y", false, None, false);
    let mut got = Vec::new();
    while let Wait::Done(PopOutcome::Item(v)) = q.pop_step(me, true, None, false) {
        got.push(v);
    }
    assert_eq!(got, vec![w.clone(), b"Y".to_vec()], "retract returned {retracted}; queue now yields {got:?}");
}

/// Poll (bounded) until child `pid` sleeps in a futex syscall: blocked in the kernel, holding no lock of
/// ours (the queue's mutex is only ever held between syscalls). Linux: reads /proc.
#[cfg(target_os = "linux")]
fn until_asleep_in_futex(pid: libc::pid_t) {
    let start = Instant::now();
    loop {
        let call = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = state.rsplit(')').next().unwrap_or("").split_whitespace().next().unwrap_or("").to_string();
        if state == "S" && call.split_whitespace().next() == Some(&libc::SYS_futex.to_string()) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "child {pid} never slept in a futex: {state} {call}");
        std::thread::yield_now();
    }
}

/// Poll (bounded) until child `pid` is stopped. Linux: reads /proc.
#[cfg(target_os = "linux")]
fn until_stopped(pid: libc::pid_t) {
    let start = Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.rsplit(')').next().unwrap_or("").split_whitespace().next() == Some("T") {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "child {pid} never stopped: {stat}");
        std::thread::yield_now();
    }
}

/// A popper killed while holding a consumed wake-up (between its wait returning and relocking) loses it: the
/// other popper, which missed the signal, must still get the queued record, because the queue's waits are
/// bounded and look at the queue every slice (a bare condition wait, which the "killed" popper stands for,
/// sleeps until signalled, like any condition variable's).
///
/// Which of two sleepers a signal wakes is the kernel's choice: so the test decides it. The popper is
/// stopped (SIGSTOP takes it out of the futex) while the push signals, so that the other waiter is the only
/// one that can take the wake-up; it takes it and leaves ("SIGKILL"), and then the popper continues. (The
/// earlier version relied on the kernel waking the longest sleeper, which a sliced wait does not stay; its
/// stand-in for the killed popper then never got a wake-up and hung the test in `waitpid`.)
#[test]
#[cfg(target_os = "linux")] // watches the children through /proc
fn a_popper_killed_after_its_wakeup_does_not_strand_another() {
    let t = TestQueue::new(256, 0);
    let cv = cv_at(&t, NOT_EMPTY);
    let d = fork_child(|| {
        // Exactly wait_on up to the instant after the wait returned Done; then "SIGKILL".
        let ticket = cv.begin_wait();
        let out = cv.wait_slow(ticket, soon(10_000), false);
        assert_eq!(out, Wait::Done(()), "the stand-in for the killed popper did not get the wake-up");
    });
    until_asleep_in_futex(d);
    let l = fork_child(|| {
        let out = t.q().pop_step(me(), false, soon(10_000), false);
        assert!(matches!(out, Wait::Done(PopOutcome::Item(_))), "{out:?}");
    });
    let start = Instant::now();
    while cv.waiters() < 2 {
        assert!(start.elapsed() < Duration::from_secs(10), "the popper never waited");
        std::thread::yield_now();
    }
    until_asleep_in_futex(l);
    // SAFETY: stopping and continuing our own child.
    assert_eq!(unsafe { libc::kill(l, libc::SIGSTOP) }, 0);
    until_stopped(l);
    t.q().push_step(me(), b"job", false, None, false);
    assert_eq!(wait_child(d, Duration::from_secs(10)), 0, "the other waiter did not take the wake-up");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(l, libc::SIGCONT) }, 0);
    let resumed = Instant::now();
    assert_eq!(wait_child(l, Duration::from_secs(15)), 0, "popper stranded; queue len {}", t.q().len());
    assert!(resumed.elapsed() < Duration::from_secs(2), "the popper got the record only after {:?}", resumed.elapsed());
}

/// A closer killed between `closed.store(1)` and the broadcasts: waiting poppers sleep on (no slicing).
#[test]
fn a_closer_killed_before_its_broadcast_does_not_strand_poppers() {
    let t = TestQueue::new(256, 0);
    let l = fork_child(|| {
        let out = t.q().pop_step(me(), false, soon(3000), false);
        assert_eq!(out, Wait::Done(PopOutcome::ClosedEmpty));
    });
    std::thread::sleep(Duration::from_millis(100));
    // What `close` did before it was killed:
    // SAFETY: `closed` is an aligned AtomicU32 at this offset of the live header mapping.
    unsafe { &*t.map.as_ptr().add(CLOSED).cast::<AtomicU32>() }.store(1, Ordering::Release);
    assert_eq!(wait_child(l, Duration::from_secs(10)), 0, "popper not told the queue is closed");
}

/// A pop signals not_full once; one woken pusher pushes; the second pusher, for which there is room now,
/// is never woken (pushes do not chain the wake-up).
#[test]
fn a_pop_that_frees_room_for_two_pushers_wakes_both() {
    let t = TestQueue::new(64, 0);
    let q = t.q();
    q.push_step(me(), &[7u8; 56], false, None, false); // 60 of 64 bytes
    let pusher = || {
        let start = Instant::now();
        let out = t.q().push_step(me(), b"tiny", false, soon(3000), false); // record of 8 bytes
        assert!(matches!(out, Wait::Done(PushOutcome::Pushed(_))), "{out:?} after {:?}", start.elapsed());
    };
    let p1 = fork_child(pusher);
    std::thread::sleep(Duration::from_millis(100));
    let p2 = fork_child(pusher);
    std::thread::sleep(Duration::from_millis(100));
    assert!(matches!(q.pop_step(me(), true, None, false), Wait::Done(PopOutcome::Item(_)))); // 0 of 64 used
    let r1 = wait_child(p1, Duration::from_secs(10));
    let r2 = wait_child(p2, Duration::from_secs(10));
    assert_eq!((r1, r2), (0, 0), "a pusher timed out with room free; len {}", q.len());
}

/// Garbage `used` + a length prefix larger than the ring: pop reads past the mapping.
#[test]
fn pop_with_garbage_header_stays_inside_the_mapping() {
    let page = 4096;
    // Two pages, the second PROT_NONE: the queue mapping ends exactly at the guard page.
    // SAFETY: a fresh anonymous mapping; the second page is then made inaccessible (a guard page).
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    } as *mut u8;
    assert!(!base.is_null());
    // SAFETY: the second page of the mapping just made.
    unsafe { libc::mprotect(base.add(page).cast(), page, libc::PROT_NONE) };
    let pid = fork_child(|| {
        // SAFETY: one zeroed page-aligned page used only as a queue.
        let q = unsafe { QueueRef::new(base, page) };
        q.init(0);
        // SAFETY: aligned u64 fields of the header, inside the first page.
        let f = |off: usize| unsafe { &*base.add(off).cast::<AtomicU64>() };
        f(HEAD).store(0, Ordering::Relaxed);
        f(USED).store(1 << 40, Ordering::Relaxed); // garbage
        f(PUSHES).store(1, Ordering::Relaxed);
        f(POPS).store(0, Ordering::Relaxed);
        // SAFETY: the first ring bytes, inside the first page.
        unsafe { base.add(QUEUE_HEADER).cast::<[u8; 4]>().write(100_000u32.to_le_bytes()) }; // garbage prefix
        let _ = q.pop_step(me(), true, None, false);
    });
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid status pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status),
        "pop on a garbage header crashed: signal {}",
        if libc::WIFSIGNALED(status) { libc::WTERMSIG(status) } else { 0 }
    );
}
