//! What the session handle and its driver task share: the state behind one mutex, and the events
//! the driver hands the agent. A leaf, so the handle (`mod.rs`) and the driver use it without
//! using each other.

use super::outbox::Outbox;
use herd_protocol::agent::AgentCommandMessage;
use rumqttc::{AsyncClient, QoS};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// What the session tells the agent.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "a run has a handful of commands; the start command is large and goes straight to the agent's loop"
)]
pub(crate) enum SessionEvent {
    /// The command topic is subscribed (after every (re)connection).
    Subscribed,
    /// A command for this run.
    Command(AgentCommandMessage),
    /// A message on the command topic that could not be decoded.
    Malformed(String),
}

/// State shared by the session handle and the driver task.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) outbox: Outbox,
    pub(super) closing: bool,
    pub(super) disconnect_sent: bool,
}

impl Shared {
    /// Hands queued messages to the client and, once closing and all is acknowledged, disconnects.
    pub(super) fn pump(&mut self, client: &AsyncClient) {
        self.outbox.hand_over(|m| {
            client
                .try_publish(m.topic.clone(), QoS::AtLeastOnce, false, m.payload.clone())
                .is_ok()
        });
        if self.closing && !self.disconnect_sent && self.outbox.pending() == 0 {
            self.disconnect_sent = client.try_disconnect().is_ok();
        }
    }
}

pub(super) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}
