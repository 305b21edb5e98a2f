//! The tables, their keys and indexes, and making sure they exist before the store is used.
//!
//! herd keeps five tables, all named `<prefix><name>` (see the README's "DynamoDB store" section
//! for the key design and why it is not one table):
//!
//! | table      | partition key | sort key | indexes                                           | TTL          |
//! |------------|---------------|----------|---------------------------------------------------|--------------|
//! | `runs`     | `id`          |          | `by_created` (`kind`, `created`), `by_test` (`test`, `created`) | |
//! | `results`  | `run`         | `item`   |                                                   |              |
//! | `tests`    | `id`          |          |                                                   |              |
//! | `commands` | `id`          |          |                                                   | `expires_at` |
//! | `tokens`   | `hash`        |          |                                                   |              |
//!
//! Every key attribute is a string. Missing tables are created on demand (pay per request), and
//! the store waits until they and their indexes are `ACTIVE`; existing tables are checked to have
//! the expected keys, so a table of some other application under the same name is refused at
//! start instead of failing on the first write.

use super::items::{build_error, sdk_error};
use crate::store::StoreError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, TableDescription, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use std::time::{Duration, Instant};

/// The `by_created` index of `runs`: every run under one partition (`kind = "run"`), sorted by
/// [`created_key`].
pub(super) const BY_CREATED: &str = "by_created";
/// The `by_test` index of `runs`: the runs of a stored test, sorted by [`created_key`].
pub(super) const BY_TEST: &str = "by_test";
/// The value of `kind` on every run item (the partition of [`BY_CREATED`]).
pub(super) const RUN_KIND: &str = "run";
/// The TTL attribute of `commands`: seconds since the Unix epoch.
pub(super) const EXPIRES_AT: &str = "expires_at";

/// How long a handled command id is remembered: far longer than any redelivery (SQS keeps a
/// message at most 14 days, but redelivers within its visibility timeout).
pub(super) const COMMAND_TTL_S: u64 = 7 * 24 * 3600;

/// How long `connect` waits for created tables to become `ACTIVE`.
const ACTIVE_WITHIN: Duration = Duration::from_secs(300);

/// The sort key of a run in both indexes: creation time, then id, so that a descending query
/// returns the newest first and ties in the same millisecond keep a stable order.
pub(super) fn created_key(created_at_ms: u64, run: &str) -> String {
    format!("{created_at_ms:020}#{run}")
}

/// The names of herd's tables under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tables {
    pub runs: String,
    pub results: String,
    pub tests: String,
    pub commands: String,
    pub tokens: String,
}

impl Tables {
    pub fn new(prefix: &str) -> Self {
        Self {
            runs: format!("{prefix}runs"),
            results: format!("{prefix}results"),
            tests: format!("{prefix}tests"),
            commands: format!("{prefix}commands"),
            tokens: format!("{prefix}tokens"),
        }
    }

    fn specs(&self) -> [Spec<'_>; 5] {
        [
            Spec {
                name: &self.runs,
                hash: "id",
                range: None,
                indexes: &[
                    (BY_CREATED, "kind", "created"),
                    (BY_TEST, "test", "created"),
                ],
                ttl: None,
            },
            Spec {
                name: &self.results,
                hash: "run",
                range: Some("item"),
                indexes: &[],
                ttl: None,
            },
            Spec {
                name: &self.tests,
                hash: "id",
                range: None,
                indexes: &[],
                ttl: None,
            },
            Spec {
                name: &self.commands,
                hash: "id",
                range: None,
                indexes: &[],
                ttl: Some(EXPIRES_AT),
            },
            Spec {
                name: &self.tokens,
                hash: "hash",
                range: None,
                indexes: &[],
                ttl: None,
            },
        ]
    }

    /// Makes sure every table exists with the expected keys and is `ACTIVE`; creates the missing
    /// ones (and enables their TTL) when `create` is set.
    pub async fn ensure(&self, client: &Client, create: bool) -> Result<(), StoreError> {
        let [a, b, c, d, e] = self.specs();
        tokio::try_join!(
            a.ensure(client, create),
            b.ensure(client, create),
            c.ensure(client, create),
            d.ensure(client, create),
            e.ensure(client, create),
        )?;
        Ok(())
    }
}

/// One table's shape: its keys, its global secondary indexes `(name, hash, range)`, its TTL.
struct Spec<'a> {
    name: &'a str,
    hash: &'static str,
    range: Option<&'static str>,
    indexes: &'static [(&'static str, &'static str, &'static str)],
    ttl: Option<&'static str>,
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(build_error("CreateTable"))
}

