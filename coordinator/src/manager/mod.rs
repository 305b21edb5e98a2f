//! The one command path: a `RunManager` that carries out every [`CommandMessage`], whichever
//! source produced it (the HTTP API, the scheduler, and in AWS mode an SQS queue).
//!
//! It is an actor in the mini-redis style: a task that owns all the mutable state (the active
//! runs), a [`Manager`] handle that sends it [`Msg`]s, and an observable [`ManagerView`]. Because
//! it handles one command at a time, the checks that span runs are simple and race-free:
//! - a **global agent cap**: a start that would exceed it is refused (`capacity`), naming how many
//!   agents are in use;
//! - **one run per test** at a time unless the command asks for `allow_concurrent`;
//! - **idempotence**: a command id that was carried out before gets its first reply back, from the
//!   store, and nothing is done again (also after a restart).
//!
//! Each run is its own [`RunActor`](crate::run::RunActor) on its own topics, so concurrent runs
//! cannot mix their frames. Outcomes become events on the [`EventSink`].
//!
//! Before its first command, the task resumes the runs a previous process of this coordinator
//! left unfinished ([`resume`]), so a restart carries runs on instead of forgetting them.

mod commands;
mod reply;
mod resume;
mod run_id;

pub use reply::{Code, CommandSink, Rejection, Reply};
pub use run_id::new_run_id;

use crate::events::{self, EventSink};
use crate::run::{Cancel, RunActor, RunDeps, RunView, Timeouts};
use actix::Addr;
use herd_protocol::clock::Clock;
use herd_protocol::command::CommandMessage;
use herd_protocol::event::{ActiveRun as ActiveRunStatus, Event};
use herd_protocol::summary::{RunState, Summary};
use herd_protocol::RunId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Limits and timings of the manager.
#[derive(Debug, Clone, Copy)]
pub struct ManagerConfig {
    /// Agents all active runs together may use.
    pub max_agents: u32,
    /// Phase deadlines of each run.
    pub timeouts: Timeouts,
}

/// What the manager looks like now (for `/readyz`, `/metrics`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManagerView {
    /// Active runs.
    pub active_runs: usize,
    /// Agents they use.
    pub agents_in_use: u32,
    /// Commands carried out, refused and repeated, since the start.
    pub commands_done: u64,
    /// Commands refused.
    pub commands_rejected: u64,
    /// Commands whose id was seen before.
    pub commands_repeated: u64,
    /// Runs that ended, by final state name.
    pub runs_ended: HashMap<&'static str, u64>,
    /// Whether it stopped taking commands.
    pub shutting_down: bool,
    /// The regions its launcher can place agents in (`[[launcher.regions]]` and its own), or
    /// `None` when any name will do (local agents take a plan's regions as labels).
    pub regions: Option<Vec<String>>,
}

/// What a caller can follow of an active run.
#[derive(Clone)]
pub struct RunWatch {
    /// The stored test it runs, if any.
    pub test: Option<String>,
    /// Its live view.
    pub view: watch::Receiver<RunView>,
    /// `Some` once it ended (its summary is stored by then).
    pub done: watch::Receiver<Option<Arc<Summary>>>,
}

/// Messages to the manager task.
pub enum Msg {
    /// Carry out a command.
    Command(CommandMessage, oneshot::Sender<Result<Reply, Rejection>>),
    /// Follow an active run (`None` if it is not active).
    Watch(RunId, oneshot::Sender<Option<RunWatch>>),
    /// Each active run, as `runs.active` lists it.
    Active(oneshot::Sender<Vec<ActiveRunStatus>>),
    /// The phase of each active run (for `/metrics`).
    Phases(oneshot::Sender<Vec<&'static str>>),
    /// A run ended (sent by the task awaiting its outcome; `None` if its actor died without one).
    Ended(RunId, Option<Box<Summary>>),
    /// Stop taking commands, cancel active runs and wait (at most the given time) for them.
    Shutdown(Duration, oneshot::Sender<()>),
}

/// A handle to the manager task. Cheap to clone.
#[derive(Clone)]
pub struct Manager {
    tx: mpsc::UnboundedSender<Msg>,
    view: watch::Receiver<ManagerView>,
}

impl Manager {
    /// Starts the manager task on the current actix system (run actors live there).
    pub fn start(config: ManagerConfig, deps: RunDeps, events: Arc<dyn EventSink>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (view_tx, view) = watch::channel(ManagerView {
            regions: deps.launcher.regions(),
            ..ManagerView::default()
        });
        let task = Task {
            config,
            deps,
            events,
            clock: Clock::new(),
            active: HashMap::new(),
            tx: tx.clone(),
            view: view_tx,
            shutting_down: false,
        };
        actix::spawn(task.run(rx));
        Self { tx, view }
    }

