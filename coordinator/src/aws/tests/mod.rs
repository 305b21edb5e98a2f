//! The SQS intake and the SNS sink against moto (a real SQS/SNS emulator on loopback), with a
//! manager on fake agents: commands in raw and through an SNS topic, repeats, rejections that end
//! in the DLQ by the queue's own redrive policy, chat text, and events out through SNS to queues
//! subscribed with and without raw delivery.
//!
//! This module holds the stand-ins and helpers; `commands` tests the intake, `events` the sink.

mod commands;
mod events;

use super::sns::SnsEvents;
use super::sqs::SqsIntake;
use crate::config::{EventFormat, SnsSettings, SqsCommands};
use crate::events::{EventSink, Fanout, LocalEvents};
use crate::fakes::{FakeBus, FakeLauncher};
use crate::manager::{Manager, ManagerConfig};
use crate::run::{RunDeps, Timeouts};
use crate::store::{EmbeddedStore, Store};
use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use herd_e2e::aws::{create_queue, create_topic, queue_arn, subscribe, topic_into, Moto};
use herd_protocol::event::{Event, EventMessage};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Visibility timeout of the command queue: short, so a kept message comes back quickly.
const VISIBILITY: Duration = Duration::from_secs(2);

struct Aws {
    _moto: Moto,
    sdk: SdkConfig,
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    /// The command queue (redrive to `dlq` after 2 receives).
    commands: String,
    dlq: String,
    /// A topic fanned into the command queue without raw delivery (SNS envelopes).
    commands_topic: String,
    /// The events topic.
    events_topic: String,
    /// Subscribed to the events topic without raw delivery.
    events: String,
    /// Subscribed to the events topic with raw delivery.
    events_raw: String,
}

impl Aws {
    async fn start() -> Self {
        let moto = Moto::start();
        let sdk = moto.sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let sns = aws_sdk_sns::Client::new(&sdk);
        let dlq = create_queue(&sqs, "herd-commands-dlq", None).await;
        let redrive =
            json!({"deadLetterTargetArn": queue_arn(&sqs, &dlq).await, "maxReceiveCount": "2"});
        let commands = create_queue(&sqs, "herd-commands", Some(redrive.to_string())).await;
        let commands_arn = queue_arn(&sqs, &commands).await;
        let commands_topic = topic_into(&sns, "herd-commands-in", &commands_arn, false).await;
        let events_topic = create_topic(&sns, "herd-events").await;
        let events = create_queue(&sqs, "herd-events", None).await;
        let events_raw = create_queue(&sqs, "herd-events-raw", None).await;
        subscribe(&sns, &events_topic, &queue_arn(&sqs, &events).await, false).await;
        subscribe(
            &sns,
            &events_topic,
            &queue_arn(&sqs, &events_raw).await,
            true,
        )
        .await;
        Self {
            _moto: moto,
            sdk,
            sqs,
            sns,
            commands,
            dlq,
            commands_topic,
            events_topic,
            events,
            events_raw,
        }
    }

    async fn send(&self, body: &str) {
        self.sqs
            .send_message()
            .queue_url(&self.commands)
            .message_body(body)
            .send()
            .await
            .expect("send to the command queue");
    }

    async fn publish(&self, body: &str) {
        self.sns
            .publish()
            .topic_arn(&self.commands_topic)
            .message(body)
            .send()
            .await
            .expect("publish to the commands topic");
    }

    fn sink(&self, format: EventFormat) -> Arc<SnsEvents> {
        let cfg = SnsSettings {
            topic_arn: self.events_topic.clone(),
            format,
            progress_interval: None,
        };
        Arc::new(SnsEvents::new(&self.sdk, &cfg))
    }

    /// Messages in the queue, visible or in flight.
    async fn depth(&self, queue: &str) -> u64 {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes");
        out.attributes
            .unwrap_or_default()
            .values()
            .map(|v| v.parse::<u64>().unwrap_or(0))
            .sum()
    }

