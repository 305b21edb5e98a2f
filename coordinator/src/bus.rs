//! The coordinator's boundary to its agents: how commands reach them and how their messages come back.
//!
//! Locally this is the MQTT broker (`mqtt::MqttLink`); in AWS the same trait publishes commands
//! through the IoT data plane and may take frames from an SQS queue. The run actor only ever holds
//! a `dyn AgentBus`. What agents say is decoded here, once, into [`AgentInbound`], whichever
//! adapter carried it; adapters depend on this module, never the reverse.
//!
//! Messages reach a run through a plain channel ([`Inbox`]), not an actor address, so that the
//! adapters know nothing of the actor framework.

use crate::broker::auth::BrokerKeys;
use crate::launcher::BoxFuture;
use crate::metrics::METRICS;
use herd_protocol::agent::{AgentCommandMessage, StatusMessage};
use herd_protocol::frame::Frame;
use herd_protocol::msgauth::{self, MacError};
use herd_protocol::topics::{self, AgentTopic};
use herd_protocol::{wire, AgentId, RunId};
use tokio::sync::mpsc;

/// Where a run's agent messages are delivered, in the order the bus received them.
pub type Inbox = mpsc::UnboundedSender<AgentInbound>;

/// Why the bus could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[error("agent bus: {0}")]
pub struct BusError(pub String);

/// Commands out, agent messages in.
pub trait AgentBus: Send + Sync + 'static {
    /// Routes everything the agents of `run` send to `inbox`; resolves once that is in effect,
    /// so agents may be launched.
    fn register(&self, run: &RunId, inbox: Inbox) -> BoxFuture<Result<(), BusError>>;

    /// Stops routing a run's messages.
    fn unregister(&self, run: &RunId) -> BoxFuture<()>;

    /// Sends a command to every agent of its run (at least once).
    fn send_command(&self, message: AgentCommandMessage) -> BoxFuture<Result<(), BusError>>;

    /// Publishes a live aggregate of a run (best effort).
    fn publish_live(&self, run: &RunId, payload: Vec<u8>) -> BoxFuture<Result<(), BusError>>;

    /// The first `count` messages delivered to `run`'s inbox since it registered have taken
    /// effect durably (the run stored what they changed). A bus that delivers unacknowledged
    /// messages again to a restarted coordinator (a durable MQTT session, a queue) acknowledges
    /// them now, and only them; so a coordinator crash loses no agent message. Calls come with
    /// growing counts. Buses without redelivery have nothing to do.
    fn acknowledge(&self, _run: &RunId, _count: u64) {}

    /// The key this bus seals `run`'s commands with, which its agents also seal what they send
    /// only to the coordinator with (setup's variables, [`herd_protocol::once`]); `None` for a
    /// bus that seals nothing.
    fn run_key(&self, _run: &RunId) -> Option<herd_protocol::cmdseal::RunKey> {
        None
    }
}

/// What an agent said, routed to its run's actor.
#[derive(Debug)]
pub enum AgentInbound {
    /// A status message.
    Status(StatusMessage),
    /// A result frame.
    Frame(Box<Frame>),
    /// Something on an agent topic that could not be decoded.
    Malformed {
        /// The agent whose topic carried it.
        agent: AgentId,
        /// Why it was refused.
        error: String,
    },
}

