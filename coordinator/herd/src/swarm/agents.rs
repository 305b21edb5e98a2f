//! The simulated agents: many MQTT sessions in one process, each speaking the agent protocol.
//!
//! Every simulated agent has its own connection (client id, last will), subscribes to its run's
//! command topic, says `ready`, waits for the start command and its absolute start time, says
//! `started`, publishes one numbered frame per wall-clock second (and a heartbeat in each
//! second it sent no frame, as a real agent), and on `stop` publishes its final frame and `finished` with its frame and request counts, then
//! leaves cleanly once the broker has acknowledged everything (so no last will fires). It sends
//! no HTTP: the frames come from a [`Menu`] of realistic seconds. What the bench checks the
//! coordinator against — frames and requests sent, when each agent got the start command, how
//! late each live second reached a listener — is tallied here ([`AgentsReport`]).
//!
//! One task polls each session's event loop; one controller task owns every agent's state and
//! does all publishing, on a 20 ms tick.

use super::connect;
use super::frames::{Menu, Sender};
use super::stats::Distribution;
use herd_protocol::agent::{AgentCommand, AgentCommandMessage, AgentStatus, StatusMessage};
use herd_protocol::broker::BrokerAddr;
use herd_protocol::summary::LiveMessage;
use herd_protocol::{topics, wire, AgentId, RunId};
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, Outgoing, QoS};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// What the simulated agents need to know.
#[derive(Debug, Clone)]
pub struct AgentsConfig {
    /// The broker (plain `mqtt://`).
    pub broker: BrokerAddr,
    /// The run they serve.
    pub run: RunId,
    /// Their ids, as the coordinator launched them.
    pub agents: Vec<AgentId>,
    /// Each agent's broker password (its per-run credential), when the broker wants one: it
    /// logs the agent in and signs its messages ([`herd_protocol::msgauth`]).
    pub passwords: Vec<Option<String>>,
    /// The live listener's credential (the commander's), when the broker wants one.
    pub listener: Option<herd_protocol::msgauth::Credential>,
    /// The run's command key, when the coordinator seals commands ([`herd_protocol::cmdseal`]).
    pub run_key: Option<herd_protocol::cmdseal::RunKey>,
    /// The label of the plan's one step (frames carry it).
    pub step: String,
}

/// What the simulated agents did, for the bench to check the coordinator against.
#[derive(Debug, Clone, Default)]
pub struct AgentsReport {
    /// Distinct frames published (each agent's `seq` 0..n).
    pub frames: u64,
    /// Requests summed over every frame published.
    pub requests: u64,
    /// Agents that said `finished`.
    pub finished: u64,
    /// Agents that got the start command.
    pub started: u64,
    /// Each agent's receipt of the start command after the first agent's, in ms.
    pub start_skew_ms: Distribution,
    /// The start command's size, in bytes.
    pub start_command_bytes: u64,
    /// From the end of each second to its live message reaching a listener, in ms.
    pub live_lag_ms: Distribution,
    /// Live seconds heard.
    pub live_seconds: u64,
    /// From the end of each frame's second to the broker's acknowledgement of it, in ms: how
    /// late the swarm itself (and the broker's intake) delivered, which the live lag includes.
    pub frame_ack_lag_ms: Distribution,
    /// Payload bytes the agents published (frames and status messages).
    pub bytes_published: u64,
    /// Payload bytes the agents received (commands).
    pub bytes_received: u64,
}

/// One session's counters, shared by its event loop task and the controller.
#[derive(Debug, Default)]
struct Link {
    /// QoS1 messages handed to the client.
    queued: AtomicU64,
    /// Of those, acknowledged by the broker.
    acked: AtomicU64,
    /// Leave once everything is acknowledged.
    closing: AtomicBool,
    /// For each message handed to the client and not yet acknowledged, in order: the end of its
    /// second (ms since the epoch) if it is a frame.
    unacked: std::sync::Mutex<VecDeque<Option<u64>>>,
}

/// What the event loop tasks tell the controller.
enum Inbound {
    Subscribed(usize),
    Command(usize, u64, bytes::Bytes),
    Live(u64, bytes::Bytes),
    /// A frame acknowledged by the broker this many ms after its second ended.
    FrameAcked(f64),
}

/// Where an agent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Ready,
    Due(u64),
    Running,
    Done,
}

