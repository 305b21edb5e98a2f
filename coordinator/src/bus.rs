//! The coordinator's boundary to its agents: how commands reach them and how their messages come back.
//!
//! Locally this is the MQTT broker (`mqtt::MqttLink`); in AWS the same trait publishes commands
//! through the IoT data plane and may take frames from an SQS queue. The run actor only ever holds
//! a `dyn AgentBus`. What agents say is decoded here, once, into [`AgentInbound`], whichever
//! adapter carried it; adapters depend on this module, never the reverse.
//!
//! Messages reach a run through a plain channel ([`Inbox`]), not an actor address, so that the
//! adapters know nothing of the actor framework.

use crate::launcher::BoxFuture;
use herd_protocol::agent::{AgentCommandMessage, StatusMessage};
use herd_protocol::frame::Frame;
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
pub fn decode_inbound(topic: &str, payload: &[u8]) -> Option<(RunId, AgentInbound)> {
    let parsed = topics::parse_agent_topic(topic)?;
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
