//! The manager against fake boundaries (a launcher that starts nothing, a bus that keeps what the
//! run actors register): the cross-run rules and the events it turns run facts into.

use super::*;
use crate::bus::AgentInbound;
use crate::events::LocalEvents;
use crate::fakes::{FakeBus, FakeLauncher};
use crate::store::{EmbeddedStore, Store};
use herd_protocol::agent::{AgentCommand, AgentStatus, StatusMessage};
use herd_protocol::event::EventMessage;
use herd_protocol::AgentId;
use serde_json::{json, Value};
use tokio::sync::broadcast;

struct Harness {
    manager: Manager,
    store: Arc<EmbeddedStore>,
    sink: Arc<LocalEvents>,
    bus: Arc<FakeBus>,
    commands: mpsc::UnboundedReceiver<herd_protocol::agent::AgentCommandMessage>,
    events: broadcast::Receiver<EventMessage>,
}

fn harness(max_agents: u32) -> Harness {
    let (bus, commands) = FakeBus::new();
    let bus = Arc::new(bus);
    let store = Arc::new(EmbeddedStore::in_memory().expect("store"));
    let deps = RunDeps {
        launcher: Arc::new(FakeLauncher::default()),
        bus: bus.clone(),
        store: store.clone(),
        broker_url: "mqtt://fake:1".into(),
        owner: "test-coordinator".into(),
        allowed_targets: None,
        fallback_dir: None,
        outputs: Vec::new(),
    };
    let sink = Arc::new(LocalEvents::new());
    let events = sink.subscribe();
    let manager = Manager::start(
        ManagerConfig {
            max_agents,
            timeouts: Timeouts::default(),
        },
        deps,
        sink.clone(),
    );
    Harness {
        manager,
        store,
        sink,
        bus,
        commands,
        events,
    }
}

fn plan(agents: u32) -> Value {
    json!({"version": 1, "name": "t", "target": "http://127.0.0.1:1", "agents": agents,
           "load": {"stages": [{"duration": "30s", "vus": 2}]}, "scenario": [{"get": "/"}]})
}

fn command(id: &str, body: Value) -> CommandMessage {
    let mut body = body;
    body["id"] = id.into();
    serde_json::from_value(body).expect("a valid command")
}

fn run_id(reply: &Reply) -> RunId {
    match reply {
        Reply::RunStarted { run_id, .. } => RunId::new(run_id).expect("run id"),
        other => panic!("not a started run: {other:?}"),
    }
}

#[actix::test]
async fn a_start_beyond_the_agent_cap_is_refused_naming_the_agents_in_use() {
    let h = harness(3);
    let first = command("c1", json!({"type": "start_run", "plan": plan(2)}));
    h.manager.execute(first).await.expect("within the cap");
    let second = command("c2", json!({"type": "start_run", "plan": plan(2)}));
    let refused = h.manager.execute(second).await.expect_err("over the cap");
    assert_eq!(refused.code, Code::Capacity, "{}", refused.message);
    assert!(refused.message.contains('2'), "{}", refused.message);
    let fits = command("c3", json!({"type": "start_run", "plan": plan(1)}));
    h.manager.execute(fits).await.expect("exactly at the cap");
    assert_eq!(h.manager.view().agents_in_use, 3);
}

#[actix::test]
async fn a_second_run_of_a_test_is_refused_unless_concurrency_is_asked_for() {
    let h = harness(10);
    let create = json!({"type": "create_test", "test_id": "t", "name": "t", "plan": plan(1)});
    h.manager
        .execute(command("c0", create))
        .await
        .expect("created");
    let start = |id: &str, allow: bool| {
        command(
            id,
            json!({"type": "start_run", "test_id": "t", "allow_concurrent": allow}),
        )
    };
    h.manager
        .execute(start("c1", false))
        .await
        .expect("first run");
    let refused = h
        .manager
        .execute(start("c2", false))
        .await
        .expect_err("second");
    assert_eq!(refused.code, Code::Conflict, "{}", refused.message);
    h.manager
        .execute(start("c3", true))
        .await
        .expect("asked for concurrency");
    assert_eq!(h.manager.view().active_runs, 2);
}

#[actix::test]
async fn a_repeated_command_id_gets_its_first_reply_and_starts_nothing() {
    let h = harness(10);
    let start = || command("same", json!({"type": "start_run", "plan": plan(1)}));
    let first = h.manager.execute(start()).await.expect("started");
    let again = h.manager.execute(start()).await.expect("repeated");
    assert_eq!(first, again);
    let view = h.manager.view();
    assert_eq!((view.active_runs, view.commands_repeated), (1, 1));
}

