//! Writes at the end of a run that outlast a failing store: each is retried with the flushes'
//! backoff until a deadline ([`Timeouts::store_grace`](crate::run::Timeouts::store_grace)), so a
//! store that is back within the grace loses nothing, and one that never returns fails the run
//! naming it (its summary then goes to a file, see `finalize`). Errors that retrying cannot
//! cure (a conflict, a value the store cannot hold) are given up at once.

use super::ledger::store_backoff_ms;
use crate::store::StoreError;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// Runs `op` until it succeeds, its error is not transient, or the next wait would end after
/// `deadline`; the last error otherwise.
pub(super) async fn until<T, F, Fut>(
    deadline: Instant,
    what: &str,
    mut op: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut failures = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                failures += 1;
                let wait = Duration::from_millis(store_backoff_ms(failures));
                if !transient(&e) || Instant::now() + wait > deadline {
                    return Err(e);
                }
                tracing::warn!(error = %e, failures, "cannot store the {what}; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Whether trying again may succeed: the database or the service failed, not the value.
fn transient(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Sqlite(_)
            | StoreError::Dynamo { .. }
            | StoreError::Task(_)
            | StoreError::Directory { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn down() -> StoreError {
        StoreError::Dynamo {
            op: "PutItem",
            detail: "connection refused".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_back_within_the_grace_takes_the_write() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let got = until(started + Duration::from_secs(30), "second", || {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            async move {
                if n < 3 {
                    Err(down())
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(got.ok(), Some(3));
        // 250 + 500 + 1000 ms of backoff.
        assert_eq!(started.elapsed(), Duration::from_millis(1750));
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_never_returns_gives_its_error_at_the_deadline() {
        let started = Instant::now();
        let got: Result<(), _> = until(started + Duration::from_secs(10), "summary", || async {
            Err(down())
        })
        .await;
        assert!(got.is_err_and(|e| e.to_string().contains("DynamoDB PutItem failed")));
        // 0.25 + 0.5 + 1 + 2 + 4 = 7.75 s; the next wait (8 s) would pass the deadline.
        assert_eq!(started.elapsed(), Duration::from_millis(7750));
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_retrying_cannot_cure_is_given_up_at_once() {
        let calls = AtomicU32::new(0);
        let got: Result<(), _> = until(Instant::now() + Duration::from_secs(30), "state", || {
            calls.fetch_add(1, Ordering::Relaxed);
            async {
                Err(StoreError::Unstorable {
                    what: "second",
                    detail: "too big".into(),
                })
            }
        })
        .await;
        assert!(got.is_err());
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }
}
