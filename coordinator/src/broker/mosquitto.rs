//! Per-run credentials on an external Mosquitto: a password file and an ACL file the
//! coordinator writes and has Mosquitto reload (SIGHUP to the pid in its `pid_file`).
//!
//! `[broker] mosquitto_password_file`, `mosquitto_acl_file` (and `mosquitto_pid_file`) name the
//! files Mosquitto's own `password_file`, `acl_file` (and `pid_file`) point at. Each time a run's
//! agents are launched or adopted, or a run ends, both files are written again from what is open:
//! - the coordinator (`herd-coordinator`): every herd topic;
//! - the commander (`herd-commander`): write `herd/commands`, read the live topics;
//! - each agent of an open run (`{run}/{agent}`): write only its own `status` and `frames`,
//!   read only its run's `cmd`.
//!
//! Passwords are stored as Mosquitto 2's `$7$` hashes (PBKDF2-HMAC-SHA512, 101 iterations, a
//! random 12-byte salt), never in clear. Mosquitto enforces connection and topics here; the
//! coordinator still checks each message's MAC, so what slips past a misconfigured broker is
//! dropped too. The files are written whole to a temporary name and renamed into place.

use base64::Engine as _;
use herd_protocol::msgauth::Credential;
use herd_protocol::{topics, AgentId, RunId};
use ring::rand::{SecureRandom, SystemRandom};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

/// Everyone Mosquitto should admit (the caller derives the credentials).
#[derive(Debug)]
pub struct Users {
    /// The coordinator: every herd topic.
    pub coordinator: Credential,
    /// The commander: `herd/commands`, the live topics.
    pub commander: Credential,
    /// Each open run's agents.
    pub agents: Vec<(RunId, AgentId, Credential)>,
}

/// Where Mosquitto reads its users and ACLs (`[broker] mosquitto_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MosquittoFiles {
    /// Mosquitto's `password_file`.
    pub password_file: PathBuf,
    /// Mosquitto's `acl_file`.
    pub acl_file: PathBuf,
    /// Mosquitto's `pid_file`: signalled (SIGHUP) to reload both; none: Mosquitto is told by
    /// someone else.
    pub pid_file: Option<PathBuf>,
}

/// Why the files could not be written or Mosquitto not told.
#[derive(Debug, thiserror::Error)]
pub enum MosquittoError {
    /// Writing a file.
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
    /// No randomness for a salt.
    #[error("no randomness for a password salt")]
    Random,
    /// Reading the pid file or signalling.
    #[error("cannot tell Mosquitto to reload ({0}): {1}")]
    Reload(PathBuf, String),
}

/// Mosquitto's `$7$` hash of `password` with `salt`.
pub fn password_hash(password: &str, salt: &[u8]) -> String {
    const ITERATIONS: u32 = 101;
    let mut hash = [0u8; 64];
    let iterations = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA512,
        iterations,
        salt,
        password.as_bytes(),
        &mut hash,
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    format!("$7${ITERATIONS}${}${}", b64.encode(salt), b64.encode(hash))
}

/// The ACL file's text for `users`.
pub fn acl_text(users: &Users) -> String {
    let mut out = format!(
        "# Written by herd: do not edit (it is rewritten at every run).\n\
         user {}\ntopic readwrite herd/#\n\n\
         user {}\ntopic write {}\ntopic read herd/runs/+/live\n",
        users.coordinator.username,
        users.commander.username,
        topics::COORDINATOR_COMMANDS
    );
    for (run, agent, credential) in &users.agents {
        out.push_str(&format!(
            "\nuser {}\ntopic write {}\ntopic write {}\ntopic read {}\n",
            credential.username,
            topics::status(run, agent),
            topics::frames(run, agent),
            topics::commands(run),
        ));
    }
    out
}

impl MosquittoFiles {
    /// Writes both files for `users` and tells Mosquitto to reload them.
    pub fn sync(&self, users: &Users) -> Result<(), MosquittoError> {
        let rng = SystemRandom::new();
        let all = [&users.coordinator, &users.commander]
            .into_iter()
            .chain(users.agents.iter().map(|(_, _, c)| c));
        let mut passwords = String::new();
        for user in all {
            let mut salt = [0u8; 12];
            rng.fill(&mut salt).map_err(|_| MosquittoError::Random)?;
            passwords.push_str(&format!(
                "{}:{}\n",
                user.username,
                password_hash(&user.password, &salt)
            ));
        }
        write(&self.password_file, &passwords)?;
        write(&self.acl_file, &acl_text(users))?;
        self.reload()
    }

