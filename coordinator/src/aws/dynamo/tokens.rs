//! API tokens, in `tokens`, keyed by the token's SHA-256: authenticating a request is one
//! `GetItem` on the hash of the token it presents. The token itself is never stored.
//!
//! Revoking names a token by its public id, which is not the key: the table is scanned for it
//! (a handful of items; revocation is rare), then the one item is updated, keeping the first
//! revocation time if it is revoked twice.

use super::items::{condition_failed, get_n, get_s, n, opt_n, s, sdk_error, Item};
use super::DynamoStore;
use crate::store::{StoreError, TokenRecord};
use aws_sdk_dynamodb::types::AttributeValue;

fn token_item(token: &TokenRecord) -> Item {
    let mut item = Item::from([
        ("hash".to_owned(), s(&token.hash)),
        ("id".to_owned(), s(&token.id)),
        ("role".to_owned(), s(token.role.as_str())),
        ("created_at_ms".to_owned(), n(token.created_at_ms)),
    ]);
    if let Some(at) = token.expires_at_ms {
        item.insert("expires_at_ms".to_owned(), n(at));
    }
    if let Some(at) = token.revoked_at_ms {
        item.insert("revoked_at_ms".to_owned(), n(at));
    }
    item
}

fn token_record(item: &Item) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: get_s(item, "id", "token id")?,
        hash: get_s(item, "hash", "token hash")?,
        role: get_s(item, "role", "token role")?
            .parse()
            .map_err(|e: String| super::items::corrupt("token role", e))?,
        created_at_ms: get_n(item, "created_at_ms", "token creation time")?,
        expires_at_ms: opt_n(item, "expires_at_ms", "token expiry")?,
        revoked_at_ms: opt_n(item, "revoked_at_ms", "token revocation time")?,
    })
}

impl DynamoStore {
    pub(super) async fn create_token(&self, token: TokenRecord) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.tokens)
            .set_item(Some(token_item(&token)))
            .condition_expression("attribute_not_exists(#hash)")
            .expression_attribute_names("#hash", "hash")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(StoreError::Unstorable {
                what: "token",
                detail: format!("a token with the same hash exists (token {})", token.id),
            }),
            Err(e) => Err(sdk_error("PutItem")(e)),
        }
    }

    pub(super) async fn find_token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.tokens)
            .key("hash", s(hash))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error("GetItem"))?;
        out.item.as_ref().map(token_record).transpose()
    }

    pub(super) async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let mut tokens = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.tables.tokens)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error("Scan"))?;
            for item in out.items() {
                tokens.push(token_record(item)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        tokens.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(tokens)
    }

    pub(super) async fn revoke_token(&self, id: &str, at_ms: u64) -> Result<bool, StoreError> {
        let Some(token) = self.list_tokens().await?.into_iter().find(|t| t.id == id) else {
            return Ok(false);
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.tokens)
            .key("hash", s(&token.hash))
            .update_expression("SET revoked_at_ms = :at")
            .condition_expression("attribute_exists(#hash) AND attribute_not_exists(revoked_at_ms)")
            .expression_attribute_names("#hash", "hash")
            .expression_attribute_values(":at", AttributeValue::N(at_ms.to_string()))
            .send()
            .await;
        match result {
            // Already revoked: the first time stays.
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(true),
            Err(e) => Err(sdk_error("UpdateItem")(e)),
        }
    }
}
