//! The test plan: what users write, validated into typed config.
//!
//! A plan is parsed from YAML or JSON into a generic value tree, then [`parse`](parse::from_value)
//! walks that tree and collects *every* problem with its field path
//! (`load.stages[1].vus: must be > 0`) before anything runs. [`Plan::to_json`] writes a plan back
//! in the same format, which is also how a plan travels to agents: one format, one parser.

mod agent_loss;
mod body;
mod cx;
mod expr;
mod feeder;
mod feeder_json;
mod flow;
mod hosts;
mod jsonpath;
mod load;
mod multipart;
mod options;
mod outputs;
mod overrides;
mod parse;
mod parse_feeder;
mod parse_flow;
mod parse_load;
mod parse_scenario;
mod regions;
mod scenarios;
mod script;
pub mod secrets;
mod setup;
mod target_tls;
mod template;
mod threshold;
mod threshold_rule;

pub use agent_loss::OnAgentLoss;
pub(crate) use body::for_each_file;
pub use body::{BodyFile, MAX_BODY_FILES_BYTES, MAX_BODY_FILE_BYTES};
pub use cx::{FieldError, PlanErrors, PlanFiles};
pub use expr::{CmpOp, Expr, Operand, STATUS};
pub use feeder::{parse_csv, table, Feeder, FeederMode, OnExhausted, MAX_FEEDER_BYTES};
pub use feeder_json::parse_json;
pub use flow::{walk, Branch, Group, If, Repeat, GROUP_KEY_PREFIX};
pub use hosts::{hosts_json, HostOverride};
pub use jsonpath::{JsonPath, Segment};
pub use load::{
    ramp_vus, Arrival, Load, RampStages, RateStage, Stage, DEFAULT_ITERATIONS_DURATION,
    DEFAULT_MAX_IN_FLIGHT,
};
pub use multipart::{FormPart, FormValue};
pub use options::{HttpVersion, Options};
pub use outputs::{parse_outputs, Output, RESERVED_LABELS};
pub use overrides::{resolve_env, Overrides};
pub use parse::{
    from_json_str, from_json_str_with, from_value, from_value_with, from_value_with_body_data,
    from_yaml_str, from_yaml_str_with, ramp_from_value, value_from_text,
};
pub use regions::{is_region_name, region_of, regions_json, RegionShare, REGION_KEY_PREFIX};
pub use scenarios::{Scenario, ScenarioRun, SCENARIO_KEY_PREFIX};
pub use script::{
    compile as compile_script, ScriptStep, Scripts, DEFAULT_CALL_TIMEOUT, MAX_SCRIPT_BYTES,
};
pub use secrets::{Redactor, Secret, SecretSource};
pub use setup::{extracted as extracted_vars, OncePhase, DEFAULT_ONCE_TIMEOUT};
pub use target_tls::{PemFile, Proxy, TargetTls, MAX_PEM_BYTES};
pub use template::{is_var_name, Func, Part, Template, BUILTINS, FUNCTIONS};
pub use threshold::{Comparison, Metric, Selector, Threshold};
pub use threshold_rule::ThresholdRule;

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
    /// Variables every VU starts with (`vars:`), by name.
    pub vars: Vec<(String, String)>,
    /// Data feeders, by name; their columns are variables too.
    pub feeders: Vec<Feeder>,
    /// The steps every virtual user runs, in order, in a loop.
    pub scenario: Vec<Step>,
    /// Pass/fail criteria evaluated on the whole run (and, for those that say so, on a sliding
    /// window while it goes).
    pub thresholds: Vec<ThresholdRule>,
    /// Timeouts and limits.
    pub options: Options,
    /// Secrets by name, resolved by the coordinator when the run starts ([`secrets`]).
    pub secrets: Vec<Secret>,
    /// Where merged seconds are pushed while the run goes (`outputs:`; [`Output`]).
    pub outputs: Vec<Output>,
    /// Where the agents run (`regions:`), in order; empty: wherever the launcher puts them.
    /// With regions, `agents` is their sum ([`RegionShare`]).
    pub regions: Vec<RegionShare>,
    /// Where connections to some host names go instead of where DNS says (`hosts:`); the URL,
    /// `Host` and TLS server name stay the name's ([`HostOverride`]).
    pub hosts: Vec<HostOverride>,
    /// Several named scenarios (`scenarios:`), each with its own load and steps; empty for a plan
    /// with one `load` + `scenario`. When set, `load` is empty and `scenario` has no step: use
    /// [`Plan::scenario_runs`] and [`Plan::duration`], which read both forms.
    pub scenarios: Vec<Scenario>,
    /// The script file `script` steps call into (`scripts:`), loaded; `None` for a plan
    /// without scripts, which never starts an interpreter.
    pub scripts: Option<Scripts>,
    /// Steps run once, by one agent, before the load (`setup:`); what they extract every VU
    /// starts with. Empty: none ([`OncePhase`]).
    pub setup: Vec<Step>,
    /// Steps run once, by one agent, after the load (`teardown:`), with setup's variables.
    pub teardown: Vec<Step>,
}

