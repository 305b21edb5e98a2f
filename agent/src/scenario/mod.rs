//! The scenario as one agent runs it: variables, templates, data feeders, checks, extractions.
//!
//! [`Program::new`] compiles the plan's scenario once, when the load starts. Every variable the
//! plan defines (`vars`, feeder columns, extractions, the built-ins `__agent`, `__vu`,
//! `__iteration`) gets an index in one table, and every VU (or open-model worker) owns a
//! [`VuState`]: one string per variable. Variables are per VU and live as long as it does, across
//! its iterations: a token extracted in one iteration is still there in the next unless replaced.
//!
//! Plain steps stay on the fast path: a step without variables keeps the request prepared at
//! start, and a step without extraction or body checks never keeps its response. A plan without
//! any variable makes [`Program::start_iteration`] a no-op.

mod feeder;
mod names;
mod response;
mod template;

#[cfg(test)]
mod tests;

pub use response::Capture;

use crate::error::AgentError;
use crate::http::PreparedRequest;
use feeder::AgentFeeder;
use herd_protocol::plan::{Plan, Step as PlanStep, Template, Think, BUILTINS};
use names::Names;
use response::Rules;
use std::cell::Cell;
use template::RequestTemplate;

/// A compiled scenario step.
#[derive(Debug)]
pub enum Step {
    /// Send a request.
    Request(Box<Request>),
    /// Pause.
    Think(Think),
}

/// A request step, ready to send.
#[derive(Debug)]
pub struct Request {
    /// Index of the step's label in the recorder.
    pub label: usize,
    send: Send,
    rules: Rules,
    /// Whether a render failure of this step was logged already (it is logged once).
    warned: Cell<bool>,
}

#[derive(Debug)]
enum Send {
    Static(PreparedRequest),
    Templated(RequestTemplate),
}

impl Request {
    /// The request to send for a VU with `vars`: the prepared one, or one rendered now; `None`
    /// when the variables make no valid request (logged once; the caller counts a failed check).
    pub fn prepare<'a>(
        &'a self,
        vars: &[String],
        rendered: &'a mut Option<PreparedRequest>,
    ) -> Option<&'a PreparedRequest> {
        match &self.send {
            Send::Static(request) => Some(request),
            Send::Templated(template) => match template.render(vars) {
                Ok(request) => Some(rendered.insert(request)),
                Err(reason) => {
                    if !self.warned.replace(true) {
                        tracing::warn!(
                            step = template.label(),
                            %reason,
                            "a request could not be built from its variables; it is not sent and \
                             counts as a failed check (logged once per step)"
                        );
                    }
                    None
                }
            },
        }
    }

    /// How much of the response the step's checks and extractions need.
    pub fn capture(&self) -> Capture {
        self.rules.capture()
    }

    /// Evaluates the step's checks and extractions on a response, updating `vu`'s variables;
    /// `record` gets the outcome of each.
    pub fn apply(
        &self,
        status: u16,
        service_us: u64,
        captured: Option<&crate::http::Captured>,
        vu: &mut VuState,
        record: impl FnMut(bool),
    ) {
        self.rules
            .apply(status, service_us, captured, &mut vu.vars, record);
    }
}

/// One VU's variables.
#[derive(Debug)]
pub struct VuState {
    vars: Vec<String>,
    iterations: u64,
}

impl VuState {
    /// The variables' values, by index.
    pub fn vars(&self) -> &[String] {
        &self.vars
    }
}

/// The scenario compiled for this agent; see the module docs.
#[derive(Debug)]
pub struct Program {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Initial values of every variable (empty for those set later).
    defaults: Vec<String>,
    feeders: Vec<AgentFeeder>,
    vu_var: Option<usize>,
    iteration_var: Option<usize>,
    agent_index: u32,
    agent_count: u32,
}

