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
}

impl Ledger {
    /// One more message arrived from the bus.
    pub(super) fn delivered(&mut self) {
        self.delivered += 1;
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
