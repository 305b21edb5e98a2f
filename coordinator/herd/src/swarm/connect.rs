//! How a simulated agent (and the bench's live listener) connects: the one place that builds
//! their MQTT options, so that when brokers want credentials only this changes.
//!
//! The options mirror a real agent's (`herd-agent`'s session): client id `herd-{run}-{agent}`,
//! 5 s keep-alive, 1 MB packets, a clean session, 30 s to connect, the `lost` last will and, when the broker
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
    let (client, mut eventloop) = AsyncClient::new(options, QUEUE);
    eventloop
        .network_options
        .set_connection_timeout(herd_protocol::broker::AGENT_CONNECT_TIMEOUT_S);
    Ok((client, eventloop))
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

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::{Event, Incoming};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A broker slower than rumqttc's default 5 s to accept (thousands connecting at once) is
    /// waited for, not given up on and reconnected to in a storm.
    #[tokio::test(start_paused = true)]
    async fn a_broker_that_answers_the_connect_after_6_seconds_is_waited_for() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let broker = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut connect = [0u8; 256];
            let _ = socket.read(&mut connect).await.expect("CONNECT");
            tokio::time::sleep(Duration::from_secs(6)).await;
            // CONNACK: session not present, accepted.
            socket
                .write_all(&[0x20, 0x02, 0x00, 0x00])
                .await
                .expect("CONNACK");
            socket
        });
        let addr = BrokerAddr::parse(&format!("mqtt://127.0.0.1:{port}")).expect("url");
        let run = RunId::new("r1").expect("run");
        let (_client, mut eventloop) =
            agent(&addr, &run, &AgentId::numbered(0), None).expect("options");
        let first = eventloop.poll().await;
        assert!(
            matches!(first, Ok(Event::Incoming(Incoming::ConnAck(_)))),
            "{first:?}"
        );
        drop(broker.await);
    }
}
