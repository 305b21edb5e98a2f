//! The load engine: runs one agent's share of a plan and emits a frame per second.
//!
//! It knows nothing of MQTT: commands arrive as [`Control`] values on a channel and frames leave on
//! another, so it can be driven (and tested) directly with [`run_load`].
//!
//! Threading: the engine runs on the caller's thread inside a `tokio::task::LocalSet`. A
//! controller loop (this module) sets the VU target every [`CONTROL_PERIOD`] and flushes frames
//! just after each second boundary; VUs (module `vu`) share its state (module `shared`) through
//! `Rc` without locks.
//! One thread per agent is deliberate: agents scale out by process, and a single thread keeps
//! the per-request bookkeeping free of synchronisation.

mod iteration;
mod load;
mod once;
mod open;
mod parallel;
mod schedule;
mod script_step;
mod shared;
mod vu;

pub use load::{Control, LoadIo, LoadSpec, FLUSH_DELAY};
pub use once::{run_once, OnceOutcome, OnceSpec};
pub use schedule::Schedule;

use crate::error::AgentError;
use crate::http;
use crate::recorder::Recorder;
use crate::scenario::Program;
use herd_protocol::clock::US_PER_SEC;
use herd_protocol::plan::{Load, OnExhausted, RampStages};
use herd_protocol::split;
use load::{lag_us, ControlFlow, Crew};
use shared::{Limits, Shared};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant, MissedTickBehavior};

/// How often the controller re-evaluates the VU target.
pub const CONTROL_PERIOD: Duration = Duration::from_millis(10);

/// What a finished load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Requests recorded (completed, failed or aborted), each in exactly one frame.
    pub requests: u64,
    /// Frames emitted (`seq` 0..frames).
    pub frames: u64,
    /// Open model: planned arrivals that could not start.
    pub dropped: u64,
    /// Why the whole run should end, if this agent says so (a `unique` feeder with
    /// `on_exhausted: end_run` ran out of rows).
    pub end_run: Option<String>,
}

/// Runs the load to its end (stages over, or stopped), then drains requests in flight within
/// the graceful period and emits the final frame. Waits for `spec.start` first. A plan with
/// `scenarios:` runs one controller per scenario, each on its own load and split, all recording
/// into one recorder (so one frame per second).
pub async fn run_load(spec: LoadSpec, io: LoadIo) -> Result<LoadReport, AgentError> {
    let labels = crate::scenario::recorder_labels(&spec.plan);
    let runs = spec.plan.scenario_runs();
    let mut parts = Vec::with_capacity(runs.len());
    for run in &runs {
        let program =
            Program::for_run(&spec.plan, run, &labels, spec.agent_count, spec.agent_index)?;
        let limits = Limits {
            per_vu: run.load.iterations_per_vu,
            total: run
                .load
                .iterations
                .map(|n| split::share(n, spec.agent_count, spec.agent_index))
                .map(|n| if spec.joins_later { 0 } else { n }),
        };
        parts.push((program, limits, run.load.clone()));
    }
    sleep_until(spec.start).await;
    let first_second = spec.clock.now_us() / US_PER_SEC;
    let recorder = Rc::new(RefCell::new(Recorder::new(
        spec.identity.clone(),
        labels,
        first_second,
    )));
    let mut members = Vec::with_capacity(parts.len());
    let mut loads = Vec::with_capacity(parts.len());
    for (program, limits, load) in parts {
        members.push(Rc::new(Shared::new(
            http::Client::for_plan(&spec.plan)?,
            program,
            spec.plan.options.timeout,
            spec.clock,
            Rc::clone(&recorder),
            limits,
        )));
        loads.push(load);
    }
    let local = tokio::task::LocalSet::new();
    local
        .run_until(drive(members.into_iter().zip(loads).collect(), spec, io))
        .await
}

/// Runs every controller (one per scenario, each with its load) to its end, then emits the
/// final frame. Live changes go to every controller: a stop stops them all, a reassignment
/// moves each scenario's share the same way.
async fn drive(
    members: Vec<(Rc<Shared>, Load)>,
    spec: LoadSpec,
    mut io: LoadIo,
) -> Result<LoadReport, AgentError> {
    let crew = Rc::new(Crew::new(
        members.iter().map(|(s, _)| Rc::clone(s)).collect(),
        &io,
    ));
    let mut controls = Vec::with_capacity(members.len());
    if members.len() == 1 {
        let (_, rx) = mpsc::unbounded_channel();
        controls.push(std::mem::replace(&mut io.control, rx));
    } else {
        let mut senders = Vec::with_capacity(members.len());
        for _ in &members {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            controls.push(rx);
        }
        let mut inbound = std::mem::replace(&mut io.control, mpsc::unbounded_channel().1);
        tokio::task::spawn_local(async move {
            while let Some(command) = inbound.recv().await {
                for tx in &senders {
                    // A controller that ended drops its receiver; the others still hear it.
                    let _ = tx.send(command.clone());
                }
            }
        });
    }
    let spec = Rc::new(spec);
    let handles: Vec<_> = members
        .into_iter()
        .zip(controls)
        .map(|((shared, load), control)| {
            let (spec, crew) = (Rc::clone(&spec), Rc::clone(&crew));
            tokio::task::spawn_local(async move {
                control_one(shared, &spec, load, control, &crew).await
            })
        })
        .collect();
    for handle in handles {
        if let Err(e) = handle.await {
            tracing::error!("a load controller ended abnormally: {e}");
        }
    }
    let (requests, frames, dropped) = crew.finish();
    let end_run = crew
        .members
        .iter()
        .find_map(|m| match m.program.exhausted() {
            Some((feeder, OnExhausted::EndRun)) => Some(format!(
                "feeder {feeder} ran out of rows (mode: unique, on_exhausted: end_run)"
            )),
            _ => None,
        });
    Ok(LoadReport {
        requests,
        frames,
        dropped,
        end_run,
    })
}

