//! [`DynamoStore`]: the [`Store`] on DynamoDB, for AWS mode (`[store] kind = "dynamodb"`).
//!
//! Several coordinators may share one set of tables (a rolling deploy, a restart beside a
//! lingering task), so everything that must not happen twice is a conditional write: a run id is
//! created once, a run's state only moves forward and only by the coordinator that drives it
//! ([`runs`]), a command id keeps its first reply ([`commands`]). Nothing needs a transaction.
//!
//! DynamoDB items hold at most 400 KB, so a value that may outgrow it (a run's summary, a second's
//! histogram) is split into parts written in batches ([`chunks`]); the fixed-size records (runs,
//! tests, command replies, tokens) are measured before writing and refused with a clear error if
//! they would not fit. The tables and their keys are described in [`tables`] and the README.

mod audit;
mod chunks;
mod commands;
mod items;
mod load_tests;
mod resume;
mod runs;
mod seconds;
mod tables;
#[cfg(test)]
mod tests;
mod tokens;

use crate::store::{
    AgentRecord, AuditEntry, Claim, RunRecord, RunStateName, SecondRecord, Store, StoreError,
    StoreFuture, TestRecord, TokenRecord,
};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use herd_protocol::summary::Summary;
use herd_protocol::RunId;
use ring::rand::SecureRandom;
use std::future::Future;
use std::sync::Arc;
use tables::Tables;

/// The DynamoDB-backed [`Store`]. Cloning shares the client.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Tables,
    /// This coordinator's id as the owner of the runs it creates or claims.
    owner: Arc<str>,
    /// The largest part of a split value ([`items::PART_BYTES`]; smaller in tests).
    part_bytes: usize,
}

impl DynamoStore {
    /// Connects to the tables named `<table_prefix>runs`, `…results`, `…tests`, `…commands` and
    /// `…tokens`. With `create_tables`, missing tables are created (on-demand billing, TTL on
    /// command ids) and awaited until `ACTIVE`; without it, a missing table is an error. Existing
    /// tables must have herd's keys.
    pub async fn connect(
        sdk: &SdkConfig,
        table_prefix: &str,
        create_tables: bool,
    ) -> Result<Self, StoreError> {
        Self::with_client(Client::new(sdk), table_prefix, create_tables).await
    }

    async fn with_client(
        client: Client,
        table_prefix: &str,
        create_tables: bool,
    ) -> Result<Self, StoreError> {
        let tables = Tables::new(table_prefix);
        tables.ensure(&client, create_tables).await?;
        let owner = new_owner_id()?;
        tracing::info!(%table_prefix, %owner, "DynamoDB store ready");
        Ok(Self {
            client,
            tables,
            owner: owner.into(),
            part_bytes: items::PART_BYTES,
        })
    }

    /// This store's id as the owner of runs: what a refused state change names.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The same store, owning runs as `owner`: the coordinator's stable identity
    /// ([`crate::run::RunDeps::owner`]), so a restarted coordinator is the same owner and resumes
    /// its runs at once (see [`crate::store::resume`]).
    pub fn with_owner(mut self, owner: &str) -> Self {
        self.owner = owner.into();
        self
    }

    /// Runs `op` on a clone of the store as a boxed `Send` future.
    fn call<T, F, Fut>(&self, op: F) -> StoreFuture<T>
    where
        F: FnOnce(Self) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        Box::pin(op(self.clone()))
    }
}

/// A random coordinator id, `coord-` and 16 hex digits: unique per process, so a restarted
/// coordinator is a new owner and must claim the runs it resumes.
fn new_owner_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError::Task("the system random generator failed".to_owned()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("coord-{hex}"))
}

impl Store for DynamoStore {
    fn create_run(&self, run: RunRecord) -> StoreFuture<()> {
        self.call(|s| async move { s.create_run(run).await })
    }

    fn set_run_state(
        &self,
        run: &RunId,
        state: RunStateName,
        at_ms: u64,
        reason: Option<String>,
    ) -> StoreFuture<()> {
        let run = run.clone();
        self.call(|s| async move { s.set_run_state(&run, state, at_ms, reason).await })
    }

    fn put_second(&self, run: &RunId, second: SecondRecord) -> StoreFuture<()> {
        let run = run.clone();
        self.call(|s| async move { s.put_second(&run, second).await })
    }

    fn put_summary(&self, run: &RunId, summary: &Summary) -> StoreFuture<()> {
        let run = run.clone();
        let summary = summary.clone();
        self.call(|s| async move { s.put_summary(&run, &summary).await })
    }

    fn get_run(&self, run: &RunId) -> StoreFuture<Option<RunRecord>> {
        let run = run.clone();
        self.call(|s| async move { s.get_run(&run).await })
    }

