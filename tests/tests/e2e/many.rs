//! End-to-end: many agents on one host (300 local agent processes complete exactly, with a
//! summary that fits a screen; the test has the machine to itself, `.config/nextest.toml`), and
//! agents that freeze (SIGSTOP). One frozen past the liveness timeout and woken before
//! the end is taken back: its late frames are merged, the episode is kept in `agents[].gaps`, and
//! the run completes. One that stays frozen past the end is lost with what it delivered kept, and
//! the run is degraded. The load is constant VUs, so every agent is busy from the first second
//! (a ramp would leave agent-1 idle until late, and the freeze would start near the end).
use herd_e2e::{
    children_matching, read_summary, wait_with_limit, write_file, CountingTarget, Herd,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a count, got {v}"))
}

/// How many agents the many-agents run uses: 300 (the issue's acceptance), or `HERD_MANY_AGENTS`.
fn many() -> u32 {
    std::env::var("HERD_MANY_AGENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300)
}

fn plan(dir: &Path, target: &CountingTarget, agents: u32, seconds: u32) -> String {
    let plan = format!(
        r#"
version: 1
name: many
target: {}
agents: {agents}
load:
  vus: {agents}
  duration: {seconds}s
scenario:
  - get: /ok
  - think: 500ms
"#,
        target.url()
    );
    write_file(dir, "plan.yaml", &plan)
        .to_str()
        .expect("utf8")
        .to_string()
}

#[test]
fn hundreds_of_agents_complete_exactly_with_a_summary_that_fits_a_screen() {
    let agents = many();
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = plan(dir.path(), &target, agents, 8);
    let json = dir.path().join("summary.json");
    let started = Instant::now();
    let out = Herd::new(
        ["run", &plan, "--json", json.to_str().expect("utf8"), "-q"],
        dir.path(),
    )
    .env(
        "RUST_LOG",
        &std::env::var("HERD_E2E_LOG").unwrap_or_else(|_| "warn".into()),
    )
    .run(Duration::from_secs(120));
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "{agents} agents: exit {:?} after {took:?}\n{stdout}",
        out.status.code()
    );
    let s = read_summary(&json);
    let got = target.received();
    assert_eq!(
        out.status.code(),
        Some(0),
        "reason: {}\nstderr:\n{stderr}",
        s["reason"]
    );
    assert_eq!(s["run_state"], "completed");
    assert_eq!(u(&s["requests"]), got.total, "herd's count is the target's");
    assert!(
        got.total >= u64::from(agents) * 8,
        "every agent sent: {}",
        got.total
    );
    let per_agent: u64 = s["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|a| u(&a["requests"]))
        .sum();
    assert_eq!(per_agent, got.total);
    eprintln!(
        "start: skew {} ms, last agent {} ms late, lead {} ms; gaps: {}",
        s["start_skew_ms"],
        s["start_late_ms"],
        s["start_lead_ms"],
        s["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .filter(|a| a.get("gaps").is_some())
            .count()
    );

    // The table fits a screen, and names no agent beyond the few that matter.
    let lines = stdout.lines().count();
    assert!(lines <= 40, "{lines} lines:\n{stdout}");
    assert!(
        stdout.contains(&format!("agents      {agents} ")),
        "{stdout}"
    );
    // At most one bottleneck entry per agent.
    let bottlenecks = s["bottlenecks"].as_array().cloned().unwrap_or_default();
    let names: BTreeSet<&str> = bottlenecks
        .iter()
        .map(|b| b["agent"].as_str().expect("agent"))
        .collect();
    assert_eq!(names.len(), bottlenecks.len(), "one entry per agent");
    assert!(bottlenecks.len() <= agents as usize);
    assert!(took < Duration::from_secs(120));
}

/// Starts a 4-agent run for `seconds`, waits for load, and SIGSTOPs agent-1. Returns the child,
/// the frozen pid, and when it was frozen.
fn freeze_agent_1(
    dir: &Path,
    target: &CountingTarget,
    seconds: u32,
) -> (std::process::Child, u32, std::path::PathBuf) {
    let plan = plan(dir, target, 4, seconds);
    let json = dir.join("summary.json");
    let child = Herd::new(
        ["run", &plan, "--json", json.to_str().expect("utf8"), "-q"],
        dir,
    )
    .spawn();
    let deadline = Instant::now() + Duration::from_secs(30);
    while target.received().total < 12 {
        assert!(Instant::now() < deadline, "load never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pids = children_matching(child.id(), &["agent", "--agent agent-1"]);
    assert_eq!(pids.len(), 1, "one agent-1 under this herd: {pids:?}");
    signal("STOP", pids[0]);
    (child, pids[0], json)
}

fn signal(name: &str, pid: u32) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name} {pid}");
}

#[test]
fn an_agent_frozen_past_the_timeout_then_resumed_is_taken_back() {
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, pid, json) = freeze_agent_1(dir.path(), &target, 18);
    // Longer than the 5 s timeout, and than the broker's 7.5 s keep-alive limit.
    std::thread::sleep(Duration::from_secs(9));
    let woke = Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status()
        .expect("kill");
    let out = wait_with_limit(child, Duration::from_secs(60));
    eprintln!("stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    let s = read_summary(&json);
    assert!(
        woke.success(),
        "agent-1 ({pid}) is gone before it was woken"
    );
    let got = target.received();
    eprintln!("agents: {}\nreason: {}", s["agents"], s["reason"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s["run_state"], "completed");
    assert_eq!(u(&s["requests"]), got.total, "totals exact");
    assert!(s["lost_agents"].as_array().is_some_and(Vec::is_empty));
    let a1 = &s["agents"][1];
    assert_eq!(a1["id"], "agent-1");
    assert_eq!(a1["lost"], false);
    let gaps = a1["gaps"].as_array().expect("agent-1 has a gap");
    assert!(!gaps.is_empty());
    assert!(
        gaps.iter().all(|g| g["back_at_s"].is_number()),
        "taken back: {gaps:?}"
    );
    assert!(u(&a1["requests"]) > 0);
}

#[test]
fn an_agent_frozen_until_the_end_is_lost_with_its_counts_kept() {
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, pid, json) = freeze_agent_1(dir.path(), &target, 10);
    let out = wait_with_limit(child, Duration::from_secs(60));
    // herd kills its agents at the end; a stopped one is woken so nothing is left behind.
    let _ = Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status();
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    let s = read_summary(&json);
    let got = target.received();
    assert_eq!(out.status.code(), Some(3), "degraded: {}", s["reason"]);
    assert_eq!(s["run_state"], "degraded");
    assert_eq!(s["lost_agents"], serde_json::json!(["agent-1"]));
    let a1 = &s["agents"][1];
    assert_eq!(a1["lost"], true);
    assert!(u(&a1["requests"]) > 0, "what it delivered is kept: {a1}");
    assert!(a1["gaps"][0]["back_at_s"].is_null(), "{a1}");
    // Requests it had in flight when frozen were received but never reported.
    assert!(u(&s["requests"]) <= got.total);
    assert!(
        got.total - u(&s["requests"]) <= 2,
        "{} vs {}",
        s["requests"],
        got.total
    );
}
