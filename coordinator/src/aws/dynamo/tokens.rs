//! API tokens, in `tokens`, keyed by the token's SHA-256: authenticating a request is one
//! `GetItem` on the hash of the token it presents. The token itself is never stored.

use super::items::{condition_failed, get_n, get_s, n, s, sdk_error, Item};
use super::DynamoStore;
use crate::store::{StoreError, TokenRecord};

impl DynamoStore {
    pub(super) async fn create_token(&self, token: TokenRecord) -> Result<(), StoreError> {
        let item = Item::from([
            ("hash".to_owned(), s(&token.hash)),
            ("id".to_owned(), s(&token.id)),
            ("role".to_owned(), s(token.role.as_str())),
            ("created_at_ms".to_owned(), n(token.created_at_ms)),
        ]);
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.tokens)
            .set_item(Some(item))
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
        out.item
            .map(|item| {
                Ok(TokenRecord {
                    id: get_s(&item, "id", "token id")?,
                    hash: get_s(&item, "hash", "token hash")?,
                    role: get_s(&item, "role", "token role")?
                        .parse()
                        .map_err(|e: String| super::items::corrupt("token role", e))?,
                    created_at_ms: get_n(&item, "created_at_ms", "token creation time")?,
                })
            })
            .transpose()
    }
}
