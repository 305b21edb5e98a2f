//! Storing what the run learns as it goes, and acknowledging agents' messages only once stored.
//!
//! Every message from the bus is counted as it arrives. A *flush* writes what changed since the
//! last one — the aggregator's dirty seconds with their merge state, and the records of agents
//! whose status changed — and, once every write succeeded, tells the bus that the first `n`
//! messages (all those that had arrived when the flush began) took effect, so it may acknowledge
//! them. One flush runs at a time; messages that arrive meanwhile are covered by the next one,
//! which starts as soon as the previous one is done, so writes batch themselves under load. A
//! failed write leaves its second or agent dirty and acknowledges nothing; the flushes after it
//! wait a doubling backoff (250 ms up to 8 s, [`store_backoff_ms`](super::ledger::store_backoff_ms))
//! while aggregation goes on in memory, so nothing is lost once the store is back. The final
//! writes retry until [`Timeouts::store_grace`](crate::run::Timeouts::store_grace) (see `finalize`).
//!
//! The run also owns its store entry through a lease ([`crate::store::Store::claim_run`]),
//! renewed every [`LEASE`](crate::run::LEASE)`/3`: if another coordinator ever holds it, this actor stops driving
//! the run at once, without writing anything more.

use super::ledger::lease_ms;
use super::machine::RunActor;
use super::retry;
use super::stage::Stage;
use crate::store::{Claim, SecondRecord};
use actix::prelude::*;
use herd_protocol::AgentId;

impl RunActor {
    /// Writes what changed, then lets the bus acknowledge what that covered (see the module docs).
    pub(super) fn flush(&mut self, ctx: &mut Context<Self>) {
        // Once the run is over, its last writes belong to `final_writes`.
        if self.ledger.in_flight.is_some()
            || self.phase().is_over()
            || !self.ledger.may_flush(self.clock.unix_ms())
        {
            return;
        }
        let dirty = self.aggregator.take_dirty();
        let agents: Vec<AgentId> = std::mem::take(&mut self.ledger.dirty_agents)
            .into_iter()
            .collect();
        let upto = self.ledger.delivered;
        if dirty.is_empty() && agents.is_empty() {
            self.acknowledge(upto);
            return;
        }
        let mut seconds = Vec::with_capacity(dirty.len());
        // The summary rows this flush writes, by version: once written, those that cannot change
        // any more leave memory (see `seconds`).
        let mut rows = Vec::new();
        for d in dirty {
            if d.emitted {
                // A late frame changed an emitted second: the run's view of it changes too.
                let summary = d.aggregate.to_summary();
                let t = summary.t;
                rows.push((
                    d.aggregate.second,
                    t,
                    self.seconds.put(d.aggregate.second, summary),
                ));
            }
            seconds.push((
                d.aggregate.second,
                SecondRecord::from_aggregate(&d.aggregate, Some(d.checkpoint)),
            ));
        }
        let records: Vec<_> = agents
            .iter()
            .filter_map(|id| self.agents.0.get(id).map(|a| a.record(id)))
            .collect();
        self.aggregator.hold(seconds.iter().map(|(s, _)| *s));
        self.ledger.in_flight = Some((seconds.iter().map(|(s, _)| *s).collect(), agents));
        tracing::debug!(run = %self.spec.run, seconds = seconds.len(), agents = records.len(), messages = upto, "flush");
        let store = self.deps.store.clone();
        let run = self.spec.run.clone();
        let work = async move {
            let mut failed = (Vec::new(), Vec::new(), None);
            for (second, record) in seconds {
                if let Err(e) = store.put_second(&run, record).await {
                    tracing::warn!(%run, second, error = %e, "cannot store a second");
                    failed.0.push(second);
                    failed.2 = Some(e.to_string());
                }
            }
            for record in records {
                let agent = record.agent.clone();
                if let Err(e) = store.put_agent(&run, record).await {
                    tracing::warn!(%run, %agent, error = %e, "cannot store an agent's record");
                    failed.1.push(agent);
                    failed.2 = Some(e.to_string());
                }
            }
            failed
        };
        ctx.spawn(
            work.into_actor(self)
                .map(move |(seconds, agents, error), act, ctx| {
                    act.ledger.in_flight = None;
                    act.aggregator.release();
                    for (second, t, version) in rows {
                        if !seconds.contains(&second) {
                            act.seconds.stored(t, version);
                        }
                    }
                    if let Some(settled) = act.aggregator.settled_before() {
                        act.seconds.forget_settled(settled);
                    }
                    let now = act.clock.unix_ms();
                    if let Some(error) = error {
                        act.ledger.store_failed(now, error);
                    } else if let Some(down) = act.ledger.store_down.take() {
                        // A warning, as the outage's warnings were: whoever saw those sees this.
                        tracing::warn!(run = %act.spec.run, after_ms = now.saturating_sub(down.since_ms), failures = down.failures, "the store is back; every pending write is done");
                    }
                    if seconds.is_empty() && agents.is_empty() {
                        act.acknowledge(upto);
                        if act.ledger.delivered > upto || !act.ledger.dirty_agents.is_empty() {
                            act.flush(ctx);
                        }
                    } else {
                        for second in seconds {
                            act.aggregator.mark_dirty(second);
                        }
                        act.ledger.dirty_agents.extend(agents);
                    }
                }),
        );
    }

