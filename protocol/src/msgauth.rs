//! Broker credentials and message authentication: who may speak on which topic.
//!
//! A broker that checks only the password at CONNECT (the embedded rumqttd has no per-topic
//! ACL) cannot stop an authenticated client from publishing on any topic, and MQTT 3.1.1 does not
//! tell subscribers who published. So every message an agent (or an operator on `herd/commands`)
//! publishes carries, after its JSON, a trailer with an HMAC-SHA256 of the topic and the payload
//! keyed by the publisher's broker password:
//!
//! ```text
//! {…json…}\nherd-mac1 <64 hex digits of HMAC-SHA256(password, topic ‖ 0x00 ‖ json)>
//! ```
//!
//! The coordinator knows each agent's password (it minted it), so it can check that a frame on
//! `herd/runs/R/agents/A/frames` was published by the holder of A's credential for R: another
//! run's or agent's credential, or none, gives a wrong or missing MAC and the message is dropped.
//! The MAC covers the topic, so a message cannot be moved to another topic; replaying one
//! verbatim on its own topic is harmless (frames are counted once per `(agent, seq)`, commands
//! once per id).

use crate::{AgentId, RunId};
use ring::hmac;

/// What separates a message from its MAC.
const MARK: &[u8] = b"\nherd-mac1 ";
/// Hex digits of an HMAC-SHA256.
const MAC_HEX: usize = 64;

/// A broker user name and password. `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The MQTT user name.
    pub username: String,
    /// The MQTT password, also the key of the publisher's message MACs.
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// The broker user name of an agent of a run: `{run}/{agent}` (neither id contains `/`).
pub fn agent_username(run: &RunId, agent: &AgentId) -> String {
    format!("{run}/{agent}")
}

/// The MQTT client id an agent connects with; the broker admits an agent credential only with it.
pub fn agent_client_id(run: &RunId, agent: &AgentId) -> String {
    format!("herd-{run}-{agent}")
}

/// Why a message's MAC was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    /// No trailer at all (an unauthenticated publisher).
    #[error("the message carries no MAC")]
    Missing,
    /// A trailer that does not match (another credential, another topic, altered bytes).
    #[error("the message's MAC does not match its publisher's credential")]
    Mismatch,
}

fn tag(key: &str, topic: &str, payload: &[u8]) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(topic.as_bytes());
    ctx.update(&[0]);
    ctx.update(payload);
    ctx.sign()
}

/// `payload` with its MAC trailer for `topic`, keyed by `key` (the publisher's password).
pub fn sign(key: &str, topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + MARK.len() + MAC_HEX);
    out.extend_from_slice(payload);
    out.extend_from_slice(MARK);
    out.extend_from_slice(hex(tag(key, topic, payload).as_ref()).as_bytes());
    out
}

/// Splits a message into its payload and its MAC trailer's hex digits, if it has one.
pub fn split(message: &[u8]) -> (&[u8], Option<&[u8]>) {
    let cut = message.len().checked_sub(MARK.len() + MAC_HEX);
    match cut {
        Some(at) if message[at..].starts_with(MARK) => {
            (&message[..at], Some(&message[at + MARK.len()..]))
        }
        _ => (message, None),
    }
}

/// The payload of `message` if its MAC for `topic` was made with `key`.
pub fn verify<'a>(key: &str, topic: &str, message: &'a [u8]) -> Result<&'a [u8], MacError> {
    let (payload, Some(mac_hex)) = split(message) else {
        return Err(MacError::Missing);
    };
    let mac = unhex(mac_hex).ok_or(MacError::Mismatch)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes());
    let mut signed = Vec::with_capacity(topic.len() + 1 + payload.len());
    signed.extend_from_slice(topic.as_bytes());
    signed.push(0);
    signed.extend_from_slice(payload);
    // Constant time, by ring.
    hmac::verify(&key, &signed, &mac).map_err(|_| MacError::Mismatch)?;
    Ok(payload)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The bytes of lower- or upper-case hex; `None` if it is not hex.
pub fn unhex(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    text.chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_message_verifies_only_with_its_key_and_topic() {
        let signed = sign("k1", "herd/runs/r/agents/a/frames", b"{\"version\":1}");
        assert_eq!(
            verify("k1", "herd/runs/r/agents/a/frames", &signed),
            Ok(&b"{\"version\":1}"[..])
        );
        assert_eq!(
            verify("k2", "herd/runs/r/agents/a/frames", &signed),
            Err(MacError::Mismatch),
            "another credential"
        );
        assert_eq!(
            verify("k1", "herd/runs/r/agents/b/frames", &signed),
            Err(MacError::Mismatch),
            "another topic"
        );
        assert_eq!(
            verify("k1", "t", b"{\"version\":1}"),
            Err(MacError::Missing)
        );
        let mut altered = signed.clone();
        altered[3] ^= 1;
        assert_eq!(
            verify("k1", "herd/runs/r/agents/a/frames", &altered),
            Err(MacError::Mismatch)
        );
    }

    #[test]
    fn split_leaves_unsigned_messages_whole() {
        assert_eq!(split(b"{}"), (&b"{}"[..], None));
        let signed = sign("k", "t", b"{}");
        assert_eq!(split(&signed).0, b"{}");
        assert_eq!(split(&signed).1.map(<[u8]>::len), Some(MAC_HEX));
    }

    #[test]
    fn debug_hides_the_password() {
        let c = Credential {
            username: "u".into(),
            password: "secret-91".into(),
        };
        assert!(!format!("{c:?}").contains("secret-91"));
    }
}
