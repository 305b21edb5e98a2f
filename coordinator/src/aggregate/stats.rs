//! Merged counts and histograms, and how they become summary figures.
//!
//! [`MergedStats`] is the unit of merging: counts add, and latency histograms are merged with
//! HdrHistogram's `add`, so every percentile is read from a merged histogram — never averaged.
//! A frame's [`Stats`] are decoded completely into [`DecodedStats`] before anything is merged, so
//! a frame with one bad histogram changes nothing. [`PackedStats`] is the compact form the
//! aggregator keeps for seconds it has already emitted: a herd histogram is ~180 KiB of counters
//! in memory but a few KiB encoded (V2 deflate, 3.3 KiB for 10 000 spread-out latencies, where
//! even a sparse `(value, count)` list takes 80 KiB), so a long run does not hold a full histogram
//! per second and step just in case a late frame arrives.

use super::load::SecondLoad;
use herd_protocol::frame::{Checks, Stats};
use herd_protocol::histogram::{
    merge, merge_sparse, new_latency, CodecError, EncodedHistogram, Latency, LatencyMs,
    SparseLatency,
};
use herd_protocol::summary::{RegionSecond, SecondSummary, StepSummary};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Counts and the merged latency histogram of a set of requests (one second, one step, a run).
#[derive(Debug, Clone)]
pub struct MergedStats {
    /// Requests that completed or failed.
    pub requests: u64,
    /// Of those, errors.
    pub errors: u64,
    /// Responses by HTTP status code.
    pub status_codes: BTreeMap<u16, u64>,
    /// Failures by kind.
    pub error_kinds: BTreeMap<String, u64>,
    /// Latencies (µs) of every response, merged across frames.
    pub latency: Latency,
    /// Service times (µs) of every response, merged across frames.
    pub service_latency: Latency,
    /// Checks.
    pub checks: Checks,
}

impl Default for MergedStats {
    fn default() -> Self {
        Self {
            requests: 0,
            errors: 0,
            status_codes: BTreeMap::new(),
            error_kinds: BTreeMap::new(),
            latency: new_latency(),
            service_latency: new_latency(),
            checks: Checks::default(),
        }
    }
}

impl MergedStats {
    /// Adds one frame's (decoded) stats.
    pub(super) fn add(&mut self, other: &DecodedStats) {
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
        add_counts(&mut self.status_codes, &other.status_codes);
        add_counts(&mut self.error_kinds, &other.error_kinds);
        merge_sparse(&mut self.latency, &other.latency);
        merge_sparse(&mut self.service_latency, &other.service_latency);
        self.checks.passed = self.checks.passed.saturating_add(other.checks.passed);
        self.checks.failed = self.checks.failed.saturating_add(other.checks.failed);
    }

    /// Adds already merged stats (a restored second into the whole-run totals): counts add and
    /// histograms merge exactly as frame by frame, so the result is the same.
    pub fn merge(&mut self, other: &MergedStats) {
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
        add_counts(&mut self.status_codes, &other.status_codes);
        add_counts(&mut self.error_kinds, &other.error_kinds);
        merge(&mut self.latency, &other.latency);
        merge(&mut self.service_latency, &other.service_latency);
        self.checks.passed = self.checks.passed.saturating_add(other.checks.passed);
        self.checks.failed = self.checks.failed.saturating_add(other.checks.failed);
    }

    /// Latency figures (ms) of the merged histogram.
    pub fn latency_ms(&self) -> LatencyMs {
        LatencyMs::of(&self.latency)
    }

    /// The summary figures of these stats over `duration_s` seconds (`rps` is 0 for a zero
    /// duration). Status codes become string keys, as JSON object keys are.
    pub fn to_step_summary(&self, duration_s: f64) -> StepSummary {
        let rps = if duration_s > 0.0 {
            round3(self.requests as f64 / duration_s)
        } else {
            0.0
        };
        StepSummary {
            requests: self.requests,
            errors: self.errors,
            rps,
            latency_ms: self.latency_ms(),
            service_latency_ms: LatencyMs::of(&self.service_latency),
            checks: self.checks,
            status_codes: self
                .status_codes
                .iter()
                .map(|(code, n)| (code.to_string(), *n))
                .collect(),
            error_kinds: self.error_kinds.clone(),
        }
    }

    pub(super) fn pack(&self) -> PackedStats {
        PackedStats {
            requests: self.requests,
            errors: self.errors,
            status_codes: self.status_codes.clone(),
            error_kinds: self.error_kinds.clone(),
            latency: EncodedHistogram::encode(&self.latency),
            service_latency: EncodedHistogram::encode(&self.service_latency),
            checks: self.checks,
        }
    }
}

/// One second across the agents of a run, as emitted by the aggregator.
#[derive(Debug, Clone)]
pub struct SecondAggregate {
    /// The second, in seconds since the Unix epoch.
    pub second: u64,
    /// Seconds since the run's start second (0 is the second the load started in).
    pub t: u64,
    /// All requests of the second.
    pub stats: MergedStats,
    /// The same, per scenario step label.
    pub steps: BTreeMap<String, MergedStats>,
    /// Arrivals dropped in the second, across agents.
    pub dropped: u64,
    /// VUs and the agents' health in the second.
    pub load: SecondLoad,
    /// Agents whose frame for this second arrived.
    pub agents_reported: u32,
    /// Agents expected to report it (those that reported it included).
    pub agents_expected: u32,
}

