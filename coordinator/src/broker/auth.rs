//! Who the embedded broker lets in, and the keys the coordinator checks messages with.
//!
//! [`BrokerKeys`] holds a random master key (ring's CSPRNG, in memory: the embedded broker dies
//! with the process, and its agents with it) and derives every credential from it:
//! - the coordinator's own (`herd-coordinator`), for its sessions;
//! - the commander's (`herd-commander`), for whoever publishes on `herd/commands` or watches the
//!   live topics (`herd up` writes it to `broker-credentials.json` in its data directory, readable
//!   by its owner only);
//! - one per agent of each open run: user `{run}/{agent}`, password the hex HMAC-SHA256 of the
//!   run and agent under the master key, valid only from the run's launch until it ends
//!   ([`BrokerKeys::open`], [`BrokerKeys::close`]) and only with the agent's client id;
//! - one command key per run ([`BrokerKeys::run_key`]), handed to the run's agents only: every
//!   command on the run's `cmd` topic is sealed and signed with it, so an admitted agent of
//!   another run that subscribes there reads ciphertext and cannot forge a `stop`.
//!
//! The broker enforces the connection: a client with no, a wrong, an ended run's, or another
//! agent's client id's credential is refused at CONNECT ([`BrokerKeys::admits`]). rumqttd cannot
//! restrict topics, so the coordinator enforces them: each message carries the MAC of its topic and
//! payload under its publisher's password ([`herd_protocol::msgauth`]), and the coordinator
//! verifies it with the key of the agent its topic names ([`BrokerKeys::agent`]), or of the
//! commander on `herd/commands`.

use super::mosquitto::{MosquittoError, MosquittoFiles, Users};
use herd_protocol::cmdseal::RunKey;
use herd_protocol::msgauth::{self, Credential};
use herd_protocol::{AgentId, RunId};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::RwLock;

/// The coordinator's own user name.
pub const COORDINATOR_USER: &str = "herd-coordinator";
/// The user name of the credential for `herd/commands` and the live topics.
pub const COMMANDER_USER: &str = "herd-commander";

/// See the module docs.
pub struct BrokerKeys {
    master: hmac::Key,
    coordinator: Credential,
    commander: Credential,
    /// Open runs and their agents (as launched; empty until then).
    open: RwLock<BTreeMap<RunId, Vec<AgentId>>>,
    /// An external Mosquitto told about every change.
    mosquitto: Option<MosquittoFiles>,
}

impl std::fmt::Debug for BrokerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerKeys").finish_non_exhaustive()
    }
}

/// The CSPRNG failed (the OS refused randomness).
#[derive(Debug, thiserror::Error)]
#[error("no randomness for the broker's credentials")]
pub struct NoRandomness;

impl BrokerKeys {
    /// A fresh master key from the system's CSPRNG.
    pub fn generate() -> Result<Self, NoRandomness> {
        let mut master = [0u8; 32];
        SystemRandom::new()
            .fill(&mut master)
            .map_err(|_| NoRandomness)?;
        Ok(Self::from_master(&master))
    }

    fn from_master(master: &[u8]) -> Self {
        let master = hmac::Key::new(hmac::HMAC_SHA256, master);
        let derive = |label: &str| msgauth::hex(hmac::sign(&master, label.as_bytes()).as_ref());
        Self {
            coordinator: Credential {
                username: COORDINATOR_USER.into(),
                password: derive("coordinator"),
            },
            commander: Credential {
                username: COMMANDER_USER.into(),
                password: derive("commander"),
            },
            master,
            open: RwLock::default(),
            mosquitto: None,
        }
    }

