//! The coordinator's MQTT session: one connection for every run.
//!
//! [`MqttLink`] is the cloneable handle (publish, register a run); the driver, on a thread of its
//! own (`herd-mqtt`), owns rumqttc's event loop, decodes what agents send and routes it to the
//! run actor registered for that run, and sends acknowledgements ([`acks`]).
//! Registering waits for the broker's SUBACK, so a run never launches agents before it can hear
//! their "ready".
//!
//! The session is either *clean* (the embedded broker, which dies with the coordinator anyway:
//! messages are acknowledged on receipt) or *durable* ([`MqttLink::connect_durable`], for an
//! external broker): a stable client id, `clean_session = false` and manual acknowledgements, so
//! the broker keeps the run's subscriptions and every message the coordinator has not stored yet
//! across a coordinator crash, and delivers them to the restarted coordinator
//! ([`deliveries`] decides what is acknowledged when).

mod acks;
mod deliveries;

use crate::broker::auth::BrokerKeys;
use crate::bus::{authenticate, decode_inbound, AgentBus, AgentInbound, BusError, Inbox};
use crate::launcher::BoxFuture;
use acks::Acks;
use deliveries::{Deliveries, Token, WAIT_LIMIT};
use herd_protocol::agent::AgentCommandMessage;
use herd_protocol::aws_credentials::Provider;
use herd_protocol::broker::{BrokerAddr, BrokerScheme};
use herd_protocol::cmdseal;
use herd_protocol::mqtt_ws::{self, SigV4};
use herd_protocol::msgauth::Credential;
use herd_protocol::tls::{self, ClientTls, OptionNames, TlsError, TlsOptions};
use herd_protocol::{topics, wire, RunId};
use rumqttc::{
    AsyncClient, Event, EventLoop, Incoming, MqttOptions, Publish, QoS, TlsConfiguration, Transport,
};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Why the MQTT session failed.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// The broker cannot be spoken to over this transport.
    #[error("broker {0}: {1}")]
    Transport(String, String),
    /// A TLS option (`broker.ca_file`, …) cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
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

/// How the coordinator reaches its broker: where, with which TLS material for `mqtts://` and
/// `wss://`, and whether its WebSocket connections are presigned with SigV4 (IoT Core).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    /// The broker's address.
    pub addr: BrokerAddr,
    /// CA and client certificate for `mqtts://` (none: the built-in roots, no certificate).
    pub tls: TlsOptions,
    /// `[broker] auth = "sigv4"`: the region each WebSocket connection is signed for.
    pub sigv4_region: Option<String>,
    /// The user name and password the coordinator connects with (the embedded broker's
    /// coordinator credential).
    pub credentials: Option<Credential>,
}

/// How `herd.toml` names the TLS options, for error messages.
const TLS_NAMES: OptionNames = OptionNames {
    ca: "broker.ca_file",
    cert: "broker.cert_file",
    key: "broker.key_file",
};

impl BrokerEndpoint {
    /// An endpoint without TLS options, from a URL.
    pub fn parse(url: &str) -> Result<Self, herd_protocol::broker::BrokerAddrError> {
        BrokerAddr::parse(url).map(Self::plain)
    }

    /// An endpoint without TLS options (the embedded broker, tests).
    pub fn plain(addr: BrokerAddr) -> Self {
        Self {
            addr,
            tls: TlsOptions::default(),
            sigv4_region: None,
            credentials: None,
        }
    }

    /// Session options for `client_id` with the transport the scheme asks for.
    pub fn options(&self, client_id: &str) -> Result<MqttOptions, MqttError> {
        let mut options = if self.addr.scheme.is_websocket() {
            let tls = match self.addr.scheme {
                BrokerScheme::Wss => Some(tls::client_config(&ClientTls {
                    options: Some((&self.tls, TLS_NAMES)),
                    ..ClientTls::default()
                })?),
                _ => None,
            };
            let sigv4 = self.sigv4_region.clone().map(|region| SigV4 {
                region,
                credentials: Arc::new(Provider::from_env()),
            });
            mqtt_ws::websocket_options(client_id, &self.addr, tls, sigv4)
        } else {
            let mut options = MqttOptions::new(client_id, self.addr.host.clone(), self.addr.port);
            options.set_transport(self.transport()?);
            options
        };
        options.set_max_packet_size(
            crate::broker::MAX_PAYLOAD + 1024,
            crate::broker::MAX_PAYLOAD + 1024,
        );
        if let Some(c) = &self.credentials {
            options.set_credentials(c.username.clone(), c.password.clone());
        }
        Ok(options)
    }

