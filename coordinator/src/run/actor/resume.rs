//! Carrying on a run that a previous coordinator process started (see [`crate::run::resume`]).
//!
//! The actor is rebuilt from the store — agents' records, the aggregator from the stored seconds'
//! merge state, the start time — and then, instead of launching agents:
//! 1. it takes the phase the run was in, with deadlines re-armed from wall-clock times (the
//!    planned end is `start_at + duration`, whoever is counting), and restarts every agent's
//!    heartbeat clock: the coordinator's absence is not the agents' silence;
//! 2. it registers on the bus, which hands it the messages that arrived while it was away (a
//!    durable session kept them unacknowledged), and adopts the agents through the launcher;
//! 3. it sends the start again (agents ignore a repeated one; one that missed it starts now), or
//!    the stop again if it was stopping. The start carries the stored plan, whose secrets are
//!    references resolved again now; a plan with a literal credential header (stored masked) is
//!    not sent again, so no agent sends `***` for it.
//!
//! Agents whose process is gone are given the heartbeat period for their last messages (their
//! "finished" may be in the backlog) and are then declared lost, saying so. A run that had not started its
//! load when the coordinator died cannot be carried on meaningfully: it ends as failed, and any
//! agent still waiting for its start is told to stop.

use super::machine::RunActor;
use super::stage::{Load, Resumed, Stage};
use crate::aggregate::Aggregator;
use crate::launcher::{AgentExited, Launched};
use crate::run::agents::AgentTrack;
use crate::run::phase::Phase;
use crate::run::shares::Shares;
use crate::run::spec::{RunDeps, RunSpec};
use crate::run::stored::StoredRun;
use crate::run::view::RunView;
use crate::store::RunStateName;
use actix::prelude::*;
use herd_protocol::agent::AgentCommand;
use herd_protocol::summary::Summary;
use herd_protocol::AgentId;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

impl RunActor {
    /// An actor that carries on `stored` instead of launching agents.
    pub(crate) fn resumed(
        spec: RunSpec,
        deps: RunDeps,
        stored: StoredRun,
    ) -> (Self, watch::Receiver<RunView>, oneshot::Receiver<Summary>) {
        let (mut actor, view, outcome) = Self::new(spec, deps);
        let now = actor.clock.unix_ms();
        for record in &stored.agents {
            if let Some(track) = actor.agents.0.get_mut(&record.agent) {
                *track = AgentTrack::from_record(record, now);
            }
        }
        actor.shares = Shares::restore(
            actor.agents.0.keys().cloned(),
            stored
                .agents
                .iter()
                .flat_map(|a| a.gaps.iter().map(move |g| (&a.agent, g))),
        );
        // Replacements that joined are agents of the run too (one launched and not joined yet
        // is not: see `replace.rs`).
        let joined: Vec<AgentId> = actor.shares.replacements().cloned().collect();
        for record in stored.agents.iter().filter(|r| joined.contains(&r.agent)) {
            actor
                .agents
                .0
                .insert(record.agent.clone(), AgentTrack::from_record(record, now));
        }
        let ids: Vec<AgentId> = actor.agents.0.keys().cloned().collect();
        let start_at_ms = stored.record.start_at_ms;
        if let (Some(start_at_ms), Some(ends_at_ms)) = (start_at_ms, stored.record.ends_at_ms) {
            actor.load_ends_at(start_at_ms, ends_at_ms);
        }
        let mut problem = None;
        let mut checkpoints = Vec::with_capacity(stored.seconds.len());
        for second in stored.seconds {
            match second.checkpoint {
                Some(c) => checkpoints.push((second.second, c)),
                None => {
                    problem.get_or_insert(format!(
                        "second t={} is stored without its merge state (written by an older herd)",
                        second.t
                    ));
                }
            }
        }
        match Aggregator::restore(
            actor.spec.run.clone(),
            ids,
            actor.spec.timeouts.aggregate_grace,
            start_at_ms.map(|ms| ms / 1000),
            checkpoints,
        ) {
            Ok(aggregator) => {
                let regions = actor.spec.plan.agent_regions();
                actor.aggregator = aggregator.with_regions(&regions);
                for change in actor.shares.history() {
                    for j in &change.joined {
                        let base = actor.shares.roster().get(j.slot as usize);
                        let region = base.and_then(|b| regions.get(b)).map(String::as_str);
                        actor
                            .aggregator
                            .agent_joins(&j.agent, change.at_ms / 1000, region);
                    }
                }
            }
            Err(e) => {
                problem.get_or_insert(format!("the stored seconds do not rebuild: {e}"));
            }
        }
        for (id, track) in &actor.agents.0 {
            if let Some(frames) = track.frames.filter(|_| track.finished) {
                actor.aggregator.agent_finished(id, frames);
            }
            if track.lost.is_some() {
                actor.aggregator.agent_lost(id);
            }
        }
        // Stored seconds that are complete, or past their grace, are the run's seconds again at
        // once: not sent live a second time (nor counted as late in the metrics), and not stored
        // again, since they are stored as they are.
        // They were exported too: the run's outputs go on from them (see `export::Seed`).
        let mut seed = crate::export::Seed::default();
        for aggregate in actor.aggregator.poll_ready(now) {
            seed.add(&aggregate);
            actor.emit(aggregate, false);
        }
        actor.export_seed = Some(seed);
        drop(actor.aggregator.take_dirty());
        actor.seconds.all_stored();
        // A stop recorded with a reason was a cancellation.
        let cancelled = (stored.record.state == RunStateName::Stopping)
            .then(|| stored.record.reason.clone())
            .flatten();
        actor.stage = Stage::Resuming(Resumed {
            state: stored.record.state,
            since_ms: stored.record.updated_at_ms,
            start_at_ms,
            ends_at_ms: stored.record.ends_at_ms,
            cancelled,
            problem: problem.map(|p| format!("cannot resume the run: {p}")),
        });
        (actor, view, outcome)
    }

