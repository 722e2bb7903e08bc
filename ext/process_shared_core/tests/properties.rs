//! Property tests of the core state machines (issue 3, point 3): random sequences of operations by several
//! logical owners, checked after every step against a small model; `Deadline` arithmetic against `i128`
//! nanoseconds; `/proc` lookups of odd pids; and one randomized two-process run with exact counts.
//!
//! Single-process sequences call every blocking slow path with a deadline that has already passed or is
//! 1 ms away: nobody else can change the state, so each call must return `Done` at once or `TimedOut`.
//!
//! Reproducing a failure: every property prints its seed (the harness shows it with the failure); rerun
//! with `PROPTEST_RNG_SEED=<seed>`. Failures are not persisted (no `proptest-regressions/` files); proptest
//! prints the shrunk failing input in the panic message.

mod common;

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::RngSeed;

use common::{fork_child, me, wait_child, SharedBox};
use process_shared_core::sync::{
    Acquired, MonitorError, MutexError, Owner, PostError, RawCondvar, RawMonitor, RawMutex, RawSemaphore, Wait,
};
use process_shared_core::sys::process::current_pid;
use process_shared_core::sys::Deadline;

// ---------------------------------------------------------------------------------------------------------
// Configuration and shared pieces
// ---------------------------------------------------------------------------------------------------------

/// `cases` cases, nothing persisted, and a seed that is printed (taken from `PROPTEST_RNG_SEED` if set).
fn config(cases: u32) -> ProptestConfig {
    let base = ProptestConfig::default(); // already reflects the PROPTEST_* environment variables
    let seed = match base.rng_seed {
        RngSeed::Fixed(s) => s,
        RngSeed::Random => {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
            );
            h.finish()
        }
    };
    eprintln!("proptest seed {seed}: rerun with PROPTEST_RNG_SEED={seed}");
    ProptestConfig { cases, failure_persistence: None, rng_seed: RngSeed::Fixed(seed), max_shrink_time: 20_000, ..base }
}

/// A deadline for a slow path that must not block: long past, just now, or 1 ms away.
#[derive(Clone, Copy, Debug)]
enum Dl {
    Past,
    Now,
    Ms1,
}

impl Dl {
    fn at(self) -> Deadline {
        match self {
            Dl::Past => Deadline { sec: 0, nsec: 0 },
            Dl::Now => Deadline::now(),
            Dl::Ms1 => Deadline::after(Duration::from_millis(1)),
        }
    }
}

fn dl() -> impl Strategy<Value = Dl> {
    prop_oneof![3 => Just(Dl::Past), 3 => Just(Dl::Now), 1 => Just(Dl::Ms1)]
}

const OWNERS: usize = 4;

/// The logical owners: three threads of this process and a thread of another, live-looking process (an
/// untracked owner id: "cannot tell" is alive, so no owner-death check can ever call it dead).
///
/// Computed per case (never cached): a forked child must not inherit its parent's id.
fn owners() -> [Owner; OWNERS] {
    let me = Owner::current(1);
    let other = Owner { id: u64::from((me.id as u32) ^ 0x5555_5555), thread: 1, pid: 1 };
    assert!(other.id != 0 && process_shared_core::sys::owner::tag_of(other.id) == 0);
    [me, Owner { thread: 2, ..me }, Owner { thread: 3, ..me }, other]
}

fn owner() -> impl Strategy<Value = usize> {
    0..OWNERS
}

/// A `TimedOut` must not come before its deadline.
fn timed_out_late(d: Deadline) -> Result<(), TestCaseError> {
    prop_assert!(d.expired(), "TimedOut before the deadline {:?} (now {:?})", d, Deadline::now());
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// RawMutex against Option<owner>
// ---------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum MutexOp {
    TryLock(usize),
    Unlock(usize),
    /// `lock` (fast path, owner-death check, slow path) with a short deadline.
    Lock(usize, Dl),
    /// `lock_slow` directly, also by the holder itself (it must time out, not deadlock).
    LockSlow(usize, Dl, bool),
    TryRecover(usize),
}

fn mutex_op() -> impl Strategy<Value = MutexOp> {
    prop_oneof![
        4 => owner().prop_map(MutexOp::TryLock),
        4 => owner().prop_map(MutexOp::Unlock),
        2 => (owner(), dl()).prop_map(|(o, d)| MutexOp::Lock(o, d)),
        2 => (owner(), dl(), any::<bool>()).prop_map(|(o, d, i)| MutexOp::LockSlow(o, d, i)),
        1 => owner().prop_map(MutexOp::TryRecover),
    ]
}

fn check_mutex(m: &RawMutex, os: &[Owner; OWNERS], model: Option<usize>) -> Result<(), TestCaseError> {
    prop_assert_eq!(m.is_locked(), model.is_some());
    prop_assert_eq!(m.owner_pid(), model.map(|o| os[o].pid));
    for (i, &o) in os.iter().enumerate() {
        prop_assert_eq!(m.is_owned_by(o), model == Some(i), "is_owned_by(owner {})", i);
    }
    // A thread token nobody uses, in each process: never the owner.
    for &o in os {
        let stranger = Owner { thread: 0xDEAD, ..o };
        prop_assert!(!m.is_owned_by(stranger), "thread token {:#x} owns it", stranger.thread);
    }
    if model.is_none() {
        // `unlock` swaps in 0, so a free lock never advertises sleepers.
        prop_assert!(!m.has_waiters());
    }
    Ok(())
}

