//! Feeder rows carried to agents in chunks, beside the start command.
//!
//! A plan's feeder rows travel inside the plan, and the plan inside the start command: one MQTT
//! message, which brokers cap (1 MiB on herd's embedded broker, 128 KiB on AWS IoT Core). Feeders
//! may hold up to [`MAX_FEEDER_BYTES`](crate::plan::MAX_FEEDER_BYTES) (64 MiB), so when a plan's
//! rows are larger than [`INLINE_LIMIT`] the coordinator takes them out of the plan
//! ([`take_rows`]): the rows of every feeder, as one JSON object `{NAME: [[header…], [row…]…]}`,
//! deflated (zlib), cut into [`CHUNK_BYTES`] pieces, each sent base64-encoded in its own
//! `feeder_chunk` command *before* the start command, which says what to expect
//! ([`FeederData`]: how many chunks, how many bytes, their CRC-32). The agent keeps the chunks
//! it hears, and on the start puts the rows back into the plan ([`put_rows`]) before parsing it.
//! A chunk missing, a wrong length, a wrong checksum (and zlib's own Adler-32 of the inflated
//! text) make the agent refuse the start naming the problem: it never runs on partial data.
//!
//! The checksum guards against loss and mix-ups (a chunk of another data set), not against an
//! attacker: commands are authenticated as a whole by [`crate::msgauth`].

use base64::Engine;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use crate::plan::{Feeder, Plan};

/// Feeder data (bytes of JSON rows) above which rows travel in chunks rather than in the plan.
pub const INLINE_LIMIT: usize = 256 * 1024;

/// Bytes of deflated data per chunk: base64 makes it 88 KiB, under AWS IoT Core's 128 KiB per
/// message with the command around it.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// What a start command says of the feeder rows sent in chunks before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeederData {
    /// How many chunks (indices `0..chunks`).
    pub chunks: u32,
    /// Bytes of the deflated data, all chunks together.
    pub bytes: u64,
    /// CRC-32 of the deflated data; also names the data set in each chunk.
    pub crc32: u32,
}

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
    let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&text).ok()?;
    let deflated = z.finish().ok()?;
    drop(text);
    for feeder in feeders.values_mut() {
        if let Some(f) = feeder.as_object_mut() {
            f.remove("rows");
        }
    }
    let mut crc = flate2::Crc::new();
    crc.update(&deflated);
    let b64 = base64::engine::general_purpose::STANDARD;
    let chunks: Vec<String> = deflated
        .chunks(CHUNK_BYTES)
        .map(|c| b64.encode(c))
        .collect();
    let data = FeederData {
        chunks: u32::try_from(chunks.len()).unwrap_or(u32::MAX),
        bytes: deflated.len() as u64,
        crc32: crc.sum(),
    };
    Some((data, chunks))
}

/// Puts the rows carried by `chunks` (by index, base64, as received) back into the feeders of
/// a plan's JSON form; the error names what is wrong (a chunk that never arrived, a length or
/// checksum that does not match). At most `limit` bytes of JSON rows are inflated.
pub fn put_rows(
    plan: &mut Value,
    data: &FeederData,
    chunks: &BTreeMap<u32, String>,
    limit: usize,
) -> Result<(), String> {
    let missing: Vec<u32> = (0..data.chunks)
        .filter(|i| !chunks.contains_key(i))
        .collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(10).map(u32::to_string).collect();
        return Err(format!(
            "feeder data incomplete: {} of {} chunks never arrived (chunks {}{})",
            missing.len(),
            data.chunks,
            shown.join(", "),
            if missing.len() > 10 { ", …" } else { "" }
        ));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut deflated = Vec::with_capacity(usize::try_from(data.bytes).unwrap_or(0));
    for i in 0..data.chunks {
        let chunk = chunks.get(&i).map_or("", String::as_str);
        b64.decode_vec(chunk, &mut deflated)
            .map_err(|e| format!("feeder data chunk {i} is not base64: {e}"))?;
    }
    if deflated.len() as u64 != data.bytes {
        return Err(format!(
            "feeder data has {} bytes, the start command says {}",
            deflated.len(),
            data.bytes
        ));
    }
    let mut crc = flate2::Crc::new();
    crc.update(&deflated);
    if crc.sum() != data.crc32 {
        return Err(format!(
            "feeder data checksum mismatch: CRC-32 {:08x}, the start command says {:08x}",
            crc.sum(),
            data.crc32
        ));
    }
    let mut text = Vec::new();
    ZlibDecoder::new(deflated.as_slice())
        .take(limit as u64 + 1)
        .read_to_end(&mut text)
        .map_err(|e| format!("feeder data does not inflate: {e}"))?;
    if text.len() > limit {
        return Err(format!("feeder data inflates to more than {limit} bytes"));
    }
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
    use serde_json::json;

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
        put_rows(&mut plan, &data, &received, 64 << 20).expect("whole");
        assert_eq!(plan, original);

        // A chunk missing, altered or from another data set: refused, saying why.
        let mut stripped = original.clone();
        let _ = take_rows(&mut stripped);
        let mut missing = received.clone();
        missing.remove(&1);
        let e = put_rows(&mut stripped.clone(), &data, &missing, 64 << 20).expect_err("gap");
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
        let e = put_rows(&mut stripped.clone(), &data, &altered, 64 << 20).expect_err("crc");
        assert!(e.starts_with("feeder data checksum mismatch"), "{e}");
        let e = put_rows(&mut stripped, &data, &received, 1000).expect_err("too big");
        assert_eq!(e, "feeder data inflates to more than 1000 bytes");
    }
}
