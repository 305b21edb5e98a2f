//! The coordinator's MQTT session: one connection for every run.
//!
//! [`MqttLink`] is the cloneable handle (publish, register a run); the driver task owns rumqttc's
//! event loop, decodes what agents send and routes it to the run actor registered for that run.
//! Registering waits for the broker's SUBACK, so a run never launches agents before it can hear
//! their "ready".
//!
//! The session is either *clean* (the embedded broker, which dies with the coordinator anyway:
//! messages are acknowledged on receipt) or *durable* ([`MqttLink::connect_durable`], for an
//! external broker): a stable client id, `clean_session = false` and manual acknowledgements, so
//! the broker keeps the run's subscriptions and every message the coordinator has not stored yet
//! across a coordinator crash, and delivers them to the restarted coordinator
//! ([`deliveries`] decides what is acknowledged when).

mod deliveries;

use crate::bus::{AgentBus, BusError};
use crate::launcher::BoxFuture;
use actix::{Message, Recipient};
use deliveries::{Deliveries, Token, WAIT_LIMIT};
use herd_protocol::agent::{CommandMessage, StatusMessage};
use herd_protocol::frame::Frame;
use herd_protocol::topics::{self, AgentTopic};
use herd_protocol::{wire, AgentId, RunId};
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Publish, QoS};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// What an agent said, routed to its run's actor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
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

/// Why the MQTT session failed.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// The broker URL is not `mqtt://host:port` or `host:port`.
    #[error("invalid broker URL {0:?}: expected mqtt://HOST:PORT")]
    Url(String),
    /// The client refused a request (its queue is closed: the session ended).
    #[error("MQTT client: {0}")]
    Client(#[from] rumqttc::ClientError),
    /// The broker did not acknowledge a subscription in time.
    #[error("the broker did not acknowledge the subscription for run {0} in time")]
    SubscribeTimeout(RunId),
    /// The initial connection failed.
    #[error("cannot connect to the MQTT broker at {0}: {1}")]
    Connect(String, String),
}

/// Splits `mqtt://host:port` (or `host:port`) into host and port.
pub fn parse_broker_url(url: &str) -> Result<(String, u16), MqttError> {
    let rest = url.strip_prefix("mqtt://").unwrap_or(url);
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| MqttError::Url(url.to_string()))?;
    let port = port.parse().map_err(|_| MqttError::Url(url.to_string()))?;
    if host.is_empty() {
        return Err(MqttError::Url(url.to_string()));
    }
    Ok((host.to_string(), port))
}

/// Where each run's messages go, and (durable sessions) what may be acknowledged.
#[derive(Default)]
struct Router {
    routes: HashMap<RunId, Recipient<AgentInbound>>,
    durable: bool,
    deliveries: Deliveries<AgentInbound>,
}

/// Cloneable handle on the coordinator's MQTT session.
#[derive(Clone)]
pub struct MqttLink {
    client: AsyncClient,
    router: Arc<Mutex<Router>>,
    suback_waiters: Arc<Mutex<VecDeque<oneshot::Sender<()>>>>,
}

impl MqttLink {
    /// Connects a clean session (messages acknowledged on receipt) and starts the driver task on
    /// the current runtime. Returns once the broker accepted the connection.
    pub async fn connect(url: &str, client_id: &str) -> Result<Self, MqttError> {
        Self::connect_with(url, client_id, false).await
    }

    /// Connects a durable session: `client_id` must be the same at every start of this
    /// coordinator (and used by no other), so the broker hands the restarted coordinator the
    /// subscriptions and unacknowledged messages of the one that crashed. A message is
    /// acknowledged only once its run said its effect is stored ([`AgentBus::acknowledge`]).
    pub async fn connect_durable(url: &str, client_id: &str) -> Result<Self, MqttError> {
        Self::connect_with(url, client_id, true).await
    }

    async fn connect_with(url: &str, client_id: &str, durable: bool) -> Result<Self, MqttError> {
        let (host, port) = parse_broker_url(url)?;
        let mut options = MqttOptions::new(client_id, host, port);
        options.set_keep_alive(Duration::from_secs(5));
        options.set_clean_session(!durable).set_manual_acks(durable);
        options.set_max_packet_size(
            crate::broker::MAX_PAYLOAD + 1024,
            crate::broker::MAX_PAYLOAD + 1024,
        );
        options.set_inflight(200);
        let (client, mut eventloop) = AsyncClient::new(options, 1024);
        // Wait for CONNACK, so that a wrong URL fails here with a clear error.
        let connected = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
        .await
        .map_err(|_| MqttError::Connect(url.to_string(), "timed out".into()))?;
        connected.map_err(|e| MqttError::Connect(url.to_string(), e))?;
        let router = Router {
            durable,
            ..Router::default()
        };
        let link = Self {
            client,
            router: Arc::new(Mutex::new(router)),
            suback_waiters: Arc::default(),
        };
        tokio::spawn(drive(eventloop, link.clone()));
        Ok(link)
    }

    /// Routes a run's agent topics to `recipient`, once the broker acknowledged the subscription.
    pub async fn subscribe_run(
        &self,
        run: &RunId,
        recipient: Recipient<AgentInbound>,
    ) -> Result<(), MqttError> {
        {
            // Under the lock, so messages that waited for the run reach it before newer ones.
            let mut router = self.lock();
            for (message, token) in router.deliveries.release(run) {
                router.deliveries.delivered(run, token);
                recipient.do_send(message);
            }
            router.routes.insert(run.clone(), recipient);
        }
        let (tx, rx) = oneshot::channel();
        if let Ok(mut waiters) = self.suback_waiters.lock() {
            waiters.push_back(tx);
        }
        self.client
            .subscribe(topics::agents_filter(run), QoS::AtLeastOnce)
            .await?;
        tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .map_err(|_| MqttError::SubscribeTimeout(run.clone()))?
            .map_err(|_| MqttError::SubscribeTimeout(run.clone()))
    }