fn run_mutex(ops: &[MutexOp]) -> Result<(), TestCaseError> {
    let os = owners();
    let m = RawMutex::new();
    let mut model: Option<usize> = None;
    check_mutex(&m, &os, model)?;
    for (step, &op) in ops.iter().enumerate() {
        match op {
            MutexOp::TryLock(o) => {
                let got = m.try_lock(os[o]);
                prop_assert_eq!(got, model.is_none(), "step {}: {:?}", step, op);
                if got {
                    model = Some(o);
                }
            }
            MutexOp::Unlock(o) => {
                let got = m.unlock(os[o]);
                if model == Some(o) {
                    prop_assert_eq!(got, Ok(()), "step {}: {:?}", step, op);
                    model = None;
                } else {
                    prop_assert_eq!(got, Err(MutexError::NotOwner), "step {}: {:?}", step, op);
                }
            }
            MutexOp::Lock(o, d) => {
                let d = d.at();
                let got = m.lock(os[o], Some(d));
                let want = match model {
                    Some(h) if h == o => Err(MutexError::AlreadyOwned),
                    Some(_) => Ok(Wait::TimedOut),
                    None => Ok(Wait::Done(Acquired::Clean)),
                };
                prop_assert_eq!(got, want, "step {}: {:?}", step, op);
                match got {
                    Ok(Wait::TimedOut) => timed_out_late(d)?,
                    Ok(Wait::Done(_)) => model = Some(o),
                    _ => {}
                }
            }
            MutexOp::LockSlow(o, d, interruptible) => {
                let d = d.at();
                let got = m.lock_slow(os[o], Some(d), interruptible);
                let want = if model.is_none() { Wait::Done(Acquired::Clean) } else { Wait::TimedOut };
                prop_assert_eq!(got, want, "step {}: {:?}", step, op);
                match got {
                    Wait::TimedOut => timed_out_late(d)?,
                    Wait::Done(_) => model = Some(o),
                    _ => {}
                }
            }
            MutexOp::TryRecover(o) => {
                // Every owner is alive: nothing is ever taken over.
                prop_assert_eq!(m.try_recover(os[o]), None, "step {}: {:?}", step, op);
            }
        }
        check_mutex(&m, &os, model)?;
    }
    if let Some(o) = model {
        prop_assert_eq!(m.unlock(os[o]), Ok(()));
    }
    check_mutex(&m, &os, None)
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn mutex_matches_model(ops in prop::collection::vec(mutex_op(), 1..64)) {
        run_mutex(&ops)?;
    }
}

// ---------------------------------------------------------------------------------------------------------
// RawSemaphore against (value, max)
// ---------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum SemOp {
    TryWait,
    Post,
    WaitSlow(Dl, bool),
    Wait(Dl),
}

fn sem_op() -> impl Strategy<Value = SemOp> {
    prop_oneof![
        3 => Just(SemOp::TryWait),
        3 => Just(SemOp::Post),
        1 => (dl(), any::<bool>()).prop_map(|(d, i)| SemOp::WaitSlow(d, i)),
        1 => dl().prop_map(SemOp::Wait),
    ]
}

/// Values around the interesting edges: small, around `VALUE_MAX`, around `u32::MAX`, anything.
fn sem_number() -> impl Strategy<Value = u32> {
    const VM: u32 = RawSemaphore::VALUE_MAX;
    prop_oneof![
        4 => 0..5u32,
        2 => (VM - 3)..=(VM + 3),
        1 => (u32::MAX - 3)..=u32::MAX,
        1 => any::<u32>(),
    ]
}

fn check_sem(s: &RawSemaphore, value: u32, max: u32) -> Result<(), TestCaseError> {
    prop_assert_eq!(s.value(), value);
    prop_assert_eq!(s.max(), max);
    prop_assert!(s.value() <= s.max());
    prop_assert!(s.max() <= RawSemaphore::VALUE_MAX);
    prop_assert_eq!(s.waiters(), 0);
    Ok(())
}

fn run_sem(init: Option<(u32, u32)>, ops: &[SemOp]) -> Result<(), TestCaseError> {
    let s: SharedBox<RawSemaphore> = SharedBox::new();
    // Model of `init`: max 0 means VALUE_MAX, max is capped at VALUE_MAX, value at max. Never initialised
    // (zeroed memory): value 0, max VALUE_MAX.
    let (mut value, max) = match init {
        Some((v, m)) => {
            s.init(v, m);
            let m = if m == 0 { RawSemaphore::VALUE_MAX } else { m.min(RawSemaphore::VALUE_MAX) };
            (v.min(m), m)
        }
        None => (0, RawSemaphore::VALUE_MAX),
    };
    check_sem(&s, value, max)?;
    for (step, &op) in ops.iter().enumerate() {
        match op {
            SemOp::TryWait => {
                prop_assert_eq!(s.try_wait(None), value > 0, "step {}: {:?}", step, op);
                value = value.saturating_sub(1);
            }
            SemOp::Post => {
                let got = s.post(None);
                if value < max {
                    prop_assert_eq!(got, Ok(()), "step {}: {:?}", step, op);
                    value += 1;
                } else {
                    prop_assert_eq!(got, Err(PostError::AtMax(max)), "step {}: {:?}", step, op);
                }
            }
            SemOp::WaitSlow(d, _) | SemOp::Wait(d) => {
                let d = d.at();
                let got = match op {
                    SemOp::WaitSlow(_, interruptible) => s.wait_slow(Owner::current(1), None, Some(d), interruptible),
                    _ => s.wait(Owner::current(1), None, Some(d)),
                };
                if value > 0 {
                    prop_assert_eq!(got, Wait::Done(()), "step {}: {:?}", step, op);
                    value -= 1;
                } else {
                    prop_assert_eq!(got, Wait::TimedOut, "step {}: {:?}", step, op);
                    timed_out_late(d)?;
                }
            }
        }
        check_sem(&s, value, max)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn semaphore_matches_model(
        init in prop::option::weighted(0.9, (sem_number(), sem_number())),
        ops in prop::collection::vec(sem_op(), 1..64),
    ) {
        run_sem(init, &ops)?;
    }
}

// ---------------------------------------------------------------------------------------------------------
// RawMonitor against (owner, count)
// ---------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum MonOp {
    TryEnter(usize),
    Exit(usize),
    EnterSlow(usize, Dl),
    /// `release_all`, remembering the count for `Reenter`.
    ReleaseAll(usize),
    /// After `ReleaseAll`: re-take the mutex (if free) and `restore` the saved count, as a condvar wait does.
    Reenter(usize),
    /// The holder's count set near `u32::MAX` (via `restore`), to reach `TooDeep`.
    Deepen(usize, u32),
    TryRecover(usize),
}

