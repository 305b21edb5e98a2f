//! End-to-end: a plan with two scenarios of different loads (`scenarios:`), one closed (3 VUs on
//! `GET /ok`) and one open (50 arrivals/s on `POST /login`), run by `herd run` on two real agents. The
//! summary's per-scenario counts, the stored seconds' per-scenario counts (`--out csv-steps`,
//! rows `scenario:NAME`) and the summary's seconds all equal the target's own count per path,
//! and `herd validate` lists the scenarios.

use herd_e2e::{read_summary, write_file, CountingTarget, Herd};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a count, got {v}"))
}

/// A CSV file's rows of named fields (no field of these files holds a comma).
fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("csv written");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    lines
        .map(|line| {
            header
                .iter()
                .zip(line.split(','))
                .map(|(h, f)| (h.to_string(), f.to_string()))
                .collect()
        })
        .collect()
}

fn plan(url: &str) -> String {
    format!(
        r#"
version: 1
name: two scenarios
target: {url}
agents: 2
scenarios:
  browse:
    load: {{ vus: 3, duration: 3s }}
    steps:
      - get: /ok
      - think: 20ms
  buy:
    load:
      arrival: [{{ duration: 3s, rps: 50 }}]
      start_rps: 50
    steps:
      - post: /login
        body: "{{}}"
thresholds:
  - "error_rate < 1%"
"#
    )
}

#[test]
fn two_scenarios_with_different_loads_count_per_scenario_as_the_target_does() {
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_file(dir.path(), "plan.yaml", &plan(&target.url()));

    let validate = Herd::new(["validate", plan.to_str().expect("utf8")], dir.path())
        .run(Duration::from_secs(30));
    let listed = String::from_utf8_lossy(&validate.stdout).to_string();
    assert_eq!(validate.status.code(), Some(0), "{listed}");
    assert!(
        listed.contains("valid (2 agents, 2 scenarios, 3.0s)")
            && listed.contains("scenario browse: 3 VUs (peak) for 3.0s, 2 steps")
            && listed.contains("scenario buy: arrivals up to 50/s for 3.0s, 1 step"),
        "{listed}"
    );

    let p = |name: &str| dir.path().join(name).to_str().expect("utf8").to_string();
    let out = Herd::new(
        [
            "run",
            plan.to_str().expect("utf8"),
            "-q",
            "--out",
            &format!("csv-steps={},json={}", p("steps.csv"), p("summary.json")),
        ],
        dir.path(),
    )
    .run(Duration::from_secs(90));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let s = read_summary(&dir.path().join("summary.json"));
    let got = target.received();
    let (a, b) = (got.by_route["GET /ok"], got.by_route["POST /login"]);

    // The open scenario plays its schedule exactly: 50/s for 3 s, over both agents.
    assert_eq!(b, 150, "arrivals of the open scenario");
    assert!(a >= 30, "too little closed load: {a}");
    assert_eq!(u(&s["requests"]), got.total);
    assert_eq!(u(&s["scenarios"]["browse"]["requests"]), a, "{s}");
    assert_eq!(u(&s["scenarios"]["buy"]["requests"]), b, "{s}");
    assert_eq!(u(&s["steps"]["GET /ok"]["requests"]), a);
    assert_eq!(u(&s["steps"]["POST /login"]["requests"]), b);
    assert!(
        s["steps"].get("scenario:browse").is_none(),
        "scenarios are listed apart from steps"
    );

    // Every second breaks down per scenario, and the seconds add up to the target's count.
    let per_second = |name: &str| -> u64 {
        s["seconds"]
            .as_array()
            .expect("seconds")
            .iter()
            .map(|sec| sec["scenarios"][name]["requests"].as_u64().unwrap_or(0))
            .sum()
    };
    assert_eq!((per_second("browse"), per_second("buy")), (a, b));

    // The stored seconds (read back for csv-steps) carry each scenario's key too.
    let rows = read_csv(&dir.path().join("steps.csv"));
    let stored = |step: &str| -> u64 {
        rows.iter()
            .filter(|r| r["step"] == step)
            .map(|r| r["requests"].parse::<u64>().expect("a count"))
            .sum()
    };
    assert_eq!(stored("scenario:browse"), a);
    assert_eq!(stored("scenario:buy"), b);
}
