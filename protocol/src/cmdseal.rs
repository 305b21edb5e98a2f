//! Commands only the run's own agents can read and only the coordinator can write.
//!
//! A broker that checks credentials only at CONNECT (the embedded rumqttd) lets any admitted
//! client subscribe to any topic and publish on it: an agent of run A could read run B's start
//! command, which carries B's resolved secrets and plan, or publish a `stop` there. So the
//! coordinator seals every command on a run's `cmd` topic with that run's *command key* (derived
//! by the coordinator from its master key, and handed to the run's agents at launch like their
//! broker password, `HERD_RUN_KEY`), and agents holding a key open nothing else:
//!
//! ```text
//! herd-sealed1\n ‖ nonce (12 bytes) ‖ ChaCha20-Poly1305(command JSON, aad = topic)
//!   \nherd-mac1 <HMAC-SHA256(run key, topic ‖ 0x00 ‖ everything before the trailer)>
//! ```
//!
//! The AEAD hides the command from other runs' agents (they see ciphertext) and makes a forged or
//! moved one fail to open; the MAC trailer is the same `herd-mac1` every herd message carries
//! ([`crate::msgauth`]), so one rule holds on every topic. The AEAD key is derived from the run
//! key (HMAC-SHA256 under it of a fixed label), so one secret travels to the agent. Nonces are
//! random (96 bits): a run sends a handful of commands, far from a collision. Replaying a command
//! verbatim on its own topic is harmless (a start or stop heard twice changes nothing).

use crate::msgauth::{self, MacError};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// What starts a sealed command.
const SEALED: &[u8] = b"herd-sealed1\n";
/// The label the AEAD key is derived with.
const AEAD_LABEL: &[u8] = b"herd-cmd-aead1";

/// A run's command key (hex). `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct RunKey(String);

impl RunKey {
    /// A key as the coordinator derived it and the agent received it (`HERD_RUN_KEY`).
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key's text, to hand to the run's agents.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RunKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunKey(***)")
    }
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Its MAC is missing or made with another key (not the coordinator's for this run).
    #[error(transparent)]
    Mac(#[from] MacError),
    /// Signed but not sealed (no coordinator sends that).
    #[error("the command is not sealed")]
    NotSealed,
    /// The ciphertext does not open with this run's key (altered, or another run's).
    #[error("the command does not open with this run's key")]
    Open,
    /// The system's CSPRNG refused a nonce.
    #[error("no randomness for a nonce")]
    NoRandomness,
}

fn aead_key(run_key: &str) -> Result<LessSafeKey, SealError> {
    let derived = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, run_key.as_bytes()),
        AEAD_LABEL,
    );
    // An HMAC-SHA256 tag is 32 bytes, ChaCha20-Poly1305's key length.
    UnboundKey::new(&CHACHA20_POLY1305, derived.as_ref())
        .map(LessSafeKey::new)
        .map_err(|_| SealError::Open)
}

/// `command` sealed and signed for `topic` with `run_key`.
pub fn seal(key: &RunKey, topic: &str, command: &[u8]) -> Result<Vec<u8>, SealError> {
    let run_key = key.expose();
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| SealError::NoRandomness)?;
    let mut body = command.to_vec();
    aead_key(run_key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(topic.as_bytes()),
            &mut body,
        )
        .map_err(|_| SealError::Open)?;
    let mut sealed = Vec::with_capacity(SEALED.len() + NONCE_LEN + body.len());
    sealed.extend_from_slice(SEALED);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&body);
    Ok(msgauth::sign(run_key, topic, &sealed))
}

/// The command in `message` on `topic`, if the coordinator sealed and signed it with `run_key`.
pub fn open(key: &RunKey, topic: &str, message: &[u8]) -> Result<Vec<u8>, SealError> {
    let run_key = key.expose();
    let sealed = msgauth::verify(run_key, topic, message)?;
    let rest = sealed.strip_prefix(SEALED).ok_or(SealError::NotSealed)?;
    if rest.len() < NONCE_LEN {
        return Err(SealError::Open);
    }
    let (nonce, body) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
    let mut body = body.to_vec();
    let plain = aead_key(run_key)?
        .open_in_place(nonce, Aad::from(topic.as_bytes()), &mut body)
        .map_err(|_| SealError::Open)?;
    Ok(plain.to_vec())
}

/// Whether `message` is a sealed command (for readers that hold no key and must skip it).
pub fn is_sealed(message: &[u8]) -> bool {
    message.starts_with(SEALED)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "herd/runs/r1/cmd";
    const COMMAND: &[u8] = br#"{"type":"start","secrets":{"TOKEN":"s3cr3t-value-77"}}"#;

    fn k(text: &str) -> RunKey {
        RunKey::new(text)
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_sealed_command_opens_only_with_its_runs_key_and_topic() {
        let sealed = seal(&k("key-r1"), TOPIC, COMMAND).expect("sealed");
        assert!(is_sealed(&sealed));
        assert!(!contains(&sealed, b"s3cr3t-value-77"), "plaintext leaked");
        assert!(!contains(&sealed, b"TOKEN"), "plaintext leaked");
        assert_eq!(open(&k("key-r1"), TOPIC, &sealed).as_deref(), Ok(COMMAND));
        assert_eq!(
            open(&k("key-r2"), TOPIC, &sealed),
            Err(SealError::Mac(MacError::Mismatch))
        );
        assert_eq!(
            open(&k("key-r1"), "herd/runs/r2/cmd", &sealed),
            Err(SealError::Mac(MacError::Mismatch))
        );
        // Two seals of the same command differ (fresh nonces).
        assert_ne!(seal(&k("key-r1"), TOPIC, COMMAND).expect("sealed"), sealed);
    }

    #[test]
    fn unsealed_unsigned_or_altered_commands_are_refused() {
        assert_eq!(
            open(&k("k"), TOPIC, COMMAND),
            Err(SealError::Mac(MacError::Missing))
        );
        // Signed with the right key but not sealed: refused too.
        let signed = msgauth::sign("k", TOPIC, COMMAND);
        assert_eq!(open(&k("k"), TOPIC, &signed), Err(SealError::NotSealed));
        // A re-signed ciphertext whose bytes were altered does not open.
        let sealed = seal(&k("k"), TOPIC, COMMAND).expect("sealed");
        let (body, _) = msgauth::split(&sealed);
        let mut altered = body.to_vec();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        let resigned = msgauth::sign("k", TOPIC, &altered);
        assert_eq!(open(&k("k"), TOPIC, &resigned), Err(SealError::Open));
        // Too short to hold a nonce.
        let stub = msgauth::sign("k", TOPIC, SEALED);
        assert_eq!(open(&k("k"), TOPIC, &stub), Err(SealError::Open));
    }

    #[test]
    fn debug_hides_the_key() {
        assert!(!format!("{:?}", k("hidden-42")).contains("hidden-42"));
    }
}
