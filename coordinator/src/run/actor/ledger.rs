//! The run's persistence bookkeeping ([`Ledger`]): how many bus messages arrived and how many the
//! bus may acknowledge, which agents' records must be stored again, and what the flush in flight
//! is writing; and the claim on the run's store entry. The flushes that use it are in `persist`;
//! this module knows nothing of the actor, so the actor's struct can hold a [`Ledger`] without a
//! cycle between the two files.

use crate::run::spec::{RunDeps, LEASE};
use crate::store::Claim;
use herd_protocol::{AgentId, RunId};
use std::collections::BTreeSet;

/// The run's persistence bookkeeping.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// Messages received from the bus since the run registered.
    pub(super) delivered: u64,
    /// Messages the bus was told it may acknowledge.
    pub(super) acknowledged: u64,
    /// Agents whose record changed since the last flush.
    pub(super) dirty_agents: BTreeSet<AgentId>,
    /// Seconds and agents being written by the flush in flight (written again by the final flush,
    /// which may cut it short).
    pub(super) in_flight: Option<(Vec<u64>, Vec<AgentId>)>,
    /// Since when the store has been failing, if it is: flushes wait for its backoff.
    pub(super) store_down: Option<StoreDown>,
}

/// A store that failed its last writes: when flushes may try again.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StoreDown {
    /// When the first write of this outage failed (ms since the Unix epoch).
    pub(super) since_ms: u64,
    /// Failed flushes in a row.
    pub(super) failures: u32,
    /// No flush before this instant.
    pub(super) retry_at_ms: u64,
    /// The last error.
    pub(super) error: String,
}

/// The wait after the `failures`-th failed flush in a row: 250 ms, doubling, at most 8 s. A
/// store that is down is not hammered once per tick, and one that is back is used within 8 s.
pub(super) fn store_backoff_ms(failures: u32) -> u64 {
    250u64.saturating_mul(1 << failures.saturating_sub(1).min(5))
}

impl Ledger {
    /// One more message arrived from the bus.
    pub(super) fn delivered(&mut self) {
        self.delivered += 1;
    }

    /// A flush failed with `error` at `now_ms`: back off before the next one.
    pub(super) fn store_failed(&mut self, now_ms: u64, error: String) {
        let (since_ms, failures) = match &self.store_down {
            Some(d) => (d.since_ms, d.failures + 1),
            None => (now_ms, 1),
        };
        self.store_down = Some(StoreDown {
            since_ms,
            failures,
            retry_at_ms: now_ms + store_backoff_ms(failures),
            error,
        });
    }

    /// Whether a flush may write now (the store is up, or its backoff is over).
    pub(super) fn may_flush(&self, now_ms: u64) -> bool {
        self.store_down
            .as_ref()
            .is_none_or(|d| now_ms >= d.retry_at_ms)
    }

    /// An agent's record must be stored again.
    pub(super) fn agent_changed(&mut self, agent: &AgentId) {
        self.dirty_agents.insert(agent.clone());
    }
}

/// Claims a run for this coordinator (at creation, on resume, and to renew the lease).
pub(super) async fn claim(deps: &RunDeps, run: &RunId, now_ms: u64) -> Result<(), String> {
    match deps
        .store
        .claim_run(run, &deps.owner, now_ms, lease_ms())
        .await
    {
        Ok(Claim::Granted) => Ok(()),
        Ok(Claim::HeldBy { owner, until_ms }) => Err(format!(
            "run {run} is held by coordinator {owner} until {until_ms} (ms since the epoch)"
        )),
        Err(e) => Err(format!("cannot claim the run: {e}")),
    }
}

/// The lease, in milliseconds, as the store takes it.
pub(super) fn lease_ms() -> u64 {
    u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_store_is_retried_with_a_doubling_backoff_up_to_8_seconds() {
        let waits: Vec<u64> = (1..=8).map(store_backoff_ms).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        let mut ledger = Ledger::default();
        assert!(ledger.may_flush(0));
        ledger.store_failed(1_000, "down".into());
        ledger.store_failed(1_300, "still down".into());
        let down = ledger.store_down.clone().expect("down");
        assert_eq!(
            (down.since_ms, down.failures, down.retry_at_ms),
            (1_000, 2, 1_800)
        );
        assert!(!ledger.may_flush(1_799));
        assert!(ledger.may_flush(1_800));
    }
}
