//! The README's first command: `herd demo` runs the contract smoke plan (examples/smoke.yaml,
//! 3 agents, 2 s ramp + 8 s hold) against its built-in counting target, and agrees with it.

use herd_e2e::{read_summary, Herd};
use std::time::Duration;

#[test]
fn the_demo_runs_the_smoke_plan_and_matches_the_targets_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("summary.json");
    let out = Herd::new(
        [
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--json",
            json.to_str().expect("utf8"),
        ],
        dir.path(),
    )
    .run(Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let s = read_summary(&json);
    assert_eq!(s["name"], "smoke");
    assert_eq!(s["status"], "passed");
    assert_eq!(s["agents"].as_array().map(Vec::len), Some(3));
    let requests = s["requests"].as_u64().expect("requests");
    // The demo prints the target's count beside herd's, and exits non-zero if they differ.
    let row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("requests ") && !l.contains('/'))
        .expect("the target/herd count table");
    let numbers: Vec<u64> = row
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(
        numbers,
        vec![requests, requests],
        "target and herd counts: {row}"
    );
    // Both steps ran, and the 20 VUs were spread over the whole 10 s.
    assert!(s["steps"]["mix"]["requests"].as_u64() > Some(0));
    assert!(s["steps"]["login"]["requests"].as_u64() > Some(0));
    assert!(s["seconds"].as_array().map_or(0, Vec::len) >= 10);
}
