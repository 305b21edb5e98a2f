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
mod open;
mod schedule;
mod script_step;
mod shared;
mod vu;

pub use load::{Control, LoadIo, LoadSpec, FLUSH_DELAY};
pub use schedule::Schedule;

use crate::error::AgentError;
use crate::http;
use crate::recorder::Recorder;
use crate::scenario::Program;
use herd_protocol::clock::US_PER_SEC;
use herd_protocol::plan::RampStages;
use herd_protocol::split::{self, Parts};
use load::{flush, lag_us, send, ControlFlow};
use shared::{Limits, Shared};
use std::rc::Rc;
use std::time::Duration;
use tokio::time::{sleep_until, Instant, MissedTickBehavior};

/// How often the controller re-evaluates the VU target.
pub const CONTROL_PERIOD: Duration = Duration::from_millis(10);

/// What a finished load did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadReport {
    /// Requests recorded (completed, failed or aborted), each in exactly one frame.
    pub requests: u64,
    /// Frames emitted (`seq` 0..frames).
    pub frames: u64,
    /// Open model: planned arrivals that could not start.
    pub dropped: u64,
}

/// Runs the load to its end (stages over, or stopped), then drains requests in flight within
/// the graceful period and emits the final frame. Waits for `spec.start` first.
pub async fn run_load(spec: LoadSpec, io: LoadIo) -> Result<LoadReport, AgentError> {
    let labels = crate::scenario::recorder_labels(&spec.plan);
    let program = Program::new(&spec.plan, &labels, spec.agent_count, spec.agent_index)?;
    let load = &spec.plan.load;
    let limits = Limits {
        per_vu: load.iterations_per_vu,
        total: load
            .iterations
            .map(|n| split::share(n, spec.agent_count, spec.agent_index)),
    };
    sleep_until(spec.start).await;
    let first_second = spec.clock.now_us() / US_PER_SEC;
    let recorder = Recorder::new(spec.identity.clone(), labels, first_second);
    let shared = Rc::new(Shared::new(
        http::Client::new(&spec.plan.options)?,
        program,
        spec.plan.options.timeout,
        spec.clock,
        recorder,
        limits,
    ));
    let local = tokio::task::LocalSet::new();
    local.run_until(control(shared, spec, io)).await
}

async fn control(
    shared: Rc<Shared>,
    spec: LoadSpec,
    mut io: LoadIo,
) -> Result<LoadReport, AgentError> {
    let mut flow = ControlFlow {
        graceful: None,
        control_open: true,
        next_flush: flush(&shared, &io),
    };
    match spec.plan.load.arrival.clone() {
        Some(arrival) => open::run(&shared, &spec, &mut io, &arrival, &mut flow).await,
        None => closed(&shared, &spec, &mut io, &mut flow).await,
    }

    // Drain: no new requests; wait for those in flight, abort them at the deadline.
    shared.stop();
    let mut deadline = Instant::now() + flow.graceful.unwrap_or(spec.plan.options.graceful_stop);
    while shared.alive() > 0 {
        io.vus.set(shared.alive());
        tokio::select! {
            () = shared.exited.notified() => {}
            () = sleep_until(deadline) => shared.abort_all(),
            () = sleep_until(flow.next_flush) => flow.next_flush = flush(&shared, &io),
            command = io.control.recv(), if flow.control_open => match command {
                Some(Control::Stop { graceful: g }) => deadline = deadline.min(Instant::now() + g),
                Some(Control::Ramp { .. } | Control::Reassign { .. }) => {
                    tracing::info!("ramp or reassignment ignored: the load is stopping");
                }
                None => flow.control_open = false,
            },
        }
    }
    io.vus.set(0);
    let health = shared.health();
    let mut recorder = shared.recorder.borrow_mut();
    let frames = recorder.finish(shared.clock.now_us(), 0, health);
    send(&io, frames);
    Ok(LoadReport {
        requests: recorder.requests(),
        frames: recorder.frames(),
        dropped: recorder.dropped(),
    })
}

/// The closed model: follow the VU profile until it ends, the iterations are done, or a stop
/// arrives.
async fn closed(shared: &Rc<Shared>, spec: &LoadSpec, io: &mut LoadIo, flow: &mut ControlFlow) {
    let mut schedule = Schedule::new(&spec.plan.load);
    let mut tick = tokio::time::interval(CONTROL_PERIOD);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut parts = Parts::new(spec.agent_count, Some(spec.agent_index));
    let max_vus = u64::from(spec.plan.load.max_vus());
    let mut most = parts.most(max_vus);
    loop {
        let elapsed = Instant::now().saturating_duration_since(spec.start);
        if flow.graceful.is_some() || schedule.is_over(elapsed) {
            break;
        }
        // With iteration limits the load ends early: once this agent started its share of the
        // run's iterations and they are over, or every VU it will ever run has run all of its own.
        let all_done = shared.iterations_exhausted()
            || (spec.plan.load.iterations_per_vu.is_some() && u64::from(shared.done()) >= most);
        if all_done && shared.alive() == 0 {
            break;
        }
        let total = u64::from(schedule.total_at(elapsed));
        shared.set_target(u32::try_from(parts.share_at(total, elapsed)).unwrap_or(u32::MAX));
        io.vus.set(shared.alive());
        tokio::select! {
            planned = tick.tick() => {
                let now_us = shared.clock.now_us();
                shared.recorder.borrow_mut().note_lag(now_us, lag_us(planned));
            }
            () = sleep_until(flow.next_flush) => flow.next_flush = flush(shared, io),
            command = io.control.recv(), if flow.control_open => match command {
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
