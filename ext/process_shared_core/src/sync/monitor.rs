//! A re-entrant process-shared lock: a [`RawMutex`] plus a hold count that only the owner touches.
//!
//! Layout (`#[repr(C)]`, 24 bytes): `mutex`, `count` (how many times the owner entered; 0 when free).

use crate::sys::atomic::AtomicU32;
use std::sync::atomic::Ordering;

use super::{Acquired, MutexError, Owner, RawMutex, Wait};
use crate::sys::Deadline;

/// Misuse of a monitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorError {
    /// `exit` by a thread that does not hold the monitor.
    NotOwner,
    /// Entered more than `u32::MAX` times.
    TooDeep,
}

/// See the module documentation.
#[repr(C)]
#[derive(Debug, Default)]
pub struct RawMonitor {
    mutex: RawMutex,
    count: AtomicU32,
    _reserved: u32,
}

impl RawMonitor {
    /// A free monitor (all zero bytes).
    pub const fn new() -> RawMonitor {
        RawMonitor { mutex: RawMutex::new(), count: AtomicU32::new(0), _reserved: 0 }
    }

    /// Enter without sleeping: true if `me` now holds it (again, if it already did).
    #[inline]
    pub fn try_enter(&self, me: Owner) -> Result<bool, MonitorError> {
        if self.mutex.is_owned_by(me) {
            // Relaxed: only the owner reads or writes `count` while it holds the mutex.
            let c = self.count.load(Ordering::Relaxed);
            let c = c.checked_add(1).ok_or(MonitorError::TooDeep)?;
            self.count.store(c, Ordering::Relaxed);
            return Ok(true);
        }
        if self.mutex.try_lock(me) {
            self.count.store(1, Ordering::Relaxed);
            return Ok(true);
        }
        Ok(false)
    }

    /// The one non-sleeping entry every caller starts with: [`RawMonitor::try_enter`], else take it over
    /// from a dead owner ([`RawMonitor::try_recover`]). `Ok(None)`: a live owner holds it.
    #[inline]
    pub fn try_acquire(&self, me: Owner) -> Result<Option<Acquired>, MonitorError> {
        if self.try_enter(me)? {
            return Ok(Some(Acquired::Clean));
        }
        Ok(self.try_recover(me).map(Acquired::OwnerDied))
    }

    /// Sleep until entered (call after [`RawMonitor::try_enter`] returned false). Taking it over from a
    /// dead owner resets the count to 1.
    #[cold]
    pub fn enter_slow(&self, me: Owner, deadline: Option<Deadline>, interruptible: bool) -> Wait<Acquired> {
        let out = self.mutex.lock_slow(me, deadline, interruptible);
        if let Wait::Done(_) = out {
            self.count.store(1, Ordering::Relaxed);
        }
        out
    }

    /// After `try_enter` returned false: take the monitor over if its owner process died (count 1).
    #[cold]
    pub fn try_recover(&self, me: Owner) -> Option<u32> {
        let pid = self.mutex.try_recover(me)?;
        self.count.store(1, Ordering::Relaxed);
        Some(pid)
    }

    /// Leave once; the lock is released when the count reaches zero.
    #[inline]
    pub fn exit(&self, me: Owner) -> Result<(), MonitorError> {
        if !self.mutex.is_owned_by(me) {
            return Err(MonitorError::NotOwner);
        }
        let c = self.count.load(Ordering::Relaxed);
        if c > 1 {
            self.count.store(c - 1, Ordering::Relaxed);
            return Ok(());
        }
        self.count.store(0, Ordering::Relaxed);
        self.mutex.unlock(me).map_err(|_| MonitorError::NotOwner)
    }

    /// Leave completely (for a condition wait); returns the count to hand back to [`RawMonitor::restore`].
    pub fn release_all(&self, me: Owner) -> Result<u32, MonitorError> {
        if !self.mutex.is_owned_by(me) {
            return Err(MonitorError::NotOwner);
        }
        let c = self.count.swap(0, Ordering::Relaxed).max(1);
        self.mutex.unlock(me).map_err(|_| MonitorError::NotOwner)?;
        Ok(c)
    }

    /// After re-taking the lock (via [`RawMonitor::mutex`]), restore the count saved by `release_all`.
    pub fn restore(&self, count: u32) {
        self.count.store(count, Ordering::Relaxed);
    }

    /// The underlying mutex (for condition variables).
    pub fn mutex(&self) -> &RawMutex {
        &self.mutex
    }

    /// Whether anyone holds it.
    pub fn is_locked(&self) -> bool {
        self.mutex.is_locked()
    }

    /// Whether `me` holds it.
    #[inline]
    pub fn is_owned_by(&self, me: Owner) -> bool {
        self.mutex.is_owned_by(me)
    }

    /// The owner's hold count (0 when free; meaningful to the owner).
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }
}

impl From<MutexError> for MonitorError {
    fn from(_: MutexError) -> Self {
        MonitorError::NotOwner
    }
}