    /// The master key kept in `path` (created, readable by its owner only, if missing): with an
    /// external broker, agents and the broker outlive the coordinator, so a restarted one must
    /// derive the same credentials to resume its runs.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        if let Ok(text) = std::fs::read_to_string(path) {
            return msgauth::unhex(text.trim().as_bytes())
                .filter(|k| k.len() == 32)
                .map(|k| Self::from_master(&k))
                .ok_or_else(|| {
                    std::io::Error::other(format!("{} is not a herd broker key", path.display()))
                });
        }
        let mut master = [0u8; 32];
        SystemRandom::new()
            .fill(&mut master)
            .map_err(|_| std::io::Error::other(NoRandomness))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(&mut options.open(path)?, msgauth::hex(&master).as_bytes())?;
        Ok(Self::from_master(&master))
    }

    /// Keeps Mosquitto's password and ACL files in step with the open runs.
    pub fn with_mosquitto(mut self, files: MosquittoFiles) -> Self {
        self.mosquitto = Some(files);
        self
    }

    /// Writes Mosquitto's files for what is open now (nothing to do without Mosquitto).
    pub fn sync(&self) -> Result<(), MosquittoError> {
        let Some(files) = &self.mosquitto else {
            return Ok(());
        };
        let runs = self.open.read().map(|o| o.clone()).unwrap_or_default();
        files.sync(&Users {
            coordinator: self.coordinator.clone(),
            commander: self.commander.clone(),
            agents: runs
                .iter()
                .flat_map(|(run, agents)| {
                    agents
                        .iter()
                        .map(|a| (run.clone(), a.clone(), self.agent(run, a)))
                })
                .collect(),
        })
    }

    /// At start: writes Mosquitto's files unless they already admit this coordinator (then they
    /// were written with the same master key by an earlier process, and still list the agents of
    /// the runs about to be resumed, which must keep their rights until the runs reopen).
    pub fn sync_at_start(&self) -> Result<(), MosquittoError> {
        match &self.mosquitto {
            Some(files) if files.admits(&self.coordinator) => Ok(()),
            _ => self.sync(),
        }
    }

    fn sync_logged(&self) {
        if let Err(e) = self.sync() {
            tracing::error!(error = %e, "the broker's credentials are not up to date");
        }
    }

    /// The coordinator's own credential.
    pub fn coordinator(&self) -> &Credential {
        &self.coordinator
    }

    /// The credential for `herd/commands` and the live topics.
    pub fn commander(&self) -> &Credential {
        &self.commander
    }

    /// The credential of `agent` of `run` (valid at the broker while the run is open).
    pub fn agent(&self, run: &RunId, agent: &AgentId) -> Credential {
        let label = agent_label(run, agent);
        Credential {
            username: msgauth::agent_username(run, agent),
            password: msgauth::hex(hmac::sign(&self.master, label.as_bytes()).as_ref()),
        }
    }

    /// `run`'s command key: the coordinator seals and signs every command on the run's `cmd`
    /// topic with it, and only the run's agents receive it ([`herd_protocol::cmdseal`]).
    pub fn run_key(&self, run: &RunId) -> RunKey {
        let label = format!("run-cmd\0{run}");
        RunKey::new(msgauth::hex(
            hmac::sign(&self.master, label.as_bytes()).as_ref(),
        ))
    }

    /// `run`'s agents may connect from now on.
    pub fn open(&self, run: &RunId) {
        if let Ok(mut open) = self.open.write() {
            open.entry(run.clone()).or_default();
        }
    }

    /// `run`'s agents include these (launched or adopted; a later launch, of a replacement
    /// agent, adds to them): the run is open, and an external broker is told their credentials.
    pub fn launched(&self, run: &RunId, agents: &[AgentId]) {
        if let Ok(mut open) = self.open.write() {
            let known = open.entry(run.clone()).or_default();
            for agent in agents {
                if !known.contains(agent) {
                    known.push(agent.clone());
                }
            }
        }
        self.sync_logged();
    }

    /// `run` ended: its agents' credentials are refused from now on.
    pub fn close(&self, run: &RunId) {
        let removed = self
            .open
            .write()
            .is_ok_and(|mut open| open.remove(run).is_some());
        if removed {
            self.sync_logged();
        }
    }

    fn is_open(&self, run: &RunId) -> bool {
        self.open.read().is_ok_and(|open| open.contains_key(run))
    }

    /// Whether the broker accepts a CONNECT with these: the coordinator's or the commander's
    /// credential (any client id), or an open run's agent credential with that agent's client id.
    pub fn admits(&self, client_id: &str, username: &str, password: &str) -> bool {
        for (fixed, label) in [
            (&self.coordinator, "coordinator"),
            (&self.commander, "commander"),
        ] {
            if username == fixed.username {
                return self.checks(label, password);
            }
        }
        let Some((run, agent)) = username.split_once('/') else {
            return false;
        };
        let (Ok(run), Ok(agent)) = (RunId::new(run), AgentId::new(agent)) else {
            return false;
        };
        client_id == msgauth::agent_client_id(&run, &agent)
            && self.is_open(&run)
            && self.checks(&agent_label(&run, &agent), password)
    }

    /// Whether `password` is the credential derived for `label` (compared in constant time).
    fn checks(&self, label: &str, password: &str) -> bool {
        msgauth::unhex(password.as_bytes())
            .is_some_and(|mac| hmac::verify(&self.master, label.as_bytes(), &mac).is_ok())
    }
}