impl Program {
    /// Compiles `plan`'s scenario for agent `index` of `count`; `labels` are the recorder's.
    pub fn new(plan: &Plan, labels: &[String], count: u32, index: u32) -> Result<Self, AgentError> {
        let mut names = Names::default();
        let mut defaults = Vec::new();
        let mut set = |names: &mut Names, name: &str, value: String| {
            let i = names.add(name);
            if defaults.len() <= i {
                defaults.resize(i + 1, String::new());
            }
            defaults[i] = value;
        };
        for (name, value) in &plan.vars {
            set(&mut names, name, value.clone());
        }
        for name in plan.feeders.iter().flat_map(|f| &f.columns) {
            set(&mut names, name, String::new());
        }
        for step in &plan.scenario {
            if let PlanStep::Request(r) = step {
                for e in &r.extract {
                    if names.get(&e.var).is_none() {
                        set(&mut names, &e.var, String::new());
                    }
                }
            }
        }
        // Built-ins take a slot only when a template uses them.
        if references(plan, BUILTINS[0]) {
            set(&mut names, BUILTINS[0], index.to_string());
        }
        let vu_var = references(plan, BUILTINS[1]).then(|| names.add(BUILTINS[1]));
        let iteration_var = references(plan, BUILTINS[2]).then(|| names.add(BUILTINS[2]));
        defaults.resize(names.0.len(), String::new());

        let feeders = plan
            .feeders
            .iter()
            .map(|f| AgentFeeder::new(f, &names, count, index))
            .collect::<Result<_, _>>()
            .map_err(AgentError::Feeder)?;
        let mut steps = Vec::with_capacity(plan.scenario.len());
        for step in &plan.scenario {
            steps.push(match step {
                PlanStep::Think(t) => Step::Think(*t),
                PlanStep::Request(r) => {
                    let bad = |reason: String| AgentError::Request {
                        step: r.label.clone(),
                        reason,
                    };
                    let send =
                        match RequestTemplate::compile(&plan.target, r, &names).map_err(bad)? {
                            Some(template) => Send::Templated(template),
                            None => Send::Static(PreparedRequest::new(&plan.target, r)?),
                        };
                    Step::Request(Box::new(Request {
                        label: labels.iter().position(|l| *l == r.label).unwrap_or(0),
                        send,
                        rules: Rules::compile(&r.checks, &r.extract, &names).map_err(bad)?,
                        warned: Cell::new(false),
                    }))
                }
            });
        }
        Ok(Self {
            steps,
            defaults,
            feeders,
            vu_var,
            iteration_var,
            agent_index: index,
            agent_count: count.max(1),
        })
    }

    /// The variables of a VU (or open-model worker) starting in `slot`: the defaults, its
    /// per-VU feeder rows, and `__vu`, its number in the whole run (`index + slot × count`:
    /// unique across agents, and `0..vus` when every agent runs its share).
    pub fn start_vu(&self, slot: u32) -> VuState {
        let mut vars = self.defaults.clone();
        for f in &self.feeders {
            f.start_vu(slot, &mut vars);
        }
        if let Some(i) = self.vu_var {
            let global =
                u64::from(self.agent_index) + u64::from(slot) * u64::from(self.agent_count);
            vars[i] = global.to_string();
        }
        VuState {
            vars,
            iterations: 0,
        }
    }

    /// A VU starts an iteration: shared feeders give it their next rows, `__iteration` counts.
    pub fn start_iteration(&self, vu: &mut VuState) {
        for f in &self.feeders {
            f.start_iteration(&mut vu.vars);
        }
        if let Some(i) = self.iteration_var {
            vu.vars[i] = vu.iterations.to_string();
        }
        vu.iterations += 1;
    }
}

/// Whether any template of the plan references variable `name`.
fn references(plan: &Plan, name: &str) -> bool {
    let uses = |text: &str| Template::parse(text).is_ok_and(|t| t.vars().any(|v| v == name));
    plan.scenario.iter().any(|step| match step {
        PlanStep::Think(_) => false,
        PlanStep::Request(r) => {
            uses(&r.path)
                || r.headers.iter().any(|(_, v)| uses(v))
                || r.body.as_deref().is_some_and(uses)
                || r.checks.iter().any(|c| match c {
                    herd_protocol::plan::Check::BodyContains(t) => uses(t),
                    herd_protocol::plan::Check::JsonEquals {
                        value: serde_json::Value::String(t),
                        ..
                    } => uses(t),
                    _ => false,
                })
        }
    })
}
