//! Per-second accounting of request outcomes, turned into [`Frame`]s.
//!
//! Exact counts are the product, so the rules are strict:
//! - a request is recorded once, when its response completed or it failed, into the bucket of the
//!   Unix second *at record time* (the clock is monotonic, so seconds never go backwards);
//! - [`Recorder::flush_before`] emits every second strictly before the current one, in order,
//!   including seconds without requests, so `seq` has no gaps and a request completing right at
//!   a boundary lands in the next second's bucket instead of being lost;
//! - [`Recorder::finish`] emits the rest and marks the last frame final.
//!
//! Buckets (and their histograms, ~190 KB each) are recycled, so the hot path does not allocate.

use crate::clock::US_PER_SEC;
use herd_protocol::frame::{Frame, Stats};
use herd_protocol::histogram::{new_latency, record_us, EncodedHistogram, Latency};
use herd_protocol::{AgentId, RunId};
use std::collections::{BTreeMap, VecDeque};

/// How a transport-level failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The connection could not be established.
    Connect,
    /// No complete response within the plan's timeout.
    Timeout,
    /// The peer reset the connection.
    Reset,
    /// The peer closed the connection before the response was complete.
    Closed,
    /// Any other I/O or protocol failure.
    Io,
    /// Still in flight when the graceful-stop period ended.
    Aborted,
}

impl FailureKind {
    fn name(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::Reset => "reset",
            FailureKind::Closed => "closed",
            FailureKind::Io => "io",
            FailureKind::Aborted => "aborted",
        }
    }
}

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A complete response arrived (whatever its status).
    Response {
        /// HTTP status code.
        status: u16,
        /// From just before sending to the end of the body, in microseconds.
        latency_us: u64,
    },
    /// No complete response.
    Failure(FailureKind),
}

const KINDS: [FailureKind; 6] = [
    FailureKind::Connect,
    FailureKind::Timeout,
    FailureKind::Reset,
    FailureKind::Closed,
    FailureKind::Io,
    FailureKind::Aborted,
];

/// Counters of one set of requests, cheap to update.
struct Acc {
    requests: u64,
    errors: u64,
    /// Few distinct codes per second: a linear scan beats a map.
    status_codes: Vec<(u16, u64)>,
    failures: [u64; KINDS.len()],
    http_4xx: u64,
    http_5xx: u64,
    latency: Latency,
}

impl Acc {
    fn new() -> Self {
        Self {
            requests: 0,
            errors: 0,
            status_codes: Vec::new(),
            failures: [0; KINDS.len()],
            http_4xx: 0,
            http_5xx: 0,
            latency: new_latency(),
        }
    }

    fn record(&mut self, outcome: Outcome) {
        self.requests += 1;
        match outcome {
            Outcome::Response { status, latency_us } => {
                record_us(&mut self.latency, latency_us);
                match self.status_codes.iter_mut().find(|(c, _)| *c == status) {
                    Some((_, n)) => *n += 1,
                    None => self.status_codes.push((status, 1)),
                }
                if status >= 500 {
                    self.errors += 1;
                    self.http_5xx += 1;
                } else if status >= 400 {
                    self.errors += 1;
                    self.http_4xx += 1;
                }
            }
            Outcome::Failure(kind) => {
                self.errors += 1;
                if let Some(i) = KINDS.iter().position(|k| *k == kind) {
                    self.failures[i] += 1;
                }
            }
        }
    }

    fn stats(&self) -> Stats {
        let mut error_kinds = BTreeMap::new();
        for (kind, n) in KINDS.iter().zip(self.failures) {
            if n > 0 {
                error_kinds.insert(kind.name().to_string(), n);
            }
        }
        for (name, n) in [("http_4xx", self.http_4xx), ("http_5xx", self.http_5xx)] {
            if n > 0 {
                error_kinds.insert(name.to_string(), n);
            }
        }
        Stats {
            requests: self.requests,
            errors: self.errors,
            status_codes: self.status_codes.iter().copied().collect(),
            error_kinds,
            latency: EncodedHistogram::encode(&self.latency),
        }
    }

    fn reset(&mut self) {
        self.requests = 0;
        self.errors = 0;
        self.status_codes.clear();
        self.failures = [0; KINDS.len()];
        self.http_4xx = 0;
        self.http_5xx = 0;
        self.latency.reset();
    }
}

