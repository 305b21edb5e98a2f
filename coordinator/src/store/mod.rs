//! Where runs, their per-second aggregates and their summaries live.
//!
//! The store is one of herd's boundaries: the run actor holds an `Arc<dyn Store>` and never knows
//! whether it talks to the [embedded] SQLite file of the local modes or to DynamoDB in
//! AWS mode. DynamoDB is reached asynchronously, so the trait returns boxed futures; the embedded
//! store runs its blocking SQLite calls on tokio's blocking pool behind the same signature.
//!
//! Run state is stored, not just kept in memory, so that a restarted coordinator can find the runs
//! that were in flight and resume them ([`resume`] says what that takes), and the API can list past
//! runs with their results.

pub mod embedded;
pub mod resume;
#[cfg(test)]
mod resume_tests;
pub mod service;
#[cfg(test)]
mod service_tests;
#[cfg(test)]
pub(crate) mod suite;
#[cfg(test)]
mod tests;

pub use embedded::EmbeddedStore;
pub use resume::{AgentGap, AgentRecord, Claim, ShareMove};
pub use service::{AuditEntry, Role, TestRecord, TokenRecord};

use crate::aggregate::{SecondAggregate, SecondCheckpoint};
use herd_protocol::histogram::EncodedHistogram;
use herd_protocol::summary::{RegionSecond, SecondHealth, SecondSummary, Summary};
use herd_protocol::RunId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;

