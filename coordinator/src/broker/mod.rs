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
    /// Starts a broker on a free port of 127.0.0.1 that admits the credentials of `auth` and keeps
    /// `log` of each filter's messages, and waits until it accepts connections.
    pub fn start(auth: Arc<BrokerKeys>, log: LogWindow) -> Result<Self, BrokerError> {
        let addr = {
            let probe = TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?
        };
        let mut broker = Broker::new(config(addr, Arc::clone(&auth), log));
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

/// How much of each subscribed filter's messages the embedded broker keeps in memory.
///
/// rumqttd keeps every message published on a subscribed filter in that filter's in-memory
/// commit log, read or not, until the log holds [`SEGMENTS`] full segments plus the active one;
/// then the oldest segment is dropped. Logs are never freed, not even after the last
/// unsubscribe. With rumqttd's usual 10 × 100 MiB a run's filter grew the coordinator by every
/// frame it received, up to 1.1 GiB per run: a 1-hour soak at 4 agents grew 0.48 MiB a minute,
/// which is exactly its frames' bytes.
///
/// The price of a small log: a subscriber that falls more than [`SEGMENTS`] segments behind
/// loses what was dropped (rumqttd jumps it to the oldest message kept). The coordinator reads
/// its socket on its own task, so the lag that matters is a stalled process. So the log is sized
/// in *seconds of frames*, not bytes: a frame is at most about 1.8 KB per agent-second (`herd
/// bench swarm`'s realistic histograms; a plain soak's are nearer 0.8 KB), and a segment of 32 KiB
/// per agent holds at least 18 s of a run's frames, the 4 kept segments at least a minute.
/// `herd run` knows its agents and sizes the log so ([`LogWindow::for_run`]): at 4 agents the
/// whole log is 640 KiB and is full after about 3 minutes, so memory is flat from then on (the
/// soak's goal; with 64 KiB per agent and 256 KiB at least it took 7 minutes). A service does not
/// know its runs' sizes and keeps [`LogWindow::DEFAULT`], the cap from 256 agents up: 5 × 8 MiB per filter,
/// about 18 s of frames at 1,000 agents and 1.8 s at 10,000 (`[broker] embedded_log_mib` changes
/// it). Beyond that, use an external broker (Mosquitto queues per session,
/// `max_queued_messages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogWindow {
    segment_bytes: usize,
}

/// Segments kept besides the active one (see [`LogWindow`]).
const SEGMENTS: usize = 4;
/// Per agent and segment: about 18 s of one agent's frames (see [`LogWindow`]).
const SEGMENT_BYTES_PER_AGENT: usize = 32 * 1024;
/// The smallest segment: one MQTT command or status is never cut short of a whole message.
const MIN_SEGMENT_BYTES: usize = 128 * 1024;

impl LogWindow {
    /// 5 × 8 MiB per filter: a service's default, whatever its runs' sizes.
    pub const DEFAULT: Self = Self {
        segment_bytes: 8 * 1024 * 1024,
    };

    /// The log for one run on its own broker (`herd run`): a minute or more of its agents'
    /// frames, and a segment at least as large as its plan, so the feeder rows and files sent
    /// ahead of the start in chunks fit the log whole while agents read them. Never more than
    /// [`LogWindow::DEFAULT`] and never less than 5 × 128 KiB.
    pub fn for_run(plan: &herd_protocol::plan::Plan) -> Self {
        let plan_bytes = serde_json::to_vec(&plan.to_json()).map_or(0, |v| v.len());
        Self::sized(plan.agents, plan_bytes)
    }

    fn sized(agents: u32, plan_bytes: usize) -> Self {
        let frames = (agents as usize).saturating_mul(SEGMENT_BYTES_PER_AGENT);
        Self {
            segment_bytes: frames
                .max(plan_bytes)
                .clamp(MIN_SEGMENT_BYTES, Self::DEFAULT.segment_bytes),
        }
    }

    /// `total_mib` MiB per filter in all (`[broker] embedded_log_mib`), over the kept segments
    /// and the active one; at least 5 × 128 KiB.
    pub fn total_mib(total_mib: u32) -> Self {
        let total = (total_mib as usize).saturating_mul(1024 * 1024);
        Self {
            segment_bytes: (total / (SEGMENTS + 1)).max(MIN_SEGMENT_BYTES),
        }
    }

    /// The most bytes one filter's log holds: the kept segments plus the active one.
    pub fn max_bytes(self) -> usize {
        self.segment_bytes * (SEGMENTS + 1)
    }
}

impl Default for LogWindow {
    fn default() -> Self {
        Self::DEFAULT
    }
}

fn config(listen: SocketAddr, auth: Arc<BrokerKeys>, log: LogWindow) -> Config {
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
            max_segment_size: log.segment_bytes,
            max_segment_count: SEGMENTS,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Config::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_log_holds_about_two_minutes_of_its_frames_within_the_bounds() {
        // 4 agents: the smallest log, 640 KiB, which 4 agents' 3 KB/s of frames fill in 3.5 min.
        assert_eq!(LogWindow::sized(4, 10_000).max_bytes(), 5 * 128 * 1024);
        assert_eq!(LogWindow::sized(16, 0).segment_bytes, 16 * 32 * 1024);
        // From 256 agents up, the service's cap.
        assert_eq!(LogWindow::sized(255, 0).segment_bytes, 255 * 32 * 1024);
        assert_eq!(LogWindow::sized(256, 0), LogWindow::DEFAULT);
        assert_eq!(LogWindow::sized(10_000, 0), LogWindow::DEFAULT);
        // A plan with 3 MiB of feeder rows keeps them whole in one segment.
        assert_eq!(LogWindow::sized(2, 3 << 20).segment_bytes, 3 << 20);
        assert_eq!(LogWindow::sized(2, 100 << 20), LogWindow::DEFAULT);
    }

    #[test]
    fn a_configured_total_is_spread_over_the_kept_and_active_segments() {
        assert_eq!(LogWindow::total_mib(40), LogWindow::DEFAULT);
        assert_eq!(LogWindow::total_mib(2).segment_bytes, 2 * 1024 * 1024 / 5);
    }
}
