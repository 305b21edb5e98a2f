//! How a simulated agent (and the bench's live listener) connects: the one place that builds
//! their MQTT options, so that when brokers want credentials only this changes.
//!
//! The options mirror a real agent's (`herd-agent`'s session): client id `herd-{run}-{agent}`,
//! 5 s keep-alive, 1 MB packets, a clean session, the `lost` last will and, when the broker
//! wants one, the agent's per-run credential (user `{run}/{agent}`), which also signs its last
//! will as every message it publishes.

use herd_protocol::agent::{AgentStatus, StatusMessage};
use herd_protocol::broker::{BrokerAddr, BrokerScheme};
use herd_protocol::msgauth::{self, Credential};
use herd_protocol::{topics, wire, AgentId, RunId};
use rumqttc::{AsyncClient, EventLoop, LastWill, MqttOptions, QoS};
use std::time::Duration;

/// MQTT keep-alive, as a real agent's.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Largest MQTT packet, as a real agent's (the start command grows with the agent count).
const MAX_PACKET: usize = 1024 * 1024;
/// Requests a session may queue before the event loop takes them.
const QUEUE: usize = 64;

/// A broker the simulated agents cannot reach (only plain `mqtt://` is simulated).
#[derive(Debug, thiserror::Error)]
#[error("the swarm speaks plain mqtt:// only, not {0}")]
pub struct Unsupported(pub String);

/// Options for a session with `client_id` on `broker`.
fn options(broker: &BrokerAddr, client_id: String) -> Result<MqttOptions, Unsupported> {
    if broker.scheme != BrokerScheme::Mqtt {
        return Err(Unsupported(broker.to_string()));
    }
    let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    options
        .set_keep_alive(KEEP_ALIVE)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_clean_session(true);
    Ok(options)
}

/// A simulated agent's session, with the last will a real agent leaves.
pub fn agent(
    broker: &BrokerAddr,
    run: &RunId,
    agent: &AgentId,
    password: Option<&str>,
) -> Result<(AsyncClient, EventLoop), Unsupported> {
    let mut options = options(broker, msgauth::agent_client_id(run, agent))?;
    let topic = topics::status(run, agent);
    let mut will = wire::encode(&StatusMessage::new(agent.clone(), AgentStatus::Lost));
    if let Some(password) = password {
        will = msgauth::sign(password, &topic, &will);
        options.set_credentials(msgauth::agent_username(run, agent), password);
    }
    options.set_last_will(LastWill::new(topic, will, QoS::AtLeastOnce, false));
    Ok(AsyncClient::new(options, QUEUE))
}

/// The bench's listener on the run's live topic (a dashboard, as far as the broker knows).
pub fn listener(
    broker: &BrokerAddr,
    run: &RunId,
    credential: Option<&Credential>,
) -> Result<(AsyncClient, EventLoop), Unsupported> {
    let mut options = options(broker, format!("herd-swarm-live-{run}"))?;
    if let Some(c) = credential {
        options.set_credentials(c.username.clone(), c.password.clone());
    }
    Ok(AsyncClient::new(options, QUEUE))
}
