//! Handled command ids, in `commands`: the first reply of each id, kept for
//! [`COMMAND_TTL_S`](super::tables::COMMAND_TTL_S) by DynamoDB's TTL.
//!
//! The write is conditional (`attribute_not_exists`): when the same command is handled twice at
//! once (two deliveries of one SQS message to two coordinators), the first reply stays and the
//! second write changes nothing, like the embedded store's `ON CONFLICT DO NOTHING`.

use super::items::{check_size, condition_failed, get_json, json, n, s, sdk_error, Item};
use super::tables::{COMMAND_TTL_S, EXPIRES_AT};
use super::DynamoStore;
use crate::store::StoreError;

impl DynamoStore {
    pub(super) async fn get_command(
        &self,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.commands)
            .key("id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error("GetItem"))?;
        out.item
            .map(|item| get_json(&item, "reply", "command reply"))
            .transpose()
    }

    pub(super) async fn put_command(
        &self,
        id: &str,
        reply: serde_json::Value,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let item = Item::from([
            ("id".to_owned(), s(id)),
            ("reply".to_owned(), json("command reply", &reply)?),
            ("at_ms".to_owned(), n(at_ms)),
            (EXPIRES_AT.to_owned(), n(at_ms / 1000 + COMMAND_TTL_S)),
        ]);
        check_size("command reply", &item)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.commands)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Handled before: the first reply stays.
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(sdk_error("PutItem")(e)),
        }
    }
}
