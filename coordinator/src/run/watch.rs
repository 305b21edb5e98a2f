//! Thresholds that act while the run goes (`abort_on_fail`): each merged second is added to a
//! sliding window, and every watched threshold is judged on its window once its `delay` has
//! passed. The first breach is the run's: the actor stops the load at once and ends the run
//! failed, naming the threshold and the second.
//!
//! The judgement is the whole-run one ([`summary::evaluate`]) applied to the window's merged
//! stats — percentiles from the merge of the window's histograms, `rps` as the window's requests
//! over its seconds — so a threshold means the same mid-run and at the end. A window without a
//! single response says nothing about latency and breaches nothing (the end-of-run judgement
//! still fails a latency threshold that never saw a response).
//!
//! Pure data, imports nothing of the actor: the actor feeds it seconds.

use super::summary;
use crate::aggregate::MergedStats;
use herd_protocol::plan::{Metric, ThresholdRule};
use std::collections::VecDeque;

/// A watched threshold that failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    /// Its position in the plan's `thresholds`.
    pub index: usize,
    /// Its expression.
    pub expr: String,
    /// The second (since the load's start) whose merge made it fail.
    pub t: u64,
    /// The figure on the window, in the metric's unit.
    pub actual: f64,
    /// How many seconds the window held.
    pub window_s: u64,
}

impl Breach {
    /// Why the run ended, for the summary and the store.
    pub fn reason(&self) -> String {
        format!(
            "threshold {:?} (abort_on_fail) breached at second {}: actual {} over the last {} s",
            self.expr, self.t, self.actual, self.window_s
        )
    }
}

/// The sliding windows of a run's `abort_on_fail` thresholds.
pub struct ThresholdWatch {
    /// `(index in the plan, rule)` of each watched threshold.
    rules: Vec<(usize, ThresholdRule)>,
    /// The most recent seconds, oldest first, as many as the longest window needs.
    recent: VecDeque<(u64, MergedStats)>,
    /// Every second observed, merged (for rules without a window).
    all: MergedStats,
    /// The first second observed.
    first_t: Option<u64>,
    /// The longest window, in seconds.
    keep: u64,
    /// The breach, once there is one (nothing is judged after it).
    breach: Option<Breach>,
}

impl ThresholdWatch {
    /// Watches the plan's thresholds that have `abort_on_fail`.
    pub fn new(thresholds: &[ThresholdRule]) -> Self {
        let rules: Vec<(usize, ThresholdRule)> = thresholds
            .iter()
            .enumerate()
            .filter(|(_, r)| r.abort_on_fail)
            .map(|(i, r)| (i, r.clone()))
            .collect();
        let keep = rules
            .iter()
            .filter_map(|(_, r)| r.window_seconds())
            .max()
            .unwrap_or(0);
        Self {
            rules,
            recent: VecDeque::new(),
            all: MergedStats::default(),
            first_t: None,
            keep,
            breach: None,
        }
    }

    /// Whether any threshold is watched.
    pub fn is_active(&self) -> bool {
        !self.rules.is_empty()
    }

    /// The breach, if one happened.
    pub fn breach(&self) -> Option<&Breach> {
        self.breach.as_ref()
    }

    /// Adds second `t` (seconds since the load's start, merged across agents) and judges every
    /// watched threshold whose delay has passed; returns a new breach.
    pub fn observe(&mut self, t: u64, stats: &MergedStats) -> Option<Breach> {
        if self.rules.is_empty() || self.breach.is_some() {
            return None;
        }
        self.all.merge(stats);
        let first_t = *self.first_t.get_or_insert(t);
        if self.keep > 0 {
            self.recent.push_back((t, stats.clone()));
            while self
                .recent
                .front()
                .is_some_and(|(old, _)| old + self.keep <= t)
            {
                self.recent.pop_front();
            }
        }
        let breach = self.rules.iter().find_map(|(index, rule)| {
            // The watch sees each second's whole-run figures: a threshold on one step or group
            // is judged at the end only (README, "thresholds").
            if (t as f64) < rule.delay.as_secs_f64() || rule.selector.is_some() {
                return None;
            }
            let (stats, window_s) = match rule.window_seconds() {
                Some(w) => {
                    let mut merged = MergedStats::default();
                    for (_, s) in self.recent.iter().filter(|(old, _)| old + w > t) {
                        merged.merge(s);
                    }
                    (merged, w.min(t + 1 - first_t))
                }
                None => (self.all.clone(), t + 1 - first_t),
            };
            let says_nothing = if is_latency(rule.metric) {
                stats.latency.is_empty()
            } else {
                rule.metric == Metric::ErrorRate && stats.requests == 0
            };
            if says_nothing {
                return None;
            }
            let result = summary::evaluate(rule, Some(&stats), window_s as f64);
            (!result.passed).then(|| Breach {
                index: *index,
                expr: rule.expr.clone(),
                t,
                actual: result.actual,
                window_s,
            })
        });
        self.breach.clone_from(&breach);
        breach
    }
}

