//! Agents as child processes of this machine: `herd agent --broker … --run … --agent …`.
//!
//! Each child gets a waiter task that reports its exit; stopping sends it a kill through that
//! task, so one place owns the `Child`. Children are killed when the coordinator exits normally
//! (the `Child` is dropped).
//!
//! Each agent is started in a process group of its own, like an ECS task is independent of the
//! coordinator's: a Ctrl-C in the coordinator's terminal reaches the coordinator only (which then
//! stops its runs' agents gracefully itself), and a coordinator that crashes or is killed with
//! SIGKILL leaves its agents running, so a restarted coordinator can [`Launcher::adopt`] them by
//! the `pid N` handle it stored: it finds each process by its pid *and* its command line (`--run`,
//! `--agent`, so a recycled pid is not mistaken for an agent), then watches it through `/proc`
//! (it is not our child, so there is no exit status to wait for: an agent that disappears is
//! reported as exited with an unknown status) and can still kill it.

use super::{AgentExited, BoxFuture, LaunchError, LaunchSpec, Launched, Launcher};
use crate::broker::auth::BrokerKeys;
use herd_protocol::tls::{PemSource, TlsOptions};
use herd_protocol::{AgentId, RunId};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};

/// How often an adopted agent's process is looked at.
const ADOPTED_POLL: Duration = Duration::from_millis(250);

/// Launches agents as local processes.
#[derive(Debug, Clone)]
pub struct LocalLauncher {
    program: PathBuf,
    log_dir: Option<PathBuf>,
    /// CA and client certificate for a TLS broker, handed to every agent.
    broker_tls: TlsOptions,
    /// The region agents sign their WebSocket connections for (`[broker] auth = "sigv4"`).
    sigv4_region: Option<String>,
    /// Each agent's broker credential (the embedded broker's), when agents need one.
    credentials: Option<Arc<BrokerKeys>>,
    kills: Arc<Mutex<HashMap<RunId, Vec<oneshot::Sender<()>>>>>,
}

impl LocalLauncher {
    /// Launches `program agent …`; `program` is normally the running `herd` executable.
    /// Agents' stderr goes to `log_dir/{run}/{agent}.log` when a log directory is given.
    pub fn new(program: PathBuf, log_dir: Option<PathBuf>) -> Self {
        Self {
            program,
            log_dir,
            broker_tls: TlsOptions::default(),
            sigv4_region: None,
            credentials: None,
            kills: Arc::default(),
        }
    }

    /// Agents reach an `mqtts://` broker with this CA and client certificate (the coordinator's
    /// own `[broker] ca_file`, … when agents use the same broker). They get them through the
    /// environment (`HERD_MQTT_CA`, `HERD_MQTT_CERT`, `HERD_MQTT_KEY`), not the command line,
    /// which any local user can read.
    pub fn with_broker_tls(mut self, tls: TlsOptions) -> Self {
        self.broker_tls = tls;
        self
    }

    /// Agents sign their connections with SigV4 for `region` (`HERD_MQTT_AUTH=sigv4`,
    /// `AWS_REGION`), with the credentials they inherit from this process's environment.
    pub fn with_sigv4(mut self, region: Option<String>) -> Self {
        self.sigv4_region = region;
        self
    }

    /// Each agent gets its own broker credential and its run's command key from `auth` through
    /// its environment (`HERD_MQTT_USERNAME`, `HERD_MQTT_PASSWORD`, `HERD_RUN_KEY`), never on its
    /// command line.
    pub fn with_agent_credentials(mut self, auth: Arc<BrokerKeys>) -> Self {
        self.credentials = Some(auth);
        self
    }

    /// `agent`'s broker credential, as environment variables.
    fn credential_env(&self, run: &RunId, agent: &AgentId) -> Vec<(&'static str, String)> {
        self.credentials
            .iter()
            .flat_map(|auth| {
                let c = auth.agent(run, agent);
                [
                    ("HERD_MQTT_USERNAME", c.username),
                    ("HERD_MQTT_PASSWORD", c.password),
                    ("HERD_RUN_KEY", auth.run_key(run).expose().to_string()),
                ]
            })
            .collect()
    }

