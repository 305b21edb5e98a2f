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
    /// Failures by kind: `connect`, `timeout`, `reset`, `closed`, `io`, `http_4xx`, `http_5xx`.
    #[serde(default)]
    pub error_kinds: BTreeMap<String, u64>,
    /// Latencies (µs) of requests that got a response, whatever its status.
    #[serde(default)]
    pub latency: EncodedHistogram,
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
            };
            prop_assert_eq!(decode::<Frame>(&encode(&frame)).ok(), Some(frame));
        }
    }
}
