//! The run actor against fake boundaries, on paused tokio time: every phase's deadline, agent
//! loss, and a complete run.

use super::*;
use crate::bus::AgentInbound;
use crate::fakes::{FakeBus, FakeLauncher};
use crate::store::embedded::EmbeddedStore;
use herd_protocol::agent::{AgentCommand, AgentCommandMessage, AgentStatus, StatusMessage};
use herd_protocol::frame::{Frame, Stats};
use herd_protocol::histogram::{new_latency, record_us, EncodedHistogram};
use herd_protocol::plan::Plan;
use herd_protocol::summary::{RunState, Verdict};
use herd_protocol::AgentId;
use herd_protocol::RunId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

fn frame_of(
    run: &RunId,
    i: u32,
    seq: u64,
    second: u64,
    requests: u64,
    latency_us: u64,
    is_final: bool,
) -> Frame {
    let mut h = new_latency();
    for _ in 0..requests {
        record_us(&mut h, latency_us);
    }
    let total = Stats {
        requests,
        errors: 0,
        status_codes: [(200u16, requests)].into_iter().collect(),
        error_kinds: Default::default(),
        latency: EncodedHistogram::encode(&h),
        ..Stats::default()
    };
    Frame {
        version: 1,
        run: run.clone(),
        agent: agent(i),
        seq,
        second,
        is_final,
        vus: 1,
        steps: [("GET /".to_string(), total.clone())].into_iter().collect(),
        dropped: 0,
        health: Default::default(),
        sent_ms: 0,
        total,
    }
}

struct Harness {
    handle: RunHandle,
    commands: mpsc::UnboundedReceiver<AgentCommandMessage>,
    launcher: Arc<FakeLauncher>,
    run: RunId,
}

fn plan(agents: u32, seconds: u64) -> Plan {
    let mut plan = herd_protocol::plan::from_yaml_str(&format!(
        "version: 1\nname: t\ntarget: http://127.0.0.1:1\nagents: {agents}\nload:\n  stages:\n    - {{ duration: {seconds}s, vus: 6 }}\nscenario:\n  - get: /\nthresholds:\n  - \"p99 < 10ms\"\n"
    ))
    .expect("valid plan");
    plan.options.graceful_stop = Duration::from_secs(2);
    plan
}

fn start_run(plan: Plan) -> Harness {
    let (bus, commands) = FakeBus::new();
    let launcher = Arc::new(FakeLauncher::default());
    let run = RunId::new("r1").expect("valid");
    let deps = RunDeps {
        launcher: launcher.clone(),
        bus: Arc::new(bus),
        store: Arc::new(EmbeddedStore::in_memory().expect("store")),
        broker_url: "mqtt://fake:1".into(),
        owner: "test-coordinator".into(),
        allowed_targets: None,
        fallback_dir: None,
        outputs: Vec::new(),
    };
    let handle = start(
        RunSpec {
            run: run.clone(),
            test: None,
            plan,
            timeouts: Timeouts::default(),
        },
        deps,
    );
    Harness {
        handle,
        commands,
        launcher,
        run,
    }
}

fn agent(i: u32) -> AgentId {
    AgentId::numbered(i)
}

impl Harness {
    async fn say(&self, i: u32, status: AgentStatus) {
        self.say_as(&agent(i), status).await;
    }

    async fn say_as(&self, agent: &AgentId, status: AgentStatus) {
        let msg = StatusMessage {
            version: 1,
            agent: agent.clone(),
            sent_ms: 0,
            seq: 0,
            status,
        };
        self.handle
            .addr
            .send(AgentInbound::Status(msg))
            .await
            .expect("actor alive");
    }

    async fn frame(
        &self,
        i: u32,
        seq: u64,
        second: u64,
        requests: u64,
        latency_us: u64,
        is_final: bool,
    ) {
        let frame = frame_of(&self.run, i, seq, second, requests, latency_us, is_final);
        self.handle
            .addr
            .send(AgentInbound::Frame(Box::new(frame)))
            .await
            .expect("actor alive");
    }

    async fn next_command(&mut self) -> AgentCommand {
        self.commands.recv().await.expect("a command").command
    }

