//! Commands to agents through the AWS IoT data plane: the AWS [`AgentBus`].
//!
//! In AWS the agents' broker is IoT Core. The coordinator publishes to it with its IAM role
//! through the data plane's `Publish` API (no certificate of its own needed), and hears the agents
//! through an [`Inbound`] path: its own MQTT subscription ([`MqttLink`]) or an SQS queue an IoT
//! topic rule fills ([`FramesViaSqs`]).
//!
//! Commands are QoS1. The start command is also *retained*: an agent that connects, or
//! reconnects, after it was sent still receives it on subscribing (agents ignore a repeated start,
//! and start at once when its start time has passed). Only the start is retained — a retained stop
//! or ramp would replace it for the next late agent. When the run is unregistered the retained
//! start is cleared with an empty retained publish (agents ignore empty command payloads), so
//! nothing is left on the broker. Live aggregates go out as QoS0 publishes.

use super::frames_sqs::FramesViaSqs;
use crate::bus::{AgentBus, BusError, Inbox};
use crate::launcher::BoxFuture;
use crate::mqtt::MqttLink;
use aws_config::SdkConfig;
use aws_sdk_iotdataplane::primitives::Blob;
use herd_protocol::agent::{AgentCommand, AgentCommandMessage};
use herd_protocol::{topics, wire, RunId};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

/// Where agents' messages come from.
#[derive(Clone)]
pub enum Inbound {
    /// The coordinator's own MQTT subscription to the broker.
    Mqtt(MqttLink),
    /// An SQS queue an IoT topic rule forwards them into.
    Sqs(FramesViaSqs),
}

/// Publishes agent commands with the IoT data plane; see the module docs.
#[derive(Clone)]
pub struct IotDataBus {
    client: aws_sdk_iotdataplane::Client,
    inbound: Inbound,
    /// Runs whose start command is retained on the broker.
    retained: Arc<Mutex<HashSet<RunId>>>,
}

impl IotDataBus {
    /// A bus publishing through the data plane at `endpoint_url` (`[broker] iot_endpoint_url`;
    /// the account's `iot:Data-ATS` endpoint, `https://…-ats.iot.REGION.amazonaws.com`), or the
    /// SDK config's endpoint when `None`.
    pub fn new(sdk: &SdkConfig, endpoint_url: Option<&str>, inbound: Inbound) -> Self {
        let mut config = aws_sdk_iotdataplane::config::Builder::from(sdk);
        if let Some(url) = endpoint_url {
            config = config.endpoint_url(url);
        }
        Self {
            client: aws_sdk_iotdataplane::Client::from_conf(config.build()),
            inbound,
            retained: Arc::default(),
        }
    }

    async fn publish(
        &self,
        topic: String,
        qos: i32,
        retain: bool,
        payload: Vec<u8>,
    ) -> Result<(), BusError> {
        self.client
            .publish()
            .topic(&topic)
            .qos(qos)
            .retain(retain)
            .payload(Blob::new(payload))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                BusError(format!(
                    "IoT Publish to {topic}: {}",
                    super::sdk_error_text(&e)
                ))
            })
    }

    fn retained(&self) -> std::sync::MutexGuard<'_, HashSet<RunId>> {
        self.retained.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AgentBus for IotDataBus {
    fn register(&self, run: &RunId, inbox: Inbox) -> BoxFuture<Result<(), BusError>> {
        match &self.inbound {
            Inbound::Mqtt(link) => link.register(run, inbox),
            Inbound::Sqs(queue) => {
                queue.register(run, inbox);
                Box::pin(async { Ok(()) })
            }
        }
    }

    fn unregister(&self, run: &RunId) -> BoxFuture<()> {
        let (this, run) = (self.clone(), run.clone());
        Box::pin(async move {
            match &this.inbound {
                Inbound::Mqtt(link) => link.unregister(&run).await,
                Inbound::Sqs(queue) => queue.unregister(&run),
            }
            if this.retained().remove(&run) {
                // An empty retained message deletes the retained one (MQTT and IoT Core alike).
                if let Err(e) = this
                    .publish(topics::commands(&run), 1, true, Vec::new())
                    .await
                {
                    tracing::warn!(%run, error = %e, "cannot clear the retained start command");
                }
            }
        })
    }

    fn send_command(&self, message: AgentCommandMessage) -> BoxFuture<Result<(), BusError>> {
        let this = self.clone();
        Box::pin(async move {
            let retain = matches!(message.command, AgentCommand::Start { .. });
            if retain {
                // Recorded first: a publish that failed late may still have been retained.
                this.retained().insert(message.run.clone());
            }
            this.publish(
                topics::commands(&message.run),
                1,
                retain,
                wire::encode(&message),
            )
            .await
        })
    }

    fn publish_live(&self, run: &RunId, payload: Vec<u8>) -> BoxFuture<Result<(), BusError>> {
        let (this, topic) = (self.clone(), topics::live(run));
        Box::pin(async move { this.publish(topic, 0, false, payload).await })
    }

    fn acknowledge(&self, run: &RunId, count: u64) {
        match &self.inbound {
            Inbound::Mqtt(link) => link.acknowledge(run, count),
            Inbound::Sqs(queue) => queue.acknowledge(run, count),
        }
    }
}
