//! The MQTT command topic (`herd/commands`) as a command source.
//!
//! Whatever publishes a protocol [`CommandMessage`] there — a script, another system on the
//! broker, a bridge from IoT Core — goes through the same [`Manager`] path as the HTTP API and the
//! scheduler: same checks, same idempotence by command id. There is no one to answer on MQTT, so
//! outcomes are events: the manager emits them for carried-out and refused commands, and a
//! message that is not a command at all becomes a `command.rejected` event here (the session
//! lives on).
//!
//! On the embedded broker a command must carry the MAC of the commander's credential
//! ([`crate::broker::auth`]): any client the broker admits (an agent) could publish here, and
//! the broker cannot tell who did. An unsigned or wrongly signed command is dropped, counted and
//! logged, and becomes no event (it would let anyone fill the events topic).
//!
//! The session subscribes on every CONNACK, so it resubscribes after the broker restarts.

use crate::broker::auth::BrokerKeys;
use crate::events::{self, EventSink};
use crate::manager::Manager;
use crate::mqtt::{BrokerEndpoint, MqttError};
use herd_protocol::command::CommandMessage;
use herd_protocol::event::Event;
use herd_protocol::{topics, wire};
use rumqttc::{AsyncClient, Event as MqttEvent, Incoming, QoS};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Takes commands from `herd/commands` on `broker` until `shutdown` resolves; with `keys`,
/// only those the commander signed.
pub async fn run(
    broker: &BrokerEndpoint,
    keys: Option<Arc<BrokerKeys>>,
    manager: Manager,
    sink: Arc<dyn EventSink>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), MqttError> {
    let mut options = broker.options(&format!("herd-intake-{}", std::process::id()))?;
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let clock = herd_protocol::clock::Clock::new();
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            event = eventloop.poll() => event,
            () = &mut shutdown => {
                let _ = client.disconnect().await;
                return Ok(());
            }
        };
        match event {
            Ok(MqttEvent::Incoming(Incoming::ConnAck(_))) => {
                let _ = client
                    .subscribe(topics::COORDINATOR_COMMANDS, QoS::AtLeastOnce)
                    .await;
            }
            Ok(MqttEvent::Incoming(Incoming::Publish(p)))
                if p.topic == topics::COORDINATOR_COMMANDS =>
            {
                let payload = match &keys {
                    Some(keys) => match crate::bus::authenticate(keys, &p.topic, &p.payload) {
                        Ok(payload) => payload,
                        Err(_) => continue,
                    },
                    None => herd_protocol::msgauth::split(&p.payload).0,
                };
                match wire::decode::<CommandMessage>(payload) {
                    Ok(command) => {
                        let manager = manager.clone();
                        tokio::spawn(async move {
                            let id = command.id.clone();
                            if let Err(r) = manager.execute(command).await {
                                tracing::info!(command = %id, code = r.code.as_str(), "MQTT command refused");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "not a command on {}", topics::COORDINATOR_COMMANDS);
                        let id = serde_json::from_slice::<serde_json::Value>(payload)
                            .ok()
                            .and_then(|v| v.get("id")?.as_str().map(String::from));
                        let event = Event::CommandRejected {
                            code: "invalid".into(),
                            message: e.to_string(),
                        };
                        sink.emit(events::message(event, id, clock.unix_ms()));
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "command topic session lost; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
