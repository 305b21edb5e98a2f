//! End-to-end: `herd run` with real agent processes against a counting target.

use herd_e2e::{
    children_matching, read_summary, wait_with_limit, write_file, CountingTarget, Herd,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a count, got {v}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

#[test]
fn three_agents_report_exactly_what_the_target_received() {
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = format!(
        r#"
version: 1
name: exact
target: {}
agents: 3
load:
  stages:
    - {{ duration: 1s, vus: 12 }}
    - {{ duration: 3s, vus: 12 }}
scenario:
  - name: mix
    get: /mix
  - think: 50ms
  - name: login
    post: /login
    headers: {{ content-type: application/json }}
    body: '{{"user":"u1"}}'
  - name: slow
    get: /delay/20
  - name: missing
    get: /status/404
thresholds:
  - "p99 < 5s"
  - "requests > 10"
"#,
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
    .run(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The threshold on errors is not set, so 404s do not fail the run: exit code 0.
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr:\n{stderr}\nstdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let s = read_summary(&json);
    let got = target.received();

    assert_eq!(s["status"], "passed");
    assert_eq!(s["run_state"], "completed");
    assert_eq!(
        u(&s["requests"]),
        got.total,
        "herd's count must equal the target's"
    );
    assert!(
        got.total > 100,
        "too little load to prove anything: {}",
        got.total
    );

    // Status codes, as the target answered them.
    let codes: Vec<(String, u64)> = got
        .by_status
        .iter()
        .map(|(c, n)| (c.to_string(), *n))
        .collect();
    let reported: Vec<(String, u64)> = s["status_codes"]
        .as_object()
        .expect("status_codes")
        .iter()
        .map(|(c, n)| (c.clone(), u(n)))
        .collect();
    assert_eq!(reported, codes);
    // 404s are errors (HTTP status >= 400), and nothing else failed.
    assert_eq!(u(&s["errors"]), got.by_status[&404]);

    // Per-step counts equal per-route counts.
    for (step, route) in [
        ("mix", "GET /mix"),
        ("login", "POST /login"),
        ("slow", "GET /delay/20"),
        ("missing", "GET /status/404"),
    ] {
        assert_eq!(
            u(&s["steps"][step]["requests"]),
            got.by_route[route],
            "step {step}"
        );
    }

    // A known delay: herd's p50 is within 5% + 2 ms of what the target itself measured for that
    // endpoint (its 20 ms sleep takes 20-21 ms on tokio's millisecond timer), and neither p50 nor
    // p99 is ever below it: a client cannot see a response faster than the server produced it.
    // The p99 may be up to 5% + 5 ms above it: on 2 cores shared by the target, the coordinator
    // and three agents, a response can wait a scheduler time slice for its agent to run, and
    // the p99 of ~600 samples is the 6th slowest. CI saw +5.0 ms (stop 7) and +3.3 ms (stop 9)
    // with the test holding the machine; that is the client's real wait, not a herd error.
    let slow = &s["steps"]["slow"]["latency_ms"];
    eprintln!(
        "slow step latency (ms): herd {slow}; target p50 {} p99 {}",
        got.delay_quantile_ms(0.5),
        got.delay_quantile_ms(0.99)
    );
    for (p, q, slack_ms) in [("p50", 0.5, 2.0), ("p99", 0.99, 5.0)] {
        let herd = f(&slow[p]);
        let truth = got.delay_quantile_ms(q);
        assert!(truth >= 20.0, "the target slept at least 20 ms: {truth}");
        assert!(
            herd >= truth * 0.999 - 0.01 && herd <= truth * 1.05 + slack_ms,
            "slow {p}: herd {herd} ms, target measured {truth} ms\nseconds: {}",
            s["seconds"]
        );
    }
    assert!(
        f(&slow["p50"]) <= 20.0 * 1.05 + 2.0,
        "p50 within 5% + 2 ms of the nominal 20 ms"
    );

    // Three agents, three distinct OS processes, none of them the coordinator.
    let agents = s["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 3);
    let pids: BTreeSet<u64> = agents.iter().map(|a| u(&a["pid"])).collect();
    assert_eq!(
        pids.len(),
        3,
        "agents must be distinct processes: {agents:?}"
    );
    assert!(agents
        .iter()
        .all(|a| u(&a["requests"]) > 0 && a["lost"] == false));
    let per_agent: u64 = agents.iter().map(|a| u(&a["requests"])).sum();
    assert_eq!(per_agent, got.total);

    // Every second is accounted for.
    let seconds = s["seconds"].as_array().expect("seconds");
    let per_second: u64 = seconds.iter().map(|x| u(&x["requests"])).sum();
    assert_eq!(per_second, got.total);
    assert!(
        seconds.len() >= 4,
        "a 4 s run has at least 4 seconds: {}",
        seconds.len()
    );
    assert!(seconds.iter().all(|x| u(&x["agents_expected"]) <= 3));

    assert!(
        f(&s["start_skew_ms"]) < 100.0,
        "start skew {}",
        s["start_skew_ms"]
    );
    let thresholds = s["thresholds"].as_array().expect("thresholds");
    assert_eq!(thresholds.len(), 2);
    assert!(thresholds.iter().all(|t| t["passed"] == true));
    assert!(s["lost_agents"].as_array().is_some_and(Vec::is_empty));
}

#[test]
fn a_plan_with_mistakes_is_refused_before_any_load() {
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = format!(
        r#"
version: 1
name: broken
target: {}
agents: 0
load:
  stages:
    - {{ duration: 1s, vus: 5 }}
    - {{ duration: 1s, vus: -1 }}
    - {{ duration: 2s, vus: 5 }}
scenario:
  - get: ok
  - think: 10
thresholds:
  - "p99 <"
speed: fast
"#,
        target.url()
    );
    let plan = write_file(dir.path(), "plan.yaml", &plan);
    let out =
        Herd::new(["run", plan.to_str().expect("utf8")], dir.path()).run(Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2), "invalid plans exit with 2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for field in [
        "agents:",
        "load.stages[1].vus:",
        "scenario[0].get:",
        "scenario[1].think:",
        "thresholds[0]:",
        "speed:",
    ] {
        assert!(
            stderr.contains(field),
            "stderr must name {field}:\n{stderr}"
        );
    }
    assert_eq!(
        target.received().total,
        0,
        "no load may be sent for an invalid plan"
    );

    let out = Herd::new(["validate", plan.to_str().expect("utf8")], dir.path())
        .run(Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_killed_agent_ends_the_run_degraded_and_keeps_the_others_results() {
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = format!(
        r#"
version: 1
name: kill
target: {}
agents: 3
load:
  stages:
    - {{ duration: 6s, vus: 6 }}
scenario:
  - get: /delay/5
"#,
        target.url()
    );
    let plan = write_file(dir.path(), "plan.yaml", &plan);
    let json = dir.path().join("summary.json");
    let started = Instant::now();
    let child = Herd::new(
        [
            "run",
            plan.to_str().expect("utf8"),
            "--json",
            json.to_str().expect("utf8"),
            "-q",
        ],
        dir.path(),
    )
    .spawn();
    let herd_pid = child.id();
    // Wait until load flows, then SIGKILL agent-1.
    let deadline = Instant::now() + Duration::from_secs(20);
    while target.received().total < 50 {
        assert!(Instant::now() < deadline, "load never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let victims = children_matching(herd_pid, &["agent", "--agent agent-1"]);
    assert_eq!(victims.len(), 1, "exactly one agent-1 process under herd");
    let killed_at = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &victims[0].to_string()])
        .status()
        .expect("kill");
    assert!(status.success());

    let out = wait_with_limit(child, Duration::from_secs(40));
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a degraded run exits with 3; stderr:\n{stderr}"
    );
    // Planned end is ~6 s after the load started; the run must end within a few seconds of it.
    assert!(
        killed_at.elapsed() < Duration::from_secs(6 + 8),
        "the run ended {elapsed:?} after launch, too long after its planned end"
    );
    let s = read_summary(&json);
    assert_eq!(s["status"], "error");
    assert_eq!(s["run_state"], "degraded");
    assert_eq!(s["lost_agents"], serde_json::json!(["agent-1"]));
    assert!(
        s["reason"].as_str().is_some_and(|r| r.contains("agent-1")),
        "reason names the agent: {}",
        s["reason"]
    );
    let agents = s["agents"].as_array().expect("agents");
    for a in agents {
        if a["id"] == "agent-1" {
            assert_eq!(a["lost"], true);
        } else {
            assert_eq!(a["lost"], false);
            assert!(
                u(&a["requests"]) > 100,
                "surviving agent kept its results: {a}"
            );
        }
    }
    // What herd reports never exceeds what the target saw; the killed agent's last second is lost.
    assert!(u(&s["requests"]) <= target.received().total);
}