/// What every store operation returns: a `Send` future, so actors can spawn it.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// Persistent state of runs.
pub trait Store: Send + Sync + 'static {
    /// Records a new run; fails with [`StoreError::RunExists`] if its id is taken.
    fn create_run(&self, run: RunRecord) -> StoreFuture<()>;
    /// Moves a run to `state` at `at_ms` (ms since the Unix epoch); `reason` replaces the
    /// previous one. The DynamoDB store, shared by coordinators, only moves a run forward and only
    /// for the coordinator that drives it; it refuses anything else with [`StoreError::Conflict`].
    fn set_run_state(
        &self,
        run: &RunId,
        state: RunStateName,
        at_ms: u64,
        reason: Option<String>,
    ) -> StoreFuture<()>;
    /// Stores one second of a run, replacing what was stored for the same `t` (late frames).
    fn put_second(&self, run: &RunId, second: SecondRecord) -> StoreFuture<()>;
    /// Stores (or replaces) the summary of a run.
    fn put_summary(&self, run: &RunId, summary: &Summary) -> StoreFuture<()>;
    /// A run, if it exists.
    fn get_run(&self, run: &RunId) -> StoreFuture<Option<RunRecord>>;
    /// The `limit` most recently created runs, newest first.
    fn list_runs(&self, limit: usize) -> StoreFuture<Vec<RunRecord>>;
    /// The stored seconds of a run, ordered by `t`.
    fn list_seconds(&self, run: &RunId) -> StoreFuture<Vec<SecondRecord>>;
    /// The stored seconds of a run as summaries show them, ordered by `t`: what
    /// [`Store::list_seconds`] gives without the merge state, which a store that keeps it apart
    /// does not read (at 1,000 agents it is some 300 KB a second, the rest about 1 KB).
    fn list_second_summaries(&self, run: &RunId) -> StoreFuture<Vec<SecondSummary>> {
        let all = self.list_seconds(run);
        Box::pin(async move { Ok(all.await?.iter().map(SecondRecord::to_summary).collect()) })
    }
    /// The summary of a run, once it has one.
    fn get_summary(&self, run: &RunId) -> StoreFuture<Option<Summary>>;
    /// Runs of a stored test, newest first, `limit` of them after skipping `offset`.
    fn list_test_runs(
        &self,
        test: &str,
        limit: usize,
        offset: usize,
    ) -> StoreFuture<Vec<RunRecord>>;

    /// Stores a new test; fails with [`StoreError::TestExists`] if its id is taken.
    fn create_test(&self, test: TestRecord) -> StoreFuture<()>;
    /// Replaces a stored test; fails with [`StoreError::UnknownTest`] if there is none.
    fn update_test(&self, test: TestRecord) -> StoreFuture<()>;
    /// Deletes a test; whether it existed.
    fn delete_test(&self, test: &str) -> StoreFuture<bool>;
    /// A stored test.
    fn get_test(&self, test: &str) -> StoreFuture<Option<TestRecord>>;
    /// Every stored test (with `tag`, only those carrying it), by name.
    fn list_tests(&self, tag: Option<String>) -> StoreFuture<Vec<TestRecord>>;
    /// Records the scheduler's next fire time of a test (`None`: it will not fire again).
    fn set_next_fire(&self, test: &str, next_fire_ms: Option<u64>) -> StoreFuture<()>;

    /// The reply a command id got, if it was handled before.
    fn get_command(&self, id: &str) -> StoreFuture<Option<serde_json::Value>>;
    /// Remembers that a command id was handled, with its reply.
    fn put_command(&self, id: &str, reply: serde_json::Value, at_ms: u64) -> StoreFuture<()>;

    /// Stores a new API token (its hash).
    fn create_token(&self, token: TokenRecord) -> StoreFuture<()>;
    /// The token with this hash, if any (revoked and expired ones too: the caller decides).
    fn find_token(&self, hash: &str) -> StoreFuture<Option<TokenRecord>>;
    /// Every stored token, by id.
    fn list_tokens(&self) -> StoreFuture<Vec<TokenRecord>>;
    /// Marks the token with this id revoked at `at_ms`; whether such a token exists. Revoking
    /// twice keeps the first time.
    fn revoke_token(&self, id: &str, at_ms: u64) -> StoreFuture<bool>;

    /// Appends one write to the audit log; an entry whose id is already there is not added again.
    fn append_audit(&self, entry: AuditEntry) -> StoreFuture<()>;
    /// The `limit` most recent audit entries, newest first.
    fn list_audit(&self, limit: usize) -> StoreFuture<Vec<AuditEntry>>;

    // Resuming runs after a coordinator restart (see [`resume`]).

    /// Records the absolute time the load of a run starts at (the start command's), so a resumed
    /// run re-arms its deadlines from wall-clock time. Read back as [`RunRecord::start_at_ms`].
    fn set_run_start(&self, run: &RunId, start_at_ms: u64) -> StoreFuture<()>;
    /// Records when the run's load now ends, after a live ramp moved it, so that a restarted
    /// coordinator re-arms the ramp's end and not the plan's. Read back as
    /// [`RunRecord::ends_at_ms`].
    fn set_run_end(&self, run: &RunId, ends_at_ms: u64) -> StoreFuture<()>;
    /// Every run not in a terminal state, oldest first: what a starting coordinator resumes.
    fn list_unfinished_runs(&self) -> StoreFuture<Vec<RunRecord>>;
    /// Takes or renews ownership of a run until `now_ms + lease_ms`, as one conditional update:
    /// granted when the run has no owner, is already `owner`'s, or its owner's lease ended before
    /// `now_ms`; otherwise nothing changes and the holder is returned. Fails with
    /// [`StoreError::UnknownRun`] if there is no such run.
    fn claim_run(&self, run: &RunId, owner: &str, now_ms: u64, lease_ms: u64)
        -> StoreFuture<Claim>;
    /// Stores (replacing) one agent's record of a run.
    fn put_agent(&self, run: &RunId, agent: AgentRecord) -> StoreFuture<()>;
    /// Every stored agent record of a run, by agent id.
    fn list_agents(&self, run: &RunId) -> StoreFuture<Vec<AgentRecord>>;
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `create_run` with an id already used.
    #[error("run {0} already exists")]
    RunExists(RunId),
    /// An operation on a run that was never created.
    #[error("no run {0}")]
    UnknownRun(RunId),
    /// `create_test` with an id already used.
    #[error("test {0} already exists")]
    TestExists(String),
    /// An operation on a test that does not exist.
    #[error("no test {0}")]
    UnknownTest(String),
    /// The store's directory cannot be created.
    #[error("cannot create the store directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The database was written by a newer herd.
    #[error("store schema version {found} is newer than this herd supports ({supported})")]
    SchemaTooNew {
        /// The database's version.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A value cannot be encoded for storage.
    #[error("cannot encode the {what}: {source}")]
    Encode {
        /// What was being stored.
        what: &'static str,
        /// The failure.
        source: serde_json::Error,
    },
    /// A number beyond SQLite's signed 64-bit integers.
    #[error("{what} {value} is too large to store")]
    TooLarge {
        /// The field.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// Stored data that does not read back (written by something else, or damaged).
    #[error("corrupt {what} in the store: {detail}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The background task running the operation died.
    #[error("store task failed: {0}")]
    Task(String),
    /// A state change the run's stored state or owner does not allow: a move backwards or to the
    /// same state, a change after the run ended, or a run driven by another coordinator.
    #[error("run {run}: {detail}")]
    Conflict {
        /// The run.
        run: RunId,
        /// Why the change was refused.
        detail: String,
    },
    /// A value the store cannot hold (beyond an item's size limit, a non-finite number).
    #[error("cannot store the {what}: {detail}")]
    Unstorable {
        /// What was being stored.
        what: &'static str,
        /// Why not.
        detail: String,
    },
    /// A DynamoDB table is missing or not shaped as herd expects.
    #[error("DynamoDB table {table}: {detail}")]
    Table {
        /// The table's name.
        table: String,
        /// What is wrong.
        detail: String,
    },
    /// A DynamoDB call failed.
    #[error("DynamoDB {op} failed: {detail}")]
    Dynamo {
        /// The operation (`PutItem`, `Query`, …).
        op: &'static str,
        /// The SDK's error with its causes.
        detail: String,
    },
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// The run's id.
    pub id: RunId,
    /// The plan's name.
    pub name: String,
    /// The stored test it runs, if it runs one (not an inline plan).
    pub test: Option<String>,
    /// The plan, as JSON ([`herd_protocol::plan::Plan::to_json`]).
    pub plan: serde_json::Value,
    /// Where the run is.
    pub state: RunStateName,
    /// How many agents it runs on.
    pub agents: u32,
    /// When it was created (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// When its state last changed (ms since the Unix epoch).
    pub updated_at_ms: u64,
    /// Why it is in its state, when that needs saying (failures, cancellations, lost agents).
    pub reason: Option<String>,
    /// When its load starts or started (ms since the Unix epoch), once the start command is out
    /// ([`Store::set_run_start`]; `None` in [`Store::create_run`]'s record).
    pub start_at_ms: Option<u64>,
    /// When its load ends (ms since the Unix epoch), if a live ramp moved the end from where the
    /// plan's stages put it ([`Store::set_run_end`]; `None` in [`Store::create_run`]'s record).
    pub ends_at_ms: Option<u64>,
}

/// Every state of a run, as stored (`snake_case`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStateName {
    /// Recording the run, starting agents.
    Launching,
    /// Agents started, waiting for all of them to be ready.
    WaitingReady,
    /// Load is being generated.
    Running,
    /// Agents were told to stop; waiting for their last frames.
    Stopping,
    /// Ended: every agent ran its share.
    Completed,
    /// Ended, but an agent was lost on the way.
    Degraded,
    /// Ended: could not start or could not finish.
    Failed,
    /// Ended: stopped on request.
    Cancelled,
}

