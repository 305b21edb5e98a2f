//! Resuming a run after its coordinator died, on paused tokio time, against fake boundaries and
//! a real (in-memory) store: the first actor is stopped dead mid-run, a second one is rebuilt
//! from the store and receives what a durable broker would deliver again.

use super::actor::Crash;
use super::*;
use crate::bus::AgentInbound;
use crate::fakes::{FakeBus, FakeLauncher};
use crate::store::Store;
use crate::store::{AgentGap, AgentRecord, Claim, EmbeddedStore, RunRecord, RunStateName};
use herd_protocol::agent::{AgentCommand, AgentCommandMessage, AgentStatus, StatusMessage};
use herd_protocol::clock::Clock;
use herd_protocol::frame::{Frame, Stats};
use herd_protocol::histogram::{new_latency, record_us, EncodedHistogram};
use herd_protocol::plan::Plan;
use herd_protocol::summary::RunState;
use herd_protocol::AgentId;
use herd_protocol::RunId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const OWNER: &str = "coordinator-1";

fn plan(agents: u32, seconds: u64) -> Plan {
    herd_protocol::plan::from_yaml_str(&format!(
        "version: 1\nname: t\ntarget: http://127.0.0.1:1\nagents: {agents}\nload:\n  stages:\n    - {{ duration: {seconds}s, vus: 4 }}\nscenario:\n  - get: /\noptions:\n  graceful_stop: 1s\n"
    ))
    .expect("valid plan")
}

fn run_id() -> RunId {
    RunId::new("r1").expect("valid")
}

/// A message as the broker delivers it (kept, to be delivered again).
#[derive(Clone)]
enum Sent {
    Status(u32, AgentStatus),
    Frame(u32, u64, u64, u64, bool),
}

impl Sent {
    fn inbound(&self) -> AgentInbound {
        match self.clone() {
            Sent::Status(i, status) => AgentInbound::Status(StatusMessage {
                version: 1,
                agent: AgentId::numbered(i),
                sent_ms: 0,
                seq: 0,
                status,
            }),
            Sent::Frame(i, seq, second, requests, is_final) => {
                let mut h = new_latency();
                for k in 0..requests {
                    record_us(&mut h, 1_000 + k);
                }
                let total = Stats {
                    requests,
                    status_codes: [(200u16, requests)].into_iter().collect(),
                    latency: EncodedHistogram::encode(&h),
                    ..Stats::default()
                };
                AgentInbound::Frame(Box::new(Frame {
                    version: 1,
                    run: run_id(),
                    agent: AgentId::numbered(i),
                    seq,
                    second,
                    is_final,
                    vus: 2,
                    steps: [("GET /".to_string(), total.clone())].into_iter().collect(),
                    total,
                    dropped: 0,
                    health: Default::default(),
                    sent_ms: 0,
                }))
            }
        }
    }
}

struct Coordinator {
    handle: RunHandle,
    bus: Arc<FakeBus>,
    commands: mpsc::UnboundedReceiver<AgentCommandMessage>,
    launcher: Arc<FakeLauncher>,
    /// Everything delivered to this coordinator's actor, in order.
    delivered: Vec<Sent>,
}

fn deps(
    store: &Arc<EmbeddedStore>,
) -> (
    RunDeps,
    Arc<FakeBus>,
    mpsc::UnboundedReceiver<AgentCommandMessage>,
    Arc<FakeLauncher>,
) {
    let (bus, commands) = FakeBus::new();
    let bus = Arc::new(bus);
    let launcher = Arc::new(FakeLauncher::default());
    let deps = RunDeps {
        launcher: launcher.clone(),
        bus: bus.clone(),
        store: store.clone(),
        broker_url: "mqtt://fake:1".into(),
        owner: OWNER.into(),
        allowed_targets: None,
        fallback_dir: None,
        outputs: Vec::new(),
    };
    (deps, bus, commands, launcher)
}

