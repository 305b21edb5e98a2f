//! CSV, one row per second of the run (`csv`) or per second and scenario step (`csv-steps`).
//!
//! Each row's percentiles are read from that second's merged histogram (never averaged), so a
//! column of counts sums to the summary's totals: `requests`, `errors`, `dropped` and the status
//! classes add up over the rows to the same figures the summary gives for the run (and, per step,
//! for each step). `no_response` counts requests that got no HTTP status (transport failures), so
//! the status classes plus `no_response` equal `requests` on every row.

use crate::store::SecondRecord;
use herd_protocol::histogram::{EncodedHistogram, LatencyMs};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Counts and latency columns shared by both files.
const FIGURES: &str = "requests,errors,dropped,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,\
status_1xx,status_2xx,status_3xx,status_4xx,status_5xx,no_response,agents_reported,agents_expected";

/// One row per stored second.
pub(super) fn per_second(seconds: &[SecondRecord]) -> String {
    let mut out = format!("t,second,{FIGURES}\n");
    for s in seconds {
        let latency = figures(&s.histogram);
        let _ = writeln!(
            out,
            "{},{},{}",
            s.t,
            s.second,
            row(
                s.requests,
                s.errors,
                s.dropped,
                &latency,
                &s.status_codes,
                (s.agents_reported, s.agents_expected)
            )
        );
    }
    out
}

/// One row per stored second and step that had requests in it. Seconds stored without a
/// checkpoint (by a herd that did not keep one) have no per-step detail and give no rows.
pub(super) fn per_step(seconds: &[SecondRecord]) -> String {
    let mut out = format!("t,second,step,{FIGURES}\n");
    for s in seconds {
        let Some(checkpoint) = &s.checkpoint else {
            continue;
        };
        for (step, packed) in &checkpoint.steps {
            let stats = packed.unpack();
            let _ = writeln!(
                out,
                "{},{},{},{}",
                s.t,
                s.second,
                field(step),
                row(
                    stats.requests,
                    stats.errors,
                    0,
                    &stats.latency_ms(),
                    &stats.status_codes,
                    (s.agents_reported, s.agents_expected)
                )
            );
        }
    }
    out
}

fn row(
    requests: u64,
    errors: u64,
    dropped: u64,
    l: &LatencyMs,
    codes: &BTreeMap<u16, u64>,
    (reported, expected): (u32, u32),
) -> String {
    let classes = classes(codes);
    let answered: u64 = classes.iter().sum();
    let [c1, c2, c3, c4, c5] = classes;
    format!(
        "{requests},{errors},{dropped},{},{},{},{},{},{c1},{c2},{c3},{c4},{c5},{},{reported},{expected}",
        l.p50,
        l.p90,
        l.p99,
        l.p999,
        l.max,
        requests.saturating_sub(answered)
    )
}

/// Responses by status class 1xx..5xx (codes outside 100..=599 count as 5xx: a server answered,
/// but not with a status HTTP defines).
pub(super) fn classes(codes: &BTreeMap<u16, u64>) -> [u64; 5] {
    let mut classes = [0u64; 5];
    for (code, n) in codes {
        let i = usize::from(code / 100).clamp(1, 5) - 1;
        classes[i] = classes[i].saturating_add(*n);
    }
    classes
}

fn figures(histogram: &EncodedHistogram) -> LatencyMs {
    match histogram.decode() {
        Ok(h) => LatencyMs::of(&h),
        Err(e) => {
            tracing::error!(error = %e, "a stored second's histogram does not decode");
            LatencyMs::default()
        }
    }
}

/// A CSV field, quoted when it must be (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