/// Decodes what an agent published on `topic`: the run it belongs to and the message for that
/// run's actor (`Malformed` when the payload does not decode or names another agent); `None`
/// when `topic` is not an agent topic. Every inbound path uses it: this MQTT session, and frames
/// relayed through SQS (the `aws::frames_sqs` adapter).
/// A MAC trailer, checked or not, is not part of the message.
pub fn decode_inbound(topic: &str, payload: &[u8]) -> Option<(RunId, AgentInbound)> {
    let parsed = topics::parse_agent_topic(topic)?;
    let payload = msgauth::split(payload).0;
    Some(match parsed {
        AgentTopic::Status(run, agent) => {
            let message = match wire::decode::<StatusMessage>(payload) {
                Ok(status) if status.agent == agent => AgentInbound::Status(status),
                Ok(status) => AgentInbound::Malformed {
                    agent,
                    error: format!(
                        "status names agent {} on another agent's topic",
                        status.agent
                    ),
                },
                Err(e) => AgentInbound::Malformed {
                    agent,
                    error: e.to_string(),
                },
            };
            (run, message)
        }
        AgentTopic::Frames(run, agent) => {
            let message = match wire::decode::<Frame>(payload) {
                Ok(frame) if frame.agent == agent && frame.run == run => {
                    if frame.health.commands_refused > 0 {
                        METRICS.agent_commands_refused(frame.health.commands_refused);
                        tracing::warn!(%run, %agent, refused = frame.health.commands_refused, "an agent refused commands not sealed with its run's key");
                    }
                    AgentInbound::Frame(Box::new(frame))
                }
                Ok(_) => AgentInbound::Malformed {
                    agent,
                    error: "frame names another run or agent than its topic".into(),
                },
                Err(e) => AgentInbound::Malformed {
                    agent,
                    error: e.to_string(),
                },
            };
            (run, message)
        }
    })
}

/// The payload of a message on an agent topic, if it carries the MAC of the agent its topic names
/// (that agent's credential for that run, see [`BrokerKeys`]); messages on other topics pass
/// unchanged. A refused message is counted (`herd_messages_unauthenticated_total`) and logged
/// with its topic: the caller drops it, so nothing of it reaches a run.
pub fn authenticate<'a>(
    auth: &BrokerKeys,
    topic: &str,
    message: &'a [u8],
) -> Result<&'a [u8], MacError> {
    let key = match topics::parse_agent_topic(topic) {
        Some(AgentTopic::Status(run, agent) | AgentTopic::Frames(run, agent)) => {
            auth.agent(&run, &agent).password
        }
        None if topic == topics::COORDINATOR_COMMANDS => auth.commander().password.clone(),
        None => return Ok(message),
    };
    msgauth::verify(&key, topic, message).inspect_err(|e| {
        METRICS.message_unauthenticated();
        tracing::warn!(%topic, error = %e, "dropped a message that its topic's owner did not sign");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_agents_credential_signs_its_topics() {
        let auth = BrokerKeys::generate().expect("randomness");
        let run = RunId::new("r1").expect("run");
        let (a0, a1) = (AgentId::numbered(0), AgentId::numbered(1));
        let topic = topics::frames(&run, &a0);
        let own = msgauth::sign(&auth.agent(&run, &a0).password, &topic, b"{}");
        assert_eq!(authenticate(&auth, &topic, &own), Ok(&b"{}"[..]));
        let neighbour = msgauth::sign(&auth.agent(&run, &a1).password, &topic, b"{}");
        assert_eq!(
            authenticate(&auth, &topic, &neighbour),
            Err(MacError::Mismatch)
        );
        let other_run = RunId::new("r2").expect("run");
        let foreign = msgauth::sign(&auth.agent(&other_run, &a0).password, &topic, b"{}");
        assert_eq!(
            authenticate(&auth, &topic, &foreign),
            Err(MacError::Mismatch)
        );
        assert_eq!(
            authenticate(&auth, &topics::status(&run, &a0), b"{}"),
            Err(MacError::Missing)
        );
        // The commander signs commands; an agent's credential does not.
        let cmd = topics::COORDINATOR_COMMANDS;
        let by_agent = msgauth::sign(&auth.agent(&run, &a0).password, cmd, b"{}");
        assert_eq!(authenticate(&auth, cmd, &by_agent), Err(MacError::Mismatch));
        let by_commander = msgauth::sign(&auth.commander().password, cmd, b"{}");
        assert_eq!(authenticate(&auth, cmd, &by_commander), Ok(&b"{}"[..]));
        assert_eq!(
            authenticate(&auth, "herd/runs/r1/live", b"x"),
            Ok(&b"x"[..])
        );
    }
}
