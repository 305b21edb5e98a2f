//! Wall-clock time that never goes backwards: the one clock of agents and coordinator.
//!
//! Frames are aligned to Unix seconds and the start time is an absolute Unix time, so both sides
//! need the wall clock (the agent in microseconds, the coordinator in milliseconds); but the wall clock can be stepped (NTP) in the middle of a run, which
//! would put requests into the wrong second or out of order. So the wall clock is read exactly
//! once, together with a monotonic [`Instant`], and every later "what time is it" is that anchor
//! plus monotonic elapsed time. Using tokio's `Instant` makes the same code testable under
//! `tokio::time::pause()`.
//!
//! Behind the `runtime` feature (it reads the system clock and needs tokio's time).

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Microseconds in a second.
pub const US_PER_SEC: u64 = 1_000_000;

/// A (monotonic instant, Unix time) anchor pair; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant: Instant,
    unix_us: u64,
}

impl Clock {
    /// Anchors the clock now.
    pub fn new() -> Self {
        let unix_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        Self::with_anchor(Instant::now(), unix_us)
    }

    /// A clock for which `instant` is `unix_us` microseconds after the Unix epoch.
    pub fn with_anchor(instant: Instant, unix_us: u64) -> Self {
        Self { instant, unix_us }
    }

    /// Unix time of `at`, in microseconds.
    pub fn unix_us_at(&self, at: Instant) -> u64 {
        if at >= self.instant {
            self.unix_us
                .saturating_add(micros(at.duration_since(self.instant)))
        } else {
            self.unix_us
                .saturating_sub(micros(self.instant.duration_since(at)))
        }
    }

    /// Unix time now, in microseconds.
    pub fn now_us(&self) -> u64 {
        self.unix_us_at(Instant::now())
    }

    /// Unix time now, in milliseconds.
    pub fn unix_ms(&self) -> u64 {
        self.now_us() / 1000
    }

    /// The instant at which the Unix time is `unix_us`.
    pub fn instant_at_us(&self, unix_us: u64) -> Instant {
        if unix_us >= self.unix_us {
            self.instant + Duration::from_micros(unix_us - self.unix_us)
        } else {
            let back = Duration::from_micros(self.unix_us - unix_us);
            self.instant.checked_sub(back).unwrap_or(self.instant)
        }
    }

    /// The instant at which the Unix time is `unix_ms` milliseconds.
    pub fn instant_at_ms(&self, unix_ms: u64) -> Instant {
        self.instant_at_us(unix_ms.saturating_mul(1000))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// A duration in whole microseconds, saturating.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn time_math_is_anchored_and_monotonic() {
        let clock = Clock::with_anchor(Instant::now(), 1_000 * US_PER_SEC + 250_000);
        assert_eq!(clock.now_us(), 1_000_250_000);
        tokio::time::advance(Duration::from_millis(750)).await;
        assert_eq!(clock.now_us(), 1_001_000_000);
        let at = clock.instant_at_ms(1_002_000);
        assert_eq!(clock.unix_us_at(at), 1_002_000_000);
        assert_eq!(at - Instant::now(), Duration::from_secs(1));
    }
}
