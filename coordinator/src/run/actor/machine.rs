//! The run actor's struct and its state machine: launching, waiting for agents, starting the
//! load, stopping it, losing agents, and the tick that enforces every deadline.

use super::ledger::{self, Ledger};
use super::seconds::RunSeconds;
use super::stage::{EndCause, Load, Stage};
use crate::aggregate::{Aggregator, SecondAggregate};
use crate::bus::{AgentInbound, Inbox};
use crate::launcher::{AgentExited, LaunchSpec, Launched};
use crate::metrics::METRICS;
use crate::run::agents::Agents;
use crate::run::liveness::Lag;
use crate::run::liveness::Sign;
use crate::run::phase::Phase;
use crate::run::shares::Shares;
use crate::run::spec::{RunDeps, RunSpec};
use crate::run::view::RunView;
use crate::run::watch::ThresholdWatch;
use crate::store::{RunRecord, RunStateName};
use actix::prelude::*;
use herd_protocol::agent::{AgentCommand, AgentCommandMessage, AgentStatus};
use herd_protocol::clock::Clock;
use herd_protocol::summary::{AgentHealth, LiveMessage, RunState, Summary};
use herd_protocol::{wire, AgentId, PROTOCOL_VERSION};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// An inbox for the bus whose messages reach this actor in the order the bus received them.
/// (The bus knows channels, not actors; this task is the one place the two meet.)
pub(super) fn inbox(ctx: &Context<RunActor>) -> Inbox {
    let (tx, mut rx) = mpsc::unbounded_channel::<AgentInbound>();
    let addr = ctx.address();
    actix::spawn(async move {
        while let Some(message) = rx.recv().await {
            if !addr.connected() {
                break;
            }
            addr.do_send(message);
        }
    });
    tx
}

/// The actor behind a run. Create it with [`crate::run::start`].
pub struct RunActor {
    pub(super) spec: RunSpec,
    pub(super) deps: RunDeps,
    pub(super) clock: Clock,
    /// The phase, with what only it knows (start time, cancellation, failure, a pending resume).
    pub(super) stage: Stage,
    /// When the current phase must be over (what happens then depends on the phase).
    pub(super) deadline: Instant,
    pub(super) agents: Agents,
    pub(super) aggregator: Aggregator,
    /// The summary's seconds (those that may still change; the rest are in the store).
    pub(super) seconds: RunSeconds,
    pub(super) view: watch::Sender<RunView>,
    /// Who awaits the summary: taken when it is sent, dropped when the actor gives the run up
    /// (another coordinator owns it); `None` only once the actor is stopping for good.
    pub(super) outcome: Option<oneshot::Sender<Summary>>,
    /// This run's share of the process-wide agents-connected gauge, as last reported to it.
    pub(super) connected: std::cell::Cell<i64>,
    /// What is stored, what is still to store, what the bus may acknowledge.
    pub(super) ledger: Ledger,
    /// Agents whose process was gone when the run was resumed (lost if they stay silent).
    pub(super) gone: std::collections::BTreeSet<AgentId>,
    /// Agents whose last will came before the start and who have not spoken since.
    pub(super) wills: std::collections::BTreeSet<AgentId>,
    /// How far behind the actor itself is (its tick's lateness, its messages' backlog).
    pub(super) lag: Lag,
    /// The newest second any agent's frame covered: agents whose seconds keep pace are alive.
    pub(super) newest_second: Option<u64>,
    /// The slowest delivery of an agent's message while agents got ready (ms).
    pub(super) ready_delay_ms: u64,
    /// How far ahead of the start command its start time was (ms).
    pub(super) start_lead_ms: u64,
    /// The sliding windows of the `abort_on_fail` thresholds (see `abort.rs`).
    pub(super) watch: ThresholdWatch,
    /// The run's outputs (`outputs:`, `[[outputs]]`), started with the actor; see `export`.
    pub(super) exporter: Option<crate::export::Exporter>,
    /// Who carries the load, and the reassignments made when agents were lost (see `loss.rs`).
    pub(super) shares: Shares,
    /// Lost agents that came back after their share moved: tell them again (see `loss.rs`).
    pub(super) retell: std::collections::BTreeSet<AgentId>,
    /// Losses waiting to be moved together, and from when (see `loss.rs`).
    pub(super) losses: super::pending::PendingLosses,
    /// Replacements launched and not carrying yet, and how many were launched (`replace.rs`).
    pub(super) replacing: super::pending::Replacing,
    /// A resumed run: what its outputs had been sent before the restart (see `export`).
    pub(super) export_seed: Option<crate::export::Seed>,
    /// Where the launcher reports agents' exits, for agents launched during the run.
    pub(super) exits: Option<mpsc::UnboundedSender<AgentExited>>,
    /// The plan's setup and teardown, and setup's variables (see `once.rs`).
    pub(super) once: super::once_state::OncePhases,
}

