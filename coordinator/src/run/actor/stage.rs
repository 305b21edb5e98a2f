//! What the run actor knows only in some of its phases.

use crate::store::RunStateName;

/// What a resumed actor knows of the run's stored state until it has resumed it.
#[derive(Debug)]
pub(super) struct Resumed {
    /// The stored state.
    pub(super) state: RunStateName,
    /// When the run entered it (ms since the Unix epoch).
    pub(super) since_ms: u64,
    /// Why the run cannot be carried on, if it cannot (its stored data does not rebuild).
    pub(super) problem: Option<String>,
}
