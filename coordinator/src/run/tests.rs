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
        let msg = StatusMessage {
            version: 1,
            agent: agent(i),
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
        let frame = Frame {
            version: 1,
            run: self.run.clone(),
            agent: agent(i),
            seq,
            second,
            is_final,
            vus: 1,
            steps: [("GET /".to_string(), total.clone())].into_iter().collect(),
            dropped: 0,
            health: Default::default(),
            total,
        };
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
        assert_eq!(assignments.len() as u32, n);
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
