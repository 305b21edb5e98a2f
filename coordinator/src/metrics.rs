//! Process-wide operational counters for Prometheus `/metrics`: frames aggregated, how late each
//! second is emitted live (frame lag), agents connected, and events to SNS by outcome.
//!
//! They are plain atomics in one static, written by the run actors where the facts happen and
//! rendered in the Prometheus text format by the API: no metrics library, no registry to thread
//! through every actor, and no lock on the frame path. Figures owned by the manager (runs by state,
//! command outcomes) are rendered from its view beside these.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Upper bounds (ms) of the frame-lag histogram buckets; `+Inf` is implicit. A second is due
/// live at its end plus the aggregation grace (2 s by default), so the buckets straddle that.
const LAG_BOUNDS_MS: [u64; 9] = [100, 250, 500, 750, 1000, 1500, 2000, 3000, 5000];

/// The coordinator's counters.
pub struct Metrics {
    frames_aggregated: AtomicU64,
    frames_refused: AtomicU64,
    unauthenticated: AtomicU64,
    agent_commands_refused: AtomicU64,
    lag_buckets: [AtomicU64; LAG_BOUNDS_MS.len()],
    lag_count: AtomicU64,
    lag_sum_ms: AtomicU64,
    agents_connected: AtomicI64,
    /// Events to SNS: published, dropped (queue full), failed (refused after retries).
    sns: [AtomicU64; 3],
}

/// What became of an event bound for SNS.
#[derive(Debug, Clone, Copy)]
pub enum SnsOutcome {
    /// SNS accepted it.
    Published = 0,
    /// The publishing queue was full: it was not sent.
    Dropped = 1,
    /// SNS refused it after the SDK's retries, or it could not be made small enough.
    Failed = 2,
}

/// The one set of counters of this process.
pub static METRICS: Metrics = Metrics::new();

impl Metrics {
    const fn new() -> Self {
        Self {
            frames_aggregated: AtomicU64::new(0),
            frames_refused: AtomicU64::new(0),
            unauthenticated: AtomicU64::new(0),
            agent_commands_refused: AtomicU64::new(0),
            lag_buckets: [const { AtomicU64::new(0) }; LAG_BOUNDS_MS.len()],
            lag_count: AtomicU64::new(0),
            lag_sum_ms: AtomicU64::new(0),
            agents_connected: AtomicI64::new(0),
            sns: [const { AtomicU64::new(0) }; 3],
        }
    }

    /// An event bound for SNS ended as `outcome`.
    pub fn sns_event(&self, outcome: SnsOutcome) {
        self.sns[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A frame reached an aggregator (`accepted`: merged; otherwise refused, e.g. a duplicate).
    pub fn frame(&self, accepted: bool) {
        let counter = if accepted {
            &self.frames_aggregated
        } else {
            &self.frames_refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A message on an agent topic or `herd/commands` was dropped: its MAC is not its
    /// publisher's.
    pub fn message_unauthenticated(&self) {
        self.unauthenticated.fetch_add(1, Ordering::Relaxed);
    }

    /// An agent reported (in a frame's health) `n` commands it refused because they were not
    /// sealed with its run's key.
    pub fn agent_commands_refused(&self, n: u64) {
        self.agent_commands_refused.fetch_add(n, Ordering::Relaxed);
    }

    /// A second was emitted live `lag_ms` after its end.
    pub fn second_emitted(&self, lag_ms: u64) {
        for (bound, bucket) in LAG_BOUNDS_MS.iter().zip(&self.lag_buckets) {
            if lag_ms <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.lag_count.fetch_add(1, Ordering::Relaxed);
        self.lag_sum_ms.fetch_add(lag_ms, Ordering::Relaxed);
    }

    /// Agents connected changed by `delta` (a run reports the changes of its own count).
    pub fn agents_connected_changed(&self, delta: i64) {
        self.agents_connected.fetch_add(delta, Ordering::Relaxed);
    }

    /// Appends these metrics in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let frames = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP herd_frames_total Agent frames received by aggregators, by outcome.\n\
             # TYPE herd_frames_total counter\n\
             herd_frames_total{{outcome=\"aggregated\"}} {}\n\
             herd_frames_total{{outcome=\"refused\"}} {}\n",
            frames(&self.frames_aggregated),
            frames(&self.frames_refused)
        );
        let _ = write!(
            out,
            "# HELP herd_messages_unauthenticated_total Messages dropped because their MAC is not their publisher's.\n\
             # TYPE herd_messages_unauthenticated_total counter\n\
             herd_messages_unauthenticated_total {}\n",
            frames(&self.unauthenticated)
        );
        let _ = write!(
            out,
            "# HELP herd_agent_commands_refused_total Commands agents refused because their run's key did not seal them.\n\
             # TYPE herd_agent_commands_refused_total counter\n\
             herd_agent_commands_refused_total {}\n",
            frames(&self.agent_commands_refused)
        );
        out.push_str(
            "# HELP herd_frame_lag_seconds Time from a second's end to its live emission.\n\
             # TYPE herd_frame_lag_seconds histogram\n",
        );
        for (bound, bucket) in LAG_BOUNDS_MS.iter().zip(&self.lag_buckets) {
            let _ = writeln!(
                out,
                "herd_frame_lag_seconds_bucket{{le=\"{}\"}} {}",
                *bound as f64 / 1000.0,
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.lag_count.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "herd_frame_lag_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             herd_frame_lag_seconds_sum {}\n\
             herd_frame_lag_seconds_count {count}\n",
            self.lag_sum_ms.load(Ordering::Relaxed) as f64 / 1000.0
        );
        let _ = write!(
            out,
            "# HELP herd_agents_connected Agents ready and neither finished nor lost.\n\
             # TYPE herd_agents_connected gauge\n\
             herd_agents_connected {}\n",
            self.agents_connected.load(Ordering::Relaxed).max(0)
        );
        out.push_str(
            "# HELP herd_sns_events_total Events bound for SNS, by outcome.\n\
             # TYPE herd_sns_events_total counter\n",
        );
        for (outcome, counter) in ["published", "dropped", "failed"].iter().zip(&self.sns) {
            let _ = writeln!(
                out,
                "herd_sns_events_total{{outcome=\"{outcome}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_histogram_is_cumulative_and_rendered_in_seconds() {
        let m = Metrics::new();
        m.second_emitted(80);
        m.second_emitted(900);
        m.second_emitted(9000);
        m.frame(true);
        m.frame(false);
        m.agents_connected_changed(3);
        m.agents_connected_changed(-1);
        m.sns_event(SnsOutcome::Published);
        m.sns_event(SnsOutcome::Published);
        m.sns_event(SnsOutcome::Failed);
        let mut out = String::new();
        m.render(&mut out);
        for line in [
            "herd_frame_lag_seconds_bucket{le=\"0.1\"} 1",
            "herd_frame_lag_seconds_bucket{le=\"1\"} 2",
            "herd_frame_lag_seconds_bucket{le=\"5\"} 2",
            "herd_frame_lag_seconds_bucket{le=\"+Inf\"} 3",
            "herd_frame_lag_seconds_sum 9.98",
            "herd_frames_total{outcome=\"aggregated\"} 1",
            "herd_frames_total{outcome=\"refused\"} 1",
            "herd_agents_connected 2",
            "herd_sns_events_total{outcome=\"published\"} 2",
            "herd_sns_events_total{outcome=\"dropped\"} 0",
            "herd_sns_events_total{outcome=\"failed\"} 1",
        ] {
            assert!(out.contains(line), "{line} in\n{out}");
        }
    }
}
