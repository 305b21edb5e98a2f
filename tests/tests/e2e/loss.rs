//! End-to-end: a lost agent's share of the load (`options.on_agent_loss`). Three agents play a
//! fixed arrival rate against a counting target; agent-1 is SIGKILLed mid-run. With
//! `redistribute` (the default) the target's per-second rate after the loss stays within 2 % of
//! the plan and the summary says where the share went; with `continue` the run goes on with
//! two thirds of it (the behaviour before the option); with `replace` a new agent process takes
//! agent-1's place and the rate holds; with `abort` the run ends failed, naming the agent and
//! the second.
use herd_e2e::{
    children_matching, read_summary, wait_with_limit, write_file, CountingTarget, Herd,
};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The plan's rate (arrivals per second, whole run) and length.
const RATE: u64 = 300;
const SECONDS: u64 = 14;
/// When agent-1 is killed, counted from the target's first request.
const KILL_AFTER: Duration = Duration::from_secs(4);

fn plan(dir: &Path, target: &CountingTarget, policy: &str) -> String {
    let plan = format!(
        r#"
version: 1
name: loss
target: {}
agents: 3
load:
  start_rps: {RATE}
  arrival:
    - {{ duration: {SECONDS}s, rps: {RATE} }}
  max_in_flight: 64
scenario:
  - get: /ok
options:
  on_agent_loss: {policy}
  graceful_stop: 2s
"#,
        target.url()
    );
    write_file(dir, "plan.yaml", &plan)
        .to_str()
        .expect("utf8")
        .to_string()
}

/// What the target counted, sampled every few ms while the run went.
struct Run {
    out: Output,
    summary: Value,
    /// `(when, total received)`.
    samples: Vec<(Instant, u64)>,
    killed_at: Instant,
    first_at: Instant,
    /// When a process of the replacement `agent-1-r1` was first seen under this herd.
    replacement_seen: Option<Instant>,
}

impl Run {
    /// Requests the target received between `from` and `to` after the kill (interpolated
    /// between samples).
    fn received_between(&self, from: Duration, to: Duration) -> f64 {
        self.at(self.killed_at + to) - self.at(self.killed_at + from)
    }

    fn at(&self, t: Instant) -> f64 {
        let i = self.samples.partition_point(|(at, _)| *at <= t);
        let (Some(&(t0, n0)), Some(&(t1, n1))) = (
            i.checked_sub(1).and_then(|i| self.samples.get(i)),
            self.samples.get(i),
        ) else {
            panic!("no samples around {:?}", t - self.killed_at);
        };
        let span = (t1 - t0).as_secs_f64();
        let frac = if span > 0.0 {
            (t - t0).as_secs_f64() / span
        } else {
            0.0
        };
        n0 as f64 + (n1 as f64 - n0 as f64) * frac
    }

    /// The per-second counts after the kill, from `skip` seconds after it to a second before
    /// the planned end.
    fn seconds_after_kill(&self, skip: u64) -> Vec<f64> {
        let end = self.first_at + Duration::from_secs(SECONDS - 1);
        (skip..)
            .map(|s| (Duration::from_secs(s), Duration::from_secs(s + 1)))
            .take_while(|(_, to)| self.killed_at + *to <= end)
            .map(|(from, to)| self.received_between(from, to))
            .collect()
    }
}