/// Everything recorded in one second.
struct Bucket {
    second: u64,
    total: Acc,
    steps: Vec<Acc>,
}

/// Who measured: written into every frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameIdentity {
    /// The run.
    pub run: RunId,
    /// This agent.
    pub agent: AgentId,
}

/// Collects outcomes into per-second buckets and emits frames; see the module docs.
pub struct Recorder {
    identity: FrameIdentity,
    labels: Vec<String>,
    /// Buckets of seconds not yet emitted, oldest first (seconds strictly increasing).
    buckets: VecDeque<Bucket>,
    spare: Vec<Bucket>,
    /// The next second to emit a frame for.
    next_second: u64,
    seq: u64,
    requests: u64,
}

impl Recorder {
    /// A recorder whose first frame covers `first_second`; `labels` are the step labels, indexed
    /// by the `step` argument of [`Recorder::record`].
    pub fn new(identity: FrameIdentity, labels: Vec<String>, first_second: u64) -> Self {
        Self {
            identity,
            labels,
            buckets: VecDeque::new(),
            spare: Vec::new(),
            next_second: first_second,
            seq: 0,
            requests: 0,
        }
    }

    /// Records one request of step `step` that ended at Unix time `now_us`.
    pub fn record(&mut self, now_us: u64, step: usize, outcome: Outcome) {
        // A second already emitted can no longer change; count a (theoretical) late record in the
        // oldest open second rather than lose it.
        let second = (now_us / US_PER_SEC).max(self.next_second);
        let bucket = match self.buckets.back() {
            Some(b) if b.second >= second => self.buckets.back_mut(),
            _ => {
                let bucket = self.fresh_bucket(second);
                self.buckets.push_back(bucket);
                self.buckets.back_mut()
            }
        };
        let Some(bucket) = bucket else { return };
        bucket.total.record(outcome);
        if let Some(acc) = bucket.steps.get_mut(step) {
            acc.record(outcome);
        }
        self.requests += 1;
    }

    /// Frames of every second before `second`, in order; `vus` goes into each.
    pub fn flush_before(&mut self, second: u64, vus: u32) -> Vec<Frame> {
        let mut frames = Vec::new();
        while self.next_second < second {
            frames.push(self.emit(vus, false));
        }
        frames
    }

    /// Frames of every remaining second up to and including the one of `now_us`; the last is final.
    pub fn finish(&mut self, now_us: u64, vus: u32) -> Vec<Frame> {
        let last = self
            .buckets
            .back()
            .map_or(0, |b| b.second)
            .max(now_us / US_PER_SEC)
            .max(self.next_second);
        let mut frames = self.flush_before(last, vus);
        frames.push(self.emit(vus, true));
        frames
    }

    /// Requests recorded so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Frames emitted so far.
    pub fn frames(&self) -> u64 {
        self.seq
    }

    fn emit(&mut self, vus: u32, is_final: bool) -> Frame {
        let second = self.next_second;
        let mut frame = Frame {
            version: herd_protocol::PROTOCOL_VERSION,
            run: self.identity.run.clone(),
            agent: self.identity.agent.clone(),
            seq: self.seq,
            second,
            is_final,
            vus,
            total: Stats::default(),
            steps: BTreeMap::new(),
        };
        if self.buckets.front().is_some_and(|b| b.second == second) {
            if let Some(mut bucket) = self.buckets.pop_front() {
                frame.total = bucket.total.stats();
                for (label, acc) in self.labels.iter().zip(&bucket.steps) {
                    if acc.requests > 0 {
                        frame.steps.insert(label.clone(), acc.stats());
                    }
                }
                bucket.total.reset();
                bucket.steps.iter_mut().for_each(Acc::reset);
                self.spare.push(bucket);
            }
        }
        self.seq += 1;
        self.next_second += 1;
        frame
    }

