//! A live ramp: new stages for a running load, sent to every agent with one absolute start time.
//!
//! The stages must suit the run's model (VU stages for a closed-model run, rate stages for an
//! open-model one); agents ramp from wherever the load is at that instant, so they switch
//! together and keep splitting the load exactly. The run's deadline and planned duration move to
//! the new end, which is stored ([`crate::store::Store::set_run_end`]) before the agents hear of
//! the ramp, so a coordinator that restarts mid-run re-arms the ramp's end, as the agents follow
//! the ramp. The stages themselves are not stored: the agents hold them.

use super::machine::RunActor;
use super::stage::Stage;
use actix::prelude::*;
use herd_protocol::agent::AgentCommand;
use herd_protocol::plan::RampStages;
use std::time::Duration;
use tokio::time::Instant;

/// How far ahead of now a ramp begins: time for the command to reach every agent.
const LEAD: Duration = Duration::from_millis(500);

/// Gives a running load new stages from a moment just ahead.
#[derive(Debug, Message)]
#[rtype(result = "Result<Ramped, RampRefused>")]
pub struct Ramp {
    /// The new stages (already validated).
    pub stages: RampStages,
}

/// When a ramp takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ramped {
    /// When every agent begins the new stages (ms since the Unix epoch).
    pub at_ms: u64,
    /// When the load now ends (ms since the Unix epoch).
    pub ends_at_ms: u64,
}

/// Why a ramp was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RampRefused {
    /// The stages are of the other model.
    WrongModel(&'static str),
    /// The load is not running (not started yet, stopping, or over).
    NotRunning(&'static str),
}

impl Handler<Ramp> for RunActor {
    type Result = Result<Ramped, RampRefused>;

    fn handle(&mut self, msg: Ramp, ctx: &mut Context<Self>) -> Self::Result {
        if self.spec.plan.has_scenarios() {
            return Err(RampRefused::WrongModel(
                "this run has several scenarios, each with its own load: a live ramp moves one \
                 load, so it cannot ramp this run",
            ));
        }
        let open = self.spec.plan.load.arrival.is_some();
        match (&msg.stages, open) {
            (RampStages::Vus(_), true) => {
                return Err(RampRefused::WrongModel(
                    "this run follows an arrival rate: give stages of {duration, rps}",
                ))
            }
            (RampStages::Rate(_), false) => {
                return Err(RampRefused::WrongModel(
                    "this run has virtual users: give stages of {duration, vus}",
                ))
            }
            _ => {}
        }
        let start_at_ms = match &self.stage {
            Stage::Running(load) if load.cancelled.is_none() => load.start_at_ms,
            _ => return Err(RampRefused::NotRunning(self.phase().as_str())),
        };
        let now_ms = self.clock.unix_ms();
        let at_ms = (now_ms + LEAD.as_millis() as u64).max(start_at_ms);
        let ends_at_ms = at_ms + msg.stages.duration().as_millis() as u64;
        tracing::info!(run = %self.spec.run, at_ms, ends_at_ms, "live ramp");
        self.load_ends_at(start_at_ms, ends_at_ms);
        // The new end is stored before any agent hears of the ramp (as the start is): a
        // coordinator that restarts after the ramp went out re-arms the ramp's end, not the
        // plan's. A failed write does not hold the ramp back; it costs only that, on a restart.
        let command = AgentCommand::Ramp {
            at_ms,
            stages: msg.stages.to_json(),
        };
        let store = self.deps.store.clone();
        let run = self.spec.run.clone();
        ctx.spawn(
            async move { store.set_run_end(&run, ends_at_ms).await }
                .into_actor(self)
                .map(move |stored, act, ctx| {
                    if let Err(e) = stored {
                        tracing::warn!(run = %act.spec.run, error = %e, "cannot record the ramp's end; a restarted coordinator would follow the plan's");
                    }
                    if matches!(&act.stage, Stage::Running(load) if load.cancelled.is_none()) {
                        act.send(command, ctx);
                    }
                }),
        );
        self.deadline = Instant::now()
            + Duration::from_millis(ends_at_ms.saturating_sub(now_ms))
            + self.spec.plan.options.graceful_stop
            + self.spec.timeouts.drain;
        Ok(Ramped { at_ms, ends_at_ms })
    }
}

impl RunActor {
    /// The load that started at `start_at_ms` now ends at `ends_at_ms` (a live ramp, or a stored
    /// one on resume): the planned duration the view shows follows. (The deadline is the
    /// caller's: a ramp moves it at once, a resumed run arms it when it takes up its phase.)
    pub(super) fn load_ends_at(&self, start_at_ms: u64, ends_at_ms: u64) {
        let planned_s = ends_at_ms.saturating_sub(start_at_ms) as f64 / 1000.0;
        self.view.send_modify(|v| v.planned_s = planned_s);
    }
}
