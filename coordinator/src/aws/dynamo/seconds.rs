//! A run's results in the `results` table: one item per second (`second#<t>`, so a query returns
//! them ordered by `t`) and the summary (`summary`), both in the run's partition.
//!
//! A second keeps its counts as numbers and its merged histogram as binary: the V2-deflate bytes
//! behind the wire's base64, a quarter smaller than the text. Herd's histograms (1 µs to 1 h, three
//! significant digits) stay far below the item limit even fully spread, and a larger one would be
//! split into parts like any value ([`super::chunks`]). A summary is JSON, deflated, and split
//! when needed: a long run's per-second series and a large fleet's agent list outgrow 400 KB.
//!
//! A second's merge state ([`crate::aggregate::SecondCheckpoint`], what a restarted coordinator
//! rebuilds the run from) is JSON, deflated, appended to the histogram's bytes in the same value
//! (`histogram_bytes` says where it starts): written with the second in one head item, so the
//! two never disagree, and split with it when they outgrow an item.

use super::items::{corrupt, f, get_n, get_s, json, n, opt_n, opt_s, s, Item};
use super::DynamoStore;
use crate::store::{SecondRecord, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use herd_protocol::histogram::EncodedHistogram;
use herd_protocol::summary::Summary;
use herd_protocol::RunId;
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// The prefix of second items' sort keys.
const SECOND: &str = "second#";
/// The sort key of the summary.
const SUMMARY: &str = "summary";
/// How a summary is encoded, recorded with it so that another encoding can come later.
const SUMMARY_ENCODING: &str = "json+deflate";
/// How a second's checkpoint is encoded (after `histogram_bytes` bytes of histogram).
const CHECKPOINT_ENCODING: &str = "json+deflate";

fn deflate(what: &'static str, bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map_err(|e| StoreError::Unstorable {
            what,
            detail: format!("cannot compress it: {e}"),
        })
}

fn inflate(what: &'static str, bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    DeflateDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(what, format!("cannot decompress it: {e}")))?;
    Ok(out)
}

/// The sort key of second `t`: zero-padded, so keys sort as numbers.
fn second_key(t: u64) -> String {
    format!("{SECOND}{t:020}")
}

fn second_attributes(second: &SecondRecord) -> Result<Item, StoreError> {
    let codes = second
        .status_codes
        .iter()
        .map(|(code, count)| (code.to_string(), n(count)))
        .collect();
    Ok(Item::from([
        ("t".to_owned(), n(second.t)),
        ("second".to_owned(), n(second.second)),
        ("requests".to_owned(), n(second.requests)),
        ("errors".to_owned(), n(second.errors)),
        ("dropped".to_owned(), n(second.dropped)),
        ("p50_ms".to_owned(), f("p50", second.p50_ms)?),
        ("p99_ms".to_owned(), f("p99", second.p99_ms)?),
        ("agents_reported".to_owned(), n(second.agents_reported)),
        ("agents_expected".to_owned(), n(second.agents_expected)),
        ("status_codes".to_owned(), AttributeValue::M(codes)),
        ("detail".to_owned(), json("second detail", &second.detail)?),
    ]))
}

