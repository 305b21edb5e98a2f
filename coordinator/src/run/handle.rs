//! Starting a run: [`start`] spawns a new run's actor and hands back a [`RunHandle`], the one
//! thing callers keep of a run (the resume path gives the same handle for a stored run).

use super::actor::RunActor;
use super::spec::{RunDeps, RunSpec};
use super::view::RunView;
use actix::{Actor, Addr};
use herd_protocol::summary::Summary;
use tokio::sync::{oneshot, watch};

/// A running run.
pub struct RunHandle {
    /// The actor, to cancel it.
    pub addr: Addr<RunActor>,
    /// Its observable state.
    pub view: watch::Receiver<RunView>,
    /// Resolves with the summary when the run has ended and is stored.
    pub outcome: oneshot::Receiver<Summary>,
}

/// Starts a run actor on the current actix system.
pub fn start(spec: RunSpec, deps: RunDeps) -> RunHandle {
    let (actor, view, outcome) = RunActor::new(spec, deps);
    RunHandle {
        addr: actor.start(),
        view,
        outcome,
    }
}