    /// The transport of `mqtt://` and `mqtts://` brokers.
    fn transport(&self) -> Result<Transport, MqttError> {
        Ok(match self.addr.scheme {
            BrokerScheme::Mqtt => Transport::Tcp,
            BrokerScheme::Mqtts => {
                let config = tls::client_config(&ClientTls {
                    options: Some((&self.tls, TLS_NAMES)),
                    ..ClientTls::default()
                })?;
                Transport::Tls(TlsConfiguration::Rustls(Arc::new(config)))
            }
            BrokerScheme::Ws | BrokerScheme::Wss => {
                return Err(MqttError::Transport(
                    self.addr.to_string(),
                    "a WebSocket broker takes its options from `options`".into(),
                ))
            }
        })
    }
}

impl std::fmt::Display for BrokerEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.addr.fmt(f)
    }
}

/// The coordinator's keep-alive. Its PINGRESP waits behind every message the broker queued for
/// it, and rumqttc drops a connection whose PINGRESP did not come within one keep-alive: at
/// 10,000 agents (20,000 messages a second) a 5 s keep-alive dropped the coordinator as soon as
/// it, or the broker, fell 5 s behind, and the durable session's redelivery then buried it
/// (the swarm bench: `Last pingreq isn't acked`, then every agent "lost"). The coordinator sends
/// acknowledgements and commands all the time, so a long keep-alive hides nothing from the broker;
/// a broker that dies closes the socket, which is noticed at once (one that hangs, within 60 s).
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// The coordinator's session options: clean or durable (see the module docs).
fn session_options(
    broker: &BrokerEndpoint,
    client_id: &str,
    durable: bool,
) -> Result<MqttOptions, MqttError> {
    let mut options = broker.options(client_id)?;
    options.set_keep_alive(KEEP_ALIVE);
    options.set_clean_session(!durable).set_manual_acks(durable);
    options.set_inflight(200);
    Ok(options)
}

/// Where each run's messages go, and (durable sessions) what may be acknowledged.
#[derive(Default)]
struct Router {
    routes: HashMap<RunId, Inbox>,
    durable: bool,
    deliveries: Deliveries<AgentInbound>,
    /// When set, each run's agents are admitted while it is registered, and agent messages
    /// without their agent's MAC are dropped.
    auth: Option<Arc<BrokerKeys>>,
}

/// Cloneable handle on the coordinator's MQTT session.
#[derive(Clone)]
pub struct MqttLink {
    client: AsyncClient,
    /// Sends acknowledgements in order ([`acks`]).
    acks: Acks,
    router: Arc<Mutex<Router>>,
    suback_waiters: Arc<Mutex<VecDeque<oneshot::Sender<()>>>>,
    /// SUBACKs still due for subscriptions renewed after a reconnection.
    resubscribing: Arc<AtomicUsize>,
}

impl MqttLink {
    /// Connects a clean session (messages acknowledged on receipt) and starts the driver task on
    /// the current runtime. Returns once the broker accepted the connection.
    pub async fn connect(broker: &BrokerEndpoint, client_id: &str) -> Result<Self, MqttError> {
        Self::connect_with(broker, client_id, false).await
    }

    /// Connects a durable session: `client_id` must be the same at every start of this
    /// coordinator (and used by no other), so the broker hands the restarted coordinator the
    /// subscriptions and unacknowledged messages of the one that crashed. A message is
    /// acknowledged only once its run said its effect is stored ([`AgentBus::acknowledge`]).
    pub async fn connect_durable(
        broker: &BrokerEndpoint,
        client_id: &str,
    ) -> Result<Self, MqttError> {
        Self::connect_with(broker, client_id, true).await
    }

