//! What one merged second becomes for export: per step, the latency histogram in exponential
//! buckets and the requests by status. A leaf: the sinks (`prom`, `otlp`) and the actor-side
//! [`super::Exporter`] share it without importing each other.
//!
//! Only request steps are exported, not the whole-run total nor `group:NAME` entries (both are
//! sums of steps): `sum()` over the `step` label is then the run's total, never counted twice.
//! `status` is the HTTP status code, or `failed` for requests that got no response, so the
//! counts by status add up to the requests. To keep the label's cardinality bounded a run
//! exports at most [`MAX_STATUSES`] distinct statuses; later ones are counted as `other`.

use super::native::Native;
use crate::aggregate::{MergedStats, SecondAggregate};
use herd_protocol::plan::GROUP_KEY_PREFIX;
use std::collections::{BTreeMap, BTreeSet};

/// Distinct `status` values a run exports before the rest become `other`.
pub const MAX_STATUSES: usize = 16;

/// One step's part of a second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepPoint {
    /// Latencies, in seconds.
    pub latency: Native,
    /// Requests by status.
    pub statuses: BTreeMap<String, u64>,
}

/// One second (or what a late frame added to it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecondPoint {
    /// The second, in Unix seconds.
    pub second: u64,
    /// By step label.
    pub steps: BTreeMap<String, StepPoint>,
}

impl SecondPoint {
    /// The exported form of `agg`; `seen` holds the run's statuses so far (see the module docs).
    pub fn of(agg: &SecondAggregate, seen: &mut BTreeSet<String>) -> Self {
        let steps = agg
            .steps
            .iter()
            .filter(|(label, _)| !label.starts_with(GROUP_KEY_PREFIX))
            .map(|(label, stats)| (label.clone(), StepPoint::of(stats, seen)))
            .collect();
        SecondPoint {
            second: agg.second,
            steps,
        }
    }

    /// What `self` holds beyond `before`, an earlier export of the same second.
    pub fn minus(&self, before: &SecondPoint) -> SecondPoint {
        let empty = StepPoint::default();
        let steps = self
            .steps
            .iter()
            .map(|(label, now)| {
                let was = before.steps.get(label).unwrap_or(&empty);
                let statuses = now
                    .statuses
                    .iter()
                    .map(|(s, n)| {
                        let d = n.saturating_sub(was.statuses.get(s).copied().unwrap_or(0));
                        (s.clone(), d)
                    })
                    .filter(|(_, d)| *d > 0)
                    .collect();
                let point = StepPoint {
                    latency: now.latency.minus(&was.latency),
                    statuses,
                };
                (label.clone(), point)
            })
            .filter(|(_, p)| p.latency.count > 0 || !p.statuses.is_empty())
            .collect();
        SecondPoint {
            second: self.second,
            steps,
        }
    }

    /// Requests in the second, over every step.
    pub fn requests(&self) -> u64 {
        self.steps.values().flat_map(|p| p.statuses.values()).sum()
    }
}

impl StepPoint {
    fn of(stats: &MergedStats, seen: &mut BTreeSet<String>) -> Self {
        let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
        let mut answered = 0u64;
        for (code, n) in &stats.status_codes {
            answered += n;
            *statuses.entry(bounded(code.to_string(), seen)).or_default() += n;
        }
        let failed = stats.requests.saturating_sub(answered);
        if failed > 0 {
            *statuses.entry(bounded("failed".into(), seen)).or_default() += failed;
        }
        StepPoint {
            latency: Native::from_latency(&stats.latency),
            statuses,
        }
    }
}

fn bounded(status: String, seen: &mut BTreeSet<String>) -> String {
    if seen.contains(&status) {
        status
    } else if seen.len() < MAX_STATUSES {
        seen.insert(status.clone());
        status
    } else {
        "other".into()
    }
}