    /// The final flush (the run is ending): everything dirty, and whatever the flush in flight
    /// was writing, as one future for the end of the run to await. Each write is retried until
    /// `deadline` while the store fails; the first error that outlasts it is the answer.
    pub(super) fn final_writes(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> impl std::future::Future<Output = Result<(), String>> + 'static {
        if let Some((seconds, agents)) = self.ledger.in_flight.take() {
            for second in seconds {
                self.aggregator.mark_dirty(second);
            }
            self.ledger.dirty_agents.extend(agents);
        }
        let seconds: Vec<SecondRecord> = self
            .aggregator
            .take_dirty()
            .into_iter()
            .map(|d| SecondRecord::from_aggregate(&d.aggregate, Some(d.checkpoint)))
            .collect();
        let records: Vec<_> = std::mem::take(&mut self.ledger.dirty_agents)
            .iter()
            .filter_map(|id| self.agents.0.get(id).map(|a| a.record(id)))
            .collect();
        let store = self.deps.store.clone();
        let run = self.spec.run.clone();
        async move {
            let mut failed = None;
            for record in seconds {
                let put = retry::until(deadline, "second", || {
                    store.put_second(&run, record.clone())
                });
                if let Err(e) = put.await {
                    tracing::error!(%run, error = %e, "cannot store a second");
                    failed.get_or_insert(e.to_string());
                }
            }
            for record in records {
                let put = retry::until(deadline, "agent's record", || {
                    store.put_agent(&run, record.clone())
                });
                if let Err(e) = put.await {
                    tracing::error!(%run, error = %e, "cannot store an agent's record");
                    failed.get_or_insert(e.to_string());
                }
            }
            failed.map_or(Ok(()), Err)
        }
    }

    fn acknowledge(&mut self, upto: u64) {
        if upto > self.ledger.acknowledged {
            self.ledger.acknowledged = upto;
            self.deps.bus.acknowledge(&self.spec.run, upto);
        }
    }

    /// Renews the run's lease; another owner means this actor must let go of the run.
    pub(super) fn renew_lease(&mut self, ctx: &mut Context<Self>) {
        if self.phase().is_over() {
            return;
        }
        let deps = self.deps.clone();
        let run = self.spec.run.clone();
        let now = self.clock.unix_ms();
        ctx.spawn(
            async move {
                match deps
                    .store
                    .claim_run(&run, &deps.owner, now, lease_ms())
                    .await
                {
                    Ok(Claim::Granted) => None,
                    Ok(Claim::HeldBy { owner, .. }) => Some(owner),
                    Err(e) => {
                        tracing::warn!(%run, error = %e, "cannot renew the run's lease");
                        None
                    }
                }
            }
            .into_actor(self)
            .map(|taken, act, ctx| {
                if let Some(owner) = taken {
                    act.abandon(&owner, ctx);
                }
            }),
        );
    }

    /// Another coordinator owns the run now: stop at once, writing nothing and leaving its agents
    /// alone. The run's outcome is never reported here (the other coordinator reports it).
    fn abandon(&mut self, owner: &str, ctx: &mut Context<Self>) {
        tracing::error!(run = %self.spec.run, %owner, "another coordinator took the run over; letting go of it");
        self.outcome = None;
        self.stage = Stage::Finalizing {
            start_at_ms: self.stage.start_at_ms(),
        };
        let bus = self.deps.bus.clone();
        let run = self.spec.run.clone();
        actix::spawn(async move { bus.unregister(&run).await });
        ctx.stop();
    }
}
