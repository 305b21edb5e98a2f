//! One second being merged, and the compact form it is kept in once emitted.
//!
//! A frame is decoded completely ([`DecodedFrame`]) before any of it is merged, so a frame with a
//! bad histogram changes nothing. Emitted seconds are kept as [`PackedSlot`]s (histograms encoded)
//! because a late frame may still have to be merged into them. Both remember which frames they hold
//! ([`FrameMark`]s), so a stored second says exactly which `(agent, seq)` it already counts.

use super::load::SecondLoad;
use super::stats::{DecodedStats, Inflated, MergedStats, PackedStats};
use super::types::{AggregateError, FrameMark};
use herd_protocol::frame::{Frame, Health};
use std::collections::{BTreeMap, BTreeSet};

/// A second being merged.
#[derive(Debug, Default)]
pub(super) struct Slot {
    pub(super) stats: MergedStats,
    pub(super) steps: BTreeMap<String, MergedStats>,
    /// Arrivals dropped.
    pub(super) dropped: u64,
    /// VUs and agents' health.
    pub(super) load: SecondLoad,
    /// Indexes of the agents that reported this second.
    pub(super) reporters: BTreeSet<usize>,
    /// The frames merged into it, in arrival order.
    pub(super) frames: Vec<FrameMark>,
}

impl Slot {
    pub(super) fn add(&mut self, agent: usize, mark: FrameMark, frame: &DecodedFrame) {
        self.stats.add(&frame.total);
        for (label, stats) in &frame.steps {
            self.steps.entry(label.clone()).or_default().add(stats);
        }
        self.dropped = self.dropped.saturating_add(frame.dropped);
        self.load.add(mark.agent.as_str(), frame.vus, &frame.health);
        self.reporters.insert(agent);
        self.frames.push(mark);
    }

    /// Each step's stats, histograms encoded.
    pub(super) fn packed_steps(&self) -> BTreeMap<String, PackedStats> {
        self.steps
            .iter()
            .map(|(l, s)| (l.clone(), s.pack()))
            .collect()
    }

    pub(super) fn pack(&self) -> PackedSlot {
        PackedSlot {
            stats: self.stats.pack(),
            steps: self.packed_steps(),
            dropped: self.dropped,
            load: self.load.clone(),
            reporters: self.reporters.clone(),
            frames: self.frames.clone(),
        }
    }
}

/// An emitted second, compact.
#[derive(Debug)]
pub(super) struct PackedSlot {
    pub(super) stats: PackedStats,
    pub(super) steps: BTreeMap<String, PackedStats>,
    pub(super) dropped: u64,
    pub(super) load: SecondLoad,
    pub(super) reporters: BTreeSet<usize>,
    pub(super) frames: Vec<FrameMark>,
}

impl PackedSlot {
    pub(super) fn unpack(&self) -> Slot {
        Slot {
            stats: self.stats.unpack(),
            steps: self
                .steps
                .iter()
                .map(|(l, s)| (l.clone(), s.unpack()))
                .collect(),
            dropped: self.dropped,
            load: self.load.clone(),
            reporters: self.reporters.clone(),
            frames: self.frames.clone(),
        }
    }
}

/// A frame with every histogram decoded.
pub(super) struct DecodedFrame {
    pub(super) total: DecodedStats,
    pub(super) steps: Vec<(String, DecodedStats)>,
    pub(super) dropped: u64,
    pub(super) vus: u32,
    pub(super) health: Health,
}

impl DecodedFrame {
    pub(super) fn decode(frame: &Frame) -> Result<Self, AggregateError> {
        Self::decode_counting(frame).map(|(decoded, _)| decoded)
    }

    /// [`Self::decode`], and how many histograms it inflated.
    pub(super) fn decode_counting(frame: &Frame) -> Result<(Self, usize), AggregateError> {
        let bad = |part: String, source| AggregateError::BadHistogram {
            agent: frame.agent.clone(),
            seq: frame.seq,
            part,
            source,
        };
        let mut inflated = Inflated::default();
        let total = DecodedStats::decode(&frame.total, &mut inflated)
            .map_err(|e| bad("total".into(), e))?;
        let steps = frame
            .steps
            .iter()
            .map(|(label, stats)| {
                DecodedStats::decode(stats, &mut inflated)
                    .map(|s| (label.clone(), s))
                    .map_err(|e| bad(format!("step {label:?}"), e))
            })
            .collect::<Result<_, _>>()?;
        let decoded = Self {
            total,
            steps,
            dropped: frame.dropped,
            vus: frame.vus,
            health: frame.health,
        };
        Ok((decoded, inflated.misses))
    }
}
