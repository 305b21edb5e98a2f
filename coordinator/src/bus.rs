//! The coordinator's boundary to its agents: how commands reach them and how their messages come back.
//!
//! Locally this is the MQTT broker ([`crate::mqtt::MqttLink`]); in AWS the same trait publishes
//! commands through the IoT data plane. The run actor only ever holds a `dyn AgentBus`.

use crate::launcher::BoxFuture;
use crate::mqtt::AgentInbound;
use actix::Recipient;
use herd_protocol::agent::CommandMessage;
use herd_protocol::RunId;

/// Why the bus could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[error("agent bus: {0}")]
pub struct BusError(pub String);

/// Commands out, agent messages in.
pub trait AgentBus: Send + Sync + 'static {
    /// Routes everything the agents of `run` send to `recipient`; resolves once that is in effect,
    /// so agents may be launched.
    fn register(
        &self,
        run: &RunId,
        recipient: Recipient<AgentInbound>,
    ) -> BoxFuture<Result<(), BusError>>;

    /// Stops routing a run's messages.
    fn unregister(&self, run: &RunId) -> BoxFuture<()>;

    /// Sends a command to every agent of its run (at least once).
    fn send_command(&self, message: CommandMessage) -> BoxFuture<Result<(), BusError>>;

    /// Publishes a live aggregate of a run (best effort).
    fn publish_live(&self, run: &RunId, payload: Vec<u8>) -> BoxFuture<Result<(), BusError>>;

    /// The first `count` messages delivered to `run`'s recipient since it registered have taken
    /// effect durably (the run stored what they changed). A bus that delivers unacknowledged
    /// messages again to a restarted coordinator (a durable MQTT session, a queue) acknowledges
    /// them now, and only them; so a coordinator crash loses no agent message. Calls come with
    /// growing counts. Buses without redelivery have nothing to do.
    fn acknowledge(&self, _run: &RunId, _count: u64) {}
}
