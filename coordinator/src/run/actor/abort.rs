//! Stopping a run whose `abort_on_fail` threshold broke: each second the tick emits is fed to the
//! [`crate::run::watch::ThresholdWatch`]; the first breach while the load runs records the
//! failure (the threshold and the second) and stops the agents at once, gracefully, as a cancel
//! does. The run then ends `failed` with that reason; its summary's verdict is `failed` (a
//! threshold failed, exit code 1), and the breached threshold shows the window's figure.

use super::machine::RunActor;
use crate::aggregate::SecondAggregate;
use crate::run::phase::Phase;
use actix::prelude::*;
use herd_protocol::summary::{RunState, Summary, Verdict};

impl RunActor {
    /// Judges the watched thresholds on a newly emitted second; on a breach, stops the load.
    pub(super) fn watch_second(&mut self, agg: &SecondAggregate, ctx: &mut Context<Self>) {
        if self.phase() != Phase::Running || !self.watch.is_active() {
            return;
        }
        let Some(breach) = self.watch.observe(agg.t, &agg.stats) else {
            return;
        };
        let reason = breach.reason();
        tracing::warn!(run = %self.spec.run, %reason, "stopping the run: a threshold broke");
        if let Some(load) = self.stage.load_mut() {
            load.failure.get_or_insert(reason);
        }
        self.stop_agents(ctx);
    }

    /// The summary with the breach, if there was one: verdict `failed`, and the breached
    /// threshold's figure from its window.
    pub(super) fn with_breach(&self, mut summary: Summary) -> Summary {
        let Some(breach) = self.watch.breach() else {
            return summary;
        };
        if summary.run_state != RunState::Cancelled {
            summary.status = Verdict::Failed;
        }
        if let Some(t) = summary.thresholds.get_mut(breach.index) {
            t.actual = breach.actual;
            t.passed = false;
        }
        summary
    }
}
