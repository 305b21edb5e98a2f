//! Latency histograms: how they are made, encoded on the wire, and read.
//!
//! Every latency herd records goes into an HdrHistogram of microseconds from 1 µs to 1 h with three
//! significant digits. On the wire a histogram is the standard V2 *deflate* encoding, base64: any
//! HdrHistogram library can read it. Percentiles are always taken from a (merged) histogram, never
//! averaged across agents or seconds.

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Lowest trackable latency, in microseconds.
pub const LOWEST_US: u64 = 1;
/// Highest trackable latency, in microseconds (one hour). Larger values are clamped to it.
pub const HIGHEST_US: u64 = 3_600_000_000;
/// Significant digits kept.
pub const SIGFIG: u8 = 3;

/// A histogram of latencies in microseconds.
pub type Latency = Histogram<u64>;

/// A new, empty latency histogram with herd's bounds.
pub fn new_latency() -> Latency {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG)
        .expect("herd's histogram bounds are valid constants")
}

/// Adds every count of `from` into `into` (both with herd's bounds, so nothing is clamped).
///
/// The coordinator merges every agent's frame into several histograms each second, and
/// `Histogram::add` walks the whole counts array (22,528 buckets at herd's bounds). It is generic,
/// so it is compiled where it is called: called from the coordinator's crate in a test build
/// (opt-level 0) it took 60 % of the coordinator's CPU at 200 agents, enough on a loaded 2-core
/// host for the run actor to fall seconds behind and declare every agent lost. Instantiated here,
/// in a crate built optimised even in test builds, the same merge is a vectorised loop.
#[inline(never)]
pub fn merge(into: &mut Latency, from: &Latency) {
    if into.add(from).is_err() {
        // Unreachable with equal bounds; clamp bucket by bucket rather than drop latencies.
        for v in from.iter_recorded() {
            into.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// Records one latency, clamping it into the trackable range.
pub fn record_us(histogram: &mut Latency, micros: u64) {
    let v = micros.clamp(LOWEST_US, HIGHEST_US);
    // In range by construction.
    let _ = histogram.record(v);
}

/// A histogram as it travels: V2 deflate, base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct EncodedHistogram(pub String);

/// A histogram on the wire that is not a valid V2 encoding.
#[derive(Debug, thiserror::Error)]
#[error("invalid histogram encoding: {0}")]
pub struct CodecError(String);

impl EncodedHistogram {
    /// Encodes a histogram.
    pub fn encode(histogram: &Latency) -> Self {
        let mut bytes = Vec::with_capacity(256);
        // Writing into a Vec cannot fail; an error would only come from an impossible histogram.
        if V2DeflateSerializer::new()
            .serialize(histogram, &mut bytes)
            .is_err()
        {
            bytes.clear();
        }
        Self(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// Decodes into a histogram with herd's bounds. An empty string is an empty histogram.
    pub fn decode(&self) -> Result<Latency, CodecError> {
        if self.0.is_empty() {
            return Ok(new_latency());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.0.as_bytes())
            .map_err(|e| CodecError(e.to_string()))?;
        let decoded: Latency = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| CodecError(format!("{e:?}")))?;
        let mut out = new_latency();
        out.add(&decoded)
            .map_err(|e| CodecError(format!("{e:?}")))?;
        Ok(out)
    }
}

/// A decoded histogram as its recorded buckets, `(a value of the bucket, count)`: all that merging
/// a frame into other histograms needs, without the ~180 KiB of counters (allocated, zeroed and
/// walked whole by `add`) that a full herd histogram takes. A frame of one second holds a few
/// dozen buckets; the coordinator merges each frame's histograms into several others, and at
/// 1,000 agents the full decode and `add` were most of its CPU (`herd bench swarm`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SparseLatency(Vec<(u64, u64)>);

impl SparseLatency {
    /// Recorded latencies in all.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Adds every count of `from` into `into`: the same result as decoding it fully and [`merge`].
#[inline(never)]
pub fn merge_sparse(into: &mut Latency, from: &SparseLatency) {
    for &(value, count) in &from.0 {
        into.saturating_record_n(value, count);
    }
}

/// The V2 cookies (hdrhistogram's serialization format, version 2, with its word-size bits).
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;

impl EncodedHistogram {
    /// Decodes into its recorded buckets ([`SparseLatency`]); refuses what [`Self::decode`]
    /// refuses. Histograms of other bounds than herd's are decoded fully and then listed.
    pub fn decode_sparse(&self) -> Result<SparseLatency, CodecError> {
        if self.0.is_empty() {
            return Ok(SparseLatency::default());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.0.as_bytes())
            .map_err(|e| CodecError(e.to_string()))?;
        match sparse_v2(&bytes)? {
            Some(sparse) => Ok(sparse),
            None => {
                let full = self.decode()?;
                Ok(SparseLatency(
                    full.iter_recorded()
                        .map(|v| (v.value_iterated_to(), v.count_at_value()))
                        .collect(),
                ))
            }
        }
    }
}

/// The largest inflated histogram: a herd histogram's counts array is 22,528 buckets, its
/// encoding far below this.
const INFLATED_LIMIT: usize = 4 * 1024 * 1024;

thread_local! {
    /// One inflater per thread, reset for each histogram: a new one allocates and zeroes ~40 KiB
    /// of state, which cost as much as the inflating itself for a frame's small histograms
    /// (the coordinator inflates thousands a second at thousands of agents).
    static INFLATER: std::cell::RefCell<flate2::Decompress> =
        std::cell::RefCell::new(flate2::Decompress::new(true));
}

/// Inflates a zlib stream of at most [`INFLATED_LIMIT`] bytes.
fn inflate(compressed: &[u8]) -> Result<Vec<u8>, CodecError> {
    let deflate = |what: &str| CodecError(format!("deflate: {what}"));
    INFLATER.with(|cell| {
        let mut inflater = cell.borrow_mut();
        inflater.reset(true);
        let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).clamp(64, 64 * 1024));
        loop {
            let read = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
            let input = compressed.get(read..).unwrap_or_default();
            let (before_in, before_out) = (inflater.total_in(), out.len());
            let status = inflater
                .decompress_vec(input, &mut out, flate2::FlushDecompress::Finish)
                .map_err(|e| deflate(&e.to_string()))?;
            if status == flate2::Status::StreamEnd {
                return Ok(out);
            }
            if out.len() >= INFLATED_LIMIT {
                return Err(deflate("larger than a histogram can be"));
            }
            if out.len() == out.capacity() {
                out.reserve(out.capacity().min(INFLATED_LIMIT - out.len()).max(64));
            } else if inflater.total_in() == before_in && out.len() == before_out {
                return Err(deflate("truncated stream"));
            }
        }
    })
}

/// Reads a V2 deflate encoding of herd's bounds bucket by bucket; `None` for other bounds.
fn sparse_v2(bytes: &[u8]) -> Result<Option<SparseLatency>, CodecError> {
    let bad = |what: &str| CodecError(what.to_string());
    let word = |b: &[u8], at: usize| -> Result<u32, CodecError> {
        b.get(at..at + 4)
            .and_then(|w| w.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| bad("truncated header"))
    };
    if word(bytes, 0)? != V2_COMPRESSED_COOKIE {
        return Err(bad("not a V2 deflate histogram (cookie)"));
    }
    let compressed_len = word(bytes, 4)? as usize;
    let compressed = bytes
        .get(8..8usize.saturating_add(compressed_len))
        .ok_or_else(|| bad("truncated payload"))?;
    let inner = inflate(compressed)?;
    if word(&inner, 0)? != V2_COOKIE {
        return Err(bad("not a V2 histogram (inner cookie)"));
    }
    let payload_len = word(&inner, 4)? as usize;
    let (offset, digits) = (word(&inner, 8)?, word(&inner, 12)?);
    let long = |at: usize| -> Result<u64, CodecError> {
        inner
            .get(at..at + 8)
            .and_then(|w| w.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| bad("truncated header"))
    };
    let (low, high, ratio) = (long(16)?, long(24)?, f64::from_bits(long(32)?));
    if offset != 0 || ratio != 1.0 {
        return Err(bad("unsupported V2 features"));
    }
    if (low, high, digits) != (LOWEST_US, HIGHEST_US, u32::from(SIGFIG)) {
        return Ok(None);
    }
    let counts = inner
        .get(40..40usize.saturating_add(payload_len))
        .ok_or_else(|| bad("truncated counts"))?;
    let buckets = herd_buckets();
    let mut out = Vec::new();
    let (mut at, mut index) = (0usize, 0usize);
    while at < counts.len() {
        let (raw, used) = varint(&counts[at..]).ok_or_else(|| bad("truncated count"))?;
        at += used;
        let n = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
        if n < 0 {
            index = index.saturating_add(n.unsigned_abs() as usize);
        } else {
            if n > 0 {
                if index >= buckets {
                    return Err(bad("more buckets than herd's histogram has"));
                }
                out.push((value_at(index), n as u64));
            }
            index = index.saturating_add(1);
        }
    }
    Ok(Some(SparseLatency(out)))
}

/// hdrhistogram's LEB128 variant: up to 9 bytes, the ninth with all 8 bits.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..9 {
        let byte = *b.get(i)?;
        if i == 8 {
            return Some((value | (u64::from(byte) << 56), 9));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Buckets of a herd histogram (its counts array's length).
fn herd_buckets() -> usize {
    static LEN: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LEN.get_or_init(|| new_latency().distinct_values())
}

/// The lowest value of bucket `index` of a herd histogram (unit 1 µs, 3 digits: 2,048 sub-buckets
/// of which the upper 1,024 are new in each bucket after the first), as hdrhistogram lays it out.
fn value_at(index: usize) -> u64 {
    const HALF_MAGNITUDE: u32 = 10;
    const HALF: usize = 1 << HALF_MAGNITUDE;
    let bucket = (index >> HALF_MAGNITUDE) as i64 - 1;
    let mut sub = (index & (HALF - 1)) + HALF;
    let bucket = if bucket < 0 {
        sub -= HALF;
        0
    } else {
        bucket as u32
    };
    (sub as u64) << bucket
}

/// Latency figures in milliseconds, as reported in summaries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct LatencyMs {
    /// Fastest.
    pub min: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

/// Converts microseconds to milliseconds, rounded to the microsecond.
pub fn us_to_ms(us: f64) -> f64 {
    (us / 1000.0 * 1000.0).round() / 1000.0
}

impl LatencyMs {
    /// The figures of a histogram; all zero when it is empty.
    pub fn of(h: &Latency) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let q = |p: f64| us_to_ms(h.value_at_quantile(p) as f64);
        Self {
            min: us_to_ms(h.min() as f64),
            mean: us_to_ms(h.mean()),
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
            max: us_to_ms(h.max() as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged_sparse(encoded: &EncodedHistogram) -> Latency {
        let mut out = new_latency();
        merge_sparse(&mut out, &encoded.decode_sparse().expect("decodes"));
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2_000, failure_persistence: None, ..Default::default() })]
        /// Merging the sparse decoding is merging the full one, bucket for bucket.
        #[test]
        fn sparse_decoding_merges_as_the_full_one(
            values in proptest::collection::vec((1u64..HIGHEST_US * 2, 1u64..1_000), 0..200),
        ) {
            let mut h = new_latency();
            for (v, n) in &values {
                h.saturating_record_n(*v, *n);
            }
            let encoded = EncodedHistogram::encode(&h);
            let full = encoded.decode().expect("decodes");
            let sparse = merged_sparse(&encoded);
            proptest::prop_assert_eq!(sparse.len(), full.len());
            proptest::prop_assert!(sparse == full);
            proptest::prop_assert_eq!(encoded.decode_sparse().expect("decodes").len(), h.len());
        }

        /// Anything that is not a histogram is refused, never a panic; what both read, they
        /// read alike.
        #[test]
        fn sparse_decoding_refuses_what_is_not_a_histogram(cut in 0usize..400, text in "[A-Za-z0-9+/=]{0,40}") {
            let mut h = new_latency();
            for v in [1, 10, 1_000, 100_000] {
                record_us(&mut h, v);
            }
            let mut s = EncodedHistogram::encode(&h).0;
            s.truncate(cut.min(s.len()));
            s.push_str(&text);
            let encoded = EncodedHistogram(s);
            if let (Ok(full), Ok(_)) = (encoded.decode(), encoded.decode_sparse()) {
                proptest::prop_assert!(merged_sparse(&encoded) == full);
            }
        }
    }

    /// The thread's inflater is reset for each histogram: one cut short, or corrupt, mid-stream
    /// changes nothing for the next.
    #[test]
    fn a_broken_deflate_stream_leaves_the_next_histogram_whole() {
        let mut h = new_latency();
        for v in [5, 50, 5_000, 500_000] {
            record_us(&mut h, v);
        }
        let good = EncodedHistogram::encode(&h);
        let b64 = base64::engine::general_purpose::STANDARD;
        let bytes = b64.decode(good.0.as_bytes()).expect("base64");
        let compressed = bytes.len() - 8;
        for broken in [
            // The stream cut in half, its length saying so: inflating stops short.
            {
                let mut b = bytes[..8 + compressed / 2].to_vec();
                b[4..8].copy_from_slice(&((compressed / 2) as u32).to_be_bytes());
                b
            },
            // A corrupt block in the middle.
            {
                let mut b = bytes.clone();
                b[8 + compressed / 2] ^= 0xff;
                b
            },
        ] {
            let broken = EncodedHistogram(b64.encode(&broken));
            if let Ok(sparse) = broken.decode_sparse() {
                assert_ne!(
                    sparse.len(),
                    h.len(),
                    "a broken stream never reads as the whole"
                );
            }
            assert_eq!(good.decode_sparse().expect("decodes").len(), h.len());
            assert!(merged_sparse(&good) == h);
        }
    }

    #[test]
    fn histograms_of_other_bounds_are_listed_from_a_full_decoding() {
        let mut other: Latency = Histogram::new_with_bounds(1, 60_000_000, 2).expect("bounds");
        for v in [3, 999, 123_456, 59_000_000] {
            other.record(v).expect("in range");
        }
        let encoded = EncodedHistogram::encode(&other);
        assert!(merged_sparse(&encoded) == encoded.decode().expect("decodes"));
        assert_eq!(encoded.decode_sparse().expect("decodes").len(), 4);
    }
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encoding_round_trips(values in proptest::collection::vec(1u64..HIGHEST_US, 0..200)) {
            let mut h = new_latency();
            for v in &values { record_us(&mut h, *v); }
            let back = EncodedHistogram::encode(&h).decode().expect("decodes");
            prop_assert_eq!(back.len(), h.len());
            prop_assert_eq!(back.max(), h.max());
            prop_assert_eq!(back.value_at_quantile(0.99), h.value_at_quantile(0.99));
        }
    }

    #[test]
    fn merged_percentiles_are_not_averaged_percentiles() {
        // Agent A: 99 fast requests; agent B: 1 slow one. The true p99 is fast; averaging each
        // agent's p99 would report (1ms + 1000ms) / 2.
        let mut a = new_latency();
        let mut b = new_latency();
        for _ in 0..99 {
            record_us(&mut a, 1_000);
        }
        record_us(&mut b, 1_000_000);
        let mut merged = new_latency();
        merged.add(&a).expect("same bounds");
        merged.add(&b).expect("same bounds");
        assert!((LatencyMs::of(&merged).p99 - 1.0).abs() < 0.01);
        assert!((LatencyMs::of(&merged).max - 1000.0).abs() < 1.0);
    }

    #[test]
    fn garbage_is_a_codec_error() {
        assert!(EncodedHistogram("not base64!".into()).decode().is_err());
        assert!(EncodedHistogram("aGVsbG8=".into()).decode().is_err());
        assert_eq!(
            EncodedHistogram::default().decode().map(|h| h.len()).ok(),
            Some(0)
        );
    }
}
