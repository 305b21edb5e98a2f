//! The aggregator: merges the per-second result frames of one run's agents.
//!
//! Agents publish one frame per wall-clock second, numbered per agent, over MQTT QoS1 — so frames
//! can arrive twice, late, out of order, or never (a lost agent). The aggregator turns that into
//! numbers that are right:
//! - **Exact counts.** A repeated `(agent, seq)` is dropped ([`Ingest::Duplicate`]); every other
//!   frame of the run is merged into the whole-run [`Totals`], however late it is.
//! - **Merged percentiles.** Latencies are HdrHistograms merged frame by frame; percentiles are
//!   read from merged histograms only, never averaged across agents or seconds.
//! - **Live seconds that never wait forever.** Second `s` is emitted by [`Aggregator::poll_ready`]
//!   once every agent still expected for it has reported it, or once the grace deadline
//!   `(s + 1) s + grace` has passed. Seconds are emitted once each, in order.
//! - **Late frames are not lost.** A frame for a second already emitted is merged into that second
//!   too, and the second is handed out again by [`Aggregator::take_dirty`] to be re-stored.
//! - **Memory that does not grow with the run.** An emitted second is kept (packed) for
//!   [`LATE_HORIZON_S`] after the latest emitted one, then dropped: a 1-hour soak at 200
//!   requests/s grew the coordinator by 12 KB per second of run while every second was kept, and
//!   a packed second holds about 330 bytes per agent that reported it (its frames' marks, load
//!   and reporters: `herd bench swarm`, 300 agents, 5.9 MB a minute), so a 10-minute horizon
//!   still held about 200 MB at 1,000 agents and grew for the first 10 minutes. A
//!   frame later than that (an agent cut off for a minute that then delivers its backlog) is
//!   still counted in the whole-run totals, per step and per agent, but no longer changes its
//!   stored second (whose other frames are gone from memory): [`Totals::beyond_horizon`] counts
//!   such frames, and the run's summary says so.
//! - **Visible gaps.** [`Aggregator::missing_frames`] lists the sequence numbers that never came.
//! - **Restartable.** [`Aggregator::take_dirty`] hands out every changed second, emitted or not,
//!   with its [`SecondCheckpoint`]; [`Aggregator::restore`] rebuilds the aggregator from the stored
//!   checkpoints after a coordinator restart, exactly (see [`checkpoint`]).
//!
//! Which agents are expected for second `s`: an agent is expected from the run's start second
//! (or, before that is known, from its own first frame's second) on; it stops being expected when
//! it is lost, and after its final frame's second once it has finished. Agents that did report
//! `s` always count as expected for it, so `agents_reported <= agents_expected`.
//!
//! A frame stamped before the start second (its agent's clock a little behind) is counted in the
//! start second, so no request is dropped and second `t = 0` is not stored twice.
//!
//! This is pure logic — no I/O, no clock of its own (callers pass the time in), no actors — so the
//! run actor drives it and the tests exercise it directly.

pub mod checkpoint;
mod load;
mod seqs;
mod slot;
mod stats;
#[cfg(test)]
mod tests;
mod types;

pub use checkpoint::{DirtySecond, SecondCheckpoint};
pub use load::SecondLoad;
pub use stats::{MergedStats, PackedStats, SecondAggregate};
pub use types::{AggregateError, FrameMark, Totals};

/// How many seconds after the latest emitted second an emitted second is kept for late frames.
/// Frames come that late only after the broker or the coordinator was away that long, and the
/// embedded broker's own window is shorter at scale (`broker::LogWindow`).
pub const LATE_HORIZON_S: u64 = 60;

use herd_protocol::frame::Frame;
use herd_protocol::{AgentId, RunId};
use seqs::SeqSet;
use slot::{DecodedFrame, PackedSlot, Slot};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

/// What happened to an accepted frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingest {
    /// Merged into a second not yet emitted.
    Accepted,
    /// Merged into a second already emitted (and into the totals); see
    /// [`Aggregator::take_dirty`].
    Late,
    /// This `(agent, seq)` was already merged; nothing changed.
    Duplicate,
}

