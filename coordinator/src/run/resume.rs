//! Resuming a run after a restart of the coordinator that drove it.
//!
//! A coordinator that crashes (or is killed with SIGKILL) mid-run leaves behind, in the store,
//! everything the run needs ([`crate::store::resume`]), and its agents running (their processes
//! or tasks do not depend on it). On start, the manager lists the unfinished runs, claims each
//! one, [`load`]s it and [`resume`]s it: a run actor rebuilt from the store that carries on where
//! the old one stopped (see the actor's `resume` module for the steps).
//!
//! Exact totals across the restart rest on three things: a frame is acknowledged to the bus only
//! once the second holding it is stored (so the broker delivers again whatever was not); the
//! rebuilt aggregator knows every `(agent, seq)` already counted (so a frame delivered again is
//! dropped as a duplicate); and the bus keeps messages for the coordinator while it is away (a
//! durable MQTT session on an external broker: the embedded broker dies with the coordinator).

pub use super::stored::{load, StoredRun};

use super::actor::RunActor;
use super::handle::RunHandle;
use super::spec::{RunDeps, RunSpec, Timeouts};
use actix::Actor;
use herd_protocol::plan::Plan;

/// Starts an actor that carries `stored` on, on the current actix system. The caller has claimed
/// the run for `deps.owner`.
pub fn resume(stored: StoredRun, plan: Plan, timeouts: Timeouts, deps: RunDeps) -> RunHandle {
    let spec = RunSpec {
        run: stored.record.id.clone(),
        test: stored.record.test.clone(),
        plan,
        timeouts,
    };
    let (actor, view, outcome) = RunActor::resumed(spec, deps, stored);
    RunHandle {
        addr: actor.start(),
        view,
        outcome,
    }
}
