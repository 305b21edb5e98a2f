//! Events to an SNS topic: the [`EventSink`] of the AWS mode.
//!
//! Other systems learn what happened to their commands and runs by subscribing to the topic (an
//! SQS queue, a Lambda, an e-mail address, AWS Chatbot). Each event is one SNS message:
//! - the body is the protocol's [`EventMessage`] JSON (`{"version": 1, "at_ms", "command_id",
//!   "type": "run.completed", "run", "test", "summary": {…}}`: the summary is the object
//!   `herd run --json` writes), or with `format = "chatbot"` an AWS Chatbot custom notification
//!   ([`super::chatbot`]);
//! - message attributes `event` (the type), `test` and `run` (when the event has them), all
//!   `String`, so subscriptions can filter (`{"event": ["run.completed", "run.failed"]}`).
//!
//! `emit` never blocks the manager: events go into a bounded queue (1024) that one task publishes
//! in order, one at a time, so a run's events reach SNS in the order they happened. When the
//! queue is full (SNS unreachable for a long time) new events are dropped, counted and logged;
//! the SDK itself retries throttling and transient errors. On a FIFO topic (`….fifo`) each
//! message's group is its run, so subscribers of FIFO queues also get each run's events in order
//! (a standard topic and queue deliver best-effort in order).
//!
//! `run.progress` is published only when `progress_interval` is set, at most once per interval
//! per run, never after the run's final event. A message must fit SNS's 256 KiB: when a summary
//! is too large (a run of hours has one entry per second), its `seconds` list (then `steps` and
//! `agents`) is left out and `seconds_omitted` (…) says how many entries were; the store and the
//! API keep them all.

use super::chatbot;
use crate::config::{self, EventFormat};
use crate::events::EventSink;
use crate::metrics::{SnsOutcome, METRICS};
use aws_config::SdkConfig;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;
use herd_protocol::event::{Event, EventMessage};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Events waiting to be published before new ones are dropped.
pub const QUEUE: usize = 1024;

/// The largest body published: SNS takes 256 KiB with the attributes.
const MAX_BODY: usize = 250 * 1024;

/// What the sink did so far.
#[derive(Debug, Default)]
pub struct SnsStats {
    /// Messages SNS accepted.
    pub published: AtomicU64,
    /// Events dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Events SNS refused (after the SDK's retries), or too large even without their details.
    pub failed: AtomicU64,
}

enum Item {
    Event(EventMessage),
    Flush(oneshot::Sender<()>),
}

/// Publishes events to an SNS topic.
pub struct SnsEvents {
    tx: mpsc::Sender<Item>,
    stats: Arc<SnsStats>,
    progress: Option<Mutex<ProgressGate>>,
}

impl SnsEvents {
    /// A sink publishing to `cfg.topic_arn`. Spawns its publishing task, so it must be called
    /// inside a tokio runtime (the actix system of `herd up`).
    pub fn new(sdk: &SdkConfig, cfg: &config::SnsSettings) -> Self {
        Self::with_queue(sdk, cfg, QUEUE)
    }

    /// The same with a queue of `capacity` events.
    pub fn with_queue(sdk: &SdkConfig, cfg: &config::SnsSettings, capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stats = Arc::new(SnsStats::default());
        let publisher = Publisher {
            client: aws_sdk_sns::Client::new(sdk),
            topic_arn: cfg.topic_arn.clone(),
            format: cfg.format,
            fifo: cfg.topic_arn.ends_with(".fifo"),
            instance: RandomState::new().hash_one(std::process::id()) & 0xffff_ffff,
            sequence: 0,
            stats: stats.clone(),
        };
        tokio::spawn(publisher.run(rx));
        Self {
            tx,
            stats,
            progress: cfg.progress_interval.map(|every| {
                Mutex::new(ProgressGate {
                    every,
                    last: HashMap::new(),
                    ended: VecDeque::new(),
                })
            }),
        }
    }

    /// Counters of what was published, dropped and refused.
    pub fn stats(&self) -> &SnsStats {
        &self.stats
    }

