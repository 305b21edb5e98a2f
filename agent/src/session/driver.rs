//! The task that owns rumqttc's event loop; see the parent module.

use super::shared::{lock, SessionEvent, Shared};
use crate::error::AgentError;
use herd_protocol::agent::AgentCommandMessage;
use herd_protocol::cmdseal::{self, RunKey};
use herd_protocol::{wire, RunId};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Incoming, Outgoing, QoS, SubscribeReasonCode,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long the agent keeps trying to reach the broker at startup.
const STARTUP_RETRY: Duration = Duration::from_secs(10);
/// Pause between connection attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

pub(super) struct Driver {
    pub eventloop: EventLoop,
    pub client: AsyncClient,
    pub shared: Arc<Mutex<Shared>>,
    pub events: mpsc::UnboundedSender<SessionEvent>,
    pub run: RunId,
    pub command_topic: String,
    /// The run's command key: commands not sealed with it are refused.
    pub command_key: Option<RunKey>,
    /// Commands refused so far (read and reset by the session handle).
    pub refused: Arc<AtomicU64>,
    pub broker: String,
}

impl Driver {
    pub async fn run(mut self) -> Result<(), AgentError> {
        let started = Instant::now();
        let mut ever_connected = false;
        let mut connected = false;
        let mut subscribe = false;
        loop {
            if subscribe {
                subscribe = self
                    .client
                    .try_subscribe(self.command_topic.clone(), QoS::AtLeastOnce)
                    .is_err();
            }
            lock(&self.shared).pump(&self.client);
            match self.eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    tracing::debug!(broker = %self.broker, "connected");
                    (connected, ever_connected, subscribe) = (true, true, true);
                }
                Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, SubscribeReasonCode::Failure))
                    {
                        return Err(AgentError::Session(format!(
                            "the broker refused the subscription to {}",
                            self.command_topic
                        )));
                    }
                    self.emit(SessionEvent::Subscribed);
                }
                Ok(Event::Incoming(Incoming::Publish(publish))) => {
                    if publish.topic == self.command_topic {
                        self.intake(&publish.payload);
                    }
                }
                Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                    lock(&self.shared).outbox.on_ack(ack.pkid);
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    lock(&self.shared).outbox.on_publish(pkid);
                }
                Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => {
                    lock(&self.shared).outbox.on_await_ack(pkid);
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => return Ok(()),
                Ok(_) => {}
                Err(e) => {
                    if !ever_connected && started.elapsed() >= STARTUP_RETRY {
                        return Err(self.connect_error(&e));
                    }
                    if connected {
                        tracing::warn!(broker = %self.broker, error = %e, "lost the broker; reconnecting");
                        let mut shared = lock(&self.shared);
                        shared.outbox.on_connection_lost();
                        // A disconnect still queued died with the connection.
                        shared.disconnect_sent = false;
                        drop(shared);
                        connected = false;
                    } else {
                        tracing::debug!(broker = %self.broker, error = %e, "cannot connect yet");
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    fn connect_error(&self, e: &ConnectionError) -> AgentError {
        AgentError::Connect {
            broker: self.broker.clone(),
            seconds: STARTUP_RETRY.as_secs(),
            message: e.to_string(),
        }
    }

    /// A message on the command topic: opened with the run's key when the agent has one.
    fn intake(&self, payload: &[u8]) {
        if payload.is_empty() {
            // An empty retained publish is how the coordinator clears the retained start command
            // at the end of a run (IoT data plane): nothing for the agent to do.
            return;
        }
        let Some(key) = &self.command_key else {
            return self.command(payload);
        };
        match cmdseal::open(key, &self.command_topic, payload) {
            Ok(command) => self.command(&command),
            Err(e) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(topic = %self.command_topic, error = %e, "refused a command not sealed with this run's key");
            }
        }
    }

    fn command(&self, payload: &[u8]) {
        match wire::decode::<AgentCommandMessage>(payload) {
            Ok(message) if message.run == self.run => self.emit(SessionEvent::Command(message)),
            Ok(message) => {
                tracing::warn!(run = %message.run, "ignored a command for another run");
            }
            Err(e) => self.emit(SessionEvent::Malformed(e.to_string())),
        }
    }

    fn emit(&self, event: SessionEvent) {
        // The agent stops listening only when it is done; later events do not matter.
        let _ = self.events.send(event);
    }
}
