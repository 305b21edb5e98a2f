//! The test plan: what users write, validated into typed config.
//!
//! A plan is parsed from YAML or JSON into a generic value tree, then [`parse`](parse::from_value)
//! walks that tree and collects *every* problem with its field path
//! (`load.stages[1].vus: must be > 0`) before anything runs. [`Plan::to_json`] writes a plan back
//! in the same format, which is also how a plan travels to agents: one format, one parser.

mod parse;
mod threshold;

pub use parse::{
    from_json_str, from_value, from_yaml_str, stages_from_value, FieldError, PlanErrors,
};
pub use threshold::{Comparison, Metric, Threshold};

use crate::duration;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// A validated test plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Human name of the test.
    pub name: String,
    /// Base URL every step's path is appended to, without a trailing slash (`http://host:port`).
    pub target: String,
    /// How many agents share the load.
    pub agents: u32,
    /// The load profile.
    pub load: Load,
    /// The steps every virtual user runs, in order, in a loop.
    pub scenario: Vec<Step>,
    /// Pass/fail criteria evaluated on the whole run.
    pub thresholds: Vec<Threshold>,
    /// Timeouts and limits.
    pub options: Options,
}

/// The load profile: closed model, virtual users following linear ramp stages.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// Stages in order; each ramps linearly from the previous stage's target (0 at the start).
    pub stages: Vec<Stage>,
}

/// One ramp stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    /// How long the stage lasts.
    pub duration: Duration,
    /// Virtual users (for the whole run, all agents together) at the end of the stage.
    pub vus: u32,
}

/// One scenario step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An HTTP request.
    Request(RequestStep),
    /// A pause of the virtual user.
    Think(Duration),
}

/// An HTTP request step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestStep {
    /// The label results are grouped under: the step's `name`, or `METHOD path`.
    pub label: String,
    /// Whether the label was written by the user (`name:`) or derived.
    pub named: bool,
    /// HTTP method.
    pub method: Method,
    /// Path (and query) appended to the plan's target; starts with `/`.
    pub path: String,
    /// Request headers, in the order written.
    pub headers: Vec<(String, String)>,
    /// Request body, if any.
    pub body: Option<String>,
}

/// HTTP methods a step may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// HEAD
    Head,
}

impl Method {
    /// Every method, with the plan key that selects it.
    pub const ALL: [(Method, &'static str); 6] = [
        (Method::Get, "get"),
        (Method::Post, "post"),
        (Method::Put, "put"),
        (Method::Patch, "patch"),
        (Method::Delete, "delete"),
        (Method::Head, "head"),
    ];

    /// The method name as sent on the wire (`GET`).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
        }
    }

    fn key(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(m, _)| *m == self)
            .map_or("get", |(_, k)| k)
    }
}

/// Timeouts and limits; every field has a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Per-request timeout (connect + response). Default 30 s.
    pub timeout: Duration,
    /// How long in-flight iterations may take to finish after the load ends or a stop. Default 30 s.
    pub graceful_stop: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            graceful_stop: Duration::from_secs(30),
        }
    }
}

impl Load {
    /// Total planned duration of the load.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The whole run's target VU count `elapsed` after the start: the linear interpolation of the
    /// stage it falls in, rounded down; 0 once every stage has ended.
    pub fn vus_at(&self, elapsed: Duration) -> u32 {
        let mut from = 0u32;
        let mut start = Duration::ZERO;
        for stage in &self.stages {
            let end = start + stage.duration;
            if elapsed < end {
                let frac = (elapsed - start).as_secs_f64() / stage.duration.as_secs_f64();
                let v = f64::from(from) + (f64::from(stage.vus) - f64::from(from)) * frac;
                return v.floor().max(0.0) as u32;
            }
            from = stage.vus;
            start = end;
        }
        0
    }

    /// The highest VU count any stage reaches.
    pub fn max_vus(&self) -> u32 {
        self.stages.iter().map(|s| s.vus).max().unwrap_or(0)
    }
}

impl Plan {
    /// The plan in its JSON form, which [`from_value`] reads back to an equal plan.
    pub fn to_json(&self) -> Value {
        let stages: Vec<Value> = self
            .load
            .stages
            .iter()
            .map(|s| json!({"duration": duration::format(s.duration), "vus": s.vus}))
            .collect();
        let steps: Vec<Value> = self.scenario.iter().map(step_json).collect();
        let thresholds: Vec<Value> = self
            .thresholds
            .iter()
            .map(|t| Value::String(t.expr.clone()))
            .collect();
        json!({
            "version": crate::PROTOCOL_VERSION,
            "name": self.name,
            "target": self.target,
            "agents": self.agents,
            "load": {"stages": stages},
            "scenario": steps,
            "thresholds": thresholds,
            "options": {
                "timeout": duration::format(self.options.timeout),
                "graceful_stop": duration::format(self.options.graceful_stop),
            },
        })
    }

    /// The labels of the request steps, in scenario order, without repeats.
    pub fn step_labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = Vec::new();
        for step in &self.scenario {
            if let Step::Request(r) = step {
                if !labels.contains(&r.label) {
                    labels.push(r.label.clone());
                }
            }
        }
        labels
    }
}

fn step_json(step: &Step) -> Value {
    match step {
        Step::Think(d) => json!({"think": duration::format(*d)}),
        Step::Request(r) => {
            let mut m = Map::new();
            if r.named {
                m.insert("name".into(), Value::String(r.label.clone()));
            }
            m.insert(r.method.key().into(), Value::String(r.path.clone()));
            if !r.headers.is_empty() {
                let h: Map<String, Value> = r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                m.insert("headers".into(), Value::Object(h));
            }
            if let Some(body) = &r.body {
                m.insert("body".into(), Value::String(body.clone()));
            }
            Value::Object(m)
        }
    }
}

#[cfg(test)]
mod tests;