/// Merges the frames of one run; see the [module docs](self).
#[derive(Debug)]
pub struct Aggregator {
    run: RunId,
    grace_ms: u64,
    start_second: Option<u64>,
    agents: Vec<AgentTrack>,
    index: BTreeMap<AgentId, usize>,
    /// Seconds not emitted yet, all after `emitted_up_to`.
    pending: BTreeMap<u64, Slot>,
    /// Seconds already emitted, kept compact in case a late frame arrives.
    emitted: BTreeMap<u64, PackedSlot>,
    /// Emitted seconds that late frames changed since the last [`Aggregator::take_dirty`],
    /// unpacked: a coordinator that fell behind gets most frames late, and unpacking and packing
    /// a whole second (histograms decoded and deflated, every frame's mark copied) for each of
    /// them cost O(agents) per frame — at 5,000 agents it never caught up. They are packed once,
    /// when `take_dirty` hands them out (their stale packed copy stays in `emitted` until then).
    reopened: BTreeMap<u64, Slot>,
    /// The latest second emitted: frames at or before it are late.
    emitted_up_to: Option<u64>,
    /// Emitted seconds before this one were dropped from `emitted` ([`LATE_HORIZON_S`]).
    evicted_before: Option<u64>,
    /// Seconds changed (a frame merged, or emitted) since the last [`Aggregator::take_dirty`].
    dirty: BTreeSet<u64>,
    /// Seconds being written ([`Aggregator::hold`]): kept until released, in case the write
    /// fails and they must be handed out again.
    held: BTreeSet<u64>,
    totals: Totals,
}

/// What the aggregator knows about one agent.
#[derive(Debug)]
struct AgentTrack {
    id: AgentId,
    seqs: SeqSet,
    first_second: Option<u64>,
    /// The highest-numbered frame received so far, as `(seq, second)`.
    last_frame: Option<(u64, u64)>,
    /// Its final frame's second, once known.
    final_second: Option<u64>,
    /// The key its frames are also merged under when the plan places it in a region
    /// (`region:eu-west-1`), so that every region's figures are merged histograms too.
    region_key: Option<String>,
    /// How many frames it said it sent, once finished.
    finished_frames: Option<u64>,
    lost: bool,
    /// A replacement that joined a running load: expected from this second on only.
    joined_second: Option<u64>,
}

impl AgentTrack {
    fn new(id: AgentId) -> Self {
        Self {
            id,
            seqs: SeqSet::default(),
            first_second: None,
            last_frame: None,
            final_second: None,
            region_key: None,
            finished_frames: None,
            lost: false,
            joined_second: None,
        }
    }

    /// Whether a frame for `second` is still to be awaited from this agent (whether or not it
    /// already arrived).
    fn expected_for(&self, second: u64, start_second: Option<u64>) -> bool {
        if self.lost || self.finished_frames == Some(0) {
            return false;
        }
        let from = match (start_second, self.first_second) {
            (Some(start), Some(first)) => start.min(first),
            (Some(from), None) | (None, Some(from)) => from,
            (None, None) => return false,
        };
        let from = self.joined_second.map_or(from, |j| from.max(j));
        second >= from && self.final_second.is_none_or(|last| second <= last)
    }

    /// Learns the final frame's second from the frame numbered `frames - 1`.
    fn settle_final_second(&mut self) {
        if let (Some(frames), Some((seq, second))) = (self.finished_frames, self.last_frame) {
            if frames > 0 && seq == frames - 1 {
                self.final_second = Some(second);
            }
        }
    }
}

impl Aggregator {
    /// An aggregator for `run`, whose agents are `agents`; `grace` is how long after a second's
    /// end its frames are awaited before it is emitted without them.
    pub fn new(run: RunId, agents: Vec<AgentId>, grace: Duration) -> Self {
        let mut index = BTreeMap::new();
        let mut tracks = Vec::new();
        for id in agents {
            if !index.contains_key(&id) {
                index.insert(id.clone(), tracks.len());
                tracks.push(AgentTrack::new(id));
            }
        }
        let totals = Totals {
            per_agent: index.keys().map(|id| (id.clone(), (0, 0))).collect(),
            ..Totals::default()
        };
        Self {
            run,
            grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
            start_second: None,
            agents: tracks,
            index,
            pending: BTreeMap::new(),
            emitted: BTreeMap::new(),
            reopened: BTreeMap::new(),
            emitted_up_to: None,
            evicted_before: None,
            dirty: BTreeSet::new(),
            held: BTreeSet::new(),
            totals,
        }
    }

    /// Labels agents with their regions (a plan's `regions:`): from now on each frame of such an
    /// agent is also merged under the step key `region:NAME`, so seconds, checkpoints and totals
    /// carry every region's merged figures (and a restored aggregator has them back), read
    /// apart from the steps by the summary.
    #[must_use]
    pub fn with_regions(mut self, regions: &BTreeMap<AgentId, String>) -> Self {
        for track in &mut self.agents {
            track.region_key = regions
                .get(&track.id)
                .map(|r| format!("{}{r}", herd_protocol::plan::REGION_KEY_PREFIX));
        }
        self
    }

    /// Sets the second (Unix seconds) the load started in: seconds are reported as
    /// `t = second - start_second`, and every agent is expected from it on.
    pub fn set_start_second(&mut self, second: u64) {
        self.start_second = Some(second);
    }