/// One scenario step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// An HTTP request.
    Request(RequestStep),
    /// A pause of the virtual user.
    Think(Think),
    /// Steps reported together (`group: NAME, steps: […]`).
    Group(Group),
    /// One branch, chosen at random by weight in each iteration.
    Choose(Vec<Branch>),
    /// Steps run a fixed number of times.
    Repeat(Repeat),
    /// Steps run when a condition holds, others when it does not.
    If(Box<If>),
    /// The iteration waits here until it has lasted at least this long (`pace: 2s`).
    Pace(Duration),
    /// Requests sent at once, as a browser fetches a page's resources (`parallel: [steps]`);
    /// every step in it is a [`Step::Request`]. The iteration goes on when all have finished.
    Parallel(Vec<Step>),
    /// A call of a script function (`script: NAME`).
    Script(ScriptStep),
}

/// A pause: fixed (`min == max`) or drawn uniformly from `min..=max` each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Think {
    /// Shortest pause.
    pub min: Duration,
    /// Longest pause.
    pub max: Duration,
}

impl Think {
    /// A fixed pause.
    pub fn fixed(d: Duration) -> Self {
        Self { min: d, max: d }
    }

    /// How the pause is written in a plan: `100ms`, or `100ms..300ms` for a range.
    pub fn format(&self) -> String {
        if self.min == self.max {
            duration::format(self.min)
        } else {
            format!(
                "{}..{}",
                duration::format(self.min),
                duration::format(self.max)
            )
        }
    }
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
    /// Path (and query) appended to the plan's target; starts with `/`; a [`Template`].
    pub path: String,
    /// Request headers, in the order written; values are [`Template`]s.
    pub headers: Vec<(String, String)>,
    /// Request body as text, if any (`body:`, or the JSON text of `json:`); a [`Template`].
    pub body: Option<String>,
    /// Request body read from a file (`body_file:`), sent as it is; never together with `body`.
    pub body_file: Option<BodyFile>,
    /// What the response must satisfy; a failed check is counted per step, apart from errors.
    pub checks: Vec<Check>,
    /// Values read from the response into the VU's variables, by variable name.
    pub extract: Vec<Extract>,
    /// This step's request timeout (`timeout:`), instead of `options.timeout`.
    pub timeout: Option<Duration>,
    /// A `multipart/form-data` body (`multipart:`); empty for none. Never with `body` or
    /// `body_file`.
    pub multipart: Vec<FormPart>,
}

/// One check of a response. Checks are evaluated on every response (not on transport failures,
/// which are errors already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The status code is this one.
    Status(u16),
    /// The service time (send to end of response) is at most this.
    MaxLatency(Duration),
    /// The body contains this text (a [`Template`]).
    BodyContains(String),
    /// The body is JSON and the value at `path` equals `value` (numbers compare by value; a
    /// string `value` is a [`Template`]).
    JsonEquals {
        /// Where to look.
        path: JsonPath,
        /// What must be there.
        value: Value,
    },
}

impl Check {
    /// Whether evaluating the check needs the response body.
    pub fn needs_body(&self) -> bool {
        matches!(self, Check::BodyContains(_) | Check::JsonEquals { .. })
    }
}

/// A value read from a response into a VU variable. An extraction that finds nothing counts as
/// a failed check of its step and leaves the variable as it was; one that finds a value counts
/// as a passed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extract {
    /// The variable it sets.
    pub var: String,
    /// Where the value comes from.
    pub from: ExtractFrom,
}