    async fn connect_with(
        broker: &BrokerEndpoint,
        client_id: &str,
        durable: bool,
    ) -> Result<Self, MqttError> {
        let url = broker.to_string();
        let options = session_options(broker, client_id, durable)?;
        let (client, eventloop) = AsyncClient::new(options, 1024);
        let (acks, pump) = Acks::new(client.clone());
        let router = Router {
            durable,
            ..Router::default()
        };
        let link = Self {
            acks,
            client,
            router: Arc::new(Mutex::new(router)),
            suback_waiters: Arc::default(),
            resubscribing: Arc::default(),
        };
        let (connected_tx, connected) = oneshot::channel();
        let session = link.clone();
        // The session gets a thread and runtime of its own: reading the socket, checking and
        // decoding every message then runs beside the run actors instead of between their
        // messages. At 10,000 agents the frames of a second arrive together, and on one thread
        // intake and aggregation queued behind each other (the live lag grew with their sum).
        let spawned = std::thread::Builder::new()
            .name("herd-mqtt".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = connected_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let mut eventloop = eventloop;
                    // Wait for CONNACK, so that a wrong URL fails here with a clear error.
                    let first = tokio::time::timeout(Duration::from_secs(10), async {
                        loop {
                            match eventloop.poll().await {
                                Ok(Event::Incoming(Incoming::ConnAck(_))) => return Ok(()),
                                Ok(_) => {}
                                Err(e) => return Err(e.to_string()),
                            }
                        }
                    })
                    .await
                    .unwrap_or_else(|_| Err("timed out".into()));
                    let ok = first.is_ok();
                    let _ = connected_tx.send(first);
                    if ok {
                        tokio::spawn(pump);
                        drive(eventloop, session).await;
                    }
                });
            });
        if let Err(e) = spawned {
            return Err(MqttError::Connect(
                url,
                format!("cannot start its thread: {e}"),
            ));
        }
        match connected.await {
            Ok(Ok(())) => Ok(link),
            Ok(Err(e)) => Err(MqttError::Connect(url, e)),
            Err(_) => Err(MqttError::Connect(url, "its thread ended".into())),
        }
    }

    /// Checks every agent message against the credentials of `auth` (see [`crate::broker::auth`]),
    /// opens and closes runs there as they register and end, and seals every command with its
    /// run's key ([`herd_protocol::cmdseal`]).
    pub fn authenticate_with(&self, auth: Arc<BrokerKeys>) {
        self.lock().auth = Some(auth);
    }

    /// Routes a run's agent topics to `inbox`, once the broker acknowledged the subscription.
    pub async fn subscribe_run(&self, run: &RunId, inbox: Inbox) -> Result<(), MqttError> {
        {
            // Under the lock, so messages that waited for the run reach it before newer ones.
            let mut router = self.lock();
            for (message, token) in router.deliveries.release(run) {
                router.deliveries.delivered(run, token);
                let _ = inbox.send(message);
            }
            router.routes.insert(run.clone(), inbox);
            if let Some(auth) = &router.auth {
                auth.open(run);
            }
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
            if let Some(auth) = &router.auth {
                auth.close(run);
            }
            router.deliveries.close(run)
        };
        self.ack(acks);
        let _ = self.client.unsubscribe(topics::agents_filter(run)).await;
    }

    /// Subscribes again to every registered run's topics (the broker forgot them).
    fn resubscribe(&self) {
        let runs: Vec<RunId> = self.lock().routes.keys().cloned().collect();
        for run in runs {
            if self
                .client
                .try_subscribe(topics::agents_filter(&run), QoS::AtLeastOnce)
                .is_ok()
            {
                self.resubscribing.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%run, "subscribed again to the run's agents after the broker lost the session");
            }
        }
    }

    /// Whether a SUBACK answers [`Self::resubscribe`] (no `subscribe_run` waits for it).
    fn resubscribed_ack(&self) -> bool {
        self.resubscribing
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Router> {
        self.router
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends the acknowledgements of these packet ids, after every one sent before.
    fn ack(&self, pkids: Vec<u16>) {
        self.acks.send(pkids);
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
        let auth = self.lock().auth.clone();
        let checked = auth.map_or(Ok(payload), |auth| authenticate(&auth, topic, payload));
        let decoded = checked
            .ok()
            .and_then(|payload| decode_inbound(topic, payload));
        let Some((run, message)) = decoded else {
            // Not an agent's message (nothing else is subscribed), or not signed by the agent its
            // topic names: nothing will store it.
            let ack = self.lock().deliveries.ackable(token);
            self.ack(ack.into_iter().collect());
            return;
        };
        let mut router = self.lock();
        if let Some(inbox) = router.routes.get(&run).cloned() {
            router.deliveries.delivered(&run, token);
            let _ = inbox.send(message);
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

async fn drive(mut eventloop: EventLoop, link: MqttLink) {
    loop {
        let event = eventloop.poll().await;
        if link.lock().durable {
            let expired = link.lock().deliveries.expire(Instant::now(), WAIT_LIMIT);
            link.ack(expired);
        }
        match event {
            Ok(Event::Incoming(Incoming::Publish(p))) => link.incoming(&p),
            Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                // A reconnection: the broker delivers again what was not acknowledged.
                link.lock().deliveries.reconnected();
                if !ack.session_present {
                    // A broker that lost the session (restarted without persistence) lost the
                    // subscriptions too: without this every run went deaf after a broker restart
                    // and its agents' frames were acknowledged by the broker and dropped.
                    link.resubscribe();
                }
            }
            Ok(Event::Incoming(Incoming::SubAck(_))) => {
                if link.resubscribed_ack() {
                    continue;
                }
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
    fn register(&self, run: &RunId, inbox: Inbox) -> BoxFuture<Result<(), BusError>> {
        let (link, run) = (self.clone(), run.clone());
        Box::pin(async move {
            link.subscribe_run(&run, inbox)
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

    fn run_key(&self, run: &RunId) -> Option<cmdseal::RunKey> {
        self.lock().auth.as_ref().map(|auth| auth.run_key(run))
    }

    fn send_command(&self, message: AgentCommandMessage) -> BoxFuture<Result<(), BusError>> {
        let client = self.client.clone();
        let auth = self.lock().auth.clone();
        Box::pin(async move {
            let topic = topics::commands(&message.run);
            let mut payload = wire::encode(&message);
            // With per-run credentials, only the run's agents may read or believe a command.
            if let Some(auth) = auth {
                payload = cmdseal::seal(&auth.run_key(&message.run), &topic, &payload)
                    .map_err(|e| BusError(e.to_string()))?;
            }
            client
                .publish(topic, QoS::AtLeastOnce, false, payload)
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
mod thread_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> BrokerEndpoint {
        BrokerEndpoint::plain(BrokerAddr::parse(url).expect("address"))
    }

    #[test]
    fn transports_by_scheme() {
        let plain = endpoint("mqtt://127.0.0.1:1883")
            .options("c")
            .expect("options");
        assert!(matches!(plain.transport(), Transport::Tcp));
        let tls = endpoint("mqtts://127.0.0.1").options("c").expect("options");
        assert!(matches!(tls.transport(), Transport::Tls(_)));
        assert_eq!(tls.broker_address(), ("127.0.0.1".to_string(), 8883));
        let ws = endpoint("wss://h/mqtt").options("c").expect("options");
        assert!(matches!(ws.transport(), Transport::Wss(_)));
        assert_eq!(ws.broker_address().0, "wss://h:443/mqtt");
    }

    #[test]
    fn the_session_outlasts_a_broker_seconds_behind_on_its_pings() {
        let broker = endpoint("mqtt://127.0.0.1:1883");
        for durable in [false, true] {
            let options = session_options(&broker, "c", durable).expect("options");
            assert!(options.keep_alive() >= Duration::from_secs(30));
            assert_eq!(options.clean_session(), !durable);
            assert_eq!(options.manual_acks(), durable);
        }
    }

    #[test]
    fn tls_errors_name_the_key() {
        let mut broker = endpoint("mqtts://h:8883");
        broker.tls.ca = Some(tls::PemSource::File("/nonexistent/ca.pem".into()));
        let e = broker.options("c").err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.starts_with("broker.ca_file: cannot read /nonexistent/ca.pem")));
    }
}
