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

use herd_protocol::clock::US_PER_SEC;
use herd_protocol::frame::{Checks, Frame, Health, Stats};
use herd_protocol::histogram::{new_latency, record_us, EncodedHistogram, Latency};
use herd_protocol::{AgentId, RunId};
use std::collections::{BTreeMap, VecDeque};

/// How a transport-level failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The connection could not be established.
    Connect,
    /// The TLS handshake failed (certificate not trusted or not for this host, no common
    /// protocol, not a TLS server), or TLS failed later on the connection.
    Tls,
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
    /// Refused before connecting: the host or its address is outside the run's
    /// `allowed_targets` ([`herd_protocol::allow`]); nothing was sent.
    Blocked,
}

impl FailureKind {
    fn name(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Tls => "tls",
            FailureKind::Timeout => "timeout",
            FailureKind::Reset => "reset",
            FailureKind::Closed => "closed",
            FailureKind::Io => "io",
            FailureKind::Aborted => "aborted",
            FailureKind::Blocked => "blocked",
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
        /// From the request's planned start (its iteration's planned start for the first request
        /// of an open-model iteration, else the send) to the end of the body, in microseconds.
        latency_us: u64,
        /// From just before sending to the end of the body, in microseconds.
        service_us: u64,
    },
    /// No complete response.
    Failure(FailureKind),
}

impl Outcome {
    /// The outcome with `wait_us` (a wait for the request's planned start) added to its latency;
    /// a failure, which has no latency, stays as it is.
    pub fn waited(self, wait_us: u64) -> Self {
        match self {
            Outcome::Response {
                status,
                latency_us,
                service_us,
            } => Outcome::Response {
                status,
                latency_us: latency_us.saturating_add(wait_us),
                service_us,
            },
            other => other,
        }
    }
}

