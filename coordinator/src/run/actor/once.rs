//! The plan's `setup` and `teardown`: steps one agent runs once, before the load and after it.
//!
//! **Setup** comes between every agent being ready and the start command: the actor names one
//! agent (the first of the start's order) in a `setup` command, sealed like every command, and
//! waits in `waiting_ready` for its `setup_done`. Success: the variables it extracted (opened with
//! the run's key: the agent sealed them) go into the start command, and every VU on every agent
//! starts with them. Failure (a failed request or check, no answer within
//! `options.setup_timeout`): the run fails before any load, its reason naming the step.
//!
//! **Teardown** comes once every agent finished (or was lost) and the frames drained, whatever
//! ended the load (its end, a stop, a breached threshold), as long as setup did not fail: a
//! `teardown` command names the setup agent if it is still there, else the first agent left, and
//! carries setup's variables. Agents of a plan with teardown wait after their load for that
//! command; the others leave when they hear it. The run is finalized on `teardown_done` or at
//! `options.teardown_timeout`; a failed teardown is reported in the summary's `teardown`, and
//! does not change the load's results or verdict.
//!
//! Neither phase's requests are in the load's totals: each phase's figures come in its status
//! and go to the summary's `setup` / `teardown`. Plans without setup or teardown take no step of
//! this (no extra round trip). Setup's variables are kept in memory only (they may be secrets):
//! a coordinator that restarts after setup does not run teardown, and says so.

use super::machine::RunActor;
use super::once_state::Progress;
use super::stage::EndCause;
use actix::prelude::*;
use herd_protocol::agent::{AgentCommand, AgentStatus};
use herd_protocol::once::{open_vars, OnceCommand, PhaseSummary};
use herd_protocol::plan::OncePhase;
use herd_protocol::summary::Summary;
use herd_protocol::{topics, AgentId};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// How long past a phase's own time limit the actor waits for its answer (the agent enforces the
/// limit itself; this covers the messages' way and an agent that died).
const ANSWER_MARGIN: Duration = Duration::from_secs(5);

impl RunActor {
    /// Called when every agent is ready: `true` while the plan's setup keeps the start back (it
    /// is sent now, or runs, or failed), `false` when the load may start.
    pub(super) fn setup_first(&mut self, ctx: &mut Context<Self>) -> bool {
        if self.spec.plan.setup.is_empty() {
            return false;
        }
        match &self.once.setup {
            Progress::Done(result) => result.error.is_some(),
            Progress::Running { .. } => true,
            Progress::NotRun => {
                let Some(agent) = self.shares.roster().first().cloned() else {
                    return false;
                };
                self.send_once(OncePhase::Setup, agent, ctx);
                true
            }
        }
    }

    /// After the load (every agent settled, frames drained or their wait over): runs the
    /// plan's teardown first if it has one, else finalizes.
    pub(super) fn load_over(&mut self, ctx: &mut Context<Self>) {
        if self.spec.plan.teardown.is_empty() {
            self.finalize(EndCause::Over, ctx);
            return;
        }
        match &self.once.teardown {
            Progress::Running { .. } => {}
            Progress::Done(_) => self.finalize(EndCause::Over, ctx),
            Progress::NotRun => {
                let skipped = if !self.spec.plan.setup.is_empty()
                    && !matches!(&self.once.setup, Progress::Done(r) if r.error.is_none())
                {
                    Some(
                        "not run: the coordinator restarted after setup, and setup's variables \
                         are not stored (they may be secret)",
                    )
                } else {
                    None
                };
                let agent = self.teardown_agent();
                match (skipped, agent) {
                    (None, Some(agent)) => self.send_once(OncePhase::Teardown, agent, ctx),
                    (skipped, _) => {
                        let why = skipped.unwrap_or("not run: no agent was left to run it");
                        self.once.teardown = Progress::Done(PhaseSummary {
                            error: Some(why.into()),
                            ..PhaseSummary::default()
                        });
                        self.finalize(EndCause::Over, ctx);
                    }
                }
            }
        }
    }

    /// Who runs teardown: the agent that ran setup if it is still there, else the first left.
    fn teardown_agent(&self) -> Option<AgentId> {
        let present = |id: &AgentId| {
            self.agents
                .0
                .get(id)
                .is_some_and(|a| a.lost.is_none() && !a.exited)
        };
        self.shares
            .roster()
            .first()
            .filter(|id| present(id))
            .or_else(|| self.agents.0.keys().find(|id| present(id)))
            .cloned()
    }

