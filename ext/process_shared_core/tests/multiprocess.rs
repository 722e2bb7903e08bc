//! The primitives across real processes: fork, shared anonymous memory, real futexes, real signals.

mod common;

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{dead_id, fork_child, hammer, me, reap, wait_child, SharedBox, TestQueue};
use process_shared_core::sync::{
    Acquired, MutexError, Owner, PopOutcome, PushOutcome, RawAtomicInt, RawBarrier, RawCondvar, RawCounter, RawEvent,
    RawLatch, RawMonitor, RawMutex, RawRwLock, RawSemaphore, Wait,
};
use process_shared_core::sys::Deadline;

const LIMIT: Duration = Duration::from_secs(60);

#[repr(C)]
#[derive(Default)]
struct Guarded {
    lock: RawMutex,
    counter: UnsafeCell<u64>,
}

#[test]
fn mutex_excludes_processes_exactly() {
    let g: SharedBox<Guarded> = SharedBox::new();
    hammer(4, LIMIT, |_| {
        for _ in 0..20_000 {
            assert_eq!(g.lock.lock(me(), None), Ok(Wait::Done(Acquired::Clean)));
            // SAFETY: the counter is only touched while holding `lock`.
            unsafe {
                let c = g.counter.get();
                c.write_volatile(c.read_volatile() + 1);
            }
            g.lock.unlock(me()).unwrap();
        }
    });
    // SAFETY: all children have exited; nobody else touches the counter.
    assert_eq!(unsafe { *g.counter.get() }, 80_000);
    assert!(!g.lock.is_locked());
}

#[test]
fn mutex_ownership_is_per_process_and_thread() {
    let m: SharedBox<RawMutex> = SharedBox::new();
    let a = me();
    let b = Owner { thread: 2, ..a };
    assert!(m.try_lock(a));
    assert!(m.is_owned_by(a));
    assert!(!m.is_owned_by(b));
    assert_eq!(m.unlock(b), Err(MutexError::NotOwner));
    assert_eq!(m.lock(a, None), Err(MutexError::AlreadyOwned));
    let pid = fork_child(|| {
        let child = me();
        assert!(!m.is_owned_by(child));
        assert_eq!(m.unlock(child), Err(MutexError::NotOwner));
        assert!(!m.try_lock(child));
        let t = Instant::now();
        assert_eq!(m.lock(child, Some(Deadline::after(Duration::from_millis(50)))), Ok(Wait::TimedOut));
        assert!(t.elapsed() >= Duration::from_millis(49));
    });
    assert_eq!(wait_child(pid, LIMIT), 0);
    assert!(m.is_owned_by(a));
    assert_eq!(m.owner_pid(), Some(a.pid));
    m.unlock(a).unwrap();
    assert_eq!(m.owner_pid(), None);
}

#[test]
fn mutex_wakes_a_sleeping_waiter_in_another_process() {
    let m: SharedBox<RawMutex> = SharedBox::new();
    let flag: SharedBox<AtomicU32> = SharedBox::new();
    assert!(m.try_lock(me()));
    let pid = fork_child(|| {
        flag.store(1, Ordering::SeqCst);
        assert_eq!(m.lock(me(), Some(Deadline::after(Duration::from_secs(30)))), Ok(Wait::Done(Acquired::Clean)));
        m.unlock(me()).unwrap();
    });
    while flag.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    // Give the child time to go to sleep on the word, so the WAITERS path is the one exercised.
    let t = Instant::now();
    while !m.has_waiters() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(m.has_waiters());
    m.unlock(me()).unwrap();
    assert_eq!(wait_child(pid, LIMIT), 0);
}

extern "C" fn noop_handler(_: libc::c_int) {}

/// Install a SIGUSR1 handler without SA_RESTART, as Ruby does for its interrupt signal.
fn install_usr1() {
    // SAFETY: a zeroed sigaction with a valid handler and flags 0 (no SA_RESTART) is a valid argument.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = noop_handler as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

#[test]
fn interrupted_waits_change_nothing() {
    let m: SharedBox<RawMutex> = SharedBox::new();
    let s: SharedBox<RawSemaphore> = SharedBox::new();
    let c: SharedBox<RawCondvar> = SharedBox::new();
    let step: SharedBox<AtomicU32> = SharedBox::new();
    s.init(0, 0);
    assert!(m.try_lock(me()));
    let pid = fork_child(|| {
        install_usr1();
        let child = me();
        step.store(1, Ordering::SeqCst);
        assert_eq!(m.lock_slow(child, None, true), Wait::Interrupted::<Acquired>);
        assert!(!m.is_owned_by(child));
        step.store(2, Ordering::SeqCst);
        assert_eq!(s.wait_slow(me(), None, None, true), Wait::Interrupted);
        assert_eq!(s.value(), 0);
        assert_eq!(s.waiters(), 0);
        step.store(3, Ordering::SeqCst);
        let ticket = c.begin_wait();
        assert_eq!(c.wait_slow(ticket, None, true), Wait::Interrupted);
        c.abandon_wait();
        assert_eq!(c.waiters(), 0);
    });
    for n in 1..=3 {
        while step.load(Ordering::SeqCst) < n {
            std::thread::yield_now();
        }
        // Keep poking until the child has moved on: it may not be asleep yet when the first signal lands.
        while step.load(Ordering::SeqCst) == n {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, libc::SIGUSR1) };
            std::thread::sleep(Duration::from_millis(5));
            if n == 3 && unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) } != 0 {
                break;
            }
        }
    }
    // The last poke may have reaped it already; otherwise wait normally.
    let mut status = 0;
    // SAFETY: reaping our own child (ECHILD if already reaped above, which we then ignore).
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    if r == pid {
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
    assert!(m.is_owned_by(me()));
    assert_eq!(s.value(), 0);
}

