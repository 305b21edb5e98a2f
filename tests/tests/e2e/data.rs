//! End-to-end: test data as issue 17 asks for it — a JSON feeder whose `unique` rows each reach
//! the target exactly once across 4 agents, and a `unique` feeder that ends the whole run when
//! one agent runs out — run by `herd run` with real agent processes against a target that counts
//! every row value it receives.

use herd_coordinator::launcher::local::LocalLauncher;
use herd_coordinator::manager::new_run_id;
use herd_coordinator::mqtt::{BrokerEndpoint, MqttLink};
use herd_coordinator::run::{self, RunDeps, RunSpec, Timeouts};
use herd_coordinator::store::embedded::EmbeddedStore;
use herd_e2e::aws::Mosquitto;
use herd_e2e::scenario::ScenarioTarget;
use herd_e2e::{herd_bin, run_plan, write_file};
use herd_protocol::summary::RunState;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a count, got {v}"))
}

/// A JSON feeder file of `n` rows `{"id": "row-K", "extra": {...}}` (nested values are fine).
fn json_rows(n: usize) -> String {
    let rows: Vec<Value> = (0..n)
        .map(|k| serde_json::json!({"id": format!("row-{k}"), "extra": {"k": k}}))
        .collect();
    Value::Array(rows).to_string()
}

#[test]
fn unique_feeder_rows_each_reach_the_target_exactly_once_across_4_agents() {
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    write_file(dir.path(), "ids.json", &json_rows(203));
    // 8 VUs on 4 agents for up to 60 s: the rows run out long before, each VU stops when its
    // agent has none left (the default `on_exhausted: stop_vu`), and the run ends when every
    // agent's VUs have stopped.
    let plan = format!(
        r#"
version: 1
name: unique-rows
target: {}
agents: 4
load: {{ vus: 8, duration: 60s }}
feeders:
  ids: {{ file: ids.json, mode: unique }}
scenario:
  - name: row
    get: /row?v=${{id}}
    headers: {{ x-herd-agent: "${{__agent}}" }}
    checks: {{ status: 200 }}
  - think: 5ms
"#,
        target.url()
    );
    let began = Instant::now();
    let (out, s) = run_plan(dir.path(), &plan, Duration::from_secs(90));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        began.elapsed() < Duration::from_secs(40),
        "the run ends when the rows run out, not after 60 s: {:?}",
        began.elapsed()
    );
    let seen = target.seen();
    let expected: BTreeSet<String> = (0..203).map(|k| format!("row-{k}")).collect();
    assert_eq!(
        seen.rows.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "every row reached the target"
    );
    for (value, by) in &seen.rows {
        assert_eq!(by.values().sum::<u64>(), 1, "{value} was sent {by:?}");
        let k: u32 = value["row-".len()..].parse().expect("row number");
        assert_eq!(by.keys().next(), Some(&(k % 4).to_string()), "{value}");
    }
    assert_eq!(seen.total, 203);
    assert_eq!(u(&s["requests"]), seen.total);
    assert_eq!(u(&s["steps"]["row"]["requests"]), 203);
    assert_eq!(u(&s["errors"]), 0);
    assert_eq!(s["run_state"], "completed", "{s}");
}

#[test]
fn a_unique_feeder_with_end_run_ends_the_run_on_every_agent_and_says_why() {
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let rows: Vec<String> = (0..40).map(|k| format!("row-{k}")).collect();
    write_file(dir.path(), "ids.csv", &format!("id\n{}\n", rows.join("\n")));
    // 10 rows per agent; agent 0 goes through its rows quickly, the others think 3 s after each
    // row: agent 0 runs out first and its `end_run` stops the others in their pause.
    let plan = format!(
        r#"
version: 1
name: end-run
target: {}
agents: 4
load: {{ vus: 4, duration: 60s }}
feeders:
  ids: {{ file: ids.csv, mode: unique, on_exhausted: end_run }}
scenario:
  - name: row
    get: /row?v=${{id}}
    headers: {{ x-herd-agent: "${{__agent}}" }}
  - if: "${{__agent}} == 0"
    then: [{{ think: 10ms }}]
    else: [{{ think: 3s }}]
"#,
        target.url()
    );
    let began = Instant::now();
    let (out, s) = run_plan(dir.path(), &plan, Duration::from_secs(90));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "the run ended early: {:?}",
        began.elapsed()
    );
    let seen = target.seen();
    for (value, by) in &seen.rows {
        assert_eq!(by.values().sum::<u64>(), 1, "{value} was sent {by:?}");
    }
    let by_agent = |agent: &str| {
        seen.rows
            .values()
            .filter(|by| by.contains_key(agent))
            .count()
    };
    assert_eq!(
        by_agent("0"),
        10,
        "agent 0 used all its rows: {:?}",
        seen.rows
    );
    for agent in ["1", "2", "3"] {
        assert!(
            (1..10).contains(&by_agent(agent)),
            "agent {agent} was stopped before its rows ran out: {:?}",
            seen.rows
        );
    }
    assert_eq!(u(&s["requests"]), seen.total);
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("ended early by agent-0: feeder ids ran out of rows (mode: unique, on_exhausted: end_run)"),
        "{s}"
    );
    assert_eq!(s["run_state"], "completed", "{s}");
}

