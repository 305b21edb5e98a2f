//! Each credential's share of writes: a token bucket per credential (a token's id, a JWT's user),
//! `burst` writes at once, refilled at `per_second`. A leaf: the API's state holds one, and the
//! guard asks it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How many writes a credential may make: `burst` at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteRate {
    /// Writes refilled per second.
    pub per_second: f64,
    /// Writes allowed back to back.
    pub burst: u32,
}

impl Default for WriteRate {
    /// 30 writes at once, 5 a second after that: far above what a person or a CI job does, far
    /// below what a runaway script would.
    fn default() -> Self {
        Self {
            per_second: 5.0,
            burst: 30,
        }
    }
}

/// One token bucket per credential.
#[derive(Debug)]
pub struct WriteLimiter {
    /// What each credential is allowed.
    pub rate: WriteRate,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl WriteLimiter {
    /// A limiter allowing `rate` per credential.
    pub fn new(rate: WriteRate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one write for `who` at `now`; when none is left, how long until one is.
    pub fn take(&self, who: &str, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.rate.burst.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, at) = buckets.entry(who.to_string()).or_insert((burst, now));
        let refill = now.saturating_duration_since(*at).as_secs_f64() * self.rate.per_second;
        *tokens = (*tokens + refill).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        if self.rate.per_second <= 0.0 {
            return Err(Duration::from_secs(3600));
        }
        Err(Duration::from_secs_f64(
            (1.0 - *tokens) / self.rate.per_second,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_refused_then_refilled_per_credential() {
        let limiter = WriteLimiter::new(WriteRate {
            per_second: 2.0,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take("tok-a", t0), Ok(()));
        }
        let wait = limiter.take("tok-a", t0).expect_err("over the burst");
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(
            limiter.take("tok-b", t0),
            Ok(()),
            "another credential has its own"
        );
        assert!(limiter
            .take("tok-a", t0 + Duration::from_millis(400))
            .is_err());
        assert_eq!(
            limiter.take("tok-a", t0 + Duration::from_millis(500)),
            Ok(())
        );
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(
                limiter.take("tok-a", later),
                Ok(()),
                "refilled up to the burst"
            );
        }
        assert!(
            limiter.take("tok-a", later).is_err(),
            "never beyond the burst"
        );
    }
}