    /// Stops routing a run's topics; whatever it was delivered is acknowledged.
    pub async fn unsubscribe_run(&self, run: &RunId) {
        let acks = {
            let mut router = self.lock();
            router.routes.remove(run);
            router.deliveries.close(run)
        };
        self.ack(acks);
        let _ = self.client.unsubscribe(topics::agents_filter(run)).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Router> {
        self.router
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends the acknowledgements of these packet ids.
    fn ack(&self, pkids: Vec<u16>) {
        for pkid in pkids {
            let mut publish = Publish::new("", QoS::AtLeastOnce, Vec::new());
            publish.pkid = pkid;
            if self.client.try_ack(&publish).is_err() {
                // The request queue is full: wait for room rather than lose the acknowledgement.
                let client = self.client.clone();
                tokio::spawn(async move {
                    let _ = client.ack(&publish).await;
                });
            }
        }
    }

    fn incoming(&self, publish: &Publish) {
        let token = {
            let router = self.lock();
            (router.durable && publish.qos != QoS::AtMostOnce)
                .then(|| router.deliveries.token(publish.pkid))
        };
        self.route(&publish.topic, &publish.payload, token);
    }

    fn route(&self, topic: &str, payload: &[u8], token: Option<Token>) {
        let Some((run, message)) = decode_inbound(topic, payload) else {
            // Not an agent's message (nothing else is subscribed): nothing will store it.
            let ack = self.lock().deliveries.ackable(token);
            self.ack(ack.into_iter().collect());
            return;
        };
        let mut router = self.lock();
        if let Some(recipient) = router.routes.get(&run).cloned() {
            router.deliveries.delivered(&run, token);
            recipient.do_send(message);
        } else if router.durable {
            // After a restart the backlog comes before the runs are resumed: keep it for them.
            let ack = router.deliveries.hold(run, message, token, Instant::now());
            drop(router);
            self.ack(ack.into_iter().collect());
        } else {
            tracing::debug!(%run, "message for a run that is not registered");
        }
    }
}

/// Decodes what an agent published on `topic`: the run it belongs to and the message for that
/// run's actor (`Malformed` when the payload does not decode or names another agent); `None`
/// when `topic` is not an agent topic. Every inbound path uses it: this MQTT session, and frames
/// relayed through SQS ([`crate::aws::frames_sqs`]).
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

async fn drive(mut eventloop: EventLoop, link: MqttLink) {
    loop {
        let event = eventloop.poll().await;
        if link.lock().durable {
            let expired = link.lock().deliveries.expire(Instant::now(), WAIT_LIMIT);
            link.ack(expired);
        }
        match event {
            Ok(Event::Incoming(Incoming::Publish(p))) => link.incoming(&p),
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                // A reconnection: the broker delivers again what was not acknowledged.
                link.lock().deliveries.reconnected();
            }
            Ok(Event::Incoming(Incoming::SubAck(_))) => {
                let waiter = link
                    .suback_waiters
                    .lock()
                    .ok()
                    .and_then(|mut w| w.pop_front());
                if let Some(w) = waiter {
                    let _ = w.send(());
                }
            }
            Ok(_) => {}
            Err(e) => {
                // rumqttc reconnects on the next poll; pause so a dead broker is not spun on.
                tracing::warn!(error = %e, "coordinator MQTT connection error; reconnecting");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

impl AgentBus for MqttLink {
    fn register(
        &self,
        run: &RunId,
        recipient: Recipient<AgentInbound>,
    ) -> BoxFuture<Result<(), BusError>> {
        let (link, run) = (self.clone(), run.clone());
        Box::pin(async move {
            link.subscribe_run(&run, recipient)
                .await
                .map_err(|e| BusError(e.to_string()))
        })
    }

    fn unregister(&self, run: &RunId) -> BoxFuture<()> {
        let (link, run) = (self.clone(), run.clone());
        Box::pin(async move { link.unsubscribe_run(&run).await })
    }

    fn acknowledge(&self, run: &RunId, count: u64) {
        let acks = self.lock().deliveries.acknowledge(run, count);
        self.ack(acks);
    }

    fn send_command(&self, message: CommandMessage) -> BoxFuture<Result<(), BusError>> {
        let client = self.client.clone();
        Box::pin(async move {
            client
                .publish(
                    topics::commands(&message.run),
                    QoS::AtLeastOnce,
                    false,
                    wire::encode(&message),
                )
                .await
                .map_err(|e| BusError(e.to_string()))
        })
    }

    fn publish_live(&self, run: &RunId, payload: Vec<u8>) -> BoxFuture<Result<(), BusError>> {
        let client = self.client.clone();
        let topic = topics::live(run);
        Box::pin(async move {
            client
                .publish(topic, QoS::AtMostOnce, false, payload)
                .await
                .map_err(|e| BusError(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        assert_eq!(
            parse_broker_url("mqtt://127.0.0.1:1883").ok(),
            Some(("127.0.0.1".into(), 1883))
        );
        assert_eq!(
            parse_broker_url("localhost:9").ok(),
            Some(("localhost".into(), 9))
        );
        assert!(parse_broker_url("mqtt://nohost").is_err());
        assert!(parse_broker_url(":1").is_err());
    }
}
