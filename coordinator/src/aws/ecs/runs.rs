//! The ECS launcher's bookkeeping of each run's tasks, shared by the launcher and the task
//! follower (`follow`), so that neither imports the other.

use herd_protocol::{AgentId, RunId};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// What the launcher knows of one run's tasks.
#[derive(Debug, Default)]
pub(super) struct RunTasks {
    /// Task ARN → agent.
    pub(super) tasks: HashMap<String, AgentId>,
    /// Task ARN → the region it was started in (`""`: the `[launcher]` table's own).
    pub(super) places: HashMap<String, String>,
    /// Tasks already reported stopped.
    pub(super) exited: HashSet<String>,
    /// A launch is still starting tasks.
    pub(super) launching: bool,
    /// `stop` was called: tasks started from now on are stopped at once.
    pub(super) stopped: bool,
}

pub(super) type Runs = Arc<Mutex<HashMap<RunId, RunTasks>>>;

pub(super) fn lock(runs: &Runs) -> MutexGuard<'_, HashMap<RunId, RunTasks>> {
    runs.lock().unwrap_or_else(PoisonError::into_inner)
}