/// One simulated agent, as the controller sees it.
struct Sim {
    id: AgentId,
    client: AsyncClient,
    link: Arc<Link>,
    status_topic: String,
    frames_topic: String,
    phase: Phase,
    stop: bool,
    status_seq: u64,
    seq: u64,
    next_second: u64,
    requests: u64,
    next_heartbeat_ms: u64,
    /// When it last published a frame (ms since the epoch; 0: never).
    last_frame_ms: u64,
    /// When its share of the load ends (ms since the epoch), as a real agent reads the plan.
    end_ms: u64,
    /// Messages the client could not take yet: topic, payload, and the end of its second (ms)
    /// for a frame.
    backlog: VecDeque<(String, Vec<u8>, Option<u64>)>,
    /// Its broker password: the key its messages are signed with.
    password: Option<String>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Runs the simulated agents until `end` resolves (the bench's run is over), then reports.
pub async fn run(
    config: AgentsConfig,
    end: impl Future<Output = ()>,
) -> Result<AgentsReport, connect::Unsupported> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let command_topic = topics::commands(&config.run);
    let mut sims = Vec::with_capacity(config.agents.len());
    for (index, id) in config.agents.iter().enumerate() {
        let password = config.passwords.get(index).cloned().flatten();
        let (client, eventloop) =
            connect::agent(&config.broker, &config.run, id, password.as_deref())?;
        let link = Arc::new(Link::default());
        tokio::spawn(drive(
            eventloop,
            client.clone(),
            Arc::clone(&link),
            command_topic.clone(),
            index,
            tx.clone(),
        ));
        sims.push(Sim {
            id: id.clone(),
            client,
            link,
            status_topic: topics::status(&config.run, id),
            frames_topic: topics::frames(&config.run, id),
            phase: Phase::Connecting,
            stop: false,
            status_seq: 0,
            seq: 0,
            next_second: 0,
            requests: 0,
            next_heartbeat_ms: 0,
            last_frame_ms: 0,
            end_ms: u64::MAX,
            backlog: VecDeque::new(),
            password,
        });
    }
    let (live_client, live_loop) =
        connect::listener(&config.broker, &config.run, config.listener.as_ref())?;
    tokio::spawn(listen(
        live_loop,
        live_client,
        topics::live(&config.run),
        tx,
    ));
    let mut controller = Controller {
        menu: Menu::new(&config.step),
        run: config.run,
        run_key: config.run_key,
        sims,
        report: AgentsReport::default(),
        receipts: Vec::new(),
        last_command: None,
        lags: Vec::new(),
        acks: Vec::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(end);
    loop {
        tokio::select! {
            Some(message) = rx.recv() => controller.inbound(message),
            _ = tick.tick() => controller.advance(now_us() / 1000),
            () = &mut end => break,
        }
    }
    // Let the last acknowledgements and disconnects go out.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline
        && controller
            .sims
            .iter()
            .any(|s| s.link.acked.load(Ordering::Relaxed) < s.link.queued.load(Ordering::Relaxed))
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(controller.finish())
}

/// Polls one agent's event loop: subscribes after each connection, forwards commands, counts
/// acknowledgements, and disconnects once closing and everything is acknowledged.
async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    link: Arc<Link>,
    command_topic: String,
    index: usize,
    tx: mpsc::UnboundedSender<Inbound>,
) {
    let mut disconnecting = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                let _ = client.try_subscribe(command_topic.clone(), QoS::AtLeastOnce);
            }
            Ok(Event::Incoming(Incoming::SubAck(_))) => {
                let _ = tx.send(Inbound::Subscribed(index));
            }
            Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == command_topic => {
                let _ = tx.send(Inbound::Command(index, now_us(), p.payload));
            }
            Ok(Event::Incoming(Incoming::PubAck(_))) => {
                link.acked.fetch_add(1, Ordering::Relaxed);
                let frame = link
                    .unacked
                    .lock()
                    .ok()
                    .and_then(|mut u| u.pop_front())
                    .flatten();
                if let Some(end_ms) = frame {
                    let lag = (now_us() as f64 / 1000.0 - end_ms as f64).max(0.0);
                    let _ = tx.send(Inbound::FrameAcked(lag));
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                if disconnecting {
                    return;
                }
                tracing::debug!(error = %e, "simulated agent lost the broker; reconnecting");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        if !disconnecting
            && link.closing.load(Ordering::Relaxed)
            && link.acked.load(Ordering::Relaxed) >= link.queued.load(Ordering::Relaxed)
        {
            disconnecting = client.try_disconnect().is_ok();
        }
    }
}

/// Polls the live listener: subscribes after each connection, forwards live messages.
async fn listen(
    mut eventloop: EventLoop,
    client: AsyncClient,
    topic: String,
    tx: mpsc::UnboundedSender<Inbound>,
) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                let _ = client.try_subscribe(topic.clone(), QoS::AtMostOnce);
            }
            Ok(Event::Incoming(Incoming::Publish(p))) => {
                if tx.send(Inbound::Live(now_us(), p.payload)).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Owns every simulated agent's state; see the module docs.
struct Controller {
    menu: Menu,
    run: RunId,
    /// Opens the run's sealed commands.
    run_key: Option<herd_protocol::cmdseal::RunKey>,
    sims: Vec<Sim>,
    report: AgentsReport,
    /// When each agent got the start command (µs since the epoch).
    receipts: Vec<u64>,
    /// The last command decoded, with the plan's duration (ms) if it is a start: every agent
    /// gets the same bytes, decoded once.
    last_command: Option<(bytes::Bytes, AgentCommandMessage, u64)>,
    lags: Vec<f64>,
    /// Frames' [`AgentsReport::frame_ack_lag_ms`].
    acks: Vec<f64>,
}

impl Controller {
    fn inbound(&mut self, message: Inbound) {
        match message {
            Inbound::Subscribed(i) => {
                let sim = &mut self.sims[i];
                if sim.phase == Phase::Connecting {
                    sim.phase = Phase::Ready;
                    sim.next_heartbeat_ms = now_us() / 1000 + 1000;
                    let ready = AgentStatus::Ready {
                        pid: std::process::id(),
                        host: "swarm".into(),
                    };
                    status(sim, ready, &mut self.report);
                }
            }
            Inbound::Command(i, at_us, payload) => {
                self.report.bytes_received += payload.len() as u64;
                let Some((message, duration_ms)) = self.decode(payload) else {
                    return;
                };
                let sim = &mut self.sims[i];
                match message.command {
                    AgentCommand::Start { start_at_ms, .. } => {
                        if matches!(sim.phase, Phase::Connecting | Phase::Ready) {
                            sim.phase = Phase::Due(start_at_ms);
                            sim.end_ms = start_at_ms + duration_ms;
                            sim.next_second = start_at_ms / 1000;
                            self.receipts.push(at_us);
                        }
                    }
                    AgentCommand::Stop { .. } => sim.stop = true,
                    // Ramps and reassignments change no simulated agent's frames: the bench's
                    // load is one VU per agent, and it loses no agent; its plans have no feeders.
                    AgentCommand::Ramp { .. }
                    | AgentCommand::Reassign(_)
                    | AgentCommand::DataChunk { .. }
                    | AgentCommand::Setup(_)
                    | AgentCommand::Teardown(_) => {}
                }
            }
            Inbound::FrameAcked(lag) => self.acks.push(lag),
            Inbound::Live(at_us, payload) => {
                if let Ok(live) = wire::decode::<LiveMessage>(&payload) {
                    self.report.live_seconds += 1;
                    if let Some(end) = live.second_end_ms {
                        self.lags
                            .push((at_us as f64 / 1000.0 - end as f64).max(0.0));
                    }
                }
            }
        }
    }

    /// Decodes a command, reusing the last decoding when the bytes are the same.
    fn decode(&mut self, payload: bytes::Bytes) -> Option<(AgentCommandMessage, u64)> {
        if let Some((bytes, message, duration)) = &self.last_command {
            if *bytes == payload {
                return Some((message.clone(), *duration));
            }
        }
        let opened = match &self.run_key {
            Some(key) => {
                let topic = topics::commands(&self.run);
                match herd_protocol::cmdseal::open(key, &topic, &payload) {
                    Ok(plain) => std::borrow::Cow::Owned(plain),
                    Err(e) => {
                        tracing::warn!(error = %e, "a simulated agent refused a command");
                        return None;
                    }
                }
            }
            None => std::borrow::Cow::Borrowed(&payload[..]),
        };
        match wire::decode::<AgentCommandMessage>(&opened) {
            Ok(message) if message.run == self.run => {
                let mut duration = 0;
                if let AgentCommand::Start { plan, .. } = &message.command {
                    self.report.start_command_bytes = payload.len() as u64;
                    match herd_protocol::plan::from_value(plan) {
                        Ok(plan) => duration = plan.duration().as_millis() as u64,
                        Err(e) => tracing::warn!(error = ?e, "a simulated agent got a bad plan"),
                    }
                }
                self.last_command = Some((payload, message.clone(), duration));
                Some((message, duration))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "a simulated agent got a malformed command");
                None
            }
        }
    }

    /// Everything due by `now_ms`: starts, frames, heartbeats, stops.
    fn advance(&mut self, now_ms: u64) {
        for index in 0..self.sims.len() {
            let sim = &mut self.sims[index];
            retry(sim, &mut self.report);
            if let Phase::Due(at) = sim.phase {
                if now_ms >= at {
                    sim.phase = Phase::Running;
                    status(
                        sim,
                        AgentStatus::Started { at_us: now_us() },
                        &mut self.report,
                    );
                }
            }
            if matches!(sim.phase, Phase::Ready | Phase::Due(_) | Phase::Running)
                && now_ms >= sim.next_heartbeat_ms
            {
                sim.next_heartbeat_ms = now_ms + 1000;
                // As a real agent: no heartbeat while frames flow (`herd_agent::runner`).
                if now_ms.saturating_sub(sim.last_frame_ms) >= 1000 {
                    let vus = u32::from(sim.phase == Phase::Running);
                    status(sim, AgentStatus::Heartbeat { vus }, &mut self.report);
                }
            }
            while self.sims[index].phase == Phase::Running
                && (self.sims[index].next_second + 1) * 1000 <= now_ms
            {
                self.frame(index, now_ms, false);
            }
            let sim = &mut self.sims[index];
            if sim.phase == Phase::Running && now_ms >= sim.end_ms {
                sim.stop = true;
            }
            if sim.stop && sim.phase != Phase::Done && sim.phase != Phase::Connecting {
                if sim.phase == Phase::Running {
                    self.frame(index, now_ms, true);
                }
                let sim = &mut self.sims[index];
                sim.phase = Phase::Done;
                let finished = AgentStatus::Finished {
                    frames: sim.seq,
                    requests: sim.requests,
                };
                status(sim, finished, &mut self.report);
                sim.link.closing.store(true, Ordering::Relaxed);
                self.report.finished += 1;
            }
        }
    }

    fn frame(&mut self, index: usize, now_ms: u64, is_final: bool) {
        let sim = &mut self.sims[index];
        let sender = Sender {
            run: &self.run,
            id: &sim.id,
            index,
        };
        let (payload, requests) =
            self.menu
                .frame(&sender, sim.seq, sim.next_second, is_final, now_ms);
        sim.seq += 1;
        sim.next_second += 1;
        sim.last_frame_ms = now_ms;
        sim.requests += requests;
        self.report.frames += 1;
        self.report.requests += requests;
        let topic = sim.frames_topic.clone();
        let second_end_ms = (sim.next_second) * 1000;
        publish(sim, topic, payload, Some(second_end_ms), &mut self.report);
    }

    fn finish(mut self) -> AgentsReport {
        if let Some(first) = self.receipts.iter().min().copied() {
            let skews: Vec<f64> = self
                .receipts
                .iter()
                .map(|r| (r - first) as f64 / 1000.0)
                .collect();
            self.report.start_skew_ms = Distribution::of(skews);
        }
        self.report.started = self.receipts.len() as u64;
        self.report.live_lag_ms = Distribution::of(std::mem::take(&mut self.lags));
        self.report.frame_ack_lag_ms = Distribution::of(std::mem::take(&mut self.acks));
        self.report
    }
}