    /// Merges one frame. Rejected frames (another run, an unknown agent, an undecodable
    /// histogram) are an error and change nothing.
    pub fn ingest(&mut self, frame: &Frame) -> Result<Ingest, AggregateError> {
        if frame.run != self.run {
            return Err(AggregateError::WrongRun {
                expected: self.run.clone(),
                found: frame.run.clone(),
            });
        }
        let Some(&agent) = self.index.get(&frame.agent) else {
            return Err(AggregateError::UnknownAgent(frame.agent.clone()));
        };
        if self.agents[agent].seqs.contains(frame.seq) {
            return Ok(Ingest::Duplicate);
        }
        let mut decoded = DecodedFrame::decode(frame)?;
        if let Some(key) = &self.agents[agent].region_key {
            decoded.steps.push((key.clone(), decoded.total.clone()));
        }
        let second = self
            .start_second
            .map_or(frame.second, |start| frame.second.max(start));

        let track = &mut self.agents[agent];
        track.seqs.insert(frame.seq);
        track.first_second = Some(track.first_second.map_or(second, |f| f.min(second)));
        if track.last_frame.is_none_or(|(seq, _)| frame.seq > seq) {
            track.last_frame = Some((frame.seq, second));
        }
        if frame.is_final {
            track.final_second = Some(second);
        }
        track.settle_final_second();
        let mark = FrameMark {
            agent: track.id.clone(),
            seq: frame.seq,
            requests: decoded.total.requests(),
            errors: decoded.total.errors(),
            is_final: frame.is_final,
            bottleneck: decoded.health.is_bottleneck().then_some(decoded.health),
        };

        self.add_to_totals(second, &mark, &decoded);
        if self.evicted_before.is_some_and(|before| second < before)
            && !self.emitted.contains_key(&second)
        {
            // Its second's other frames are no longer here: storing the second again from this
            // frame alone would replace the stored one with less. Counted in the totals only.
            let late = &mut self.totals.beyond_horizon;
            late.0 = late.0.saturating_add(1);
            late.1 = late.1.saturating_add(mark.requests);
            return Ok(Ingest::Late);
        }
        self.dirty.insert(second);
        if self.emitted_up_to.is_some_and(|up_to| second <= up_to) {
            let emitted = &self.emitted;
            self.reopened
                .entry(second)
                .or_insert_with(|| {
                    emitted
                        .get(&second)
                        .map_or_else(Slot::default, PackedSlot::unpack)
                })
                .add(agent, mark, &decoded);
            Ok(Ingest::Late)
        } else {
            self.pending
                .entry(second)
                .or_default()
                .add(agent, mark, &decoded);
            Ok(Ingest::Accepted)
        }
    }

    /// Takes in an agent that joins the running load (a replacement for a lost one, see
    /// `run::shares`), expected from `second` (Unix seconds) on: the seconds before are not
    /// awaited from it, and its frames count once, like any agent's. `region` labels it as the
    /// agent it replaces was.
    pub fn agent_joins(&mut self, agent: &AgentId, second: u64, region: Option<&str>) {
        let i = match self.index.get(agent) {
            Some(&i) => i,
            None => {
                self.index.insert(agent.clone(), self.agents.len());
                self.agents.push(AgentTrack::new(agent.clone()));
                self.totals.per_agent.entry(agent.clone()).or_insert((0, 0));
                self.agents.len() - 1
            }
        };
        let track = &mut self.agents[i];
        track.joined_second = Some(second);
        track.region_key = region.map(|r| format!("{}{r}", herd_protocol::plan::REGION_KEY_PREFIX));
    }

    /// Stops expecting frames from `agent`; what it sent is kept (and frames it still sends are
    /// still counted).
    pub fn agent_lost(&mut self, agent: &AgentId) {
        if let Some(&i) = self.index.get(agent) {
            self.agents[i].lost = true;
        }
    }

    /// Expects frames from `agent` again: it was declared lost, and spoke again.
    pub fn agent_back(&mut self, agent: &AgentId) {
        if let Some(&i) = self.index.get(agent) {
            self.agents[i].lost = false;
        }
    }

    /// Records that `agent` finished after sending exactly `frames` frames (`seq` `0..frames`).
    pub fn agent_finished(&mut self, agent: &AgentId, frames: u64) {
        if let Some(&i) = self.index.get(agent) {
            let track = &mut self.agents[i];
            track.finished_frames = Some(frames);
            track.settle_final_second();
        }
    }

    /// The seconds ready to be emitted live, in order: each one either reported by every agent
    /// still expected for it, or past its grace deadline (`now_unix_ms >= (s + 1) * 1000 + grace`).
    /// Stops at the first second that is not ready, so seconds are emitted in order, once each.
    pub fn poll_ready(&mut self, now_unix_ms: u64) -> Vec<SecondAggregate> {
        let mut ready = Vec::new();
        while let Some((&second, slot)) = self.pending.first_key_value() {
            let deadline = second
                .saturating_add(1)
                .saturating_mul(1000)
                .saturating_add(self.grace_ms);
            if now_unix_ms < deadline && self.awaits_more(second, &slot.reporters) {
                break;
            }
            if let Some(aggregate) = self.emit_first() {
                ready.push(aggregate);
            }
        }
        ready
    }