impl RunActor {
    pub(crate) fn new(
        spec: RunSpec,
        deps: RunDeps,
    ) -> (Self, watch::Receiver<RunView>, oneshot::Receiver<Summary>) {
        let ids: Vec<AgentId> = (0..spec.plan.agents).map(AgentId::numbered).collect();
        let clock = Clock::new();
        let view = RunView {
            phase: Phase::Launching,
            elapsed_s: 0.0,
            start_at_ms: None,
            planned_s: spec.plan.duration().as_secs_f64(),
            agents_expected: spec.plan.agents,
            agents_ready: 0,
            agents_live: spec.plan.agents,
            requests: 0,
            errors: 0,
            last_second: None,
            live_agents: None,
            lost_agents: Vec::new(),
        };
        let (view_tx, view_rx) = watch::channel(view);
        let (outcome_tx, outcome_rx) = oneshot::channel();
        let aggregator =
            Aggregator::new(spec.run.clone(), ids.clone(), spec.timeouts.aggregate_grace)
                .with_regions(&spec.plan.agent_regions());
        let actor = Self {
            watch: ThresholdWatch::new(&spec.plan.thresholds),
            agents: Agents::new(&ids, clock.unix_ms()),
            shares: Shares::new(ids.iter().cloned()),
            retell: Default::default(),
            losses: Default::default(),
            replacing: Default::default(),
            exits: None,
            once: Default::default(),
            export_seed: None,
            deadline: Instant::now() + spec.timeouts.launch,
            spec,
            deps,
            clock,
            stage: Stage::Launching,
            aggregator,
            seconds: RunSeconds::default(),
            view: view_tx,
            outcome: Some(outcome_tx),
            connected: std::cell::Cell::new(0),
            ledger: Ledger::default(),
            gone: std::collections::BTreeSet::new(),
            wills: std::collections::BTreeSet::new(),
            lag: Lag::new(super::stage::TICK),
            newest_second: None,
            ready_delay_ms: 0,
            start_lead_ms: 0,
            exporter: None,
        };
        (actor, view_rx, outcome_rx)
    }

    /// The observable name of the run's phase.
    pub(super) fn phase(&self) -> Phase {
        self.stage.phase()
    }

    /// Enters `stage`, to be over within `limit`, and records it.
    pub(super) fn set_stage(&mut self, stage: Stage, limit: Duration) {
        let phase = stage.phase();
        tracing::info!(run = %self.spec.run, phase = phase.as_str(), "run phase");
        self.stage = stage;
        self.deadline = Instant::now() + limit;
        if let Some(state) = store_state(phase) {
            let store = self.deps.store.clone();
            let run = self.spec.run.clone();
            let at = self.clock.unix_ms();
            // A cancellation is recorded with the stop, so a resumed run still ends as cancelled.
            let reason = match &self.stage {
                Stage::Stopping(load) => load.cancelled.clone(),
                _ => None,
            };
            actix::spawn(async move {
                if let Err(e) = store.set_run_state(&run, state, at, reason).await {
                    tracing::warn!(%run, error = %e, "cannot record run state");
                }
            });
        }
        self.publish_view();
    }

    pub(super) fn publish_view(&self) {
        let start_at_ms = self.stage.start_at_ms();
        let elapsed_s = start_at_ms.map_or(0.0, |s| {
            self.clock.unix_ms().saturating_sub(s) as f64 / 1000.0
        });
        let totals = self.aggregator.totals();
        self.view.send_modify(|v| {
            v.phase = self.phase();
            v.elapsed_s = elapsed_s;
            v.start_at_ms = start_at_ms;
            v.agents_ready = self.agents.ready();
            v.agents_live = self.agents.live();
            v.requests = totals.all.requests;
            v.errors = totals.all.errors;
            v.last_second = self.seconds.last().cloned();
            v.lost_agents = self.agents.lost().into_iter().map(|(id, _)| id).collect();
        });
        let connected = self.agents.connected() as i64;
        METRICS.agents_connected_changed(connected - self.connected.replace(connected));
    }

