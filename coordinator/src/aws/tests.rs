//! The SQS intake and the SNS sink against moto (a real SQS/SNS emulator on loopback), with a
//! manager on fake agents: commands in raw and through an SNS topic, repeats, rejections that end
//! in the DLQ by the queue's own redrive policy, chat text, and events out through SNS to queues
//! subscribed with and without raw delivery.

use super::sns::SnsEvents;
use super::sqs::SqsIntake;
use crate::config::{EventFormat, SnsEvents as SnsConfig, SqsCommands};
use crate::events::{EventSink, Fanout, LocalEvents};
use crate::fakes::{FakeBus, FakeLauncher};
use crate::manager::{Manager, ManagerConfig};
use crate::run::{RunDeps, Timeouts};
use crate::store::{EmbeddedStore, Store};
use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use herd_e2e::aws::Moto;
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
        let dlq = queue(&sqs, "herd-commands-dlq", None).await;
        let redrive = json!({"deadLetterTargetArn": arn(&sqs, &dlq).await, "maxReceiveCount": "2"});
        let commands = queue(&sqs, "herd-commands", Some(redrive.to_string())).await;
        let commands_topic = topic(&sns, "herd-commands-in").await;
        subscribe(&sns, &commands_topic, &arn(&sqs, &commands).await, false).await;
        let events_topic = topic(&sns, "herd-events").await;
        let events = queue(&sqs, "herd-events", None).await;
        let events_raw = queue(&sqs, "herd-events-raw", None).await;
        subscribe(&sns, &events_topic, &arn(&sqs, &events).await, false).await;
        subscribe(&sns, &events_topic, &arn(&sqs, &events_raw).await, true).await;
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
        let cfg = SnsConfig {
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

async fn queue(sqs: &aws_sdk_sqs::Client, name: &str, redrive: Option<String>) -> String {
    let mut request = sqs.create_queue().queue_name(name);
    if let Some(redrive) = redrive {
        request = request.attributes(QueueAttributeName::RedrivePolicy, redrive);
    }
    request
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url")
}

async fn arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("queue arn")
}

async fn topic(sns: &aws_sdk_sns::Client, name: &str) -> String {
    sns.create_topic()
        .name(name)
        .send()
        .await
        .expect("create topic")
        .topic_arn
        .expect("topic arn")
}