fn mon_op() -> impl Strategy<Value = MonOp> {
    prop_oneof![
        5 => owner().prop_map(MonOp::TryEnter),
        5 => owner().prop_map(MonOp::Exit),
        1 => (owner(), dl()).prop_map(|(o, d)| MonOp::EnterSlow(o, d)),
        2 => owner().prop_map(MonOp::ReleaseAll),
        2 => owner().prop_map(MonOp::Reenter),
        1 => (owner(), 0..3u32).prop_map(|(o, k)| MonOp::Deepen(o, k)),
        1 => owner().prop_map(MonOp::TryRecover),
    ]
}

fn check_mon(m: &RawMonitor, os: &[Owner; OWNERS], owner: Option<usize>, count: u32) -> Result<(), TestCaseError> {
    prop_assert_eq!(m.is_locked(), owner.is_some());
    prop_assert_eq!(m.mutex().owner_pid(), owner.map(|o| os[o].pid));
    for (i, &o) in os.iter().enumerate() {
        prop_assert_eq!(m.is_owned_by(o), owner == Some(i), "is_owned_by(owner {})", i);
    }
    prop_assert_eq!(m.count(), count);
    prop_assert_eq!(owner.is_some(), count > 0, "count {} with owner {:?}", count, owner);
    Ok(())
}

fn run_mon(ops: &[MonOp]) -> Result<(), TestCaseError> {
    let os = owners();
    let m = RawMonitor::new();
    let (mut owner, mut count): (Option<usize>, u32) = (None, 0);
    let mut saved: [Option<u32>; OWNERS] = [None; OWNERS];
    for (step, &op) in ops.iter().enumerate() {
        match op {
            MonOp::TryEnter(o) => {
                let got = m.try_enter(os[o]);
                if owner == Some(o) {
                    if count == u32::MAX {
                        prop_assert_eq!(got, Err(MonitorError::TooDeep), "step {}: {:?}", step, op);
                    } else {
                        prop_assert_eq!(got, Ok(true), "step {}: {:?}", step, op);
                        count += 1;
                    }
                } else if owner.is_none() {
                    prop_assert_eq!(got, Ok(true), "step {}: {:?}", step, op);
                    (owner, count) = (Some(o), 1);
                } else {
                    prop_assert_eq!(got, Ok(false), "step {}: {:?}", step, op);
                }
            }
            MonOp::Exit(o) => {
                let got = m.exit(os[o]);
                if owner == Some(o) {
                    prop_assert_eq!(got, Ok(()), "step {}: {:?}", step, op);
                    count -= 1;
                    if count == 0 {
                        owner = None;
                    }
                } else {
                    prop_assert_eq!(got, Err(MonitorError::NotOwner), "step {}: {:?}", step, op);
                }
            }
            MonOp::EnterSlow(o, d) => {
                let d = d.at();
                let got = m.enter_slow(os[o], Some(d), false);
                if owner.is_none() {
                    prop_assert_eq!(got, Wait::Done(Acquired::Clean), "step {}: {:?}", step, op);
                    (owner, count) = (Some(o), 1);
                } else {
                    // Also by the holder itself: the slow path is not re-entrant, it must just time out.
                    prop_assert_eq!(got, Wait::TimedOut, "step {}: {:?}", step, op);
                    timed_out_late(d)?;
                }
            }
            MonOp::ReleaseAll(o) => {
                let got = m.release_all(os[o]);
                if owner == Some(o) {
                    prop_assert_eq!(got, Ok(count), "step {}: {:?}", step, op);
                    saved[o] = Some(count);
                    (owner, count) = (None, 0);
                } else {
                    prop_assert_eq!(got, Err(MonitorError::NotOwner), "step {}: {:?}", step, op);
                }
            }
            MonOp::Reenter(o) => {
                if let Some(c) = saved[o] {
                    let got = m.mutex().try_lock(os[o]);
                    prop_assert_eq!(got, owner.is_none(), "step {}: {:?}", step, op);
                    if got {
                        m.restore(c);
                        (owner, count, saved[o]) = (Some(o), c, None);
                    }
                }
            }
            MonOp::Deepen(o, k) => {
                if owner == Some(o) {
                    count = u32::MAX - k;
                    m.restore(count);
                }
            }
            MonOp::TryRecover(o) => {
                prop_assert_eq!(m.try_recover(os[o]), None, "step {}: {:?}", step, op);
            }
        }
        check_mon(&m, &os, owner, count)?;
    }
    if let Some(o) = owner {
        prop_assert_eq!(m.release_all(os[o]), Ok(count));
    }
    check_mon(&m, &os, None, 0)
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn monitor_matches_model(ops in prop::collection::vec(mon_op(), 1..64)) {
        run_mon(&ops)?;
    }
}

