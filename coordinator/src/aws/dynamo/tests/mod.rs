//! The DynamoDB store on moto: the behaviour every store shares ([`crate::store::suite`]), then
//! what is DynamoDB's own (conditional transitions and ownership, TTL, item sizes and parts,
//! batches, table checks). Each test starts its own moto server, so tests share no tables.

mod rules;
mod sizes;

use super::DynamoStore;
use crate::store::suite::{store_suite, Subject};
use crate::store::Store;
use aws_config::SdkConfig;
use herd_e2e::aws::Moto;
use std::sync::Arc;

const PREFIX: &str = "herd-";

/// A moto server and an SDK configuration aimed at it.
pub(super) struct Aws {
    _moto: Moto,
    pub sdk: SdkConfig,
}

pub(super) async fn aws() -> Aws {
    let moto = tokio::task::spawn_blocking(Moto::start)
        .await
        .expect("moto started");
    let sdk = moto.sdk_config().await;
    Aws { _moto: moto, sdk }
}

/// A store on fresh tables, like a coordinator connecting (tables created).
pub(super) async fn store(aws: &Aws) -> DynamoStore {
    DynamoStore::connect(&aws.sdk, PREFIX, true)
        .await
        .expect("connected")
}

/// A client on `aws`'s moto, for reading items as they are stored.
pub(super) fn client(aws: &Aws) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&aws.sdk)
}

async fn subject() -> Subject {
    let aws = aws().await;
    let store = store(&aws).await;
    let sdk = aws.sdk.clone();
    Subject {
        store: Arc::new(store),
        // A second coordinator on the same tables, which already exist.
        reopen: Box::new(move || {
            let sdk = sdk.clone();
            Box::pin(async move {
                Ok(Arc::new(DynamoStore::connect(&sdk, PREFIX, true).await?) as Arc<dyn Store>)
            })
        }),
        _guard: Box::new(aws),
    }
}

mod suite {
    use super::*;

    store_suite!(subject());
}
