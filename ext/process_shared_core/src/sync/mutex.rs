//! A process-shared mutex whose lock word names the owning process: the one owner-tracked lock word of
//! the crate (Monitor, ReadWriteLock, Queue and ConditionVariable build on it).
//!
//! Layout (`#[repr(C)]`, 24 bytes, valid when zeroed):
//!
//! | field          | written by              | meaning                                                     |
//! |----------------|-------------------------|-------------------------------------------------------------|
//! | `word: u64`    | everyone (CAS/swap)     | the lock word, see the state table below                    |
//! | `seq: u32`     | unlockers that saw `WAITERS` | the futex word sleepers park on (bumped before a wake)  |
//! | `pid: u32`     | the owner only          | owner's pid as it sees itself, for messages (0: unknown)    |
//! | `thread: u64`  | the owner only          | owner's thread token mixed with its id, 0 while nobody owns it |
//!
//! States of `word` (the owner's [owner id](crate::sys::owner) in the low 62 bits):
//!
//! | value                    | meaning                                                             |
//! |--------------------------|---------------------------------------------------------------------|
//! | `0`                      | unlocked                                                            |
//! | `id`                     | locked by a thread of the process `id`; nobody is parked            |
//! | `id \| WAITERS`          | locked; someone may be parked on `seq`, so `unlock` must wake one    |
//! | `id \| OWNER_DIED \| WAITERS` | its owning thread ended holding it (marked by its own process), or a taker gave it back unused: the next acquirer takes it over at once |
//!
//! | transition            | how                                                      | who             |
//! |-----------------------|----------------------------------------------------------|-----------------|
//! | lock (fast)           | CAS `0 → id`                                             | anyone          |
//! | lock (slow)           | CAS `0 → id\|WAITERS`; else CAS `w → w\|WAITERS`, park on `seq` | waiters   |
//! | unlock                | swap `→ 0`; if `WAITERS` was set: `seq += 1`, wake one  | the owner       |
//! | take-over             | CAS `w → id\|WAITERS` from the very word judged dead     | any other process |
//! | thread ended          | `fetch_or(OWNER_DIED\|WAITERS)`, wake one                | the owner's process |
//!
//! The owner's identity is in the word itself, set by the same CAS that takes the lock, so a holder that
//! dies at any instant is identifiable from the word alone, and taking a dead owner's lock over is one CAS
//! on one word: of several processes that judge the same owner dead exactly one wins, and none can take a
//! lock that changed hands after it looked (the id of a live process is never that of the dead one).
//! `thread` tells threads of the owning process apart; it is cleared before the word is released.
//!
//! Owner death: a waiter checks, every [`SLICE`](super::SLICE) of waiting, whether the owning process has
//! ended ([`owner_dead`](super::owner_dead): the kernel has dropped its registry lock; "cannot tell" is
//! alive). A failed `try_recover` checks at first sight of a word and then at most every
//! [`RECHECK`](suspects::RECHECK) while the same word persists, so a failed contended `try_lock` is cheap.
//! A waiter never decides this about its own process: when a *thread* ends holding a lock, its own
//! process marks the word `OWNER_DIED` ([`RawMutex::mark_owner_died`]) and wakes a waiter.

use crate::sys::atomic::{AtomicU32, AtomicU64};
use std::sync::atomic::Ordering;

use super::{owner_dead, wait_loop, Look, Owner, Step, Wait};
use crate::sys::owner::ID_MASK;
use crate::sys::{futex_wake, Deadline};

/// The owner-id bits of the lock word.
pub const OWNER_MASK: u64 = ID_MASK;
/// Set by the owner's process when the owning thread ended holding the lock (or by a taker giving it back).
pub const OWNER_DIED: u64 = 1 << 62;
/// Set when a thread may be parked on `seq`: the unlocker must wake one.
pub const WAITERS: u64 = 1 << 63;

/// How a lock was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// From an unlocked state: the protected data is as the last owner left it.
    Clean,
    /// Taken over from an owner that died holding it (its pid as it saw itself, 0 if unknown): the data
    /// may be half-updated.
    OwnerDied(u32),
}