// ---------------------------------------------------------------------------------------------------------
// RawCondvar: registered waiters, signals that are not remembered, exact waiter counts
// ---------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum CvOp {
    /// `begin_wait`: a new registered waiter (ignored when `MAX_WAITERS` are registered).
    Begin,
    Signal,
    Broadcast,
    /// Registered waiter `i % n` calls `wait_slow` with a short deadline.
    Wait(usize, Dl),
    /// Registered waiter `i % n` gives up (as after `Interrupted`): `abandon_wait`.
    Abandon(usize),
    /// `abandon_wait` with nobody registered: must not underflow the count.
    StrayAbandon,
    /// `signal`, then every registered waiter waits (deadline passed): at least one must be woken.
    SignalDrain,
    /// `broadcast`, then every registered waiter waits (deadline passed): all must be woken.
    BroadcastDrain,
}

const MAX_WAITERS: usize = 6;

fn cv_op() -> impl Strategy<Value = CvOp> {
    prop_oneof![
        4 => Just(CvOp::Begin),
        2 => Just(CvOp::Signal),
        1 => Just(CvOp::Broadcast),
        3 => (any::<usize>(), dl()).prop_map(|(i, d)| CvOp::Wait(i, d)),
        2 => any::<usize>().prop_map(CvOp::Abandon),
        1 => Just(CvOp::StrayAbandon),
        1 => Just(CvOp::SignalDrain),
        1 => Just(CvOp::BroadcastDrain),
    ]
}

/// A registered waiter: its ticket, and whether any signal or broadcast was sent since it registered.
struct Waiter {
    ticket: u32,
    notified_since: bool,
}

/// Runs `ops` in one thread. Checks, after every step: `waiters()` equals the number of registered waiters
/// (so it never underflows and returns to 0); a wait returns `Done` only if a notification was sent after
/// the waiter registered (signals are not remembered) and otherwise `TimedOut` no earlier than its deadline;
/// the total of `Done`s never exceeds the wake-ups granted (one per signal, one per registered waiter per
/// broadcast, none when nobody was registered). With `liveness`, the drain steps also check that a signal
/// wakes at least one of the waiters registered before it and that a broadcast wakes all of them.
fn run_cv(ops: &[CvOp], liveness: bool) -> Result<(), TestCaseError> {
    let c = RawCondvar::new();
    let mut reg: Vec<Waiter> = Vec::new();
    let (mut granted, mut woken) = (0u64, 0u64);

    fn notify(c: &RawCondvar, reg: &mut [Waiter], granted: &mut u64, all: bool) {
        if all {
            c.broadcast();
            *granted += reg.len() as u64;
        } else {
            c.signal();
            *granted += u64::from(!reg.is_empty());
        }
        for w in reg.iter_mut() {
            w.notified_since = true;
        }
    }

    /// Waiter `i` leaves through `wait_slow` with deadline `d`; returns whether it was woken.
    fn wait(c: &RawCondvar, reg: &mut Vec<Waiter>, i: usize, d: Deadline) -> Result<bool, TestCaseError> {
        let w = reg.remove(i);
        let got = c.wait_slow(w.ticket, Some(d), true);
        match got {
            Wait::Done(()) => {
                prop_assert!(w.notified_since, "woken without a notification since it registered");
                Ok(true)
            }
            Wait::TimedOut => {
                timed_out_late(d)?;
                Ok(false)
            }
            other => Err(TestCaseError::fail(format!("wait_slow returned {other:?}"))),
        }
    }

    for (step, &op) in ops.iter().enumerate() {
        match op {
            CvOp::Begin => {
                if reg.len() < MAX_WAITERS {
                    let ticket = c.begin_wait();
                    reg.push(Waiter { ticket, notified_since: false });
                }
            }
            CvOp::Signal => notify(&c, &mut reg, &mut granted, false),
            CvOp::Broadcast => notify(&c, &mut reg, &mut granted, true),
            CvOp::Wait(i, d) => {
                if !reg.is_empty() {
                    let i = i % reg.len();
                    woken += u64::from(wait(&c, &mut reg, i, d.at()).map_err(|e| annotate(e, step, op))?);
                }
            }
            CvOp::Abandon(i) => {
                if !reg.is_empty() {
                    let i = i % reg.len();
                    reg.remove(i);
                    c.abandon_wait();
                }
            }
            CvOp::StrayAbandon => {
                if reg.is_empty() {
                    c.abandon_wait();
                }
            }
            CvOp::SignalDrain | CvOp::BroadcastDrain => {
                let all = matches!(op, CvOp::BroadcastDrain);
                let n = reg.len();
                notify(&c, &mut reg, &mut granted, all);
                let mut done = 0;
                while !reg.is_empty() {
                    done += usize::from(wait(&c, &mut reg, 0, Dl::Past.at()).map_err(|e| annotate(e, step, op))?);
                }
                woken += done as u64;
                if liveness {
                    if all {
                        prop_assert_eq!(done, n, "step {}: broadcast woke {} of {} registered waiters", step, done, n);
                    } else if n > 0 {
                        prop_assert!(done >= 1, "step {}: signal woke none of {} registered waiters", step, n);
                    }
                }
            }
        }
        prop_assert_eq!(c.waiters() as usize, reg.len(), "step {}: {:?}", step, op);
        prop_assert!(woken <= granted, "step {}: {} wake-ups for {} granted", step, woken, granted);
    }
    // Everyone left registered gives up: the count is back to 0.
    while reg.pop().is_some() {
        c.abandon_wait();
    }
    prop_assert_eq!(c.waiters(), 0);
    Ok(())
}

