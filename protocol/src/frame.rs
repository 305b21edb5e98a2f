//! The result frame: what one agent measured during one wall-clock second.
//!
//! Frames are aligned to the second boundary (second `s` covers `[s, s+1)` in Unix time) and
//! numbered per agent (`seq` 0, 1, 2, … with no gaps), so the coordinator can drop duplicates
//! (MQTT QoS1 may redeliver) and see gaps. A request is counted in the second in which its
//! response completed (or failed).

use crate::histogram::EncodedHistogram;
use crate::{AgentId, RunId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One agent's measurements for one second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// Protocol version.
    #[serde(default = "crate::wire::current_version")]
    pub version: u32,
    /// The run.
    pub run: RunId,
    /// The agent that measured.
    pub agent: AgentId,
    /// Per-agent sequence number, from 0, without gaps.
    pub seq: u64,
    /// The second measured, in seconds since the Unix epoch.
    pub second: u64,
    /// Set on the agent's last frame.
    #[serde(default, rename = "final")]
    pub is_final: bool,
    /// Virtual users running at the end of the second.
    pub vus: u32,
    /// All requests of the second.
    pub total: Stats,
    /// The same, per scenario step label.
    #[serde(default)]
    pub steps: BTreeMap<String, Stats>,
    /// Open model: planned arrivals of this agent that could not start (the in-flight cap was
    /// reached for longer than the request timeout, or the load ended first), counted in the
    /// second they were given up in. They are not requests: nothing was sent.
    #[serde(default)]
    pub dropped: u64,
    /// How the agent itself fared during the second.
    #[serde(default)]
    pub health: Health,
    /// When the agent published the frame, in milliseconds since the Unix epoch (0: not said, an
    /// older agent). With `seq`, it tells the coordinator the agent is alive however late the
    /// frame reaches it.
    #[serde(default)]
    pub sent_ms: u64,
}

/// The agent's own health in one second: if it was saturated, its numbers measure itself.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Health {
    /// CPU used by the agent process (user + system), in percent of one core.
    pub cpu_percent: f64,
    /// Longest delay of the agent's event loop in the second (a timer that fired late), in ms.
    pub loop_lag_ms: f64,
    /// Iterations (open model) or busy virtual users (closed model) at the end of the second.
    pub in_flight: u32,
    /// Commands the agent refused since its previous frame because they were not sealed with its
    /// run's key ([`crate::cmdseal`]): forged or another run's. Absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub commands_refused: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Health {
    /// CPU use (percent of one core) from which an agent counts as saturated.
    pub const CPU_SATURATED: f64 = 90.0;
    /// Event-loop delay (ms) from which an agent counts as lagging.
    pub const LAG_HIGH_MS: f64 = 50.0;

    /// Whether the agent was the bottleneck in this second: its CPU near saturation or its event
    /// loop lagging, so requests left (and latencies were read) later than planned.
    pub fn is_bottleneck(&self) -> bool {
        self.cpu_percent >= Self::CPU_SATURATED || self.loop_lag_ms >= Self::LAG_HIGH_MS
    }
}

/// Outcomes of the checks of a set of requests: a failed check is not a transport error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Checks {
    /// Checks that held.
    pub passed: u64,
    /// Checks that did not.
    pub failed: u64,
}

/// Counts and latencies of a set of requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Stats {
    /// Requests that completed or failed.
    pub requests: u64,
    /// Of those, how many were errors (transport failures, or HTTP status >= 400).
    pub errors: u64,
    /// Responses by HTTP status code.
    #[serde(default)]
    pub status_codes: BTreeMap<u16, u64>,
    /// Failures by kind: `connect`, `tls`, `timeout`, `reset`, `closed`, `io`, `aborted`,
    /// `http_4xx`, `http_5xx`.
    #[serde(default)]
    pub error_kinds: BTreeMap<String, u64>,
    /// Latencies (µs) of requests that got a response, whatever its status. In the open model
    /// the first request of an iteration is measured from the iteration's *planned* start, so
    /// waiting caused by a slow target counts (coordinated omission corrected).
    #[serde(default)]
    pub latency: EncodedHistogram,
    /// Service times (µs): from actually sending each request to the end of its response.
    /// Equal to `latency` except when iterations started late.
    #[serde(default)]
    pub service_latency: EncodedHistogram,
    /// Checks of these requests.
    #[serde(default)]
    pub checks: Checks,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::{new_latency, record_us};
    use crate::wire::{decode, encode};
    use proptest::prelude::*;

    fn stats(requests: u64, errors: u64, codes: Vec<(u16, u64)>, lat: Vec<u64>) -> Stats {
        let mut h = new_latency();
        for v in lat {
            record_us(&mut h, v);
        }
        Stats {
            requests,
            errors,
            status_codes: codes.into_iter().collect(),
            error_kinds: [("timeout".to_string(), errors)].into_iter().collect(),
            latency: EncodedHistogram::encode(&h),
            service_latency: EncodedHistogram::encode(&h),
            checks: Checks {
                passed: requests,
                failed: errors,
            },
        }
    }

    proptest! {
        #[test]
        fn frames_round_trip(
            seq in 0u64..1_000_000, second in 0u64..4_000_000_000, is_final: bool, vus in 0u32..100_000,
            requests in 0u64..1_000_000, errors in 0u64..1000,
            codes in proptest::collection::vec((100u16..600, 0u64..1000), 0..4),
            lat in proptest::collection::vec(1u64..10_000_000, 0..50),
        ) {
            let total = stats(requests, errors, codes, lat);
            let frame = Frame {
                version: 1,
                run: RunId::new("r").expect("valid"),
                agent: AgentId::numbered(0),
                seq, second, is_final, vus,
                steps: [("login".to_string(), total.clone())].into_iter().collect(),
                total,
                dropped: errors,
                health: Health { cpu_percent: 12.5, loop_lag_ms: 0.25, in_flight: vus, commands_refused: 0 },
                sent_ms: second * 1000 + 3,
            };
            prop_assert_eq!(decode::<Frame>(&encode(&frame)).ok(), Some(frame));
        }
    }
}
