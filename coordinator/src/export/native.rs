//! herd's merged HdrHistogram as an exponential ("native") histogram.
//!
//! Prometheus native histograms and OpenTelemetry exponential histograms share one bucket
//! layout: at schema (OTLP: scale) `s`, bucket boundaries are powers of `base = 2^(2^-s)`.
//! herd uses [`SCHEMA`] 5: `base = 2^(1/32) ≈ 1.0219`, so a bucket spans 2.19 % of its value
//! and 1 ms .. 10 s takes ~425 buckets at most (only non-empty ones are sent).
//!
//! **Conversion.** Each non-empty HdrHistogram bucket (3 significant digits: its values agree
//! to within 0.1 %) goes whole into the exponential bucket containing its highest equivalent
//! value (the value herd's own percentiles report). A quantile read from the exported histogram
//! therefore falls in the exponential bucket that holds herd's own figure for it, or a
//! neighbouring one when an HDR bucket straddles a boundary: **the relative error against herd's
//! figure is below `base - 1 + 0.1 % ≈ 2.3 %`**, whatever interpolation the reader does inside
//! the bucket. Counts are exact (every request is in exactly one bucket); the sum is the sum of
//! each HDR bucket's value times its count (within 0.1 %). Latency 0 µs goes to the zero bucket.
//!
//! Indices here are Prometheus': bucket `i` holds `(base^(i-1), base^i]`. OTLP's bucket `j`
//! holds `(base^j, base^(j+1)]`, so OTLP's index is `i - 1` (see the `otlp` module).

use herd_protocol::histogram::Latency;
use std::collections::BTreeMap;

/// The schema (OTLP scale) herd exports with; see the module docs for the error it gives.
pub const SCHEMA: i32 = 5;

/// A sparse exponential histogram of latencies in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Native {
    /// Observations in total (the zero bucket's included).
    pub count: u64,
    /// Sum of observations, in seconds.
    pub sum: f64,
    /// Observations of exactly 0.
    pub zero_count: u64,
    /// Non-empty buckets by Prometheus index.
    pub buckets: BTreeMap<i32, u64>,
}

/// The Prometheus bucket index of `v > 0` at [`SCHEMA`]: the `i` with `base^(i-1) < v <= base^i`.
pub fn index(v: f64) -> i32 {
    let per_doubling = f64::from(1u32 << SCHEMA);
    let mut i = (v.log2() * per_doubling).ceil() as i32;
    // log2 is not exact near a boundary: settle on the bucket the definition says.
    if upper_bound(i) < v {
        i += 1;
    } else if upper_bound(i - 1) >= v {
        i -= 1;
    }
    i
}

/// The upper bound of bucket `i`: `base^i`.
pub fn upper_bound(i: i32) -> f64 {
    (f64::from(i) / f64::from(1u32 << SCHEMA)).exp2()
}

impl Native {
    /// Converts a latency histogram (µs) into seconds' exponential buckets.
    pub fn from_latency(h: &Latency) -> Self {
        let mut n = Native::default();
        for v in h.iter_recorded() {
            let count = v.count_at_value();
            let us = h.highest_equivalent(v.value_iterated_to());
            n.count += count;
            if us == 0 {
                n.zero_count += count;
                continue;
            }
            let seconds = us as f64 / 1e6;
            n.sum += seconds * count as f64;
            *n.buckets.entry(index(seconds)).or_default() += count;
        }
        n
    }

    /// Adds `other` bucket by bucket.
    pub fn add(&mut self, other: &Native) {
        self.count += other.count;
        self.sum += other.sum;
        self.zero_count += other.zero_count;
        for (i, c) in &other.buckets {
            *self.buckets.entry(*i).or_default() += c;
        }
    }

    /// What `self` has beyond `before` (an earlier state of the same second: merging frames
    /// only adds, so no count goes down).
    pub fn minus(&self, before: &Native) -> Native {
        let mut buckets = BTreeMap::new();
        for (i, c) in &self.buckets {
            let d = c.saturating_sub(before.buckets.get(i).copied().unwrap_or(0));
            if d > 0 {
                buckets.insert(*i, d);
            }
        }
        Native {
            count: self.count.saturating_sub(before.count),
            sum: (self.sum - before.sum).max(0.0),
            zero_count: self.zero_count.saturating_sub(before.zero_count),
            buckets,
        }
    }

    /// Runs of consecutive buckets: `(first index, counts)`.
    pub fn spans(&self) -> Vec<(i32, Vec<u64>)> {
        let mut spans: Vec<(i32, Vec<u64>)> = Vec::new();
        for (i, c) in &self.buckets {
            match spans.last_mut() {
                Some((start, counts)) if *start + counts.len() as i32 == *i => counts.push(*c),
                _ => spans.push((*i, vec![*c])),
            }
        }
        spans
    }

    /// The `q` quantile as Prometheus reads it: the upper bound of the bucket holding rank
    /// `q * count` (tests compare this with what PromQL answers).
    pub fn quantile_bucket(&self, q: f64) -> Option<(f64, f64)> {
        let rank = (q * self.count as f64).ceil() as u64;
        let mut seen = self.zero_count;
        if seen >= rank && rank > 0 {
            return Some((0.0, 0.0));
        }
        for (i, c) in &self.buckets {
            seen += c;
            if seen >= rank {
                return Some((upper_bound(i - 1), upper_bound(*i)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herd_protocol::histogram::new_latency;

    #[test]
    fn index_follows_the_bucket_definition_at_and_near_boundaries() {
        assert_eq!(index(1.0), 0);
        assert_eq!(index(2.0), 32);
        assert_eq!(index(0.5), -32);
        assert_eq!(index(1.0001), 1);
        for i in -400..100 {
            let b = upper_bound(i);
            assert_eq!(index(b), i, "upper bound of {i}");
            assert_eq!(index(b * 1.000_001), i + 1, "just above {i}");
        }
    }

    #[test]
    fn counts_are_exact_and_quantiles_stay_within_a_bucket_of_hdr() {
        let mut h = new_latency();
        for us in (0..20_000u64).map(|i| 200 + i * 37 % 90_000) {
            h.record(us).expect("in range");
        }
        h.record(0).expect("zero");
        let n = Native::from_latency(&h);
        assert_eq!(n.count, h.len());
        assert_eq!(n.zero_count, 1);
        assert_eq!(n.buckets.values().sum::<u64>() + n.zero_count, h.len());
        for q in [0.5, 0.9, 0.99, 0.999] {
            let hdr = h.value_at_quantile(q) as f64 / 1e6;
            let (lo, hi) = n.quantile_bucket(q).expect("non-empty");
            assert!(lo < hdr && hdr <= hi, "q{q}: {hdr} not in ({lo}, {hi}]");
            assert!(hi / lo - 1.0 < 0.022);
        }
        let spans = n.spans();
        let total: u64 = spans.iter().flat_map(|(_, c)| c.iter()).sum();
        assert_eq!(total + n.zero_count, n.count);
    }

    #[test]
    fn a_later_state_minus_an_earlier_one_is_what_was_added() {
        let mut h = new_latency();
        h.record(1000).expect("in range");
        let before = Native::from_latency(&h);
        h.record(1000).expect("in range");
        h.record(5000).expect("in range");
        let after = Native::from_latency(&h);
        let d = after.minus(&before);
        assert_eq!(d.count, 2);
        let mut again = before.clone();
        again.add(&d);
        assert_eq!(again.buckets, after.buckets);
    }
}
