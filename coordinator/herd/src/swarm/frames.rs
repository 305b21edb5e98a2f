//! What a simulated agent reports each second: a realistic frame, made once and reused.
//!
//! Encoding histograms (V2 deflate, base64) is the most expensive part of a real agent's frame,
//! and 10,000 simulated agents in one process cannot afford 10,000 encodings a second. So a
//! [`Menu`] of varied seconds — request counts, status codes, error kinds and latency histograms
//! that agree with each other — is built up front, and each agent-second picks one. The frames
//! themselves are the protocol's own [`Frame`], encoded by its own [`wire::encode`].

use herd_protocol::frame::{Checks, Frame, Health, Stats};
use herd_protocol::histogram::{new_latency, record_us, EncodedHistogram};
use herd_protocol::{wire, AgentId, RunId};
use std::collections::BTreeMap;

/// How many different seconds the menu holds.
const VARIANTS: usize = 97;

/// A tiny deterministic generator (xorshift64*): the bench needs variety, not cryptography.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (any value; zero is moved off).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Who sends a frame.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    /// The run.
    pub run: &'a RunId,
    /// The agent.
    pub id: &'a AgentId,
    /// Its place among the simulated agents (varies the seconds it picks).
    pub index: usize,
}

/// One second's measurements of one agent, with its request count for the bench's own tally.
#[derive(Debug, Clone)]
struct Second {
    total: Stats,
}

/// The seconds simulated agents choose from; see the module docs.
#[derive(Debug, Clone)]
pub struct Menu {
    seconds: Vec<Second>,
    step: String,
}

impl Menu {
    /// A menu for frames of a one-step scenario whose step is labelled `step`.
    pub fn new(step: &str) -> Self {
        let mut rng = Rng::new(0x5eed);
        let seconds = (0..VARIANTS)
            .map(|_| Second {
                total: stats(&mut rng),
            })
            .collect();
        Self {
            seconds,
            step: step.to_string(),
        }
    }

    /// The encoded frame `seq` of `agent` for `second`, and its request count.
    pub fn frame(
        &self,
        agent: &Sender<'_>,
        seq: u64,
        second: u64,
        is_final: bool,
        sent_ms: u64,
    ) -> (Vec<u8>, u64) {
        let pick = (agent.index.wrapping_mul(7919) as u64 + seq * 31) as usize % self.seconds.len();
        let total = self.seconds[pick].total.clone();
        let requests = total.requests;
        let frame = Frame {
            version: herd_protocol::PROTOCOL_VERSION,
            run: agent.run.clone(),
            agent: agent.id.clone(),
            seq,
            second,
            is_final,
            vus: 1,
            steps: BTreeMap::from([(self.step.clone(), total.clone())]),
            total,
            dropped: 0,
            health: Health {
                cpu_percent: 3.5,
                loop_lag_ms: 0.2,
                in_flight: 1,
                commands_refused: 0,
            },
            sent_ms,
        };
        (wire::encode(&frame), requests)
    }
}

/// A plausible second: 20–80 requests, mostly 200, some 404 and 500, the odd timeout, latencies
/// around a few milliseconds with a long tail.
fn stats(rng: &mut Rng) -> Stats {
    let requests = 20 + rng.below(61);
    let not_found = rng.below(4);
    let server_errors = rng.below(3);
    let timeouts = u64::from(rng.below(10) == 0);
    let ok = requests - not_found - server_errors - timeouts;
    let mut latency = new_latency();
    for _ in 0..(requests - timeouts) {
        let base = 800 + rng.below(4_000);
        let tail = if rng.below(50) == 0 {
            rng.below(200_000)
        } else {
            0
        };
        record_us(&mut latency, base + tail);
    }
    let encoded = EncodedHistogram::encode(&latency);
    let mut status_codes = BTreeMap::from([(200, ok)]);
    let mut error_kinds = BTreeMap::new();
    for (code, kind, n) in [
        (404, "http_4xx", not_found),
        (500, "http_5xx", server_errors),
    ] {
        if n > 0 {
            status_codes.insert(code, n);
            error_kinds.insert(kind.to_string(), n);
        }
    }
    if timeouts > 0 {
        error_kinds.insert("timeout".to_string(), timeouts);
    }
    Stats {
        requests,
        errors: not_found + server_errors + timeouts,
        status_codes,
        error_kinds,
        latency: encoded.clone(),
        service_latency: encoded,
        checks: Checks::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_and_their_counts_agree() {
        let menu = Menu::new("home");
        let run = RunId::new("r").expect("valid");
        let id = AgentId::numbered(3);
        let agent = Sender {
            run: &run,
            id: &id,
            index: 3,
        };
        for seq in 0..VARIANTS as u64 {
            let (bytes, requests) = menu.frame(&agent, seq, 1_700_000_000 + seq, false, 1);
            let frame: Frame = wire::decode(&bytes).expect("a frame");
            assert_eq!(frame.total.requests, requests);
            let codes: u64 = frame.total.status_codes.values().sum();
            let timeouts = frame.total.error_kinds.get("timeout").copied().unwrap_or(0);
            assert_eq!(codes + timeouts, requests);
            let histogram = frame.total.latency.decode().expect("a histogram");
            assert_eq!(histogram.len(), requests - timeouts);
            assert_eq!(frame.steps["home"], frame.total);
        }
    }
}