#[test]
fn uninterruptible_waits_survive_signals() {
    let s: SharedBox<RawSemaphore> = SharedBox::new();
    let ready: SharedBox<AtomicU32> = SharedBox::new();
    s.init(0, 0);
    let pid = fork_child(|| {
        install_usr1();
        ready.store(1, Ordering::SeqCst);
        assert_eq!(s.wait(me(), None, Some(Deadline::after(Duration::from_secs(30)))), Wait::Done(()));
    });
    while ready.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    for _ in 0..5 {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
        std::thread::sleep(Duration::from_millis(5));
    }
    s.post(None).unwrap();
    assert_eq!(wait_child(pid, LIMIT), 0);
}

#[test]
fn semaphore_never_loses_a_permit() {
    let s: SharedBox<RawSemaphore> = SharedBox::new();
    s.init(0, 0);
    let per = 20_000;
    hammer(4, LIMIT, |i| {
        for _ in 0..per {
            if i % 2 == 0 {
                s.post(None).unwrap();
            } else {
                assert_eq!(s.wait(me(), None, Some(Deadline::after(Duration::from_secs(30)))), Wait::Done(()));
            }
        }
    });
    assert_eq!(s.value(), 0);
    assert!(!s.try_wait(None));
}

#[test]
fn semaphore_timeouts_and_maximum() {
    let s: SharedBox<RawSemaphore> = SharedBox::new();
    s.init(1, 1);
    assert!(s.post(None).is_err());
    assert_eq!(s.value(), 1);
    assert!(s.try_wait(None));
    assert!(!s.try_wait(None));
    let t = Instant::now();
    assert_eq!(s.wait(me(), None, Some(Deadline::after(Duration::from_millis(30)))), Wait::TimedOut);
    assert!(t.elapsed() >= Duration::from_millis(29));
    assert_eq!(s.waiters(), 0);
    s.post(None).unwrap();
    assert_eq!(s.value(), 1);
}

#[test]
fn semaphore_ping_pong() {
    let ping: SharedBox<RawSemaphore> = SharedBox::new();
    let pong: SharedBox<RawSemaphore> = SharedBox::new();
    ping.init(0, 0);
    pong.init(0, 0);
    let rounds = 10_000;
    let pid = fork_child(|| {
        for _ in 0..rounds {
            assert_eq!(ping.wait(me(), None, None), Wait::Done(()));
            pong.post(None).unwrap();
        }
    });
    for _ in 0..rounds {
        ping.post(None).unwrap();
        assert_eq!(pong.wait(me(), None, Some(Deadline::after(Duration::from_secs(30)))), Wait::Done(()));
    }
    assert_eq!(wait_child(pid, LIMIT), 0);
}

#[repr(C)]
#[derive(Default)]
struct Queue {
    lock: RawMutex,
    cond: RawCondvar,
    items: AtomicU32,
    consumed: AtomicU32,
}

#[test]
fn condvar_producer_consumers() {
    let q: SharedBox<Queue> = SharedBox::new();
    let total = 3_000;
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            fork_child(|| {
                let me = me();
                loop {
                    assert_eq!(q.lock.lock(me, None), Ok(Wait::Done(Acquired::Clean)));
                    while q.items.load(Ordering::Relaxed) == 0 && q.consumed.load(Ordering::Relaxed) < total {
                        let ticket = q.cond.begin_wait();
                        q.lock.unlock(me).unwrap();
                        let _ = q.cond.wait_slow(ticket, Some(Deadline::after(Duration::from_secs(30))), false);
                        assert_eq!(q.lock.lock(me, None), Ok(Wait::Done(Acquired::Clean)));
                    }
                    if q.consumed.load(Ordering::Relaxed) >= total {
                        q.lock.unlock(me).unwrap();
                        q.cond.broadcast();
                        return;
                    }
                    q.items.fetch_sub(1, Ordering::Relaxed);
                    q.consumed.fetch_add(1, Ordering::Relaxed);
                    q.lock.unlock(me).unwrap();
                }
            })
        })
        .collect();
    for _ in 0..total {
        assert_eq!(q.lock.lock(me(), None), Ok(Wait::Done(Acquired::Clean)));
        q.items.fetch_add(1, Ordering::Relaxed);
        q.lock.unlock(me()).unwrap();
        q.cond.signal();
    }
    for pid in consumers {
        assert_eq!(wait_child(pid, LIMIT), 0);
    }
    assert_eq!(q.consumed.load(Ordering::Relaxed), total);
    assert_eq!(q.items.load(Ordering::Relaxed), 0);
}

#[test]
fn condvar_signal_without_waiters_is_forgotten_and_timeouts_work() {
    let c: SharedBox<RawCondvar> = SharedBox::new();
    c.signal();
    c.broadcast();
    let ticket = c.begin_wait();
    let t = Instant::now();
    assert_eq!(c.wait_slow(ticket, Some(Deadline::after(Duration::from_millis(30))), true), Wait::TimedOut);
    assert!(t.elapsed() >= Duration::from_millis(29));
    assert_eq!(c.waiters(), 0);
}

#[test]
fn monitor_is_reentrant_and_exclusive() {
    let m: SharedBox<RawMonitor> = SharedBox::new();
    let a = me();
    assert_eq!(m.try_enter(a), Ok(true));
    assert_eq!(m.try_enter(a), Ok(true));
    assert_eq!(m.count(), 2);
    let tried: SharedBox<AtomicU32> = SharedBox::new();
    let pid = fork_child(|| {
        assert_eq!(m.try_enter(me()), Ok(false));
        tried.store(1, Ordering::SeqCst);
        assert_eq!(
            m.enter_slow(me(), Some(Deadline::after(Duration::from_secs(30))), false),
            Wait::Done(Acquired::Clean)
        );
        assert_eq!(m.count(), 1);
        m.exit(me()).unwrap();
    });
    while tried.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    m.exit(a).unwrap();
    assert!(m.is_locked());
    let saved = m.release_all(a).unwrap();
    assert_eq!(saved, 1);
    assert_eq!(wait_child(pid, LIMIT), 0);
    assert_eq!(m.try_enter(a), Ok(true));
    m.restore(saved);
    m.exit(a).unwrap();
    assert!(!m.is_locked());
    assert!(m.exit(a).is_err());
}