fn is_latency(metric: Metric) -> bool {
    matches!(
        metric,
        Metric::Percentile(_) | Metric::Min | Metric::Mean | Metric::Max
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use herd_protocol::plan::Threshold;
    use std::time::Duration;

    fn rule(expr: &str, delay_s: u64, window_s: Option<u64>) -> ThresholdRule {
        ThresholdRule {
            threshold: Threshold::parse(expr).expect("valid"),
            abort_on_fail: true,
            delay: Duration::from_secs(delay_s),
            window: window_s.map(Duration::from_secs),
        }
    }

    /// A second with `n` responses of `ms` milliseconds, `errors` of them failed.
    fn second(n: u64, ms: u64, errors: u64) -> MergedStats {
        let mut s = MergedStats {
            requests: n,
            errors,
            ..MergedStats::default()
        };
        for _ in 0..n {
            s.latency.record(ms * 1000).expect("in range");
        }
        s
    }

    #[test]
    fn a_slow_window_breaches_after_the_delay_and_names_the_second() {
        let plain = ThresholdRule::from(Threshold::parse("p99 < 1ms").expect("valid"));
        let mut watch = ThresholdWatch::new(&[plain, rule("p99 < 100ms", 3, Some(2))]);
        assert!(watch.is_active());
        // Slow already in second 1, but the delay (3 s) has not passed: nothing.
        assert_eq!(watch.observe(0, &second(100, 10, 0)), None);
        assert_eq!(watch.observe(1, &second(100, 500, 0)), None);
        assert_eq!(watch.observe(2, &second(100, 10, 0)), None);
        // Second 3: the window is seconds 2 and 3, both fast.
        assert_eq!(watch.observe(3, &second(100, 10, 0)), None);
        let breach = watch.observe(4, &second(100, 300, 0)).expect("breach");
        assert_eq!((breach.index, breach.t, breach.window_s), (1, 4, 2));
        assert!((299.0..=301.0).contains(&breach.actual), "{breach:?}");
        assert!(
            breach.reason().contains("\"p99 < 100ms\""),
            "{}",
            breach.reason()
        );
        assert!(breach.reason().contains("second 4"), "{}", breach.reason());
        // One breach per run.
        assert_eq!(watch.observe(5, &second(100, 300, 0)), None);
        assert_eq!(watch.breach(), Some(&breach));
    }

    #[test]
    fn the_window_slides_so_an_old_slow_second_is_forgotten() {
        let mut watch = ThresholdWatch::new(&[rule("p50 < 100ms", 0, Some(2))]);
        assert!(watch.observe(0, &second(10, 10, 0)).is_none());
        // Seconds 0 and 1: half slow; p50 is the fast half's top.
        assert!(watch.observe(1, &second(9, 500, 0)).is_none());
        // Seconds 1 and 2: mostly slow.
        assert!(watch.observe(2, &second(1, 500, 0)).is_some());
    }

    #[test]
    fn error_rate_and_rps_are_judged_on_the_window() {
        let mut errors = ThresholdWatch::new(&[rule("error_rate < 10%", 0, Some(3))]);
        assert!(errors.observe(0, &second(100, 1, 5)).is_none());
        assert!(errors.observe(1, &second(100, 1, 9)).is_none());
        let b = errors.observe(2, &second(100, 1, 20)).expect("34 of 300");
        assert!((b.actual - 11.333).abs() < 0.01, "{b:?}");

        let mut rate = ThresholdWatch::new(&[rule("rps > 50", 1, Some(2))]);
        assert!(
            rate.observe(0, &second(0, 1, 0)).is_none(),
            "within the delay"
        );
        assert!(
            rate.observe(1, &second(120, 1, 0)).is_none(),
            "120 over 2 s"
        );
        assert!(rate.observe(2, &second(70, 1, 0)).is_none(), "95/s");
        let b = rate.observe(3, &second(10, 1, 0)).expect("80 over 2 s");
        assert_eq!((b.window_s, b.actual), (2, 40.0));
        assert!(rate.breach().is_some());
    }

    #[test]
    fn without_a_window_the_whole_run_so_far_is_judged_and_silence_says_nothing() {
        let mut watch = ThresholdWatch::new(&[rule("p99 < 100ms", 0, None)]);
        assert!(watch.observe(0, &MergedStats::default()).is_none());
        assert!(watch.observe(1, &second(1000, 10, 0)).is_none());
        assert!(watch.observe(2, &second(5, 500, 0)).is_none(), "5 of 1005");
        assert!(
            watch.observe(3, &second(20, 500, 0)).is_some(),
            "25 of 1025"
        );
        assert!(!ThresholdWatch::new(&[]).is_active());
    }
}
