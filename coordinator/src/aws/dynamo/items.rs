//! Reading and writing item attributes, and the item size rule.
//!
//! DynamoDB items are maps of typed attributes; herd's records become items with one attribute per
//! field (numbers as `N`, so the console and the CLI show them readably). Reading back checks every
//! attribute's type and value, so a damaged or foreign item is reported as corrupt, naming the
//! field, instead of being misread.
//!
//! DynamoDB refuses items over 400 KB with a bare `ValidationException`; herd measures its items
//! first, so a plan or a reply that is too large is refused with the field named and the sizes.

use crate::store::StoreError;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::fmt::Display;

/// An item as the SDK carries it.
pub(super) type Item = HashMap<String, AttributeValue>;

/// DynamoDB's limit on one item: names and values of all its attributes (400 KB).
pub(super) const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The largest part stored in one item: 350 KB leaves 50 KB of the 400 KB limit for the head's
/// other attributes (status codes, counts) and the keys.
pub(super) const PART_BYTES: usize = 350 * 1024;

/// A string attribute.
pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute from an integer.
pub(super) fn n(value: impl Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A number attribute from a float; DynamoDB numbers cannot be NaN or infinite.
pub(super) fn f(what: &'static str, value: f64) -> Result<AttributeValue, StoreError> {
    if value.is_finite() {
        Ok(AttributeValue::N(value.to_string()))
    } else {
        Err(StoreError::Unstorable {
            what,
            detail: format!("{value} is not a finite number"),
        })
    }
}

/// A binary attribute.
pub(super) fn b(bytes: Vec<u8>) -> AttributeValue {
    AttributeValue::B(Blob::new(bytes))
}

/// A JSON value stored as a string attribute.
pub(super) fn json<T: serde::Serialize>(
    what: &'static str,
    value: &T,
) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(value)
        .map(AttributeValue::S)
        .map_err(|source| StoreError::Encode { what, source })
}

pub(super) fn corrupt(what: &'static str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

/// A failed SDK call, with the error's whole chain of causes.
pub(super) fn sdk_error<E, R>(op: &'static str) -> impl FnOnce(SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |e| StoreError::Dynamo {
        op,
        detail: DisplayErrorContext(&e).to_string(),
    }
}

/// A request the SDK refused to build (a required field missing: a bug in herd, reported as such).
pub(super) fn build_error(
    op: &'static str,
) -> impl FnOnce(aws_sdk_dynamodb::error::BuildError) -> StoreError {
    move |e| StoreError::Dynamo {
        op,
        detail: format!("cannot build the request: {e}"),
    }
}

/// Whether a failed call failed only because its condition did not hold.
pub(super) fn condition_failed<E, R>(e: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

fn attr<'a>(
    item: &'a Item,
    name: &str,
    what: &'static str,
) -> Result<&'a AttributeValue, StoreError> {
    item.get(name)
        .ok_or_else(|| corrupt(what, format!("attribute {name} is missing")))
}

/// A required string attribute.
pub(super) fn get_s(item: &Item, name: &str, what: &'static str) -> Result<String, StoreError> {
    opt_s(item, name, what)?.ok_or_else(|| corrupt(what, format!("attribute {name} is missing")))
}

/// An optional string attribute.
pub(super) fn opt_s(
    item: &Item,
    name: &str,
    what: &'static str,
) -> Result<Option<String>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        Some(_) => Err(corrupt(what, format!("attribute {name} is not a string"))),
    }
}

fn number<T: std::str::FromStr>(
    value: &AttributeValue,
    name: &str,
    what: &'static str,
) -> Result<T, StoreError> {
    match value {
        AttributeValue::N(v) => v
            .parse()
            .map_err(|_| corrupt(what, format!("attribute {name} = {v} is out of range"))),
        _ => Err(corrupt(what, format!("attribute {name} is not a number"))),
    }
}

/// A required number attribute.
pub(super) fn get_n<T: std::str::FromStr>(
    item: &Item,
    name: &str,
    what: &'static str,
) -> Result<T, StoreError> {
    number(attr(item, name, what)?, name, what)
}

/// An optional number attribute.
pub(super) fn opt_n<T: std::str::FromStr>(
    item: &Item,
    name: &str,
    what: &'static str,
) -> Result<Option<T>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(v) => number(v, name, what).map(Some),
    }
}

/// A required binary attribute.
pub(super) fn get_b<'a>(
    item: &'a Item,
    name: &str,
    what: &'static str,
) -> Result<&'a [u8], StoreError> {
    match attr(item, name, what)? {
        AttributeValue::B(v) => Ok(v.as_ref()),
        _ => Err(corrupt(what, format!("attribute {name} is not binary"))),
    }
}

/// A JSON value stored by [`json`].
pub(super) fn get_json<T: serde::de::DeserializeOwned>(
    item: &Item,
    name: &str,
    what: &'static str,
) -> Result<T, StoreError> {
    serde_json::from_str(&get_s(item, name, what)?).map_err(|e| corrupt(what, e))
}

/// The size DynamoDB counts for an item, rounded up: the UTF-8 length of every attribute name and
/// value, numbers as their digits, and 3 bytes per map or list element.
pub(super) fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(v) | AttributeValue::N(v) => v.len(),
        AttributeValue::B(v) => v.as_ref().len(),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.iter().map(String::len).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        AttributeValue::M(v) => {
            3 + v
                .iter()
                .map(|(k, e)| 1 + k.len() + value_size(e))
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// Refuses an item over DynamoDB's limit with an error naming what it holds.
pub(super) fn check_size(what: &'static str, item: &Item) -> Result<(), StoreError> {
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::Unstorable {
            what,
            detail: format!(
                "it takes {size} bytes and a DynamoDB item holds at most {MAX_ITEM_BYTES}"
            ),
        });
    }
    Ok(())
}
