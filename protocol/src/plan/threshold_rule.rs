//! A threshold as a plan states it: the expression, and whether and how it acts while the run
//! goes.
//!
//! `thresholds:` entries are either a string (`"p99 < 500ms"`: judged on the whole run at the
//! end, as always) or a map `{expr, abort_on_fail, delay, window}`. The map wraps the same
//! [`Threshold`] expression — its grammar lives in `threshold.rs` and is not touched here — and
//! adds when it is watched during the run: from `delay` after the start, each merged second, over
//! the last `window` of seconds (the whole run so far when `window` is not given). With
//! `abort_on_fail` a breach stops the run at once. [`ThresholdRule`] derefs to its
//! [`Threshold`], so code that judges expressions reads a rule as the expression it wraps.

use super::cx::{join, Cx};
use super::threshold::Threshold;
use crate::duration;
use serde_json::{json, Value};
use std::time::Duration;

/// The keys of a threshold's map form.
const KEYS: [&str; 4] = ["expr", "abort_on_fail", "delay", "window"];

/// One entry of `thresholds:`.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdRule {
    /// The expression.
    pub threshold: Threshold,
    /// Stop the run as soon as the expression fails on a watched window.
    pub abort_on_fail: bool,
    /// How long after the load's start the watch begins (default 0).
    pub delay: Duration,
    /// The sliding window the expression is judged on while the run goes, in whole seconds;
    /// `None`: every second since the start.
    pub window: Option<Duration>,
}

impl From<Threshold> for ThresholdRule {
    fn from(threshold: Threshold) -> Self {
        Self {
            threshold,
            abort_on_fail: false,
            delay: Duration::ZERO,
            window: None,
        }
    }
}

impl std::ops::Deref for ThresholdRule {
    type Target = Threshold;

    fn deref(&self) -> &Threshold {
        &self.threshold
    }
}

impl ThresholdRule {
    /// Whether it is only the plain expression (written back as a string).
    fn is_plain(&self) -> bool {
        !self.abort_on_fail && self.delay.is_zero() && self.window.is_none()
    }

    /// The plan's form of it: a string, or the map when it has more than the expression.
    pub fn to_json(&self) -> Value {
        if self.is_plain() {
            return Value::String(self.expr.clone());
        }
        let mut m = json!({ "expr": self.expr, "abort_on_fail": self.abort_on_fail });
        if !self.delay.is_zero() {
            m["delay"] = Value::String(duration::format(self.delay));
        }
        if let Some(w) = self.window {
            m["window"] = Value::String(duration::format(w));
        }
        m
    }

    /// The window in whole seconds (at least 1), when one is set.
    pub fn window_seconds(&self) -> Option<u64> {
        self.window.map(|w| w.as_secs().max(1))
    }
}

impl Cx {
    /// One entry of `thresholds:` at `path`: a string or the map form.
    pub(super) fn threshold_rule(&mut self, v: &Value, path: &str) -> Option<ThresholdRule> {
        if let Value::String(s) = v {
            return self.expression(s, path).map(ThresholdRule::from);
        }
        let m = self.object(v, path, &KEYS)?;
        let errors = self.errors.len();
        let threshold = self
            .required(m, path, "expr")
            .and_then(|e| self.string(e, &join(path, "expr")))
            .and_then(|e| self.expression(&e, &join(path, "expr")));
        let abort_on_fail = match m.get("abort_on_fail") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.err(
                    &join(path, "abort_on_fail"),
                    format!("must be true or false, got {}", super::cx::kind(other)),
                );
                false
            }
        };
        let delay = match m.get("delay") {
            Some(d) => self.duration(d, &join(path, "delay")).unwrap_or_default(),
            None => Duration::ZERO,
        };
        let window = m
            .get("window")
            .and_then(|w| self.duration(w, &join(path, "window")));
        if let Some(w) = window {
            if w < Duration::from_secs(1) || w.subsec_nanos() != 0 {
                self.err(
                    &join(path, "window"),
                    "must be a whole number of seconds, at least 1s (seconds are the unit herd \
                     merges results in)",
                );
            }
        }
        if self.errors.len() > errors {
            return None;
        }
        Some(ThresholdRule {
            threshold: threshold?,
            abort_on_fail,
            delay,
            window,
        })
    }

    fn expression(&mut self, s: &str, path: &str) -> Option<Threshold> {
        match Threshold::parse(s) {
            Ok(t) => Some(t),
            Err(e) => {
                self.err(path, e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::{from_json_str, from_yaml_str, Metric};
    use std::time::Duration;

    fn plan_with(thresholds: &str) -> String {
        format!(
            "version: 1\nname: t\ntarget: http://127.0.0.1:1\nload:\n  stages:\n    - {{ duration: 5s, vus: 1 }}\n\
             scenario:\n  - get: /\nthresholds:\n{thresholds}"
        )
    }

    #[test]
    fn strings_and_maps_mix_and_round_trip_through_json() {
        let plan = from_yaml_str(&plan_with(
            "  - \"p99 < 1s\"\n  - { expr: \"p99 < 500ms\", abort_on_fail: true, delay: 10s, window: 30s }\n",
        ))
        .expect("valid");
        let [plain, rule] = &plan.thresholds[..] else {
            panic!("two thresholds")
        };
        assert!(!plain.abort_on_fail && plain.window.is_none());
        assert!(rule.abort_on_fail);
        assert_eq!(rule.delay, Duration::from_secs(10));
        assert_eq!(rule.window_seconds(), Some(30));
        // The rule reads as the expression it wraps.
        assert_eq!(rule.metric, Metric::Percentile(99.0));
        assert_eq!(rule.limit, 500.0);
        assert_eq!(plain.to_json(), serde_json::json!("p99 < 1s"));
        let again = from_json_str(&plan.to_json().to_string()).expect("its own JSON parses");
        assert_eq!(again.thresholds, plan.thresholds);
    }

    #[test]
    fn mistakes_in_the_map_form_name_their_field() {
        let errors = from_yaml_str(&plan_with(
            "  - { expr: \"p99 < 1s\", abort_on_fial: true }\n  - { abort_on_fail: yes }\n  - { expr: \"p99 < 1s\", window: 500ms, delay: 3 }\n  - { expr: \"p99 ~ 1s\" }\n",
        ))
        .expect_err("invalid")
        .0;
        let paths: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
        assert!(
            paths.contains(&"thresholds[0].abort_on_fial".to_string()),
            "{errors:?}"
        );
        assert!(
            paths.contains(&"thresholds[1].expr".to_string()),
            "{errors:?}"
        );
        assert!(
            paths.contains(&"thresholds[2].window".to_string()),
            "{errors:?}"
        );
        assert!(
            paths.contains(&"thresholds[2].delay".to_string()),
            "{errors:?}"
        );
        assert!(
            paths.contains(&"thresholds[3].expr".to_string()),
            "{errors:?}"
        );
        let unknown = errors
            .iter()
            .find(|e| e.path == "thresholds[0].abort_on_fial")
            .expect("named");
        assert!(unknown.message.contains("abort_on_fail"), "{unknown}");
    }
}
