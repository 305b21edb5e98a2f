//! Agents as child processes of this machine: `herd agent --broker … --run … --agent …`.
//!
//! Each child gets a waiter task that reports its exit; stopping sends it a kill through that
//! task, so one place owns the `Child`. Children are killed if the coordinator goes away.

use super::{AgentExited, BoxFuture, LaunchError, LaunchSpec, Launched, Launcher};
use herd_protocol::RunId;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};

/// Launches agents as local processes.
#[derive(Debug, Clone)]
pub struct LocalLauncher {
    program: PathBuf,
    log_dir: Option<PathBuf>,
    kills: Arc<Mutex<HashMap<RunId, Vec<oneshot::Sender<()>>>>>,
}

impl LocalLauncher {
    /// Launches `program agent …`; `program` is normally the running `herd` executable.
    /// Agents' stderr goes to `log_dir/{run}/{agent}.log` when a log directory is given.
    pub fn new(program: PathBuf, log_dir: Option<PathBuf>) -> Self {
        Self {
            program,
            log_dir,
            kills: Arc::default(),
        }
    }

    fn stderr_for(&self, run: &RunId, agent: &str) -> Stdio {
        let Some(dir) = &self.log_dir else {
            return Stdio::null();
        };
        let dir = dir.join(run.as_str());
        let file = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::File::create(dir.join(format!("{agent}.log"))));
        match file {
            Ok(f) => Stdio::from(f),
            Err(e) => {
                tracing::warn!(error = %e, "cannot create agent log file; agent stderr discarded");
                Stdio::null()
            }
        }
    }
}

impl Launcher for LocalLauncher {
    fn launch(
        &self,
        spec: LaunchSpec,
        events: mpsc::UnboundedSender<AgentExited>,
    ) -> BoxFuture<Result<Vec<Launched>, LaunchError>> {
        let this = self.clone();
        Box::pin(async move {
            if !this.program.exists() {
                return Err(LaunchError::Program(this.program.display().to_string()));
            }
            let mut launched = Vec::with_capacity(spec.agents.len());
            let mut kills = Vec::with_capacity(spec.agents.len());
            for agent in &spec.agents {
                let mut child = Command::new(&this.program)
                    .arg("agent")
                    .arg("--broker")
                    .arg(&spec.broker_url)
                    .arg("--run")
                    .arg(spec.run.as_str())
                    .arg("--agent")
                    .arg(agent.as_str())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(this.stderr_for(&spec.run, agent.as_str()))
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|source| LaunchError::Spawn {
                        agent: agent.clone(),
                        source,
                    })?;
                let pid = child.id().map_or_else(|| "?".into(), |p| p.to_string());
                let (kill_tx, kill_rx) = oneshot::channel::<()>();
                kills.push(kill_tx);
                let events = events.clone();
                let agent_id = agent.clone();
                tokio::spawn(async move {
                    let status = tokio::select! {
                        status = child.wait() => status,
                        _ = kill_rx => {
                            let _ = child.start_kill();
                            child.wait().await
                        }
                    };
                    let (success, detail) = match status {
                        Ok(s) => (s.success(), s.to_string()),
                        Err(e) => (false, format!("wait failed: {e}")),
                    };
                    let _ = events.send(AgentExited {
                        agent: agent_id,
                        success,
                        detail,
                    });
                });
                launched.push(Launched {
                    agent: agent.clone(),
                    handle: format!("pid {pid}"),
                });
            }
            if let Ok(mut map) = this.kills.lock() {
                map.insert(spec.run.clone(), kills);
            }
            Ok(launched)
        })
    }

    fn stop(&self, run: &RunId) -> BoxFuture<()> {
        let kills = self.kills.lock().ok().and_then(|mut m| m.remove(run));
        Box::pin(async move {
            for kill in kills.into_iter().flatten() {
                // The waiter is gone when the child already exited: nothing to stop.
                let _ = kill.send(());
            }
        })
    }
}
