//! Issue 10, point 6: a process SIGKILLed while it waits on a condition variable (or in a queue's pop or
//! push) stops being counted among the waiters, and the object keeps working. Real processes, real
//! SIGKILLs; the parent polls (bounded) for what it waits for.

mod common;

use std::time::{Duration, Instant};

use common::{fork_child, me, reap, wait_child, SharedBox, TestQueue};
use process_shared_core::sync::{PopOutcome, PushOutcome, RawCondvar, Wait, CONDVAR_SLOTS};
use process_shared_core::sys::Deadline;

fn soon(ms: u64) -> Option<Deadline> {
    Some(Deadline::after(Duration::from_millis(ms)))
}

/// Poll until `f` returns `want` or `limit` passes; the last value.
fn poll_for(want: u32, limit: Duration, f: impl Fn() -> u32) -> u32 {
    let start = Instant::now();
    loop {
        let v = f();
        if v == want || start.elapsed() > limit {
            return v;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// SIGKILL our child `pid` and reap it.
fn kill(pid: libc::pid_t) {
    // SAFETY: killing our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    reap(pid);
}

/// Fork a child that waits on `c` until signalled (or a long deadline); returns once `c` counts it.
fn waiting_child(c: &RawCondvar, before: u32) -> libc::pid_t {
    let pid = fork_child(|| {
        let ticket = c.begin_wait();
        assert_eq!(c.wait_slow(ticket, soon(30_000), false), Wait::Done(()));
    });
    assert_eq!(poll_for(before + 1, Duration::from_secs(10), || c.waiters()), before + 1, "the child never waited");
    pid
}

#[test]
fn a_condvar_waiter_killed_while_waiting_is_no_longer_counted_and_the_condvar_works() {
    let c: SharedBox<RawCondvar> = SharedBox::new();
    let victim = waiting_child(&c, 0);
    kill(victim);
    assert_eq!(poll_for(0, Duration::from_secs(2), || c.waiters()), 0, "a killed waiter is still counted");
    // Its slot is taken over by the next process; a signal reaches the live waiter.
    let live = waiting_child(&c, 0);
    c.signal();
    assert_eq!(wait_child(live, Duration::from_secs(10)), 0, "the live waiter was not woken");
    assert_eq!(c.waiters(), 0);
}

#[test]
fn only_the_killed_processs_waiters_come_off_the_count() {
    let c: SharedBox<RawCondvar> = SharedBox::new();
    // Two threads of one live process.
    let live = fork_child(|| {
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let ticket = c.begin_wait();
                    assert_eq!(c.wait_slow(ticket, soon(30_000), false), Wait::Done(()));
                });
            }
        });
    });
    assert_eq!(poll_for(2, Duration::from_secs(10), || c.waiters()), 2);
    let victim = waiting_child(&c, 2);
    kill(victim);
    assert_eq!(poll_for(2, Duration::from_secs(2), || c.waiters()), 2);
    assert!((0..100).all(|_| c.waiters() == 2), "the killed waiter was taken off twice");
    c.broadcast();
    assert_eq!(wait_child(live, Duration::from_secs(10)), 0);
    assert_eq!(c.waiters(), 0);
}

/// Waiters of more processes than the table has slots wait untracked: a kill leaves those counted
/// (documented), the tracked ones come off, and the condition variable keeps working.
#[test]
fn more_killed_waiters_than_slots_leave_at_most_the_untracked_counted() {
    let c: SharedBox<RawCondvar> = SharedBox::new();
    let n = CONDVAR_SLOTS as u32 + 2;
    let pids: Vec<_> = (0..n).map(|i| waiting_child(&c, i)).collect();
    for pid in pids {
        kill(pid);
    }
    // The two beyond the table wait untracked: counted, but not taken off (documented).
    assert_eq!(poll_for(2, Duration::from_secs(2), || c.waiters()), 2);
    let live = waiting_child(&c, 2);
    c.broadcast();
    assert_eq!(wait_child(live, Duration::from_secs(10)), 0);
}

#[test]
fn a_popper_killed_while_waiting_is_no_longer_counted() {
    let t = TestQueue::new(256, 0);
    let victim = fork_child(|| {
        let _ = t.q().pop_step(me(), false, soon(30_000), false);
    });
    assert_eq!(poll_for(1, Duration::from_secs(10), || t.q().num_waiting()), 1, "the popper never waited");
    kill(victim);
    assert_eq!(poll_for(0, Duration::from_secs(2), || t.q().num_waiting()), 0, "a killed popper is still counted");
    assert!(matches!(t.q().push_step(me(), b"job", false, None, false), Wait::Done(PushOutcome::Pushed(_))));
    assert_eq!(t.q().pop_step(me(), true, None, false), Wait::Done(PopOutcome::Item(b"job".to_vec())));
}

#[test]
fn a_pusher_killed_while_waiting_on_a_full_queue_is_no_longer_counted() {
    let t = TestQueue::new(256, 1);
    assert!(matches!(t.q().push_step(me(), b"first", false, None, false), Wait::Done(PushOutcome::Pushed(_))));
    let victim = fork_child(|| {
        let _ = t.q().push_step(me(), b"second", false, soon(30_000), false);
    });
    assert_eq!(poll_for(1, Duration::from_secs(10), || t.q().num_waiting()), 1, "the pusher never waited");
    kill(victim);
    assert_eq!(poll_for(0, Duration::from_secs(2), || t.q().num_waiting()), 0, "a killed pusher is still counted");
    assert_eq!(
        (t.q().len(), t.q().pop_step(me(), true, None, false)),
        (1, Wait::Done(PopOutcome::Item(b"first".to_vec())))
    );
}