/// One controller: follows its load (closed or open) until it ends or a stop arrives, then
/// drains its requests in flight within the graceful period.
async fn control_one(
    shared: Rc<Shared>,
    spec: &LoadSpec,
    load: Load,
    mut control: mpsc::UnboundedReceiver<Control>,
    crew: &Rc<Crew>,
) {
    let mut flow = ControlFlow {
        graceful: None,
        control_open: true,
        next_flush: crew.flush(),
        crew: Rc::clone(crew),
    };
    match load.arrival.clone() {
        Some(arrival) => open::run(&shared, spec, &mut control, &arrival, &mut flow).await,
        None => closed(&shared, spec, &load, &mut control, &mut flow).await,
    }

    // Drain: no new requests; wait for those in flight, abort them at the deadline.
    shared.stop();
    let mut deadline = Instant::now() + flow.graceful.unwrap_or(spec.plan.options.graceful_stop);
    while shared.alive() > 0 {
        crew.note_vus();
        tokio::select! {
            () = shared.exited.notified() => {}
            () = sleep_until(deadline) => shared.abort_all(),
            () = sleep_until(flow.next_flush) => flow.next_flush = crew.flush(),
            command = control.recv(), if flow.control_open => match command {
                Some(Control::Stop { graceful: g }) => deadline = deadline.min(Instant::now() + g),
                Some(Control::Ramp { .. } | Control::Reassign { .. }) => {
                    tracing::info!("ramp or reassignment ignored: the load is stopping");
                }
                None => flow.control_open = false,
            },
        }
    }
    crew.note_vus();
}

/// The closed model: follow the VU profile until it ends, the iterations are done, or a stop
/// arrives.
async fn closed(
    shared: &Rc<Shared>,
    spec: &LoadSpec,
    load: &Load,
    control: &mut mpsc::UnboundedReceiver<Control>,
    flow: &mut ControlFlow,
) {
    let mut schedule = Schedule::new(load);
    let mut tick = tokio::time::interval(CONTROL_PERIOD);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut parts = spec.parts();
    let max_vus = u64::from(load.max_vus());
    let mut most = parts.most(max_vus);
    loop {
        let elapsed = Instant::now().saturating_duration_since(spec.start);
        if flow.graceful.is_some() || schedule.is_over(elapsed) {
            break;
        }
        // With iteration limits the load ends early: once this agent started its share of the
        // run's iterations and they are over, or every VU it will ever run has run all of its own.
        let all_done = shared.iterations_exhausted()
            || (load.iterations_per_vu.is_some() && u64::from(shared.done()) >= most);
        // A `unique` feeder that ran out: with `end_run` the load stops now (VUs leave at their
        // next step boundary); with `stop_vu` once every VU has stopped.
        let exhausted = shared.program.exhausted();
        if matches!(exhausted, Some((_, OnExhausted::EndRun))) {
            break;
        }
        if (all_done || exhausted.is_some()) && shared.alive() == 0 {
            break;
        }
        let total = u64::from(schedule.total_at(elapsed));
        shared.set_target(u32::try_from(parts.share_at(total, elapsed)).unwrap_or(u32::MAX));
        flow.crew.note_vus();
        tokio::select! {
            planned = tick.tick() => {
                let now_us = shared.clock.now_us();
                shared.recorder.borrow_mut().note_lag(now_us, lag_us(planned));
            }
            () = sleep_until(flow.next_flush) => flow.next_flush = flow.crew.flush(),
            command = control.recv(), if flow.control_open => match command {
                Some(Control::Ramp { at, stages: RampStages::Vus(stages) }) => {
                    schedule.ramp(at.saturating_duration_since(spec.start), stages);
                }
                Some(Control::Ramp { stages: RampStages::Rate(_), .. }) => {
                    tracing::warn!("ramp ignored: it gives arrival rates, and this run has VUs");
                }
                Some(Control::Reassign { at, count, index }) => {
                    parts.reassign(at.saturating_duration_since(spec.start), count, index);
                    most = parts.most(max_vus);
                }
                Some(Control::Stop { graceful: g }) => flow.graceful = Some(g),
                None => flow.control_open = false,
            },
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_once;