impl Spec<'_> {
    fn table_error(&self, detail: impl Into<String>) -> StoreError {
        StoreError::Table {
            table: self.name.to_owned(),
            detail: detail.into(),
        }
    }

    async fn ensure(&self, client: &Client, create: bool) -> Result<(), StoreError> {
        let created =
            match self.describe(client).await? {
                Some(table) => {
                    self.check_keys(&table)?;
                    false
                }
                None if create => self.create(client).await?,
                None => return Err(self.table_error(
                    "does not exist, and store.create_tables = false: create it or let herd do so",
                )),
            };
        self.wait_active(client).await?;
        if create {
            self.enable_ttl(client, created).await?;
        }
        Ok(())
    }

    async fn describe(&self, client: &Client) -> Result<Option<TableDescription>, StoreError> {
        match client.describe_table().table_name(self.name).send().await {
            Ok(out) => Ok(out.table),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error("DescribeTable")(e)),
        }
    }

    /// Whether an existing table has herd's keys and indexes.
    fn check_keys(&self, table: &TableDescription) -> Result<(), StoreError> {
        let names = |keys: &[KeySchemaElement], kind: KeyType| {
            keys.iter()
                .find(|k| *k.key_type() == kind)
                .map(|k| k.attribute_name().to_owned())
        };
        let expected = (Some(self.hash.to_owned()), self.range.map(str::to_owned));
        let found = (
            names(table.key_schema(), KeyType::Hash),
            names(table.key_schema(), KeyType::Range),
        );
        if found != expected {
            return Err(self.table_error(format!(
                "exists with keys {found:?}, but herd needs {expected:?}: is it another \
                 application's table? Choose another store.table_prefix"
            )));
        }
        for (index, hash, range) in self.indexes {
            let Some(gsi) = table
                .global_secondary_indexes()
                .iter()
                .find(|g| g.index_name() == Some(index))
            else {
                return Err(self.table_error(format!("lacks the global secondary index {index}")));
            };
            let found = (
                names(gsi.key_schema(), KeyType::Hash),
                names(gsi.key_schema(), KeyType::Range),
            );
            if found != (Some((*hash).to_owned()), Some((*range).to_owned())) {
                return Err(self.table_error(format!(
                    "index {index} has keys {found:?}, but herd needs ({hash}, {range})"
                )));
            }
        }
        Ok(())
    }

    /// Creates the table; `false` when another process created it first.
    async fn create(&self, client: &Client) -> Result<bool, StoreError> {
        let mut attributes = vec![self.hash];
        attributes.extend(self.range);
        for (_, hash, range) in self.indexes {
            attributes.extend([*hash, *range]);
        }
        attributes.sort_unstable();
        attributes.dedup();
        let mut request = client
            .create_table()
            .table_name(self.name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(self.hash, KeyType::Hash)?);
        if let Some(range) = self.range {
            request = request.key_schema(key(range, KeyType::Range)?);
        }
        for name in attributes {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build_error("CreateTable"))?,
            );
        }
        for (index, hash, range) in self.indexes {
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(*index)
                    .key_schema(key(hash, KeyType::Hash)?)
                    .key_schema(key(range, KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(build_error("CreateTable"))?,
            );
        }
        match request.send().await {
            Ok(_) => {
                tracing::info!(table = self.name, "created DynamoDB table");
                Ok(true)
            }
            // Another coordinator is creating it at the same moment: wait for it like ours.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("CreateTable")(e)),
        }
    }

    /// Polls until the table and its indexes are `ACTIVE`.
    async fn wait_active(&self, client: &Client) -> Result<(), StoreError> {
        let deadline = Instant::now() + ACTIVE_WITHIN;
        let mut delay = Duration::from_millis(100);
        loop {
            let table = self
                .describe(client)
                .await?
                .ok_or_else(|| self.table_error("disappeared while herd waited for it"))?;
            let active = table.table_status() == Some(&TableStatus::Active)
                && table
                    .global_secondary_indexes()
                    .iter()
                    .all(|g| g.index_status() == Some(&IndexStatus::Active));
            if active {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.table_error(format!(
                    "not ACTIVE after {} s (status {:?})",
                    ACTIVE_WITHIN.as_secs(),
                    table.table_status()
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Turns on the table's TTL if it has one and it is off. Existing tables are only checked
    /// (`created` false): enabling TTL on a table twice is refused by DynamoDB.
    async fn enable_ttl(&self, client: &Client, created: bool) -> Result<(), StoreError> {
        let Some(attribute) = self.ttl else {
            return Ok(());
        };
        if !created {
            let out = client
                .describe_time_to_live()
                .table_name(self.name)
                .send()
                .await
                .map_err(sdk_error("DescribeTimeToLive"))?;
            let status = out
                .time_to_live_description()
                .and_then(|d| d.time_to_live_status());
            if matches!(
                status,
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            ) {
                return Ok(());
            }
        }
        client
            .update_time_to_live()
            .table_name(self.name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(attribute)
                    .build()
                    .map_err(build_error("UpdateTimeToLive"))?,
            )
            .send()
            .await
            .map_err(sdk_error("UpdateTimeToLive"))?;
        Ok(())
    }
}