/// Where an extraction reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractFrom {
    /// The JSON body at this path: a string as it is, anything else as JSON text.
    Json(JsonPath),
    /// The body, matched by this regular expression: its first capture group, or the whole
    /// match when it has no group.
    Regex(String),
    /// The (first) value of this response header (name in lower case).
    Header(String),
}

impl ExtractFrom {
    /// Whether the extraction needs the response body (a header extraction does not).
    pub fn needs_body(&self) -> bool {
        !matches!(self, ExtractFrom::Header(_))
    }
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

impl Plan {
    /// The plan in its JSON form, which [`from_value`] reads back to an equal plan.
    pub fn to_json(&self) -> Value {
        let steps: Vec<Value> = self.scenario.iter().map(step_json).collect();
        let thresholds: Vec<Value> = self.thresholds.iter().map(ThresholdRule::to_json).collect();
        let mut plan = json!({
            "version": crate::PROTOCOL_VERSION,
            "name": self.name,
            "target": self.target,
            "agents": self.agents,

            "vars": self.vars.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<Map<String, Value>>(),
            "feeders": self.feeders.iter().map(|f| (f.name.clone(), feeder_json(f))).collect::<Map<String, Value>>(),
            "thresholds": thresholds,
            "options": self.options.to_json(),
        });
        if self.scenarios.is_empty() {
            plan["load"] = load_json(&self.load);
            plan["scenario"] = Value::Array(steps);
        } else {
            plan["scenarios"] = scenarios_json(&self.scenarios);
        }
        if !self.secrets.is_empty() {
            plan["secrets"] = secrets::secrets_json(&self.secrets);
        }
        if !self.outputs.is_empty() {
            plan["outputs"] = self.outputs.iter().map(Output::to_json).collect();
        }
        if !self.regions.is_empty() {
            plan["regions"] = regions_json(&self.regions);
        }
        if !self.hosts.is_empty() {
            plan["hosts"] = hosts_json(&self.hosts);
        }
        if let Some(scripts) = &self.scripts {
            plan["scripts"] = scripts.to_json();
        }
        for phase in [OncePhase::Setup, OncePhase::Teardown] {
            let steps = self.once_steps(phase);
            if !steps.is_empty() {
                plan[phase.key()] = steps_json(steps);
            }
        }
        plan
    }

    /// The labels of the request and script steps (nested ones too), in scenario order,
    /// without repeats.
    pub fn step_labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = Vec::new();
        for steps in self.all_steps() {
            walk(steps, "", &mut |_, step| {
                let label = match step {
                    Step::Request(r) => &r.label,
                    Step::Script(s) => &s.label,
                    _ => return,
                };
                if !labels.contains(label) {
                    labels.push(label.clone());
                }
            });
        }
        labels
    }

    /// The names of the groups, in scenario order, without repeats.
    pub fn group_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for steps in self.all_steps() {
            walk(steps, "", &mut |_, step| {
                if let Step::Group(g) = step {
                    if !names.contains(&g.name) {
                        names.push(g.name.clone());
                    }
                }
            });
        }
        names
    }
}

pub(super) fn load_json(load: &Load) -> Value {
    let mut m = Map::new();
    if let Some(a) = &load.arrival {
        let stages: Vec<Value> = a
            .stages
            .iter()
            .map(|s| json!({"duration": duration::format(s.duration), "rps": s.rps}))
            .collect();
        m.insert("arrival".into(), Value::Array(stages));
        m.insert("start_rps".into(), json!(a.start_rps));
        m.insert("max_in_flight".into(), json!(a.max_in_flight));
    } else {
        let stages: Vec<Value> = load
            .stages
            .iter()
            .map(|s| json!({"duration": duration::format(s.duration), "vus": s.vus}))
            .collect();
        m.insert("stages".into(), Value::Array(stages));
    }
    if let Some(n) = load.iterations {
        m.insert("iterations".into(), json!(n));
    }
    if let Some(n) = load.iterations_per_vu {
        m.insert("iterations_per_vu".into(), json!(n));
    }
    Value::Object(m)
}

pub(super) fn steps_json(steps: &[Step]) -> Value {
    Value::Array(steps.iter().map(step_json).collect())
}