fn annotate(e: TestCaseError, step: usize, op: CvOp) -> TestCaseError {
    TestCaseError::fail(format!("step {step}: {op:?}: {e}"))
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn condvar_counts_and_forgotten_signals(ops in prop::collection::vec(cv_op(), 1..64)) {
        run_cv(&ops, false)?;
    }

    /// The POSIX guarantee: a signal wakes at least one thread blocked at the time, a broadcast all of them.
    #[test]
    fn condvar_notify_wakes_registered_waiters(ops in prop::collection::vec(cv_op(), 1..64)) {
        run_cv(&ops, true)?;
    }
}

/// Minimal case of the bug found by `condvar_notify_wakes_registered_waiters`.
///
/// A registers, a signal is owed to A (`pending 1, waiters 1`, `seq` bumped past A's ticket), B registers
/// (its ticket is the new `seq`), then A gives up (`abandon_wait`, e.g. a Ruby interrupt after
/// `Interrupted`): `waiters 1, pending min(1, 1) = 1`. The wake-up is "passed on" to B, but B may only
/// consume one after `seq` moves past its ticket, and `notify` returns early without bumping `seq` while
/// `pending >= waiters`. So every later signal and broadcast is dropped and B sleeps until its deadline
/// (forever without one), although it was waiting when they were sent.
#[test]
fn condvar_abandon_then_broadcast_wakes_late_waiter() {
    let c = RawCondvar::new();
    let _a = c.begin_wait(); // A's ticket: A never calls wait_slow
    c.signal();
    let b = c.begin_wait();
    c.abandon_wait(); // A leaves without consuming (as after Interrupted)
    assert_eq!(c.waiters(), 1);
    c.broadcast(); // B is registered and waiting: it must be woken
    let d = Deadline::after(Duration::from_millis(20));
    assert_eq!(c.wait_slow(b, Some(d), true), Wait::Done(()), "B missed a broadcast sent while it waited");
}

/// The same bug across threads, as the Ruby binding would hit it: B sleeps in `wait_slow`, A's abandoned
/// wake-up is outstanding, and repeated broadcasts do not wake B.
#[test]
fn condvar_abandoned_wakeup_strands_a_sleeping_waiter() {
    let c = std::sync::Arc::new(RawCondvar::new());
    let _a = c.begin_wait();
    c.signal();
    let b = c.begin_wait();
    c.abandon_wait();
    let c2 = c.clone();
    let sleeper = std::thread::spawn(move || {
        let t = Instant::now();
        let got = c2.wait_slow(b, Some(Deadline::after(Duration::from_millis(500))), false);
        (got, t.elapsed())
    });
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(20));
        c.broadcast();
    }
    let (got, took) = sleeper.join().unwrap();
    assert_eq!(got, Wait::Done(()), "ten broadcasts over {took:?} did not wake the only waiter");
}

// ---------------------------------------------------------------------------------------------------------
// Deadline arithmetic against i128 nanoseconds
// ---------------------------------------------------------------------------------------------------------

const NS: i128 = 1_000_000_000;

fn ns(d: Deadline) -> i128 {
    i128::from(d.sec) * NS + i128::from(d.nsec)
}

fn from_ns(t: i128) -> Deadline {
    Deadline { sec: t.div_euclid(NS) as i64, nsec: t.rem_euclid(NS) as i64 }
}

fn deadline() -> impl Strategy<Value = Deadline> {
    let sec = prop_oneof![
        4 => -(1i64 << 40)..(1i64 << 40),
        2 => (i64::MAX - (1 << 32))..=i64::MAX,
        1 => i64::MIN..=(i64::MIN + 4),
        1 => any::<i64>(),
    ];
    let nsec = prop_oneof![Just(0i64), Just(1i64), Just(999_999_999i64), 0..1_000_000_000i64];
    (sec, nsec).prop_map(|(sec, nsec)| Deadline { sec, nsec })
}

fn duration() -> impl Strategy<Value = Duration> {
    let nanos = prop_oneof![Just(0u32), Just(1u32), Just(999_999_999u32), 0..1_000_000_000u32];
    prop_oneof![
        3 => (0..10u64, nanos.clone()).prop_map(|(s, n)| Duration::new(s, n)),
        2 => (0..(1u64 << 31), nanos.clone()).prop_map(|(s, n)| Duration::new(s, n)),
        1 => ((1u64 << 30) - 2..(1u64 << 30) + 2, nanos.clone()).prop_map(|(s, n)| Duration::new(s, n)),
        1 => (any::<u64>(), nanos).prop_map(|(s, n)| Duration::new(s, n)),
        1 => Just(Duration::MAX),
    ]
}

