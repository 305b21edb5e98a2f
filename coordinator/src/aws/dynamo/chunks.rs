//! Values larger than one DynamoDB item (400 KB): split into parts, written in batches, read back
//! whole.
//!
//! A value (a second's merged histogram, a run's compressed summary) lives in a *head* item of the
//! `results` table with the value's other attributes and its first part. When the value is larger
//! than one part, the rest goes into part items keyed `<head>#<gen>#<i>`, where `gen` is random per
//! write and recorded in the head:
//! - the parts are written first (`BatchWriteItem`, 25 per call, unprocessed ones retried with
//!   backoff), then the head, in one `PutItem`: a reader sees either the old value whole or the new
//!   value whole, never a mix, because the head only ever names parts that already exist;
//! - the parts of the value the head replaced are deleted afterwards (a write that dies in between
//!   leaves parts no head names, which readers ignore);
//! - a reader whose query crossed a replacement (a head naming parts deleted meanwhile) reads again.
//!
//! Part items sort right after their head (`#` sorts before digits), so one query returns heads and
//! parts in order.

use super::items::{b, build_error, get_b, get_s, n, opt_n, opt_s, s, sdk_error, Item};
use super::DynamoStore;
use crate::store::StoreError;
use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, ReturnValue, WriteRequest};
use herd_protocol::RunId;
use ring::rand::SecureRandom;
use std::collections::HashMap;
use std::time::Duration;

/// The most writes one `BatchWriteItem` call takes.
pub(super) const BATCH_MAX: usize = 25;

/// How many times unprocessed batch writes (throttling) are sent again before giving up.
const BATCH_ATTEMPTS: u32 = 8;

/// How many times a read that crossed a replacement is repeated.
const READ_ATTEMPTS: u32 = 3;

const DATA: &str = "data";
const PARTS: &str = "parts";
const GEN: &str = "gen";
const PART: &str = "part";

fn part_key(head: &str, gen: &str, index: usize) -> String {
    format!("{head}#{gen}#{index:04}")
}

/// A random id for one write's parts.
fn new_gen() -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError::Task("the system random generator failed".to_owned()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn key(run: &RunId, item: String) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    HashMap::from([
        ("run".to_owned(), s(run.as_str())),
        ("item".to_owned(), s(item)),
    ])
}

/// A head item and the value it holds, whole.
pub(super) struct Chunked {
    pub head: Item,
    pub data: Vec<u8>,
}

