//! The agent's life: connect, report ready, wait for the start command and time, run the load
//! while relaying frames, commands and heartbeats, then finish cleanly.
//!
//! This is the only module that knows both sides: it turns MQTT commands into engine
//! [`Control`]s and engine frames into MQTT publishes, so the engine stays testable without a
//! broker and the session stays ignorant of load testing.

use crate::engine::{run_load, Control, LoadIo, LoadSpec};
use crate::error::AgentError;
use crate::recorder::FrameIdentity;
use crate::session::{Events, Session, SessionEvent, TlsOptions};
use herd_protocol::agent::{AgentCommand, AgentCommandMessage, AgentStatus, Reassignment};
use herd_protocol::chunked::Received;
use herd_protocol::clock::Clock;
use herd_protocol::frame::Frame;
use herd_protocol::plan::{self, Plan};
use herd_protocol::roster::Roster;
use herd_protocol::{body_data, feeder_data, topics, wire, AgentId, RunId};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{interval, sleep_until, Interval, MissedTickBehavior};

/// Where to connect and who this agent is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// MQTT broker: `mqtt://127.0.0.1:1883`, `127.0.0.1:1883`, or `mqtts://host:8883` (TLS).
    pub broker: String,
    /// Certificates for an `mqtts://` broker (AWS IoT Core: the agent's X.509 certificate).
    pub tls: TlsOptions,
    /// For a `ws://`/`wss://` broker: sign each connection with SigV4 for this region (AWS IoT
    /// Core with the task role's credentials, no certificate).
    pub sigv4_region: Option<String>,
    /// The run to take part in.
    pub run: RunId,
    /// This agent's id within the run.
    pub agent: AgentId,
    /// This agent's broker user name and password (the embedded broker's per-run credential);
    /// every message is then signed with the password ([`herd_protocol::msgauth`]).
    pub credentials: Option<herd_protocol::msgauth::Credential>,
    /// The run's command key (`HERD_RUN_KEY`, from the coordinator with the credential): every
    /// command must then be sealed with it ([`herd_protocol::cmdseal`]); others are refused.
    pub command_key: Option<herd_protocol::cmdseal::RunKey>,
    /// How long to wait for the start command once ready. An agent whose coordinator died
    /// while launching would otherwise wait for ever (an ECS task billed until someone
    /// notices); past this it reports an error and exits.
    pub start_wait: Duration,
}

/// The default of [`AgentConfig::start_wait`]: far beyond any launch a coordinator waits for
/// (its own launch and ready deadlines are 30 s each by default).
pub const DEFAULT_START_WAIT: Duration = Duration::from_secs(600);

/// What an agent did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentReport {
    /// Requests sent (completed, failed or aborted), as counted in the frames.
    pub requests: u64,
    /// Frames published.
    pub frames: u64,
}