impl RunStateName {
    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Degraded | Self::Failed | Self::Cancelled
        )
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Launching => "launching",
            Self::WaitingReady => "waiting_ready",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Completed => "completed",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for RunStateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run state name that herd does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown run state {0:?}")]
pub struct UnknownRunState(pub String);

impl FromStr for RunStateName {
    type Err = UnknownRunState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "launching" => Self::Launching,
            "waiting_ready" => Self::WaitingReady,
            "running" => Self::Running,
            "stopping" => Self::Stopping,
            "completed" => Self::Completed,
            "degraded" => Self::Degraded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return Err(UnknownRunState(s.to_string())),
        })
    }
}

/// One second of a run across its agents, as stored. The merged histogram is kept so that
/// percentiles over any range of seconds can be computed later by merging, not averaging.
#[derive(Debug, Clone, PartialEq)]
pub struct SecondRecord {
    /// Seconds since the run's start second.
    pub t: u64,
    /// The second, in seconds since the Unix epoch.
    pub second: u64,
    /// Requests completed in that second.
    pub requests: u64,
    /// Errors in that second.
    pub errors: u64,
    /// Open model: arrivals planned in that second that could not start (the in-flight cap
    /// was reached), summed over agents.
    pub dropped: u64,
    /// Median latency (ms) of that second, from its merged histogram.
    pub p50_ms: f64,
    /// 99th percentile (ms) of that second, from its merged histogram.
    pub p99_ms: f64,
    /// Agents whose frame for that second arrived.
    pub agents_reported: u32,
    /// Agents expected to report it.
    pub agents_expected: u32,
    /// Responses by HTTP status code.
    pub status_codes: BTreeMap<u16, u64>,
    /// The merged latency histogram (µs) of that second.
    pub histogram: EncodedHistogram,
    /// The rest of what the live view shows of that second (p90, p99.9, VUs, error kinds, the
    /// agents' health): stores keep it as one JSON value ([`SecondDetail`]).
    pub detail: SecondDetail,
    /// The second's merge state, from which a restarted coordinator rebuilds the run's totals
    /// (see [`crate::aggregate::checkpoint`]). Stores keep it as one opaque JSON value and give it
    /// back unchanged; `None` for seconds stored by a herd that did not write it.
    pub checkpoint: Option<SecondCheckpoint>,
}

