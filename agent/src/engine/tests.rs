//! The controller under paused time: VUs that only think (no I/O), so targets, shares, ramps,
//! stops and the frame sequence can be checked at exact instants.

use super::*;
use crate::recorder::FrameIdentity;
use herd_protocol::clock::Clock;
use herd_protocol::frame::Frame;
use herd_protocol::plan::{Load, Method, Options, Plan, RequestStep, Stage, Step, Think};
use herd_protocol::{AgentId, RunId};
use std::cell::Cell;
use tokio::sync::mpsc;

const S: u64 = 1_700_000_000;

fn plan(stages: Vec<Stage>) -> Plan {
    Plan {
        name: "t".into(),
        target: "http://127.0.0.1:1".into(),
        agents: 3,
        secrets: vec![],
        outputs: vec![],
        regions: vec![],
        hosts: vec![],
        scenarios: vec![],
        scripts: None,
        setup: vec![],
        teardown: vec![],
        load: Load {
            stages,
            ..Load::default()
        },
        vars: vec![],
        feeders: vec![],
        scenario: vec![Step::Request(RequestStep {
            label: "GET /".into(),
            named: false,
            method: Method::Get,
            path: "/".into(),
            headers: vec![],
            body: None,
            body_file: None,
            checks: vec![],
            extract: vec![],
            timeout: None,
            multipart: vec![],
        })],
        thresholds: vec![],
        options: Options {
            timeout: Duration::from_secs(1),
            graceful_stop: Duration::from_millis(500),
            ..Options::default()
        },
    }
}

fn stage(ms: u64, vus: u32) -> Stage {
    Stage {
        duration: Duration::from_millis(ms),
        vus,
    }
}

struct Harness {
    vus: Rc<Cell<u32>>,
    control: mpsc::UnboundedSender<Control>,
    frames: mpsc::UnboundedReceiver<Frame>,
    start: Instant,
}

/// Starts the controller with think-only VUs at Unix time `S` exactly.
fn start(
    local: &tokio::task::LocalSet,
    stages: Vec<Stage>,
    index: u32,
) -> (
    Harness,
    tokio::task::JoinHandle<Result<LoadReport, AgentError>>,
) {
    let now = Instant::now();
    let clock = Clock::with_anchor(now, S * US_PER_SEC);
    let identity = FrameIdentity {
        run: RunId::new("r").expect("valid"),
        agent: AgentId::numbered(index),
    };
    let recorder = Rc::new(std::cell::RefCell::new(Recorder::new(
        identity.clone(),
        vec!["GET /".into()],
        S,
    )));
    let thinker = Plan {
        scenario: vec![Step::Think(Think::fixed(Duration::from_millis(100)))],
        ..plan(stages.clone())
    };
    let program = Program::new(&thinker, &[], 3, index).expect("compiles");
    let shared = Rc::new(Shared::new(
        http::Client::new(&Options::default()).expect("client"),
        program,
        Duration::from_secs(1),
        clock,
        recorder,
        Limits::default(),
    ));
    let spec = LoadSpec {
        plan: plan(stages),
        agent_count: 3,
        agent_index: index,
        start: now,
        clock,
        identity,
        joins_later: false,
    };
    let (control, control_rx) = mpsc::unbounded_channel();
    let (frames_tx, frames) = mpsc::unbounded_channel();
    let vus = Rc::new(Cell::new(0));
    let io = LoadIo {
        control: control_rx,
        frames: frames_tx,
        vus: Rc::clone(&vus),
    };
    let load = spec.plan.load.clone();
    let handle = local.spawn_local(super::drive(vec![(shared, load)], spec, io));
    (
        Harness {
            vus,
            control,
            frames,
            start: now,
        },
        handle,
    )
}

async fn at(h: &Harness, ms: u64) -> u32 {
    tokio::time::sleep_until(h.start + Duration::from_millis(ms)).await;
    h.vus.get()
}