impl Coordinator {
    fn start(store: &Arc<EmbeddedStore>, plan: Plan) -> Self {
        let (deps, bus, commands, launcher) = deps(store);
        let handle = start(
            RunSpec {
                run: run_id(),
                test: None,
                plan,
                timeouts: Timeouts::default(),
            },
            deps,
        );
        Self {
            handle,
            bus,
            commands,
            launcher,
            delivered: Vec::new(),
        }
    }

    /// What a restarted manager does: claim the unfinished run, read it back, resume it.
    async fn resume(store: &Arc<EmbeddedStore>, gone: &[u32]) -> Self {
        let (deps, bus, commands, launcher) = deps(store);
        launcher
            .gone
            .lock()
            .expect("lock")
            .extend(gone.iter().map(|&i| AgentId::numbered(i)));
        let unfinished = store.list_unfinished_runs().await.expect("unfinished runs");
        assert_eq!(unfinished.len(), 1);
        let record = unfinished.into_iter().next().expect("one run");
        let claim = store
            .claim_run(&record.id, OWNER, Clock::new().unix_ms(), 30_000)
            .await
            .expect("claim");
        assert_eq!(
            claim,
            Claim::Granted,
            "the same coordinator claims its run back"
        );
        let stored = resume::load(store.as_ref(), record).await.expect("load");
        let plan = stored.plan().expect("stored plan");
        let handle = resume::resume(stored, plan, Timeouts::default(), deps);
        Self {
            handle,
            bus,
            commands,
            launcher,
            delivered: Vec::new(),
        }
    }

    async fn deliver(&mut self, message: Sent) {
        self.handle
            .addr
            .send(message.inbound())
            .await
            .expect("actor alive");
        self.delivered.push(message);
    }

    /// How many delivered messages the run let the bus acknowledge.
    fn acknowledged(&self) -> u64 {
        self.bus
            .acknowledged
            .lock()
            .expect("lock")
            .get(&run_id())
            .copied()
            .unwrap_or(0)
    }

    /// Waits (on paused time) until everything delivered is stored and acknowledged.
    async fn settle(&self) {
        for _ in 0..200 {
            if self.acknowledged() == self.delivered.len() as u64 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "acknowledged {} of {}",
            self.acknowledged(),
            self.delivered.len()
        );
    }

    async fn next_command(&mut self) -> AgentCommand {
        self.commands.recv().await.expect("a command").command
    }
}

