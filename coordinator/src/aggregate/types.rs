//! What the aggregator's parts share: its error, the whole-run [`Totals`] and the [`FrameMark`]
//! each merged frame leaves. A leaf: it imports none of its siblings but the stats it adds up,
//! so the slot, the checkpoint and the aggregator can all use it without leaning on each other.

use super::stats::MergedStats;
use herd_protocol::frame::Health;
use herd_protocol::histogram::CodecError;
use herd_protocol::{AgentId, RunId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a frame was rejected. A rejected frame changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    /// The frame belongs to another run.
    #[error("frame of run {found} sent to the aggregator of run {expected}")]
    WrongRun {
        /// This aggregator's run.
        expected: RunId,
        /// The frame's run.
        found: RunId,
    },
    /// The frame comes from an agent that is not part of the run.
    #[error("frame from agent {0}, which is not part of this run")]
    UnknownAgent(AgentId),
    /// One of the frame's histograms does not decode.
    #[error("frame {seq} of agent {agent}: the {part} latency histogram is invalid: {source}")]
    BadHistogram {
        /// The sender.
        agent: AgentId,
        /// The frame's sequence number.
        seq: u64,
        /// `total`, or `step "<label>"`.
        part: String,
        /// The decoding failure.
        source: CodecError,
    },
}

/// Whole-run figures, merged over every accepted frame (late ones included).
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// All requests of the run.
    pub all: MergedStats,
    /// Per scenario step label.
    pub steps: BTreeMap<String, MergedStats>,
    /// Requests and errors per agent (every agent of the run has an entry).
    pub per_agent: BTreeMap<AgentId, (u64, u64)>,
    /// The earliest second (Unix seconds) a frame was counted in.
    pub first_second: Option<u64>,
    /// The latest second (Unix seconds) a frame was counted in.
    pub last_second: Option<u64>,
    /// Arrivals dropped over the run (open model).
    pub dropped: u64,
    /// Seconds (Unix) in which an agent was the bottleneck, with its health then, in arrival order.
    pub bottlenecks: Vec<(u64, AgentId, Health)>,
    /// Frames (and their requests) that came more than [`super::LATE_HORIZON_S`] after their
    /// second was emitted: in these totals, not in their stored seconds.
    pub beyond_horizon: (u64, u64),
}

/// One frame merged into a second: who sent it, its number, and the part of it the whole-run
/// totals keep per frame (per-agent counts, bottleneck seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameMark {
    /// The sender.
    pub agent: AgentId,
    /// Its sequence number.
    pub seq: u64,
    /// Requests it counted.
    pub requests: u64,
    /// Errors it counted.
    pub errors: u64,
    /// Whether it was the agent's last frame.
    #[serde(default, rename = "final", skip_serializing_if = "std::ops::Not::not")]
    pub is_final: bool,
    /// The agent's health in that second, when the agent was the bottleneck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottleneck: Option<Health>,
}

/// The per-frame part of the whole-run totals.
pub(super) fn add_mark(totals: &mut Totals, second: u64, mark: &FrameMark) {
    let (requests, errors) = totals.per_agent.entry(mark.agent.clone()).or_insert((0, 0));
    *requests = requests.saturating_add(mark.requests);
    *errors = errors.saturating_add(mark.errors);
    if let Some(health) = mark.bottleneck {
        totals
            .bottlenecks
            .push((second, mark.agent.clone(), health));
    }
}
