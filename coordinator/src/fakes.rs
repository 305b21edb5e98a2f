//! Test doubles for the run actor's boundaries, shared by the run and manager unit tests: a
//! launcher that starts nothing, and a bus that keeps each run's recipient and forwards commands.

use crate::bus::{AgentBus, BusError, Inbox};
use crate::launcher::{AgentExited, BoxFuture, LaunchError, LaunchSpec, Launched, Launcher};

use herd_protocol::agent::AgentCommandMessage;
use herd_protocol::{AgentId, RunId};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// "Launches" every agent at once and remembers which runs it was asked to stop; adopting finds
/// every agent running but those listed in `gone`.
#[derive(Default)]
pub struct FakeLauncher {
    /// Runs whose agents were stopped, in order.
    pub stopped: Mutex<Vec<RunId>>,
    /// Agents that adopting does not find.
    pub gone: Mutex<Vec<AgentId>>,
    /// Every agent it was asked to launch, in order.
    pub launched: Mutex<Vec<AgentId>>,
    /// Refuses launches from now on (a replacement that cannot start).
    pub refuse: std::sync::atomic::AtomicBool,
}

impl Launcher for FakeLauncher {
    fn launch(
        &self,
        spec: LaunchSpec,
        _: mpsc::UnboundedSender<AgentExited>,
    ) -> BoxFuture<Result<Vec<Launched>, LaunchError>> {
        self.launched
            .lock()
            .expect("lock")
            .extend(spec.agents.iter().cloned());
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            return Box::pin(async { Err(LaunchError::Program("fake: refused".into())) });
        }
        let launched = spec
            .agents
            .iter()
            .map(|a| Launched {
                agent: a.clone(),
                handle: format!("fake {a}"),
            })
            .collect();
        Box::pin(async move { Ok(launched) })
    }

    fn stop(&self, run: &RunId) -> BoxFuture<()> {
        self.stopped.lock().expect("lock").push(run.clone());
        Box::pin(async {})
    }

    fn adopt(
        &self,
        _: &RunId,
        agents: Vec<Launched>,
        _: mpsc::UnboundedSender<AgentExited>,
    ) -> BoxFuture<Vec<AgentId>> {
        let gone = self.gone.lock().expect("lock").clone();
        let running = agents
            .into_iter()
            .map(|a| a.agent)
            .filter(|a| !gone.contains(a))
            .collect();
        Box::pin(async move { running })
    }
}

/// Keeps each run's inbound recipient, forwards commands sent to agents, and remembers how many
/// of each run's messages it was told it may acknowledge.
pub struct FakeBus {
    /// The recipient each run registered.
    pub runs: Mutex<HashMap<RunId, Inbox>>,
    /// The latest acknowledged count of each run.
    pub acknowledged: Mutex<HashMap<RunId, u64>>,
    commands: mpsc::UnboundedSender<AgentCommandMessage>,
}

impl FakeBus {
    /// A bus, and the receiving end of the commands sent through it.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<AgentCommandMessage>) {
        let (commands, rx) = mpsc::unbounded_channel();
        let bus = Self {
            runs: Mutex::new(HashMap::new()),
            acknowledged: Mutex::new(HashMap::new()),
            commands,
        };
        (bus, rx)
    }
}

impl AgentBus for FakeBus {
    fn register(&self, run: &RunId, to: Inbox) -> BoxFuture<Result<(), BusError>> {
        self.runs.lock().expect("lock").insert(run.clone(), to);
        Box::pin(async { Ok(()) })
    }
    fn unregister(&self, _: &RunId) -> BoxFuture<()> {
        Box::pin(async {})
    }
    fn send_command(&self, message: AgentCommandMessage) -> BoxFuture<Result<(), BusError>> {
        let _ = self.commands.send(message);
        Box::pin(async { Ok(()) })
    }
    fn publish_live(&self, _: &RunId, _: Vec<u8>) -> BoxFuture<Result<(), BusError>> {
        Box::pin(async { Ok(()) })
    }
    fn acknowledge(&self, run: &RunId, count: u64) {
        self.acknowledged
            .lock()
            .expect("lock")
            .insert(run.clone(), count);
    }
}
