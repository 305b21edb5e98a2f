//! What the aggregator stores so that a restarted coordinator can rebuild it exactly.
//!
//! Every second the aggregator holds — emitted or still pending — is stored with a
//! [`SecondCheckpoint`]: its merged counts and histograms (all of them: total, service time, each
//! step) and the [`FrameMark`] of every frame merged into it. That is everything the whole-run
//! totals are made of, so [`Aggregator::restore`] rebuilds them by merging the stored seconds:
//! - **no frame counted twice**: the marks give back each agent's set of `(agent, seq)` already
//!   merged, so a frame the broker delivers again after the restart is a [`super::Ingest::Duplicate`];
//! - **no frame lost**: a frame is acknowledged to the broker only once the second holding it is
//!   stored (the run actor's job), so what is not in a checkpoint is delivered again;
//! - **the same numbers**: counts add and HdrHistograms merge bucket by bucket, so merging stored
//!   seconds gives the totals that merging the frames one by one gave.
//!
//! A checkpoint is written with the second it belongs to, in one store operation, so the second's
//! figures and the frames they count can never disagree.

use super::load::SecondLoad;
use super::slot::{PackedSlot, Slot};
use super::stats::{PackedStats, SecondAggregate};
use super::types::{add_mark, AggregateError, FrameMark};
use super::{AgentTrack, Aggregator};
use herd_protocol::{AgentId, RunId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A second's merge state, stored with the second (see the [module docs](self)). Stores keep it
/// as one opaque JSON value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondCheckpoint {
    /// Every frame merged into the second, in arrival order.
    pub frames: Vec<FrameMark>,
    /// All requests of the second.
    pub stats: PackedStats,
    /// Per scenario step label.
    #[serde(default)]
    pub steps: BTreeMap<String, PackedStats>,
    /// Arrivals dropped in the second.
    #[serde(default)]
    pub dropped: u64,
    /// VUs and the agents' health in the second (zero in checkpoints written before herd kept
    /// them).
    #[serde(default)]
    pub load: SecondLoad,
}

impl SecondCheckpoint {
    fn of_packed(slot: &PackedSlot) -> Self {
        Self {
            frames: slot.frames.clone(),
            stats: slot.stats.clone(),
            steps: slot.steps.clone(),
            dropped: slot.dropped,
            load: slot.load.clone(),
        }
    }

    /// The encoded latency histogram of the whole second.
    pub fn latency(&self) -> &herd_protocol::histogram::EncodedHistogram {
        self.stats.latency()
    }
}

/// A second that changed since the last [`Aggregator::take_dirty`], to be stored again.
#[derive(Debug, Clone)]
pub struct DirtySecond {
    /// Its figures now.
    pub aggregate: SecondAggregate,
    /// Its merge state now.
    pub checkpoint: SecondCheckpoint,
    /// Whether it was already emitted live (otherwise it is still awaited from some agent).
    pub emitted: bool,
}

impl Aggregator {
    /// Rebuilds the aggregator of a run from its stored seconds (`(second, checkpoint)`, the
    /// second in Unix seconds), as [`Aggregator::new`] and [`Aggregator::set_start_second`] made
    /// it, with every stored frame merged. Every second comes back as not yet emitted: the first
    /// [`Aggregator::poll_ready`] emits again those that are complete or past their grace.
    ///
    /// Fails if a checkpoint names an agent that is not part of the run (the store holds another
    /// run's data).
    pub fn restore(
        run: RunId,
        agents: Vec<AgentId>,
        grace: Duration,
        start_second: Option<u64>,
        seconds: impl IntoIterator<Item = (u64, SecondCheckpoint)>,
    ) -> Result<Self, AggregateError> {
        let mut aggregator = Self::new(run, agents, grace);
        aggregator.start_second = start_second;
        for (second, checkpoint) in seconds {
            aggregator.restore_second(second, checkpoint)?;
        }
        Ok(aggregator)
    }