impl SecondAggregate {
    /// The second as it appears in summaries and live messages; percentiles come from the
    /// second's merged histogram.
    pub fn to_summary(&self) -> SecondSummary {
        let latency = self.stats.latency_ms();
        SecondSummary {
            t: self.t,
            requests: self.stats.requests,
            errors: self.stats.errors,
            dropped: self.dropped,
            p50_ms: latency.p50,
            p99_ms: latency.p99,
            agents_reported: self.agents_reported,
            agents_expected: self.agents_expected,
            p90_ms: Some(latency.p90),
            p999_ms: Some(latency.p999),
            vus: Some(self.load.vus),
            status_codes: self
                .stats
                .status_codes
                .iter()
                .map(|(code, n)| (code.to_string(), *n))
                .collect(),
            error_kinds: self.stats.error_kinds.clone(),
            health: (self.agents_reported > 0).then(|| self.load.health.clone()),
            regions: self.keyed(herd_protocol::plan::REGION_KEY_PREFIX),
            scenarios: self.keyed(herd_protocol::plan::SCENARIO_KEY_PREFIX),
        }
    }

    /// The second's figures per region or scenario (the steps keyed `region:NAME`,
    /// `scenario:NAME`), by name.
    pub fn keyed(&self, prefix: &str) -> BTreeMap<String, RegionSecond> {
        self.steps
            .iter()
            .filter_map(|(key, stats)| {
                let region = key.strip_prefix(prefix)?;
                let latency = stats.latency_ms();
                Some((
                    region.to_owned(),
                    RegionSecond {
                        requests: stats.requests,
                        errors: stats.errors,
                        p50_ms: latency.p50,
                        p99_ms: latency.p99,
                    },
                ))
            })
            .collect()
    }
}

/// A frame's [`Stats`] with its histograms decoded to their recorded buckets (a frame's second
/// holds a few dozen; a full histogram is 22,528 counters to allocate, zero and walk per merge).
#[derive(Debug, Clone)]
pub(super) struct DecodedStats {
    requests: u64,
    errors: u64,
    status_codes: BTreeMap<u16, u64>,
    error_kinds: BTreeMap<String, u64>,
    latency: SparseLatency,
    service_latency: SparseLatency,
    checks: Checks,
}

/// The histograms one frame's decoding already inflated, by their encoding. A frame usually
/// carries the same histogram several times — service times equal latencies unless iterations
/// started late, and a one-step scenario's step equals its total — so a frame of one step is
/// inflated once, not four times (inflating was a fifth of the coordinator's CPU at 5,000 agents).
#[derive(Debug, Default)]
pub(super) struct Inflated<'a> {
    seen: Vec<(&'a EncodedHistogram, SparseLatency)>,
    /// How many histograms were actually inflated.
    pub(super) misses: usize,
}

impl<'a> Inflated<'a> {
    fn decode(&mut self, encoded: &'a EncodedHistogram) -> Result<SparseLatency, CodecError> {
        if let Some((_, sparse)) = self.seen.iter().find(|(e, _)| *e == encoded) {
            return Ok(sparse.clone());
        }
        let sparse = encoded.decode_sparse()?;
        self.misses += 1;
        self.seen.push((encoded, sparse.clone()));
        Ok(sparse)
    }
}

impl DecodedStats {
    /// Decodes `stats`, inflating only histograms `inflated` has not seen in this frame.
    pub(super) fn decode<'a>(
        stats: &'a Stats,
        inflated: &mut Inflated<'a>,
    ) -> Result<Self, CodecError> {
        Ok(Self {
            requests: stats.requests,
            errors: stats.errors,
            status_codes: stats.status_codes.clone(),
            error_kinds: stats.error_kinds.clone(),
            latency: inflated.decode(&stats.latency)?,
            service_latency: inflated.decode(&stats.service_latency)?,
            checks: stats.checks,
        })
    }

    pub(super) fn requests(&self) -> u64 {
        self.requests
    }

    pub(super) fn errors(&self) -> u64 {
        self.errors
    }
}

/// [`MergedStats`] with the histograms encoded: how emitted seconds are kept in memory, and how a
/// second's merge state is stored (inside a [`super::SecondCheckpoint`]). Opaque outside the
/// aggregator but for [`PackedStats::unpack`], which the per-step CSV output reads stored steps
/// with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackedStats {
    requests: u64,
    errors: u64,
    status_codes: BTreeMap<u16, u64>,
    error_kinds: BTreeMap<String, u64>,
    latency: EncodedHistogram,
    service_latency: EncodedHistogram,
    checks: Checks,
}

impl PackedStats {
    /// The encoded latency histogram (what a stored second shows as its histogram).
    pub(super) fn latency(&self) -> &EncodedHistogram {
        &self.latency
    }

    /// The merged stats, histograms decoded.
    pub fn unpack(&self) -> MergedStats {
        // The encoding was made here from a valid herd histogram, so it decodes. Were it ever not
        // to, the counts would still be right and only this second's latencies would be missing:
        // better than losing the late frame, or the run.
        let decode = |h: &EncodedHistogram| {
            h.decode().unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot decode an aggregated histogram");
                new_latency()
            })
        };
        MergedStats {
            requests: self.requests,
            errors: self.errors,
            status_codes: self.status_codes.clone(),
            error_kinds: self.error_kinds.clone(),
            latency: decode(&self.latency),
            service_latency: decode(&self.service_latency),
            checks: self.checks,
        }
    }
}

fn add_counts<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (key, n) in from {
        let slot = into.entry(key.clone()).or_insert(0);
        *slot = slot.saturating_add(*n);
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
