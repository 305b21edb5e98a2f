//! Parsing of the load profile (closed or open model) and of think times, split from `parse` so
//! each file stays about one part of the plan.

use super::cx::{join, kind, Cx};
use super::{
    Arrival, Load, RateStage, Stage, Think, DEFAULT_ITERATIONS_DURATION, DEFAULT_MAX_IN_FLIGHT,
};
use crate::duration;
use serde_json::{Map, Value};
use std::time::Duration;

const LOAD_KEYS: &[&str] = &[
    "stages",
    "vus",
    "duration",
    "iterations",
    "iterations_per_vu",
    "arrival",
    "start_rps",
    "max_in_flight",
];

impl Cx {
    pub(super) fn load(&mut self, v: &Value) -> Option<Load> {
        let m = self.object(v, "load", LOAD_KEYS)?;
        let closed = m.contains_key("stages") || m.contains_key("vus");
        match (closed, m.get("arrival")) {
            (true, Some(_)) => {
                self.err(
                    "load",
                    "use either `stages` or `vus` (closed model: virtual users) or `arrival` \
                     (open model: iterations per second), not both",
                );
                None
            }
            (false, None) => {
                self.err(
                    "load.stages",
                    "is required (or `vus` with `duration` or `iterations`; or `arrival` for the \
                     open model: iterations per second)",
                );
                None
            }
            (true, None) => self.closed_load(m),
            (false, Some(arrival)) => {
                for key in ["iterations", "iterations_per_vu", "duration"] {
                    if m.contains_key(key) {
                        self.err(
                            &join("load", key),
                            "belongs to the closed model (`stages` or `vus`); the open model \
                             runs one iteration per arrival, for the time of its stages",
                        );
                    }
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
                    arrival: Some(arrival),
                    ..Load::default()
                })
            }
        }
    }

    /// The closed model: `stages`, or `vus` held for `duration` (by default
    /// [`DEFAULT_ITERATIONS_DURATION`] when `iterations` bounds the run instead).
    fn closed_load(&mut self, m: &Map<String, Value>) -> Option<Load> {
        for key in ["start_rps", "max_in_flight"] {
            if m.contains_key(key) {
                self.err(&join("load", key), "belongs to the open model (`arrival`)");
            }
        }
        let iterations = m
            .get("iterations")
            .map(|v| self.integer(v, "load.iterations", 1, "must be >= 1"));
        let per_vu = m
            .get("iterations_per_vu")
            .map(|v| self.integer(v, "load.iterations_per_vu", 1, "must be >= 1"));
        let stages = match (m.get("stages"), m.get("vus")) {
            (Some(stages), None) => {
                if m.contains_key("duration") {
                    self.err(
                        "load.duration",
                        "goes with `vus`; with `stages`, each stage has its duration",
                    );
                }
                self.vu_stages(stages)?
            }
            (None, Some(vus)) => {
                let vus = self.integer(vus, "load.vus", 1, "must be > 0")?;
                let duration = match m.get("duration") {
                    Some(d) => self.stage_duration(Some(d), "load", false)?,
                    None if m.contains_key("iterations") => DEFAULT_ITERATIONS_DURATION,
                    None => {
                        self.err(
                            "load.duration",
                            "is required with `vus` (or give `iterations` to run until they are done)",
                        );
                        return None;
                    }
                };
                // A jump to `vus` at once, then a hold.
                vec![
                    Stage {
                        duration: Duration::ZERO,
                        vus,
                    },
                    Stage { duration, vus },
                ]
            }
            _ => {
                self.err("load", "use either `stages` or `vus`, not both");
                return None;
            }
        };
        Some(Load {
            stages,
            arrival: None,
            iterations: match iterations {
                Some(n) => Some(u64::from(n?)),
                None => None,
            },
            iterations_per_vu: match per_vu {
                Some(n) => Some(n?),
                None => None,
            },
        })
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
            let d = self.stage_duration(sm.get("duration"), &path, true);
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
        if ok && stages.iter().all(|s| s.duration.is_zero()) {
            self.err("load.stages", "must last longer than 0s in all");
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
            let d = self.stage_duration(sm.get("duration"), &path, false);
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

    /// `PATH.duration`; a VU stage may last 0s (a jump), other durations must be > 0.
    fn stage_duration(&mut self, v: Option<&Value>, path: &str, zero: bool) -> Option<Duration> {
        let p = join(path, "duration");
        let Some(v) = v else {
            self.err(&p, "is required");
            return None;
        };
        match self.duration(v, &p) {
            Some(d) if d.is_zero() && !zero => {
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
