//! The end of a run: its final state and reason, the summary, and storing them before the outcome
//! is reported, so whoever awaits the outcome can read the stored run at once.

use super::machine::{store_state, RunActor};
use super::retry;
use super::seconds::RunSeconds;
use super::stage::{EndCause, Stage};
use crate::run::phase::Phase;
use crate::run::summary::{self, SummaryInput};
use crate::store::RunStateName;
use actix::prelude::*;
use herd_protocol::summary::RunState;
use herd_protocol::summary::{Summary, Verdict};
use herd_protocol::RunId;
use std::path::Path;
use std::time::Duration;

/// How long the end of a run waits for its outputs' last pushes.
const OUTPUTS_LIMIT: Duration = Duration::from_secs(10);

impl RunActor {
    /// The frames that never arrived from agents that are not lost, as `agent seq a..b`, at
    /// most ten of them.
    fn missing_data(&self) -> Vec<String> {
        self.aggregator
            .missing_frames()
            .into_iter()
            .filter(|(agent, _)| self.agents.0.get(agent).is_some_and(|a| a.lost.is_none()))
            .take(10)
            .map(|(agent, seqs)| format!("{agent} seq {}..{}", seqs.start, seqs.end))
            .collect()
    }

    /// Ends the run: flushes the aggregator, stores what changed, builds and stores the summary,
    /// unregisters from the bus (which acknowledges every message the run was delivered), stops
    /// the agents, and only then reports the outcome and stops the actor.
    pub(super) fn finalize(&mut self, cause: EndCause, ctx: &mut Context<Self>) {
        if self.phase().is_over() {
            return;
        }
        let mut ending = self.stage.finish();
        match cause {
            EndCause::Over => {}
            EndCause::Failed(reason) => {
                ending.failure.get_or_insert(reason);
            }
            EndCause::Cancelled(reason) => ending.cancelled = Some(reason),
        }
        for agg in self.aggregator.flush_all() {
            self.emit(agg, false);
        }
        let lost = self.agents.lost();
        if ending.start_at_ms.is_some() && self.agents.0.values().all(|a| a.lost.is_some()) {
            ending
                .failure
                .get_or_insert_with(|| "every agent was lost".into());
        }
        // Data is missing at the end only if an agent stayed lost, or a frame of an agent that
        // finished never came: a loss that was taken back cost nothing.
        let missing = self.missing_data();
        let state = if ending.cancelled.is_some() {
            RunState::Cancelled
        } else if ending.failure.is_some() || ending.start_at_ms.is_none() {
            RunState::Failed
        } else if !lost.is_empty() || !missing.is_empty() {
            RunState::Degraded
        } else {
            RunState::Completed
        };
        let start_at_ms = ending.start_at_ms;
        let ended = ending.ended;
        let reason = ending.failure.or(ending.cancelled).or_else(|| {
            let mut parts: Vec<String> = ended.into_iter().collect();
            if !lost.is_empty() {
                let names: Vec<String> = lost
                    .iter()
                    .take(10)
                    .map(|(id, why)| format!("{id}: {why}"))
                    .collect();
                let more = lost.len().saturating_sub(10);
                let more = if more > 0 {
                    format!("; and {more} more")
                } else {
                    String::new()
                };
                parts.push(format!("agents lost: {}{more}", names.join("; ")));
            }
            if !missing.is_empty() {
                parts.push(format!("frames never delivered: {}", missing.join(", ")));
            }
            let (frames, requests) = self.aggregator.totals().beyond_horizon;
            if frames > 0 {
                parts.push(format!(
                    "{frames} frames ({requests} requests) came more than {} s after their \
                     second: counted in the totals, not in their seconds",
                    crate::aggregate::LATE_HORIZON_S
                ));
            }
            (!parts.is_empty()).then(|| parts.join("; "))
        });
        let end_ms = self
            .agents
            .0
            .values()
            .filter_map(|a| a.finished_at_ms)
            .max()
            .unwrap_or_else(|| self.clock.unix_ms());
        let summary = summary::build(SummaryInput {
            run: &self.spec.run,
            plan: &self.spec.plan,
            state,
            reason,
            totals: self.aggregator.totals(),
            seconds: self.seconds.in_memory(),
            agents: &self.agents,
            end_ms,
            start_at_ms,
            start_lead_ms: self.start_lead_ms,
        });
        let summary = self.with_once(self.with_breach(summary));
        self.publish_view();
        let deps = self.deps.clone();
        let run = self.spec.run.clone();
        let stored = summary;
        let state_name = store_state(Phase::Ended(state)).unwrap_or(RunStateName::Failed);
        let at = self.clock.unix_ms();
        let deadline = tokio::time::Instant::now() + self.spec.timeouts.store_grace;
        let writes = self.final_writes(deadline);
        let exported = self.exporter.take().map(|e| e.finish(OUTPUTS_LIMIT));
        let fallback_dir = deps.fallback_dir.clone();
        let read_back = self.seconds.dropped_any();
        let work = async move {
            let written = writes.await;
            let mut stored = stored;
            // Seconds that left memory are in the store, written before the ones still in memory.
            let unread = if read_back {
                let rows = retry::until(deadline, "seconds", || {
                    deps.store.list_second_summaries(&run)
                })
                .await;
                match rows {
                    Ok(rows) => {
                        let in_memory = std::mem::take(&mut stored.seconds);
                        stored.seconds = RunSeconds::merged(in_memory, rows);
                        None
                    }
                    Err(e) => {
                        tracing::error!(%run, error = %e, "cannot read the run's seconds back");
                        Some(format!(
                            "the summary has only its last {} seconds: the earlier ones are in \
                             the store, which could not be read ({e})",
                            stored.seconds.len()
                        ))
                    }
                }
            } else {
                None
            };
            if let Some(exported) = exported {
                stored.outputs = exported.await;
            }
            let put = retry::until(deadline, "summary", || {
                deps.store.put_summary(&run, &stored)
            })
            .await;
            let mut state_name = state_name;
            if let Some(e) = written.err().or(put.err().map(|e| e.to_string())) {
                // The store never came back: the run failed, and says why.
                let grace = deadline.saturating_duration_since(tokio::time::Instant::now());
                tracing::error!(%run, error = %e, ?grace, "the store failed at the end of the run");
                stored.run_state = RunState::Failed;
                stored.status = Verdict::Error;
                let mut reason = format!("the store failed and was not back in time: {e}");
                if let Some(dir) = &fallback_dir {
                    reason.push_str(&format!(
                        "; the summary is in {}",
                        dir.join(format!("{run}.json")).display()
                    ));
                }
                if let Some(before) = &stored.reason {
                    reason.push_str(&format!("; {before}"));
                }
                stored.reason = Some(reason);
                state_name = RunStateName::Failed;
                if let Some(dir) = &fallback_dir {
                    write_summary_file(dir, &run, &stored);
                }
            }
            if let Some(unread) = unread {
                stored.reason = Some(match stored.reason.take() {
                    Some(before) => format!("{before}; {unread}"),
                    None => unread,
                });
            }
            let set = retry::until(deadline, "final state", || {
                deps.store
                    .set_run_state(&run, state_name, at, stored.reason.clone())
            });
            if let Err(e) = set.await {
                tracing::error!(%run, error = %e, "cannot record the final state");
            }
            deps.bus.unregister(&run).await;
            deps.launcher.stop(&run).await;
            stored
        };
        ctx.wait(work.into_actor(self).map(move |summary, act, ctx| {
            let state = summary.run_state;
            act.stage = Stage::Ended { state, start_at_ms };
            act.publish_view();
            if let Some(tx) = act.outcome.take() {
                let _ = tx.send(summary);
            }
            ctx.stop();
        }));
    }
}

/// Writes a summary the store could not take to `dir/{run}.json`, so the run's results survive.
fn write_summary_file(dir: &Path, run: &RunId, summary: &Summary) {
    let path = dir.join(format!("{run}.json"));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| serde_json::to_vec_pretty(summary).map_err(std::io::Error::other))
        .and_then(|json| std::fs::write(&path, json));
    match written {
        Ok(()) => tracing::warn!(%run, path = %path.display(), "the summary was written to a file"),
        Err(e) => {
            tracing::error!(%run, path = %path.display(), error = %e, "cannot write the summary to a file either")
        }
    }
}
