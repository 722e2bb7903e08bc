//! Monotonic clock readings and absolute deadlines.
//!
//! Deadlines are absolute `CLOCK_MONOTONIC` times so that a wait restarted after `EINTR` (or after the Ruby
//! layer ran its interrupt checks) keeps its original deadline instead of starting a new timeout.

use std::time::Duration;

/// An absolute point on `CLOCK_MONOTONIC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    /// Whole seconds of the monotonic clock.
    pub sec: i64,
    /// Nanoseconds, always `0..1_000_000_000`.
    pub nsec: i64,
}

impl Deadline {
    /// Longest timeout we represent: about 31 years. Longer ones are clamped (and behave like "forever").
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(1 << 30);

    /// The current monotonic time.
    ///
    /// `clock_gettime(CLOCK_MONOTONIC)` cannot fail on Linux for a valid pointer; if it ever did we return
    /// zero, which makes every deadline look expired rather than infinite (a safe failure).
    #[inline]
    pub fn now() -> Deadline {
        #[cfg(feature = "model")]
        if let Some(v) = crate::sys::model::with(|w| w.now()) {
            return v;
        }
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec and CLOCK_MONOTONIC is always supported on Linux.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        if rc != 0 {
            return Deadline { sec: 0, nsec: 0 };
        }
        Deadline { sec: ts.tv_sec, nsec: ts.tv_nsec }
    }

    /// Monotonic nanoseconds from the coarse clock (`CLOCK_MONOTONIC_COARSE`: a few milliseconds of
    /// resolution, a fraction of the cost; for throttles, never for deadlines). 0 if it cannot be read.
    #[inline]
    pub fn coarse_nanos() -> u64 {
        #[cfg(feature = "model")]
        if let Some(v) = crate::sys::model::with(|w| w.now().as_nanos()) {
            return v;
        }
        #[cfg(target_os = "linux")]
        const COARSE: libc::clockid_t = libc::CLOCK_MONOTONIC_COARSE;
        #[cfg(not(target_os = "linux"))]
        const COARSE: libc::clockid_t = libc::CLOCK_MONOTONIC;
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec; the clock exists on every Linux since 2.6.32.
        if unsafe { libc::clock_gettime(COARSE, &mut ts) } != 0 {
            return 0;
        }
        Deadline { sec: ts.tv_sec, nsec: ts.tv_nsec }.as_nanos()
    }

    /// The deadline `timeout` from now (clamped to [`Deadline::MAX_TIMEOUT`]).
    #[inline]
    pub fn after(timeout: Duration) -> Deadline {
        Deadline::now().plus(timeout.min(Self::MAX_TIMEOUT))
    }

    /// This deadline moved later by `d` (saturating; `d` is clamped to [`Deadline::MAX_TIMEOUT`]).
    pub fn plus(self, d: Duration) -> Deadline {
        let d = d.min(Self::MAX_TIMEOUT);
        let mut sec = self.sec.saturating_add(d.as_secs() as i64);
        let mut nsec = self.nsec + i64::from(d.subsec_nanos());
        if nsec >= 1_000_000_000 {
            nsec -= 1_000_000_000;
            sec = sec.saturating_add(1);
        }
        Deadline { sec, nsec }
    }

    /// Whether the deadline has passed.
    #[inline]
    pub fn expired(&self) -> bool {
        Deadline::now() >= *self
    }

    /// Time left until the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        let now = Deadline::now();
        if now >= *self {
            return Duration::ZERO;
        }
        let mut sec = self.sec - now.sec;
        let mut nsec = self.nsec - now.nsec;
        if nsec < 0 {
            nsec += 1_000_000_000;
            sec -= 1;
        }
        Duration::new(sec as u64, nsec as u32)
    }

    /// The earlier of `self` and `other` (`None` meaning "no deadline").
    pub fn min_opt(self, other: Option<Deadline>) -> Deadline {
        match other {
            Some(o) if o < self => o,
            _ => self,
        }
    }

    /// Nanoseconds on `CLOCK_MONOTONIC` (saturating at 0 for an impossible negative time).
    #[inline]
    pub fn as_nanos(&self) -> u64 {
        (self.sec.max(0) as u64).saturating_mul(1_000_000_000).saturating_add(self.nsec.max(0) as u64)
    }

    #[cfg(not(target_os = "macos"))] // macOS waits take relative timeouts
    pub(crate) fn as_timespec(&self) -> libc::timespec {
        libc::timespec { tv_sec: self.sec, tv_nsec: self.nsec }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_carries_nanoseconds() {
        let d = Deadline { sec: 1, nsec: 999_999_999 }.plus(Duration::from_nanos(2));
        assert_eq!(d, Deadline { sec: 2, nsec: 1 });
    }

    #[test]
    fn remaining_counts_down_and_saturates() {
        let d = Deadline::after(Duration::from_secs(5));
        assert!(d.remaining() <= Duration::from_secs(5));
        assert!(d.remaining() > Duration::from_secs(4));
        assert_eq!(Deadline::now().remaining(), Duration::ZERO);
        assert!(Deadline { sec: 0, nsec: 0 }.expired());
    }

    #[test]
    fn huge_timeouts_are_clamped() {
        let d = Deadline::after(Duration::from_secs(u64::MAX));
        assert!(d.remaining() <= Deadline::MAX_TIMEOUT);
    }
}