impl SecondRecord {
    /// The record of an aggregated second, with its merge state.
    pub fn from_aggregate(
        aggregate: &SecondAggregate,
        checkpoint: Option<SecondCheckpoint>,
    ) -> Self {
        let summary = aggregate.to_summary();
        let histogram = checkpoint.as_ref().map_or_else(
            || EncodedHistogram::encode(&aggregate.stats.latency),
            |c| c.latency().clone(),
        );
        Self {
            t: summary.t,
            second: aggregate.second,
            requests: summary.requests,
            errors: summary.errors,
            dropped: summary.dropped,
            p50_ms: summary.p50_ms,
            p99_ms: summary.p99_ms,
            agents_reported: summary.agents_reported,
            agents_expected: summary.agents_expected,
            status_codes: aggregate.stats.status_codes.clone(),
            histogram,
            detail: SecondDetail {
                p90_ms: summary.p90_ms,
                p999_ms: summary.p999_ms,
                vus: summary.vus,
                error_kinds: summary.error_kinds,
                health: summary.health,
                regions: summary.regions,
                scenarios: summary.scenarios,
            },
            checkpoint,
        }
    }

    /// The second as summaries and the API show it.
    pub fn to_summary(&self) -> SecondSummary {
        SecondSummary {
            t: self.t,
            requests: self.requests,
            errors: self.errors,
            dropped: self.dropped,
            p50_ms: self.p50_ms,
            p99_ms: self.p99_ms,
            agents_reported: self.agents_reported,
            agents_expected: self.agents_expected,
            p90_ms: self.detail.p90_ms,
            p999_ms: self.detail.p999_ms,
            vus: self.detail.vus,
            status_codes: self
                .status_codes
                .iter()
                .map(|(code, n)| (code.to_string(), *n))
                .collect(),
            error_kinds: self.detail.error_kinds.clone(),
            health: self.detail.health.clone(),
            regions: self.detail.regions.clone(),
            scenarios: self.detail.scenarios.clone(),
        }
    }
}

/// The figures of a stored second beyond its counts, p50 and p99: what the console draws after
/// the run exactly as it drew them live. Both stores keep it as one JSON value (a column, an
/// attribute), so a field added here needs no schema change; seconds stored before it existed
/// read back as the default (every figure absent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondDetail {
    /// 90th percentile (ms), from the merged histogram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_ms: Option<f64>,
    /// 99.9th percentile (ms), from the merged histogram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p999_ms: Option<f64>,
    /// Virtual users at the second's end, summed over agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vus: Option<u64>,
    /// Failures by kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_kinds: BTreeMap<String, u64>,
    /// The agents' own health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<SecondHealth>,
    /// Per region, when the plan has regions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub regions: BTreeMap<String, RegionSecond>,
    /// Per scenario, when the plan has several.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scenarios: BTreeMap<String, RegionSecond>,
}