#[actix::test]
async fn an_agent_lost_is_announced_when_it_happens_not_at_the_end() {
    let mut h = harness(10);
    let started = h
        .manager
        .execute(command("c1", json!({"type": "start_run", "plan": plan(2)})))
        .await
        .expect("started");
    let run = run_id(&started);
    let say = |i: u32, status: AgentStatus| {
        let to = h.bus.runs.lock().expect("lock").get(&run).cloned();
        async move {
            let message = StatusMessage {
                version: 1,
                agent: AgentId::numbered(i),
                sent_ms: 0,
                seq: 0,
                status,
            };
            to.expect("the run registered on the bus")
                .send(AgentInbound::Status(message))
                .expect("actor alive");
        }
    };
    // Wait for the actor to register on the bus, then make both agents ready.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !h.bus.runs.lock().expect("lock").contains_key(&run) {
        assert!(tokio::time::Instant::now() < deadline, "never registered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for i in 0..2 {
        let ready = AgentStatus::Ready {
            pid: 1 + i,
            host: "h".into(),
        };
        say(i, ready).await;
    }
    loop {
        let sent = tokio::time::timeout(Duration::from_secs(5), h.commands.recv())
            .await
            .expect("a start command")
            .expect("bus open");
        if matches!(sent.command, AgentCommand::Start { .. }) {
            break;
        }
    }
    say(1, AgentStatus::Lost).await;
    let lost = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let e = h.events.recv().await.expect("events");
            if let Event::AgentLost { run, agent } = e.event {
                return (run, agent);
            }
        }
    })
    .await
    .expect("agent.lost while the run goes on");
    assert_eq!(lost, (run.to_string(), "agent-1".to_string()));
    assert!(
        h.manager.watch(run).await.is_some(),
        "the run is still active"
    );
}

#[actix::test]
async fn a_cron_schedule_fires_on_time_through_the_scheduler() {
    // Paused tokio time drives both the scheduler's clock and the manager's: a whole minute passes
    // in an instant, and the fire time is still checked to the scheduler's tick.
    tokio::time::pause();
    let mut h = harness(10);
    let create = json!({"type": "create_test", "test_id": "cron", "name": "cron", "plan": plan(1),
        "schedule": {"kind": "cron", "expr": "* * * * *", "tz": "UTC"}});
    h.manager
        .execute(command("c0", create))
        .await
        .expect("created");
    let clock = herd_protocol::clock::Clock::new();
    let due = h
        .store
        .get_test("cron")
        .await
        .expect("store")
        .and_then(|t| t.next_fire_ms)
        .expect("a cron test has a next fire time");
    assert!(
        due > clock.unix_ms() && due <= clock.unix_ms() + 60_000,
        "next minute: {due}"
    );
    assert_eq!(due % 60_000, 0, "every-minute cron fires on the minute");
    let (stop, stopped) = oneshot::channel::<()>();
    let scheduler = actix::spawn(crate::scheduler::task::run(
        h.store.clone(),
        h.manager.clone(),
        h.sink.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    let fired = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let event = h.events.recv().await.expect("events");
            if matches!(event.event, herd_protocol::event::Event::RunCreated { .. }) {
                break clock.unix_ms();
            }
        }
    });
    let fired_at = fired
        .await
        .expect("the schedule fired within two (virtual) minutes");
    assert!(
        fired_at >= due && fired_at <= due + crate::scheduler::TICK.as_millis() as u64 + 50,
        "due {due}, fired {fired_at}"
    );
    let next = h
        .store
        .get_test("cron")
        .await
        .expect("store")
        .and_then(|t| t.next_fire_ms);
    assert_eq!(
        next,
        Some(due + 60_000),
        "the schedule moved on to the next minute"
    );
    let _ = stop.send(());
    let _ = scheduler.await;
}

#[actix::test]
async fn a_shutdown_lets_active_runs_finish_before_it_cancels_them() {
    tokio::time::pause();
    let mut h = harness(10);
    let started = h
        .manager
        .execute(command("c1", json!({"type": "start_run", "plan": plan(1)})))
        .await
        .expect("started");
    let run = run_id(&started);
    while !h.bus.runs.lock().expect("lock").contains_key(&run) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The agent stays alive (heartbeats) but never gets ready: the run is still active when the
    // shutdown begins, and only the shutdown can end it before its ready deadline (30 s).
    let to = h
        .bus
        .runs
        .lock()
        .expect("lock")
        .get(&run)
        .cloned()
        .expect("registered");
    let beat = actix::spawn(async move {
        loop {
            let message = StatusMessage {
                version: 1,
                agent: AgentId::numbered(0),
                sent_ms: 0,
                seq: 0,
                status: AgentStatus::Heartbeat { vus: 0 },
            };
            if to.send(AgentInbound::Status(message)).is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let limit = Duration::from_secs(40);
    let began = tokio::time::Instant::now();
    let manager = h.manager.clone();
    let shutdown = actix::spawn(async move { manager.shutdown(limit).await });
    let cancelled_after = tokio::time::timeout(limit, async {
        loop {
            let event = h.events.recv().await.expect("events");
            if matches!(
                event.event,
                herd_protocol::event::Event::RunCancelled { .. }
            ) {
                break began.elapsed();
            }
        }
    })
    .await
    .expect("the run is cancelled within the limit");
    let finish_window = limit - CANCEL_MARGIN;
    assert!(
        cancelled_after >= finish_window
            && cancelled_after < finish_window + Duration::from_secs(1),
        "cancelled after {cancelled_after:?}; runs may finish on their own for {finish_window:?}"
    );
    shutdown.await.expect("shutdown returns");
    beat.abort();
    assert_eq!(h.manager.view().active_runs, 0);
}
