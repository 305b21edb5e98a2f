//! Parsing of the load profile (closed or open model) and of think times, split from `parse` so
//! each file stays about one part of the plan.

use super::parse::{join, kind, Cx};
use super::{Arrival, Load, RateStage, Stage, Think, DEFAULT_MAX_IN_FLIGHT};
use crate::duration;
use serde_json::Value;

const LOAD_KEYS: &[&str] = &[
    "stages",
    "iterations",
    "arrival",
    "start_rps",
    "max_in_flight",
];

impl Cx {
    pub(super) fn load(&mut self, v: &Value) -> Option<Load> {
        let m = self.object(v, "load", LOAD_KEYS)?;
        match (m.get("stages"), m.get("arrival")) {
            (Some(_), Some(_)) => {
                self.err(
                    "load",
                    "use either `stages` (closed model: virtual users) or `arrival` (open model: \
                     iterations per second), not both",
                );
                None
            }
            (None, None) => {
                self.err(
                    "load.stages",
                    "is required (or `arrival` for the open model: iterations per second)",
                );
                None
            }
            (Some(stages), None) => {
                for key in ["start_rps", "max_in_flight"] {
                    if m.contains_key(key) {
                        self.err(&join("load", key), "belongs to the open model (`arrival`)");
                    }
                }
                let iterations = m
                    .get("iterations")
                    .map(|v| self.integer(v, "load.iterations", 1, "must be >= 1"));
                let stages = self.vu_stages(stages);
                Some(Load {
                    stages: stages?,
                    arrival: None,
                    iterations: match iterations {
                        Some(n) => Some(n?),
                        None => None,
                    },
                })
            }
            (None, Some(arrival)) => {
                if m.contains_key("iterations") {
                    self.err(
                        "load.iterations",
                        "belongs to the closed model (`stages`); the open model runs one \
                         iteration per arrival",
                    );
                }
                let start_rps = match m.get("start_rps") {
                    Some(v) => self.rate(v, "load.start_rps"),
                    None => Some(0.0),
                };
                let max_in_flight = match m.get("max_in_flight") {
                    Some(v) => self.integer(v, "load.max_in_flight", 1, "must be >= 1"),
                    None => Some(DEFAULT_MAX_IN_FLIGHT),
                };
                let stages = self.rate_stages(arrival);
                let arrival = Arrival {
                    start_rps: start_rps?,
                    stages: stages?,
                    max_in_flight: max_in_flight?,
                };
                if arrival.total() == 0 {
                    self.err("load.arrival", "plans no arrival at all: every rate is 0");
                    return None;
                }
                Some(Load {
                    stages: Vec::new(),
                    arrival: Some(arrival),
                    iterations: None,
                })
            }
        }
    }

    fn stage_list<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Vec<Value>> {
        let Value::Array(items) = v else {
            self.err(path, format!("must be a list, got {}", kind(v)));
            return None;
        };
        if items.is_empty() {
            self.err(path, "must have at least one stage");
            return None;
        }
        Some(items)
    }

    fn vu_stages(&mut self, v: &Value) -> Option<Vec<Stage>> {
        let items = self.stage_list(v, "load.stages")?;
        let last = items.len() - 1;
        let mut stages = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("load.stages[{i}]");
            let Some(sm) = self.object(item, &path, &["duration", "vus"]) else {
                ok = false;
                continue;
            };
            let d = self.stage_duration(sm.get("duration"), &path);
            // A stage may ramp down to 0 only at the end; elsewhere 0 VUs would idle the run.
            let min = if i == last { 0 } else { 1 };
            let vus = self.required(sm, &path, "vus").and_then(|v| {
                let msg = if min == 0 {
                    "must be >= 0"
                } else {
                    "must be > 0"
                };
                self.integer(v, &join(&path, "vus"), min, msg)
            });
            match (d, vus) {
                (Some(duration), Some(vus)) => stages.push(Stage { duration, vus }),
                _ => ok = false,
            }
        }
        if ok && stages.iter().all(|s| s.vus == 0) {
            self.err("load.stages", "at least one stage must have vus > 0");
            return None;
        }
        ok.then_some(stages)
    }

    fn rate_stages(&mut self, v: &Value) -> Option<Vec<RateStage>> {
        let items = self.stage_list(v, "load.arrival")?;
        let mut stages = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("load.arrival[{i}]");
            let Some(sm) = self.object(item, &path, &["duration", "rps"]) else {
                ok = false;
                continue;
            };
            let d = self.stage_duration(sm.get("duration"), &path);
            let rps = self
                .required(sm, &path, "rps")
                .and_then(|v| self.rate(v, &join(&path, "rps")));
            match (d, rps) {
                (Some(duration), Some(rps)) => stages.push(RateStage { duration, rps }),
                _ => ok = false,
            }
        }
        ok.then_some(stages)
    }

    fn stage_duration(&mut self, v: Option<&Value>, path: &str) -> Option<std::time::Duration> {
        let p = join(path, "duration");
        let Some(v) = v else {
            self.err(&p, "is required");
            return None;
        };
        match self.duration(v, &p) {
            Some(d) if d.is_zero() => {
                self.err(&p, "must be > 0");
                None
            }
            other => other,
        }
    }

    /// Iterations per second: a number >= 0 (fractions allowed: 0.5 is one every 2 s).
    fn rate(&mut self, v: &Value, path: &str) -> Option<f64> {
        match v.as_f64() {
            Some(r) if r.is_finite() && (0.0..=10_000_000.0).contains(&r) => Some(r),
            Some(_) => {
                self.err(path, "must be from 0 to 10000000 (iterations per second)");
                None
            }
            None => {
                self.err(path, format!("must be a number, got {}", kind(v)));
                None
            }
        }
    }

    /// `think: 100ms`, `think: 100ms..300ms`, or `think: {min: 100ms, max: 300ms}`.
    pub(super) fn think(&mut self, v: &Value, path: &str) -> Option<Think> {
        let (min, max) = match v {
            Value::Object(_) => {
                let m = self.object(v, path, &["min", "max"])?;
                let min = self
                    .required(m, path, "min")
                    .and_then(|v| self.duration(v, &join(path, "min")));
                let max = self
                    .required(m, path, "max")
                    .and_then(|v| self.duration(v, &join(path, "max")));
                (min?, max?)
            }
            Value::String(s) if s.contains("..") => {
                let (a, b) = s.split_once("..").unwrap_or((s, s));
                match (duration::parse(a), duration::parse(b)) {
                    (Ok(a), Ok(b)) => (a, b),
                    (Err(e), _) | (_, Err(e)) => {
                        self.err(path, format!("a range must be `MIN..MAX` durations: {e}"));
                        return None;
                    }
                }
            }
            other => {
                let d = self.duration(other, path)?;
                (d, d)
            }
        };
        if min > max {
            self.err(path, "min must not be greater than max");
            return None;
        }
        Some(Think { min, max })
    }
}
