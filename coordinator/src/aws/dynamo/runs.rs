//! Runs: one item each in `runs`, listed newest first through the `by_created` and `by_test`
//! indexes, with every state change a conditional write.
//!
//! A run is driven by one coordinator at a time. Its item names that coordinator (`owner`) and
//! counts its changes (`version`); a state change only applies when this store is the owner and the
//! stored state is one the new state may follow (forward only, never after the run ended). So two
//! coordinators that both believe they drive a run cannot both move it, and a late write from an
//! out-of-order task cannot move a run backwards. [`DynamoStore::claim`] is how a coordinator
//! takes over a run whose owner is gone (a restart), conditional on the version it read.

use super::items::{
    check_size, condition_failed, get_json, get_n, get_s, json, n, opt_n, opt_s, s, sdk_error, Item,
};
use super::tables::{created_key, BY_CREATED, BY_TEST, RUN_KIND};
use super::DynamoStore;
use crate::store::{RunRecord, RunStateName, StoreError, UnknownRunState};
use herd_protocol::RunId;

/// Where a state sits in a run's life; a run only moves to a higher rank.
fn rank(state: RunStateName) -> u8 {
    match state {
        RunStateName::Launching => 0,
        RunStateName::WaitingReady => 1,
        RunStateName::Running => 2,
        RunStateName::Stopping => 3,
        RunStateName::Completed
        | RunStateName::Degraded
        | RunStateName::Failed
        | RunStateName::Cancelled => 4,
    }
}

/// The states a run may be in for `state` to follow.
fn predecessors(state: RunStateName) -> Vec<RunStateName> {
    [
        RunStateName::Launching,
        RunStateName::WaitingReady,
        RunStateName::Running,
        RunStateName::Stopping,
    ]
    .into_iter()
    .filter(|p| rank(*p) < rank(state))
    .collect()
}

fn run_item(run: &RunRecord, owner: &str) -> Result<Item, StoreError> {
    let mut item = Item::from([
        ("id".to_owned(), s(run.id.as_str())),
        ("kind".to_owned(), s(RUN_KIND)),
        (
            "created".to_owned(),
            s(created_key(run.created_at_ms, run.id.as_str())),
        ),
        ("name".to_owned(), s(&run.name)),
        ("plan".to_owned(), json("plan", &run.plan)?),
        ("state".to_owned(), s(run.state.as_str())),
        ("agents".to_owned(), n(run.agents)),
        ("created_at_ms".to_owned(), n(run.created_at_ms)),
        ("updated_at_ms".to_owned(), n(run.updated_at_ms)),
        ("owner".to_owned(), s(owner)),
        ("version".to_owned(), n(0)),
    ]);
    if let Some(test) = &run.test {
        item.insert("test".to_owned(), s(test));
    }
    if let Some(reason) = &run.reason {
        item.insert("reason".to_owned(), s(reason));
    }
    check_size("run (its plan is too large)", &item)?;
    Ok(item)
}

pub(super) fn run_from_item(item: &Item) -> Result<RunRecord, StoreError> {
    let state = get_s(item, "state", "run state")?;
    Ok(RunRecord {
        id: RunId::new(get_s(item, "id", "run id")?).map_err(|e| corrupt("run id", e))?,
        name: get_s(item, "name", "run name")?,
        test: opt_s(item, "test", "run's test")?,
        plan: get_json(item, "plan", "plan")?,
        state: state
            .parse()
            .map_err(|e: UnknownRunState| corrupt("run state", e))?,
        agents: get_n(item, "agents", "agents")?,
        created_at_ms: get_n(item, "created_at_ms", "creation time")?,
        updated_at_ms: get_n(item, "updated_at_ms", "update time")?,
        reason: opt_s(item, "reason", "reason")?,
        start_at_ms: opt_n(item, "start_at_ms", "start time")?,
        ends_at_ms: opt_n(item, "ends_at_ms", "end time")?,
    })
}

fn corrupt(what: &'static str, detail: impl ToString) -> StoreError {
    super::items::corrupt(what, detail)
}

/// A run's item with its ownership attributes.
struct Stored {
    record: RunRecord,
    owner: String,
}