    fn restore_second(
        &mut self,
        second: u64,
        checkpoint: SecondCheckpoint,
    ) -> Result<(), AggregateError> {
        let packed = PackedSlot {
            stats: checkpoint.stats,
            steps: checkpoint.steps,
            dropped: checkpoint.dropped,
            load: checkpoint.load,
            reporters: BTreeSet::new(),
            frames: Vec::new(),
        };
        let mut slot: Slot = packed.unpack();
        for mark in checkpoint.frames {
            let Some(&index) = self.index.get(&mark.agent) else {
                return Err(AggregateError::UnknownAgent(mark.agent));
            };
            let track: &mut AgentTrack = &mut self.agents[index];
            if !track.seqs.insert(mark.seq) {
                // Stored twice (it cannot be, since a frame is merged once): count it once.
                continue;
            }
            track.first_second = Some(track.first_second.map_or(second, |f| f.min(second)));
            if track.last_frame.is_none_or(|(seq, _)| mark.seq > seq) {
                track.last_frame = Some((mark.seq, second));
            }
            if mark.is_final {
                track.final_second = Some(second);
            }
            track.settle_final_second();
            add_mark(&mut self.totals, second, &mark);
            slot.reporters.insert(index);
            slot.frames.push(mark);
        }
        let totals = &mut self.totals;
        totals.all.merge(&slot.stats);
        for (label, stats) in &slot.steps {
            totals.steps.entry(label.clone()).or_default().merge(stats);
        }
        totals.dropped = totals.dropped.saturating_add(slot.dropped);
        if !slot.frames.is_empty() {
            totals.first_second = Some(totals.first_second.map_or(second, |f| f.min(second)));
            totals.last_second = Some(totals.last_second.map_or(second, |l| l.max(second)));
        }
        self.pending.insert(second, slot);
        Ok(())
    }

    /// Keeps `seconds` (handed out by [`Aggregator::take_dirty`], now being written) past the
    /// late horizon until [`Aggregator::release`]: a write that fails marks its seconds dirty
    /// again, which needs them still held. Without it, a store failing slowly for over a minute
    /// (DynamoDB behind a failing endpoint answers after the SDK's retries) had its oldest
    /// seconds in flight when they passed the horizon, and their last version was never stored.
    pub fn hold(&mut self, seconds: impl IntoIterator<Item = u64>) {
        self.held.extend(seconds);
    }

    /// The writes [`Aggregator::hold`] waited for are done (stored, or marked dirty again).
    pub fn release(&mut self) {
        self.held.clear();
    }

    /// Marks a second as changed again (storing it failed): the next [`Aggregator::take_dirty`]
    /// hands it out again. Seconds the aggregator does not hold are ignored.
    pub fn mark_dirty(&mut self, second: u64) {
        if self.pending.contains_key(&second) || self.emitted.contains_key(&second) {
            self.dirty.insert(second);
        }
    }

    /// The seconds changed since the last call (a frame merged, or the second emitted), in order,
    /// each with its merge state: what the run stores before it acknowledges the frames.
    pub fn take_dirty(&mut self) -> Vec<DirtySecond> {
        std::mem::take(&mut self.dirty)
            .into_iter()
            .filter_map(|second| {
                if let Some(slot) = self.pending.get(&second) {
                    // A second still filling is stored again at every flush: copy only what
                    // its figures need (no frame list, no reporter set), and pack it once.
                    let checkpoint = slot.pack_checkpoint();
                    let aggregate = self.aggregate_with(second, slot.figures(), &slot.reporters);
                    return Some(DirtySecond {
                        aggregate,
                        checkpoint,
                        emitted: false,
                    });
                }
                if let Some(slot) = self.reopened.remove(&second) {
                    let packed = slot.pack();
                    let checkpoint = SecondCheckpoint::of_packed(&packed);
                    self.emitted.insert(second, packed);
                    return Some(DirtySecond {
                        aggregate: self.aggregate(second, slot),
                        checkpoint,
                        emitted: true,
                    });
                }
                let packed = self.emitted.get(&second)?;
                let checkpoint = SecondCheckpoint::of_packed(packed);
                let aggregate = self.aggregate(second, packed.unpack());
                Some(DirtySecond {
                    aggregate,
                    checkpoint,
                    emitted: true,
                })
            })
            .collect()
    }
}

impl Slot {
    /// The merge state of a second not emitted yet (its frames' marks cloned once, its
    /// histograms encoded once).
    fn pack_checkpoint(&self) -> SecondCheckpoint {
        SecondCheckpoint {
            frames: self.frames.clone(),
            stats: self.stats.pack(),
            steps: self.packed_steps(),
            dropped: self.dropped,
            load: self.load.clone(),
        }
    }

    /// A copy of the slot's figures (histograms copied, not re-encoded), without the frames'
    /// marks and the reporters, which a second's figures do not carry.
    fn figures(&self) -> Slot {
        Slot {
            stats: self.stats.clone(),
            steps: self.steps.clone(),
            dropped: self.dropped,
            load: self.load.clone(),
            reporters: BTreeSet::new(),
            frames: Vec::new(),
        }
    }
}
