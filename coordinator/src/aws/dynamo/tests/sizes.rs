//! DynamoDB's 400 KB item limit: the largest histogram herd makes fits one item, larger values are
//! split into parts written in batches of at most 25 and read back whole, and records that cannot
//! fit are refused with the field named.

use super::{aws, client, PREFIX};
use crate::aws::dynamo::chunks::BATCH_MAX;
use crate::aws::dynamo::items::MAX_ITEM_BYTES;
use crate::aws::dynamo::items::PART_BYTES;
use crate::aws::dynamo::DynamoStore;
use crate::store::suite::{id, record, second, summary};
use crate::store::{SecondRecord, StoreError};
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use herd_protocol::histogram::{new_latency, EncodedHistogram, Latency};
use herd_protocol::summary::{AgentSummary, SecondSummary, Summary};
use std::sync::{Arc, Mutex};

/// Every distinct value from 1 µs to 60 s that herd's histogram tells apart, each with a count
/// up to `max_count` (xorshift, so deflate finds nothing to squeeze).
fn spread_histogram(max_count: u64) -> Latency {
    let mut h = new_latency();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut v = 1;
    while v <= 60_000_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        h.record_n(v, 1 + x % max_count).expect("in range");
        v = h.next_non_equivalent(v);
    }
    h
}

fn second_with(histogram: &Latency) -> SecondRecord {
    SecondRecord {
        requests: histogram.len(),
        histogram: EncodedHistogram::encode(histogram),
        ..second(0, 2, 1_000)
    }
}

/// The sizes of the `BatchWriteItem` calls a client makes.
#[derive(Debug, Clone, Default)]
struct BatchSizes(Arc<Mutex<Vec<usize>>>);

impl Intercept for BatchSizes {
    fn name(&self) -> &'static str {
        "BatchSizes"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(input) = context.input().downcast_ref::<BatchWriteItemInput>() {
            let writes = input
                .request_items()
                .map_or(0, |tables| tables.values().map(Vec::len).sum());
            self.0.lock().expect("not poisoned").push(writes);
        }
        Ok(())
    }
}

/// A store whose client records its batch sizes, splitting values into parts of `part_bytes`.
async fn store_with(aws: &super::Aws, part_bytes: usize) -> (DynamoStore, BatchSizes) {
    let batches = BatchSizes::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&aws.sdk)
        .interceptor(batches.clone())
        .build();
    let mut store =
        DynamoStore::with_client(aws_sdk_dynamodb::Client::from_conf(config), PREFIX, true)
            .await
            .expect("connected");
    store.part_bytes = part_bytes;
    (store, batches)
}

/// The sort keys stored for run `r` under `prefix`, with their `parts` attribute if any.
async fn stored_keys(aws: &super::Aws, prefix: &str) -> Vec<(String, Option<AttributeValue>)> {
    let out = client(aws)
        .query()
        .table_name(format!("{PREFIX}results"))
        .key_condition_expression("#run = :run AND begins_with(#item, :prefix)")
        .expression_attribute_names("#run", "run")
        .expression_attribute_names("#item", "item")
        .expression_attribute_values(":run", AttributeValue::S("r".into()))
        .expression_attribute_values(":prefix", AttributeValue::S(prefix.into()))
        .send()
        .await
        .expect("queried");
    out.items()
        .iter()
        .map(|item| {
            let key = match item.get("item") {
                Some(AttributeValue::S(k)) => k.clone(),
                other => panic!("sort key {other:?}"),
            };
            (key, item.get("parts").cloned())
        })
        .collect()
}

/// A summary of `seconds` seconds on `agents` agents, with values that survive JSON exactly.
fn long_summary(seconds: u64, agents: u32) -> Summary {
    let mut s = summary("r", 1_000_000);
    s.seconds = (0..seconds)
        .map(|t| SecondSummary {
            t,
            requests: 1_000 + t % 977,
            errors: t % 3,
            dropped: 0,
            p50_ms: (t % 1_000) as f64 / 4.0,
            p99_ms: (t % 5_000) as f64 / 8.0,
            agents_reported: agents,
            agents_expected: agents,
            p90_ms: Some((t % 3_000) as f64 / 4.0),
            p999_ms: Some((t % 7_000) as f64 / 8.0),
            vus: Some(u64::from(agents) * 10),
            status_codes: [
                ("200".to_string(), 1_000 + t % 977 - t % 3),
                ("503".to_string(), t % 3),
            ]
            .into_iter()
            .collect(),
            regions: Default::default(),
            scenarios: Default::default(),
            error_kinds: Default::default(),
            health: Some(herd_protocol::summary::SecondHealth {
                cpu_max_percent: (t % 100) as f64,
                cpu_max_agent: format!("agent-{}", t % u64::from(agents.max(1))),
                loop_lag_max_ms: (t % 50) as f64 / 4.0,
                in_flight: t % 64,
                bottlenecks: 0,
            }),
        })
        .collect();
    s.agents = (0..agents)
        .map(|i| AgentSummary {
            id: format!(
                "agent-{i}-{:016x}",
                u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ),
            pid: Some(10_000 + i),
            requests: 1_000_000 + u64::from(i) * 7_919,
            errors: u64::from(i % 13),
            lost: i % 97 == 0,
            gaps: vec![],
        })
        .collect();
    s
}