    fn fresh_bucket(&mut self, second: u64) -> Bucket {
        match self.spare.pop() {
            Some(mut b) => {
                b.second = second;
                b
            }
            None => Bucket {
                second,
                total: Acc::new(),
                steps: self.labels.iter().map(|_| Acc::new()).collect(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_700_000_000;

    fn recorder() -> Recorder {
        let identity = FrameIdentity {
            run: RunId::new("r").expect("valid"),
            agent: AgentId::numbered(0),
        };
        Recorder::new(identity, vec!["a".into(), "b".into()], S)
    }

    fn ok(status: u16) -> Outcome {
        Outcome::Response {
            status,
            latency_us: 1_000,
        }
    }

    #[test]
    fn requests_land_in_the_second_they_completed_in() {
        let mut r = recorder();
        r.record(S * US_PER_SEC, 0, ok(200));
        r.record((S + 1) * US_PER_SEC - 1, 0, ok(200));
        // Exactly at the boundary: belongs to the next second.
        r.record((S + 1) * US_PER_SEC, 1, ok(200));
        let frames = r.flush_before(S + 1, 3);
        assert_eq!(frames.len(), 1);
        assert_eq!((frames[0].seq, frames[0].second), (0, S));
        assert_eq!(frames[0].total.requests, 2);
        assert_eq!(frames[0].vus, 3);
        // Records arriving after a flush for the current second are kept.
        r.record((S + 1) * US_PER_SEC + 10, 1, ok(200));
        let frames = r.finish((S + 1) * US_PER_SEC + 20, 0);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].total.requests, 2);
        assert!(frames[0].is_final);
        assert_eq!(r.requests(), 4);
        assert_eq!(r.frames(), 2);
    }

    #[test]
    fn empty_seconds_are_emitted_in_order_and_the_last_is_final() {
        let mut r = recorder();
        r.record((S + 2) * US_PER_SEC + 5, 0, ok(200));
        let frames = r.finish((S + 4) * US_PER_SEC, 1);
        let seconds: Vec<(u64, u64, u64, bool)> = frames
            .iter()
            .map(|f| (f.seq, f.second, f.total.requests, f.is_final))
            .collect();
        assert_eq!(
            seconds,
            vec![
                (0, S, 0, false),
                (1, S + 1, 0, false),
                (2, S + 2, 1, false),
                (3, S + 3, 0, false),
                (4, S + 4, 0, true),
            ]
        );
    }

    #[test]
    fn finish_without_requests_still_emits_one_final_frame() {
        let mut r = recorder();
        let frames = r.finish(S * US_PER_SEC + 3, 0);
        assert_eq!(frames.len(), 1);
        assert!(frames[0].is_final && frames[0].seq == 0 && frames[0].total.requests == 0);
    }

    #[test]
    fn steps_and_error_kinds_are_counted_separately() {
        let mut r = recorder();
        let t = S * US_PER_SEC + 1;
        r.record(t, 0, ok(200));
        r.record(t, 0, ok(404));
        r.record(t, 1, ok(503));
        r.record(t, 1, Outcome::Failure(FailureKind::Connect));
        r.record(t, 1, Outcome::Failure(FailureKind::Aborted));
        let frames = r.finish(t, 0);
        let f = &frames[0];
        assert_eq!((f.total.requests, f.total.errors), (5, 4));
        let kinds: Vec<(&str, u64)> = f
            .total
            .error_kinds
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("aborted", 1),
                ("connect", 1),
                ("http_4xx", 1),
                ("http_5xx", 1)
            ]
        );
        assert_eq!(f.total.status_codes.get(&200), Some(&1));
        let a = &f.steps["a"];
        let b = &f.steps["b"];
        assert_eq!((a.requests, a.errors, b.requests, b.errors), (2, 1, 3, 3));
        // Failures are counted but have no latency.
        let hist = b.latency.decode().expect("valid histogram");
        assert_eq!(hist.len(), 1);
        assert_eq!(f.total.latency.decode().map(|h| h.len()).ok(), Some(3));
    }

    #[test]
    fn recycled_buckets_start_empty() {
        let mut r = recorder();
        r.record(S * US_PER_SEC, 0, ok(500));
        assert_eq!(r.flush_before(S + 1, 0).len(), 1);
        r.record((S + 1) * US_PER_SEC, 1, ok(200));
        let f = r.finish((S + 1) * US_PER_SEC, 0);
        assert_eq!(f[0].total.errors, 0);
        assert!(!f[0].steps.contains_key("a"));
        assert_eq!(f[0].total.status_codes.len(), 1);
        assert_eq!(f[0].total.latency.decode().map(|h| h.len()).ok(), Some(1));
    }
}
