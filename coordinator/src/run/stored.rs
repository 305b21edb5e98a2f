//! A run as the store holds it, read back for resuming ([`StoredRun`], [`load`]).
//!
//! Reading a stored run needs only the store, so it lives apart from the actor: the actor's resume
//! path takes a [`StoredRun`], and nothing here knows the actor.

use crate::store::{AgentRecord, RunRecord, SecondRecord, Store, StoreError};
use herd_protocol::plan::{self, Plan};

/// A run as stored, ready to be resumed.
#[derive(Debug, Clone)]
pub struct StoredRun {
    /// Its record (state, start time, plan).
    pub record: RunRecord,
    /// Its agents' records.
    pub agents: Vec<AgentRecord>,
    /// Its stored seconds, with their merge state.
    pub seconds: Vec<SecondRecord>,
}

impl StoredRun {
    /// The run's plan; an error names what is wrong with the stored one.
    pub fn plan(&self) -> Result<Plan, String> {
        plan::from_value(&self.record.plan).map_err(|e| {
            let problems: Vec<String> = e.0.iter().map(ToString::to_string).collect();
            format!("the stored plan is invalid: {}", problems.join("; "))
        })
    }
}

/// Reads what the store holds of a run.
pub async fn load(store: &dyn Store, record: RunRecord) -> Result<StoredRun, StoreError> {
    let agents = store.list_agents(&record.id).await?;
    let seconds = store.list_seconds(&record.id).await?;
    Ok(StoredRun {
        record,
        agents,
        seconds,
    })
}