    /// Whether the password file already admits `user` (written by an earlier process with the
    /// same master key): a restarting coordinator then leaves both files as they are, so the
    /// agents of the runs it is about to resume keep their rights meanwhile.
    pub fn admits(&self, user: &Credential) -> bool {
        let Ok(text) = std::fs::read_to_string(&self.password_file) else {
            return false;
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        text.lines().any(|line| {
            let Some(hash) = line.strip_prefix(&format!("{}:", user.username)) else {
                return false;
            };
            let salt = hash
                .strip_prefix("$7$101$")
                .and_then(|rest| rest.split_once('$'))
                .and_then(|(salt, _)| b64.decode(salt).ok());
            salt.is_some_and(|salt| password_hash(&user.password, &salt) == hash)
        })
    }

    fn reload(&self) -> Result<(), MosquittoError> {
        let Some(pid_file) = &self.pid_file else {
            return Ok(());
        };
        let failed = |e: String| MosquittoError::Reload(pid_file.clone(), e);
        let pid = std::fs::read_to_string(pid_file).map_err(|e| failed(e.to_string()))?;
        let pid = pid.trim();
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(failed(format!("{pid:?} is not a process id")));
        }
        let status = std::process::Command::new("kill")
            .args(["-HUP", pid])
            .status()
            .map_err(|e| failed(e.to_string()))?;
        if !status.success() {
            return Err(failed(format!("kill -HUP {pid}: {status}")));
        }
        Ok(())
    }
}

/// Writes `text` to `path` through a temporary file renamed into place, readable by its owner
/// only (Mosquitto running as that owner, or as root, reads it).
fn write(path: &Path, text: &str) -> Result<(), MosquittoError> {
    let failed = |e| MosquittoError::Write(path.to_path_buf(), e);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(failed)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(failed)?;
    std::fs::rename(&tmp, path).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_lets_each_agent_write_only_its_topics_and_read_its_runs_commands() {
        let user = |name: &str| Credential {
            username: name.into(),
            password: "pw".into(),
        };
        let run = RunId::new("r1").expect("run");
        let users = Users {
            coordinator: user("herd-coordinator"),
            commander: user("herd-commander"),
            agents: vec![(run, AgentId::numbered(0), user("r1/agent-0"))],
        };
        let acl = acl_text(&users);
        assert!(acl.contains(
            "user r1/agent-0\ntopic write herd/runs/r1/agents/agent-0/status\n\
             topic write herd/runs/r1/agents/agent-0/frames\ntopic read herd/runs/r1/cmd\n"
        ));
        assert!(acl.contains("user herd-commander\ntopic write herd/commands\n"));
        assert!(
            !acl.contains("pattern"),
            "users are named, no pattern widens them"
        );
    }

    #[test]
    fn hashes_have_mosquittos_layout_and_depend_on_the_salt() {
        let a = password_hash("pw", b"saltsaltsalt");
        assert!(a.starts_with("$7$101$c2FsdHNhbHRzYWx0$"), "{a}");
        assert_ne!(a, password_hash("pw", b"saltsaltsalX"));
        assert!(!a.contains("pw$"));
    }

    #[test]
    fn a_password_file_admits_the_users_written_to_it_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = MosquittoFiles {
            password_file: dir.path().join("p"),
            acl_file: dir.path().join("a"),
            pid_file: None,
        };
        let user = |name: &str, pw: &str| Credential {
            username: name.into(),
            password: pw.into(),
        };
        let me = user("herd-coordinator", "pw-1");
        assert!(!files.admits(&me), "no file yet");
        files
            .sync(&Users {
                coordinator: me.clone(),
                commander: user("herd-commander", "pw-2"),
                agents: Vec::new(),
            })
            .expect("written");
        assert!(files.admits(&me));
        assert!(!files.admits(&user("herd-coordinator", "pw-other")));
    }
}