fn second_from(item: &Item, mut histogram: Vec<u8>) -> Result<SecondRecord, StoreError> {
    let checkpoint = match opt_n::<usize>(item, "histogram_bytes", "histogram size")? {
        None => None,
        Some(len) if len <= histogram.len() => {
            let encoding = get_s(item, "checkpoint_encoding", "checkpoint encoding")?;
            if encoding != CHECKPOINT_ENCODING {
                return Err(corrupt(
                    "second checkpoint",
                    format!("unknown encoding {encoding:?}"),
                ));
            }
            let json = inflate("second checkpoint", &histogram.split_off(len))?;
            Some(serde_json::from_slice(&json).map_err(|e| corrupt("second checkpoint", e))?)
        }
        Some(len) => {
            return Err(corrupt(
                "second",
                format!(
                    "histogram_bytes = {len} is beyond its {} bytes",
                    histogram.len()
                ),
            ))
        }
    };
    let mut status_codes = BTreeMap::new();
    match item.get("status_codes") {
        Some(AttributeValue::M(codes)) => {
            for (code, count) in codes {
                let code: u16 = code
                    .parse()
                    .map_err(|_| corrupt("status codes", format!("{code} is not a status")))?;
                let AttributeValue::N(count) = count else {
                    return Err(corrupt(
                        "status codes",
                        format!("count of {code} is not a number"),
                    ));
                };
                let count = count
                    .parse()
                    .map_err(|_| corrupt("status codes", format!("count of {code} is {count}")))?;
                status_codes.insert(code, count);
            }
        }
        _ => return Err(corrupt("second", "attribute status_codes is missing")),
    }
    Ok(SecondRecord {
        t: get_n(item, "t", "second's t")?,
        second: get_n(item, "second", "second")?,
        requests: get_n(item, "requests", "requests")?,
        errors: get_n(item, "errors", "errors")?,
        // Absent from seconds written before herd stored drops per second.
        dropped: opt_n(item, "dropped", "dropped")?.unwrap_or(0),
        p50_ms: get_n(item, "p50_ms", "p50")?,
        p99_ms: get_n(item, "p99_ms", "p99")?,
        agents_reported: get_n(item, "agents_reported", "agents reported")?,
        agents_expected: get_n(item, "agents_expected", "agents expected")?,
        status_codes,
        histogram: EncodedHistogram(base64::engine::general_purpose::STANDARD.encode(histogram)),
        checkpoint,
        // Absent from seconds written before herd kept p90, p99.9, VUs and agents' health.
        detail: opt_s(item, "detail", "second detail")?
            .map(|d| serde_json::from_str(&d).map_err(|e| corrupt("second detail", e)))
            .transpose()?
            .unwrap_or_default(),
    })
}

impl DynamoStore {
    pub(super) async fn put_second(
        &self,
        run: &RunId,
        second: SecondRecord,
    ) -> Result<(), StoreError> {
        let mut histogram = base64::engine::general_purpose::STANDARD
            .decode(second.histogram.0.as_bytes())
            .map_err(|e| StoreError::Unstorable {
                what: "histogram",
                detail: format!("not the base64 of a V2-deflate histogram: {e}"),
            })?;
        let mut attributes = second_attributes(&second)?;
        if let Some(checkpoint) = &second.checkpoint {
            let json = serde_json::to_vec(checkpoint).map_err(|source| StoreError::Encode {
                what: "second checkpoint",
                source,
            })?;
            attributes.insert("histogram_bytes".to_owned(), n(histogram.len()));
            attributes.insert("checkpoint_encoding".to_owned(), s(CHECKPOINT_ENCODING));
            histogram.extend(deflate("second checkpoint", &json)?);
        }
        self.check_owner(run).await?;
        self.put_chunked(run, &second_key(second.t), attributes, &histogram, "second")
            .await
    }

    pub(super) async fn list_seconds(&self, run: &RunId) -> Result<Vec<SecondRecord>, StoreError> {
        self.read_chunked(run, SECOND)
            .await?
            .into_iter()
            .map(|value| second_from(&value.head, value.data))
            .collect()
    }

    pub(super) async fn put_summary(
        &self,
        run: &RunId,
        summary: &Summary,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_vec(summary).map_err(|source| StoreError::Encode {
            what: "summary",
            source,
        })?;
        let compressed = deflate("summary", &json)?;
        let attributes = Item::from([
            ("encoding".to_owned(), s(SUMMARY_ENCODING)),
            ("json_bytes".to_owned(), n(json.len())),
        ]);
        self.check_owner(run).await?;
        self.put_chunked(run, SUMMARY, attributes, &compressed, "summary")
            .await
    }

    pub(super) async fn get_summary(&self, run: &RunId) -> Result<Option<Summary>, StoreError> {
        let values = self.read_chunked(run, SUMMARY).await?;
        let Some(value) = values.into_iter().next() else {
            return Ok(None);
        };
        let encoding = get_s(&value.head, "encoding", "summary encoding")?;
        if encoding != SUMMARY_ENCODING {
            return Err(corrupt("summary", format!("unknown encoding {encoding:?}")));
        }
        let json = inflate("summary", &value.data)?;
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|e| corrupt("summary", e))
    }
}