    /// Records the run, claims it, registers on the bus and launches the agents, whose exits the
    /// launcher reports on `events`.
    pub(super) fn launch(
        &mut self,
        events: mpsc::UnboundedSender<AgentExited>,
        ctx: &mut Context<Self>,
    ) {
        let run = self.spec.run.clone();
        let record = RunRecord {
            id: run.clone(),
            name: self.spec.plan.name.clone(),
            test: self.spec.test.clone(),
            plan: crate::run::secrets::stored_plan(&self.spec.plan),
            state: RunStateName::Launching,
            agents: self.spec.plan.agents,
            created_at_ms: self.clock.unix_ms(),
            updated_at_ms: self.clock.unix_ms(),
            reason: None,
            start_at_ms: None,
            ends_at_ms: None,
        };
        let launch = LaunchSpec {
            run: run.clone(),
            agents: self.agents.0.keys().cloned().collect(),
            broker_url: self.deps.broker_url.clone(),
            regions: self.spec.plan.agent_regions(),
        };
        let deps = self.deps.clone();
        let inbox = inbox(ctx);
        let now = self.clock.unix_ms();
        let work = async move {
            deps.store
                .create_run(record)
                .await
                .map_err(|e| format!("cannot record the run: {e}"))?;
            ledger::claim(&deps, &run, now).await?;
            deps.bus
                .register(&run, inbox)
                .await
                .map_err(|e| e.to_string())?;
            deps.launcher
                .launch(launch, events)
                .await
                .map_err(|e| e.to_string())
        };
        ctx.spawn(
            work.into_actor(self)
                .map(|result, act, ctx| act.launched(result, ctx)),
        );
    }

    fn launched(&mut self, result: Result<Vec<Launched>, String>, ctx: &mut Context<Self>) {
        if self.phase() != Phase::Launching {
            return;
        }
        match result {
            Ok(launched) => {
                for l in launched {
                    if let Some(a) = self.agents.0.get_mut(&l.agent) {
                        a.handle = Some(l.handle);
                        self.ledger.agent_changed(&l.agent);
                    }
                }
                self.flush(ctx);
                let now = self.clock.unix_ms();
                for a in self.agents.0.values_mut() {
                    a.heard.restart(now);
                }
                let ready = self.spec.timeouts.ready;
                self.set_stage(Stage::WaitingReady { cancelled: None }, ready);
                self.maybe_begin(ctx);
            }
            Err(reason) => self.fail(reason, ctx),
        }
    }

    pub(super) fn maybe_begin(&mut self, ctx: &mut Context<Self>) {
        if !matches!(self.stage, Stage::WaitingReady { .. }) {
            return;
        }
        if self.agents.ready() < self.spec.plan.agents || self.setup_first(ctx) {
            return;
        }
        let Stage::WaitingReady { cancelled } = &mut self.stage else {
            return;
        };
        let cancelled = cancelled.take();
        let lead = self.start_lead()
            + herd_protocol::feeder_data::feeder_lead(&self.spec.plan)
            + herd_protocol::body_data::body_lead(&self.spec.plan);
        self.start_lead_ms = u64::try_from(lead.as_millis()).unwrap_or(u64::MAX);
        let start_at_ms = self.clock.unix_ms() + self.start_lead_ms;
        tracing::info!(run = %self.spec.run, lead_ms = self.start_lead_ms, "starting the load");
        self.aggregator.set_start_second(start_at_ms / 1000);
        // The start time is stored before any agent hears it: a coordinator that dies after the
        // start command went out must know, when it comes back, that the load is running.
        let store = self.deps.store.clone();
        let run = self.spec.run.clone();
        ctx.spawn(
            async move { store.set_run_start(&run, start_at_ms).await }
                .into_actor(self)
                .map(|stored, act, ctx| match stored {
                    Ok(()) => act.send_start(ctx),
                    Err(e) => act.fail(format!("cannot record the start: {e}"), ctx),
                }),
        );
        let t = &self.spec.timeouts;
        let limit =
            lead + self.spec.plan.duration() + self.spec.plan.options.graceful_stop + t.drain;
        self.set_stage(Stage::Running(Load::new(start_at_ms, cancelled)), limit);
    }