/// Misuse of a mutex by a thread that does not hold it, or holds it already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MutexError {
    /// `unlock` by a thread that does not hold the lock.
    NotOwner,
    /// `lock` by the thread that already holds it (it is not re-entrant).
    AlreadyOwned,
}

/// See the module documentation for the layout and the state table.
#[repr(C)]
#[derive(Debug, Default)]
pub struct RawMutex {
    word: AtomicU64,
    seq: AtomicU32,
    pid: AtomicU32,
    thread: AtomicU64,
}

impl RawMutex {
    /// An unlocked mutex (all zero bytes, as in a fresh mapping).
    pub const fn new() -> RawMutex {
        RawMutex { word: AtomicU64::new(0), seq: AtomicU32::new(0), pid: AtomicU32::new(0), thread: AtomicU64::new(0) }
    }

    /// Take the lock if it is free. Never sleeps. Returns false if anyone (including `me`) holds it.
    #[inline]
    pub fn try_lock(&self, me: Owner) -> bool {
        debug_assert!(me.id != 0 && me.id & !OWNER_MASK == 0);
        // Acquire: pairs with the Release in `unlock`, so the previous holder's writes are visible to us.
        if self.word.compare_exchange(0, me.id, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            self.set_owner(me);
            true
        } else {
            false
        }
    }

    /// The one non-sleeping acquisition every caller starts with: take the lock if it is free, or take it
    /// over from an owner that is provably dead ([`RawMutex::try_recover`]'s throttle applies). `None`: a
    /// live owner (possibly `me`) holds it; go on with [`RawMutex::lock_slow`] or report "would block".
    #[inline]
    pub fn try_acquire(&self, me: Owner) -> Option<Acquired> {
        if self.try_lock(me) {
            return Some(Acquired::Clean);
        }
        self.try_recover(me).map(Acquired::OwnerDied)
    }

    /// Block until the lock is taken, `deadline` passes, or (if `interruptible`) a signal arrives.
    ///
    /// Call after [`RawMutex::try_lock`] failed and after checking that `me` does not already hold it (that
    /// would wait forever). Spins while the holder runs and nobody is parked, then parks on `seq` with
    /// `WAITERS` set, checking every [`SLICE`](super::SLICE) whether the owning process died. On any
    /// outcome but `Done` nothing was changed except possibly a `WAITERS` bit, which only costs one wake.
    #[cold]
    pub fn lock_slow(&self, me: Owner, deadline: Option<Deadline>, interruptible: bool) -> Wait<Acquired> {
        wait_loop(&self.seq, deadline, interruptible, |look: Look| {
            // Relaxed: a snapshot; every decision below is a CAS from it.
            let w = self.word.load(Ordering::Relaxed);
            if w == 0 {
                // Spinning: take it as uncontended. After a park we cannot know whether others are parked,
                // so take it as contended (like std's state 2): our unlock then wakes the next sleeper.
                let new = if look.may_spin { me.id } else { me.id | WAITERS };
                return if self.cas_take(0, new, me) { Step::Done(Acquired::Clean) } else { Step::Again };
            }
            if w & OWNER_DIED != 0 || look.check_holders {
                if let Some(pid) = self.recover_from(w, me) {
                    return Step::Done(Acquired::OwnerDied(pid));
                }
            }
            if look.may_spin && w & WAITERS == 0 {
                return Step::Spin; // the holder runs and nobody is parked yet: it may let go soon
            }
            // Relaxed: the bit only has to be set atomically; the SeqCst loads below order the park.
            if w & WAITERS == 0
                && self.word.compare_exchange(w, w | WAITERS, Ordering::Relaxed, Ordering::Relaxed).is_err()
            {
                return Step::Again;
            }
            // SeqCst (both loads, and the unlocker's swap and increment): if our look at `word` still sees
            // the holder, our read of `seq` precedes its increment, so the futex call sees the new value
            // and does not sleep, or is woken by it.
            let seq = self.seq.load(Ordering::SeqCst);
            if self.word.load(Ordering::SeqCst) != w | WAITERS {
                return Step::Again;
            }
            Step::Park(seq)
        })
    }