    /// Carries out a command.
    pub async fn execute(&self, command: CommandMessage) -> Result<Reply, Rejection> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Command(command, reply))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Follows an active run; `None` if it is not active (ended, or never existed).
    pub async fn watch(&self, run: RunId) -> Option<RunWatch> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Msg::Watch(run, reply)).ok()?;
        rx.await.ok().flatten()
    }

    /// Each active run with its phase and figures so far (a chat `status`).
    pub async fn active_runs(&self) -> Vec<ActiveRunStatus> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Msg::Active(reply)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// The phase name of each active run.
    pub async fn active_phases(&self) -> Vec<&'static str> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Msg::Phases(reply)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Stops taking commands and waits for active runs to end, at most `limit`: they may finish
    /// on their own until the last [`CANCEL_MARGIN`] of it, then they are cancelled.
    pub async fn shutdown(&self, limit: Duration) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(limit, reply)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The manager's observable state.
    pub fn view(&self) -> ManagerView {
        self.view.borrow().clone()
    }
}

/// The part of a shutdown's limit reserved for cancelling runs that did not finish on their own
/// (graceful stop of their agents, storing their results).
pub const CANCEL_MARGIN: Duration = Duration::from_secs(15);

fn stopped() -> Rejection {
    Rejection::new(Code::Unavailable, "the coordinator is shutting down")
}

struct ActiveRun {
    test: Option<String>,
    agents: u32,
    addr: Addr<RunActor>,
    view: watch::Receiver<RunView>,
    done: watch::Sender<Option<Arc<Summary>>>,
    command_id: String,
}

impl ActiveRun {
    /// Whether the run still holds its test and its agents. A run whose actor has stored its end
    /// does not, although the manager hears of the outcome a moment later: a client that read the
    /// final state may at once delete the test or start another run of it.
    fn is_live(&self) -> bool {
        !self.view.borrow().phase.is_ended()
    }
}