async fn subscribe(sns: &aws_sdk_sns::Client, topic: &str, queue_arn: &str, raw: bool) {
    sns.subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", raw.to_string())
        .send()
        .await
        .expect("subscribe");
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

#[actix::test]
async fn raw_and_sns_wrapped_commands_each_start_a_run_announced_through_sns_with_attributes() {
    let aws = Aws::start().await;
    let service = Service::start(&aws, EventFormat::Json);
    aws.send(&start_run("c-raw", plan(1, 1))).await;
    aws.publish(&start_run("c-sns", plan(2, 2))).await;

    for queue in [&aws.events, &aws.events_raw] {
        let created = collect(&aws, queue, Duration::from_secs(20), |got| {
            got.iter().filter(|d| d.kind() == "run.created").count() == 2
        })
        .await;
        let mut by_command: HashMap<String, Delivered> = HashMap::new();
        for d in created.into_iter().filter(|d| d.kind() == "run.created") {
            by_command.insert(d.body["command_id"].as_str().unwrap_or("").into(), d);
        }
        for (command, agents) in [("c-raw", 1), ("c-sns", 2)] {
            let d = by_command.get(command).expect("a run.created per command");
            assert_eq!(d.body["agents"], agents, "{}", d.body);
            let run = d.body["run"].as_str().expect("run id");
            assert_eq!(
                d.attributes.get("event").map(String::as_str),
                Some("run.created")
            );
            assert_eq!(d.attributes.get("run").map(String::as_str), Some(run));
            assert!(
                !d.attributes.contains_key("test"),
                "an inline plan has no test"
            );
        }
    }
    assert_eq!(service.manager.view().active_runs, 2);
    aws.until_depth(&aws.commands, 0, Duration::from_secs(10))
        .await;
    service.stop().await;
}

#[actix::test]
async fn the_same_command_delivered_three_times_gives_one_run() {
    let aws = Aws::start().await;
    let service = Service::start(&aws, EventFormat::Json);
    let body = start_run("once", plan(1, 1));
    aws.send(&body).await;
    aws.send(&body).await;
    aws.publish(&body).await;
    aws.until_depth(&aws.commands, 0, Duration::from_secs(15))
        .await;
    let view = service.manager.view();
    assert_eq!((view.active_runs, view.commands_repeated), (1, 2));
    assert_eq!(service.store.list_runs(10).await.expect("runs").len(), 1);
    service.stop().await;
}

#[actix::test]
async fn malformed_and_invalid_commands_are_rejected_by_name_and_end_in_the_dlq() {
    let aws = Aws::start().await;
    let service = Service::start(&aws, EventFormat::Json);
    let mut events = service.local.subscribe();
    aws.send("{\"version\": 1, \"id\": \"broken\",").await;
    let mut bad = plan(1, 1);
    bad["load"]["stages"][0]["duration"] = "soon".into();
    aws.publish(&start_run("bad-plan", bad)).await;

    let problems = |got: &[Delivered]| -> Vec<String> {
        got.iter()
            .filter(|d| d.kind() == "command.rejected")
            .map(|d| {
                format!(
                    "{} {} {}",
                    d.body["command_id"], d.body["code"], d.body["message"]
                )
            })
            .collect()
    };
    let rejections = collect(&aws, &aws.events, Duration::from_secs(20), |got| {
        let p = problems(got);
        p.iter().any(|p| p.contains("broken") || p.contains("null"))
            && p.iter().any(|p| p.contains("bad-plan"))
    })
    .await;
    let problems = problems(&rejections);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("null") && p.contains("body: not valid JSON")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("bad-plan") && p.contains("plan.load.stages[0].duration")),
        "{problems:?}"
    );
    // Each is received twice (maxReceiveCount 2), then SQS moves it to the DLQ.
    aws.until_depth(&aws.dlq, 2, Duration::from_secs(30)).await;
    aws.until_depth(&aws.commands, 0, Duration::from_secs(5))
        .await;

    aws.send(&start_run("good", plan(1, 1))).await;
    let created = next_event(&mut events, |e| matches!(e.event, Event::RunCreated { .. })).await;
    assert_eq!(created.command_id.as_deref(), Some("good"));
    service.stop().await;
}

#[actix::test]
async fn chat_text_maps_onto_the_same_commands() {
    let aws = Aws::start().await;
    let service = Service::start(&aws, EventFormat::Json);
    let mut events = service.local.subscribe();
    let create = json!({"version": 1, "id": "c-create", "type": "create_test",
                        "test_id": "checkout-smoke", "name": "checkout smoke", "plan": plan(1, 1)});
    aws.send(&create.to_string()).await;
    aws.until_depth(&aws.commands, 0, Duration::from_secs(10))
        .await;

    aws.publish("run checkout-smoke agents=4").await;
    let created = next_event(&mut events, |e| matches!(e.event, Event::RunCreated { .. })).await;
    let Event::RunCreated { run, test, agents } = created.event else {
        unreachable!("picked a run.created")
    };
    assert_eq!((test.as_deref(), agents), (Some("checkout-smoke"), 4));
    assert!(
        created
            .command_id
            .as_deref()
            .is_some_and(|id| id.starts_with("chat-")),
        "{:?}",
        created.command_id
    );

    aws.send("status").await;
    let listing = next_event(&mut events, |e| matches!(e.event, Event::ActiveRuns { .. })).await;
    let Event::ActiveRuns { runs } = listing.event else {
        unreachable!("picked a runs.active")
    };
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].run.as_str(), runs[0].agents), (run.as_str(), 4));

    aws.publish("run checkout-smoke").await;
    let refused = next_event(&mut events, |e| {
        matches!(e.event, Event::CommandRejected { .. })
    })
    .await;
    let Event::CommandRejected { code, message } = refused.event else {
        unreachable!("picked a command.rejected")
    };
    assert_eq!(code, "conflict", "one run per test: {message}");

    aws.send(&format!("herd stop {run} enough")).await;
    let cancelled = next_event(&mut events, |e| {
        matches!(e.event, Event::RunCancelled { .. })
    })
    .await;
    assert_eq!(cancelled.event.run(), Some(run.as_str()));
    // The conflict was answered by its event: deleted, not left for the DLQ.
    aws.until_depth(&aws.commands, 0, Duration::from_secs(10))
        .await;
    assert_eq!(aws.depth(&aws.dlq).await, 0);
    service.stop().await;
}