impl DynamoStore {
    /// Stores `data` with the head item `head` (keyed `run`/`sort`; `attributes` are its other
    /// attributes), replacing what was stored under that head.
    pub(super) async fn put_chunked(
        &self,
        run: &RunId,
        sort: &str,
        mut attributes: Item,
        data: &[u8],
        what: &'static str,
    ) -> Result<(), StoreError> {
        let mut parts = data.chunks(self.part_bytes);
        let first = parts.next().unwrap_or_default();
        let rest: Vec<&[u8]> = parts.collect();
        attributes.extend(key(run, sort.to_owned()));
        if !first.is_empty() {
            attributes.insert(DATA.to_owned(), b(first.to_vec()));
        }
        if !rest.is_empty() {
            let gen = new_gen()?;
            let mut writes = Vec::with_capacity(rest.len());
            for (i, part) in rest.iter().enumerate() {
                let mut item = key(run, part_key(sort, &gen, i + 1));
                item.insert(DATA.to_owned(), b(part.to_vec()));
                item.insert(PART.to_owned(), n(i + 1));
                writes.push(put_request(item)?);
            }
            self.batch_write(&self.tables.results, writes).await?;
            attributes.insert(PARTS.to_owned(), n(rest.len() + 1));
            attributes.insert(GEN.to_owned(), s(gen));
        }
        super::items::check_size(what, &attributes)?;
        let old = self
            .client
            .put_item()
            .table_name(&self.tables.results)
            .set_item(Some(attributes))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk_error("PutItem"))?
            .attributes;
        if let Some(old) = old {
            self.delete_parts(run, sort, &old).await?;
        }
        Ok(())
    }

    /// Deletes the parts a replaced head named.
    async fn delete_parts(&self, run: &RunId, sort: &str, old: &Item) -> Result<(), StoreError> {
        let count: u64 = opt_n(old, PARTS, "part count")?.unwrap_or(1);
        let Some(gen) = opt_s(old, GEN, "part generation")? else {
            return Ok(());
        };
        let mut deletes = Vec::new();
        for i in 1..usize::try_from(count).unwrap_or(0) {
            let request = DeleteRequest::builder()
                .set_key(Some(key(run, part_key(sort, &gen, i))))
                .build()
                .map_err(build_error("BatchWriteItem"))?;
            deletes.push(WriteRequest::builder().delete_request(request).build());
        }
        self.batch_write(&self.tables.results, deletes).await
    }

    /// Writes in calls of at most [`BATCH_MAX`], sending unprocessed writes again with
    /// exponential backoff (DynamoDB returns them when a partition is throttled).
    pub(super) async fn batch_write(
        &self,
        table: &str,
        writes: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        let mut writes = writes.into_iter().peekable();
        while writes.peek().is_some() {
            let mut batch: Vec<WriteRequest> = writes.by_ref().take(BATCH_MAX).collect();
            let mut delay = Duration::from_millis(50);
            for attempt in 1.. {
                let mut out = self
                    .client
                    .batch_write_item()
                    .request_items(table, batch)
                    .send()
                    .await
                    .map_err(sdk_error("BatchWriteItem"))?;
                batch = out
                    .unprocessed_items
                    .as_mut()
                    .and_then(|u| u.remove(table))
                    .unwrap_or_default();
                if batch.is_empty() {
                    break;
                }
                if attempt >= BATCH_ATTEMPTS {
                    return Err(StoreError::Dynamo {
                        op: "BatchWriteItem",
                        detail: format!(
                            "{} writes to {table} still unprocessed after {attempt} attempts \
                             (throttled)",
                            batch.len()
                        ),
                    });
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
        Ok(())
    }

    /// Every head under `prefix` of `run`'s results, in key order, with its value whole.
    pub(super) async fn read_chunked(
        &self,
        run: &RunId,
        prefix: &str,
    ) -> Result<Vec<Chunked>, StoreError> {
        let mut attempt = 1;
        loop {
            let items = self.query_results(run, prefix).await?;
            match assemble(items)? {
                Some(values) => return Ok(values),
                None if attempt < READ_ATTEMPTS => attempt += 1,
                None => {
                    return Err(super::items::corrupt(
                        "results",
                        format!("parts of {run}'s {prefix} items are missing"),
                    ))
                }
            }
        }
    }

    async fn query_results(&self, run: &RunId, prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.tables.results)
                .key_condition_expression("#run = :run AND begins_with(#item, :prefix)")
                .expression_attribute_names("#run", "run")
                .expression_attribute_names("#item", "item")
                .expression_attribute_values(":run", s(run.as_str()))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error("Query"))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }
}

fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
    let request = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(build_error("BatchWriteItem"))?;
    Ok(WriteRequest::builder().put_request(request).build())
}

/// Joins heads with their parts; `None` when a head names a part that is not there (the query
/// crossed a replacement).
fn assemble(items: Vec<Item>) -> Result<Option<Vec<Chunked>>, StoreError> {
    let mut parts: HashMap<String, Item> = HashMap::new();
    let mut heads = Vec::new();
    for item in items {
        if item.contains_key(PART) {
            parts.insert(get_s(&item, "item", "result part key")?, item);
        } else {
            heads.push(item);
        }
    }
    let mut values = Vec::with_capacity(heads.len());
    for head in heads {
        let mut data = match head.get(DATA) {
            Some(_) => get_b(&head, DATA, "result data")?.to_vec(),
            None => Vec::new(),
        };
        let count: u64 = opt_n(&head, PARTS, "part count")?.unwrap_or(1);
        if count > 1 {
            let sort = get_s(&head, "item", "result key")?;
            let gen = get_s(&head, GEN, "part generation")?;
            for i in 1..usize::try_from(count).unwrap_or(0) {
                let Some(part) = parts.get(&part_key(&sort, &gen, i)) else {
                    return Ok(None);
                };
                data.extend_from_slice(get_b(part, DATA, "result part")?);
            }
        }
        values.push(Chunked { head, data });
    }
    Ok(Some(values))
}