struct Task {
    config: ManagerConfig,
    deps: RunDeps,
    events: Arc<dyn EventSink>,
    clock: Clock,
    active: HashMap<RunId, ActiveRun>,
    tx: mpsc::UnboundedSender<Msg>,
    view: watch::Sender<ManagerView>,
    shutting_down: bool,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        self.resume_unfinished().await;
        let mut drained: Vec<oneshot::Sender<()>> = Vec::new();
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut cancel_at: Option<tokio::time::Instant> = None;
        loop {
            let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
            let msg = tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => msg,
                    None => return,
                },
                () = tokio::time::sleep_until(cancel_at.unwrap_or(far)), if cancel_at.is_some() => {
                    cancel_at = None;
                    tracing::warn!(runs = self.active.len(), "runs did not finish in time for the shutdown: cancelling them");
                    for active in self.active.values() {
                        active.addr.do_send(Cancel {
                            reason: "the coordinator is shutting down".into(),
                        });
                    }
                    continue;
                }
                () = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                    tracing::warn!(runs = self.active.len(), "runs still active at the shutdown deadline");
                    break;
                }
            };
            match msg {
                Msg::Command(command, reply) => {
                    let result = if self.shutting_down {
                        Err(stopped())
                    } else {
                        self.command(command).await
                    };
                    let _ = reply.send(result);
                }
                Msg::Watch(run, reply) => {
                    let _ = reply.send(self.active.get(&run).map(|a| RunWatch {
                        test: a.test.clone(),
                        view: a.view.clone(),
                        done: a.done.subscribe(),
                    }));
                }
                Msg::Active(reply) => {
                    let mut runs: Vec<ActiveRunStatus> = self
                        .active
                        .iter()
                        .map(|(run, a)| {
                            let v = a.view.borrow();
                            ActiveRunStatus {
                                run: run.to_string(),
                                test: a.test.clone(),
                                phase: v.phase.as_str().into(),
                                agents: a.agents,
                                elapsed_s: v.elapsed_s,
                                planned_s: v.planned_s,
                                requests: v.requests,
                                errors: v.errors,
                            }
                        })
                        .collect();
                    runs.sort_by(|a, b| a.run.cmp(&b.run));
                    let _ = reply.send(runs);
                }
                Msg::Phases(reply) => {
                    let phases = self.active.values().map(|a| a.view.borrow().phase.as_str());
                    let _ = reply.send(phases.collect());
                }
                Msg::Ended(run, summary) => self.ended(&run, summary.map(|s| *s)),
                Msg::Shutdown(limit, reply) => {
                    // Active runs may finish on their own until the last CANCEL_MARGIN of the
                    // limit; then they are cancelled, which stops their agents gracefully and
                    // still stores their (partial) results before the deadline.
                    self.shutting_down = true;
                    self.view.send_modify(|v| v.shutting_down = true);
                    let now = tokio::time::Instant::now();
                    if deadline.is_none() {
                        cancel_at = Some(now + limit.saturating_sub(CANCEL_MARGIN));
                        deadline = Some(now + limit);
                    }
                    drained.push(reply);
                }
            }
            if self.shutting_down && self.active.is_empty() {
                break;
            }
        }
        for reply in drained {
            let _ = reply.send(());
        }
    }

    fn emit(&self, event: Event, command_id: Option<String>) {
        self.events
            .emit(events::message(event, command_id, self.clock.unix_ms()));
    }

    fn publish_view(&self) {
        let agents = self.active.values().map(|a| a.agents).sum();
        let runs = self.active.len();
        self.view.send_modify(|v| {
            v.active_runs = runs;
            v.agents_in_use = agents;
        });
    }

    /// Follows a started run: `run.started` when its load begins (unless `started` says it was
    /// announced already: a resumed run), `run.progress` as each second is aggregated,
    /// `agent.lost` as each agent is declared lost (from the run's view, so the actor needs no
    /// link to the event sink), and `Ended` when it is over.
    fn follow(
        &self,
        run: RunId,
        test: Option<String>,
        command_id: &str,
        handle: crate::run::RunHandle,
        started: bool,
    ) -> ActiveRun {
        let mut view = handle.view.clone();
        let events = self.events.clone();
        let clock = self.clock;
        let followed = run.clone();
        let started_test = test.clone();
        let command = command_id.to_string();
        actix::spawn(async move {
            let mut started = started;
            let mut last_t = None;
            let mut announced = std::collections::HashSet::new();
            while view.changed().await.is_ok() {
                let (phase, lost, progress) = {
                    let v = view.borrow_and_update();
                    let t = v.last_second.as_ref().map(|s| s.t);
                    let progress = (t.is_some() && t != last_t).then(|| {
                        last_t = t;
                        Event::RunProgress {
                            run: followed.to_string(),
                            test: started_test.clone(),
                            elapsed_s: v.elapsed_s,
                            planned_s: v.planned_s,
                            agents_live: v.agents_live,
                            requests: v.requests,
                            errors: v.errors,
                            last_second: v.last_second.clone().map(Box::new),
                        }
                    });
                    (v.phase, v.lost_agents.clone(), progress)
                };
                if !started && phase.load_started() {
                    started = true;
                    let event = Event::RunStarted {
                        run: followed.to_string(),
                        test: started_test.clone(),
                    };
                    events.emit(events::message(
                        event,
                        Some(command.clone()),
                        clock.unix_ms(),
                    ));
                }
                if let Some(event) = progress.filter(|_| !phase.is_over()) {
                    events.emit(events::message(event, None, clock.unix_ms()));
                }
                for agent in lost {
                    if announced.insert(agent.clone()) {
                        let event = Event::AgentLost {
                            run: followed.to_string(),
                            agent: agent.to_string(),
                        };
                        events.emit(events::message(event, None, clock.unix_ms()));
                    }
                }
                if phase.is_over() {
                    break;
                }
            }
        });
        let tx = self.tx.clone();
        let outcome = handle.outcome;
        let ended_run = run.clone();
        actix::spawn(wait_outcome(outcome, move |summary| {
            let _ = tx.send(Msg::Ended(ended_run, summary.map(Box::new)));
        }));
        ActiveRun {
            test,
            agents: 0,
            addr: handle.addr,
            view: handle.view,
            done: watch::channel(None).0,
            command_id: command_id.to_string(),
        }
    }

    fn ended(&mut self, run: &RunId, summary: Option<Summary>) {
        let Some(active) = self.active.remove(run) else {
            return;
        };
        self.publish_view();
        let Some(summary) = summary else {
            tracing::error!(%run, "the run actor stopped without a summary");
            return;
        };
        // A resumed run's command id is not known any more.
        let command = Some(active.command_id.clone()).filter(|id| !id.is_empty());
        let test = active.test.clone();
        let name = match summary.run_state {
            RunState::Completed => "completed",
            RunState::Degraded => "degraded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        };
        self.view
            .send_modify(|v| *v.runs_ended.entry(name).or_default() += 1);
        let failed: Vec<_> = summary
            .thresholds
            .iter()
            .filter(|t| !t.passed)
            .cloned()
            .collect();
        if !failed.is_empty() {
            self.emit(
                Event::ThresholdBreached {
                    run: run.to_string(),
                    test: test.clone(),
                    failed,
                },
                command.clone(),
            );
        }
        let boxed = Box::new(summary.clone());
        let event = match summary.run_state {
            RunState::Completed | RunState::Degraded => Event::RunCompleted {
                run: run.to_string(),
                test,
                summary: boxed,
            },
            RunState::Failed => Event::RunFailed {
                run: run.to_string(),
                test,
                reason: summary.reason.clone().unwrap_or_default(),
                summary: boxed,
            },
            RunState::Cancelled => Event::RunCancelled {
                run: run.to_string(),
                test,
                summary: boxed,
            },
        };
        self.emit(event, command);
        let _ = active.done.send(Some(Arc::new(summary)));
        self.publish_view();
    }
}

async fn wait_outcome(outcome: oneshot::Receiver<Summary>, then: impl FnOnce(Option<Summary>)) {
    then(outcome.await.ok());
}

impl CommandSink for Manager {
    fn execute(
        &self,
        command: CommandMessage,
    ) -> crate::launcher::BoxFuture<Result<Reply, Rejection>> {
        let this = self.clone();
        Box::pin(async move { Manager::execute(&this, command).await })
    }

    fn active_runs(&self) -> crate::launcher::BoxFuture<Vec<ActiveRunStatus>> {
        let this = self.clone();
        Box::pin(async move { Manager::active_runs(&this).await })
    }
}

#[cfg(test)]
mod tests;