const KINDS: [FailureKind; 8] = [
    FailureKind::Connect,
    FailureKind::Tls,
    FailureKind::Timeout,
    FailureKind::Reset,
    FailureKind::Closed,
    FailureKind::Io,
    FailureKind::Aborted,
    FailureKind::Blocked,
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
    service_latency: Latency,
    checks: Checks,
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
            service_latency: new_latency(),
            checks: Checks::default(),
        }
    }

    fn record(&mut self, outcome: Outcome) {
        self.requests += 1;
        match outcome {
            Outcome::Response {
                status,
                latency_us,
                service_us,
            } => {
                record_us(&mut self.latency, latency_us);
                record_us(&mut self.service_latency, service_us);
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
            service_latency: EncodedHistogram::encode(&self.service_latency),
            checks: self.checks,
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
        self.service_latency.reset();
        self.checks = Checks::default();
    }
}

/// Everything recorded in one second.
struct Bucket {
    second: u64,
    total: Acc,
    steps: Vec<Acc>,
    dropped: u64,
    /// Longest event-loop delay seen in the second.
    lag_us: u64,
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
    dropped: u64,
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
            dropped: 0,
        }
    }

    /// Records one request of step `step` that ended at Unix time `now_us`.
    pub fn record(&mut self, now_us: u64, step: usize, outcome: Outcome) {
        self.record_in(now_us, step, &[], outcome);
    }

    /// Records one request of step `step`, inside the groups at label indices `groups`, that
    /// ended at Unix time `now_us`: counted in the total, the step and each group.
    pub fn record_in(&mut self, now_us: u64, step: usize, groups: &[usize], outcome: Outcome) {
        let Some(bucket) = self.bucket(now_us) else {
            return;
        };
        bucket.total.record(outcome);
        if let Some(acc) = bucket.steps.get_mut(step) {
            acc.record(outcome);
        }
        for &g in groups {
            if let Some(acc) = bucket.steps.get_mut(g) {
                acc.record(outcome);
            }
        }
        self.requests += 1;
    }

    /// Records the outcome of one check of step `step` at `now_us`.
    pub fn record_check(&mut self, now_us: u64, step: usize, passed: bool) {
        self.record_check_in(now_us, step, &[], passed);
    }

    /// Records the outcome of one check of step `step`, inside the groups `groups`, at `now_us`.
    pub fn record_check_in(&mut self, now_us: u64, step: usize, groups: &[usize], passed: bool) {
        let Some(bucket) = self.bucket(now_us) else {
            return;
        };
        let mark = |checks: &mut Checks| {
            if passed {
                checks.passed += 1;
            } else {
                checks.failed += 1;
            }
        };
        mark(&mut bucket.total.checks);
        for i in std::iter::once(step).chain(groups.iter().copied()) {
            if let Some(acc) = bucket.steps.get_mut(i) {
                mark(&mut acc.checks);
            }
        }
    }

    /// Records `n` planned arrivals given up at `now_us`.
    pub fn record_dropped(&mut self, now_us: u64, n: u64) {
        if let Some(bucket) = self.bucket(now_us) {
            bucket.dropped += n;
            self.dropped += n;
        }
    }

    /// Notes an event-loop delay observed at `now_us`; each frame carries its second's longest.
    pub fn note_lag(&mut self, now_us: u64, lag_us: u64) {
        if let Some(bucket) = self.bucket(now_us) {
            bucket.lag_us = bucket.lag_us.max(lag_us);
        }
    }

    /// The bucket of the second of `now_us`, created if needed.
    fn bucket(&mut self, now_us: u64) -> Option<&mut Bucket> {
        // A second already emitted can no longer change; count a (theoretical) late record in the
        // oldest open second rather than lose it.
        let second = (now_us / US_PER_SEC).max(self.next_second);
        match self.buckets.back() {
            Some(b) if b.second >= second => self.buckets.back_mut(),
            _ => {
                let bucket = self.fresh_bucket(second);
                self.buckets.push_back(bucket);
                self.buckets.back_mut()
            }
        }
    }

    /// Whether a second before `second` has no frame yet (so [`Recorder::flush_before`] would
    /// emit one).
    pub fn due_before(&self, second: u64) -> bool {
        self.next_second < second
    }

    /// Frames of every second before `second`, in order; `vus` and `health` go into each (with
    /// the loop lag of each frame's own second).
    pub fn flush_before(&mut self, second: u64, vus: u32, health: Health) -> Vec<Frame> {
        let mut frames = Vec::new();
        while self.next_second < second {
            frames.push(self.emit(vus, health, false));
        }
        frames
    }

    /// Frames of every remaining second up to and including the one of `now_us`; the last is final.
    pub fn finish(&mut self, now_us: u64, vus: u32, health: Health) -> Vec<Frame> {
        let last = self
            .buckets
            .back()
            .map_or(0, |b| b.second)
            .max(now_us / US_PER_SEC)
            .max(self.next_second);
        let mut frames = self.flush_before(last, vus, health);
        frames.push(self.emit(vus, health, true));
        frames
    }

    /// Requests recorded so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Arrivals dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Frames emitted so far.
    pub fn frames(&self) -> u64 {
        self.seq
    }

    fn emit(&mut self, vus: u32, health: Health, is_final: bool) -> Frame {
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
            dropped: 0,
            health: Health {
                loop_lag_ms: 0.0,
                ..health
            },
            sent_ms: 0,
        };
        if self.buckets.front().is_some_and(|b| b.second == second) {
            if let Some(mut bucket) = self.buckets.pop_front() {
                frame.total = bucket.total.stats();
                for (label, acc) in self.labels.iter().zip(&bucket.steps) {
                    // A step whose request could not be built has failed checks and no request.
                    if acc.requests > 0 || acc.checks.failed > 0 {
                        frame.steps.insert(label.clone(), acc.stats());
                    }
                }
                frame.dropped = bucket.dropped;
                frame.health.loop_lag_ms = bucket.lag_us as f64 / 1000.0;
                bucket.dropped = 0;
                bucket.lag_us = 0;
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
                dropped: 0,
                lag_us: 0,
            },
        }
    }
}

#[cfg(test)]
mod tests;