fn run_and_kill_agent_1(policy: &str, target: &CountingTarget) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = plan(dir.path(), target, policy);
    let json = dir.path().join("summary.json");
    let mut child = Herd::new(
        ["run", &plan, "--json", json.to_str().expect("utf8"), "-q"],
        dir.path(),
    )
    .spawn();
    let mut samples = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let first_at = loop {
        if let Some(first) = target.received().first_at {
            break first;
        }
        assert!(Instant::now() < deadline, "load never started");
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut killed_at = None;
    let mut replacement_seen = None;
    let mut looked_at = Instant::now();
    let end = first_at + Duration::from_secs(SECONDS + 1);
    while Instant::now() < end {
        let now = Instant::now();
        samples.push((now, target.received().total));
        if killed_at.is_none() && now >= first_at + KILL_AFTER {
            let pids = children_matching(child.id(), &["agent", "--agent agent-1"]);
            assert_eq!(pids.len(), 1, "one agent-1 under this herd: {pids:?}");
            let status = Command::new("kill")
                .args(["-KILL", &pids[0].to_string()])
                .status()
                .expect("kill");
            assert!(status.success());
            killed_at = Some(Instant::now());
        }
        if killed_at.is_some()
            && replacement_seen.is_none()
            && now >= looked_at + Duration::from_millis(100)
        {
            looked_at = now;
            if !children_matching(child.id(), &["agent", "--agent agent-1-r1"]).is_empty() {
                replacement_seen = Some(now);
            }
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = wait_with_limit(child, Duration::from_secs(60));
    samples.push((Instant::now(), target.received().total));
    let summary = read_summary(&json);
    Run {
        out,
        summary,
        samples,
        killed_at: killed_at.expect("agent-1 was killed"),
        first_at,
        replacement_seen,
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a count, got {v}"))
}

/// The rate over the seconds after the loss is within 2 % of `want`, and so is each second but
/// for this machine's stalls: its 2 cores are shared with other builds, and a process held up
/// for 20 ms moves 6 of 300 requests into the next second (each second stays within 5 %).
fn assert_rate(seconds: &[f64], want: f64) {
    let mean = seconds.iter().sum::<f64>() / seconds.len() as f64;
    let off = |n: f64| (n - want).abs() / want;
    assert!(
        off(mean) <= 0.02,
        "{mean:.1} per second after the loss, planned {want}: {seconds:?}"
    );
    for (i, n) in seconds.iter().enumerate() {
        assert!(
            off(*n) <= 0.05,
            "second {} after the loss: {n:.1} of {want}: {seconds:?}",
            i + 1
        );
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn with_redistribute_the_survivors_keep_the_planned_rate() {
    let target = CountingTarget::start();
    let run = run_and_kill_agent_1("redistribute", &target);
    let s = &run.summary;
    let got = target.received();
    let seconds = run.seconds_after_kill(1);
    eprintln!(
        "redistribute: per second after the loss {seconds:?}; target {} herd {}; gaps {}",
        got.total, s["requests"], s["agents"][1]["gaps"]
    );
    assert_eq!(
        run.out.status.code(),
        Some(3),
        "degraded: {}",
        stderr(&run.out)
    );
    assert_eq!(s["run_state"], "degraded");
    assert_eq!(s["lost_agents"], serde_json::json!(["agent-1"]));
    assert!(seconds.len() >= 6, "{seconds:?}");
    assert_rate(&seconds, RATE as f64);
    let share = &s["agents"][1]["gaps"][0]["share"];
    assert_eq!(share["action"], "redistribute", "{share}");
    assert_eq!(share["to"], serde_json::json!(["agent-0", "agent-2"]));
    assert!(
        share["at_s"].as_f64().is_some_and(|t| t > 3.0 && t < 6.0),
        "{share}"
    );
    assert_counted(s, got.total);
}

/// The plan's arrivals, less the lost agent's between its death and the move (under a second of
/// its third), and its requests in flight; herd counted all the target saw but the lost agent's
/// last, unreported second.
fn assert_counted(s: &Value, received: u64) {
    let planned = RATE * SECONDS;
    assert!(received <= planned + 1, "{received} > {planned}");
    assert!(received + RATE / 3 >= planned, "{received} of {planned}");
    assert!(u(&s["requests"]) <= received);
    assert!(
        received - u(&s["requests"]) <= RATE / 3 + 64,
        "{} vs {received}",
        s["requests"],
    );
}

#[test]
fn with_replace_a_new_agent_takes_the_share_and_the_rate_holds() {
    let target = CountingTarget::start();
    let run = run_and_kill_agent_1("replace", &target);
    let s = &run.summary;
    let got = target.received();
    let seconds = run.seconds_after_kill(1);
    let share = &s["agents"][1]["gaps"][0]["share"];
    eprintln!(
        "replace: per second after the loss {seconds:?}; target {} herd {}; share {share}; agents {}",
        got.total, s["requests"], s["agents"]
    );
    let seen = run.replacement_seen.expect("a new agent process appeared");
    assert!(seen > run.killed_at);
    assert_eq!(
        run.out.status.code(),
        Some(3),
        "degraded (agent-1 stays lost): {}",
        stderr(&run.out)
    );
    assert_eq!(share["action"], "replace", "{share}");
    assert_eq!(share["to"], serde_json::json!(["agent-1-r1"]));
    let (moved, joined) = (
        share["redistributed_at_s"]
            .as_f64()
            .expect("the survivors carried it first"),
        share["at_s"].as_f64().expect("when it joined"),
    );
    assert!(
        moved > 3.0 && moved < 6.0 && joined >= moved && joined < 10.0,
        "{share}"
    );
    // The survivors carry the share until the new agent is ready, then it does: the target
    // sees the plan's rate all along.
    assert!(seconds.len() >= 6, "{seconds:?}");
    assert_rate(&seconds, RATE as f64);
    let agents = s["agents"].as_array().expect("agents");
    let new = agents
        .iter()
        .find(|a| a["id"] == "agent-1-r1")
        .expect("the replacement is among the agents");
    // It played its third from its joining on (the seconds after it to the plan's end).
    let after = SECONDS as f64 - joined;
    let third = RATE as f64 / 3.0;
    let played = u(&new["requests"]) as f64;
    assert!(
        (played - third * after).abs() <= third * 1.0 + 2.0,
        "{played} requests, about {} planned",
        third * after
    );
    // Every agent's count, the replacement's once, adds up to herd's total; herd counted all
    // the target saw but the lost agent's last, unreported second.
    let sum: u64 = agents.iter().map(|a| u(&a["requests"])).sum();
    assert_eq!(u(&s["requests"]), sum);
    assert_counted(s, got.total);
}

#[test]
fn with_continue_the_run_goes_on_with_fewer_agents() {
    let target = CountingTarget::start();
    let run = run_and_kill_agent_1("continue", &target);
    let s = &run.summary;
    let seconds = run.seconds_after_kill(1);
    eprintln!("continue: per second after the loss {seconds:?}");
    assert_eq!(
        run.out.status.code(),
        Some(3),
        "degraded: {}",
        stderr(&run.out)
    );
    assert_eq!(s["run_state"], "degraded");
    assert_eq!(s["lost_agents"], serde_json::json!(["agent-1"]));
    assert_rate(&seconds, (RATE * 2 / 3) as f64);
    let share = &s["agents"][1]["gaps"][0]["share"];
    assert_eq!(share["action"], "continue", "{share}");
    assert!(share.get("to").is_none(), "nobody took it over: {share}");
    assert_eq!(
        u(&s["requests"]),
        u(&s["agents"][0]["requests"])
            + u(&s["agents"][1]["requests"])
            + u(&s["agents"][2]["requests"])
    );
}

#[test]
fn with_abort_the_run_ends_failed_naming_the_agent_and_the_second() {
    let target = CountingTarget::start();
    let run = run_and_kill_agent_1("abort", &target);
    let s = &run.summary;
    assert_eq!(
        run.out.status.code(),
        Some(3),
        "failed: {}",
        stderr(&run.out)
    );
    assert_eq!(s["run_state"], "failed");
    let reason = s["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("agent agent-1 was lost at second")
            && reason.contains("on_agent_loss is abort"),
        "{reason}"
    );
    // The others were stopped at once: nothing reached the target a graceful period after.
    let got = target.received();
    let last = got.last_at.expect("requests arrived");
    assert!(
        last.duration_since(run.killed_at) < Duration::from_secs(3),
        "the load went on {:?} after the loss",
        last.duration_since(run.killed_at)
    );
    assert_eq!(s["agents"][1]["gaps"][0]["share"]["action"], "abort");
}
