//! At start, the manager carries on the runs that a previous process of this coordinator left
//! unfinished (it crashed, or was killed), before it takes any command: their agents count
//! against the cap, and a test's active run still blocks a second one.
//!
//! Each unfinished run is claimed first ([`crate::store::Store::claim_run`]): a run another live
//! coordinator holds is left to it. A claimed run is read back and handed to a resumed run actor
//! ([`crate::run::resume`]), which ends it as failed, with the reason, if it cannot go on.

use super::Task;
use crate::run::{self, LEASE};
use crate::store::{Claim, RunStateName};

impl Task {
    /// Resumes every unfinished run this coordinator can claim.
    pub(super) async fn resume_unfinished(&mut self) {
        let store = self.deps.store.clone();
        let runs = match store.list_unfinished_runs().await {
            Ok(runs) => runs,
            Err(e) => {
                tracing::error!(error = %e, "cannot list the unfinished runs; none is resumed");
                return;
            }
        };
        let lease = u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX);
        for record in runs {
            let run = record.id.clone();
            let now = self.clock.unix_ms();
            match store.claim_run(&run, &self.deps.owner, now, lease).await {
                Ok(Claim::Granted) => {}
                Ok(Claim::HeldBy { owner, until_ms }) => {
                    tracing::info!(%run, %owner, until_ms, "unfinished run held by another coordinator: left to it");
                    continue;
                }
                Err(e) => {
                    tracing::error!(%run, error = %e, "cannot claim an unfinished run");
                    continue;
                }
            }
            let stored = match run::resume::load(store.as_ref(), record).await {
                Ok(stored) => stored,
                Err(e) => {
                    tracing::error!(%run, error = %e, "cannot read an unfinished run back");
                    continue;
                }
            };
            let plan = match stored.plan() {
                Ok(plan) => plan,
                Err(reason) => {
                    tracing::error!(%run, %reason, "cannot resume a run");
                    let failed = store
                        .set_run_state(&run, RunStateName::Failed, now, Some(reason))
                        .await;
                    if let Err(e) = failed {
                        tracing::error!(%run, error = %e, "cannot record the run's failure");
                    }
                    continue;
                }
            };
            let agents = plan.agents;
            let test = stored.record.test.clone();
            let started = stored.record.start_at_ms.is_some();
            let handle = run::resume::resume(stored, plan, self.config.timeouts, self.deps.clone());
            // The command that started it is not known any more.
            let mut active = self.follow(run.clone(), test, "", handle, started);
            active.agents = agents;
            self.active.insert(run, active);
        }
        self.publish_view();
    }
}
