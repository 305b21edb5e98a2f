//! End-to-end: `herd bench swarm` — 50 simulated agents against the real coordinator, on the
//! embedded broker and on Mosquitto; every frame the agents sent is counted once, and the
//! summary's request total is the sum of the agents' frames.

use herd_e2e::aws::Mosquitto;
use herd_e2e::Herd;
use serde_json::Value;
use std::time::Duration;

fn bench(broker: Option<&str>) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("swarm.json");
    let mut args = vec![
        "bench".to_string(),
        "swarm".into(),
        "--agents".into(),
        "50".into(),
        "--seconds".into(),
        "3".into(),
        "--json".into(),
        json.to_str().expect("utf8").into(),
    ];
    if let Some(url) = broker {
        args.extend(["--broker".to_string(), url.to_string()]);
    }
    let out = Herd::new(&args, dir.path()).run(Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("live lag"),
        "the table is printed: {stdout}"
    );
    serde_json::from_str(&std::fs::read_to_string(&json).expect("the --json file")).expect("JSON")
}

fn check(figures: &Value) {
    assert_eq!(figures["agents"], 50, "{figures}");
    assert_eq!(figures["frames_lost"], 0, "{figures}");
    assert_eq!(figures["frames_doubled"], 0, "{figures}");
    assert_eq!(figures["frames"], figures["frames_sent"], "{figures}");
    // Each agent sends a frame for every second from its start's to its end's: 4 or 5.
    let frames = figures["frames"].as_u64().expect("frames");
    assert!((200..=250).contains(&frames), "{figures}");
    assert_eq!(
        figures["requests_counted"], figures["requests_sent"],
        "{figures}"
    );
    assert_eq!(figures["agents_started"], 50, "{figures}");
    assert_eq!(figures["agents_finished"], 50, "{figures}");
    assert_eq!(figures["run_state"], "completed", "{figures}");
    for key in ["live_lag_ms", "start_skew_ms"] {
        for q in ["p50", "p99", "max"] {
            assert!(figures[key][q].is_number(), "{key}.{q}: {figures}");
        }
    }
    assert!(
        figures["coordinator_cpu_cores"]
            .as_f64()
            .is_some_and(|c| c > 0.0),
        "{figures}"
    );
    assert!(
        figures["coordinator_rss_mb"]
            .as_f64()
            .is_some_and(|m| m > 1.0),
        "{figures}"
    );
}

#[test]
fn fifty_simulated_agents_are_counted_exactly_on_the_embedded_broker() {
    check(&bench(None));
}

#[test]
fn fifty_simulated_agents_are_counted_exactly_on_mosquitto() {
    let broker = Mosquitto::start();
    check(&bench(Some(&broker.url())));
}
