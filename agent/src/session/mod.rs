//! The agent's MQTT session: one connection to the broker, driven by its own task.
//!
//! The driver task polls rumqttc's event loop and nothing else (polling must never be
//! interrupted half-way), routes commands to the agent as [`SessionEvent`]s, and keeps the
//! [`Outbox`] in step with the client's `Outgoing::Publish` and `PubAck` events, so that closing
//! the session can wait until the broker has acknowledged every QoS1 message and then disconnect
//! cleanly, which keeps the broker from publishing the agent's last will (`lost`).
//!
//! `mqtts://` brokers (AWS IoT Core) are reached over TLS, configured in [`tls`].
//!
//! With a broker credential (`HERD_MQTT_USERNAME`/`HERD_MQTT_PASSWORD`, the coordinator's per-run
//! credential for this agent) the session logs in with it under the client id the broker binds it
//! to, and signs every message it publishes, its last will included, with the password
//! ([`herd_protocol::msgauth`]): the coordinator drops agent messages it cannot tie to the agent
//! their topic names.
//!
//! With the run's command key (`HERD_RUN_KEY`) every command must be sealed and signed with it
//! ([`herd_protocol::cmdseal`]): what is not (a forged `stop`, another run's command) is dropped,
//! logged, and counted in the next frame's `health.commands_refused`.

mod driver;
mod outbox;
mod shared;
mod tls;

use crate::error::AgentError;
use crate::AgentConfig;
use driver::Driver;
use herd_protocol::agent::{AgentStatus, StatusMessage};
use herd_protocol::broker::BrokerAddr;
use herd_protocol::clock::Clock;
use herd_protocol::{msgauth, topics, wire};
use rumqttc::{AsyncClient, LastWill, QoS};
pub(crate) use shared::SessionEvent;
use shared::{lock, Shared};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use herd_protocol::tls::{PemSource, TlsOptions};

/// MQTT keep-alive: the broker declares the agent lost ~1.5 × this after it goes silent.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Largest MQTT packet in either direction (frames with histograms exceed rumqttc's 10 KB).
const MAX_PACKET: usize = 1024 * 1024;
/// How long closing may wait for the broker's acknowledgements.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// The events of a session, apart from its handle so both can be used at once.
pub(crate) struct Events(mpsc::UnboundedReceiver<SessionEvent>);

impl Events {
    /// The next event; `None` once the session has ended (see [`Session::failure`]).
    pub async fn next(&mut self) -> Option<SessionEvent> {
        self.0.recv().await
    }
}

/// Handle on a running MQTT session; see the module docs.
pub(crate) struct Session {
    client: AsyncClient,
    shared: Arc<Mutex<Shared>>,
    driver: JoinHandle<Result<(), AgentError>>,
    config: AgentConfig,
    status_topic: String,
    /// Stamps each status message with its send time, so the coordinator judges silence by it.
    clock: Clock,
    /// Status messages numbered so far.
    status_seq: AtomicU64,
    /// Commands refused since the last [`Session::take_refused`].
    refused: Arc<AtomicU64>,
}

impl Session {
    /// Connects (in the background) and subscribes to the run's commands.
    pub fn start(config: &AgentConfig) -> Result<(Self, Events), AgentError> {
        let address = BrokerAddr::parse(&config.broker)?;
        let status_topic = topics::status(&config.run, &config.agent);
        let mut options = tls::options(
            msgauth::agent_client_id(&config.run, &config.agent),
            &address,
            &config.tls,
            config.sigv4_region.as_deref(),
        )?;
        options
            .set_keep_alive(KEEP_ALIVE)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            .set_clean_session(true)
            .set_last_will(LastWill::new(
                status_topic.clone(),
                sign(
                    config,
                    &status_topic,
                    status_payload(config, AgentStatus::Lost),
                ),
                QoS::AtLeastOnce,
                false,
            ));
        if let Some(c) = &config.credentials {
            options.set_credentials(c.username.clone(), c.password.clone());
        }
        let (client, mut eventloop) = AsyncClient::new(options, 256);
        eventloop
            .network_options
            .set_connection_timeout(herd_protocol::broker::AGENT_CONNECT_TIMEOUT_S);
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (tx, events) = mpsc::unbounded_channel();
        let refused = Arc::new(AtomicU64::new(0));
        let driver = Driver {
            eventloop,
            client: client.clone(),
            shared: Arc::clone(&shared),
            events: tx,
            run: config.run.clone(),
            command_topic: topics::commands(&config.run),
            command_key: config.command_key.clone(),
            refused: Arc::clone(&refused),
            broker: config.broker.clone(),
        };
        let session = Self {
            client,
            shared,
            driver: tokio::spawn(driver.run()),
            config: config.clone(),
            status_topic,
            clock: Clock::new(),
            status_seq: AtomicU64::new(0),
            refused,
        };
        Ok((session, Events(events)))
    }

    /// Why the session ended (call after [`Events::next`] returned `None`).
    pub async fn failure(self) -> AgentError {
        match self.driver.await {
            Ok(Err(e)) => e,
            Ok(Ok(())) => AgentError::Session("the connection was closed".into()),
            Err(e) => AgentError::Session(format!("the MQTT task failed: {e}")),
        }
    }

    /// Queues a QoS1 message; it is sent again after a reconnect until acknowledged.
    pub fn publish(&self, topic: String, payload: Vec<u8>) {
        let payload = sign(&self.config, &topic, payload);
        let mut shared = lock(&self.shared);
        shared.outbox.push(topic, payload);
        shared.pump(&self.client);
    }

    /// Publishes a status message of this agent, stamped with its send time and number.
    pub fn status(&self, status: AgentStatus) {
        let seq = self.status_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let message =
            StatusMessage::new(self.config.agent.clone(), status).sent(self.clock.unix_ms(), seq);
        self.publish(self.status_topic.clone(), wire::encode(&message));
    }

    /// How many commands were refused since the previous call (see the module docs).
    pub fn take_refused(&self) -> u64 {
        self.refused.swap(0, Ordering::Relaxed)
    }

    /// Waits until every message is acknowledged, then disconnects cleanly.
    pub async fn close(self) -> Result<(), AgentError> {
        lock(&self.shared).closing = true;
        lock(&self.shared).pump(&self.client);
        let abort = self.driver.abort_handle();
        match tokio::time::timeout(CLOSE_TIMEOUT, self.driver).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(AgentError::Session(format!("the MQTT task failed: {e}"))),
            Err(_) => {
                abort.abort();
                Err(AgentError::Unacknowledged {
                    pending: lock(&self.shared).outbox.pending(),
                    seconds: CLOSE_TIMEOUT.as_secs(),
                })
            }
        }
    }
}

/// `payload` with the MAC of this agent's credential, when it has one: the coordinator drops
/// agent messages it cannot tie to the agent their topic names.
fn sign(config: &AgentConfig, topic: &str, payload: Vec<u8>) -> Vec<u8> {
    match &config.credentials {
        Some(c) => msgauth::sign(&c.password, topic, &payload),
        None => payload,
    }
}

/// The last will: published by the broker, so it carries no send time of the agent's.
fn status_payload(config: &AgentConfig, status: AgentStatus) -> Vec<u8> {
    wire::encode(&StatusMessage::new(config.agent.clone(), status))
}
