//! End-to-end: what the console shows of a run after it ended, and what other dashboards read
//! while it runs — from a real `herd up` run on two agents:
//! - each live message on the MQTT topic `herd/runs/{run}/live` validates against the published
//!   schema (`herd schema live`, checked in as `docs/live.schema.json`) and carries p90, p99.9,
//!   VUs, status codes and the agents' health;
//! - the stored seconds carry the same figures, so the result page draws what the live page drew;
//! - the single-file HTML report (`GET /api/v1/runs/{id}/report.html` and `herd report --html`)
//!   holds the run's summary, equal to `GET /api/v1/runs/{id}`;
//! - the schedule preview computes the scheduler's next fires and names a bad field.

use super::console::get;
use herd_e2e::json_schema::validate;
use herd_e2e::service::{plan, Service};
use herd_e2e::{herd_bin, CountingTarget};
use rumqttc::{Client, Event, Packet, QoS};
use serde_json::{json, Value};
use std::sync::mpsc;
use std::time::Duration;

/// The JSON in the report's data element.
fn report_data(html: &str) -> Value {
    let start = html
        .find(r#"<script type="application/json" id="herd-report-data">"#)
        .expect("the report's data element");
    let rest = &html[start..];
    let open = rest.find('>').expect("tag end") + 1;
    let close = rest.find("</script>").expect("element end");
    serde_json::from_str(&rest[open..close]).expect("the report's data is JSON")
}

fn without_clock(html: &str) -> String {
    let at = html.find("\"written_at_ms\":").expect("written_at_ms");
    let end = at + html[at..].find([',', '}']).expect("value end");
    format!("{}{}", &html[..at], &html[end..])
}

#[test]
fn live_messages_match_their_schema_stored_seconds_keep_them_and_the_report_is_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = CountingTarget::start();
    let s = Service::start(dir.path(), &[]);
    let op = s.token("operator");

    // A dashboard of its own, on the broker, with the commander's credential.
    let login = crate::broker_acl::BrokerLogin::commander(&s);
    let options = login.options("e2e-dashboard", &login.username, &login.password);
    let (client, mut connection) = Client::new(options, 64);
    client
        .subscribe("herd/runs/+/live", QoS::AtLeastOnce)
        .expect("subscribe");
    let (tx, rx) = mpsc::channel::<Value>();
    let (subscribed_tx, subscribed) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = subscribed_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Ok(v) = serde_json::from_slice(&p.payload) {
                        let _ = tx.send(v);
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    subscribed
        .recv_timeout(Duration::from_secs(10))
        .expect("subscribed to the live topic");

    let test = json!({"id": "live", "name": "live", "plan": plan("live", &target.url(), 2, 4, 4, &["p99 < 5s"])});
    assert_eq!(
        s.request("POST", "/api/v1/tests", Some(&op), Some(&test)).0,
        201
    );
    let (status, summary) = s.request("POST", "/api/v1/tests/live/runs?wait=true", Some(&op), None);
    assert_eq!(status, 200, "{summary}");
    let run = summary["run_id"].as_str().expect("run id").to_string();

    let out = std::process::Command::new(herd_bin())
        .args(["schema", "live"])
        .output()
        .expect("herd schema live");
    assert!(out.status.success());
    let schema: Value = serde_json::from_slice(&out.stdout).expect("the schema is JSON");
    let checked_in: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/live.schema.json"),
        )
        .expect("docs/live.schema.json"),
    )
    .expect("JSON");
    assert_eq!(
        schema, checked_in,
        "docs/live.schema.json is what herd prints"
    );

    let live: Vec<Value> = rx.try_iter().filter(|m| m["run"] == run.as_str()).collect();
    assert!(live.len() >= 3, "live messages: {live:?}");
    for m in &live {
        assert_eq!(validate(&schema, m), Vec::<String>::new(), "{m}");
        let second = &m["second"];
        for key in ["p90_ms", "p999_ms", "vus", "health"] {
            assert!(second.get(key).is_some(), "live second without {key}: {m}");
        }
        let codes: u64 = second["status_codes"]
            .as_object()
            .map_or(0, |c| c.values().filter_map(Value::as_u64).sum());
        assert_eq!(codes, second["requests"].as_u64().expect("requests"), "{m}");
    }
    // Not everything passes: the checker would catch a broken message.
    let mut broken = live[0].clone();
    broken["second"]["vus"] = json!("four");
    assert!(!validate(&schema, &broken).is_empty());

    // The stored seconds are the live ones (a second a late frame changed after it went live
    // differs in its counts, and is left out of the comparison).
    let (_, stored) = s.request(
        "GET",
        &format!("/api/v1/runs/{run}/seconds"),
        Some(&op),
        None,
    );
    let stored = stored["seconds"].as_array().cloned().unwrap_or_default();
    let mut compared = 0;
    for m in &live {
        let t = &m["second"]["t"];
        let kept = stored
            .iter()
            .find(|s| &s["t"] == t)
            .expect("every live second is stored");
        if kept["requests"] == m["second"]["requests"]
            && kept["agents_reported"] == m["second"]["agents_reported"]
        {
            assert_eq!(kept, &m["second"], "stored and live second {t}");
            compared += 1;
        }
    }
    assert!(compared >= 2, "compared {compared} seconds");

    // The HTML report: the API's and `herd report`'s, of the same run.
    let (status, head, body) = get(
        &s,
        &format!("/api/v1/runs/{run}/report.html"),
        &format!("Authorization: Bearer {op}\r\n"),
    );
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("content-type: text/html;charset=utf-8"),
        "{head}"
    );
    let html = String::from_utf8(body).expect("utf-8");
    let data = report_data(&html);
    let (_, full) = s.request("GET", &format!("/api/v1/runs/{run}"), Some(&op), None);
    assert_eq!(
        data["summary"], full["summary"],
        "the report's summary is the API's"
    );
    assert_eq!(data["seconds"].as_array().map(Vec::len), Some(stored.len()));
    assert_eq!(
        data["summary"]["requests"].as_u64(),
        Some(target.received().total),
        "the target's count"
    );
    let file = dir.path().join("report.html");
    let cli = std::process::Command::new(herd_bin())
        .args(["report", &run, "--html"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("herd report");
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let written = std::fs::read_to_string(&file).expect("the report file");
    assert_eq!(without_clock(&written), without_clock(&html));
    let missing = std::process::Command::new(herd_bin())
        .args(["report", "no-such-run", "--html", "-", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("herd report");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no run no-such-run"));
    let (status, _, _) = get(
        &s,
        "/api/v1/runs/no-such-run/report.html",
        &format!("Authorization: Bearer {op}\r\n"),
    );
    assert_eq!(status, 404);
}

#[test]
fn the_schedule_preview_is_the_scheduler_s_next_fires_and_names_a_bad_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Service::start(dir.path(), &[]);
    let op = s.token("operator");
    let viewer = s.token("viewer");
    let from_ms = 1_774_569_600_000u64; // Friday 2026-03-27 00:00 UTC; Paris goes to summer time on the 29th
    let body = json!({"schedule": {"kind": "cron", "expr": "0 9 * * *", "tz": "Europe/Paris"}, "from_ms": from_ms});
    let (status, answer) = s.request("POST", "/api/v1/schedules/preview", Some(&op), Some(&body));
    assert_eq!(status, 200, "{answer}");
    let h = 3_600_000u64;
    let day = 24 * h;
    let first = from_ms + 8 * h;
    assert_eq!(
        answer["next_fires_ms"],
        json!([
            first,
            first + day,
            first + 2 * day - h,
            first + 3 * day - h,
            first + 4 * day - h
        ])
    );
    let bad = json!({"schedule": {"kind": "cron", "expr": "0 9 * * *", "tz": "Mars/Olympus"}});
    let (status, answer) = s.request("POST", "/api/v1/schedules/preview", Some(&op), Some(&bad));
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("schedule.tz")),
        "{answer}"
    );
    let (status, answer) = s.request(
        "POST",
        "/api/v1/schedules/preview",
        Some(&op),
        Some(&json!({"schedule": body["schedule"], "count": 0})),
    );
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("count")),
        "{answer}"
    );
    // Nothing is stored; a viewer cannot use the write route.
    let (_, tests) = s.request("GET", "/api/v1/tests", Some(&op), None);
    assert_eq!(tests["tests"], json!([]));
    assert_eq!(
        s.request(
            "POST",
            "/api/v1/schedules/preview",
            Some(&viewer),
            Some(&body)
        )
        .0,
        403
    );
}