fn agent_label(run: &RunId, agent: &AgentId) -> String {
    format!("agent\0{run}\0{agent}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(run: &str, agent: &str) -> (RunId, AgentId) {
        (
            RunId::new(run).expect("run id"),
            AgentId::new(agent).expect("agent id"),
        )
    }

    #[test]
    fn only_an_open_runs_agent_with_its_own_client_id_and_password_connects() {
        let auth = BrokerKeys::generate().expect("randomness");
        let (r1, a0) = ids("r1", "agent-0");
        let (r2, _) = ids("r2", "agent-0");
        let c = auth.agent(&r1, &a0);
        let client = msgauth::agent_client_id(&r1, &a0);
        assert!(
            !auth.admits(&client, &c.username, &c.password),
            "run not open yet"
        );
        auth.open(&r1);
        assert!(auth.admits(&client, &c.username, &c.password));
        assert!(!auth.admits(&client, &c.username, "wrong"));
        assert!(!auth.admits(&client, &c.username, ""));
        assert!(!auth.admits("other-client", &c.username, &c.password));
        // Run 2's credential does not open run 1's agent, nor the other way round.
        auth.open(&r2);
        let other = auth.agent(&r2, &a0);
        assert_ne!(other.password, c.password);
        assert!(!auth.admits(&client, &c.username, &other.password));
        assert!(!auth.admits(&client, "r1/agent-1", &c.password));
        assert!(!auth.admits(&client, "nonsense", &c.password));
        auth.close(&r1);
        assert!(!auth.admits(&client, &c.username, &c.password), "run ended");
    }

    #[test]
    fn fixed_users_need_their_own_password_and_masters_differ() {
        let auth = BrokerKeys::generate().expect("randomness");
        let other = BrokerKeys::generate().expect("randomness");
        let op = auth.commander().clone();
        assert!(auth.admits("any", &op.username, &op.password));
        assert!(!auth.admits("any", &op.username, &auth.coordinator().password));
        assert!(!auth.admits("any", &op.username, &other.commander().password));
        let me = auth.coordinator();
        assert!(auth.admits("any", &me.username, &me.password));
        assert_ne!(me.password, op.password);
    }

    #[test]
    fn run_keys_differ_by_run_and_master_and_from_agent_passwords() {
        let auth = BrokerKeys::generate().expect("randomness");
        let other = BrokerKeys::generate().expect("randomness");
        let (r1, a0) = ids("r1", "agent-0");
        let (r2, _) = ids("r2", "agent-0");
        assert_eq!(auth.run_key(&r1), auth.run_key(&r1));
        assert_ne!(auth.run_key(&r1), auth.run_key(&r2));
        assert_ne!(auth.run_key(&r1), other.run_key(&r1));
        assert_ne!(auth.run_key(&r1).expose(), auth.agent(&r1, &a0).password);
    }
}