/// Durations whose sum with another one is still below [`Deadline::MAX_TIMEOUT`] (2^30 s).
fn unclamped_duration() -> impl Strategy<Value = Duration> {
    let nanos = prop_oneof![Just(0u32), Just(999_999_999u32), 0..1_000_000_000u32];
    prop_oneof![(0..10u64, nanos.clone()), (0..(1u64 << 29) - 1, nanos)].prop_map(|(s, n)| Duration::new(s, n))
}

fn clamped_ns(d: Duration) -> i128 {
    d.min(Deadline::MAX_TIMEOUT).as_nanos() as i128
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn deadline_plus_is_clamped_saturating_addition(a in deadline(), d in duration(), exact_carry in any::<bool>()) {
        // Half the cases make the nanoseconds add up to exactly one second: the carry boundary.
        let d = if exact_carry && d < Deadline::MAX_TIMEOUT {
            Duration::new(d.as_secs(), ((NS - i128::from(a.nsec)) % NS) as u32)
        } else {
            d
        };
        let got = a.plus(d);
        prop_assert!((0..1_000_000_000).contains(&got.nsec), "nsec out of range: {:?}", got);
        let want = ns(a) + clamped_ns(d);
        if want.div_euclid(NS) <= i128::from(i64::MAX) {
            prop_assert_eq!(got, from_ns(want));
        } else {
            prop_assert_eq!(got.sec, i64::MAX, "{:?} + {:?} must saturate", a, d);
        }
        prop_assert!(got >= a);
    }

    #[test]
    fn deadline_plus_composes(a in deadline(), d1 in unclamped_duration(), d2 in unclamped_duration()) {
        // Both halves and their sum are below MAX_TIMEOUT, so nothing is clamped.
        prop_assume!((ns(a) + clamped_ns(d1 + d2)).div_euclid(NS) <= i128::from(i64::MAX));
        prop_assert_eq!(a.plus(d1).plus(d2), a.plus(d1 + d2));
    }

    #[test]
    fn deadline_order_and_min_match_nanoseconds(a in deadline(), b in deadline(), same_sec in any::<bool>()) {
        let b = if same_sec { Deadline { sec: a.sec, ..b } } else { b };
        prop_assert_eq!(a.cmp(&b), ns(a).cmp(&ns(b)));
        prop_assert_eq!(a == b, ns(a) == ns(b));
        let want = if ns(b) < ns(a) { b } else { a };
        prop_assert_eq!(a.min_opt(Some(b)), want);
        prop_assert_eq!(a.min_opt(None), a);
    }

    #[test]
    fn deadline_remaining_and_after_track_the_clock(a in deadline(), d in duration()) {
        // An arbitrary deadline: remaining() is its distance from some instant between t0 and t1.
        let t0 = Deadline::now();
        let r = a.remaining();
        let expired = a.expired();
        let t1 = Deadline::now();
        let r = r.as_nanos() as i128;
        prop_assert!(r >= (ns(a) - ns(t1)).max(0) && r <= (ns(a) - ns(t0)).max(0), "{:?}.remaining() = {}ns", a, r);
        if ns(a) <= ns(t0) {
            prop_assert!(expired && r == 0);
        }
        if ns(a) > ns(t1) {
            prop_assert!(!expired);
        }
        // after(d) is now + clamp(d); remaining() of it never exceeds the clamped duration.
        let t0 = Deadline::now();
        let at = Deadline::after(d);
        let r = at.remaining().as_nanos() as i128;
        let t1 = Deadline::now();
        let c = clamped_ns(d);
        prop_assert!(ns(at) - c >= ns(t0) && ns(at) - c <= ns(t1), "after({:?}) = {:?}", d, at);
        prop_assert!(r <= c && r >= c - (ns(t1) - ns(t0)), "after({:?}).remaining() = {}ns", d, r);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Liveness of arbitrary owner ids
// ---------------------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(1024))]

    /// Any 64-bit word (garbage in shared memory included) is judged without a panic; ours is alive, and
    /// only an id of our own registry can be called dead.
    #[test]
    fn owner_lookups_never_panic(id in any::<u64>()) {
        use process_shared_core::sys::owner::{current_id, liveness, tag_of, Liveness};
        let l = liveness(id);
        let mine = current_id();
        if id & process_shared_core::sys::owner::ID_MASK == mine {
            prop_assert_eq!(l, Liveness::Alive);
        }
        if l == Liveness::Dead {
            prop_assert_eq!(tag_of(id), tag_of(mine));
        }
        prop_assert_eq!(liveness(mine), Liveness::Alive);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Two processes doing random operations on shared primitives, checked by exact counts
// ---------------------------------------------------------------------------------------------------------

#[repr(C)]
struct Arena {
    lock: RawMutex,
    mon: RawMonitor,
    sem: RawSemaphore,
    /// Each guarded by the primitive of the same position: `lock`, `mon`, `sem` (binary).
    counters: [UnsafeCell<u64>; 3],
    child_tally: [AtomicU64; 3],
    ready: AtomicU32,
    child_panic_len: AtomicU32,
    child_panic: UnsafeCell<[u8; CHILD_PANIC_MAX]>,
}

const CHILD_PANIC_MAX: usize = 1024;

#[derive(Clone, Copy, Debug)]
enum ProcOp {
    Lock {
        add: u8,
        hold: u8,
    },
    TryLock {
        add: u8,
        hold: u8,
    },
    TimedLock {
        add: u8,
        hold: u8,
        dl: Dl,
    },
    Monitor {
        depth: u8,
        add: u8,
        hold: u8,
    },
    Sem {
        add: u8,
        hold: u8,
    },
    /// Unlock and exit with a thread token that never holds anything: always refused.
    Stranger,
}

fn proc_op() -> impl Strategy<Value = ProcOp> {
    let add = 1..=255u8;
    let hold = prop_oneof![3 => Just(0u8), 1 => 0..16u8];
    prop_oneof![
        3 => (add.clone(), hold.clone()).prop_map(|(add, hold)| ProcOp::Lock { add, hold }),
        3 => (add.clone(), hold.clone()).prop_map(|(add, hold)| ProcOp::TryLock { add, hold }),
        2 => (add.clone(), hold.clone(), dl()).prop_map(|(add, hold, dl)| ProcOp::TimedLock { add, hold, dl }),
        2 => (1..=4u8, add.clone(), hold.clone()).prop_map(|(depth, add, hold)| ProcOp::Monitor { depth, add, hold }),
        2 => (add, hold).prop_map(|(add, hold)| ProcOp::Sem { add, hold }),
        1 => Just(ProcOp::Stranger),
    ]
}

/// A deliberately non-atomic read-modify-write with yields in the middle: lost updates show a failure of
/// mutual exclusion.
fn bump(cell: &UnsafeCell<u64>, add: u8, hold: u8) {
    // SAFETY: only called while holding the primitive that guards `cell`.
    unsafe {
        let p = cell.get();
        let v = p.read_volatile();
        for _ in 0..hold {
            std::thread::yield_now();
        }
        p.write_volatile(v + u64::from(add));
    }
}

/// Runs one side's operations; returns how much it added to each counter. Panics on any violation.
fn run_side(a: &Arena, me: Owner, ops: &[ProcOp]) -> [u64; 3] {
    let long = || Some(Deadline::after(Duration::from_secs(10)));
    let mut tally = [0u64; 3];
    let locked = |add: u8, hold: u8, tally: &mut [u64; 3]| {
        assert!(a.lock.is_owned_by(me) && a.lock.owner_pid() == Some(me.pid));
        bump(&a.counters[0], add, hold);
        tally[0] += u64::from(add);
        assert_eq!(a.lock.unlock(me), Ok(()));
        assert!(!a.lock.is_owned_by(me));
    };
    for &op in ops {
        match op {
            ProcOp::Lock { add, hold } => {
                assert_eq!(a.lock.lock(me, long()), Ok(Wait::Done(Acquired::Clean)));
                locked(add, hold, &mut tally);
            }
            ProcOp::TryLock { add, hold } => {
                if a.lock.try_lock(me) {
                    locked(add, hold, &mut tally);
                } else {
                    assert!(!a.lock.is_owned_by(me));
                }
            }
            ProcOp::TimedLock { add, hold, dl } => {
                let d = dl.at();
                match a.lock.lock(me, Some(d)) {
                    Ok(Wait::Done(Acquired::Clean)) => locked(add, hold, &mut tally),
                    Ok(Wait::TimedOut) => assert!(d.expired() && !a.lock.is_owned_by(me)),
                    other => panic!("lock with {dl:?}: {other:?}"),
                }
            }
            ProcOp::Monitor { depth, add, hold } => {
                for i in 0..depth {
                    if a.mon.try_enter(me) != Ok(true) {
                        assert_eq!(i, 0, "re-entry must never block");
                        assert_eq!(a.mon.enter_slow(me, long(), false), Wait::Done(Acquired::Clean));
                    }
                }
                assert_eq!(a.mon.count(), u32::from(depth));
                bump(&a.counters[1], add, hold);
                tally[1] += u64::from(add);
                for _ in 0..depth {
                    assert!(a.mon.is_owned_by(me));
                    assert_eq!(a.mon.exit(me), Ok(()));
                }
                assert!(!a.mon.is_owned_by(me));
            }
            ProcOp::Sem { add, hold } => {
                assert_eq!(a.sem.wait(me, None, long()), Wait::Done(()));
                bump(&a.counters[2], add, hold);
                tally[2] += u64::from(add);
                assert_eq!(a.sem.post(None), Ok(()), "a binary semaphore posted once per wait is never at max");
            }
            ProcOp::Stranger => {
                let stranger = Owner { thread: 0xDEAD, ..me };
                assert_eq!(a.lock.unlock(stranger), Err(MutexError::NotOwner));
                assert_eq!(a.mon.exit(stranger), Err(MonitorError::NotOwner));
            }
        }
    }
    tally
}

proptest! {
    #![proptest_config(ProptestConfig { max_shrink_iters: 64, ..config(32) })]

    #[test]
    fn two_processes_keep_exact_counts(
        parent_ops in prop::collection::vec(proc_op(), 1..200),
        child_ops in prop::collection::vec(proc_op(), 1..200),
    ) {
        let a: SharedBox<Arena> = SharedBox::new();
        a.sem.init(1, 1);
        // Complete the pid cache's one-time setup before forking: a fork overlapping another test thread's
        // first call leaves the child hung or with our pid (`child_forked_during_first_current_pid_...`).
        let _ = me();
        let pid = fork_child(|| {
            a.ready.store(1, Ordering::SeqCst);
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_side(&a, me(), &child_ops))) {
                Ok(t) => {
                    for (slot, v) in a.child_tally.iter().zip(t) {
                        slot.store(v, Ordering::SeqCst);
                    }
                }
                Err(e) => {
                    // The harness's output capture does not reach the parent: pass the message in memory.
                    let msg = e.downcast_ref::<String>().map(String::as_str).or(e.downcast_ref::<&str>().copied());
                    let msg = msg.unwrap_or("(not a string)").as_bytes();
                    let n = msg.len().min(CHILD_PANIC_MAX);
                    // SAFETY: only the child writes the buffer, and the parent reads it after the child exited.
                    unsafe { (&mut *a.child_panic.get())[..n].copy_from_slice(&msg[..n]) };
                    a.child_panic_len.store(n as u32, Ordering::SeqCst);
                    std::panic::resume_unwind(e);
                }
            }
        });
        let t = Instant::now();
        while a.ready.load(Ordering::SeqCst) == 0 && t.elapsed() < Duration::from_secs(10) {
            std::thread::yield_now();
        }
        let parent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_side(&a, me(), &parent_ops)));
        let code = wait_child(pid, Duration::from_secs(60));
        let parent = match parent {
            Ok(t) => t,
            Err(e) => std::panic::resume_unwind(e),
        };
        let n = a.child_panic_len.load(Ordering::SeqCst) as usize;
        // SAFETY: the child has exited; it wrote `n` bytes before.
        let child_panic = String::from_utf8_lossy(unsafe { &(&*a.child_panic.get())[..n] }).into_owned();
        prop_assert_eq!(code, 0, "the child failed: {}", child_panic);
        for (i, ((counter, tally), mine)) in a.counters.iter().zip(&a.child_tally).zip(parent).enumerate() {
            let child = tally.load(Ordering::SeqCst);
            // SAFETY: the child has exited and the parent's operations are done: nobody else touches it.
            let total = unsafe { *counter.get() };
            prop_assert_eq!(total, mine + child, "counter {} (parent {}, child {})", i, mine, child);
        }
        prop_assert!(!a.lock.is_locked() && !a.mon.is_locked());
        prop_assert_eq!(a.mon.count(), 0);
        prop_assert_eq!((a.sem.value(), a.sem.waiters()), (1, 0));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Found while running these tests: a fork racing the first `current_pid` call breaks the child's pid cache
// ---------------------------------------------------------------------------------------------------------

/// Set (to anything) only in the fresh copy of this binary that runs the helper below.
const FRESH_PROCESS: &str = "PROCESS_SHARED_CORE_PROPERTIES_FRESH_PROCESS";

/// `current_pid` installs its `pthread_atfork` reset handler inside a `std::sync::Once` on first use (`ATFORK`
/// in `sys/process.rs`), then fills the cache. A `fork` by another thread that overlaps that first call breaks
/// the promise that the cache "is always the caller's own pid" in the child, in two ways:
///
/// - fork while the other thread is inside `call_once`: the child inherits the `Once` as running, with no
///   thread to finish it, and its own first `current_pid` blocks forever (a private futex wait on `ATFORK`,
///   no timeout). Seen for real: children of `tests/multiprocess.rs` (whose tests fork from parallel harness
///   threads, some before the parent ever called `current_pid`) left hung in
///   `futex(&ATFORK, FUTEX_WAIT_BITSET_PRIVATE, 5, NULL)`, their stdout pipe keeping `cargo test` waiting.
/// - the other thread completes its first call while `fork` runs its prepare handlers: glibc (2.36+, which
///   drops its fork-handler lock while calling handlers) does not run a handler registered during a fork
///   for that fork, so the child keeps the parent's pid and start time in the cache and acts as the parent
///   (same lock-word pid, same `Owner`). This is what the test below reproduces deterministically.
///
/// Made deterministic in a fresh process (where the `Once` has not run yet): a fork prepare handler lets a
/// second thread make its first `current_pid` call while `fork` is under way, and gives it 300 ms.
/// Either way the child fails (wrong pid: exit 1; hang: killed after 3 s).
#[test]
fn child_forked_during_first_current_pid_gets_its_own_pid() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "fresh_process_fork_during_first_current_pid",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(FRESH_PROCESS, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the forked child hung or failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Helper of `child_forked_during_first_current_pid_gets_its_own_pid`; does nothing unless run by it.
#[test]
#[ignore = "helper: only meaningful in a fresh process started by child_forked_during_first_current_pid_gets_its_own_pid"]
fn fresh_process_fork_during_first_current_pid() {
    static PHASE: AtomicU32 = AtomicU32::new(0);
    extern "C" fn prepare() {
        // Runs in the forking thread with glibc's fork-handler lock held: let the racer in, then wait for it
        // to block inside `ATFORK.call_once` (in `pthread_atfork`, on that lock).
        if PHASE.compare_exchange(1, 2, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    if std::env::var_os(FRESH_PROCESS).is_none() {
        return;
    }
    // SAFETY: registering a plain extern "C" fn that only touches an atomic and sleeps.
    assert_eq!(unsafe { libc::pthread_atfork(Some(prepare), None, None) }, 0);
    PHASE.store(1, Ordering::SeqCst);
    let racer = std::thread::spawn(|| {
        while PHASE.load(Ordering::SeqCst) != 2 {
            std::hint::spin_loop();
        }
        current_pid() // the process's first call: ATFORK.call_once runs here
    });
    let child = fork_child(|| {
        let cached = current_pid();
        // SAFETY: getpid has no preconditions.
        let real = unsafe { libc::getpid() } as u32;
        assert_eq!(cached, real, "the child's current_pid() is {cached} (its parent's?), getpid() is {real}");
    });
    let code = wait_child(child, Duration::from_secs(3)); // kills the child and panics if it hangs
    assert_eq!(racer.join().unwrap(), std::process::id());
    assert_eq!(code, 0);
}