#[actix::test]
async fn a_command_in_progress_keeps_its_message_invisible_past_the_timeout() {
    let aws = Aws::start().await;
    aws.send("slow").await;
    let first = aws
        .sqs
        .receive_message()
        .queue_url(&aws.commands)
        .visibility_timeout(VISIBILITY.as_secs() as i32)
        .wait_time_seconds(5)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default();
    let receipt = first
        .first()
        .and_then(|m| m.receipt_handle())
        .expect("the message")
        .to_string();
    let intake = SqsIntake::new(
        &aws.sdk,
        &SqsCommands {
            queue_url: aws.commands.clone(),
            wait_time: Duration::from_secs(1),
            visibility_timeout: VISIBILITY,
        },
    );
    // Work that lasts 2.5 visibility timeouts; another consumer polls the queue meanwhile.
    let work = tokio::time::sleep(VISIBILITY * 5 / 2);
    let other = async {
        let mut seen = 0;
        let deadline = tokio::time::Instant::now() + VISIBILITY * 2;
        while tokio::time::Instant::now() < deadline {
            let out = aws
                .sqs
                .receive_message()
                .queue_url(&aws.commands)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            seen += out.messages.unwrap_or_default().len();
        }
        seen
    };
    let ((), seen) = tokio::join!(intake.holding(&receipt, work), other);
    assert_eq!(
        seen, 0,
        "the message was handed to another consumer mid-command"
    );
    aws.sqs
        .delete_message()
        .queue_url(&aws.commands)
        .receipt_handle(&receipt)
        .send()
        .await
        .expect("the receipt is still valid");
    assert_eq!(aws.depth(&aws.commands).await, 0);
}

#[actix::test]
async fn events_reach_subscribers_in_order_and_as_chatbot_notifications() {
    let aws = Aws::start().await;
    let sink = aws.sink(EventFormat::Json);
    for i in 0..25 {
        let event = Event::AgentLost {
            run: "run-ordered".into(),
            agent: format!("agent-{i}"),
        };
        sink.emit(crate::events::message(event, None, 1000 + i));
    }
    assert!(
        sink.flush(Duration::from_secs(20)).await,
        "published in time"
    );
    let got = collect(&aws, &aws.events_raw, Duration::from_secs(20), |got| {
        got.len() == 25
    })
    .await;
    let agents: Vec<String> = got
        .iter()
        .map(|d| d.body["agent"].as_str().unwrap_or("").into())
        .collect();
    let expected: Vec<String> = (0..25).map(|i| format!("agent-{i}")).collect();
    assert_eq!(agents, expected);

    let chatbot = aws.sink(EventFormat::Chatbot);
    let event = Event::CommandRejected {
        code: "invalid".into(),
        message: "plan.agents: must be >= 1".into(),
    };
    chatbot.emit(crate::events::message(event, Some("c-7".into()), 1));
    assert!(chatbot.flush(Duration::from_secs(20)).await);
    let got = collect(&aws, &aws.events, Duration::from_secs(20), |got| {
        got.len() >= 26
    })
    .await;
    let last = got.last().expect("the chatbot notification");
    assert_eq!(last.body["version"], "1.0");
    assert_eq!(last.body["source"], "custom");
    assert_eq!(
        last.body["content"]["description"],
        "plan.agents: must be >= 1"
    );
    assert_eq!(
        last.attributes.get("event").map(String::as_str),
        Some("command.rejected")
    );
    assert_eq!(
        sink.stats()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[actix::test]
async fn a_full_queue_drops_events_and_counts_them() {
    let aws = Aws::start().await;
    let cfg = SnsConfig {
        topic_arn: aws.events_topic.clone(),
        format: EventFormat::Json,
        progress_interval: None,
    };
    let sink = SnsEvents::with_queue(&aws.sdk, &cfg, 4);
    // The actix test runtime has one thread: the publisher cannot run while this loop does.
    for i in 0..10 {
        let event = Event::AgentLost {
            run: "run-full".into(),
            agent: format!("agent-{i}"),
        };
        sink.emit(crate::events::message(event, None, i));
    }
    assert!(sink.flush(Duration::from_secs(20)).await);
    let stats = sink.stats();
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!((count(&stats.published), count(&stats.dropped)), (4, 6));
}
