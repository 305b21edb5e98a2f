//! What the store keeps so that a run survives a restart of its coordinator.
//!
//! A run is resumable when the store holds, besides the [`super::RunRecord`] (plan, agents, state
//! and when it was entered, and `start_at_ms` once the start command is out):
//! - every **second** with its merge state ([`super::SecondRecord::checkpoint`]): the whole-run
//!   totals and the set of `(agent, seq)` already counted are rebuilt from them;
//! - every **agent**'s [`AgentRecord`]: where the launcher put it (so `stop` still reaches it), its
//!   pid, whether it started (and when), finished (with its frame count) or was lost;
//! - an **owner** with a lease ([`super::Store::claim_run`]), so that two coordinators sharing a
//!   store never drive the same run: the coordinator that creates a run claims it, renews the lease
//!   while it runs, and a restarted coordinator claims it again before resuming it.
//!
//! Every one of these is a single-item write (one run, one second, one agent), so a store needs no
//! transactions across items: the run actor acknowledges an agent's message to the broker only
//! once the write that records its effect is done.

use herd_protocol::AgentId;
use serde::{Deserialize, Serialize};

/// One agent of a run, as stored (replaced whole on every change; stores keep it as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Which agent.
    pub agent: AgentId,
    /// Where the launcher put it (`pid 1234`, a task ARN), once launched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// The process id it reported when ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// It reported ready.
    #[serde(default)]
    pub ready: bool,
    /// When its load started (µs since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_us: Option<u64>,
    /// It finished after sending this many frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_frames: Option<u64>,
    /// When the coordinator heard it finish (ms since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// Why it was lost, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<String>,
    /// The last error it reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Each time it was declared lost, and whether it came back: a resumed run still reports
    /// them in `agents[].gaps`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<AgentGap>,
}

/// One silence long enough to declare an agent lost (times in ms since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentGap {
    /// When it sent its last message before the silence (on the coordinator's clock).
    pub silent_from_ms: u64,
    /// When it was declared lost.
    pub lost_at_ms: u64,
    /// When it spoke again and was taken back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back_at_ms: Option<u64>,
    /// Why it was declared lost.
    pub reason: String,
    /// What became of its share of the load (`options.on_agent_loss`); absent in records of an
    /// older herd, and when the loss came after the load (nothing was left to move).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<ShareMove>,
}

/// Where a lost agent's share of the load went. A resumed run rebuilds the split from these.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareMove {
    /// The policy applied (`continue`, `redistribute`, `replace`, `abort`).
    pub action: String,
    /// From when the new split holds (ms since the Unix epoch).
    pub at_ms: u64,
    /// The agents that carry the load from then on, in index order (agent `to[i]` is index `i`
    /// of `to.len()`); for `replace`, the replacement alone; empty when nobody took the share
    /// over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<AgentId>,
    /// `replace`: from when the surviving agents carried the share, until the replacement took
    /// it at `at_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interim_at_ms: Option<u64>,
    /// What did not go as the policy asked (a replacement that could not be launched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The answer to [`super::Store::claim_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller owns the run until `now + lease`.
    Granted,
    /// Another coordinator holds it.
    HeldBy {
        /// Its owner.
        owner: String,
        /// When its lease ends (ms since the Unix epoch).
        until_ms: u64,
    },
}