#[actix::test]
async fn a_run_resumed_after_a_crash_counts_every_frame_exactly_once() {
    tokio::time::pause();
    let store = Arc::new(EmbeddedStore::in_memory().expect("store"));
    let mut first = Coordinator::start(&store, plan(2, 3));
    for i in 0..2 {
        first
            .deliver(Sent::Status(
                i,
                AgentStatus::Ready {
                    pid: 10 + i,
                    host: "h".into(),
                },
            ))
            .await;
    }
    let AgentCommand::Start { start_at_ms, .. } = first.next_command().await else {
        panic!("the first command is the start")
    };
    let s0 = start_at_ms / 1000;
    for i in 0..2 {
        first
            .deliver(Sent::Status(
                i,
                AgentStatus::Started {
                    at_us: start_at_ms * 1000,
                },
            ))
            .await;
    }
    for (i, seq) in [(0, 0), (1, 0), (0, 1)] {
        first
            .deliver(Sent::Frame(i, seq, s0 + seq, 10 + seq, false))
            .await;
    }
    first.settle().await;
    // One more frame arrives, and the coordinator dies before (or while) storing it.
    first.deliver(Sent::Frame(1, 1, s0 + 1, 11, false)).await;
    first.handle.addr.send(Crash).await.expect("crash");
    assert!(
        (&mut first.handle.outcome).await.is_err(),
        "a dead coordinator reports nothing"
    );
    let acked = first.acknowledged() as usize;
    assert!(acked >= 7, "what was stored was acknowledged ({acked})");

    let mut second = Coordinator::resume(&store, &[]).await;
    // The broker delivers again everything the first coordinator did not acknowledge.
    for message in first.delivered[acked..].iter().cloned() {
        second.deliver(message).await;
    }
    let AgentCommand::Start {
        start_at_ms: again, ..
    } = second.next_command().await
    else {
        panic!("the start is sent again (agents ignore a repeated one)")
    };
    assert_eq!(again, start_at_ms);
    // The rest of the run, with a QoS1 duplicate of a frame the first coordinator stored.
    second.deliver(Sent::Frame(0, 0, s0, 10, false)).await;
    for i in 0..2 {
        second.deliver(Sent::Frame(i, 2, s0 + 2, 12, true)).await;
        second
            .deliver(Sent::Status(
                i,
                AgentStatus::Finished {
                    frames: 3,
                    requests: 33,
                },
            ))
            .await;
    }
    let summary = second.handle.outcome.await.expect("summary");
    assert_eq!(summary.run_state, RunState::Completed);
    assert_eq!(summary.requests, 2 * (10 + 11 + 12), "every frame once");
    assert_eq!(
        summary
            .agents
            .iter()
            .map(|a| a.requests)
            .collect::<Vec<_>>(),
        vec![33, 33]
    );
    assert_eq!(
        summary.agents.iter().map(|a| a.pid).collect::<Vec<_>>(),
        vec![Some(10), Some(11)]
    );
    assert_eq!(summary.seconds.iter().map(|s| s.requests).sum::<u64>(), 66);
    assert!(summary.seconds.iter().all(|s| s.agents_reported == 2));
    let stored = store.list_seconds(&run_id()).await.expect("seconds");
    assert_eq!(stored.iter().map(|s| s.requests).sum::<u64>(), 66);
    let run = store.get_run(&run_id()).await.expect("read").expect("run");
    assert_eq!(
        (run.state, run.start_at_ms),
        (RunStateName::Completed, Some(start_at_ms))
    );
    assert_eq!(
        second.launcher.stopped.lock().expect("lock").as_slice(),
        &[run_id()]
    );
}

/// Stores a run of 2 agents in `state`, its load started `started_s_ago` (if it started).
async fn stored_run(
    store: &EmbeddedStore,
    state: RunStateName,
    started_s_ago: Option<u64>,
    seconds: u64,
) {
    let now = Clock::new().unix_ms();
    store
        .create_run(RunRecord {
            id: run_id(),
            name: "t".into(),
            test: None,
            plan: plan(2, seconds).to_json(),
            state: RunStateName::Launching,
            agents: 2,
            created_at_ms: now,
            updated_at_ms: now,
            reason: None,
            start_at_ms: None,
            ends_at_ms: None,
        })
        .await
        .expect("created");
    store
        .set_run_state(&run_id(), state, now, None)
        .await
        .expect("state");
    if let Some(ago) = started_s_ago {
        store
            .set_run_start(&run_id(), now - ago * 1000)
            .await
            .expect("start");
    }
    for i in 0..2 {
        let record = AgentRecord {
            agent: AgentId::numbered(i),
            handle: Some(format!("fake agent-{i}")),
            pid: Some(10 + i),
            ready: true,
            started_at_us: started_s_ago.map(|ago| (now - ago * 1000) * 1000),
            finished_frames: None,
            finished_at_ms: None,
            lost: None,
            last_error: None,
            // agent-1 was lost once and taken back before the crash.
            gaps: (i == 1)
                .then(|| AgentGap {
                    silent_from_ms: now - 9_000,
                    lost_at_ms: now - 4_000,
                    back_at_ms: Some(now - 3_000),
                    reason: "no message sent for 5s".into(),
                    share: None,
                })
                .into_iter()
                .collect(),
        };
        store.put_agent(&run_id(), record).await.expect("agent");
    }
    store
        .claim_run(&run_id(), "the-crashed-one", 0, 1)
        .await
        .expect("claimed before");
}

