//! How the run actor reacts to its messages: agent traffic from the bus, process exits from the
//! launcher, and cancel requests. The state machine itself lives in `machine`.

use super::machine::RunActor;
use super::stage::{EndCause, Stage, TICK};
use crate::aggregate::Ingest;
use crate::bus::AgentInbound;
use crate::launcher::AgentExited;
use crate::metrics::METRICS;
use crate::run::liveness::Sign;
use crate::run::spec::LEASE;
use actix::prelude::*;
use std::time::Duration;
use tokio::sync::mpsc;

/// After an agent process exits cleanly, how long its "finished" message may still be in flight.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Asks the run to stop: agents get a graceful stop, and the run ends as cancelled.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Cancel {
    /// Why, for the record.
    pub reason: String,
}

/// An agent's process exited (from the launcher's channel).
#[derive(Message)]
#[rtype(result = "()")]
struct Exited(AgentExited);

impl Actor for RunActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
        ctx.run_interval(LEASE / 3, |act, ctx| act.renew_lease(ctx));
        // The launcher reports agents' exits on a channel; they come back here as messages.
        let (events, mut exits) = mpsc::unbounded_channel();
        let addr = ctx.address();
        actix::spawn(async move {
            while let Some(exit) = exits.recv().await {
                addr.do_send(Exited(exit));
            }
        });
        let test = self.spec.test.as_deref().unwrap_or(&self.spec.plan.name);
        let outputs = crate::export::outputs_of(&self.deps.outputs, &self.spec.plan.outputs);
        let seed = self.export_seed.take().unwrap_or_default();
        self.exporter =
            crate::export::Exporter::resume(&outputs, self.spec.run.as_str(), test, seed);
        // Kept for agents launched later (a replacement for a lost one).
        self.exits = Some(events.clone());
        if matches!(self.stage, Stage::Resuming(_)) {
            self.resume(events, ctx);
        } else {
            self.launch(events, ctx);
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        // However the actor ends, its agents no longer count as connected.
        METRICS.agents_connected_changed(-self.connected.replace(0));
    }
}

/// Agents' messages reach the run actor as actor messages (see `inbox` in the actor's module).
impl Message for AgentInbound {
    type Result = ();
}

impl Handler<AgentInbound> for RunActor {
    type Result = ();

    fn handle(&mut self, msg: AgentInbound, ctx: &mut Context<Self>) {
        // Counted first, whatever becomes of it: the count is how the bus knows which messages a
        // flush covered.
        self.ledger.delivered();
        if self.phase().is_over() {
            return;
        }
        match msg {
            AgentInbound::Status(s) => {
                let sign = Sign {
                    sent_ms: s.sent_ms,
                    status_seq: Some(s.seq),
                    ..Sign::default()
                };
                self.on_status(s.agent, s.status, sign, ctx);
            }
            AgentInbound::Frame(frame) => {
                let ingested = self.aggregator.ingest(&frame);
                let merged = matches!(ingested, Ok(Ingest::Accepted | Ingest::Late));
                if ingested.is_ok() {
                    let sign = Sign {
                        sent_ms: frame.sent_ms,
                        status_seq: None,
                        second: Some(frame.second),
                        new_frame: merged,
                    };
                    self.heard_from(&frame.agent, sign);
                }
                METRICS.frame(merged);
                if let Err(e) = ingested {
                    tracing::warn!(run = %self.spec.run, agent = %frame.agent, error = %e, "frame refused");
                }
            }
            AgentInbound::Malformed { agent, error } => {
                tracing::warn!(run = %self.spec.run, %agent, %error, "malformed agent message");
            }
        }
        self.flush(ctx);
    }
}

impl Handler<Exited> for RunActor {
    type Result = ();

    fn handle(&mut self, Exited(exit): Exited, ctx: &mut Context<Self>) {
        let finished = self.agents.0.get(&exit.agent).is_none_or(|a| a.finished);
        if finished || self.phase().is_over() {
            return;
        }
        let reason = format!("process exited ({})", exit.detail);
        if exit.success {
            // Its "finished" message may still be on its way through the broker.
            ctx.run_later(EXIT_GRACE, move |act, ctx| {
                act.exited(&exit.agent, reason, ctx)
            });
        } else {
            self.exited(&exit.agent, reason, ctx);
        }
    }
}

impl RunActor {
    /// An agent's process is gone: lost for good, unless it finished (a lost agent that has
    /// exited cannot be taken back).
    fn exited(&mut self, agent: &herd_protocol::AgentId, reason: String, ctx: &mut Context<Self>) {
        let Some(track) = self.agents.0.get_mut(agent) else {
            return;
        };
        if track.finished {
            return;
        }
        track.exited = true;
        if track.lost.is_none() {
            self.lose(agent, reason, ctx);
        }
    }
}

impl Handler<Cancel> for RunActor {
    type Result = ();

    fn handle(&mut self, msg: Cancel, ctx: &mut Context<Self>) {
        if self.phase().is_over() || self.stage.cancelled().is_some() {
            return;
        }
        tracing::info!(run = %self.spec.run, reason = %msg.reason, "run cancelled");
        match &mut self.stage {
            Stage::Launching | Stage::Resuming(_) | Stage::WaitingReady { .. } => {
                self.finalize(EndCause::Cancelled(msg.reason), ctx)
            }
            Stage::Running(load) => {
                load.cancelled = Some(msg.reason);
                self.stop_agents(ctx);
            }
            Stage::Stopping(load) => load.cancelled = Some(msg.reason),
            Stage::Finalizing { .. } | Stage::Ended { .. } => {}
        }
    }
}

/// Test only: the actor stops dead, as its process does on SIGKILL: nothing more is written,
/// flushes in flight are cut short, no outcome is reported.
#[cfg(test)]
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Crash;

#[cfg(test)]
impl Handler<Crash> for RunActor {
    type Result = ();

    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        self.outcome = None;
        ctx.stop();
    }
}

/// Test only: how many of the summary's seconds the actor holds in memory.
#[cfg(test)]
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub(crate) struct SecondsInMemory;

#[cfg(test)]
impl Handler<SecondsInMemory> for RunActor {
    type Result = usize;

    fn handle(&mut self, _: SecondsInMemory, _: &mut Context<Self>) -> usize {
        self.seconds.in_memory().len()
    }
}
