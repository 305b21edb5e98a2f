//! The agent's MQTT session: one connection to the broker, driven by its own task.
//!
//! The driver task polls rumqttc's event loop and nothing else (polling must never be
//! interrupted half-way), routes commands to the agent as [`SessionEvent`]s, and keeps the
//! [`Outbox`] in step with the client's `Outgoing::Publish` and `PubAck` events, so that closing
//! the session can wait until the broker has acknowledged every QoS1 message and then disconnect
//! cleanly, which keeps the broker from publishing the agent's last will (`lost`).
//!
//! `mqtts://` brokers (AWS IoT Core) are reached over TLS, configured in [`tls`].

mod driver;
mod outbox;
mod tls;

use crate::error::AgentError;
use crate::AgentConfig;
use driver::Driver;
use herd_protocol::agent::{AgentStatus, CommandMessage, StatusMessage};
use herd_protocol::{topics, wire, PROTOCOL_VERSION};
use outbox::Outbox;
use rumqttc::{AsyncClient, LastWill, MqttOptions, QoS};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use tls::{PemSource, TlsOptions};

/// MQTT keep-alive: the broker declares the agent lost ~1.5 × this after it goes silent.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Largest MQTT packet in either direction (frames with histograms exceed rumqttc's 10 KB).
const MAX_PACKET: usize = 1024 * 1024;
/// How long closing may wait for the broker's acknowledgements.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the session tells the agent.
#[derive(Debug)]
pub(crate) enum SessionEvent {
    /// The command topic is subscribed (after every (re)connection).
    Subscribed,
    /// A command for this run.
    Command(CommandMessage),
    /// A message on the command topic that could not be decoded.
    Malformed(String),
}

/// State shared by the session handle and the driver task.
#[derive(Debug, Default)]
struct Shared {
    outbox: Outbox,
    closing: bool,
    disconnect_sent: bool,
}

impl Shared {
    /// Hands queued messages to the client and, once closing and all is acknowledged, disconnects.
    fn pump(&mut self, client: &AsyncClient) {
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

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

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
}

impl Session {
    /// Connects (in the background) and subscribes to the run's commands.
    pub fn start(config: &AgentConfig) -> Result<(Self, Events), AgentError> {
        let address = broker_address(&config.broker)?;
        let transport = tls::transport(address.tls, address.port, &config.tls)?;
        let status_topic = topics::status(&config.run, &config.agent);
        let mut options = MqttOptions::new(
            format!("herd-{}-{}", config.run, config.agent),
            address.host,
            address.port,
        );
        options
            .set_transport(transport)
            .set_keep_alive(KEEP_ALIVE)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            .set_clean_session(true)
            .set_last_will(LastWill::new(
                status_topic.clone(),
                status_payload(config, AgentStatus::Lost),
                QoS::AtLeastOnce,
                false,
            ));
        let (client, eventloop) = AsyncClient::new(options, 256);
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (tx, events) = mpsc::unbounded_channel();
        let driver = Driver {
            eventloop,
            client: client.clone(),
            shared: Arc::clone(&shared),
            events: tx,
            run: config.run.clone(),
            command_topic: topics::commands(&config.run),
            broker: config.broker.clone(),
        };
        let session = Self {
            client,
            shared,
            driver: tokio::spawn(driver.run()),
            config: config.clone(),
            status_topic,
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
        let mut shared = lock(&self.shared);
        shared.outbox.push(topic, payload);
        shared.pump(&self.client);
    }

    /// Publishes a status message of this agent.
    pub fn status(&self, status: AgentStatus) {
        self.publish(
            self.status_topic.clone(),
            status_payload(&self.config, status),
        );
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

fn status_payload(config: &AgentConfig, status: AgentStatus) -> Vec<u8> {
    wire::encode(&StatusMessage {
        version: PROTOCOL_VERSION,
        agent: config.agent.clone(),
        status,
    })
}

/// Where the broker is, and whether it speaks TLS.
#[derive(Debug, PartialEq, Eq)]
struct BrokerAddress {
    host: String,
    port: u16,
    tls: bool,
}

/// Parses `mqtt://host:port`, `tcp://host:port` or `host:port` (port 1883 by default), and
/// `mqtts://host:port` (TLS, port 8883 by default).
fn broker_address(address: &str) -> Result<BrokerAddress, AgentError> {
    let bad = |reason: &str| AgentError::InvalidBroker {
        address: address.to_string(),
        reason: reason.to_string(),
    };
    let (rest, tls) = match address.split_once("://") {
        None => (address, false),
        Some(("mqtt" | "tcp", rest)) => (rest, false),
        Some(("mqtts", rest)) => (rest, true),
        Some(_) => {
            return Err(bad(
                "expected mqtt://host:port, or mqtts://host:port for MQTT over TLS",
            ))
        }
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(bad("expected host:port"));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    let port = match port {
        None if tls => 8883,
        None => 1883,
        Some(p) => p
            .parse()
            .map_err(|_| bad("the port is not a number from 0 to 65535"))?,
    };
    Ok(BrokerAddress {
        host: host.to_string(),
        port,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::{broker_address, BrokerAddress};

    #[test]
    fn broker_addresses_in_the_forms_users_write() {
        let ok = |a: &str| broker_address(a).ok().map(|b| (b.host, b.port, b.tls));
        assert_eq!(
            ok("mqtt://127.0.0.1:1883"),
            Some(("127.0.0.1".into(), 1883, false))
        );
        assert_eq!(
            ok("127.0.0.1:1999"),
            Some(("127.0.0.1".into(), 1999, false))
        );
        assert_eq!(ok("tcp://broker/"), Some(("broker".into(), 1883, false)));
        assert_eq!(ok("mqtt://[::1]:1884"), Some(("::1".into(), 1884, false)));
        assert_eq!(
            broker_address("mqtts://abc-ats.iot.eu-west-1.amazonaws.com").ok(),
            Some(BrokerAddress {
                host: "abc-ats.iot.eu-west-1.amazonaws.com".into(),
                port: 8883,
                tls: true
            })
        );
        assert_eq!(ok("mqtts://h:443"), Some(("h".into(), 443, true)));
        for bad in [
            "wss://h:443",
            "ws://h",
            "",
            "h:port",
            "mqtt://:1883",
            "h:1/x",
        ] {
            assert!(broker_address(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