#[actix::test]
async fn a_run_that_had_not_started_ends_failed_and_its_agents_are_stopped() {
    tokio::time::pause();
    let store = Arc::new(EmbeddedStore::in_memory().expect("store"));
    stored_run(&store, RunStateName::WaitingReady, None, 5).await;
    let mut second = Coordinator::resume(&store, &[]).await;
    assert!(matches!(
        second.next_command().await,
        AgentCommand::Stop { .. }
    ));
    let summary = second.handle.outcome.await.expect("summary");
    assert_eq!(summary.run_state, RunState::Failed);
    let reason = summary.reason.unwrap_or_default();
    assert!(reason.contains("before the load started"), "{reason}");
    assert_eq!(
        second.launcher.stopped.lock().expect("lock").as_slice(),
        &[run_id()]
    );
    let run = store.get_run(&run_id()).await.expect("read").expect("run");
    assert_eq!(run.state, RunStateName::Failed);
}

#[actix::test]
async fn agents_gone_during_the_restart_are_lost_and_deadlines_follow_the_wall_clock() {
    tokio::time::pause();
    let store = Arc::new(EmbeddedStore::in_memory().expect("store"));
    // Its 5 s of load started 60 s ago: the planned end is long past.
    stored_run(&store, RunStateName::Running, Some(60), 5).await;
    let mut second = Coordinator::resume(&store, &[0, 1]).await;
    assert!(matches!(
        second.next_command().await,
        AgentCommand::Start { .. }
    ));
    let started = tokio::time::Instant::now();
    assert!(
        matches!(second.next_command().await, AgentCommand::Stop { .. }),
        "the stop is due at once"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    let summary = second.handle.outcome.await.expect("summary");
    assert_eq!(summary.run_state, RunState::Failed);
    let reason = summary.reason.unwrap_or_default();
    assert!(reason.contains("every agent was lost"), "{reason}");
    assert_eq!(
        summary.lost_agents,
        vec!["agent-0".to_string(), "agent-1".to_string()]
    );
    // agent-1's gap from before the crash is still reported, before the one that ended it.
    let gaps: Vec<Option<f64>> = summary.agents[1].gaps.iter().map(|g| g.back_at_s).collect();
    assert_eq!(gaps.len(), 2, "{:?}", summary.agents[1]);
    assert!(gaps[0].is_some() && gaps[1].is_none(), "{gaps:?}");
    assert_eq!(summary.agents[0].gaps.len(), 1);
    let agents = store.list_agents(&run_id()).await.expect("agents");
    assert!(
        agents.iter().all(|a| a
            .lost
            .as_deref()
            .is_some_and(|l| l.contains("gone when the coordinator restarted"))),
        "{agents:?}"
    );
}

#[actix::test]
async fn a_ramp_that_moved_the_end_keeps_its_end_after_a_restart() {
    tokio::time::pause();
    let store = Arc::new(EmbeddedStore::in_memory().expect("store"));
    // The plan's 5 s of load started 60 s ago, but a live ramp moved the end to 30 s from now:
    // the agents follow the ramp, and so must the resumed run.
    stored_run(&store, RunStateName::Running, Some(60), 5).await;
    let ends_at_ms = Clock::new().unix_ms() + 30_000;
    store
        .set_run_end(&run_id(), ends_at_ms)
        .await
        .expect("ramp's end");
    let mut second = Coordinator::resume(&store, &[]).await;
    assert!((second.handle.view.borrow().planned_s - 90.0).abs() < 0.5);
    assert!(matches!(
        second.next_command().await,
        AgentCommand::Start { .. }
    ));
    let resumed = tokio::time::Instant::now();
    // The agents are alive and loading: they beat every second until the stop comes.
    let stop = loop {
        tokio::select! {
            command = second.next_command() => break command,
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                for i in 0..2 {
                    second
                        .deliver(Sent::Status(i, AgentStatus::Heartbeat { vus: 2 }))
                        .await;
                }
            }
        }
    };
    assert!(matches!(stop, AgentCommand::Stop { .. }), "{stop:?}");
    // The stop is due after the ramp's end, the graceful stop (1 s) and the drain (5 s); the
    // plan's end passed a minute ago.
    let waited = resumed.elapsed();
    assert!(
        waited > Duration::from_secs(35) && waited < Duration::from_secs(37),
        "{waited:?}"
    );
}

