//! Retrying `RunTask`: which failures are worth another try, and how long to wait before it.
//!
//! Fargate answers a burst of launches with transient refusals — `failures[]` entries like
//! `RESOURCE:ENI` or "Capacity is unavailable at this time", or a `ThrottlingException` — that
//! clear within seconds, while a bad task definition or a missing cluster never will. Transient
//! ones are retried with exponential backoff and jitter (so ten parallel launches do not retry in
//! step); anything else fails at once, with the API's own words.

use std::future::Future;
use std::time::Duration;

/// Exponential backoff for transient `RunTask` refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The base wait after the first failed attempt; doubled after each further one.
    pub first: Duration,
    /// The base wait never exceeds this.
    pub max: Duration,
    /// Attempts in all before giving up.
    pub attempts: u32,
}

impl Default for Backoff {
    /// Six attempts over at most ~15 s: within the run's 30 s launch deadline.
    fn default() -> Self {
        Self {
            first: Duration::from_millis(500),
            max: Duration::from_secs(8),
            attempts: 6,
        }
    }
}

impl Backoff {
    /// The wait after `failed` (≥ 1) failed attempts: half of the exponential base fixed, the
    /// other half scaled by `random` ("equal jitter").
    pub fn delay(&self, failed: u32, random: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(20);
        let base = self.first.saturating_mul(1 << doublings).min(self.max);
        let half = base / 2;
        half + half.mul_f64(f64::from(random) / f64::from(u32::MAX))
    }
}

/// The outcome of one attempt.
#[derive(Debug)]
pub enum Attempt<T> {
    /// It worked.
    Done(T),
    /// A transient refusal: worth another try.
    Retry(String),
    /// A refusal that another try would not change.
    Fail(String),
}

/// Runs `attempt` until it is done, fails for good, or `backoff.attempts` are used up.
pub async fn with_backoff<T, F, Fut>(backoff: &Backoff, mut attempt: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let mut failed = 0;
    loop {
        match attempt().await {
            Attempt::Done(value) => return Ok(value),
            Attempt::Fail(reason) => return Err(reason),
            Attempt::Retry(reason) => {
                failed += 1;
                if failed >= backoff.attempts {
                    return Err(format!("{reason} (still refused after {failed} attempts)"));
                }
                tracing::debug!(%reason, failed, "RunTask refused for now; retrying");
                tokio::time::sleep(backoff.delay(failed, random())).await;
            }
        }
    }
}

fn random() -> u32 {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 4];
    // Jitter only spreads retries out; without randomness the base delay is still right.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    u32::from_le_bytes(bytes)
}

/// Whether a `failures[]` reason of `RunTask` is transient (capacity, throttling).
pub fn failure_is_transient(reason: &str) -> bool {
    let lower = reason.to_ascii_lowercase();
    reason.starts_with("RESOURCE:")
        || lower.contains("capacity is unavailable")
        || lower.contains("throttl")
        || lower.contains("rate exceeded")
}

/// Whether an ECS error code is transient.
pub fn error_code_is_transient(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "ServerException"
            | "ServiceUnavailable"
            | "InternalFailure"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn delays_double_up_to_the_cap_with_half_of_them_jittered() {
        let b = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_millis(500),
            attempts: 9,
        };
        assert_eq!(b.delay(1, 0), Duration::from_millis(50));
        assert_eq!(b.delay(1, u32::MAX), Duration::from_millis(100));
        assert_eq!(b.delay(2, u32::MAX), Duration::from_millis(200));
        assert_eq!(b.delay(3, 0), Duration::from_millis(200));
        assert_eq!(b.delay(4, u32::MAX), Duration::from_millis(500));
        assert_eq!(b.delay(40, u32::MAX), Duration::from_millis(500));
        let mid = b.delay(2, u32::MAX / 2);
        assert!(mid > Duration::from_millis(100) && mid < Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_refusals_are_retried_until_done() {
        let calls = Cell::new(0);
        let result = with_backoff(&Backoff::default(), || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Attempt::Retry("RESOURCE:ENI".into())
                } else {
                    Attempt::Done(n)
                }
            }
        })
        .await;
        assert_eq!(result, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_end_after_the_last_attempt_with_the_reason() {
        let calls = Cell::new(0);
        let backoff = Backoff {
            attempts: 4,
            ..Backoff::default()
        };
        let result: Result<(), String> = with_backoff(&backoff, || {
            calls.set(calls.get() + 1);
            async { Attempt::Retry("Capacity is unavailable at this time".into()) }
        })
        .await;
        assert_eq!(calls.get(), 4);
        assert_eq!(
            result,
            Err("Capacity is unavailable at this time (still refused after 4 attempts)".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lasting_refusal_fails_at_once() {
        let calls = Cell::new(0);
        let result: Result<(), String> = with_backoff(&Backoff::default(), || {
            calls.set(calls.get() + 1);
            async { Attempt::Fail("ClientException: TaskDefinition not found".into()) }
        })
        .await;
        assert_eq!(calls.get(), 1);
        assert_eq!(
            result,
            Err("ClientException: TaskDefinition not found".into())
        );
    }

    #[test]
    fn capacity_and_throttling_are_transient() {
        for reason in [
            "RESOURCE:ENI",
            "RESOURCE:MEMORY",
            "Capacity is unavailable at this time. Please try again later or in a different availability zone",
            "ThrottlingException: Rate exceeded",
        ] {
            assert!(failure_is_transient(reason), "{reason}");
        }
        for reason in [
            "MISSING",
            "AGENT",
            "ATTRIBUTE",
            "Task definition is inactive",
        ] {
            assert!(!failure_is_transient(reason), "{reason}");
        }
        assert!(error_code_is_transient("ThrottlingException"));
        assert!(error_code_is_transient("ServerException"));
        assert!(!error_code_is_transient("ClientException"));
        assert!(!error_code_is_transient("InvalidParameterException"));
        assert!(!error_code_is_transient("ClusterNotFoundException"));
    }
}
