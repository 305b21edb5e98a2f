//! The embedded MQTT broker of the local modes: rumqttd on loopback.
//!
//! rumqttd cannot report the port it bound to and has no shutdown call, so we pick a free loopback
//! port first, start the broker on its own threads, and wait until it accepts connections. It lives
//! as long as the process, which is what `herd run` and `herd up` need.
//!
//! It admits only the credentials [`auth::BrokerKeys`] derives (the coordinator's, the
//! commander's, and each open run's agents'); what it cannot check, who publishes on which topic,
//! the coordinator checks message by message (see [`auth`]).

pub mod auth;
pub mod mosquitto;

use auth::BrokerKeys;
use std::sync::Arc;

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// No free port, or the broker thread could not be created.
    #[error("embedded MQTT broker: {0}")]
    Io(#[from] std::io::Error),
    /// The broker never accepted a connection.
    #[error("embedded MQTT broker did not accept connections on {0} within {1:?}")]
    NotReady(SocketAddr, Duration),
}

/// A running embedded broker.
#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    auth: Arc<BrokerKeys>,
}

/// Largest MQTT payload accepted: frames carry histograms, and AWS IoT Core's own limit is 128 KB.
pub const MAX_PAYLOAD: usize = 1024 * 1024;

impl EmbeddedBroker {
    /// Starts a broker on a free port of 127.0.0.1 that admits the credentials of `auth`, and
    /// waits until it accepts connections.
    pub fn start(auth: Arc<BrokerKeys>) -> Result<Self, BrokerError> {
        let addr = {
            let probe = TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?
        };
        let mut broker = Broker::new(config(addr, Arc::clone(&auth)));
        std::thread::Builder::new()
            .name("herd-broker".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "embedded broker stopped");
                }
            })?;
        let wait = Duration::from_secs(5);
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Ok(Self { addr, auth });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(BrokerError::NotReady(addr, wait))
    }

    /// `mqtt://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The credentials it admits.
    pub fn auth(&self) -> &Arc<BrokerKeys> {
        &self.auth
    }
}

/// rumqttd keeps every message published on a subscribed filter in that filter's in-memory
/// commit log, read or not, until the log holds `SEGMENTS` full segments plus the active one;
/// then the oldest segment is dropped. Logs are never freed, not even after the last
/// unsubscribe. With rumqttd's usual 10 × 100 MiB a run's filter grew the coordinator by every
/// frame it received, up to 1.1 GiB per run: a 1-hour soak at 4 agents grew 0.48 MiB a minute,
/// which is exactly its frames' bytes. Now a run's log holds at most 5 × 8 MiB.
///
/// The price: a subscriber that falls more than 4 × 8 MiB behind loses what was dropped
/// (rumqttd jumps it to the oldest message kept). The coordinator reads its socket on its own
/// task, so the lag that matters is a stalled process: 32 MiB is about 18 s of frames at 1,000
/// agents (about 1.8 KB per agent-second, `herd bench swarm`) and 1.8 s at 10,000. Beyond
/// that, use an external broker (Mosquitto queues per session, `max_queued_messages`).
const SEGMENT_BYTES: usize = 8 * 1024 * 1024;
/// See [`SEGMENT_BYTES`].
const SEGMENTS: usize = 4;

fn config(listen: SocketAddr, auth: Arc<BrokerKeys>) -> Config {
    let mut server = ServerSettings {
        name: "herd-v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections: ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: MAX_PAYLOAD,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    server
        .connections
        .set_auth_handler(move |client_id: String, user: String, password: String| {
            let admitted = auth.admits(&client_id, &user, &password);
            if !admitted {
                tracing::warn!(client = %client_id, user = %user, "broker refused a connection: unknown credential");
            }
            std::future::ready(admitted)
        });
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 500,
            max_segment_size: SEGMENT_BYTES,
            max_segment_count: SEGMENTS,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Config::default()
    }
}