#[tokio::test]
async fn the_worst_histogram_herd_makes_fits_in_one_item() {
    // Every bucket from 1 µs to 60 s filled, with counts up to 2^48 each (a second of real load
    // stays below 2^30): each count takes 7 bytes before compression, and random ones do not
    // compress.
    let worst = spread_histogram(1 << 48);
    let encoded = EncodedHistogram::encode(&worst);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&encoded.0)
        .expect("base64");
    eprintln!(
        "worst-case histogram: {} buckets filled, {} bytes V2-deflate, {} bytes base64",
        worst.iter_recorded().count(),
        bytes.len(),
        encoded.0.len()
    );
    assert!(bytes.len() < PART_BYTES, "{} bytes need parts", bytes.len());

    let aws = aws().await;
    let (store, batches) = store_with(&aws, PART_BYTES).await;
    store.create_run(record("r", 1)).await.expect("created");
    let stored = second_with(&worst);
    store
        .put_second(&id("r"), stored.clone())
        .await
        .expect("stored");
    assert_eq!(
        store.list_seconds(&id("r")).await.expect("read"),
        std::slice::from_ref(&stored)
    );
    assert_eq!(
        stored.histogram.decode().expect("decodes").len(),
        worst.len()
    );
    // One item, no parts, no batch.
    assert_eq!(
        stored_keys(&aws, "second#").await,
        [(format!("second#{:020}", 0), None)]
    );
    assert!(batches.0.lock().expect("not poisoned").is_empty());
}

#[tokio::test]
async fn values_larger_than_a_part_are_split_batched_by_25_and_read_back_whole() {
    let aws = aws().await;
    // Parts of 1 KB, so an ordinary summary and histogram need many.
    let (store, batches) = store_with(&aws, 1024).await;
    store.create_run(record("r", 1)).await.expect("created");

    let large = long_summary(3_600, 2_000);
    store.put_summary(&id("r"), &large).await.expect("stored");
    assert_eq!(
        store.get_summary(&id("r")).await.expect("read").as_ref(),
        Some(&large)
    );
    let keys = stored_keys(&aws, "summary").await;
    let parts = keys.len();
    assert_eq!(
        keys[0],
        (
            "summary".to_owned(),
            Some(AttributeValue::N(parts.to_string()))
        )
    );
    assert!(parts > 2 * BATCH_MAX, "only {parts} parts");
    let sizes = std::mem::take(&mut *batches.0.lock().expect("not poisoned"));
    assert!(
        sizes.iter().all(|&n| (1..=BATCH_MAX).contains(&n)),
        "{sizes:?}"
    );
    assert_eq!(sizes.iter().sum::<usize>(), parts - 1, "{sizes:?}");

    // Replaced by a small summary: one item again, the old parts deleted (in batches too).
    let small = summary("r", 10);
    store.put_summary(&id("r"), &small).await.expect("replaced");
    assert_eq!(
        store.get_summary(&id("r")).await.expect("read"),
        Some(small)
    );
    assert_eq!(
        stored_keys(&aws, "summary").await,
        [("summary".to_owned(), None)]
    );
    let sizes = std::mem::take(&mut *batches.0.lock().expect("not poisoned"));
    assert!(
        sizes.iter().all(|&n| (1..=BATCH_MAX).contains(&n)),
        "{sizes:?}"
    );
    assert_eq!(sizes.iter().sum::<usize>(), parts - 1, "{sizes:?}");

    // A histogram in parts, between seconds stored whole: read back in order of t.
    let split = second_with(&spread_histogram(1 << 20));
    let split = SecondRecord { t: 1, ..split };
    for s in [second(2, 3, 700), split.clone(), second(0, 4, 900)] {
        store.put_second(&id("r"), s).await.expect("stored");
    }
    assert_eq!(
        store.list_seconds(&id("r")).await.expect("read"),
        [second(0, 4, 900), split, second(2, 3, 700)]
    );
}

#[tokio::test]
async fn a_day_long_summary_of_a_large_fleet_is_stored_in_full_size_parts() {
    let aws = aws().await;
    let (store, batches) = store_with(&aws, PART_BYTES).await;
    store.create_run(record("r", 1)).await.expect("created");
    let day = long_summary(86_400, 1_000);
    let json = serde_json::to_vec(&day).expect("json").len();
    store.put_summary(&id("r"), &day).await.expect("stored");
    let keys = stored_keys(&aws, "summary").await;
    eprintln!(
        "a 24 h summary of 1000 agents: {json} bytes of JSON, stored in {} items",
        keys.len()
    );
    assert!(json > MAX_ITEM_BYTES, "{json} bytes fit one item anyway");
    assert!(keys.len() > 1, "{keys:?}");
    assert_eq!(batches.0.lock().expect("not poisoned").len(), 1);
    assert_eq!(store.get_summary(&id("r")).await.expect("read"), Some(day));
}

#[tokio::test]
async fn records_too_large_for_an_item_are_refused_naming_the_field() {
    let aws = aws().await;
    let store = super::store(&aws).await;
    let mut run = record("r", 1);
    run.plan = serde_json::json!({ "name": "x".repeat(MAX_ITEM_BYTES) });
    match store.create_run(run).await {
        Err(e @ StoreError::Unstorable { .. }) => {
            assert!(e.to_string().contains("plan is too large"), "{e}");
        }
        other => panic!("expected an unstorable run, got {other:?}"),
    }
    assert_eq!(store.get_run(&id("r")).await.expect("read"), None);
    let reply = serde_json::json!({ "text": "y".repeat(MAX_ITEM_BYTES) });
    match store.put_command("c1", reply, 1).await {
        Err(e @ StoreError::Unstorable { .. }) => {
            assert!(e.to_string().contains("command reply"), "{e}");
        }
        other => panic!("expected an unstorable reply, got {other:?}"),
    }
    assert_eq!(store.get_command("c1").await.expect("read"), None);
}