    fn list_runs(&self, limit: usize) -> StoreFuture<Vec<RunRecord>> {
        self.call(|s| async move { s.list_runs(limit).await })
    }

    fn list_seconds(&self, run: &RunId) -> StoreFuture<Vec<SecondRecord>> {
        let run = run.clone();
        self.call(|s| async move { s.list_seconds(&run).await })
    }

    fn get_summary(&self, run: &RunId) -> StoreFuture<Option<Summary>> {
        let run = run.clone();
        self.call(|s| async move { s.get_summary(&run).await })
    }

    fn list_test_runs(
        &self,
        test: &str,
        limit: usize,
        offset: usize,
    ) -> StoreFuture<Vec<RunRecord>> {
        let test = test.to_owned();
        self.call(|s| async move { s.list_test_runs(&test, limit, offset).await })
    }

    fn create_test(&self, test: TestRecord) -> StoreFuture<()> {
        self.call(|s| async move { s.create_test(test).await })
    }

    fn update_test(&self, test: TestRecord) -> StoreFuture<()> {
        self.call(|s| async move { s.update_test(test).await })
    }

    fn delete_test(&self, test: &str) -> StoreFuture<bool> {
        let test = test.to_owned();
        self.call(|s| async move { s.delete_test(&test).await })
    }

    fn get_test(&self, test: &str) -> StoreFuture<Option<TestRecord>> {
        let test = test.to_owned();
        self.call(|s| async move { s.get_test(&test).await })
    }

    fn list_tests(&self, tag: Option<String>) -> StoreFuture<Vec<TestRecord>> {
        self.call(|s| async move { s.list_tests(tag).await })
    }

    fn set_next_fire(&self, test: &str, next_fire_ms: Option<u64>) -> StoreFuture<()> {
        let test = test.to_owned();
        self.call(|s| async move { s.set_next_fire(&test, next_fire_ms).await })
    }

    fn get_command(&self, id: &str) -> StoreFuture<Option<serde_json::Value>> {
        let id = id.to_owned();
        self.call(|s| async move { s.get_command(&id).await })
    }

    fn put_command(&self, id: &str, reply: serde_json::Value, at_ms: u64) -> StoreFuture<()> {
        let id = id.to_owned();
        self.call(|s| async move { s.put_command(&id, reply, at_ms).await })
    }

    fn create_token(&self, token: TokenRecord) -> StoreFuture<()> {
        self.call(|s| async move { s.create_token(token).await })
    }

    fn find_token(&self, hash: &str) -> StoreFuture<Option<TokenRecord>> {
        let hash = hash.to_owned();
        self.call(|s| async move { s.find_token(&hash).await })
    }

    fn list_tokens(&self) -> StoreFuture<Vec<TokenRecord>> {
        self.call(|s| async move { s.list_tokens().await })
    }

    fn revoke_token(&self, id: &str, at_ms: u64) -> StoreFuture<bool> {
        let id = id.to_owned();
        self.call(|s| async move { s.revoke_token(&id, at_ms).await })
    }

    fn append_audit(&self, entry: AuditEntry) -> StoreFuture<()> {
        self.call(|s| async move { s.append_audit(entry).await })
    }

    fn list_audit(&self, limit: usize) -> StoreFuture<Vec<AuditEntry>> {
        self.call(|s| async move { s.list_audit(limit).await })
    }

    fn set_run_start(&self, run: &RunId, start_at_ms: u64) -> StoreFuture<()> {
        let run = run.clone();
        self.call(|s| async move { s.set_run_time(&run, "start_at_ms", start_at_ms).await })
    }

    fn set_run_end(&self, run: &RunId, ends_at_ms: u64) -> StoreFuture<()> {
        let run = run.clone();
        self.call(|s| async move { s.set_run_time(&run, "ends_at_ms", ends_at_ms).await })
    }

    fn list_unfinished_runs(&self) -> StoreFuture<Vec<RunRecord>> {
        self.call(|s| async move { s.list_unfinished_runs().await })
    }

    fn claim_run(
        &self,
        run: &RunId,
        owner: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> StoreFuture<Claim> {
        let (run, owner) = (run.clone(), owner.to_owned());
        self.call(|s| async move { s.claim_run(&run, &owner, now_ms, lease_ms).await })
    }

    fn put_agent(&self, run: &RunId, agent: AgentRecord) -> StoreFuture<()> {
        let run = run.clone();
        self.call(|s| async move { s.put_agent(&run, agent).await })
    }

    fn list_agents(&self, run: &RunId) -> StoreFuture<Vec<AgentRecord>> {
        let run = run.clone();
        self.call(|s| async move { s.list_agents(&run).await })
    }
}