    /// Waits until the queue holds `n` messages (visible or in flight).
    async fn until_depth(&self, queue: &str, n: u64, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let depth = self.depth(queue).await;
            if depth == n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{queue} holds {depth} messages, not {n}, after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// One event as a subscriber's queue got it: the event JSON and its SNS message attributes.
#[derive(Debug, Clone)]
struct Delivered {
    body: Value,
    attributes: HashMap<String, String>,
}

impl Delivered {
    fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap_or("")
    }
}

/// Reads events from a subscribed queue (deleting them) until `done` says so, at most `limit`.
async fn collect(
    aws: &Aws,
    queue: &str,
    limit: Duration,
    done: impl Fn(&[Delivered]) -> bool,
) -> Vec<Delivered> {
    let raw = queue == aws.events_raw;
    let deadline = tokio::time::Instant::now() + limit;
    let mut got = Vec::new();
    while !done(&got) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events so far: {:?}",
            got.iter()
                .map(|d: &Delivered| d.body.clone())
                .collect::<Vec<_>>()
        );
        let out = aws
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive events");
        for m in out.messages.unwrap_or_default() {
            let body: Value = serde_json::from_str(m.body().unwrap_or("")).expect("JSON body");
            let delivered = if raw {
                let attributes = m
                    .message_attributes()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.string_value().unwrap_or("").to_string()))
                    .collect();
                Delivered { body, attributes }
            } else {
                assert_eq!(body["Type"], "Notification", "an SNS envelope: {body}");
                let inner = body["Message"].as_str().expect("Message string");
                let attributes = body["MessageAttributes"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v["Value"].as_str().unwrap_or("").to_string()))
                    .collect();
                Delivered {
                    body: serde_json::from_str(inner).expect("the event JSON"),
                    attributes,
                }
            };
            got.push(delivered);
            aws.sqs
                .delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap_or(""))
                .send()
                .await
                .expect("delete");
        }
    }
    got
}

struct Service {
    manager: Manager,
    store: Arc<EmbeddedStore>,
    local: Arc<LocalEvents>,
    stop: Option<oneshot::Sender<()>>,
    intake: Option<tokio::task::JoinHandle<()>>,
}

impl Service {
    /// A manager on fake agents, an SQS intake on `aws.commands`, events to the log and SNS.
    fn start(aws: &Aws, format: EventFormat) -> Self {
        let (bus, _commands) = FakeBus::new();
        let store = Arc::new(EmbeddedStore::in_memory().expect("store"));
        let deps = RunDeps {
            launcher: Arc::new(FakeLauncher::default()),
            bus: Arc::new(bus),
            store: store.clone(),
            broker_url: "mqtt://fake:1".into(),
            owner: "test-coordinator".into(),
            allowed_targets: None,
            fallback_dir: None,
            outputs: Vec::new(),
        };
        let local = Arc::new(LocalEvents::new());
        let sink: Arc<dyn EventSink> = Arc::new(Fanout(vec![local.clone(), aws.sink(format)]));
        let config = ManagerConfig {
            max_agents: 8,
            timeouts: Timeouts::default(),
        };
        let manager = Manager::start(config, deps, sink.clone());
        let cfg = SqsCommands {
            queue_url: aws.commands.clone(),
            wait_time: Duration::from_secs(1),
            visibility_timeout: VISIBILITY,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let intake = SqsIntake::new(&aws.sdk, &cfg);
        let intake = tokio::spawn(intake.run(manager.clone(), sink, async move {
            let _ = stopped.await;
        }));
        Self {
            manager,
            store,
            local,
            stop: Some(stop),
            intake: Some(intake),
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(intake) = self.intake.take() {
            tokio::time::timeout(Duration::from_secs(10), intake)
                .await
                .expect("the intake stops")
                .expect("the intake did not panic");
        }
    }
}

fn plan(agents: u32, vus: i64) -> Value {
    json!({"version": 1, "name": "t", "target": "http://127.0.0.1:1", "agents": agents,
           "load": {"stages": [{"duration": "30s", "vus": vus}]}, "scenario": [{"get": "/"}]})
}

fn start_run(id: &str, plan: Value) -> String {
    json!({"version": 1, "id": id, "type": "start_run", "plan": plan}).to_string()
}

async fn next_event(
    rx: &mut tokio::sync::broadcast::Receiver<EventMessage>,
    pick: impl Fn(&EventMessage) -> bool,
) -> EventMessage {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let e = rx.recv().await.expect("events");
            if pick(&e) {
                return e;
            }
        }
    })
    .await
    .expect("the event within 20 s")
}