    fn broker_env(&self) -> Vec<(&'static str, String)> {
        let value = |p: &PemSource| match p {
            PemSource::File(path) => path.display().to_string(),
            PemSource::Inline(text) => text.clone(),
        };
        [
            ("HERD_MQTT_CA", &self.broker_tls.ca),
            ("HERD_MQTT_CERT", &self.broker_tls.cert),
            ("HERD_MQTT_KEY", &self.broker_tls.key),
        ]
        .into_iter()
        .filter_map(|(name, p)| p.as_ref().map(|p| (name, value(p))))
        .chain(self.sigv4_region.iter().flat_map(|region| {
            [
                ("HERD_MQTT_AUTH", "sigv4".to_string()),
                ("AWS_REGION", region.clone()),
            ]
        }))
        .collect()
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
            if let Some(auth) = &this.credentials {
                auth.launched(&spec.run, &spec.agents);
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
                    .envs(this.broker_env())
                    .envs(this.credential_env(&spec.run, agent))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(this.stderr_for(&spec.run, agent.as_str()))
                    .kill_on_drop(true)
                    .process_group(0)
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
                // A later launch for the same run (a replacement agent) adds to its agents: a
                // dropped kill sender would kill its agent.
                map.entry(spec.run.clone()).or_default().extend(kills);
            }
            Ok(launched)
        })
    }

    fn adopt(
        &self,
        run: &RunId,
        agents: Vec<Launched>,
        events: mpsc::UnboundedSender<AgentExited>,
    ) -> BoxFuture<Vec<AgentId>> {
        if let Some(auth) = &self.credentials {
            let ids: Vec<AgentId> = agents.iter().map(|l| l.agent.clone()).collect();
            auth.launched(run, &ids);
        }
        let mut running = Vec::new();
        let mut kills = Vec::new();
        for launched in agents {
            let Some(pid) = parse_handle(&launched.handle) else {
                tracing::warn!(%run, agent = %launched.agent, handle = %launched.handle, "not a local agent's handle");
                continue;
            };
            if !is_agent(pid, run, &launched.agent) {
                continue;
            }
            let (kill_tx, kill_rx) = oneshot::channel::<()>();
            kills.push(kill_tx);
            tokio::spawn(watch_adopted(
                pid,
                run.clone(),
                launched.agent.clone(),
                kill_rx,
                events.clone(),
            ));
            running.push(launched.agent);
        }
        if let Ok(mut map) = self.kills.lock() {
            map.entry(run.clone()).or_default().extend(kills);
        }
        Box::pin(async move { running })
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

/// The pid of a `pid N` handle.
fn parse_handle(handle: &str) -> Option<i32> {
    handle.strip_prefix("pid ")?.trim().parse().ok()
}

/// Whether process `pid` is alive (not a zombie) and is agent `agent` of `run`.
fn is_agent(pid: i32, run: &RunId, agent: &AgentId) -> bool {
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // Field 3, after the parenthesised name (which may hold spaces), is the state.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        !matches!(state, Some("Z" | "X") | None)
    });
    if !alive {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let has = |flag: &str, value: &str| {
        args.windows(2)
            .any(|w| w[0] == flag.as_bytes() && w[1] == value.as_bytes())
    };
    has("--run", run.as_str()) && has("--agent", agent.as_str())
}

/// Watches an adopted agent until it is gone, killing it when asked, and reports its exit.
async fn watch_adopted(
    pid: i32,
    run: RunId,
    agent: AgentId,
    mut kill: oneshot::Receiver<()>,
    events: mpsc::UnboundedSender<AgentExited>,
) {
    let mut killed = false;
    while is_agent(pid, &run, &agent) {
        tokio::select! {
            () = tokio::time::sleep(ADOPTED_POLL) => {}
            request = &mut kill, if !killed => {
                killed = true;
                if request.is_ok() {
                    if let Some(p) = rustix::process::Pid::from_raw(pid) {
                        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    }
                }
            }
        }
    }
    let _ = events.send(AgentExited {
        agent,
        // Not our child: its exit status is unknown. Treated as a normal end, so the run waits a
        // moment for the agent's "finished" message before declaring it lost.
        success: true,
        detail: format!("process {pid} (adopted after a coordinator restart) is gone"),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_pids() {
        assert_eq!(parse_handle("pid 4242"), Some(4242));
        assert_eq!(parse_handle("pid ?"), None);
        assert_eq!(parse_handle("arn:aws:ecs:task/1"), None);
    }

    #[tokio::test]
    async fn an_agent_is_adopted_by_pid_and_command_line_watched_and_killed() {
        let run = RunId::new("run-adopt").expect("run id");
        let (a0, a1) = (AgentId::numbered(0), AgentId::numbered(1));
        // A stand-in agent: a process whose command line carries the run and agent flags, which
        // waits on its stdin (a shell builtin, so it has no child of its own to leave behind).
        let mut child = Command::new("sh")
            .args([
                "-c",
                "read line",
                "herd",
                "agent",
                "--run",
                run.as_str(),
                "--agent",
                a0.as_str(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sh");
        let pid = child.id().expect("pid");
        // Until the child has exec'd, its command line is still this test's: on a loaded machine
        // adopting it at once found "not agent-0 of this run" (a real adoption meets processes
        // that have run for a while).
        let cmdline = format!("/proc/{pid}/cmdline");
        for _ in 0..500 {
            if std::fs::read(&cmdline).is_ok_and(|c| c.windows(9).any(|w| w == b"run-adopt")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let launcher = LocalLauncher::new(PathBuf::from("/nonexistent"), None);
        let (tx, mut exits) = mpsc::unbounded_channel();
        let handles = vec![
            Launched {
                agent: a0.clone(),
                handle: format!("pid {pid}"),
            },
            // Our own pid is alive but is not agent-1 of this run: a recycled pid is not adopted.
            Launched {
                agent: a1,
                handle: format!("pid {}", std::process::id()),
            },
        ];
        let running = launcher.adopt(&run, handles, tx).await;
        assert_eq!(running, vec![a0.clone()]);
        launcher.stop(&run).await;
        let exit = tokio::time::timeout(Duration::from_secs(10), exits.recv())
            .await
            .expect("the kill is seen")
            .expect("an exit");
        assert_eq!(exit.agent, a0);
        let status = child.wait().await.expect("wait");
        assert!(!status.success(), "killed: {status}");
    }
}
