//! The audit log, in the `results` table under its own partition ([`AUDIT_PARTITION`], which no
//! run id can be: ids have no `#`), one item per write sorted by time: listing the newest is one
//! descending `Query`, and no sixth table (with its IAM statements and template resource) is
//! needed. An entry is written once: the put is conditional on its key.

use super::items::{condition_failed, get_n, get_s, n, s, sdk_error, Item};
use super::DynamoStore;
use crate::store::{AuditEntry, StoreError};

/// The `run` value of audit items.
const AUDIT_PARTITION: &str = "#audit";

/// The sort key: time, then id, so entries sort by time and one id has one key.
fn audit_key(entry: &AuditEntry) -> String {
    format!("audit#{:020}#{}", entry.at_ms, entry.id)
}

impl DynamoStore {
    pub(super) async fn append_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let item = Item::from([
            ("run".to_owned(), s(AUDIT_PARTITION)),
            ("item".to_owned(), s(audit_key(&entry))),
            ("id".to_owned(), s(&entry.id)),
            ("at_ms".to_owned(), n(entry.at_ms)),
            ("actor".to_owned(), s(&entry.actor)),
            ("action".to_owned(), s(&entry.action)),
            ("status".to_owned(), n(entry.status)),
        ]);
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.results)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#item)")
            .expression_attribute_names("#item", "item")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(sdk_error("PutItem")(e)),
        }
    }

    pub(super) async fn list_audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let mut entries = Vec::new();
        let mut start: Option<Item> = None;
        while entries.len() < limit {
            let out = self
                .client
                .query()
                .table_name(&self.tables.results)
                .key_condition_expression("#run = :run")
                .expression_attribute_names("#run", "run")
                .expression_attribute_values(":run", s(AUDIT_PARTITION))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(i32::try_from(limit - entries.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error("Query"))?;
            for item in out.items() {
                entries.push(AuditEntry {
                    id: get_s(item, "id", "audit id")?,
                    at_ms: get_n(item, "at_ms", "audit time")?,
                    actor: get_s(item, "actor", "audit actor")?,
                    action: get_s(item, "action", "audit action")?,
                    status: get_n(item, "status", "audit status")?,
                });
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(entries)
    }
}
