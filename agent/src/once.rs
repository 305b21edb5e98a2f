//! The agent's part in a plan's `setup` and `teardown`: hearing the command that names it,
//! running the phase (with [`crate::engine::run_once`]) beside its session, and answering.
//!
//! Setup comes while the agent waits for its start: the runner polls [`OnceRunner::done`] in
//! the same loop as its commands and heartbeats, so the agent stays alive to the coordinator
//! while setup runs. Teardown comes after the load: an agent whose plan has teardown does not
//! leave after its `finished`, but waits ([`await_teardown`]) until the coordinator names who
//! runs it (every agent hears that one command; the others leave then), the agent is shut down,
//! or the coordinator stays silent for longer than any drain.

use crate::engine::{run_once, OnceSpec};
use crate::error::AgentError;
use crate::recorder::FrameIdentity;
use crate::session::{Events, Session, SessionEvent};
use herd_protocol::agent::{AgentCommand, AgentStatus};
use herd_protocol::clock::Clock;
use herd_protocol::cmdseal::RunKey;
use herd_protocol::once::{seal_vars, OnceCommand, PhaseSummary};
use herd_protocol::plan::{self, OncePhase};
use herd_protocol::topics;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// How long an agent waits for the teardown command after its load, beyond the plan's graceful
/// stop: the coordinator sends it once every agent finished and their frames drained, so this
/// only runs out when the coordinator is gone (its launcher stops the agent otherwise).
pub(crate) const TEARDOWN_WAIT: Duration = Duration::from_secs(300);

/// Who runs a phase, and what is needed to answer.
#[derive(Clone)]
pub(crate) struct OnceContext {
    /// This agent's run and id.
    pub(crate) identity: FrameIdentity,
    /// The run's command key, which seals setup's variables.
    pub(crate) key: Option<RunKey>,
    /// The wall clock.
    pub(crate) clock: Clock,
}

impl OnceContext {
    pub(crate) fn new(identity: FrameIdentity, key: Option<RunKey>, clock: Clock) -> Self {
        Self {
            identity,
            key,
            clock,
        }
    }
}

type Running = Pin<Box<dyn Future<Output = AgentStatus>>>;

/// The setup this agent runs or ran, before its start.
#[derive(Default)]
pub(crate) struct OnceRunner {
    running: Option<Running>,
    /// The answer sent, sent again if the command is heard again (commands are at-least-once).
    answered: Option<AgentStatus>,
}

impl OnceRunner {
    /// A setup command: runs it if it names this agent (once: a repeat is answered again).
    pub(crate) fn hear(&mut self, cx: &OnceContext, session: &Session, command: OnceCommand) {
        if command.agent != cx.identity.agent {
            return;
        }
        if let Some(answer) = &self.answered {
            session.status(answer.clone());
        } else if self.running.is_none() {
            tracing::info!("running the plan's setup");
            self.running = Some(Box::pin(run_phase(cx.clone(), OncePhase::Setup, command)));
        }
    }

    /// Whether a setup is running (poll [`OnceRunner::done`] only then).
    pub(crate) fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The running setup's answer, once it has one (never, when none runs).
    pub(crate) async fn done(&mut self) -> AgentStatus {
        let Some(running) = self.running.as_mut() else {
            return std::future::pending().await;
        };
        let status = running.await;
        self.running = None;
        self.answered = Some(status.clone());
        status
    }
}

/// After the load, for a plan with teardown: waits for the coordinator's teardown command and
/// runs it if it names this agent; leaves on one naming another agent, `shutdown`, or when
/// nothing came within `wait`.
pub(crate) async fn await_teardown(
    cx: &OnceContext,
    session: &Session,
    events: &mut Events,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
    wait: Duration,
) {
    let give_up = tokio::time::sleep(wait);
    tokio::pin!(give_up);
    loop {
        tokio::select! {
            () = &mut give_up => {
                tracing::warn!("no teardown command within {} s of the load's end: leaving", wait.as_secs());
                return;
            }
            () = &mut shutdown => return,
            event = events.next() => match event {
                Some(SessionEvent::Command(message)) => match message.command {
                    AgentCommand::Teardown(command) if command.agent == cx.identity.agent => {
                        tracing::info!("running the plan's teardown");
                        let status = run_phase(cx.clone(), OncePhase::Teardown, command).await;
                        session.status(status);
                        return;
                    }
                    AgentCommand::Teardown(_) => return,
                    // A stop is for the load, which is over: the coordinator ends this wait with
                    // the teardown command (or its launcher stops the agent).
                    _ => {}
                },
                Some(_) => {}
                None => return,
            },
        }
    }
}

/// Runs a phase from its command and words the answer; a command the agent cannot use (a bad
/// plan, a missing secret) is a failed phase that names the problem.
async fn run_phase(cx: OnceContext, phase: OncePhase, command: OnceCommand) -> AgentStatus {
    let outcome = match spec(&cx, phase, command) {
        Ok(spec) => run_once(spec).await,
        Err(e) => Err(e),
    };
    let (mut result, vars) = match outcome {
        Ok(outcome) => (outcome.result, outcome.vars),
        Err(e) => (
            PhaseSummary {
                error: Some(format!("{} could not run: {e}", phase.key())),
                ..PhaseSummary::default()
            },
            Default::default(),
        ),
    };
    result.agent = cx.identity.agent.to_string();
    match phase {
        OncePhase::Teardown => AgentStatus::TeardownDone { result },
        OncePhase::Setup => {
            let topic = topics::status(&cx.identity.run, &cx.identity.agent);
            match seal_vars(cx.key.as_ref(), &topic, &vars) {
                Ok(vars) => AgentStatus::SetupDone { result, vars },
                Err(e) => {
                    result.error = Some(format!("setup's variables could not be sealed: {e}"));
                    AgentStatus::SetupDone {
                        result,
                        vars: String::new(),
                    }
                }
            }
        }
    }
}

/// The phase's plan with the command's secrets and variables in its `vars`, and the run's
/// allow-list in force.
fn spec(cx: &OnceContext, phase: OncePhase, command: OnceCommand) -> Result<OnceSpec, AgentError> {
    let OnceCommand {
        plan,
        vars,
        secrets,
        allowed_targets,
        timeout_ms,
        ..
    } = command;
    let mut plan = plan::from_value(&plan)?;
    crate::command_plan::apply(&mut plan, phase.key(), &secrets, vars, allowed_targets)?;
    Ok(OnceSpec {
        plan,
        phase,
        timeout: Duration::from_millis(timeout_ms),
        clock: cx.clock,
        identity: cx.identity.clone(),
    })
}