    /// Takes up the stored phase, then registers on the bus and adopts the agents.
    pub(super) fn resume(
        &mut self,
        events: mpsc::UnboundedSender<AgentExited>,
        ctx: &mut Context<Self>,
    ) {
        let Some(resumed) = self.stage.take_resumed() else {
            return;
        };
        tracing::info!(run = %self.spec.run, state = %resumed.state, "resuming the run after a coordinator restart");
        let now_ms = self.clock.unix_ms();
        let graceful = self.spec.plan.options.graceful_stop;
        let cancelled = resumed.cancelled;
        let (stage, deadline_ms) = match (resumed.start_at_ms, resumed.state) {
            (Some(start_at_ms), RunStateName::Stopping) => (
                Stage::Stopping(Load::new(start_at_ms, cancelled)),
                resumed.since_ms + millis(graceful + self.spec.timeouts.drain),
            ),
            (Some(start_at_ms), _) => {
                // A live ramp moved the end: the agents follow the ramp, and so does the run.
                let load_ends_ms = resumed
                    .ends_at_ms
                    .unwrap_or_else(|| start_at_ms + millis(self.spec.plan.duration()));
                (
                    Stage::Running(Load::new(start_at_ms, cancelled)),
                    load_ends_ms + millis(graceful + self.spec.timeouts.drain),
                )
            }
            // Not started: it fails once its agents are adopted (`adopted`). Until then it is
            // not waiting for them: the "ready" messages the broker kept for the dead
            // coordinator arrive first, and in `WaitingReady` they started the load.
            (None, _) => (Stage::Launching, now_ms + millis(self.spec.timeouts.ready)),
        };
        let limit = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
        if stage.phase() == Phase::Running && resumed.state != RunStateName::Running {
            // The start was stored but the coordinator died before recording the phase.
            self.set_stage(stage, limit);
        } else {
            self.stage = stage;
            self.deadline = tokio::time::Instant::now() + limit;
            self.publish_view();
        }
        let handles: Vec<Launched> = self
            .agents
            .0
            .iter()
            .filter(|(_, a)| !a.settled())
            .filter_map(|(id, a)| {
                a.handle.clone().map(|handle| Launched {
                    agent: id.clone(),
                    handle,
                })
            })
            .collect();
        let deps = self.deps.clone();
        let run = self.spec.run.clone();
        let inbox = super::machine::inbox(ctx);
        let work = async move {
            deps.bus
                .register(&run, inbox)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(deps.launcher.adopt(&run, handles, events).await)
        };
        let problem = resumed.problem;
        ctx.spawn(
            work.into_actor(self)
                .map(move |result, act, ctx| act.adopted(result, problem, ctx)),
        );
    }

    fn adopted(
        &mut self,
        result: Result<Vec<AgentId>, String>,
        problem: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        if self.phase().is_over() {
            return;
        }
        let running = match result {
            Ok(running) => running,
            Err(e) => return self.fail(format!("cannot resume the run: {e}"), ctx),
        };
        let now = self.clock.unix_ms();
        for track in self.agents.0.values_mut() {
            track.heard.restart(now);
        }
        if let Some(problem) = problem {
            return self.fail(problem, ctx);
        }
        if !self.phase().load_started() {
            // Agents may be waiting for a start that will not come: tell them to stop.
            self.stop_detached(Duration::ZERO);
            return self.fail(
                "the coordinator restarted before the load started".into(),
                ctx,
            );
        }
        if self.phase() == Phase::Stopping {
            let graceful_ms = millis(self.spec.plan.options.graceful_stop);
            self.send(AgentCommand::Stop { graceful_ms }, ctx);
        } else if herd_protocol::plan::secrets::has_masked_headers(&self.spec.plan.to_json()) {
            // The store keeps literal credential headers masked: sending the plan again would
            // have an agent that missed the start send `***` to the target. Agents that started
            // carry on; one that did not is stopped at the end like the others.
            tracing::warn!(run = %self.spec.run, "the start is not sent again: the plan's literal credential headers are not stored (write them as secrets to resume with them)");
        } else {
            // Secrets are references in the stored plan: `start_command` resolves them again.
            self.send_start(ctx);
            // Agents that had them ignore them; one that missed one follows it now.
            for change in self.shares.history().to_vec() {
                self.send(AgentCommand::Reassign(change), ctx);
            }
        }
        // Their last messages ("finished" among them) may still be in the broker's backlog: they
        // get the heartbeat period like any agent, and are lost, with this reason, if silent.
        self.gone = self
            .agents
            .0
            .iter()
            .filter(|(id, a)| !a.settled() && !running.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        self.publish_view();
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
