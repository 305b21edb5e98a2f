//! The open model's controller: plays this agent's part of the plan's arrival schedule.
//!
//! The plan defines one global schedule (arrival `k` when the integral of the rate reaches `k`,
//! see [`Arrival`]); agent `i` of `n` plays arrivals `i, i + n, i + 2n, …`, so the agents' rates
//! add up to the plan's exactly. After a reassignment (a lost agent's share moved) the arrivals
//! planned from its instant on are divided the same way over the new carriers
//! ([`Parts::next_arrival`]). Each arrival is handed to a worker at its planned instant, or
//! queued if the in-flight cap is reached, and measured from that instant. The timer wakes at most
//! once per millisecond; every arrival due by then is handed out at once, with its own planned
//! time, so the rate is exact even above 1000 per second.

use super::load::{lag_us, Control, ControlFlow, LoadSpec};
use super::shared::Shared;
use herd_protocol::plan::{Arrival, RampStages};
use herd_protocol::split::Parts;
use std::rc::Rc;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

/// Runs the arrivals until the schedule ends or a stop arrives.
pub(super) async fn run(
    shared: &Rc<Shared>,
    spec: &LoadSpec,
    control: &mut mpsc::UnboundedReceiver<Control>,
    arrival: &Arrival,
    flow: &mut ControlFlow,
) {
    let mut parts = spec.parts();
    let set_cap = |parts: &Parts| {
        let cap = parts.most(u64::from(arrival.max_in_flight));
        shared.set_cap(u32::try_from(cap).unwrap_or(u32::MAX).max(1));
    };
    set_cap(&parts);
    let mut arrival = arrival.clone();
    let mut end = spec.start + arrival.duration();
    // `k`: the first arrival not handed out yet; `next`: the first of those that is this agent's.
    let mut k = 0;
    let next_of = |k: u64, parts: &Parts, arrival: &Arrival| {
        parts
            .next_arrival(k, |k| arrival.time_of(k))
            .map(|(mine, d)| (mine, spec.start + d))
    };
    let mut next = next_of(k, &parts, &arrival);
    loop {
        let now = Instant::now();
        while let Some((mine, at)) = next.filter(|(_, at)| *at <= now) {
            shared.arrive(at);
            k = mine + 1;
            next = next_of(k, &parts, &arrival);
        }
        flow.crew.note_vus();
        // A `unique` feeder that ran out ends this agent's arrivals (and, by `end_run`, the run).
        let exhausted = shared.program.exhausted().is_some();
        if flow.graceful.is_some() || exhausted || (next.is_none() && now >= end) {
            break;
        }
        let wake = next.map_or(end, |(_, at)| at).min(end.max(now));
        tokio::select! {
            () = sleep_until(wake) => {
                let now_us = shared.clock.now_us();
                shared.recorder.borrow_mut().note_lag(now_us, lag_us(wake));
            }
            () = sleep_until(flow.next_flush) => flow.next_flush = flow.crew.flush(),
            command = control.recv(), if flow.control_open => match command {
                Some(Control::Ramp { at, stages: RampStages::Rate(stages) }) => {
                    // Every agent applies the same ramp to the same schedule, so the split
                    // stays exact; arrivals already handed out keep their planned times.
                    arrival = arrival.ramped(at.saturating_duration_since(spec.start), stages);
                    end = spec.start + arrival.duration();
                    next = next_of(k, &parts, &arrival);
                }
                Some(Control::Reassign { at, count, index }) => {
                    // Every agent hears the same reassignment: the new carriers divide the
                    // arrivals from its instant on; those already handed out stay played.
                    parts.reassign(at.saturating_duration_since(spec.start), count, index);
                    set_cap(&parts);
                    next = next_of(k, &parts, &arrival);
                }
                Some(Control::Ramp { stages: RampStages::Vus(_), .. }) => {
                    tracing::warn!("ramp ignored: it gives VU stages, and this run follows an arrival rate");
                }
                Some(Control::Stop { graceful }) => flow.graceful = Some(graceful),
                None => flow.control_open = false,
            },
        }
    }
    // Arrivals handed out in this last pass (the loop may wake after `end` under load) wait for
    // a worker that was just woken or spawned: let those run and take them first.
    tokio::task::yield_now().await;
    // Arrivals planned before the end that no worker could take will never start.
    shared.drop_backlog();
}
