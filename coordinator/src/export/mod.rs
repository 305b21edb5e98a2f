//! Pushing a run's merged seconds to Prometheus (remote write, native histograms) and
//! OpenTelemetry collectors (OTLP/HTTP, exponential histograms) while the run goes.
//!
//! The run actor holds an [`Exporter`] and hands it every second it emits (live, late, or
//! flushed at the end). The exporter turns the second into exponential buckets (`native`, with
//! the error bound) and counts by status (`point`), keeps what it sent of recent seconds so a
//! second merged again after a late frame only sends what changed, and `try_send`s to each
//! output's bounded queue: a full queue drops the second with a counted warning instead of
//! slowing the actor. Each output's task (`sink`) batches, encodes (`prom`, `otlp`, with the
//! protobuf writer in `proto`) and POSTs (`http`) with retries and backoff. At the end,
//! [`Exporter::finish`] closes the queues, waits (bounded) for the last pushes, and returns
//! what each output did for the summary's `outputs`.
//!
//! **A resumed run goes on where its outputs were** ([`Seed`]): a coordinator restarted mid-run
//! rebuilds its seconds from the store, and the seconds it emits again at once (complete, or past
//! their grace: those the dead coordinator had emitted, so exported) seed its exporter. The
//! Prometheus sink starts its running totals from their sum, so its counters and histograms
//! continue instead of dropping to zero (which Prometheus reads as a counter reset), and every
//! output takes them as already sent, so a late frame for one of them sends only what it adds
//! (OTLP is delta: it sends nothing again). Seconds still pending at the restart were never
//! exported, and are exported in full when they are emitted.

mod http;
pub mod native;
mod otlp;
pub mod point;
mod prom;
mod proto;
mod sink;

#[cfg(test)]
mod tests;

use crate::aggregate::SecondAggregate;
use herd_protocol::plan::Output;
use herd_protocol::summary::OutputReport;
use point::{SecondPoint, StepPoint};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

pub use prom::{HISTOGRAM as PROMETHEUS_HISTOGRAM, REQUESTS as PROMETHEUS_REQUESTS};

/// Seconds an output's queue holds before seconds are dropped.
const QUEUE: usize = 120;
/// Seconds whose exported state is kept, so a late frame's change can be sent alone.
const REMEMBERED: usize = 600;

struct SinkHandle {
    queue: mpsc::Sender<SecondPoint>,
    report: Arc<Mutex<OutputReport>>,
    task: tokio::task::JoinHandle<()>,
    warned: bool,
}

/// What a resumed run's outputs had been sent before the restart (see the module docs).
#[derive(Debug, Default)]
pub struct Seed {
    /// The sum of the seconds, by step.
    total: BTreeMap<String, StepPoint>,
    /// The latest of them (at most [`REMEMBERED`]).
    recent: BTreeMap<u64, SecondPoint>,
    statuses: BTreeSet<String>,
}

impl Seed {
    /// `agg` was exported before the restart.
    pub fn add(&mut self, agg: &SecondAggregate) {
        let point = SecondPoint::of(agg, &mut self.statuses);
        for (step, p) in &point.steps {
            let total = self.total.entry(step.clone()).or_default();
            total.latency.add(&p.latency);
            for (status, n) in &p.statuses {
                *total.statuses.entry(status.clone()).or_default() += n;
            }
        }
        self.recent.insert(agg.second, point);
        while self.recent.len() > REMEMBERED {
            self.recent.pop_first();
        }
    }
}

/// The run actor's side of its outputs.
pub struct Exporter {
    sinks: Vec<SinkHandle>,
    sent: BTreeMap<u64, SecondPoint>,
    statuses: BTreeSet<String>,
}

impl Exporter {
    /// Starts one task per output (on the current Tokio runtime); `None` without outputs.
    /// `run` and `test` label every series.
    pub fn start(outputs: &[Output], run: &str, test: &str) -> Option<Self> {
        Self::resume(outputs, run, test, Seed::default())
    }

    /// [`Exporter::start`] for a resumed run, going on from what `seed` says was exported.
    pub fn resume(outputs: &[Output], run: &str, test: &str, seed: Seed) -> Option<Self> {
        if outputs.is_empty() {
            return None;
        }
        let common = vec![
            ("run".to_string(), run.to_string()),
            ("test".to_string(), test.to_string()),
        ];
        let sinks = outputs
            .iter()
            .map(|output| {
                let (queue, rx) = mpsc::channel(QUEUE);
                let report = Arc::new(Mutex::new(OutputReport {
                    kind: output.kind().into(),
                    url: output.url().into(),
                    ..OutputReport::default()
                }));
                let task = tokio::spawn(sink::run(
                    output.clone(),
                    common.clone(),
                    rx,
                    report.clone(),
                    seed.total.clone(),
                ));
                SinkHandle {
                    queue,
                    report,
                    task,
                    warned: false,
                }
            })
            .collect();
        Some(Self {
            sinks,
            sent: seed.recent,
            statuses: seed.statuses,
        })
    }

    /// Queues `agg` (or, for a second already exported, what was added to it since).
    pub fn second(&mut self, agg: &SecondAggregate) {
        let now = SecondPoint::of(agg, &mut self.statuses);
        let point = match self.sent.get(&agg.second) {
            Some(before) => now.minus(before),
            None if self.sent.len() >= REMEMBERED
                && self
                    .sent
                    .first_key_value()
                    .is_some_and(|(s, _)| *s > agg.second) =>
            {
                tracing::warn!(
                    second = agg.second,
                    "a second older than the exported window changed; its change is not exported"
                );
                return;
            }
            None => now.clone(),
        };
        self.sent.insert(agg.second, now);
        while self.sent.len() > REMEMBERED {
            self.sent.pop_first();
        }
        if !point.steps.is_empty() {
            self.queue(point);
        }
    }

    /// Hands `point` to every output's queue; a full queue drops it (counted, warned once).
    fn queue(&mut self, point: SecondPoint) {
        for sink in &mut self.sinks {
            if sink.queue.try_send(point.clone()).is_err() {
                let mut report = sink::lock(&sink.report);
                report.dropped += 1;
                if !sink.warned {
                    sink.warned = true;
                    tracing::warn!(
                        output = report.kind,
                        url = report.url,
                        "the output's queue is full: seconds are dropped (counted in the summary)"
                    );
                }
            }
        }
    }

    /// Closes the queues and waits up to `limit` for the last pushes; then what each output did.
    pub fn finish(self, limit: Duration) -> impl std::future::Future<Output = Vec<OutputReport>> {
        let sinks = self.sinks;
        async move {
            let deadline = tokio::time::Instant::now() + limit;
            let mut reports = Vec::new();
            for sink in sinks {
                drop(sink.queue);
                let mut task = sink.task;
                if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                    task.abort();
                    let mut report = sink::lock(&sink.report);
                    report.failed += 1;
                    report.last_error =
                        Some(format!("the last pushes did not end within {limit:?}"));
                }
                reports.push(sink::lock(&sink.report).clone());
            }
            reports
        }
    }
}

/// A run's outputs: `herd.toml`'s defaults, then its plan's; a plan's output to the same kind
/// and URL as a default replaces it (its labels or headers win).
pub fn outputs_of(defaults: &[Output], plan: &[Output]) -> Vec<Output> {
    let mut all: Vec<Output> = defaults
        .iter()
        .filter(|d| {
            !plan
                .iter()
                .any(|p| p.kind() == d.kind() && p.url() == d.url())
        })
        .cloned()
        .collect();
    all.extend(plan.iter().cloned());
    all
}