    /// Every agent says ready; returns the start second.
    async fn start_all(&mut self, n: u32) -> u64 {
        for i in 0..n {
            self.say(
                i,
                AgentStatus::Ready {
                    pid: 100 + i,
                    host: "h".into(),
                },
            )
            .await;
        }
        let AgentCommand::Start {
            start_at_ms,
            agent_count,
            assignments,
            ..
        } = self.next_command().await
        else {
            panic!("the first command is start")
        };
        assert_eq!(agent_count, n);
        // The numbered agents need no map: each finds its index from its id.
        assert!(assignments.is_empty(), "{assignments:?}");
        let indexes: std::collections::BTreeSet<u32> = (0..n)
            .filter_map(|i| {
                herd_protocol::agent::agent_index(&assignments, n, &AgentId::numbered(i))
            })
            .collect();
        assert_eq!(indexes.len() as u32, n);
        for i in 0..n {
            self.say(
                i,
                AgentStatus::Started {
                    at_us: start_at_ms * 1000 + u64::from(i) * 500,
                },
            )
            .await;
        }
        start_at_ms / 1000
    }
}

#[actix::test]
async fn a_complete_run_merges_every_agent() {
    tokio::time::pause();
    let mut h = start_run(plan(2, 2));
    let s0 = h.start_all(2).await;
    for i in 0..2 {
        for k in 0..3u64 {
            h.frame(i, k, s0 + k, 10, 1_000 * (u64::from(i) + 1), k == 2)
                .await;
        }
        h.say(
            i,
            AgentStatus::Finished {
                frames: 3,
                requests: 30,
            },
        )
        .await;
    }
    let summary = h.handle.outcome.await.expect("summary");
    assert_eq!(summary.run_state, RunState::Completed);
    assert_eq!(summary.requests, 60);
    assert_eq!(summary.seconds.len(), 3);
    assert_eq!(summary.seconds.iter().map(|s| s.requests).sum::<u64>(), 60);
    assert!(summary
        .seconds
        .iter()
        .all(|s| s.agents_reported == 2 && s.agents_expected == 2));
    assert_eq!(
        summary
            .agents
            .iter()
            .map(|a| a.requests)
            .collect::<Vec<_>>(),
        vec![30, 30]
    );
    assert_eq!(
        summary.agents.iter().map(|a| a.pid).collect::<Vec<_>>(),
        vec![Some(100), Some(101)]
    );
    assert!((summary.start_skew_ms - 0.5).abs() < 1e-9);
    // Half the responses took 1 ms, half 2 ms: the merged p99 is 2 ms and passes "p99 < 10ms".
    assert!((summary.latency_ms.p99 - 2.0).abs() < 0.01);
    assert_eq!(summary.status, Verdict::Passed);
    assert_eq!(
        h.launcher.stopped.lock().expect("lock").as_slice(),
        &[h.run.clone()]
    );
}

#[actix::test]
async fn agents_that_never_get_ready_fail_the_run_at_the_deadline() {
    tokio::time::pause();
    let h = start_run(plan(3, 2));
    h.say(
        0,
        AgentStatus::Ready {
            pid: 1,
            host: "h".into(),
        },
    )
    .await;
    // Keep agent-0 alive past the heartbeat limit: the ready deadline is what must fire.
    let started = tokio::time::Instant::now();
    let summary = h.handle.outcome.await.expect("summary");
    assert_eq!(summary.run_state, RunState::Failed);
    assert_eq!(summary.status, Verdict::Error);
    let reason = summary.reason.unwrap_or_default();
    assert!(
        reason.contains("agent-1") || reason.contains("agent-0"),
        "{reason}"
    );
    assert!(started.elapsed() <= Timeouts::default().ready + Duration::from_secs(1));
    assert_eq!(summary.requests, 0);
}

#[actix::test]
async fn a_lost_agent_degrades_the_run_and_keeps_the_others_results() {
    tokio::time::pause();
    let mut h = start_run(plan(2, 2));
    let s0 = h.start_all(2).await;
    h.frame(1, 0, s0, 7, 1_000, false).await;
    h.say(1, AgentStatus::Lost).await;
    for k in 0..3u64 {
        h.frame(0, k, s0 + k, 10, 1_000, k == 2).await;
    }
    h.say(
        0,
        AgentStatus::Finished {
            frames: 3,
            requests: 30,
        },
    )
    .await;
    let summary = h.handle.outcome.await.expect("summary");
    assert_eq!(summary.run_state, RunState::Degraded);
    assert_eq!(summary.status, Verdict::Error);
    assert_eq!(summary.lost_agents, vec!["agent-1".to_string()]);
    assert_eq!(
        summary.requests, 37,
        "the lost agent's frames before the loss are kept"
    );
    assert!(summary.reason.unwrap_or_default().contains("agent-1"));
}