#[test]
fn condvar_signal_wakes_exactly_one_of_many() {
    let q: SharedBox<Queue> = SharedBox::new();
    let n = 3;
    for round in 0..20 {
        q.items.store(0, Ordering::SeqCst);
        q.consumed.store(0, Ordering::SeqCst);
        let pids: Vec<_> = (0..n)
            .map(|_| {
                fork_child(|| {
                    let me = me();
                    assert_eq!(q.lock.lock(me, None), Ok(Wait::Done(Acquired::Clean)));
                    let ticket = q.cond.begin_wait();
                    q.items.fetch_add(1, Ordering::SeqCst); // "I am waiting" (we hold the lock)
                    q.lock.unlock(me).unwrap();
                    let deadline = Some(Deadline::after(Duration::from_secs(30)));
                    assert_eq!(q.cond.wait_slow(ticket, deadline, false), Wait::Done(()));
                    q.consumed.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        while q.items.load(Ordering::SeqCst) < n {
            std::thread::yield_now();
        }
        // Signal at once, while some waiters may still be on their way into the kernel.
        q.cond.signal();
        let t = Instant::now();
        while q.consumed.load(Ordering::SeqCst) < 1 {
            assert!(t.elapsed() < Duration::from_secs(10), "round {round}: nobody woke");
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(q.consumed.load(Ordering::SeqCst), 1, "round {round}: one signal woke several");
        q.cond.broadcast();
        for pid in pids {
            assert_eq!(wait_child(pid, LIMIT), 0);
        }
        assert_eq!(q.consumed.load(Ordering::SeqCst), n);
        assert_eq!(q.cond.waiters(), 0);
    }
}

#[repr(C)]
#[derive(Default)]
struct Death {
    lock: RawMutex,
    holder: AtomicU32,
    waiting: AtomicU32,
}

/// A holder that is a grandchild (reparented, never our child: no SIGCHLD, we cannot reap it) is
/// SIGKILLed inside its critical section. A waiter already asleep and an acquirer arriving later both get
/// the lock within a second, exactly one of them with `OwnerDied`, and the lock then works normally.
#[test]
fn owner_death_is_detected_and_recovered_once() {
    let d: SharedBox<Death> = SharedBox::new();
    let middle = fork_child(|| {
        fork_child(|| {
            assert!(d.lock.try_lock(me()));
            d.holder.store(std::process::id(), Ordering::SeqCst);
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    });
    assert_eq!(wait_child(middle, LIMIT), 0);
    let t = Instant::now();
    while d.holder.load(Ordering::SeqCst) == 0 {
        assert!(t.elapsed() < LIMIT);
        std::thread::yield_now();
    }
    let holder = d.holder.load(Ordering::SeqCst);
    let waiter = fork_child(|| {
        d.waiting.store(1, Ordering::SeqCst);
        let out = d.lock.lock(me(), Some(Deadline::after(Duration::from_secs(30)))).unwrap();
        let code = match out {
            Wait::Done(Acquired::OwnerDied(p)) if p == d.holder.load(Ordering::SeqCst) => 10,
            Wait::Done(Acquired::Clean) => 11,
            _ => 12,
        };
        d.lock.unlock(me()).unwrap();
        // SAFETY: leaving the child with a code that tells the parent how it acquired the lock.
        unsafe { libc::_exit(code) };
    });
    while d.waiting.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(50)); // let it fall asleep on the word
                                                   // SAFETY: killing the grandchild we were told about (it is alive: it loops forever).
    assert_eq!(unsafe { libc::kill(holder as libc::pid_t, libc::SIGKILL) }, 0);
    let killed = Instant::now();
    let ours = d.lock.lock(me(), Some(Deadline::after(Duration::from_secs(30)))).unwrap();
    let waited = killed.elapsed();
    assert!(waited < Duration::from_secs(1), "recovery took {waited:?}");
    d.lock.unlock(me()).unwrap();
    let theirs = wait_child(waiter, LIMIT);
    // Exactly one acquirer saw the death; the other got a clean lock afterwards.
    match ours {
        Wait::Done(Acquired::OwnerDied(p)) => {
            assert_eq!(p, holder);
            assert_eq!(theirs, 11);
        }
        Wait::Done(Acquired::Clean) => assert_eq!(theirs, 10),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!d.lock.is_locked());
    assert!(d.lock.try_lock(me()));
    d.lock.unlock(me()).unwrap();
}

#[test]
fn try_recover_takes_over_from_a_dead_process_only() {
    let m: SharedBox<RawMutex> = SharedBox::new();
    let pid = fork_child(|| assert!(m.try_lock(me())));
    assert_eq!(wait_child(pid, LIMIT), 0); // exited holding it, reaped
    assert!(!m.try_lock(me()));
    assert_eq!(m.try_recover(me()), Some(pid as u32));
    assert!(m.is_owned_by(me()));
    assert_eq!(m.try_recover(me()), None); // our own lock: never "recovered"
    m.unlock(me()).unwrap();
}

/// A lock taken over from a dead process and given back unused (the taking call was interrupted) keeps
/// telling the next acquirer, with the dead process's pid.
#[test]
fn a_taken_over_lock_given_back_unused_still_reports_the_dead_owner() {
    let m: SharedBox<RawMutex> = SharedBox::new();
    let pid = fork_child(|| assert!(m.try_lock(me())));
    assert_eq!(wait_child(pid, LIMIT), 0); // exited holding it, reaped
    assert_eq!(m.try_recover(me()), Some(pid as u32));
    let other = Owner { thread: 7, ..me() };
    assert_eq!(m.give_back_owner_died(other, pid as u32), Err(MutexError::NotOwner));
    m.give_back_owner_died(me(), pid as u32).unwrap();
    assert!(m.is_locked());
    assert!(!m.is_owned_by(me()));
    assert_eq!(m.owner_pid(), Some(pid as u32));
    let child = fork_child(|| {
        let out = m.lock(me(), Some(Deadline::after(Duration::from_secs(30)))).unwrap();
        assert!(matches!(out, Wait::Done(Acquired::OwnerDied(p)) if p == pid as u32), "{out:?}");
        m.unlock(me()).unwrap();
    });
    assert_eq!(wait_child(child, LIMIT), 0);
    assert!(!m.is_locked());
}

/// The owning process marks a lock whose owning thread ended; any other acquirer takes it over at once.
#[test]
fn a_thread_that_ended_holding_the_lock_is_marked_by_its_process() {
    let m: SharedBox<RawMutex> = SharedBox::new();
    let ended = Owner { thread: 7, ..me() };
    assert!(m.try_lock(ended));
    assert!(!m.mark_owner_died(me())); // not the owner: nothing happens
    assert!(m.mark_owner_died(ended));
    assert!(m.is_locked());
    assert!(!m.is_owned_by(ended));
    let pid = fork_child(|| {
        let t = Instant::now();
        let out = m.lock(me(), Some(Deadline::after(Duration::from_secs(30)))).unwrap();
        assert!(t.elapsed() < Duration::from_millis(100), "took {:?}", t.elapsed());
        assert!(matches!(out, Wait::Done(Acquired::OwnerDied(p)) if p == std::os::unix::process::parent_id()));
        m.unlock(me()).unwrap();
    });
    assert_eq!(wait_child(pid, LIMIT), 0);
    assert!(!m.is_locked());
    // The same process recovers too (another thread of it).
    assert!(m.try_lock(ended));
    assert!(m.mark_owner_died(ended));
    assert_eq!(m.try_recover(me()), Some(me().pid));
    m.unlock(me()).unwrap();
}

#[test]
fn atomic_int_counts_exactly_across_processes() {
    let a: SharedBox<RawAtomicInt> = SharedBox::new();
    let per = 50_000;
    hammer(4, LIMIT, |i| {
        for _ in 0..per {
            if i % 2 == 0 {
                a.add(3);
            } else {
                a.sub(1);
            }
        }
    });
    assert_eq!(a.get(), 2 * per * 3 - 2 * per);
}

/// `update`'s retry loop: every process applies its function exactly once per round, none is lost.
#[test]
fn atomic_int_compare_and_set_loops_lose_no_update() {
    let a: SharedBox<RawAtomicInt> = SharedBox::new();
    let per = 20_000;
    hammer(4, LIMIT, |_| {
        for _ in 0..per {
            loop {
                let old = a.get();
                if a.compare_and_set(old, old + 2) {
                    break;
                }
            }
        }
    });
    assert_eq!(a.get(), 4 * per * 2);
}

#[test]
fn counters_are_independent_across_processes() {
    let c: SharedBox<[RawCounter; 4]> = SharedBox::new();
    let per = 30_000;
    hammer(4, LIMIT, |i| {
        for _ in 0..per {
            c[i].add(1);
            c[3 - i].sub(2);
        }
    });
    for counter in c.iter() {
        assert_eq!(counter.get(), per - 2 * per);
    }
}

#[test]
fn event_releases_every_waiting_process() {
    let e: SharedBox<RawEvent> = SharedBox::new();
    let ready: SharedBox<AtomicU32> = SharedBox::new();
    let pids: Vec<_> = (0..3)
        .map(|_| {
            fork_child(|| {
                let t = e.ticket();
                ready.fetch_add(1, Ordering::SeqCst);
                assert_eq!(e.wait_slow(t, Some(Deadline::after(Duration::from_secs(30))), false), Wait::Done(()));
            })
        })
        .collect();
    while ready.load(Ordering::SeqCst) < 3 {
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(20)); // let them fall asleep (not needed for correctness)
                                                   // A set immediately undone still releases those who were waiting.
    assert!(e.set());
    assert!(e.reset());
    for pid in pids {
        assert_eq!(wait_child(pid, LIMIT), 0);
    }
    assert!(!e.is_set());
}

#[test]
fn latch_opens_when_every_process_counted_down() {
    let l: SharedBox<RawLatch> = SharedBox::new();
    let done: SharedBox<AtomicU32> = SharedBox::new();
    l.init(4);
    let waiter = fork_child(|| {
        assert_eq!(l.wait(Some(Deadline::after(Duration::from_secs(30)))), Wait::Done(()));
        assert_eq!(done.load(Ordering::SeqCst), 4); // every count-downer's write is visible
    });
    hammer(4, LIMIT, |_| {
        done.fetch_add(1, Ordering::SeqCst);
        l.count_down();
    });
    assert_eq!(wait_child(waiter, LIMIT), 0);
    assert_eq!(l.count(), 0);
}

/// Rounds of a 4-process barrier: nobody leaves a round before everyone entered it.
#[test]
fn barrier_keeps_processes_in_step() {
    let b: SharedBox<RawBarrier> = SharedBox::new();
    let entered: SharedBox<[AtomicU32; 4]> = SharedBox::new();
    b.init(4);
    let rounds = 300;
    hammer(4, LIMIT, |i| {
        for round in 1..=rounds {
            entered[i].store(round, Ordering::SeqCst);
            assert_eq!(b.wait(Some(Deadline::after(Duration::from_secs(30)))), Wait::Done(true));
            for e in entered.iter() {
                assert!(e.load(Ordering::SeqCst) >= round, "left round {round} early");
            }
        }
    });
    assert_eq!(b.waiting(), 0);
    assert!(!b.is_broken());
}

#[test]
fn a_barrier_timeout_releases_the_others_with_false() {
    let b: SharedBox<RawBarrier> = SharedBox::new();
    b.init(3);
    let waiter = fork_child(|| assert_eq!(b.wait(Some(Deadline::after(Duration::from_secs(30)))), Wait::Done(false)));
    while b.waiting() < 1 {
        std::thread::yield_now();
    }
    let t = Instant::now();
    assert_eq!(b.wait(Some(Deadline::after(Duration::from_millis(50)))), Wait::TimedOut);
    assert_eq!(wait_child(waiter, LIMIT), 0);
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(b.is_broken());
    b.reset();
    assert!(!b.is_broken());
}

#[repr(C)]
struct RwGuarded {
    lock: RawRwLock,
    writers_inside: AtomicU32,
    readers_inside: AtomicU32,
    data: [AtomicU32; 2],
    violations: AtomicU32,
    reads: AtomicU32,
}

/// Readers and writers in 4 processes: a writer is alone, readers see both words equal (never a torn
/// update), and every write counts.
#[test]
fn rwlock_readers_share_and_writers_exclude() {
    let g: SharedBox<RwGuarded> = SharedBox::new();
    let per: u32 = 3_000;
    hammer(4, LIMIT, |i| {
        let i = i as u32;
        let me = me();
        let slot = g.lock.claim_slot(me).unwrap();
        for n in 0..per {
            if (n + i) % 4 == 0 {
                assert_eq!(g.lock.write(me, None), Ok(Wait::Done(Acquired::Clean)));
                if g.writers_inside.fetch_add(1, Ordering::SeqCst) != 0 || g.readers_inside.load(Ordering::SeqCst) != 0
                {
                    g.violations.fetch_add(1, Ordering::SeqCst);
                }
                let v = g.data[0].load(Ordering::Relaxed);
                g.data[0].store(v + 1, Ordering::Relaxed);
                std::hint::spin_loop();
                g.data[1].store(v + 1, Ordering::Relaxed);
                g.writers_inside.fetch_sub(1, Ordering::SeqCst);
                g.lock.release_write(me).unwrap();
            } else {
                assert_eq!(g.lock.read(slot, me, None), Wait::Done(Acquired::Clean));
                g.readers_inside.fetch_add(1, Ordering::SeqCst);
                if g.writers_inside.load(Ordering::SeqCst) != 0
                    || g.data[0].load(Ordering::Relaxed) != g.data[1].load(Ordering::Relaxed)
                {
                    g.violations.fetch_add(1, Ordering::SeqCst);
                }
                g.reads.fetch_add(1, Ordering::Relaxed);
                g.readers_inside.fetch_sub(1, Ordering::SeqCst);
                g.lock.release_read(slot);
            }
        }
    });
    assert_eq!(g.violations.load(Ordering::SeqCst), 0);
    assert_eq!(g.data[0].load(Ordering::SeqCst), 4 * per / 4);
    assert_eq!(g.reads.load(Ordering::SeqCst), 4 * per * 3 / 4);
    assert_eq!(g.lock.readers(), 0);
    assert!(!g.lock.is_write_locked());
}

/// Hold a read lock in this process while a forked writer waits for it (new readers shut out), run `then`
/// with the lock and our slot (it must end with our holds released), and see the writer get in and out.
fn with_a_waiting_writer(then: impl FnOnce(&RawRwLock, usize)) {
    let rw: SharedBox<RawRwLock> = SharedBox::new();
    let slot = rw.claim_slot(me()).unwrap();
    assert!(rw.try_read(slot));
    let writer = fork_child(|| {
        let out = rw.write(me(), Some(Deadline::after(Duration::from_secs(30)))).unwrap();
        assert_eq!(out, Wait::Done(Acquired::Clean));
        rw.release_write(me()).unwrap();
    });
    while !rw.is_write_locked() {
        std::thread::yield_now(); // the writer holds the writers' mutex and waits for us
    }
    assert!(!rw.try_read(slot), "a new reader got in ahead of a waiting writer");
    then(&rw, slot);
    assert_eq!(wait_child(writer, LIMIT), 0);
    assert_eq!(rw.readers(), 0);
    assert!(rw.try_read(slot));
    rw.release_read(slot);
}

/// A waiting writer shuts new readers out, and gets in once the reader leaves.
#[test]
fn rwlock_a_waiting_writer_is_not_starved_by_new_readers() {
    with_a_waiting_writer(|rw, slot| rw.release_read(slot));
}

/// A reader already holding a read lock takes another past the waiting writer (`read_again`): the writer
/// waits for that very hold, so refusing it would deadlock both. The writer gets in once all are released.
#[test]
fn rwlock_a_holder_reads_again_past_a_waiting_writer() {
    with_a_waiting_writer(|rw, slot| {
        assert_eq!(rw.read_again(slot), Acquired::Clean);
        assert_eq!(rw.slot_count(slot), 2);
        rw.release_read(slot);
        assert!(rw.is_write_locked(), "the writer got in while a hold was left");
        rw.release_read(slot);
    });
}

/// Read holds of a process killed while reading are cleared by a waiting writer within a slice or two.
#[test]
fn rwlock_a_dead_readers_holds_are_released() {
    let rw: SharedBox<RawRwLock> = SharedBox::new();
    let reading: SharedBox<AtomicU32> = SharedBox::new();
    let reader = fork_child(|| {
        let me = me();
        let slot = rw.claim_slot(me).unwrap();
        assert!(rw.try_read(slot));
        assert!(rw.try_read(slot));
        reading.store(1, Ordering::SeqCst);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    while reading.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    // SAFETY: killing our own child.
    assert_eq!(unsafe { libc::kill(reader, libc::SIGKILL) }, 0);
    let killed = Instant::now();
    assert_eq!(rw.write(me(), Some(Deadline::after(Duration::from_secs(30)))), Ok(Wait::Done(Acquired::Clean)));
    assert!(killed.elapsed() < Duration::from_secs(1), "took {:?}", killed.elapsed());
    rw.release_write(me()).unwrap();
    reap(reader);
    assert_eq!(rw.readers(), 0);
}

/// Forks a child that takes the write lock of `rw` and then idles until killed; returns once it holds it.
fn writer_holding(rw: &RawRwLock) -> libc::pid_t {
    let writing: SharedBox<AtomicU32> = SharedBox::new();
    let writer = fork_child(|| {
        assert_eq!(rw.write(me(), None), Ok(Wait::Done(Acquired::Clean)));
        writing.store(1, Ordering::SeqCst);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    while writing.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    writer
}

/// A writer killed holding the lock: a waiting reader lets readers in, each told until the next writer
/// takes the lock over (and is told, once); then everyone goes on cleanly.
#[test]
fn rwlock_a_dead_writer_is_taken_over_by_a_reader() {
    let rw: SharedBox<RawRwLock> = SharedBox::new();
    let writer = writer_holding(&rw);
    let me = me();
    let slot = rw.claim_slot(me).unwrap();
    assert!(!rw.try_read(slot));
    // SAFETY: killing our own child.
    assert_eq!(unsafe { libc::kill(writer, libc::SIGKILL) }, 0);
    let killed = Instant::now();
    let out = rw.read(slot, me, Some(Deadline::after(Duration::from_secs(30))));
    assert_eq!(out, Wait::Done(Acquired::OwnerDied(writer as u32)));
    assert!(killed.elapsed() < Duration::from_secs(1), "took {:?}", killed.elapsed());
    assert!(!rw.is_write_locked());
    assert_eq!(rw.read(slot, me, None), Wait::Done(Acquired::OwnerDied(writer as u32))); // still unrepaired
    rw.release_read(slot);
    rw.release_read(slot);
    assert_eq!(rw.write(me, None), Ok(Wait::Done(Acquired::OwnerDied(writer as u32))));
    rw.release_write(me).unwrap();
    assert_eq!(rw.read(slot, me, None), Wait::Done(Acquired::Clean));
    rw.release_read(slot);
    assert_eq!(rw.write(me, None), Ok(Wait::Done(Acquired::Clean)));
    rw.release_write(me).unwrap();
    reap(writer);
}

/// A slot left by a dead process that had our pid (pid reuse) is not mistaken for ours.
#[test]
fn rwlock_slots_are_per_process_and_reclaimed_from_the_dead() {
    let rw: SharedBox<RawRwLock> = SharedBox::new();
    let child = fork_child(|| {
        let slot = rw.claim_slot(me()).unwrap();
        assert!(rw.try_read(slot)); // exits holding a read lock
    });
    assert_eq!(wait_child(child, LIMIT), 0);
    let me = me();
    let mine = rw.claim_slot(me).unwrap();
    assert_eq!(rw.claim_slot(me).unwrap(), mine);
    assert!(rw.slot_is(mine, me));
    // A writer clears the dead child's hold.
    assert_eq!(rw.write(me, Some(Deadline::after(Duration::from_secs(30)))), Ok(Wait::Done(Acquired::Clean)));
    rw.release_write(me).unwrap();
    assert_eq!(rw.readers(), 0);
}

/// Reclaiming a dead process's slot while two live processes claim at once: slot 0 belongs to a dead
/// process. Process B (a thread of ours) and process C (a live child) claim at once; both may judge slot 0
/// dead; exactly one gets it, and neither takes the slot the other claimed.
#[test]
fn rwlock_slot_claims_racing_for_a_dead_processs_slot_never_share_a_slot() {
    let c_id: SharedBox<AtomicU64> = SharedBox::new();
    let done: SharedBox<AtomicU32> = SharedBox::new();
    let child = fork_child(|| {
        c_id.store(me().id, Ordering::SeqCst);
        while done.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    while c_id.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    let c = Owner { id: c_id.load(Ordering::SeqCst), thread: 3, pid: child as u32 }; // alive: keeps its slot
    let mut stolen = 0;
    for round in 0..2000u64 {
        let rw: Arc<SharedBox<RawRwLock>> = Arc::new(SharedBox::new());
        let dead = Owner { id: dead_id(round as u32 % 8), thread: 1, pid: 1 };
        let i = rw.claim_slot(dead).unwrap();
        assert!(rw.try_read(i)); // it died holding a read lock
        let b = Owner { thread: 2, ..me() };
        let go = Arc::new(Barrier::new(2));
        let (rw2, go2) = (rw.clone(), go.clone());
        let tb = std::thread::spawn(move || {
            go2.wait();
            let i = rw2.claim_slot(b).unwrap();
            assert!(rw2.try_read(i)); // B now reads
            i
        });
        go.wait();
        let ic = rw.claim_slot(c).unwrap();
        let ib = tb.join().unwrap();
        if ib == ic {
            stolen += 1;
            // B believes it holds a read lock; a writer gets in at once.
            let w = Owner { thread: 9, ..me() };
            if rw.write_mutex().try_lock(w) && rw.begin_write() {
                panic!(
                    "round {round}: B's slot {ib} taken by C (count {}); a writer got in while B reads",
                    rw.slot_count(ib)
                );
            }
        }
    }
    done.store(1, Ordering::SeqCst);
    assert_eq!(wait_child(child, LIMIT), 0);
    assert_eq!(stolen, 0);
}

/// Between a writer's take-over of the OWNER_DIED mutex and its `begin_write`, a new reader gets in and is
/// must still be told: the dead writer's update is unrepaired until that writer holds the write lock.
/// (Found by an independent review.)
#[test]
fn rwlock_readers_are_told_until_a_writer_holds_the_write_lock() {
    let rw: SharedBox<RawRwLock> = SharedBox::new();
    let w1 = writer_holding(&rw);
    // SAFETY: killing our own child.
    unsafe { libc::kill(w1, libc::SIGKILL) };
    reap(w1);
    let me = me();
    let slot = rw.claim_slot(me).unwrap();
    // First reader recovers: told, mutex left OWNER_DIED.
    assert_eq!(rw.try_read_recovering(slot, me), Some(Acquired::OwnerDied(w1 as u32)));
    rw.release_read(slot);
    // Writer W2 (another thread) does what take_write does: try_lock fails, try_recover takes over ...
    let w2 = Owner { thread: 2, ..me };
    assert_eq!(rw.write_mutex().try_recover(w2), Some(w1 as u32));
    // ... and before its begin_write, a reader arrives:
    let r = rw.try_read_recovering(slot, me);
    assert_eq!(r, Some(Acquired::OwnerDied(w1 as u32)), "reader of unrepaired data was told {r:?}");
}

/// A record that checks itself: (producer, sequence number, filler of a varying length, checksum).
fn record(producer: u32, seq: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&producer.to_le_bytes());
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend(std::iter::repeat_n((seq % 251) as u8, (seq % 37) as usize));
    let sum: u32 = v.iter().map(|&b| u32::from(b)).sum();
    v.extend_from_slice(&sum.to_le_bytes());
    v
}

/// (producer, seq) if the record is whole.
fn check_record(v: &[u8]) -> Option<(u32, u32)> {
    if v.len() < 12 {
        return None;
    }
    let (body, sum) = v.split_at(v.len() - 4);
    let expect: u32 = body.iter().map(|&b| u32::from(b)).sum();
    (u32::from_le_bytes(sum.try_into().ok()?) == expect).then(|| {
        (u32::from_le_bytes(body[0..4].try_into().unwrap()), u32::from_le_bytes(body[4..8].try_into().unwrap()))
    })
}

/// Two producers and two consumers through a small ring (it wraps and fills constantly): every record
/// arrives once, whole, and each producer's records in order.
#[test]
fn queue_is_a_fifo_across_processes() {
    let t = TestQueue::new(200, 0);
    let seen: SharedBox<[AtomicU32; 2]> = SharedBox::new();
    let per = 5_000u32;
    hammer(4, LIMIT, |i| {
        let q = t.q();
        let me = me();
        if i < 2 {
            for seq in 0..per {
                let out = q.push_step(me, &record(i as u32, seq), false, None, false);
                assert!(matches!(out, Wait::Done(PushOutcome::Pushed(_))), "{out:?}");
            }
        } else {
            let mut last = [None::<u32>; 2];
            loop {
                match q.pop_step(me, false, Some(Deadline::after(Duration::from_millis(500))), false) {
                    Wait::Done(PopOutcome::Item(v)) => {
                        let (p, seq) = check_record(&v).expect("a torn record");
                        let p = p as usize;
                        assert!(last[p].is_none_or(|l| seq > l), "out of order");
                        last[p] = Some(seq);
                        seen[p].fetch_add(1, Ordering::SeqCst);
                    }
                    Wait::TimedOut => break,
                    other => panic!("{other:?}"),
                }
            }
        }
    });
    assert_eq!([seen[0].load(Ordering::SeqCst), seen[1].load(Ordering::SeqCst)], [per, per]);
    assert!(t.q().is_empty());
}

#[test]
fn queue_limits_close_clear_and_give_back() {
    let t = TestQueue::new(64, 2);
    let q = t.q();
    let me = me();
    let soon = || Some(Deadline::after(Duration::from_millis(20)));
    let Wait::Done(PushOutcome::Pushed(first)) = q.push_step(me, b"one", false, None, false) else { panic!() };
    let Wait::Done(PushOutcome::Pushed(second)) = q.push_step(me, b"two", false, None, false) else { panic!() };
    assert_eq!(q.push_step(me, b"three", false, soon(), false), Wait::TimedOut); // max 2
    assert_eq!(q.push_step(me, b"three", true, None, false), Wait::Done(PushOutcome::Full)); // at once
    assert_eq!(q.try_push(me, b"three", true), Some(PushOutcome::Full));
    assert_eq!(q.len(), 2); // nothing was pushed, and the lock was given back (or the next step would hang)
    assert!(!q.retract(me, first)); // not the newest
    assert!(q.retract(me, second));
    assert_eq!(q.len(), 1);
    assert!(q.fits_at_all(60) && !q.fits_at_all(61));
    assert_eq!(q.pop_step(me, false, None, false), Wait::Done(PopOutcome::Item(b"one".to_vec())));
    assert!(q.unshift(me, b"one"));
    assert_eq!(q.pop_step(me, false, None, false), Wait::Done(PopOutcome::Item(b"one".to_vec())));
    assert_eq!(q.pop_step(me, true, None, false), Wait::Done(PopOutcome::Empty));
    assert_eq!(q.pop_step(me, false, soon(), false), Wait::TimedOut);
    q.push_step(me, b"x", false, None, false);
    q.clear(me, false);
    assert!(q.is_empty());
    q.push_step(me, b"last", false, None, false);
    q.push_step(me, b"full", false, None, false); // max 2
    q.close(me, false);
    assert!(q.is_closed());
    // Full and closed, in Thread::SizedQueue#push's order: non_block says "full", a blocking push "closed".
    assert_eq!(q.try_push(me, b"y", true), Some(PushOutcome::Full));
    assert_eq!(q.push_step(me, b"y", false, None, false), Wait::Done(PushOutcome::Closed));
    assert_eq!(q.pop_step(me, false, None, false), Wait::Done(PopOutcome::Item(b"last".to_vec())));
    assert_eq!(q.push_step(me, b"y", true, None, false), Wait::Done(PushOutcome::Closed)); // room, closed
    assert_eq!(q.pop_step(me, false, None, false), Wait::Done(PopOutcome::Item(b"full".to_vec())));
    assert_eq!(q.pop_step(me, false, None, false), Wait::Done(PopOutcome::ClosedEmpty));
    assert_eq!(q.pop_step(me, true, None, false), Wait::Done(PopOutcome::Empty));
}

/// Producers and consumers SIGKILLed at random moments: the queue stays usable and never yields a torn
/// record.
#[test]
fn queue_survives_processes_killed_mid_operation() {
    let t = TestQueue::new(512, 0);
    let torn: SharedBox<AtomicU32> = SharedBox::new();
    let popped: SharedBox<AtomicU32> = SharedBox::new();
    let worker = |i: usize| {
        let q = t.q();
        let me = me();
        let mut seq = 0u32;
        loop {
            if i % 2 == 0 {
                q.push_step(me, &record(i as u32, seq), false, None, false);
                seq += 1;
            } else if let Wait::Done(PopOutcome::Item(v)) =
                q.pop_step(me, false, Some(Deadline::after(Duration::from_millis(50))), false)
            {
                if check_record(&v).is_none() {
                    torn.fetch_add(1, Ordering::SeqCst);
                }
                popped.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    let mut pids: Vec<_> = (0..4).map(|i| fork_child(|| worker(i))).collect();
    for round in 0..60 {
        std::thread::sleep(Duration::from_millis(5));
        let i = round % 4;
        // SAFETY: killing our own child.
        unsafe { libc::kill(pids[i], libc::SIGKILL) };
        reap(pids[i]);
        pids[i] = fork_child(|| worker(i));
    }
    for pid in pids {
        // SAFETY: killing our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        reap(pid);
    }
    assert_eq!(torn.load(Ordering::SeqCst), 0);
    assert!(popped.load(Ordering::SeqCst) > 100);
    // What is left is whole (the producers may have filled it), and the queue still works.
    let q = t.q();
    let me = me();
    let soon = || Some(Deadline::after(Duration::from_secs(5)));
    while let Wait::Done(PopOutcome::Item(v)) = q.pop_step(me, true, soon(), false) {
        assert!(check_record(&v).is_some(), "a torn record left in the queue");
    }
    assert!(q.is_empty());
    assert!(matches!(q.push_step(me, &record(9, 9), false, soon(), false), Wait::Done(PushOutcome::Pushed(_))));
    assert_eq!(q.pop_step(me, true, soon(), false), Wait::Done(PopOutcome::Item(record(9, 9))));
}

/// The descriptor numbers of this process that name the shared owner registry.
fn registry_fds() -> Vec<i32> {
    let reg = std::path::Path::new(process_shared_core::sys::owner::REGISTRY);
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            (std::fs::read_link(e.path()).ok()? == reg).then_some(fd)
        })
        .collect()
}

/// A process whose registry descriptor is closed behind its back and the number reused for another file
/// (a `closefrom` loop, then an open): it never judges a live process dead by asking the wrong file, and
/// it takes its own byte back, so that others see it alive again (review of 04b6b23, finding 1).
#[test]
fn a_lost_registry_descriptor_never_makes_the_living_look_dead() {
    use process_shared_core::sys::owner::{current_id, liveness, Liveness, HIGH_FD};
    let parent = current_id();
    let step = SharedBox::<AtomicU64>::new();
    let child_id = SharedBox::<AtomicU64>::new();
    let child = fork_child(|| {
        let id = current_id();
        let fds = registry_fds();
        assert!(fds.iter().all(|&fd| fd >= HIGH_FD), "registry descriptor moved high: {fds:?}");
        assert_eq!(liveness(parent), Liveness::Alive);
        for &fd in &fds {
            let other = std::fs::File::open("/dev/null").unwrap();
            // SAFETY: replacing our registry descriptor with /dev/null, as careless code in a process might.
            unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&other), fd) };
        }
        assert_ne!(liveness(parent), Liveness::Dead, "asked the wrong file");
        assert_eq!(liveness(parent), Liveness::Alive, "the registry was opened again");
        child_id.store(id, Ordering::SeqCst);
        step.store(1, Ordering::SeqCst);
        let until = Instant::now() + LIMIT;
        while step.load(Ordering::SeqCst) != 2 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let until = Instant::now() + LIMIT;
    while step.load(Ordering::SeqCst) != 1 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    let id = child_id.load(Ordering::SeqCst);
    assert_eq!(liveness(id), Liveness::Alive, "the child locked its byte again");
    step.store(2, Ordering::SeqCst);
    assert_eq!(wait_child(child, LIMIT), 0);
    assert_eq!(liveness(id), Liveness::Dead);
}

/// A writer that takes the write lock over from a dead writer but then times out waiting for readers gives
/// it back still marked as the dead owner's: the next writer learns of the death (review of 04b6b23,
/// finding 4: `write` unlocked it clean).
#[test]
fn rwlock_write_timing_out_after_a_take_over_keeps_the_owner_dead_notice() {
    let rw: SharedBox<RawRwLock> = SharedBox::new();
    let slot = rw.claim_slot(me()).unwrap();
    assert!(rw.try_read(slot)); // a reader inside: a writer's drain cannot finish
    let dead_writer = fork_child(|| assert!(rw.write_mutex().try_lock(me())));
    assert_eq!(wait_child(dead_writer, LIMIT), 0);
    let writer = Owner::current(2);
    let short = Some(Deadline::after(Duration::from_millis(50)));
    assert_eq!(rw.write(writer, short), Ok(Wait::TimedOut));
    rw.release_read(slot);
    assert!(matches!(rw.write(writer, None), Ok(Wait::Done(Acquired::OwnerDied(_)))), "the death was forgotten");
    rw.release_write(writer).unwrap();
    assert_eq!(rw.write(writer, None), Ok(Wait::Done(Acquired::Clean)));
    rw.release_write(writer).unwrap();
}
