//! Feeder rows carried to agents in chunks, beside the start command.
//!
//! A plan's feeder rows travel inside the plan, and the plan inside the start command: one MQTT
//! message, which brokers cap. Feeders may hold up to
//! [`MAX_FEEDER_BYTES`](crate::plan::MAX_FEEDER_BYTES) (64 MiB), so when a plan's rows are larger
//! than [`INLINE_LIMIT`] the coordinator takes them out of the plan ([`take_rows`]): the rows of
//! every feeder, as one JSON object `{NAME: [[header…], [row…]…]}`, sent in chunks before the start
//! ([`crate::chunked`]), which names them ([`FeederData`]). The agent puts the rows back into the
//! plan ([`put_rows`]) before parsing it, or refuses the start naming what is missing.

use serde_json::{Map, Value};
use std::time::Duration;

use crate::chunked::{pack, unpack, ChunkedData, Received};
use crate::plan::{Feeder, Plan};

/// Feeder data (bytes of JSON rows) above which rows travel in chunks rather than in the plan.
pub const INLINE_LIMIT: usize = 256 * 1024;

/// What a start command says of the feeder rows sent in chunks before it.
pub type FeederData = ChunkedData;

/// Takes the feeders' rows out of a plan's JSON form when they are larger than
/// [`INLINE_LIMIT`]: returns what the start command says, and the chunks (base64) to send before
/// it. `None`: the rows are small enough to stay in the plan (which is left as it was).
pub fn take_rows(plan: &mut Value) -> Option<(FeederData, Vec<String>)> {
    let feeders = plan.get_mut("feeders")?.as_object_mut()?;
    let mut rows = Map::new();
    for (name, feeder) in feeders.iter() {
        if let Some(r) = feeder.get("rows") {
            rows.insert(name.clone(), r.clone());
        }
    }
    let text = serde_json::to_vec(&rows).ok()?;
    if text.len() <= INLINE_LIMIT {
        return None;
    }
    let packed = pack(&text)?;
    drop(text);
    for feeder in feeders.values_mut() {
        if let Some(f) = feeder.as_object_mut() {
            f.remove("rows");
        }
    }
    Some(packed)
}

/// Puts the rows carried by the chunks of `data` (taken out of `received`) back into the feeders
/// of a plan's JSON form; the error names what is wrong (a chunk that never arrived, a length or
/// checksum that does not match). At most `limit` bytes of JSON rows are inflated.
pub fn put_rows(
    plan: &mut Value,
    data: &FeederData,
    received: &mut Received,
    limit: usize,
) -> Result<(), String> {
    let text = unpack("feeder data", data, received, limit)?;
    let rows: Map<String, Value> =
        serde_json::from_slice(&text).map_err(|e| format!("feeder data is not JSON rows: {e}"))?;
    let feeders = plan
        .get_mut("feeders")
        .and_then(Value::as_object_mut)
        .ok_or("the plan has no feeders for the feeder data")?;
    for (name, r) in rows {
        let feeder = feeders
            .get_mut(&name)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| {
                format!("the feeder data has rows of {name}, a feeder the plan lacks")
            })?;
        feeder.insert("rows".into(), r);
    }
    Ok(())
}

/// What the start's lead gets per MiB of feeder rows sent in chunks: the time an agent takes to
/// inflate, parse and index them (a debug build on a slow core needs ~160 ms per MiB; a release
/// build a tenth of it), at most [`MAX_FEEDER_LEAD`].
const LEAD_PER_MIB: Duration = Duration::from_millis(200);

/// The longest extra lead for feeder rows (64 MiB of them).
const MAX_FEEDER_LEAD: Duration = Duration::from_secs(15);

/// The extra lead the start of `plan` needs for agents to take in its feeder rows: none when
/// they travel inside the plan.
pub fn feeder_lead(plan: &Plan) -> Duration {
    let bytes: usize = plan.feeders.iter().map(Feeder::data_bytes).sum();
    if bytes <= INLINE_LIMIT {
        return Duration::ZERO;
    }
    let mib = bytes as f64 / f64::from(1u32 << 20);
    LEAD_PER_MIB.mul_f64(mib).min(MAX_FEEDER_LEAD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunked::CHUNK_BYTES;
    use base64::Engine;
    use serde_json::json;
    use std::collections::BTreeMap;

    /// The chunks as an agent keeps them, under the data set's checksum.
    fn heard(data: &FeederData, chunks: BTreeMap<u32, String>) -> Received {
        Received::from([(data.crc32, chunks)])
    }

    fn big_plan(rows: usize) -> Value {
        let mut r = vec![json!(["id", "name"])];
        r.extend(
            (0..rows).map(|i| json!([i.to_string(), format!("user-{i}-{}", i * 7919 % 104_729)])),
        );
        json!({"name": "p", "feeders": {"users": {"mode": "unique", "rows": r}, "small": {"rows": [["x"], ["1"]]}}})
    }

    #[test]
    fn small_rows_stay_in_the_plan() {
        let mut plan = big_plan(10);
        let before = plan.clone();
        assert!(take_rows(&mut plan).is_none());
        assert_eq!(plan, before);
    }

    #[test]
    fn large_rows_travel_in_chunks_and_come_back_whole() {
        let mut plan = big_plan(200_000);
        let original = plan.clone();
        let (data, chunks) = take_rows(&mut plan).expect("chunked");
        assert!(plan["feeders"]["users"].get("rows").is_none());
        assert!(plan["feeders"]["small"].get("rows").is_none());
        assert_eq!(plan["feeders"]["users"]["mode"], "unique");
        assert!(chunks.len() > 1, "{} chunks", chunks.len());
        assert_eq!(data.chunks as usize, chunks.len());
        assert!(chunks.iter().all(|c| c.len() <= CHUNK_BYTES * 4 / 3 + 4));
        let received: BTreeMap<u32, String> = (0..).zip(chunks.clone()).collect();
        put_rows(
            &mut plan,
            &data,
            &mut heard(&data, received.clone()),
            64 << 20,
        )
        .expect("whole");
        assert_eq!(plan, original);

        // A chunk missing, altered or from another data set: refused, saying why.
        let mut stripped = original.clone();
        let _ = take_rows(&mut stripped);
        let mut missing = received.clone();
        missing.remove(&1);
        let e = put_rows(
            &mut stripped.clone(),
            &data,
            &mut heard(&data, missing),
            64 << 20,
        )
        .expect_err("gap");
        assert_eq!(
            e,
            format!(
                "feeder data incomplete: 1 of {} chunks never arrived (chunks 1)",
                data.chunks
            )
        );
        let mut altered = received.clone();
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(&altered[&0])
            .expect("base64");
        bytes[100] ^= 1;
        altered.insert(0, base64::engine::general_purpose::STANDARD.encode(bytes));
        let e = put_rows(
            &mut stripped.clone(),
            &data,
            &mut heard(&data, altered),
            64 << 20,
        )
        .expect_err("crc");
        assert!(e.starts_with("feeder data checksum mismatch"), "{e}");
        let e =
            put_rows(&mut stripped, &data, &mut heard(&data, received), 1000).expect_err("too big");
        assert_eq!(e, "feeder data inflates to more than 1000 bytes");
    }
}
