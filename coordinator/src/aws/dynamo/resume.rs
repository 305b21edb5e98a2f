//! The resume half of the [`crate::store::Store`] on DynamoDB (see [`crate::store::resume`]): a
//! run's start time (and its end, after a live ramp), the runs not ended, claims with a lease,
//! and agents' records.
//!
//! A claim is one conditional `UpdateItem` on the run's item: it names the new owner and when its
//! lease ends (`lease_until_ms`), and applies only when the run has no lease yet, is already the
//! caller's, or its lease ended. Since state changes and results already require the run's owner
//! to be this store's ([`super::runs`]), a coordinator that lost its claim cannot write either.
//! Agents' records live in the run's partition of `results` (`agent#<id>`), as JSON.

use super::items::{condition_failed, get_s, n, opt_n, s, sdk_error, Item};
use super::tables::{BY_CREATED, RUN_KIND};
use super::DynamoStore;
use crate::store::{AgentRecord, Claim, RunRecord, RunStateName, StoreError};
use herd_protocol::RunId;

/// The prefix of agent records' sort keys.
const AGENT: &str = "agent#";

impl DynamoStore {
    /// Sets one of a run's times (`start_at_ms`, or `ends_at_ms` after a live ramp), if this
    /// store owns the run.
    pub(super) async fn set_run_time(
        &self,
        run: &RunId,
        attribute: &'static str,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.runs)
            .key("id", s(run.as_str()))
            .update_expression("SET #time = :time")
            .condition_expression("#owner = :me")
            .expression_attribute_names("#time", attribute)
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":time", n(at_ms))
            .expression_attribute_values(":me", s(self.owner.as_ref()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => self.check_owner(run).await,
            Err(e) => Err(sdk_error("UpdateItem")(e)),
        }
    }

    pub(super) async fn list_unfinished_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let ended = [
            RunStateName::Completed,
            RunStateName::Degraded,
            RunStateName::Failed,
            RunStateName::Cancelled,
        ];
        let mut runs = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.tables.runs)
                .index_name(BY_CREATED)
                .key_condition_expression("#kind = :kind")
                .filter_expression("NOT (#state IN (:e0, :e1, :e2, :e3))")
                .expression_attribute_names("#kind", "kind")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":kind", s(RUN_KIND))
                .scan_index_forward(true)
                .set_exclusive_start_key(start.take());
            for (i, state) in ended.iter().enumerate() {
                query = query.expression_attribute_values(format!(":e{i}"), s(state.as_str()));
            }
            let out = query.send().await.map_err(sdk_error("Query"))?;
            for item in out.items() {
                runs.push(super::runs::run_from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(runs)
    }

    pub(super) async fn claim_run(
        &self,
        run: &RunId,
        owner: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Claim, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.runs)
            .key("id", s(run.as_str()))
            .update_expression("SET #owner = :owner, #lease = :until, #version = #version + :one")
            .condition_expression(
                "attribute_exists(id) AND (#owner = :owner OR attribute_not_exists(#lease) \
                 OR #lease < :now)",
            )
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#lease", "lease_until_ms")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", n(now_ms.saturating_add(lease_ms)))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Granted),
            Err(e) if condition_failed(&e) => {
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.tables.runs)
                    .key("id", s(run.as_str()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(sdk_error("GetItem"))?;
                let item = out
                    .item
                    .ok_or_else(|| StoreError::UnknownRun(run.clone()))?;
                Ok(Claim::HeldBy {
                    owner: get_s(&item, "owner", "run owner")?,
                    until_ms: opt_n(&item, "lease_until_ms", "lease end")?.unwrap_or(0),
                })
            }
            Err(e) => Err(sdk_error("UpdateItem")(e)),
        }
    }

    pub(super) async fn put_agent(
        &self,
        run: &RunId,
        agent: AgentRecord,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_vec(&agent).map_err(|source| StoreError::Encode {
            what: "agent record",
            source,
        })?;
        self.check_owner(run).await?;
        let key = format!("{AGENT}{}", agent.agent);
        self.put_chunked(run, &key, Item::new(), &json, "agent record")
            .await
    }

    pub(super) async fn list_agents(&self, run: &RunId) -> Result<Vec<AgentRecord>, StoreError> {
        let mut agents: Vec<AgentRecord> = self
            .read_chunked(run, AGENT)
            .await?
            .into_iter()
            .map(|value| {
                serde_json::from_slice(&value.data)
                    .map_err(|e| super::items::corrupt("agent record", e))
            })
            .collect::<Result<_, _>>()?;
        agents.sort_by(|a, b| a.agent.cmp(&b.agent));
        Ok(agents)
    }
}
