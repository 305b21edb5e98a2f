//! Prometheus remote write 1.0: a `WriteRequest` (protobuf, snappy block format) per push.
//!
//! Prometheus series are cumulative, so this sink keeps the run's running state per series and
//! sends it whole with each second: `herd_request_duration_seconds{run,test,step}` (a native
//! histogram, integer counts, schema [`SCHEMA`]) and `herd_requests_total{run,test,step,status}`
//! (a counter). A series' first sample is preceded by an empty one 1 ms earlier, so `increase()`
//! and `rate()` see the run's first second too. A resumed run's state starts from what was
//! exported before the restart ([`PromState::seeded`]), so its series go on, never reset. Samples are stamped with the end of their second;
//! never later than the push, and within a series they only go forward (a late frame's counts join the next push). A failed push
//! loses nothing for Prometheus: the next one carries the running totals.
//!
//! Field numbers: `prompb/types.proto` and `remote.proto` (WriteRequest 1 timeseries;
//! TimeSeries 1 labels, 2 samples, 4 histograms; Histogram 1 count_int, 3 sum, 4 schema,
//! 5 zero_threshold, 6 zero_count_int, 11 positive_spans, 12 positive_deltas, 15 timestamp).

use super::native::{Native, SCHEMA};
use super::point::{SecondPoint, StepPoint};
use super::proto::{zigzag, Msg};
use std::collections::BTreeMap;

/// The histogram's metric name.
pub const HISTOGRAM: &str = "herd_request_duration_seconds";
/// The counter's metric name.
pub const REQUESTS: &str = "herd_requests_total";

/// The running state of every series of one run.
pub struct PromState {
    /// Labels every series carries: `run`, `test` and the output's own.
    common: Vec<(String, String)>,
    histograms: BTreeMap<String, Native>,
    counters: BTreeMap<(String, String), u64>,
    last_ms: i64,
}

/// Samples of one series in this push.
enum Samples {
    Histograms(Vec<(i64, Native)>),
    Counter(Vec<(i64, f64)>),
}

impl PromState {
    /// A run's state; `common` are the labels on every series.
    pub fn new(common: Vec<(String, String)>) -> Self {
        Self {
            common,
            histograms: BTreeMap::new(),
            counters: BTreeMap::new(),
            last_ms: i64::MIN,
        }
    }

    /// Starts the running state from what a resumed run had exported (by step): its series
    /// continue from there, without the empty first sample of a new series (which would read as
    /// a counter reset).
    #[must_use]
    pub fn seeded(mut self, seed: &BTreeMap<String, StepPoint>) -> Self {
        for (step, p) in seed {
            self.histograms.insert(step.clone(), p.latency.clone());
            for (status, n) in &p.statuses {
                self.counters.insert((step.clone(), status.clone()), *n);
            }
        }
        self
    }

    /// Adds `points` to the running state and returns the protobuf `WriteRequest` (not yet
    /// compressed) carrying the state after each of them. `now_ms` caps the stamps: the run's
    /// last second is flushed before it is over, and a sample stamped in the future is invisible
    /// to queries until then.
    pub fn push(&mut self, points: &[SecondPoint], now_ms: i64) -> Vec<u8> {
        let mut hist: BTreeMap<String, Vec<(i64, Native)>> = BTreeMap::new();
        let mut counts: BTreeMap<(String, String), Vec<(i64, f64)>> = BTreeMap::new();
        for point in points {
            let end_ms = i64::try_from((point.second + 1) * 1000).unwrap_or(i64::MAX);
            let ts = end_ms.min(now_ms).max(self.last_ms.saturating_add(1));
            self.last_ms = ts;
            for (step, p) in &point.steps {
                if !self.histograms.contains_key(step) {
                    hist.entry(step.clone())
                        .or_default()
                        .push((ts - 1, Native::default()));
                }
                self.histograms
                    .entry(step.clone())
                    .or_default()
                    .add(&p.latency);
                for (status, n) in &p.statuses {
                    let key = (step.clone(), status.clone());
                    let state = self.counters.entry(key.clone()).or_insert_with(|| {
                        counts.entry(key.clone()).or_default().push((ts - 1, 0.0));
                        0
                    });
                    *state += n;
                }
            }
            for (step, state) in &self.histograms {
                hist.entry(step.clone())
                    .or_default()
                    .push((ts, state.clone()));
            }
            for (key, n) in &self.counters {
                counts.entry(key.clone()).or_default().push((ts, *n as f64));
            }
        }
        let mut request = Msg::default();
        for (step, samples) in hist {
            let labels = self.labels(HISTOGRAM, &step, None);
            request.msg(1, series(&labels, Samples::Histograms(samples)));
        }
        for ((step, status), samples) in counts {
            let labels = self.labels(REQUESTS, &step, Some(&status));
            request.msg(1, series(&labels, Samples::Counter(samples)));
        }
        request.0
    }

    fn labels(&self, name: &str, step: &str, status: Option<&str>) -> Vec<(String, String)> {
        let mut labels = self.common.clone();
        labels.push(("__name__".into(), name.into()));
        labels.push(("step".into(), step.into()));
        if let Some(status) = status {
            labels.push(("status".into(), status.into()));
        }
        // Prometheus expects a series' labels sorted by name.
        labels.sort();
        labels
    }
}

fn series(labels: &[(String, String)], samples: Samples) -> Msg {
    let mut ts = Msg::default();
    for (name, value) in labels {
        let mut label = Msg::default();
        label.bytes(1, name.as_bytes());
        label.bytes(2, value.as_bytes());
        ts.msg(1, label);
    }
    match samples {
        Samples::Counter(samples) => {
            for (at, value) in samples {
                let mut sample = Msg::default();
                sample.double(1, value, false);
                sample.int(2, at);
                ts.msg(2, sample);
            }
        }
        Samples::Histograms(samples) => {
            for (at, h) in samples {
                ts.msg(4, histogram(&h, at));
            }
        }
    }
    ts
}

fn histogram(h: &Native, at: i64) -> Msg {
    let mut m = Msg::default();
    m.uint(1, h.count);
    m.double(3, h.sum, false);
    m.sint(4, i64::from(SCHEMA));
    m.uint(6, h.zero_count);
    let spans = h.spans();
    let mut previous_end: Option<i32> = None;
    let mut previous_count = 0i64;
    let mut deltas = Vec::new();
    for (start, counts) in &spans {
        // A span's offset is its gap from the previous span's end (the first one's: its index).
        let offset = previous_end.map_or(*start, |end| start - end);
        let mut span = Msg::default();
        span.sint(1, i64::from(offset));
        span.uint(2, counts.len() as u64);
        m.msg(11, span);
        previous_end = Some(start + counts.len() as i32);
        for c in counts {
            let c = i64::try_from(*c).unwrap_or(i64::MAX);
            deltas.push(zigzag(c - previous_count));
            previous_count = c;
        }
    }
    m.packed(12, deltas);
    m.int(15, at);
    m
}
