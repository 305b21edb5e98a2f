//! End-to-end: a threshold with `abort_on_fail` stops the run while it goes, once the target
//! slows down: within the window + 2 s of the slowdown, and nothing reaches the target after.

use herd_e2e::{read_summary, write_file, CountingTarget, Herd};
use std::time::Duration;

#[test]
fn a_breached_abort_on_fail_threshold_stops_the_run_and_the_load() {
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // A constant 40 arrivals/s; the target answers at once for 5 s, then takes 300 ms each.
    let plan = format!(
        r#"
version: 1
name: abort
target: {}
agents: 2
load:
  start_rps: 40
  arrival:
    - {{ duration: 30s, rps: 40 }}
scenario:
  - name: slowing
    get: /slow_after/5/300
thresholds:
  - {{ expr: "p99 < 100ms", abort_on_fail: true, delay: 2s, window: 3s }}
  - "requests > 0"
"#,
        target.url()
    );
    let plan = write_file(dir.path(), "plan.yaml", &plan);
    let json = dir.path().join("summary.json");
    let out = Herd::new(
        [
            "run",
            plan.to_str().expect("utf8"),
            "-q",
            "--json",
            json.to_str().expect("utf8"),
        ],
        dir.path(),
    )
    .run(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a threshold failed: exit 1\nstderr:\n{stderr}\nstdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let s = read_summary(&json);
    assert_eq!(s["status"], "failed");
    assert_eq!(s["run_state"], "failed");
    let reason = s["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("\"p99 < 100ms\"") && reason.contains("breached at second"),
        "{reason}"
    );
    assert_eq!(s["thresholds"][0]["passed"], false);
    assert!(s["thresholds"][0]["actual"].as_f64().expect("actual") > 100.0);
    assert_eq!(s["thresholds"][1]["passed"], true);

    // The target's own clock: its last request came within window (3 s) + 2 s of the slowdown.
    let got = target.received();
    let first = got.first_at.expect("requests arrived");
    let last = got.last_at.expect("requests arrived");
    let slowdown = first + Duration::from_secs(5);
    assert!(last > slowdown, "the load reached the slowdown");
    let after = last.duration_since(slowdown);
    eprintln!(
        "abort: last request {after:?} after the slowdown; {} requests; {}",
        got.total, reason
    );
    assert!(
        after <= Duration::from_secs(5),
        "the last request came {after:?} after the slowdown (limit: window 3 s + 2 s)"
    );
    // Nothing after the stop: herd is gone, the target counts no more, and herd counted it all.
    std::thread::sleep(Duration::from_secs(1));
    let later = target.received();
    assert_eq!(later.total, got.total, "requests after the stop");
    assert_eq!(
        s["requests"].as_u64(),
        Some(got.total),
        "herd's count is the target's"
    );
}