    /// After `try_lock` failed: if the lock's owner is another process that has died (or its thread ended:
    /// `OWNER_DIED`), take the lock over and return the dead owner's pid. Never sleeps; asks the kernel
    /// about the owner at first sight of a lock word and then at most every [`suspects::RECHECK`] while
    /// the same word persists.
    #[cold]
    pub fn try_recover(&self, me: Owner) -> Option<u32> {
        let w = self.word.load(Ordering::Relaxed);
        if w == 0 {
            return None;
        }
        if w & OWNER_DIED == 0 && !suspects::due(self as *const RawMutex as usize, w) {
            return None;
        }
        self.recover_from(w, me)
    }

    /// If the owner named by the observed word `w` is dead (or marked so), replace exactly that word with
    /// ours (one CAS, so one taker, and never a lock that changed hands since) and return the dead pid.
    fn recover_from(&self, w: u64, me: Owner) -> Option<u32> {
        let id = w & OWNER_MASK;
        if id == 0 || (w & OWNER_DIED == 0 && (id == me.id || !owner_dead(id))) {
            return None;
        }
        // Relaxed: a hint for the message; the owner wrote it after its CAS (0 if it died before).
        let pid = self.pid.load(Ordering::Relaxed);
        self.cas_take(w, me.id | WAITERS, me).then_some(pid)
    }

    /// CAS the word from `from` to `to` (our id, with or without `WAITERS`) and record ownership.
    #[inline]
    fn cas_take(&self, from: u64, to: u64, me: Owner) -> bool {
        // Acquire: pairs with the Release in `unlock` (or the dead owner's last writes, as far as they went).
        if self.word.compare_exchange(from, to, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            self.set_owner(me);
            true
        } else {
            false
        }
    }

    /// For the owning process, when the owning *thread* `owner` ended while holding the lock: mark the word
    /// `OWNER_DIED` (keeping the pid, for the error message) and wake one sleeper, so that the next acquirer,
    /// in any process, takes it over with [`Acquired::OwnerDied`]. Does nothing unless `owner` holds it.
    pub fn mark_owner_died(&self, owner: Owner) -> bool {
        if !self.is_owned_by(owner) {
            return false;
        }
        // Relaxed: no longer owned by any live thread; the RMW below publishes it.
        self.thread.store(0, Ordering::Relaxed);
        // Release: the dead thread's writes are visible to whoever takes the lock over (Acquire CAS).
        let old = self.word.fetch_or(OWNER_DIED | WAITERS, Ordering::Release);
        if old & WAITERS != 0 {
            self.wake_one();
        }
        true
    }

    /// Give back a lock that `me` took over from a dead owner (pid `dead`, an [`Acquired::OwnerDied`])
    /// before using it, e.g. because the taking call was interrupted: it is left marked `OWNER_DIED` with
    /// `dead`'s pid, so the next acquirer takes it over and learns what the taker would have.
    pub fn give_back_owner_died(&self, me: Owner, dead: u32) -> Result<(), MutexError> {
        if !self.is_owned_by(me) {
            return Err(MutexError::NotOwner);
        }
        // Relaxed: as in `unlock`, published by the RMW below.
        self.thread.store(0, Ordering::Relaxed);
        self.pid.store(dead, Ordering::Relaxed);
        // Release: whoever takes it over next (Acquire CAS) sees the state as we found it.
        let old = self.word.fetch_or(OWNER_DIED | WAITERS, Ordering::Release);
        if old & WAITERS != 0 {
            self.wake_one();
        }
        Ok(())
    }

    /// Give back what an acquisition returned, unused (the taking call was interrupted or timed out later):
    /// a clean one is unlocked; one taken over from a dead owner stays marked `OWNER_DIED`, so the next
    /// acquirer still learns that the data may be half-updated.
    pub fn give_back(&self, me: Owner, acquired: Acquired) -> Result<(), MutexError> {
        match acquired {
            Acquired::Clean => self.unlock(me),
            Acquired::OwnerDied(pid) => self.give_back_owner_died(me, pid),
        }
    }