/// Publishes a status message of `sim`, stamped and numbered as a real agent's.
fn status(sim: &mut Sim, status: AgentStatus, report: &mut AgentsReport) {
    sim.status_seq += 1;
    let message = StatusMessage::new(sim.id.clone(), status).sent(now_us() / 1000, sim.status_seq);
    let topic = sim.status_topic.clone();
    publish(sim, topic, wire::encode(&message), None, report);
}

/// Queues a QoS1 message, behind any the client could not take yet.
fn publish(
    sim: &mut Sim,
    topic: String,
    payload: Vec<u8>,
    frame_second_end_ms: Option<u64>,
    report: &mut AgentsReport,
) {
    let payload = match &sim.password {
        Some(key) => herd_protocol::msgauth::sign(key, &topic, &payload),
        None => payload,
    };
    report.bytes_published += payload.len() as u64;
    sim.backlog.push_back((topic, payload, frame_second_end_ms));
    retry(sim, report);
}

/// Hands the backlog to the client until its queue is full.
fn retry(sim: &mut Sim, _report: &mut AgentsReport) {
    while let Some((topic, payload, frame)) = sim.backlog.pop_front() {
        // Noted before the client has it: its acknowledgement may come before `try_publish`
        // returns.
        if let Ok(mut unacked) = sim.link.unacked.lock() {
            unacked.push_back(frame);
        }
        match sim
            .client
            .try_publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone())
        {
            Ok(()) => {
                sim.link.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                if let Ok(mut unacked) = sim.link.unacked.lock() {
                    unacked.pop_back();
                }
                sim.backlog.push_front((topic, payload, frame));
                return;
            }
        }
    }
}
