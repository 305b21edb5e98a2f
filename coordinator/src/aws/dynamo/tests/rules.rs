//! Conditional writes: runs that only move forward and only by their owner, command ids with a
//! TTL, and tables that are missing or of another shape.

use super::{aws, client, store, PREFIX};
use crate::aws::dynamo::DynamoStore;
use crate::store::suite::{id, record, second, summary};
use crate::store::{Claim, RunStateName, StoreError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveStatus,
};

/// Asserts a refused change of run `r`, its reason containing `text`.
fn conflict(result: Result<(), StoreError>, text: &str) {
    match result {
        Err(StoreError::Conflict { run, detail }) => {
            assert_eq!(run, id("r"));
            assert!(detail.contains(text), "{detail:?} lacks {text:?}");
        }
        other => panic!("expected a conflict about {text:?}, got {other:?}"),
    }
}

async fn version_of(aws: &super::Aws, run: &str) -> AttributeValue {
    let item = client(aws)
        .get_item()
        .table_name(format!("{PREFIX}runs"))
        .key("id", AttributeValue::S(run.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("read")
        .item
        .expect("stored");
    item.get("version").cloned().expect("a version")
}

#[tokio::test]
async fn a_run_state_only_moves_forward_and_never_after_the_end() {
    let aws = aws().await;
    let store = store(&aws).await;
    store.create_run(record("r", 1)).await.expect("created");
    use RunStateName::*;
    conflict(
        store.set_run_state(&id("r"), Launching, 2, None).await,
        "is already launching",
    );
    store
        .set_run_state(&id("r"), Running, 3, None)
        .await
        .expect("forward, skipping waiting_ready");
    conflict(
        store.set_run_state(&id("r"), WaitingReady, 4, None).await,
        "is running; it cannot go back to waiting_ready",
    );
    conflict(
        store.set_run_state(&id("r"), Running, 5, None).await,
        "is already running",
    );
    store
        .set_run_state(&id("r"), Completed, 6, Some("done".into()))
        .await
        .expect("ended");
    conflict(
        store.set_run_state(&id("r"), Failed, 7, None).await,
        "has ended (completed); it cannot become failed",
    );
    conflict(
        store.set_run_state(&id("r"), Stopping, 8, None).await,
        "has ended",
    );
    let run = store.get_run(&id("r")).await.expect("read").expect("run");
    assert_eq!(
        (run.state, run.updated_at_ms, run.reason.as_deref()),
        (Completed, 6, Some("done"))
    );
    // Two changes applied, four refused.
    assert_eq!(version_of(&aws, "r").await, AttributeValue::N("2".into()));
}

#[tokio::test]
async fn a_second_coordinator_cannot_drive_a_run_until_it_claims_it() {
    let aws = aws().await;
    let first = store(&aws).await;
    let second_coordinator = DynamoStore::connect(&aws.sdk, PREFIX, false)
        .await
        .expect("tables exist");
    assert_ne!(first.owner(), second_coordinator.owner());
    first.create_run(record("r", 1)).await.expect("created");
    first
        .set_run_state(&id("r"), RunStateName::WaitingReady, 2, None)
        .await
        .expect("owner moves it");

    let not_yours = first.owner().to_owned();
    conflict(
        second_coordinator
            .set_run_state(&id("r"), RunStateName::Running, 3, None)
            .await,
        &not_yours,
    );
    conflict(
        second_coordinator
            .put_second(&id("r"), second(0, 5, 100))
            .await,
        &not_yours,
    );
    conflict(
        second_coordinator
            .put_summary(&id("r"), &summary("r", 5))
            .await,
        &not_yours,
    );

    // The run has no lease yet (its first owner never claimed it): the second one takes it.
    let lease = |store: &DynamoStore, now: u64| {
        let (store, owner) = (store.clone(), store.owner().to_owned());
        async move { store.claim_run(&id("r"), &owner, now, 1_000).await }
    };
    assert_eq!(
        lease(&second_coordinator, 3).await.expect("claimed"),
        Claim::Granted
    );
    let now_theirs = second_coordinator.owner().to_owned();
    assert_eq!(
        lease(&first, 4).await.expect("read"),
        Claim::HeldBy {
            owner: now_theirs.clone(),
            until_ms: 1_003
        }
    );
    conflict(
        first
            .set_run_state(&id("r"), RunStateName::Running, 4, None)
            .await,
        &now_theirs,
    );
    conflict(
        first.put_second(&id("r"), second(0, 5, 100)).await,
        &now_theirs,
    );
    second_coordinator
        .set_run_state(&id("r"), RunStateName::Running, 5, None)
        .await
        .expect("the new owner moves it");
    second_coordinator
        .put_second(&id("r"), second(0, 5, 100))
        .await
        .expect("and writes its results");
    assert_eq!(
        lease(&second_coordinator, 6).await.expect("renewed"),
        Claim::Granted
    );
    second_coordinator
        .set_run_state(&id("r"), RunStateName::Completed, 7, None)
        .await
        .expect("ended");
    // waiting_ready, the claim, running, the renewal, completed.
    assert_eq!(version_of(&aws, "r").await, AttributeValue::N("5".into()));
}

#[tokio::test]
async fn command_ids_are_stored_with_a_seven_day_ttl() {
    let aws = aws().await;
    let store = store(&aws).await;
    store
        .put_command("c1", serde_json::json!({"ok": true}), 1_700_000_000_123)
        .await
        .expect("stored");
    let item = client(&aws)
        .get_item()
        .table_name(format!("{PREFIX}commands"))
        .key("id", AttributeValue::S("c1".into()))
        .send()
        .await
        .expect("read")
        .item
        .expect("stored");
    assert_eq!(
        item.get("expires_at"),
        Some(&AttributeValue::N(
            (1_700_000_000u64 + 7 * 24 * 3600).to_string()
        ))
    );
    let ttl = client(&aws)
        .describe_time_to_live()
        .table_name(format!("{PREFIX}commands"))
        .send()
        .await
        .expect("described")
        .time_to_live_description
        .expect("a TTL description");
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
}

#[tokio::test]
async fn missing_tables_are_an_error_unless_herd_may_create_them() {
    let aws = aws().await;
    match DynamoStore::connect(&aws.sdk, PREFIX, false).await {
        Err(StoreError::Table { table, detail }) => {
            assert!(table.starts_with(PREFIX), "{table}");
            assert!(detail.contains("does not exist"), "{detail}");
        }
        other => panic!("expected a missing table, got {other:?}"),
    }
    let tables = client(&aws)
        .list_tables()
        .send()
        .await
        .expect("listed")
        .table_names
        .unwrap_or_default();
    assert!(tables.is_empty(), "nothing was created: {tables:?}");
}

#[tokio::test]
async fn a_table_of_another_shape_is_refused() {
    let aws = aws().await;
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key")
    };
    client(&aws)
        .create_table()
        .table_name("other-runs")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("run_id", KeyType::Hash))
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("run_id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .send()
        .await
        .expect("created");
    match DynamoStore::connect(&aws.sdk, "other-", true).await {
        Err(StoreError::Table { table, detail }) => {
            assert_eq!(table, "other-runs");
            assert!(detail.contains("run_id"), "{detail}");
            assert!(detail.contains("table_prefix"), "{detail}");
        }
        other => panic!("expected a refused table, got {other:?}"),
    }
}