fn step_json(step: &Step) -> Value {
    match step {
        Step::Think(t) => json!({"think": t.format()}),
        Step::Pace(d) => json!({"pace": duration::format(*d)}),
        Step::Parallel(steps) => json!({"parallel": steps_json(steps)}),
        Step::Script(s) => s.to_json(),
        Step::Group(g) => json!({"group": g.name, "steps": steps_json(&g.steps)}),
        Step::Repeat(r) => json!({"repeat": r.count, "steps": steps_json(&r.steps)}),
        Step::Choose(branches) => {
            let b: Vec<Value> = branches
                .iter()
                .map(|b| json!({"weight": b.weight, "steps": steps_json(&b.steps)}))
                .collect();
            json!({ "choose": b })
        }
        Step::If(c) => {
            let mut m = Map::new();
            m.insert("if".into(), Value::String(c.source.clone()));
            m.insert("then".into(), steps_json(&c.then));
            if !c.otherwise.is_empty() {
                m.insert("else".into(), steps_json(&c.otherwise));
            }
            Value::Object(m)
        }
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
            if let Some(file) = &r.body_file {
                m.insert("body_file".into(), file.to_json());
            }
            if !r.multipart.is_empty() {
                m.insert(
                    "multipart".into(),
                    r.multipart.iter().map(FormPart::to_json).collect(),
                );
            }
            if let Some(t) = r.timeout {
                m.insert("timeout".into(), Value::String(duration::format(t)));
            }
            if !r.checks.is_empty() {
                m.insert("checks".into(), checks_json(&r.checks));
            }
            if !r.extract.is_empty() {
                let e: Map<String, Value> = r
                    .extract
                    .iter()
                    .map(|x| {
                        let (key, source) = match &x.from {
                            ExtractFrom::Json(p) => ("json", p.as_str()),
                            ExtractFrom::Regex(r) => ("regex", r.as_str()),
                            ExtractFrom::Header(h) => ("header", h.as_str()),
                        };
                        (x.var.clone(), json!({ key: source }))
                    })
                    .collect();
                m.insert("extract".into(), Value::Object(e));
            }
            Value::Object(m)
        }
    }
}

fn checks_json(checks: &[Check]) -> Value {
    let mut c = Map::new();
    let mut contains = Vec::new();
    let mut json_eq = Map::new();
    for check in checks {
        match check {
            Check::Status(s) => {
                c.insert("status".into(), json!(s));
            }
            Check::MaxLatency(d) => {
                c.insert("max_latency".into(), json!(duration::format(*d)));
            }
            Check::BodyContains(text) => contains.push(Value::String(text.clone())),
            Check::JsonEquals { path, value } => {
                json_eq.insert(path.as_str().to_string(), value.clone());
            }
        }
    }
    if !contains.is_empty() {
        c.insert("body_contains".into(), Value::Array(contains));
    }
    if !json_eq.is_empty() {
        c.insert("json".into(), Value::Object(json_eq));
    }
    Value::Object(c)
}

fn feeder_json(f: &Feeder) -> Value {
    let rows: Vec<&Vec<String>> = std::iter::once(&f.columns).chain(&f.rows).collect();
    let mut m = json!({"mode": f.mode.as_str(), "rows": rows});
    if f.on_exhausted != OnExhausted::default() {
        m["on_exhausted"] = json!(f.on_exhausted.as_str());
    }
    m
}

/// `scenarios` as a plan writes it (here, beside the other `*_json` writers it uses, so
/// `scenarios` need not be imported by the module whose items it imports).
fn scenarios_json(scenarios: &[Scenario]) -> Value {
    let map: Map<String, Value> = scenarios
        .iter()
        .map(|s| {
            let mut m = Map::new();
            m.insert("load".into(), load_json(&s.load));
            m.insert("steps".into(), steps_json(&s.steps));
            if !s.vars.is_empty() {
                let vars: Map<String, Value> = s
                    .vars
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                m.insert("vars".into(), Value::Object(vars));
            }
            (s.name.clone(), Value::Object(m))
        })
        .collect();
    Value::Object(map)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_breadth;
#[cfg(test)]
mod tests_feeder;
#[cfg(test)]
mod tests_flow;
#[cfg(test)]
mod tests_http;
#[cfg(test)]
mod tests_scenario;
#[cfg(test)]
mod tests_scenarios;
#[cfg(test)]
mod tests_script;
#[cfg(test)]
mod tests_secrets;
#[cfg(test)]
mod tests_setup;