#[actix::test]
async fn a_redistributed_share_stays_with_the_survivors_after_a_restart() {
    tokio::time::pause();
    let store = Arc::new(EmbeddedStore::in_memory().expect("store"));
    stored_run(&store, RunStateName::Running, Some(10), 60).await;
    // Before the crash agent-1 was lost for good and its share moved onto agent-0.
    let now = Clock::new().unix_ms();
    let mut agents = store.list_agents(&run_id()).await.expect("agents");
    let a1 = &mut agents[1];
    a1.lost = Some("connection lost (MQTT last will)".into());
    a1.gaps[0].back_at_ms = None;
    a1.gaps[0].share = Some(crate::store::ShareMove {
        action: "redistribute".into(),
        at_ms: now - 3_700,
        to: vec![AgentId::numbered(0)],
        ..Default::default()
    });
    store.put_agent(&run_id(), a1.clone()).await.expect("agent");
    let mut second = Coordinator::resume(&store, &[]).await;
    let AgentCommand::Start { reassigned, .. } = second.next_command().await else {
        panic!("the start is sent again first")
    };
    assert_eq!(reassigned.len(), 1, "the start lists the move");
    assert_eq!(reassigned[0].at_ms, now - 3_700);
    assert_eq!(
        reassigned[0].lost,
        vec![AgentId::numbered(1)],
        "only the lost agent is named"
    );
    assert_eq!(reassigned[0].agent_count, 1);
    let AgentCommand::Reassign(moved) = second.next_command().await else {
        panic!("the move is sent again, for an agent that missed it")
    };
    assert_eq!(moved, reassigned[0]);
}

/// The start a resumed run sends again carries the plan's secret references and their values
/// resolved again, never `***`; the stored plan holds no value.
#[actix::test]
async fn a_resumed_run_resends_its_secrets_resolved_not_masked() {
    tokio::time::pause();
    std::env::set_var("HERD_RESUME_SECRET_T", "resume-secret-value-63");
    let plan = herd_protocol::plan::from_yaml_str(
        "version: 1\nname: t\ntarget: http://127.0.0.1:1\nagents: 1\nload:\n  stages:\n    - { duration: 3s, vus: 1 }\nsecrets: { T: { env: HERD_RESUME_SECRET_T } }\nscenario:\n  - get: /\n    headers: { Authorization: 'Bearer ${T}' }\n",
    )
    .expect("valid plan");
    let store = Arc::new(EmbeddedStore::in_memory().expect("store"));
    let mut first = Coordinator::start(&store, plan);
    let ready = AgentStatus::Ready {
        pid: 10,
        host: "h".into(),
    };
    first.deliver(Sent::Status(0, ready)).await;
    let AgentCommand::Start { start_at_ms, .. } = first.next_command().await else {
        panic!("the first command is the start")
    };
    let at_us = start_at_ms * 1000;
    first
        .deliver(Sent::Status(0, AgentStatus::Started { at_us }))
        .await;
    first.settle().await;
    first.handle.addr.send(Crash).await.expect("crash");
    let stored = store.get_run(&run_id()).await.expect("read").expect("run");
    let stored_plan = stored.plan.to_string();
    assert!(
        !stored_plan.contains("resume-secret-value-63"),
        "{stored_plan}"
    );
    assert!(stored_plan.contains("Bearer ${T}"), "{stored_plan}");

    let mut second = Coordinator::resume(&store, &[]).await;
    let AgentCommand::Start { plan, secrets, .. } = second.next_command().await else {
        panic!("the start is sent again")
    };
    let header = &plan["scenario"][0]["headers"]["Authorization"];
    assert_eq!(header, "Bearer ${T}", "not masked");
    assert_eq!(
        secrets.get("T").map(String::as_str),
        Some("resume-secret-value-63"),
        "resolved again"
    );
}