    /// The start command: the plan, each agent's index, and the absolute start time.
    pub(super) fn send(&mut self, command: AgentCommand, ctx: &mut Context<Self>) {
        let message = AgentCommandMessage {
            version: PROTOCOL_VERSION,
            run: self.spec.run.clone(),
            command,
        };
        let bus = self.deps.bus.clone();
        ctx.spawn(
            async move { bus.send_command(message).await }
                .into_actor(self)
                .map(|result, act, ctx| {
                    if let Err(e) = result {
                        act.fail(format!("cannot command the agents: {e}"), ctx);
                    }
                }),
        );
    }

    pub(super) fn stop_agents(&mut self, ctx: &mut Context<Self>) {
        let graceful = self.spec.plan.options.graceful_stop;
        self.send(
            AgentCommand::Stop {
                graceful_ms: graceful.as_millis() as u64,
            },
            ctx,
        );
        let stopping = std::mem::replace(&mut self.stage, Stage::Launching).into_stopping();
        self.set_stage(stopping, graceful + self.spec.timeouts.drain);
    }

    pub(super) fn lose(&mut self, agent: &AgentId, reason: String, ctx: &mut Context<Self>) {
        let Some(track) = self.agents.0.get_mut(agent) else {
            return;
        };
        if track.settled() {
            return;
        }
        let reason = match &track.last_error {
            Some(e) => format!("{reason}; last error: {e}"),
            None => reason,
        };
        tracing::warn!(run = %self.spec.run, %agent, %reason, "agent lost");
        track.lost = Some(reason.clone());
        self.open_gap(agent, &reason);
        self.aggregator.agent_lost(agent);
        self.ledger.agent_changed(agent);
        self.share_lost(agent, ctx);
        if matches!(self.phase(), Phase::Launching | Phase::WaitingReady) {
            self.fail(
                format!("agent {agent} was lost before the start: {reason}"),
                ctx,
            );
        }
        self.publish_view();
    }

    pub(super) fn fail(&mut self, reason: String, ctx: &mut Context<Self>) {
        if self.phase().is_over() {
            return;
        }
        tracing::error!(run = %self.spec.run, %reason, "run failed");
        if self.phase().load_started() {
            // Agents may be loading the target: tell them to stop, keep what they measured.
            self.stop_detached(self.spec.plan.options.graceful_stop);
        }
        self.finalize(EndCause::Failed(reason), ctx);
    }

    /// Sends a stop that outlives the actor (it is ending: its own futures are cut short).
    pub(super) fn stop_detached(&self, graceful: Duration) {
        let message = AgentCommandMessage {
            version: PROTOCOL_VERSION,
            run: self.spec.run.clone(),
            command: AgentCommand::Stop {
                graceful_ms: graceful.as_millis() as u64,
            },
        };
        let bus = self.deps.bus.clone();
        actix::spawn(async move {
            let _ = bus.send_command(message).await;
        });
    }

    pub(super) fn on_status(
        &mut self,
        agent: AgentId,
        status: AgentStatus,
        sign: Sign,
        ctx: &mut Context<Self>,
    ) {
        let now = self.clock.unix_ms();
        if !self.agents.0.contains_key(&agent) {
            tracing::warn!(run = %self.spec.run, %agent, "status from an agent this run did not launch");
            return;
        }
        // The last will is the broker's word, not the agent's: it is no sign of life.
        if status != AgentStatus::Lost {
            self.heard_from(&agent, sign);
        }
        let Some(track) = self.agents.0.get_mut(&agent) else {
            return;
        };
        match status {
            AgentStatus::Ready { pid, .. } => {
                track.ready = true;
                track.pid = Some(pid);
                self.ledger.agent_changed(&agent);
                self.replacement_ready(&agent, ctx);
                self.maybe_begin(ctx);
            }
            AgentStatus::Started { at_us } => {
                track.started_at_us = Some(at_us);
                self.ledger.agent_changed(&agent);
            }
            AgentStatus::Heartbeat { .. } => {}
            AgentStatus::Finished { frames, .. } => {
                if track.lost.is_none() && !track.finished {
                    track.finished = true;
                    track.frames = Some(frames);
                    track.finished_at_ms = Some(now);
                    self.aggregator.agent_finished(&agent, frames);
                    self.ledger.agent_changed(&agent);
                }
            }
            AgentStatus::Error { message } => {
                let message = crate::run::secrets::redact(&self.spec.plan, &message);
                tracing::warn!(run = %self.spec.run, %agent, %message, "agent reported an error");
                track.last_error = Some(message);
                self.ledger.agent_changed(&agent);
            }
            AgentStatus::Lost if matches!(self.phase(), Phase::Launching | Phase::WaitingReady) => {
                self.will_before_start(&agent, ctx);
            }
            AgentStatus::Lost => self.lose(&agent, "connection lost (MQTT last will)".into(), ctx),
            AgentStatus::EndRun { reason } => self.end_run(&agent, &reason, ctx),
            done @ (AgentStatus::SetupDone { .. } | AgentStatus::TeardownDone { .. }) => {
                self.once_done(&agent, done, ctx);
            }
        }
    }