#[tokio::test(start_paused = true)]
async fn vus_follow_this_agents_share_and_frames_have_no_gaps() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            // 0 → 30 VUs over 1 s, hold 1 s; agent 1 of 3 carries a third.
            let (mut h, done) = start(&local, vec![stage(1000, 30), stage(1000, 30)], 1);
            assert_eq!(at(&h, 505).await, 5); // total 15 at 500 ms
            assert_eq!(at(&h, 1005).await, 10);
            assert_eq!(at(&h, 1995).await, 10);
            let report = done.await.expect("joined").expect("ran");
            assert_eq!(h.vus.get(), 0);
            let mut frames = Vec::new();
            while let Ok(f) = h.frames.try_recv() {
                frames.push((f.seq, f.second, f.is_final));
            }
            assert_eq!(
                frames,
                vec![(0, S, false), (1, S + 1, false), (2, S + 2, true)]
            );
            assert_eq!(
                report,
                LoadReport {
                    requests: 0,
                    frames: 3,
                    dropped: 0,
                    end_run: None,
                }
            );
            // Think-only VUs leave at once when the stages end: no graceful wait.
            assert!(Instant::now() - h.start < Duration::from_millis(2100));
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_ramp_moves_the_target_from_where_it_is() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let (h, done) = start(&local, vec![stage(10_000, 30)], 0);
            let at_1s = h.start + Duration::from_secs(1);
            // At 1 s the total is 3; ramp to 63 over 1 s, then end.
            h.control
                .send(Control::Ramp {
                    at: at_1s,
                    stages: RampStages::Vus(vec![stage(1000, 63)]),
                })
                .expect("engine listens");
            assert_eq!(at(&h, 995).await, 1); // share(2, 3, 0)
            assert_eq!(at(&h, 1505).await, 11); // total 33
            done.await.expect("joined").expect("ran");
            assert!(Instant::now() - h.start < Duration::from_millis(2100));
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_reassignment_moves_the_vus_from_its_instant_on() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            // 30 VUs on 3 agents; at 1 s agent 1 is lost and agents 0 and 2 split them: agent 2
            // becomes index 1 of 2 and carries 15.
            let (h, done) = start(&local, vec![stage(0, 30), stage(2000, 30)], 2);
            h.control
                .send(Control::Reassign {
                    at: h.start + Duration::from_secs(1),
                    count: 2,
                    index: Some(1),
                })
                .expect("engine listens");
            assert_eq!(at(&h, 995).await, 10);
            assert_eq!(at(&h, 1005).await, 15);
            // Left out of a later reassignment, it carries nothing.
            h.control
                .send(Control::Reassign {
                    at: h.start + Duration::from_millis(1500),
                    count: 1,
                    index: None,
                })
                .expect("engine listens");
            assert_eq!(at(&h, 1700).await, 0);
            done.await.expect("joined").expect("ran");
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_stop_ends_the_load_early() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let (h, done) = start(&local, vec![stage(60_000, 300)], 2);
            assert!(at(&h, 3000).await > 0);
            h.control
                .send(Control::Stop {
                    graceful: Duration::from_secs(5),
                })
                .expect("engine listens");
            done.await.expect("joined").expect("ran");
            assert!(Instant::now() - h.start < Duration::from_millis(3100));
        })
        .await;
}

/// 100,000 idle VUs must fit in a small machine: what a VU holds while it thinks is its task's
/// future, sized for the largest state it may be in. Requests are boxed (`run_request`) so that
/// the HTTP exchange's state is not part of it.
#[tokio::test]
async fn a_vu_future_stays_under_a_kilobyte() {
    let clock = Clock::with_anchor(Instant::now(), S * US_PER_SEC);
    let identity = FrameIdentity {
        run: RunId::new("r").expect("valid"),
        agent: AgentId::numbered(0),
    };
    let recorder = Rc::new(std::cell::RefCell::new(Recorder::new(
        identity,
        vec!["GET /".into()],
        S,
    )));
    let plan = plan(vec![stage(1000, 1)]);
    let program = Program::new(&plan, &["GET /".to_owned()], 1, 0).expect("compiles");
    let shared = Rc::new(Shared::new(
        http::Client::new(&Options::default()).expect("client"),
        program,
        Duration::from_secs(1),
        clock,
        recorder,
        Limits::default(),
    ));
    let size = std::mem::size_of_val(&vu::run_vu(Rc::clone(&shared), 0));
    assert!(size < 1024, "a VU's future is {size} bytes");
}