/// How often a heartbeat is published.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Runs one agent to completion: connect, report ready, wait for Start, run the load, publish
/// frames, exit after the last frame is acknowledged.
///
/// `shutdown` (SIGTERM, Ctrl-C) acts as a stop with the plan's graceful period; before the start it
/// ends the agent at once. The returned future is not `Send`: the engine runs on the calling
/// thread (see [`crate::engine`]); drive it with `block_on` on a current-thread runtime.
pub async fn run_agent(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<AgentReport, AgentError> {
    let clock = Clock::new();
    let (session, mut events) = Session::start(&config)?;
    let mut shutdown = pin!(shutdown);
    let mut heartbeat = interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);

    // Connected and subscribed.
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(SessionEvent::Subscribed) => break,
                Some(other) => tracing::debug!(?other, "event before the subscription"),
                None => return Err(session.failure().await),
            },
            () = &mut shutdown => return finish_idle(session).await,
        }
    }
    session.status(AgentStatus::Ready {
        pid: std::process::id(),
        host: hostname(),
    });

    // Waiting for the start command, not for ever.
    let give_up = tokio::time::sleep(config.start_wait);
    let mut give_up = pin!(give_up);
    // Waiting for the start command, keeping the data chunks sent before it.
    let mut chunks = Received::default();
    // The plan's setup, when the coordinator names this agent to run it.
    let once_cx = crate::once::OnceContext::new(
        FrameIdentity {
            run: config.run.clone(),
            agent: config.agent.clone(),
        },
        config.command_key.clone(),
        clock,
    );
    let mut setup = crate::once::OnceRunner::default();
    let start = loop {
        tokio::select! {
            () = &mut give_up => {
                let message = format!(
                    "no start command within {} s of being ready: giving up (is the coordinator gone?)",
                    config.start_wait.as_secs()
                );
                tracing::warn!("{message}");
                session.status(AgentStatus::Error { message: message.clone() });
                let _ = session.close().await;
                return Err(AgentError::NoStart(message));
            }
            event = events.next() => match event {
                Some(SessionEvent::Command(AgentCommandMessage { command, .. })) => match command {
                    start @ AgentCommand::Start { .. } => break start,
                    AgentCommand::DataChunk { crc32, index, data } => {
                        chunks.entry(crc32).or_default().insert(index, data);
                    }
                    AgentCommand::Stop { .. } => return finish_idle(session).await,
                    AgentCommand::Ramp { .. } | AgentCommand::Reassign(_) => {
                        tracing::info!("ramp or reassignment before the start ignored");
                    }
                    AgentCommand::Setup(command) => setup.hear(&once_cx, &session, command),
                    AgentCommand::Teardown(_) => tracing::info!("teardown before the start ignored"),
                },
                Some(SessionEvent::Malformed(message)) => malformed(&session, message),
                Some(SessionEvent::Subscribed) => {}
                None => return Err(session.failure().await),
            },
            status = setup.done(), if setup.is_running() => session.status(status),
            _ = heartbeat.tick() => session.status(AgentStatus::Heartbeat { vus: 0 }),
            () = &mut shutdown => return finish_idle(session).await,
        }
    };
    drop(setup);
    let (plan, spec, mut roster, reassigned) = match prepare(&config, clock, start, chunks) {
        Ok(prepared) => prepared,
        Err(e) => {
            session.status(AgentStatus::Error {
                message: e.to_string(),
            });
            // The error that matters is the plan's; closing is best effort.
            let _ = session.close().await;
            return Err(e);
        }
    };

    // Waiting for the start time; commands that arrive meanwhile go to the engine, after the
    // reassignments made before this agent joined (a replacement follows them too).
    let (control, control_rx) = mpsc::unbounded_channel();
    for moved in reassigned {
        reassign(&control, &mut roster, clock, &config.agent, moved);
    }
    loop {
        tokio::select! {
            () = sleep_until(spec.start) => break,
            event = events.next() => match event {
                Some(SessionEvent::Command(message)) => match message.command {
                    AgentCommand::Stop { .. } => return finish_idle(session).await,
                    command => relay(&session, &control, &mut roster, clock, &config.agent, command),
                },
                Some(SessionEvent::Malformed(message)) => malformed(&session, message),
                Some(SessionEvent::Subscribed) => {}
                None => return Err(session.failure().await),
            },
            _ = heartbeat.tick() => session.status(AgentStatus::Heartbeat { vus: 0 }),
            () = &mut shutdown => return finish_idle(session).await,
        }
    }
    session.status(AgentStatus::Started {
        at_us: clock.now_us(),
    });
    run(
        session,
        events,
        &mut heartbeat,
        shutdown,
        Running {
            plan,
            spec,
            clock,
            control,
            control_rx,
            frames_topic: topics::frames(&config.run, &config.agent),
            agent: config.agent.clone(),
            roster,
            once: once_cx,
        },
    )
    .await
}

struct Running {
    plan: Plan,
    spec: LoadSpec,
    clock: Clock,
    control: mpsc::UnboundedSender<Control>,
    control_rx: mpsc::UnboundedReceiver<Control>,
    frames_topic: String,
    agent: AgentId,
    /// The carriers of the load, as this agent follows their changes.
    roster: Roster,
    /// Who this agent is to the plan's teardown.
    once: crate::once::OnceContext,
}