impl DynamoStore {
    pub(super) async fn create_run(&self, run: RunRecord) -> Result<(), StoreError> {
        let item = run_item(&run, &self.owner)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.runs)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(StoreError::RunExists(run.id)),
            Err(e) => Err(sdk_error("PutItem")(e)),
        }
    }

    pub(super) async fn set_run_state(
        &self,
        run: &RunId,
        state: RunStateName,
        at_ms: u64,
        reason: Option<String>,
    ) -> Result<(), StoreError> {
        let allowed = predecessors(state);
        if allowed.is_empty() {
            return Err(self.refusal(run, state).await);
        }
        let mut update =
            "SET #state = :state, #updated = :at, #version = #version + :one".to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.tables.runs)
            .key("id", s(run.as_str()))
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#updated", "updated_at_ms")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#reason", "reason")
            .expression_attribute_values(":state", s(state.as_str()))
            .expression_attribute_values(":at", n(at_ms))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":me", s(self.owner.as_ref()));
        match reason {
            Some(reason) => {
                update.push_str(", #reason = :reason");
                request = request.expression_attribute_values(":reason", s(reason));
            }
            None => update.push_str(" REMOVE #reason"),
        }
        let mut placeholders = Vec::new();
        for (i, p) in allowed.iter().enumerate() {
            let name = format!(":from{i}");
            request = request.expression_attribute_values(&name, s(p.as_str()));
            placeholders.push(name);
        }
        let condition = format!("#owner = :me AND #state IN ({})", placeholders.join(", "));
        let result = request
            .update_expression(update)
            .condition_expression(condition)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(self.refusal(run, state).await),
            Err(e) => Err(sdk_error("UpdateItem")(e)),
        }
    }

    /// Why a change of `run` to `state` was refused, read from the stored run.
    async fn refusal(&self, run: &RunId, state: RunStateName) -> StoreError {
        let stored = match self.stored_run(run).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return StoreError::UnknownRun(run.clone()),
            Err(e) => return e,
        };
        let current = stored.record.state;
        let detail = if stored.owner != *self.owner {
            format!(
                "is driven by coordinator {}, not this one ({}); it must claim the run first",
                stored.owner, self.owner
            )
        } else if current.is_terminal() {
            format!("has ended ({current}); it cannot become {state}")
        } else if current == state {
            format!("is already {state}")
        } else {
            format!("is {current}; it cannot go back to {state}")
        };
        StoreError::Conflict {
            run: run.clone(),
            detail,
        }
    }

    async fn stored_run(&self, run: &RunId) -> Result<Option<Stored>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.runs)
            .key("id", s(run.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error("GetItem"))?;
        out.item
            .map(|item| {
                Ok(Stored {
                    record: run_from_item(&item)?,
                    owner: get_s(&item, "owner", "run owner")?,
                })
            })
            .transpose()
    }

    /// Fails unless `run` exists and this store drives it: results of a run come from its owner.
    pub(super) async fn check_owner(&self, run: &RunId) -> Result<(), StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.runs)
            .key("id", s(run.as_str()))
            .projection_expression("#owner")
            .expression_attribute_names("#owner", "owner")
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error("GetItem"))?;
        let item = out
            .item
            .ok_or_else(|| StoreError::UnknownRun(run.clone()))?;
        let owner = get_s(&item, "owner", "run owner")?;
        if owner != *self.owner {
            return Err(StoreError::Conflict {
                run: run.clone(),
                detail: format!(
                    "is driven by coordinator {owner}, not this one ({}); its results are not \
                     this coordinator's to write",
                    self.owner
                ),
            });
        }
        Ok(())
    }

    pub(super) async fn get_run(&self, run: &RunId) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.stored_run(run).await?.map(|stored| stored.record))
    }

    pub(super) async fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.runs_newest_first(BY_CREATED, "kind", RUN_KIND, limit, 0)
            .await
    }

    pub(super) async fn list_test_runs(
        &self,
        test: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.runs_newest_first(BY_TEST, "test", test, limit, offset)
            .await
    }

    /// Pages through an index newest first. DynamoDB has no offset: the skipped runs are read
    /// too, which is fine for the short pages of an API listing.
    async fn runs_newest_first(
        &self,
        index: &str,
        key: &str,
        value: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let wanted = offset.saturating_add(limit);
        let mut runs = Vec::new();
        let mut start: Option<Item> = None;
        while runs.len() < wanted {
            let page = i32::try_from(wanted - runs.len()).unwrap_or(i32::MAX);
            let out = self
                .client
                .query()
                .table_name(&self.tables.runs)
                .index_name(index)
                .key_condition_expression("#k = :v")
                .expression_attribute_names("#k", key)
                .expression_attribute_values(":v", s(value))
                .scan_index_forward(false)
                .limit(page)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error("Query"))?;
            for item in out.items() {
                runs.push(run_from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(runs.into_iter().skip(offset).take(limit).collect())
    }
}
