//! What a run looks like from outside while it runs: the [`RunView`] the actor publishes on a
//! watch channel after every change, for a progress line, the console or the API.
//!
//! It is its own module so that the actor and its readers share the type without one importing
//! the other.

use super::phase::Phase;
use herd_protocol::summary::{AgentHealth, SecondSummary};
use herd_protocol::AgentId;

/// What a run looks like right now.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    /// Current phase.
    pub phase: Phase,
    /// Seconds since the load started (0 before).
    pub elapsed_s: f64,
    /// When the load starts or started (ms since the Unix epoch), once the start is sent: second
    /// `t` of the run ends at `(start_at_ms / 1000 + t + 1) * 1000`.
    pub start_at_ms: Option<u64>,
    /// Planned duration of the load, in seconds.
    pub planned_s: f64,
    /// Agents the run uses.
    pub agents_expected: u32,
    /// Agents that reported ready.
    pub agents_ready: u32,
    /// Agents neither lost nor finished.
    pub agents_live: u32,
    /// Requests so far (as emitted seconds show).
    pub requests: u64,
    /// Errors so far.
    pub errors: u64,
    /// The last second emitted, with its requests, p50 and p99.
    pub last_second: Option<SecondSummary>,
    /// The worst agents' own health in the last second emitted live, with that second's `t`.
    pub live_agents: Option<(u64, Vec<AgentHealth>)>,
    /// Agents declared lost so far: a follower can announce each loss when it happens, not only
    /// in the summary.
    pub lost_agents: Vec<AgentId>,
}