    /// Release the lock held by `me`, waking one sleeper if there may be any.
    #[inline]
    pub fn unlock(&self, me: Owner) -> Result<(), MutexError> {
        if !self.is_owned_by(me) {
            return Err(MutexError::NotOwner);
        }
        // Relaxed: ordered before the release below, which publishes them with the rest of our writes.
        self.thread.store(0, Ordering::Relaxed);
        self.pid.store(0, Ordering::Relaxed);
        // Release (SeqCst for the parking protocol, see `lock_slow`): publishes the critical section to
        // the next acquirer (its Acquire CAS).
        let old = self.word.swap(0, Ordering::SeqCst);
        if old & WAITERS != 0 {
            self.wake_one();
        }
        Ok(())
    }

    #[cold]
    fn wake_one(&self) {
        // SeqCst: after the word changed, before the wake (see `lock_slow`).
        self.seq.fetch_add(1, Ordering::SeqCst);
        futex_wake(&self.seq, 1);
    }

    #[inline]
    fn set_owner(&self, me: Owner) {
        // Relaxed: read back by `me` itself (program order) or by threads of our process that, by coherence,
        // can only see 0 (cleared before release) or this token, never their own stale one.
        self.thread.store(thread_token(me), Ordering::Relaxed);
        self.pid.store(me.pid, Ordering::Relaxed);
    }

    /// Whether any thread of any process holds the lock.
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) & OWNER_MASK != 0
    }

    /// Whether `me` (that exact process and thread) holds the lock.
    ///
    /// The word and the token are two loads: between them the lock can change hands. A word marked
    /// `OWNER_DIED` is held by no live thread even when it still carries our id (we gave it back, or our
    /// thread ended), and the token is mixed with the process's id, so another process's owner that took
    /// the lock over meanwhile never writes a token that looks like ours (thread tokens of forked processes
    /// are often equal). Found by the model checker (tests/model.rs, `rwlock_with_an_unsure_oracle`).
    #[inline]
    pub fn is_owned_by(&self, me: Owner) -> bool {
        // Relaxed: if the id bits are ours, a thread of our process wrote them, and the token check
        // distinguishes which (see `set_owner`).
        self.word.load(Ordering::Relaxed) & (OWNER_MASK | OWNER_DIED) == me.id
            && self.thread.load(Ordering::Relaxed) == thread_token(me)
    }

    /// Whether a thread of the process with owner id `id` holds the lock.
    #[inline]
    pub fn is_held_by_process(&self, id: u64) -> bool {
        self.word.load(Ordering::Relaxed) & OWNER_MASK == id
    }

    /// The owner id of the process holding the lock, if it is held (for its liveness: see
    /// [`crate::sys::owner::liveness`]).
    pub fn owner_id(&self) -> Option<u64> {
        // Relaxed: a snapshot.
        Some(self.word.load(Ordering::Relaxed) & OWNER_MASK).filter(|&id| id != 0)
    }

    /// The pid of the process holding the lock, as it sees itself, if the lock is held (0 while unknown).
    pub fn owner_pid(&self) -> Option<u32> {
        self.is_locked().then(|| self.pid.load(Ordering::Relaxed))
    }

    /// If the lock is marked `OWNER_DIED` (its owner died and nobody has taken it over yet): that owner's pid.
    #[inline]
    pub fn died_owner(&self) -> Option<u32> {
        let w = self.word.load(Ordering::Relaxed);
        (w & OWNER_DIED != 0).then(|| self.pid.load(Ordering::Relaxed))
    }

    /// Whether a thread may be asleep waiting for the lock (a hint, for `inspect`).
    pub fn has_waiters(&self) -> bool {
        self.word.load(Ordering::Relaxed) & WAITERS != 0
    }

    /// Take the lock, retrying through signals: for Rust callers without an interrupt mechanism.
    pub fn lock(&self, me: Owner, deadline: Option<Deadline>) -> Result<Wait<Acquired>, MutexError> {
        if self.is_owned_by(me) {
            return Err(MutexError::AlreadyOwned);
        }
        match self.try_acquire(me) {
            Some(a) => Ok(Wait::Done(a)),
            None => Ok(self.lock_slow(me, deadline, false)),
        }
    }
}

