//! End-to-end: the real `herd up --config herd.toml` with every AWS boundary on at once. A start
//! command arrives on SQS (twice raw and once wrapped by SNS, all with one id), local agents run
//! it against a counting target, lifecycle events go out through SNS to a subscribed queue, and
//! the run, its seconds and its summary are then read back from DynamoDB: the seconds with the
//! SDK's own calls (not herd's store code), the summary through the store, and every count is
//! the target's. A malformed command gives `command.rejected` and the service carries on.
//!
//! moto stands in for SQS, SNS and DynamoDB; the broker is the embedded one and the agents are
//! local processes (the ECS launcher and the IoT bus have their own tests).

use aws_sdk_dynamodb::types::AttributeValue;
use herd_coordinator::aws::dynamo::DynamoStore;
use herd_coordinator::store::Store;
use herd_e2e::aws::{create_queue, queue_arn, receive_events, topic_into, Delivered, Moto};
use herd_e2e::service::{metric, Service};
use herd_e2e::CountingTarget;
use herd_protocol::RunId;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const PREFIX: &str = "e2e-";

async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let url = create_queue(sqs, name, None).await;
    let arn = queue_arn(sqs, &url).await;
    (url, arn)
}

fn number(item: &HashMap<String, AttributeValue>, key: &str) -> u64 {
    match item.get(key) {
        Some(AttributeValue::N(n)) => n.parse().expect("a count"),
        other => panic!("{key}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herd_up_on_sqs_sns_and_dynamodb_runs_a_command_and_stores_exact_counts() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let (commands, commands_arn) = queue(&sqs, "commands").await;
    let commands_topic = topic_into(&sns, "commands-in", &commands_arn, false).await;
    let (events, events_arn) = queue(&sqs, "events").await;
    let events_topic = topic_into(&sns, "events", &events_arn, true).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("herd.toml");
    std::fs::write(
        &config,
        format!(
            "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\
             [commands]\nsqs_queue_url = \"{commands}\"\nwait_time_s = 1\n\
             [events]\nsns_topic_arn = \"{events_topic}\"\n\
             [store]\nkind = \"dynamodb\"\ntable_prefix = \"{PREFIX}\"\n",
            moto.endpoint()
        ),
    )
    .expect("write herd.toml");
    let service = tokio::task::spawn_blocking({
        let data = dir.path().join("data");
        let config = config.clone();
        let env = moto.env();
        move || {
            let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.clone())).collect();
            Service::start_with_env(
                &data,
                &["--config", config.to_str().expect("utf-8 path")],
                &env,
            )
        }
    })
    .await
    .expect("herd up starts");

    let target = CountingTarget::start();
    let start = json!({
        "version": 1, "id": "aws-e2e-1", "type": "start_run",
        "plan": {
            "version": 1, "name": "all-aws", "target": target.url(), "agents": 2,
            "load": {"stages": [{"duration": "3s", "vus": 4}]},
            "scenario": [{"get": "/ok"}, {"think": "20ms"}],
        },
    })
    .to_string();
    sqs.send_message()
        .queue_url(&commands)
        .message_body("{\"version\": 1, \"type\": \"start_run\"")
        .send()
        .await
        .expect("send garbage");
    for _ in 0..2 {
        sqs.send_message()
            .queue_url(&commands)
            .message_body(&start)
            .send()
            .await
            .expect("send");
    }
    sns.publish()
        .topic_arn(&commands_topic)
        .message(&start)
        .send()
        .await
        .expect("publish");

    let mut got: Vec<Delivered> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !got.iter().any(|d| d.body["type"] == "run.completed") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events so far: {:?}",
            got.iter()
                .map(|d| d.body["type"].clone())
                .collect::<Vec<_>>()
        );
        got.extend(receive_events(&sqs, &events).await);
    }
    // Late deliveries of the same id would show up as a second run.created: give them time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    got.extend(receive_events(&sqs, &events).await);

    let rejected: Vec<&Value> = got
        .iter()
        .map(|d| &d.body)
        .filter(|e| e["type"] == "command.rejected")
        .collect();
    assert!(!rejected.is_empty(), "the malformed body is rejected");
    let created: Vec<&Value> = got
        .iter()
        .map(|d| &d.body)
        .filter(|e| e["type"] == "run.created")
        .collect();
    assert_eq!(created.len(), 1, "three deliveries of one id are one run");
    let run = created[0]["run"].as_str().expect("run id").to_string();
    let story: Vec<&str> = got
        .iter()
        .filter(|d| d.body["run"] == run.as_str())
        .map(|d| d.body["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        story
            .iter()
            .filter(|k| **k != "run.progress")
            .copied()
            .collect::<Vec<_>>(),
        ["run.created", "run.started", "run.completed"],
        "{story:?}"
    );
    for Delivered {
        body: event,
        attributes,
    } in got.iter().filter(|d| d.body["run"] == run.as_str())
    {
        assert_eq!(
            attributes.get("event").map(String::as_str),
            event["type"].as_str()
        );
        assert_eq!(attributes.get("run"), Some(&run));
        assert_eq!(
            attributes.get("test").map(String::as_str),
            event["test"].as_str()
        );
    }
    let completed = &got
        .iter()
        .find(|d| d.body["type"] == "run.completed")
        .expect("completed")
        .body;
    assert_eq!(completed["command_id"], "aws-e2e-1");
    let received = target.received();
    let requests = completed["summary"]["requests"].as_u64().expect("requests");
    assert!(requests > 20, "{completed}");
    assert_eq!(
        requests, received.total,
        "the event's count is the target's"
    );

    // DynamoDB, read with the SDK's own calls: the run's item and its seconds.
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let item = dynamo
        .get_item()
        .table_name(format!("{PREFIX}runs"))
        .key("id", AttributeValue::S(run.clone()))
        .consistent_read(true)
        .send()
        .await
        .expect("get run")
        .item
        .expect("the run is stored");
    assert_eq!(
        item.get("state"),
        Some(&AttributeValue::S("completed".into())),
        "{item:?}"
    );
    let mut seconds = Vec::new();
    let mut next = None;
    loop {
        let page = dynamo
            .query()
            .table_name(format!("{PREFIX}results"))
            .key_condition_expression("#run = :run AND begins_with(#item, :second)")
            .expression_attribute_names("#run", "run")
            .expression_attribute_names("#item", "item")
            .expression_attribute_values(":run", AttributeValue::S(run.clone()))
            .expression_attribute_values(":second", AttributeValue::S("second#".into()))
            .set_exclusive_start_key(next)
            .send()
            .await
            .expect("query seconds");
        seconds.extend(page.items.unwrap_or_default());
        next = page.last_evaluated_key;
        if next.is_none() {
            break;
        }
    }
    // Split values have part items beside their head; the heads carry `t`.
    let heads: Vec<_> = seconds.iter().filter(|i| i.contains_key("t")).collect();
    assert!(
        heads.len() >= 3,
        "a 3 s run stores its seconds: {}",
        heads.len()
    );
    let stored: u64 = heads.iter().map(|i| number(i, "requests")).sum();
    assert_eq!(
        stored, received.total,
        "the stored seconds add up to the target's count"
    );
    let ok: u64 = heads
        .iter()
        .map(|i| match i.get("status_codes") {
            Some(AttributeValue::M(codes)) => match codes.get("200") {
                Some(AttributeValue::N(n)) => n.parse::<u64>().expect("count"),
                _ => 0,
            },
            _ => 0,
        })
        .sum();
    assert_eq!(ok, received.by_status[&200]);

    // The summary, through the store (it is deflated JSON): the same object the event carried.
    let store = DynamoStore::connect(&sdk, PREFIX, false)
        .await
        .expect("the tables exist");
    let summary = store
        .get_summary(&RunId::new(&run).expect("run id"))
        .await
        .expect("read")
        .expect("a stored summary");
    assert_eq!(
        serde_json::to_value(&summary).expect("json"),
        completed["summary"]
    );
    let listed = store
        .list_seconds(&RunId::new(&run).expect("run id"))
        .await
        .expect("seconds");
    assert_eq!(
        listed.iter().map(|s| s.requests).sum::<u64>(),
        received.total
    );

    // The service is still up, and its /metrics counted what went to SNS.
    let events_received = got.len() as f64;
    let page = tokio::task::spawn_blocking(move || {
        let token = service.token("viewer");
        let page = service.metrics(&token);
        drop(service);
        page
    })
    .await
    .expect("metrics");
    let published = metric(&page, "herd_sns_events_total{outcome=\"published\"}");
    assert!(
        published >= events_received,
        "{published} published, {events_received} received"
    );
    assert_eq!(
        metric(&page, "herd_sns_events_total{outcome=\"failed\"}"),
        0.0
    );
}
