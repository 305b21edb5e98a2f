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