/// What the `thread` field holds for owner `me`: its thread token mixed with its process's id, so that the
/// tokens of two processes' threads differ even when the threads' own tokens are equal (see
/// [`RawMutex::is_owned_by`]). Never 0 (the "nobody" value), and one-to-one over the non-zero tokens of one
/// process: `thread ^ mix` is 0 only for `thread == mix`, which gets `mix`, the value of the invalid token 0.
#[inline]
fn thread_token(me: Owner) -> u64 {
    // An odd multiplier: non-zero for every non-zero id.
    let mix = me.id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    match me.thread ^ mix {
        0 => mix,
        t => t,
    }
}

/// A process-local memory of lock words that failed a `try_recover`, so that a loop of failed `try_lock`s
/// asks the kernel about the owner once per [`RECHECK`], not every time. Entries are hints: a lost or torn
/// update only causes one extra or one later check (the take-over itself is always a CAS from the word).
pub mod suspects {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use crate::sys::Deadline;

    /// How long a lock word that belongs to a live owner is believed before asking again.
    pub const RECHECK: std::time::Duration = std::time::Duration::from_millis(100);
    const ENTRIES: usize = 64;

    struct Entry {
        addr: AtomicUsize,
        word: AtomicU64,
        next: AtomicU64,
    }

    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Entry = Entry { addr: AtomicUsize::new(0), word: AtomicU64::new(0), next: AtomicU64::new(0) };
    static TABLE: [Entry; ENTRIES] = [EMPTY; ENTRIES];

    /// Whether the lock at `addr`, seen holding `word`, should be checked now: at first sight of this word
    /// there, and then once every [`RECHECK`].
    #[inline]
    pub fn due(addr: usize, word: u64) -> bool {
        let e = &TABLE[(addr >> 3).wrapping_mul(0x9e37_79b9) % ENTRIES];
        let now = Deadline::coarse_nanos();
        // Relaxed (all): process-local hints, see the module documentation.
        let seen = e.addr.load(Ordering::Relaxed) == addr && e.word.load(Ordering::Relaxed) == word;
        if seen && now < e.next.load(Ordering::Relaxed) {
            return false;
        }
        e.addr.store(addr, Ordering::Relaxed);
        e.word.store(word, Ordering::Relaxed);
        e.next.store(now + RECHECK.as_nanos() as u64, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(thread: u64) -> Owner {
        Owner::current(thread)
    }

    /// The race an independent review found in the old two-word recovery: the owner's identity was cleared
    /// in one word before the CAS on the other, so a recoverer that lost the CAS stranded the lock. With the
    /// identity in the lock word a lost CAS changes nothing, and a lock that changed hands is never taken.
    #[test]
    fn a_recoverer_that_loses_the_race_changes_nothing() {
        let m = RawMutex::new();
        let dead = (crate::sys::owner::current_id() & !0xffff_ffff) | 0x7fff_fff1; // a free registry byte
        m.word.store(dead, Ordering::Relaxed);
        let a = me(1);
        let b = Owner { id: a.id ^ 0x2, thread: 2, pid: 1 }; // stands for another process
        let seen = m.word.load(Ordering::Relaxed);
        assert_eq!(m.recover_from(seen, a), Some(0));
        assert_eq!(m.recover_from(seen, b), None, "the second recoverer must lose");
        assert!(m.is_owned_by(a));
        m.unlock(a).unwrap();
        assert!(m.try_lock(b));
    }

    #[test]
    fn a_live_owner_is_never_taken_over() {
        let m = RawMutex::new();
        let a = me(1);
        assert!(m.try_lock(a));
        let thief = Owner { id: a.id ^ 0x4, thread: 9, pid: 2 };
        assert_eq!(m.try_recover(thief), None);
        assert_eq!(m.recover_from(m.word.load(Ordering::Relaxed), thief), None);
        assert!(m.is_owned_by(a));
    }
}