/// A CSV feeder of about `mib` MiB: `row-K` ids padded to ~110 bytes a row.
fn big_csv(dir: &std::path::Path, mib: usize) -> usize {
    let pad = "p".repeat(96);
    let mut text = String::from("id,pad\n");
    let mut rows = 0;
    while text.len() < mib << 20 {
        text.push_str(&format!("row-{rows},{pad}\n"));
        rows += 1;
    }
    write_file(dir, "big.csv", &text);
    rows
}

#[test]
fn a_20_mib_feeder_reaches_every_agent_in_chunks() {
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let rows = big_csv(dir.path(), 20);
    // `random` draws from each agent's whole share of the file: rows from its end reach the
    // target only if every chunk arrived.
    let plan = format!(
        r#"
version: 1
name: big-feeder
target: {}
agents: 2
load: {{ vus: 4, duration: 3s }}
feeders:
  ids: {{ file: big.csv, mode: random }}
scenario:
  - name: row
    get: /row?v=${{id}}
    headers: {{ x-herd-agent: "${{__agent}}" }}
  - think: 5ms
"#,
        target.url()
    );
    let began = Instant::now();
    let (out, s) = run_plan(dir.path(), &plan, Duration::from_secs(150));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("a 20 MiB feeder run took {:?}", began.elapsed());
    let seen = target.seen();
    assert_eq!(u(&s["requests"]), seen.total);
    assert!(seen.total > 100, "{}", seen.total);
    let mut last_quarter = BTreeSet::new();
    for (value, by) in &seen.rows {
        let k: usize = value["row-".len()..].parse().expect("row number");
        assert!(k < rows, "{value}");
        for agent in by.keys() {
            assert_eq!(agent, &(k % 2).to_string(), "{value} belongs to one agent");
            if k >= rows * 3 / 4 {
                last_quarter.insert(agent.clone());
            }
        }
    }
    assert_eq!(
        last_quarter,
        BTreeSet::from(["0".to_string(), "1".to_string()]),
        "both agents drew rows from the end of the file"
    );
}

/// The same through an external broker, Mosquitto: the run actor sends the chunks over its MQTT
/// session there, and local agent processes take them from there.
#[actix::test]
async fn a_20_mib_feeder_reaches_every_agent_through_mosquitto() {
    let mosquitto = Mosquitto::start();
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let rows = big_csv(dir.path(), 20);
    let text = std::fs::read_to_string(dir.path().join("big.csv")).expect("csv");
    let records = herd_protocol::plan::parse_csv(&text).expect("csv");
    let plan = herd_protocol::plan::from_value(&serde_json::json!({
        "version": 1, "name": "big-feeder-mosquitto", "target": target.url(), "agents": 2,
        "load": {"vus": 4, "duration": "3s"},
        "feeders": {"ids": {"rows": records, "mode": "random"}},
        "scenario": [
            {"name": "row", "get": "/row?v=${id}", "headers": {"x-herd-agent": "${__agent}"}},
            {"think": "5ms"}
        ]
    }))
    .expect("a valid plan");
    let link = MqttLink::connect(
        &BrokerEndpoint::parse(&mosquitto.url()).expect("url"),
        "coordinator",
    )
    .await
    .expect("coordinator on Mosquitto");
    let deps = RunDeps {
        launcher: Arc::new(LocalLauncher::new(
            herd_bin(),
            Some(dir.path().join("logs")),
        )),
        bus: Arc::new(link),
        store: Arc::new(EmbeddedStore::open(dir.path()).expect("store")),
        broker_url: mosquitto.url(),
        owner: "data-test".to_owned(),
        allowed_targets: None,
        outputs: Vec::new(),
        fallback_dir: None,
    };
    let handle = run::start(
        RunSpec {
            run: new_run_id(),
            test: None,
            plan,
            timeouts: Timeouts::default(),
        },
        deps,
    );
    let summary = tokio::time::timeout(Duration::from_secs(120), handle.outcome)
        .await
        .expect("the run ends within 120 s")
        .expect("a summary");
    assert_eq!(
        summary.run_state,
        RunState::Completed,
        "{:?}",
        summary.reason
    );
    let seen = target.seen();
    assert_eq!(summary.requests, seen.total);
    let mut last_quarter = BTreeSet::new();
    for (value, by) in &seen.rows {
        let k: usize = value["row-".len()..].parse().expect("row number");
        for agent in by.keys() {
            assert_eq!(agent, &(k % 2).to_string(), "{value} belongs to one agent");
            if k >= rows * 3 / 4 {
                last_quarter.insert(agent.clone());
            }
        }
    }
    assert_eq!(
        last_quarter,
        BTreeSet::from(["0".to_string(), "1".to_string()]),
        "both agents drew rows from the end of the file"
    );
}