    /// Waits until every event emitted before the call is published (or failed), at most
    /// `limit`; `false` if that took longer. For a shutdown: the last runs' final events.
    pub async fn flush(&self, limit: Duration) -> bool {
        let (done, wait) = oneshot::channel();
        tokio::time::timeout(limit, async {
            self.tx.send(Item::Flush(done)).await.is_ok() && wait.await.is_ok()
        })
        .await
        .unwrap_or(false)
    }

    /// Whether this event goes out: progress only when configured and due.
    fn admits(&self, event: &Event) -> bool {
        let Some(gate) = &self.progress else {
            return !matches!(event, Event::RunProgress { .. });
        };
        let Ok(mut gate) = gate.lock() else {
            return true;
        };
        gate.admits(event, Instant::now())
    }
}

impl EventSink for SnsEvents {
    fn emit(&self, event: EventMessage) {
        if !self.admits(&event.event) {
            return;
        }
        let name = event.event.name();
        if self.tx.try_send(Item::Event(event)).is_err() {
            METRICS.sns_event(SnsOutcome::Dropped);
            let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    event = name,
                    "SNS event queue full: events are being dropped"
                );
            }
        }
    }
}

/// At most one `run.progress` per run per interval, and none after the run's last event.
struct ProgressGate {
    every: Duration,
    last: HashMap<String, Instant>,
    /// Runs that ended lately (a progress can race their final event).
    ended: VecDeque<String>,
}

impl ProgressGate {
    fn admits(&mut self, event: &Event, now: Instant) -> bool {
        match event {
            Event::RunProgress { run, .. } => {
                if self.ended.contains(run) {
                    return false;
                }
                match self.last.get(run) {
                    Some(at) if now.duration_since(*at) < self.every => false,
                    _ => {
                        self.last.insert(run.clone(), now);
                        true
                    }
                }
            }
            e if e.ends_run() => {
                if let Some(run) = e.run() {
                    self.last.remove(run);
                    if self.ended.len() == 64 {
                        self.ended.pop_front();
                    }
                    self.ended.push_back(run.to_string());
                }
                true
            }
            _ => true,
        }
    }
}

struct Publisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
    format: EventFormat,
    fifo: bool,
    instance: u64,
    sequence: u64,
    stats: Arc<SnsStats>,
}