    /// A second is emitted: it joins the run's seconds and, when `live`, goes to the live topic.
    /// (It is stored by the next [`RunActor::flush`], with every other changed second.)
    pub(super) fn emit(&mut self, agg: SecondAggregate, live: bool) {
        let second = agg.to_summary();
        self.seconds.put(agg.second, second.clone());
        if let Some(exporter) = &mut self.exporter {
            exporter.second(&agg);
        }
        if live {
            let end_ms = (agg.second + 1) * 1000;
            METRICS.second_emitted(self.clock.unix_ms().saturating_sub(end_ms));
            let totals = self.aggregator.totals();
            let agents = AgentHealth::sorted(agg.load.agents);
            self.view
                .send_modify(|v| v.live_agents = Some((second.t, agents.clone())));
            let message = LiveMessage {
                version: PROTOCOL_VERSION,
                run: self.spec.run.to_string(),
                second,
                total_requests: totals.all.requests,
                total_errors: totals.all.errors,
                second_end_ms: Some(end_ms),
                replayed: false,
                agents,
            };
            let bus = self.deps.bus.clone();
            let run = self.spec.run.clone();
            actix::spawn(async move {
                let _ = bus.publish_live(&run, wire::encode(&message)).await;
            });
        }
    }

    pub(super) fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.phase().is_over() {
            return;
        }
        self.check_silence(ctx);
        self.retell(ctx);
        self.check_replacements(ctx);
        self.check_once(ctx);
        let now = Instant::now();
        let now_ms = self.clock.unix_ms();
        if self.phase().is_over() {
            return;
        }
        for agg in self.aggregator.poll_ready(now_ms) {
            self.watch_second(&agg, ctx);
            self.emit(agg, true);
        }
        self.flush(ctx);
        if !self.agents.all_settled() {
            // A lost agent was taken back: the drain waits for it again.
            if let Some(load) = self.stage.load_mut() {
                load.settled_at = None;
            }
        } else {
            if let Some(load) = self.stage.load_mut() {
                let settled_at = *load.settled_at.get_or_insert(now);
                if self.aggregator.is_complete() || now >= settled_at + self.spec.timeouts.drain {
                    self.load_over(ctx);
                    return;
                }
            }
        }
        if now >= self.deadline {
            match self.phase() {
                Phase::Launching => self.fail("agents could not be launched in time".into(), ctx),
                Phase::WaitingReady => {
                    let missing: Vec<String> = self
                        .agents
                        .0
                        .iter()
                        .filter(|(_, a)| !a.ready)
                        .map(|(id, _)| id.to_string())
                        .collect();
                    let limit = self.spec.timeouts.ready;
                    self.fail(
                        format!("agents not ready within {limit:?}: {}", missing.join(", ")),
                        ctx,
                    );
                }
                Phase::Running => self.stop_agents(ctx),
                Phase::Stopping => {
                    let late: Vec<AgentId> = self
                        .agents
                        .0
                        .iter()
                        .filter(|(_, a)| !a.settled())
                        .map(|(id, _)| id.clone())
                        .collect();
                    for agent in late {
                        self.lose(
                            &agent,
                            "did not finish within the stop deadline".into(),
                            ctx,
                        );
                    }
                    self.load_over(ctx);
                }
                Phase::Finalizing | Phase::Ended(_) => {}
            }
        }
        self.publish_view();
    }
}

pub(super) fn store_state(phase: Phase) -> Option<RunStateName> {
    Some(match phase {
        Phase::Launching => RunStateName::Launching,
        Phase::WaitingReady => RunStateName::WaitingReady,
        Phase::Running => RunStateName::Running,
        Phase::Stopping => RunStateName::Stopping,
        Phase::Finalizing => return None,
        Phase::Ended(RunState::Completed) => RunStateName::Completed,
        Phase::Ended(RunState::Degraded) => RunStateName::Degraded,
        Phase::Ended(RunState::Failed) => RunStateName::Failed,
        Phase::Ended(RunState::Cancelled) => RunStateName::Cancelled,
    })
}
