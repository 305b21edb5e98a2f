//! End-to-end: commands from SQS (raw, and through an SNS topic) start runs of real agent
//! processes against a counting target; lifecycle events come back through SNS to a subscribed
//! queue, in order, with their attributes, and the final events carry the exact counts.
//!
//! The service is assembled in process from the coordinator's library (the local runtime with
//! real `herd agent` processes, the manager, `SqsIntake`, `SnsEvents`), as `herd up --config`
//! assembles it; moto stands in for SQS and SNS.

use herd::local::{LocalConfig, LocalRuntime};
use herd_coordinator::aws::sns::SnsEvents;
use herd_coordinator::aws::sqs::SqsIntake;
use herd_coordinator::config::{EventFormat, SnsSettings as SnsConfig, SqsCommands};
use herd_coordinator::events::{EventSink, Fanout, LocalEvents};
use herd_coordinator::manager::{Manager, ManagerConfig};
use herd_coordinator::run::Timeouts;
use herd_e2e::aws::{create_queue, queue_arn, receive_events, topic_into, Delivered, Moto};
use herd_e2e::{herd_bin, CountingTarget};
use herd_protocol::RunId;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

fn plan(name: &str, target: &str, agents: u32, path: &str) -> Value {
    json!({
        "version": 1, "name": name, "target": target, "agents": agents,
        "load": {"stages": [{"duration": "2s", "vus": agents * 2}]},
        "scenario": [{"get": path}, {"think": "20ms"}],
    })
}

#[actix::test]
async fn sqs_commands_run_real_agents_and_sns_reports_each_run_in_order_with_exact_counts() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let dlq = create_queue(&sqs, "commands-dlq", None).await;
    let redrive =
        json!({"deadLetterTargetArn": queue_arn(&sqs, &dlq).await, "maxReceiveCount": "2"});
    let commands = create_queue(&sqs, "commands", Some(redrive.to_string())).await;
    let commands_topic = topic_into(
        &sns,
        "commands-in",
        &queue_arn(&sqs, &commands).await,
        false,
    )
    .await;
    let events = create_queue(&sqs, "events", None).await;
    let events_topic = topic_into(&sns, "events", &queue_arn(&sqs, &events).await, true).await;

    let data = tempfile::tempdir().expect("tempdir");
    let runtime = LocalRuntime::start(LocalConfig {
        data_dir: data.path().to_path_buf(),
        agent_program: herd_bin(),
        allowed_targets: None,
        outputs: Vec::new(),
        broker_log: herd_coordinator::broker::LogWindow::DEFAULT,
    })
    .await
    .expect("local runtime");
    let store = runtime.deps().store.clone();
    let sns_sink = Arc::new(SnsEvents::new(
        &sdk,
        &SnsConfig {
            topic_arn: events_topic,
            format: EventFormat::Json,
            progress_interval: Some(Duration::from_secs(1)),
        },
    ));
    let sink: Arc<dyn EventSink> =
        Arc::new(Fanout(vec![Arc::new(LocalEvents::new()), sns_sink.clone()]));
    let manager = Manager::start(
        ManagerConfig {
            max_agents: 8,
            timeouts: Timeouts::default(),
        },
        runtime.deps(),
        sink.clone(),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let intake = SqsIntake::new(
        &sdk,
        &SqsCommands {
            queue_url: commands.clone(),
            wait_time: Duration::from_secs(1),
            visibility_timeout: Duration::from_secs(5),
        },
    );
    let intake = actix::spawn(intake.run(manager.clone(), sink, async move {
        let _ = stopped.await;
    }));

    let target = CountingTarget::start();
    let raw = json!({"version": 1, "id": "e2e-raw", "type": "start_run",
                     "plan": plan("raw", &target.url(), 1, "/ok")})
    .to_string();
    let wrapped = json!({"version": 1, "id": "e2e-sns", "type": "start_run",
                         "plan": plan("wrapped", &target.url(), 2, "/mix")})
    .to_string();
    // At-least-once delivery: the raw command arrives three times, twice of them through SNS.
    for body in [&raw, &raw] {
        sqs.send_message()
            .queue_url(&commands)
            .message_body(body.as_str())
            .send()
            .await
            .expect("send");
    }
    for body in [&wrapped, &raw] {
        sns.publish()
            .topic_arn(&commands_topic)
            .message(body.as_str())
            .send()
            .await
            .expect("publish");
    }

    // Read events until both runs reported their end.
    let mut got: Vec<Delivered> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while got
        .iter()
        .filter(|d| d.body["type"] == "run.completed")
        .count()
        < 2
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events so far: {:?}",
            got.iter()
                .map(|d| d.body["type"].clone())
                .collect::<Vec<_>>()
        );
        got.extend(receive_events(&sqs, &events).await);
    }

    let received = target.received();
    let mut reported = 0;
    for (command, path) in [("e2e-raw", "GET /ok"), ("e2e-sns", "GET /mix")] {
        let created = got
            .iter()
            .find(|d| d.body["type"] == "run.created" && d.body["command_id"] == command)
            .expect("a run.created per command");
        let run = created.body["run"].as_str().expect("run id").to_string();
        let story: Vec<&Delivered> = got
            .iter()
            .filter(|d| d.body["run"] == run.as_str())
            .collect();
        let kinds: Vec<&str> = story
            .iter()
            .map(|d| d.body["type"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(kinds.first(), Some(&"run.created"), "{kinds:?}");
        assert_eq!(kinds.get(1), Some(&"run.started"), "{kinds:?}");
        assert_eq!(kinds.last(), Some(&"run.completed"), "{kinds:?}");
        assert!(
            kinds[2..kinds.len() - 1]
                .iter()
                .all(|k| *k == "run.progress"),
            "only progress between start and end: {kinds:?}"
        );
        assert!(
            kinds.contains(&"run.progress"),
            "progress is published: {kinds:?}"
        );
        for d in &story {
            assert_eq!(
                d.attributes.get("event"),
                d.body["type"].as_str().map(String::from).as_ref()
            );
            assert_eq!(d.attributes.get("run"), Some(&run));
        }
        let completed = story.last().expect("the end");
        assert_eq!(completed.body["command_id"], command);
        assert_eq!(
            story[1].body["command_id"], command,
            "run.started names its command"
        );
        let summary = &completed.body["summary"];
        let requests = summary["requests"].as_u64().expect("requests");
        assert!(requests > 0, "{summary}");
        reported += requests;
        assert_eq!(
            requests,
            received.by_route.get(path).copied().unwrap_or(0),
            "herd's count for {path} is the target's"
        );
        let stored = store
            .get_summary(&RunId::new(&run).expect("run id"))
            .await
            .expect("store")
            .expect("a stored summary");
        assert_eq!(
            summary,
            &serde_json::to_value(&stored).expect("json"),
            "the event carries the summary `herd run --json` writes"
        );
    }
    let runs = got
        .iter()
        .filter(|d| d.body["type"] == "run.created")
        .count();
    assert_eq!(runs, 2, "three deliveries of one command id gave one run");
    assert_eq!(manager.view().commands_repeated, 2);
    assert_eq!(
        received.total, reported,
        "nothing but the two runs reached the target"
    );

    let _ = stop.send(());
    intake.await.expect("the intake stops");
    assert!(sns_sink.flush(Duration::from_secs(10)).await);
}