impl Publisher {
    async fn run(mut self, mut rx: mpsc::Receiver<Item>) {
        while let Some(item) = rx.recv().await {
            match item {
                Item::Event(event) => self.publish(event).await,
                Item::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    async fn publish(&mut self, event: EventMessage) {
        let name = event.event.name();
        let Some(body) = self.body(&event) else {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            METRICS.sns_event(SnsOutcome::Failed);
            tracing::error!(
                event = name,
                "event too large for SNS even without its details: not published"
            );
            return;
        };
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(body);
        let attributes = [
            ("event", Some(name)),
            ("test", event.event.test()),
            ("run", event.event.run()),
        ];
        for (key, value) in attributes {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                if let Ok(attribute) = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                {
                    request = request.message_attributes(key, attribute);
                }
            }
        }
        if self.fifo {
            self.sequence += 1;
            request = request
                .message_group_id(event.event.run().unwrap_or("herd"))
                .message_deduplication_id(format!("{:08x}-{}", self.instance, self.sequence));
        }
        match request.send().await {
            Ok(_) => {
                self.stats.published.fetch_add(1, Ordering::Relaxed);
                METRICS.sns_event(SnsOutcome::Published);
            }
            Err(e) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                METRICS.sns_event(SnsOutcome::Failed);
                tracing::warn!(
                    event = name,
                    run = event.event.run().unwrap_or(""),
                    error = %DisplayErrorContext(&e),
                    "SNS refused an event"
                );
            }
        }
    }

    fn body(&self, event: &EventMessage) -> Option<String> {
        match self.format {
            EventFormat::Chatbot => {
                Some(chatbot::notification(event).to_string()).filter(|b| b.len() <= MAX_BODY)
            }
            EventFormat::Json => fit(serde_json::to_value(event).ok()?, MAX_BODY),
        }
    }
}

/// The event's JSON within `limit` bytes: whole if it fits, else without the summary's longest
/// lists (`seconds`, then `steps`, then `agents`), each replaced by a count of what was left out.
fn fit(mut value: Value, limit: usize) -> Option<String> {
    for list in ["seconds", "steps", "agents"] {
        let text = value.to_string();
        if text.len() <= limit {
            return Some(text);
        }
        let summary = value.get_mut("summary").and_then(Value::as_object_mut)?;
        let omitted = match summary.get(list) {
            Some(Value::Array(a)) => a.len(),
            Some(Value::Object(o)) => o.len(),
            _ => 0,
        };
        let empty = if list == "steps" {
            Value::Object(Default::default())
        } else {
            Value::Array(Vec::new())
        };
        summary.insert(list.into(), empty);
        summary.insert(format!("{list}_omitted"), omitted.into());
    }
    Some(value.to_string()).filter(|t| t.len() <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn progress_passes_once_per_interval_per_run_and_never_after_the_end() {
        let mut gate = ProgressGate {
            every: Duration::from_secs(10),
            last: HashMap::new(),
            ended: VecDeque::new(),
        };
        let progress = |run: &str| Event::RunProgress {
            run: run.into(),
            test: None,
            elapsed_s: 1.0,
            planned_s: 60.0,
            agents_live: 1,
            requests: 1,
            errors: 0,
            last_second: None,
        };
        let t0 = Instant::now();
        assert!(gate.admits(&progress("a"), t0));
        assert!(gate.admits(&progress("b"), t0));
        assert!(!gate.admits(&progress("a"), t0 + Duration::from_secs(9)));
        assert!(gate.admits(&progress("a"), t0 + Duration::from_secs(10)));
        let cancelled = Event::RunCancelled {
            run: "b".into(),
            test: None,
            summary: Box::new(summary(0)),
        };
        assert!(gate.admits(&cancelled, t0));
        assert!(!gate.admits(&progress("b"), t0 + Duration::from_secs(60)));
    }

    fn summary(seconds: usize) -> herd_protocol::summary::Summary {
        let second = json!({"t": 0, "requests": 1000, "errors": 0, "p50_ms": 1.25, "p99_ms": 9.5,
                            "agents_reported": 4, "agents_expected": 4});
        serde_json::from_value(json!({
            "run_id": "r", "name": "n", "status": "passed", "run_state": "completed",
            "requests": 1, "errors": 0, "error_rate": 0.0, "rps": 1.0, "duration_s": 1.0,
            "latency_ms": {"min": 0.0, "mean": 0.0, "p50": 0.0, "p90": 0.0, "p95": 0.0,
                           "p99": 0.0, "p999": 0.0, "max": 0.0},
            "status_codes": {}, "error_kinds": {}, "steps": {}, "agents": [], "start_skew_ms": 0.0,
            "thresholds": [], "seconds": vec![second; seconds], "lost_agents": []
        }))
        .expect("a summary")
    }

    #[test]
    fn a_summary_too_large_for_sns_loses_its_seconds_and_says_how_many() {
        let event = |seconds| {
            serde_json::to_value(EventMessage {
                version: 1,
                at_ms: 1,
                command_id: Some("c".into()),
                event: Event::RunCompleted {
                    run: "r".into(),
                    test: None,
                    summary: Box::new(summary(seconds)),
                },
            })
            .expect("json")
        };
        let small = fit(event(3), MAX_BODY).expect("fits");
        assert_eq!(small, event(3).to_string(), "a small event is sent whole");
        let hours = event(4 * 3600);
        assert!(hours.to_string().len() > MAX_BODY);
        let fitted: Value =
            serde_json::from_str(&fit(hours, MAX_BODY).expect("fits")).expect("json");
        assert_eq!(fitted["summary"]["seconds"], json!([]));
        assert_eq!(fitted["summary"]["seconds_omitted"], 4 * 3600);
        assert_eq!(fitted["summary"]["requests"], 1);
        assert!(fitted["summary"].get("steps_omitted").is_none());
        assert_eq!(fit(json!({"type": "x", "pad": "y".repeat(300)}), 100), None);
    }
}
