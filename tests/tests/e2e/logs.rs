//! End-to-end: when stderr is not a terminal, herd logs one JSON object per line, with the run id
//! as a field of its own.

use herd_e2e::{read_summary, write_file, CountingTarget, Herd};
use serde_json::Value;
use std::time::Duration;

#[test]
fn logs_are_json_lines_with_the_run_id_as_a_field_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = CountingTarget::start();
    let plan = format!(
        "version: 1\nname: logs\ntarget: {}\nagents: 1\nload:\n  stages:\n    - {{ duration: 1s, vus: 1 }}\nscenario:\n  - get: /ok\n",
        target.url()
    );
    let plan = write_file(dir.path(), "plan.yaml", &plan);
    let json = dir.path().join("summary.json");
    let out = Herd::new(
        [
            "run",
            plan.to_str().expect("utf8"),
            "--json",
            json.to_str().expect("utf8"),
            "-q",
        ],
        dir.path(),
    )
    .env("RUST_LOG", "info,rumqttd=off")
    .run(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let run_id = read_summary(&json)["run_id"]
        .as_str()
        .expect("run id")
        .to_string();
    let lines: Vec<Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty(), "no JSON log lines in:\n{stderr}");
    let phases: Vec<&str> = lines
        .iter()
        .filter(|l| l["message"] == "run phase" && l["run"] == run_id.as_str())
        .filter_map(|l| l["phase"].as_str())
        .collect();
    assert!(
        phases.contains(&"waiting_ready") && phases.contains(&"running"),
        "{phases:?} in:\n{stderr}"
    );
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["timestamp"].is_string()));
}