    /// Emits every second not emitted yet, in order, ready or not (the end of a run).
    pub fn flush_all(&mut self) -> Vec<SecondAggregate> {
        std::iter::from_fn(|| self.emit_first()).collect()
    }

    /// Whether every expected frame is in: each agent is either lost, or finished with all of its
    /// frames received.
    pub fn is_complete(&self) -> bool {
        self.agents.iter().all(|a| {
            a.lost
                || a.finished_frames
                    .is_some_and(|frames| a.seqs.has_all_below(frames))
        })
    }

    /// The frames that never arrived, as runs of sequence numbers per agent: below the announced
    /// count for a finished agent, below the highest number received otherwise.
    pub fn missing_frames(&self) -> Vec<(AgentId, Range<u64>)> {
        self.agents
            .iter()
            .flat_map(|a| {
                let end = a.finished_frames.unwrap_or_else(|| a.seqs.end());
                a.seqs
                    .gaps_below(end)
                    .into_iter()
                    .map(|gap| (a.id.clone(), gap))
            })
            .collect()
    }

    /// Whole-run figures.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    fn add_to_totals(&mut self, second: u64, mark: &FrameMark, frame: &DecodedFrame) {
        let totals = &mut self.totals;
        totals.all.add(&frame.total);
        for (label, stats) in &frame.steps {
            totals.steps.entry(label.clone()).or_default().add(stats);
        }
        types::add_mark(totals, second, mark);
        totals.dropped = totals.dropped.saturating_add(frame.dropped);
        totals.first_second = Some(totals.first_second.map_or(second, |f| f.min(second)));
        totals.last_second = Some(totals.last_second.map_or(second, |l| l.max(second)));
    }

    /// The first second the aggregator may still change: every second before it was dropped
    /// ([`LATE_HORIZON_S`] after the latest emitted one), so a frame for it can only reach the
    /// run's totals. `None` while nothing was dropped.
    pub fn settled_before(&self) -> Option<u64> {
        self.evicted_before
    }

    /// Drops the emitted seconds more than [`LATE_HORIZON_S`] before `latest`.
    fn evict_old(&mut self, latest: u64) {
        let mut keep_from = latest.saturating_sub(LATE_HORIZON_S);
        // A changed second not handed out by `take_dirty` yet stays until it is.
        if let Some(&first_dirty) = self.dirty.first() {
            keep_from = keep_from.min(first_dirty);
        }
        // So is one whose write is still under way: if it fails, the second is handed out again.
        if let Some(&first_held) = self.held.first() {
            keep_from = keep_from.min(first_held);
        }
        if self
            .emitted
            .first_key_value()
            .is_some_and(|(s, _)| *s < keep_from)
        {
            self.emitted = self.emitted.split_off(&keep_from);
            self.evicted_before = Some(keep_from);
        }
    }

    /// Whether an agent expected for `second` has not reported it yet.
    fn awaits_more(&self, second: u64, reporters: &BTreeSet<usize>) -> bool {
        self.agents
            .iter()
            .enumerate()
            .any(|(i, a)| !reporters.contains(&i) && a.expected_for(second, self.start_second))
    }

    /// Emits the earliest pending second.
    fn emit_first(&mut self) -> Option<SecondAggregate> {
        let (second, slot) = self.pending.pop_first()?;
        self.emitted.insert(second, slot.pack());
        self.emitted_up_to = Some(second);
        self.evict_old(second);
        self.dirty.insert(second);
        Some(self.aggregate(second, slot))
    }

    fn aggregate(&self, second: u64, mut slot: Slot) -> SecondAggregate {
        let reporters = std::mem::take(&mut slot.reporters);
        self.aggregate_with(second, slot, &reporters)
    }

    /// The second's figures (`slot`'s counts and histograms), reported by `reporters`.
    fn aggregate_with(
        &self,
        second: u64,
        slot: Slot,
        reporters: &BTreeSet<usize>,
    ) -> SecondAggregate {
        let expected = self
            .agents
            .iter()
            .enumerate()
            .filter(|(i, a)| reporters.contains(i) || a.expected_for(second, self.start_second))
            .count();
        let base = self
            .start_second
            .or(self.totals.first_second)
            .unwrap_or(second);
        SecondAggregate {
            second,
            t: second.saturating_sub(base),
            agents_reported: count_u32(reporters.len()),
            agents_expected: count_u32(expected),
            dropped: slot.dropped,
            load: slot.load,
            stats: slot.stats,
            steps: slot.steps,
        }
    }
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