    /// Sends `phase`'s command to `agent` and waits for its answer.
    fn send_once(&mut self, phase: OncePhase, agent: AgentId, ctx: &mut Context<Self>) {
        let plan = &self.spec.plan;
        let Some(phase_plan) = plan.phase_plan(phase) else {
            return;
        };
        let secrets = crate::run::secrets::values(plan).unwrap_or_else(|e| {
            tracing::error!(run = %self.spec.run, secret = %e.path, "{}", e.message);
            Default::default()
        });
        let limit = plan.once_timeout(phase);
        let command = OnceCommand {
            agent: agent.clone(),
            plan: phase_plan.to_json(),
            vars: match phase {
                OncePhase::Setup => BTreeMap::new(),
                OncePhase::Teardown => self.once.vars.clone(),
            },
            secrets,
            allowed_targets: self.deps.allowed_targets.clone(),
            timeout_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        };
        tracing::info!(run = %self.spec.run, %agent, phase = phase.key(), "running the plan's {}", phase.key());
        let deadline = Instant::now() + limit + ANSWER_MARGIN;
        // The phase's own deadline comes first; the stage's is only a backstop.
        self.deadline = self.deadline.max(deadline + Duration::from_secs(1));
        *self.once.progress(phase) = Progress::Running { agent, deadline };
        self.send(
            match phase {
                OncePhase::Setup => AgentCommand::Setup(command),
                OncePhase::Teardown => AgentCommand::Teardown(command),
            },
            ctx,
        );
    }

    /// A `setup_done` or `teardown_done` from `agent`.
    pub(super) fn once_done(
        &mut self,
        agent: &AgentId,
        status: AgentStatus,
        ctx: &mut Context<Self>,
    ) {
        let (phase, mut result, vars) = match status {
            AgentStatus::SetupDone { result, vars } => (OncePhase::Setup, result, vars),
            AgentStatus::TeardownDone { result } => (OncePhase::Teardown, result, String::new()),
            _ => return,
        };
        if !matches!(self.once.progress(phase), Progress::Running { agent: a, .. } if a == agent) {
            tracing::info!(run = %self.spec.run, %agent, phase = phase.key(), "an answer nobody waits for ignored");
            return;
        }
        if phase == OncePhase::Setup && result.error.is_none() {
            let key = self.deps.bus.run_key(&self.spec.run);
            let topic = topics::status(&self.spec.run, agent);
            match open_vars(key.as_ref(), &topic, &vars) {
                Ok(vars) => self.once.vars = vars,
                Err(e) => result.error = Some(e),
            }
        }
        let error = result.error.clone();
        *self.once.progress(phase) = Progress::Done(result);
        match (phase, error) {
            (OncePhase::Setup, Some(why)) => self.fail(format!("setup failed: {why}"), ctx),
            (OncePhase::Setup, None) => {
                let names: Vec<&String> = self.once.vars.keys().collect();
                tracing::info!(run = %self.spec.run, %agent, vars = ?names, "setup done");
                self.maybe_begin(ctx);
            }
            (OncePhase::Teardown, error) => {
                if let Some(why) = error {
                    tracing::warn!(run = %self.spec.run, %agent, %why, "teardown failed");
                }
                self.finalize(EndCause::Over, ctx);
            }
        }
    }

    /// At each tick: a phase whose answer is overdue is over, failed.
    pub(super) fn check_once(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        for phase in [OncePhase::Setup, OncePhase::Teardown] {
            let Progress::Running { agent, deadline } = self.once.progress(phase) else {
                continue;
            };
            if now < *deadline {
                continue;
            }
            let limit = self.spec.plan.once_timeout(phase);
            let why = format!(
                "no answer from {agent} within {} s ({} s options.{}_timeout, plus {} s)",
                (limit + ANSWER_MARGIN).as_secs(),
                limit.as_secs(),
                phase.key(),
                ANSWER_MARGIN.as_secs()
            );
            let agent = agent.to_string();
            *self.once.progress(phase) = Progress::Done(PhaseSummary {
                agent,
                error: Some(why.clone()),
                ..PhaseSummary::default()
            });
            match phase {
                OncePhase::Setup => self.fail(format!("setup failed: {why}"), ctx),
                OncePhase::Teardown => self.finalize(EndCause::Over, ctx),
            }
        }
    }

    /// The summary with what setup and teardown did (for a plan with them).
    pub(super) fn with_once(&self, mut summary: Summary) -> Summary {
        // A resumed run whose load had started: setup ran, on the coordinator before this one.
        let before_restart =
            self.stage.start_at_ms().is_some() && matches!(self.once.setup, Progress::NotRun);
        let report = |phase: OncePhase, progress: &Progress| {
            if self.spec.plan.once_steps(phase).is_empty() {
                return None;
            }
            Some(match progress {
                Progress::Done(result) => result.clone(),
                Progress::Running { agent, .. } => PhaseSummary {
                    agent: agent.to_string(),
                    error: Some("the run ended while it ran".into()),
                    ..PhaseSummary::default()
                },
                Progress::NotRun if phase == OncePhase::Setup && before_restart => PhaseSummary {
                    error: Some(
                        "ran before the coordinator restarted: its figures were not kept".into(),
                    ),
                    ..PhaseSummary::default()
                },
                Progress::NotRun => PhaseSummary {
                    error: Some("not run".into()),
                    ..PhaseSummary::default()
                },
            })
        };
        summary.setup = report(OncePhase::Setup, &self.once.setup);
        summary.teardown = report(OncePhase::Teardown, &self.once.teardown);
        summary
    }
}