/// Runs the load, relaying frames out and commands in, then finishes.
async fn run(
    session: Session,
    mut events: Events,
    heartbeat: &mut Interval,
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    running: Running,
) -> Result<AgentReport, AgentError> {
    let Running {
        plan,
        spec,
        clock,
        control,
        control_rx,
        frames_topic,
        agent,
        mut roster,
        once: once_cx,
    } = running;
    let (frames, mut frames_rx) = mpsc::unbounded_channel();
    let vus = Rc::new(Cell::new(0));
    let io = LoadIo {
        control: control_rx,
        frames,
        vus: Rc::clone(&vus),
    };
    let mut load = pin!(run_load(spec, io));
    let mut stopping = false;
    let mut last_frame = None;
    let result = loop {
        tokio::select! {
            result = &mut load => break result,
            Some(frame) = frames_rx.recv() => {
                publish_frame(&session, &frames_topic, clock, frame);
                last_frame = Some(tokio::time::Instant::now());
            }
            event = events.next() => match event {
                Some(SessionEvent::Command(message)) => {
                    relay(&session, &control, &mut roster, clock, &agent, message.command);
                }
                Some(SessionEvent::Malformed(message)) => malformed(&session, message),
                Some(SessionEvent::Subscribed) => {}
                None => return Err(session.failure().await),
            },
            _ = heartbeat.tick() => if heartbeat_due(last_frame, tokio::time::Instant::now()) {
                session.status(AgentStatus::Heartbeat { vus: vus.get() });
            },
            () = &mut shutdown, if !stopping => {
                stopping = true;
                tracing::info!("shutdown requested: stopping the load");
                let _ = control.send(Control::Stop { graceful: plan.options.graceful_stop });
            }
        }
    };
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            session.status(AgentStatus::Error {
                message: e.to_string(),
            });
            let _ = session.close().await;
            return Err(e);
        }
    };
    while let Ok(frame) = frames_rx.try_recv() {
        publish_frame(&session, &frames_topic, clock, frame);
    }
    if let Some(reason) = report.end_run {
        tracing::info!(%reason, "asking the coordinator to end the run");
        session.status(AgentStatus::EndRun { reason });
    }
    session.status(AgentStatus::Finished {
        frames: report.frames,
        requests: report.requests,
    });
    // A plan with teardown keeps the agent until the coordinator names who runs it (not one
    // told to shut down: its shutdown has fired).
    if !plan.teardown.is_empty() && !stopping {
        let wait = plan.options.graceful_stop + crate::once::TEARDOWN_WAIT;
        crate::once::await_teardown(&once_cx, &session, &mut events, shutdown, wait).await;
    }
    session.close().await?;
    Ok(AgentReport {
        requests: report.requests,
        frames: report.frames,
    })
}

/// Publishes a frame stamped with its send time: the coordinator reads the agent's liveness from
/// it, however late the frame reaches it.
/// Whether a heartbeat must go out at `now`: only if no frame did within the last heartbeat
/// interval. A frame tells the coordinator all a heartbeat would (the agent is alive, its VUs), so
/// while frames flow the heartbeats are left out: they were half of all messages the broker
/// carried to the coordinator (at 10,000 agents, 10,000 a second of 20,000).
fn heartbeat_due(last_frame: Option<tokio::time::Instant>, now: tokio::time::Instant) -> bool {
    last_frame.is_none_or(|at| now.saturating_duration_since(at) >= HEARTBEAT)
}

fn publish_frame(session: &Session, topic: &str, clock: Clock, mut frame: Frame) {
    frame.sent_ms = clock.unix_ms();
    frame.health.commands_refused = session.take_refused();
    session.publish(topic.to_string(), wire::encode(&frame));
}

/// What a start command gives an agent: the plan, its load, the carriers at the start, and the
/// reassignments made since (to follow before anything else).
type Prepared = (Plan, LoadSpec, Roster, Vec<Reassignment>);

/// Validates a start command: the plan, and this agent's place in the run (with the
/// reassignments made since the start, for an agent that joins a running load: a replacement
/// is in none of the start's assignments, but in a reassignment it `joined`).
fn prepare(
    config: &AgentConfig,
    clock: Clock,
    start: AgentCommand,
    mut chunks: Received,
) -> Result<Prepared, AgentError> {
    let AgentCommand::Start {
        mut plan,
        assignments,
        agent_count,
        start_at_ms,
        secrets,
        allowed_targets,
        reassigned,
        feeder_data,
        body_data,
        setup_vars,
    } = start
    else {
        return Err(AgentError::Session("expected a start command".into()));
    };
    // Feeder rows sent in chunks go back into the plan first; a chunk missing fails the start.
    if let Some(data) = feeder_data {
        // JSON rows are larger than their cells (quotes, commas, escapes): room for that.
        let limit = plan::MAX_FEEDER_BYTES.saturating_mul(4);
        feeder_data::put_rows(&mut plan, &data, &mut chunks, limit).map_err(AgentError::Feeder)?;
    }
    // Body files sent in chunks become one buffer, which the plan's files are slices of: held
    // once by this agent, sent by every VU.
    let mut plan = match body_data {
        Some(data) => {
            let bodies =
                body_data::unpack_bodies(&data, &mut chunks).map_err(AgentError::BodyData)?;
            plan::from_value_with_body_data(&plan, bodies)?
        }
        None => plan::from_value(&plan)?,
    };
    // The plan's secrets and what its setup extracted (over `vars` of the same name) become
    // variables of every VU.
    crate::command_plan::apply(&mut plan, "start", &secrets, setup_vars, allowed_targets)?;
    let joined = || {
        reassigned
            .iter()
            .flat_map(|r| &r.joined)
            .find(|j| j.agent == config.agent)
            .map(|j| j.slot)
    };
    let (index, joins_later) =
        match herd_protocol::agent::agent_index(&assignments, agent_count, &config.agent) {
            Some(index) => (Some(index), false),
            None => (joined(), true),
        };
    let index = index.ok_or_else(|| AgentError::NotAssigned {
        agent: config.agent.to_string(),
        assigned: if assignments.is_empty() {
            format!("agent-0 … agent-{}", agent_count.saturating_sub(1))
        } else {
            assignments
                .keys()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        },
    })?;
    if index >= agent_count {
        return Err(AgentError::BadIndex {
            agent: config.agent.to_string(),
            index,
            count: agent_count,
        });
    }
    let spec = LoadSpec {
        plan: plan.clone(),
        agent_count,
        agent_index: index,
        start: clock.instant_at_ms(start_at_ms),
        clock,
        identity: FrameIdentity {
            run: config.run.clone(),
            agent: config.agent.clone(),
        },
        joins_later,
    };
    let roster = Roster::from_start(&assignments, agent_count);
    Ok((plan, spec, roster, reassigned))
}