#[actix::test]
async fn agents_that_never_finish_are_stopped_then_declared_lost() {
    tokio::time::pause();
    let mut h = start_run(plan(1, 2));
    let _ = h.start_all(1).await;
    // Heartbeats keep the agent alive, but it never finishes.
    let beat = {
        let addr = h.handle.addr.clone();
        actix::spawn(async move {
            loop {
                let msg = StatusMessage {
                    version: 1,
                    agent: agent(0),
                    sent_ms: 0,
                    seq: 0,
                    status: AgentStatus::Heartbeat { vus: 1 },
                };
                if addr.send(AgentInbound::Status(msg)).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let AgentCommand::Stop { graceful_ms } = h.next_command().await else {
        panic!("after the planned end, agents are told to stop")
    };
    assert_eq!(graceful_ms, 2_000);
    let summary = h.handle.outcome.await.expect("summary");
    beat.abort();
    assert_eq!(
        summary.run_state,
        RunState::Failed,
        "its only agent was lost"
    );
    assert!(summary.reason.unwrap_or_default().contains("agent"));
}

#[actix::test]
async fn a_cancelled_run_stops_its_agents() {
    tokio::time::pause();
    let mut h = start_run(plan(1, 60));
    let s0 = h.start_all(1).await;
    h.handle
        .addr
        .send(Cancel {
            reason: "test".into(),
        })
        .await
        .expect("alive");
    assert!(matches!(h.next_command().await, AgentCommand::Stop { .. }));
    h.frame(0, 0, s0, 5, 1_000, true).await;
    h.say(
        0,
        AgentStatus::Finished {
            frames: 1,
            requests: 5,
        },
    )
    .await;
    let summary = h.handle.outcome.await.expect("summary");
    assert_eq!(summary.run_state, RunState::Cancelled);
    assert_eq!(summary.requests, 5);
}

/// Agent `i` sends a frame (10 requests) and a heartbeat every second from second `s0` on, stamped
/// with their send times, until aborted; the counter says how many frames it sent.
fn feed(
    h: &Harness,
    i: u32,
    s0: u64,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<std::sync::atomic::AtomicU64>,
) {
    use std::sync::atomic::Ordering;
    let addr = h.handle.addr.clone();
    let run = h.run.clone();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    let clock = herd_protocol::clock::Clock::new();
    let task = actix::spawn(async move {
        for k in 0.. {
            let mut frame = frame_of(&run, i, k, s0 + k, 10, 1_000, false);
            frame.sent_ms = clock.unix_ms();
            let msg = StatusMessage::new(agent(i), AgentStatus::Heartbeat { vus: 1 })
                .sent(clock.unix_ms(), 100 + k);
            if addr
                .send(AgentInbound::Frame(Box::new(frame)))
                .await
                .is_err()
                || addr.send(AgentInbound::Status(msg)).await.is_err()
            {
                break;
            }
            counter.store(k + 1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    (task, sent)
}

/// Stops a [`feed`] and finishes its agent with a final frame (10 requests more).
async fn finish_feed(
    h: &Harness,
    i: u32,
    s0: u64,
    (task, sent): (
        tokio::task::JoinHandle<()>,
        Arc<std::sync::atomic::AtomicU64>,
    ),
) -> u64 {
    task.abort();
    let _ = task.await;
    let k = sent.load(std::sync::atomic::Ordering::SeqCst);
    h.frame(i, k, s0 + k, 10, 1_000, true).await;
    h.say(
        i,
        AgentStatus::Finished {
            frames: k + 1,
            requests: 10 * (k + 1),
        },
    )
    .await;
    10 * (k + 1)
}

fn lost_now(h: &Harness) -> Vec<String> {
    h.handle
        .view
        .borrow()
        .lost_agents
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[actix::test]
async fn a_silent_agent_that_speaks_again_is_taken_back_and_the_run_completes() {
    tokio::time::pause();
    let mut h = start_run(plan(2, 30));
    let s0 = h.start_all(2).await;
    let feed0 = feed(&h, 0, s0);
    h.frame(1, 0, s0, 5, 1_000, false).await;
    // Agent 1 is frozen for 8 s: longer than the 5 s timeout.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(lost_now(&h), vec!["agent-1".to_string()]);
    // It wakes up: its frames of the frozen seconds arrive late, then it finishes.
    h.say(1, AgentStatus::Heartbeat { vus: 1 }).await;
    assert!(
        lost_now(&h).is_empty(),
        "a lost agent that speaks is taken back"
    );
    for k in 1..4u64 {
        h.frame(1, k, s0 + k, 5, 1_000, k == 3).await;
    }
    h.say(
        1,
        AgentStatus::Finished {
            frames: 4,
            requests: 20,
        },
    )
    .await;
    let sent0 = finish_feed(&h, 0, s0, feed0).await;
    let summary = h.handle.outcome.await.expect("summary");
    assert_eq!(
        summary.run_state,
        RunState::Completed,
        "{:?}",
        summary.reason
    );
    assert_eq!(summary.requests, sent0 + 20, "late frames are merged");
    assert!(summary.lost_agents.is_empty());
    let a1 = &summary.agents[1];
    assert!(!a1.lost);
    assert_eq!(a1.gaps.len(), 1, "the episode is recorded: {:?}", a1.gaps);
    let gap = &a1.gaps[0];
    assert!(gap.back_at_s.is_some_and(|b| b > gap.lost_at_s));
    assert!(gap.lost_at_s - gap.silent_from_s > 5.0, "{gap:?}");
    assert!(summary.agents[0].gaps.is_empty());
}

#[actix::test]
async fn an_agent_frozen_until_the_end_is_lost_and_its_data_kept() {
    tokio::time::pause();
    let mut h = start_run(plan(2, 4));
    let s0 = h.start_all(2).await;
    let feed0 = feed(&h, 0, s0);
    h.frame(1, 0, s0, 5, 1_000, false).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let sent0 = finish_feed(&h, 0, s0, feed0).await;
    let summary = h.handle.outcome.await.expect("summary");
    assert_eq!(summary.run_state, RunState::Degraded);
    assert_eq!(summary.lost_agents, vec!["agent-1".to_string()]);
    assert_eq!(summary.requests, sent0 + 5, "what it delivered is kept");
    let a1 = &summary.agents[1];
    assert!(a1.lost);
    assert_eq!(a1.gaps.len(), 1);
    assert_eq!(a1.gaps[0].back_at_s, None);
    assert!(summary.reason.unwrap_or_default().contains("agent-1"));
}

#[actix::test]
async fn a_late_heartbeat_sent_in_time_is_no_silence() {
    tokio::time::pause();
    let mut h = start_run(plan(1, 30));
    let _ = h.start_all(1).await;
    let clock = herd_protocol::clock::Clock::new();
    // Heartbeats sent every second, each handled later than the one before, up to 6 s after it
    // was sent, as by a coordinator falling behind: what counts is when they were sent, and the
    // backlog widens the limit.
    for k in 0..14u64 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let delay = 1_000 * k.min(6);
        let delayed = StatusMessage::new(agent(0), AgentStatus::Heartbeat { vus: 1 })
            .sent(clock.unix_ms().saturating_sub(delay), 10 + k);
        h.handle
            .addr
            .send(AgentInbound::Status(delayed))
            .await
            .expect("alive");
        assert!(lost_now(&h).is_empty(), "a busy pipeline is not a loss");
    }
    h.handle
        .addr
        .send(Cancel {
            reason: "done".into(),
        })
        .await
        .expect("alive");
    assert!(matches!(h.next_command().await, AgentCommand::Stop { .. }));
    h.say(
        0,
        AgentStatus::Finished {
            frames: 0,
            requests: 0,
        },
    )
    .await;
    let summary = h.handle.outcome.await.expect("summary");
    assert!(
        summary.agents[0].gaps.is_empty(),
        "{:?}",
        summary.agents[0].gaps
    );
}

#[actix::test]
async fn the_start_lead_grows_with_the_agents_and_their_messages_delay() {
    tokio::time::pause();
    let mut h = start_run(plan(40, 2));
    let clock = herd_protocol::clock::Clock::new();
    for i in 0..40 {
        // Each ready message took 150 ms to arrive.
        let ready = StatusMessage::new(
            agent(i),
            AgentStatus::Ready {
                pid: i,
                host: "h".into(),
            },
        )
        .sent(clock.unix_ms().saturating_sub(150), 1);
        h.handle
            .addr
            .send(AgentInbound::Status(ready))
            .await
            .expect("alive");
    }
    let now = clock.unix_ms();
    let AgentCommand::Start { start_at_ms, .. } = h.next_command().await else {
        panic!("start")
    };
    let lead = start_at_ms.saturating_sub(now);
    // 200 ms, twice the 150 ms delivery, 3 ms for each of 40 agents.
    assert!((615..=640).contains(&lead), "lead {lead} ms");
    h.handle
        .addr
        .send(Cancel {
            reason: "done".into(),
        })
        .await
        .expect("alive");
}

#[path = "loss_tests.rs"]
mod loss;

#[path = "seconds_tests.rs"]
mod seconds_tests;
