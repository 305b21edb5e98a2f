//! End-to-end: the broker's `herd/commands` topic is a command source like the HTTP API.

use crate::broker_acl::BrokerLogin;
use herd_e2e::service::{plan, Service};
use herd_e2e::CountingTarget;
use rumqttc::QoS;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn a_start_run_published_on_the_command_topic_runs_with_exact_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = CountingTarget::start();
    let s = Service::start(dir.path(), &[]);
    let op = s.token("operator");
    let test = json!({"id": "mq", "name": "mq", "plan": plan("mq", &target.url(), 2, 2, 2, &[])});
    assert_eq!(
        s.request("POST", "/api/v1/tests", Some(&op), Some(&test)).0,
        201
    );

    // The embedded broker admits the commander's credential, and the coordinator takes the
    // commands it signs.
    let login = BrokerLogin::commander(&s);
    let (client, mut connection) = login.connect("e2e-publisher");
    std::thread::spawn(move || for _ in connection.iter() {});
    let start = json!({"version": 1, "id": "mqtt-start-1", "type": "start_run", "test_id": "mq"});
    // Garbage first (refused as an event, the intake lives on), then the same command twice
    // (at-least-once delivery: the repeat does nothing).
    for payload in [
        b"not json".to_vec(),
        start.to_string().into_bytes(),
        start.to_string().into_bytes(),
    ] {
        client
            .publish(
                "herd/commands",
                QoS::AtLeastOnce,
                false,
                login.sign("herd/commands", &payload),
            )
            .expect("publish");
    }

    let deadline = Instant::now() + Duration::from_secs(40);
    let run = loop {
        let (_, runs) = s.request("GET", "/api/v1/tests/mq/runs", Some(&op), None);
        let list = runs["runs"].as_array().cloned().unwrap_or_default();
        let done = list.iter().find(|r| r["state"] == "completed").cloned();
        if let Some(run) = done {
            assert_eq!(list.len(), 1, "one run for one command id: {runs}");
            break run;
        }
        assert!(Instant::now() < deadline, "no completed run: {runs}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let id = run["id"]
        .as_str()
        .or(run["run_id"].as_str())
        .expect("run id")
        .to_string();
    let (status, full) = s.request("GET", &format!("/api/v1/runs/{id}"), Some(&op), None);
    assert_eq!(status, 200, "{full}");
    let requests = full["summary"]["requests"].as_u64().expect("requests");
    assert!(requests > 0);
    assert_eq!(
        requests,
        target.received().total,
        "herd's count is the target's"
    );
    let _ = client.disconnect();
}