/// Follows a reassignment: the engine gets this agent's place after each change it made apply
/// (the roster waits for a missing earlier one, and ignores a repeat).
fn reassign(
    control: &mpsc::UnboundedSender<Control>,
    roster: &mut Roster,
    clock: Clock,
    agent: &AgentId,
    moved: Reassignment,
) {
    for placed in roster.hear(moved, agent) {
        let _ = control.send(Control::Reassign {
            at: clock.instant_at_ms(placed.at_ms),
            count: placed.count,
            index: placed.index,
        });
    }
}

/// Passes a ramp or stop to the engine; a repeated start is ignored (commands are at-least-once).
fn relay(
    session: &Session,
    control: &mpsc::UnboundedSender<Control>,
    roster: &mut Roster,
    clock: Clock,
    agent: &AgentId,
    command: AgentCommand,
) {
    let message = match command {
        AgentCommand::Start { .. } | AgentCommand::DataChunk { .. } => {
            tracing::info!("repeated start command (or its data) ignored");
            return;
        }
        AgentCommand::Setup(_) | AgentCommand::Teardown(_) => {
            tracing::info!("setup or teardown while the load runs ignored");
            return;
        }
        AgentCommand::Reassign(moved) => {
            reassign(control, roster, clock, agent, moved);
            return;
        }
        AgentCommand::Stop { graceful_ms } => Control::Stop {
            graceful: Duration::from_millis(graceful_ms),
        },
        AgentCommand::Ramp { at_ms, stages } => match plan::ramp_from_value(&stages) {
            Ok(stages) => Control::Ramp {
                at: clock.instant_at_ms(at_ms),
                stages,
            },
            Err(e) => {
                malformed(session, format!("invalid ramp stages:\n{e}"));
                return;
            }
        },
    };
    tracing::debug!(?message, "relaying command");
    // The engine only drops its receiver when it has finished; then the command is moot.
    let _ = control.send(message);
}

/// A command that cannot be understood is reported, and the agent carries on.
fn malformed(session: &Session, message: String) {
    tracing::warn!(%message, "bad command");
    session.status(AgentStatus::Error { message });
}

/// Ends an agent that never started its load.
async fn finish_idle(session: Session) -> Result<AgentReport, AgentError> {
    session.status(AgentStatus::Finished {
        frames: 0,
        requests: 0,
    });
    session.close().await?;
    Ok(AgentReport::default())
}

/// This host's name, for the ready message.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_are_left_out_while_frames_flow() {
        let t0 = tokio::time::Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert!(heartbeat_due(None, t0), "before any frame");
        // A frame every second, heartbeats ticking in between: none due.
        for second in 0..5 {
            assert!(!heartbeat_due(
                Some(ms(second * 1000)),
                ms(second * 1000 + 500)
            ));
            assert!(!heartbeat_due(
                Some(ms(second * 1000)),
                ms(second * 1000 + 999)
            ));
        }
        // Frames stopped (no VUs, a stalled engine): the heartbeats are back within a second.
        assert!(heartbeat_due(Some(ms(4000)), ms(5000)));
        assert!(heartbeat_due(Some(ms(4000)), ms(9000)));
    }
}
