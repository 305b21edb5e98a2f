//! What the run actor keeps between a lost agent's loss and the move of its share: losses
//! gathered into one reassignment (`loss.rs`) and replacements not carrying yet (`replace.rs`).
//! A leaf: the actor's struct (`machine`) holds these, and `loss`/`replace` act on them, without
//! importing each other's files.

use herd_protocol::AgentId;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// How far ahead of the loss a reassignment begins: time for the command to reach every agent.
pub(super) const LEAD: Duration = Duration::from_millis(300);
/// How long losses are gathered into one reassignment (taken out of [`LEAD`]).
pub(super) const BATCH: Duration = Duration::from_millis(50);

/// Losses waiting to be moved together.
#[derive(Debug, Default)]
pub(crate) struct PendingLosses {
    pub(super) agents: Vec<AgentId>,
    /// When their move takes effect (ms since the Unix epoch): [`LEAD`] after the first.
    pub(super) at_ms: u64,
}

/// Replacements launched and not carrying yet.
#[derive(Debug, Default)]
pub(crate) struct Replacing {
    pub(super) pending: BTreeMap<AgentId, Pending>,
    /// How many were launched in this run (numbers the new agents' ids).
    pub(super) launched: u32,
}

/// A replacement on its way.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The lost agent whose place it takes.
    pub(super) in_place_of: AgentId,
    /// When the survivors took the share (none: nobody was left to).
    pub(super) interim_at_ms: Option<u64>,
    /// When it must be ready.
    pub(super) deadline: Instant,
}
