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
mod masking;
mod names;
mod response;
mod script_step;
mod template;

#[cfg(test)]
mod tests;

pub use response::Capture;
pub use script_step::{response_of, ScriptCall};

use crate::error::AgentError;
use crate::http::{self, PreparedRequest};
use crate::script::{ScriptHost, ScriptResponse};
use feeder::AgentFeeder;
use herd_protocol::plan::{
    walk, Expr, OnExhausted, Plan, RequestStep, ScenarioRun, Step as PlanStep, Template, Think,
    BUILTINS, GROUP_KEY_PREFIX, SCENARIO_KEY_PREFIX, STATUS,
};
use names::Names;
use response::Rules;
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;
use template::RequestTemplate;

/// A compiled scenario step.
#[derive(Debug)]
pub enum Step {
    /// Send a request.
    Request(Box<Request>),
    /// Pause.
    Think(Think),
    /// Steps of a group (each request knows its groups: the group itself only holds them).
    Group(Vec<Step>),
    /// One branch at random, by weight.
    Choose(Box<Choice>),
    /// Steps run this many times.
    Repeat(u32, Vec<Step>),
    /// `then` when the condition holds, else `otherwise`.
    If(Box<Condition>, Vec<Step>, Vec<Step>),
    /// Wait until the iteration has lasted this long.
    Pace(Duration),
    /// Requests sent at once; the iteration goes on when all have finished.
    Parallel(Vec<Request>),
    /// Call a script function.
    Script(Box<ScriptCall>),
}

/// The branches of a `choose`, drawn like tickets from a bag: the bag holds `weight` tickets
/// of each branch, each iteration draws one at random, and an empty bag is refilled. So the
/// choice is random per iteration, yet every `sum of weights` draws of an agent take each branch
/// exactly `weight` times: 3:1 over 4,000 iterations is 3,000 and 1,000 to within a bag per
/// agent, where independent draws would stray by ±2 % or more.
#[derive(Debug)]
pub struct Choice {
    weights: Vec<u64>,
    left: RefCell<Vec<u64>>,
    branches: Vec<Vec<Step>>,
}

impl Choice {
    /// Draws a branch; `random_below(n)` gives a number in `0..n`.
    pub fn pick(&self, random_below: impl FnOnce(u64) -> u64) -> &[Step] {
        let mut left = self.left.borrow_mut();
        if left.iter().all(|n| *n == 0) {
            left.clone_from(&self.weights);
        }
        let mut draw = random_below(left.iter().sum());
        for (i, n) in left.iter_mut().enumerate() {
            if draw < *n {
                *n -= 1;
                return &self.branches[i];
            }
            draw -= *n;
        }
        &[]
    }
}

/// An `if` condition over a VU's variables (the last status is one of them).
#[derive(Debug)]
pub struct Condition(Expr<usize>);

impl Condition {
    /// Whether it holds for `vu`.
    pub fn holds(&self, vu: &VuState) -> bool {
        self.0
            .eval(&|i: &usize| vu.vars.get(*i).map_or("", String::as_str))
    }
}

/// A request step, ready to send.
#[derive(Debug)]
pub struct Request {
    /// Index of the step's label in the recorder.
    pub label: usize,
    /// Indices (in the recorder) of the groups the step is in, outermost first.
    pub groups: Box<[usize]>,
    send: Send,
    rules: Rules,
    /// Keep the response for scripts (`this.response`): plans with scripts only.
    keep: bool,
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
        if self.keep {
            Capture::Body
        } else {
            self.rules.capture()
        }
    }

    /// Whether scripts read this step's response (the VU keeps it as its last).
    pub fn keeps_response(&self) -> bool {
        self.keep
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
    /// Scripts' state and the last response: plans with scripts only.
    script: Option<Box<script_step::VuScript>>,
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
    /// The first `unique` feeder found without a row left, by index.
    exhausted: Cell<Option<usize>>,
    vu_var: Option<usize>,
    iteration_var: Option<usize>,
    /// The slot of the last response's status, when a condition reads it.
    status_var: Option<usize>,
    agent_index: u32,
    agent_count: u32,
    /// The script engine and file: plans with `scripts:` only (a plain plan starts none).
    scripts: Option<Arc<ScriptHost>>,
    /// Variable names by index, for scripts' `this.vars` and setup's results ([`Program::values`]).
    var_names: Vec<String>,
    /// The plan's target, which scripts' request paths are appended to.
    target: String,
}

/// The recorder's labels for `plan`: its steps' labels, then its groups' keys
/// (`group:NAME`), then its scenarios' keys (`scenario:NAME`, with `scenarios:` only), which
/// frames carry among the steps'.
pub fn recorder_labels(plan: &Plan) -> Vec<String> {
    let mut labels = plan.step_labels();
    labels.extend(
        plan.group_names()
            .iter()
            .map(|g| format!("{GROUP_KEY_PREFIX}{g}")),
    );
    labels.extend(
        plan.scenario_names()
            .iter()
            .map(|s| format!("{SCENARIO_KEY_PREFIX}{s}")),
    );
    labels
}

impl Program {
    /// Compiles `plan`'s (first) scenario for agent `index` of `count`; `labels` are the
    /// recorder's.
    #[cfg(test)]
    pub fn new(plan: &Plan, labels: &[String], count: u32, index: u32) -> Result<Self, AgentError> {
        let runs = plan.scenario_runs();
        let run = runs.first().ok_or_else(|| AgentError::Request {
            step: "scenarios".into(),
            reason: "the plan has no scenario".into(),
        })?;
        Self::for_run(plan, run, labels, count, index)
    }

    /// Compiles one scenario of `plan` (`run`, from [`Plan::scenario_runs`]) for agent `index`
    /// of `count`: the plan's variables with the scenario's over them, and, in a plan with
    /// `scenarios:`, every request also recorded under the scenario's key (`scenario:NAME`).
    /// Each scenario compiles its own feeders: it reads their rows on its own.
    pub fn for_run(
        plan: &Plan,
        run: &ScenarioRun<'_>,
        labels: &[String],
        count: u32,
        index: u32,
    ) -> Result<Self, AgentError> {
        let steps_in = run.steps;
        let mut names = Names::default();
        let mut defaults = Vec::new();
        let mut set = |names: &mut Names, name: &str, value: String| {
            let i = names.add(name);
            if defaults.len() <= i {
                defaults.resize(i + 1, String::new());
            }
            defaults[i] = value;
            i
        };
        for (name, value) in plan.vars.iter().chain(run.vars) {
            set(&mut names, name, value.clone());
        }
        for name in plan.feeders.iter().flat_map(|f| &f.columns) {
            set(&mut names, name, String::new());
        }
        walk(steps_in, "", &mut |_, step| {
            if let PlanStep::Request(r) = step {
                for e in &r.extract {
                    if names.get(&e.var).is_none() {
                        set(&mut names, &e.var, String::new());
                    }
                }
            }
        });
        // Built-ins take a slot only when a template uses them.
        if references(steps_in, BUILTINS[0]) {
            set(&mut names, BUILTINS[0], index.to_string());
        }
        let vu_var = references(steps_in, BUILTINS[1]).then(|| names.add(BUILTINS[1]));
        let iteration_var = references(steps_in, BUILTINS[2]).then(|| names.add(BUILTINS[2]));
        let status_var = reads_status(steps_in).then(|| set(&mut names, STATUS_SLOT, "0".into()));
        defaults.resize(names.0.len(), String::new());

        let feeders = plan
            .feeders
            .iter()
            .map(|f| AgentFeeder::new(f, &names, count, index))
            .collect::<Result<_, _>>()
            .map_err(AgentError::Feeder)?;
        let compiler = Compiler {
            plan,
            labels,
            names: &names,
        };
        let mut keys: Vec<usize> = run
            .name
            .map(|n| compiler.label(&format!("{SCENARIO_KEY_PREFIX}{n}")))
            .into_iter()
            .collect();
        let steps = compiler.steps(steps_in, &mut keys)?;
        let scripts = match &plan.scripts {
            Some(s) => Some(Arc::new(ScriptHost::new(s).map_err(AgentError::Script)?)),
            None => None,
        };
        let var_names = names.0.clone();
        Ok(Self {
            steps,
            defaults,
            feeders,
            exhausted: Cell::new(None),
            vu_var,
            iteration_var,
            status_var,
            agent_index: index,
            agent_count: count.max(1),
            scripts,
            var_names,
            target: plan.target.clone(),
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
            script: self.scripts.as_ref().map(|_| Box::default()),
        }
    }

    /// The `this` of a script call for `vu`: its variables, its state map (moved out until
    /// [`Program::end_script`]), its last response.
    pub fn begin_script(&self, vu: &mut VuState) -> rhai::Dynamic {
        let kept = vu.script.get_or_insert_with(Box::default);
        kept.begin(&self.var_names, &vu.vars)
    }

    /// Takes a finished call's `this` apart into `vu` and says whether the step's check passed.
    pub fn end_script(
        &self,
        step: &ScriptCall,
        vu: &mut VuState,
        this: Option<rhai::Dynamic>,
        result: Result<bool, String>,
    ) -> bool {
        let kept = vu.script.get_or_insert_with(Box::default);
        kept.end(step, &self.var_names, &mut vu.vars, this, result)
    }

    /// Notes `vu`'s last response for scripts (plans with scripts only).
    pub fn keep_response(&self, vu: &mut VuState, status: u16, captured: Option<&http::Captured>) {
        if let Some(kept) = vu.script.as_mut() {
            kept.keep(response_of(status, captured, None));
        }
    }

    /// Notes a script's own request's response as `vu`'s last.
    pub fn keep_script_response(&self, vu: &mut VuState, response: &ScriptResponse) {
        if let Some(kept) = vu.script.as_mut() {
            kept.keep(response.clone());
        }
    }

    /// The values `vu` holds for the variables `names` (names the program does not know are
    /// left out): what a plan's `setup` hands every VU.
    pub fn values(
        &self,
        vu: &VuState,
        names: &[String],
    ) -> std::collections::BTreeMap<String, String> {
        names
            .iter()
            .filter_map(|n| {
                let i = self.var_names.iter().position(|v| v == n)?;
                Some((n.clone(), vu.vars.get(i)?.clone()))
            })
            .collect()
    }

    /// The script engine, for plans with `scripts:`.
    pub fn scripts(&self) -> Option<&Arc<ScriptHost>> {
        self.scripts.as_ref()
    }

    /// The plan's target (scripts' request paths are appended to it).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Notes the status of the response a VU just got (0: none), for conditions that read it.
    pub fn note_status(&self, vu: &mut VuState, status: u16) {
        if let Some(i) = self.status_var {
            vu.vars[i].clear();
            use std::fmt::Write;
            let _ = write!(vu.vars[i], "{status}");
        }
    }

    /// A VU starts an iteration: feeders give it their rows, `__iteration` counts. `false`:
    /// a `unique` feeder has no row left for this agent; the iteration must not run (and no
    /// feeder gave it a row). The first such feeder is remembered ([`Program::exhausted`]).
    #[must_use]
    pub fn start_iteration(&self, vu: &mut VuState) -> bool {
        if let Some(i) = self.feeders.iter().position(AgentFeeder::exhausted) {
            if self.exhausted.get().is_none() {
                self.exhausted.set(Some(i));
            }
            return false;
        }
        for f in &self.feeders {
            f.start_iteration(&mut vu.vars);
        }
        if let Some(i) = self.iteration_var {
            vu.vars[i] = vu.iterations.to_string();
        }
        vu.iterations += 1;
        true
    }

    /// The `unique` feeder that ran out of rows on this agent, if one did: its name, and what
    /// the plan says happens then.
    pub fn exhausted(&self) -> Option<(&str, OnExhausted)> {
        let f = &self.feeders[self.exhausted.get()?];
        Some((&f.name, f.on_exhausted))
    }
}

/// The slot name of the last status: not a valid variable name, so no plan variable shares it.
const STATUS_SLOT: &str = "#status";

/// Whether any condition of the steps reads `${status}`.
fn reads_status(steps: &[PlanStep]) -> bool {
    let mut found = false;
    walk(steps, "", &mut |_, step| {
        if let PlanStep::If(c) = step {
            found |= c.cond.vars().iter().any(|v| *v == STATUS);
        }
    });
    found
}

/// Whether any template or condition of the steps references variable `name`.
fn references(steps: &[PlanStep], name: &str) -> bool {
    let uses = |text: &str| Template::parse(text).is_ok_and(|t| t.vars().any(|v| v == name));
    let mut found = false;
    walk(steps, "", &mut |_, step| {
        found |= match step {
            PlanStep::If(c) => c.cond.vars().iter().any(|v| *v == name),
            PlanStep::Request(r) => {
                uses(&r.path)
                    || r.headers.iter().any(|(_, v)| uses(v))
                    || r.body.as_deref().is_some_and(uses)
                    || r.multipart.iter().any(|p| match &p.value {
                        herd_protocol::plan::FormValue::Text(t) => uses(t),
                        herd_protocol::plan::FormValue::File { .. } => false,
                    })
                    || r.checks.iter().any(|c| match c {
                        herd_protocol::plan::Check::BodyContains(t) => uses(t),
                        herd_protocol::plan::Check::JsonEquals {
                            value: serde_json::Value::String(t),
                            ..
                        } => uses(t),
                        _ => false,
                    })
            }
            _ => false,
        };
    });
    found
}

/// Turns the plan's step tree into the agent's, resolving labels and variables to indices.
struct Compiler<'a> {
    plan: &'a Plan,
    labels: &'a [String],
    names: &'a Names,
}

impl Compiler<'_> {
    fn label(&self, label: &str) -> usize {
        self.labels.iter().position(|l| l == label).unwrap_or(0)
    }

    /// `groups`: the recorder indices of the groups around these steps.
    fn steps(&self, steps: &[PlanStep], groups: &mut Vec<usize>) -> Result<Vec<Step>, AgentError> {
        steps.iter().map(|s| self.step(s, groups)).collect()
    }

    fn step(&self, step: &PlanStep, groups: &mut Vec<usize>) -> Result<Step, AgentError> {
        Ok(match step {
            PlanStep::Think(t) => Step::Think(*t),
            PlanStep::Pace(d) => Step::Pace(*d),
            PlanStep::Script(s) => Step::Script(Box::new(ScriptCall::new(
                self.label(&s.label),
                groups.clone().into_boxed_slice(),
                &s.function,
            ))),
            PlanStep::Group(g) => {
                groups.push(self.label(&format!("{GROUP_KEY_PREFIX}{}", g.name)));
                let inner = self.steps(&g.steps, groups);
                groups.pop();
                Step::Group(inner?)
            }
            PlanStep::Repeat(r) => Step::Repeat(r.count, self.steps(&r.steps, groups)?),
            PlanStep::Choose(branches) => {
                let weights: Vec<u64> = branches.iter().map(|b| u64::from(b.weight)).collect();
                Step::Choose(Box::new(Choice {
                    left: RefCell::new(vec![0; weights.len()]),
                    weights,
                    branches: branches
                        .iter()
                        .map(|b| self.steps(&b.steps, groups))
                        .collect::<Result<_, _>>()?,
                }))
            }
            PlanStep::If(c) => {
                let cond = c.cond.map_vars(&mut |name: &String| {
                    let slot = if name == STATUS { STATUS_SLOT } else { name };
                    self.names.get(slot).ok_or_else(|| AgentError::Request {
                        step: c.source.clone(),
                        reason: format!("unknown variable ${{{name}}}"),
                    })
                })?;
                Step::If(
                    Box::new(Condition(cond)),
                    self.steps(&c.then, groups)?,
                    self.steps(&c.otherwise, groups)?,
                )
            }
            PlanStep::Request(r) => Step::Request(Box::new(self.request(r, groups)?)),
            PlanStep::Parallel(steps) => Step::Parallel(
                steps
                    .iter()
                    .filter_map(|s| match s {
                        PlanStep::Request(r) => Some(self.request(r, groups)),
                        _ => None,
                    })
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    fn request(&self, r: &RequestStep, groups: &[usize]) -> Result<Request, AgentError> {
        let bad = |reason: String| AgentError::Request {
            step: r.label.clone(),
            reason,
        };
        let send = match RequestTemplate::compile(&self.plan.target, r, self.names).map_err(bad)? {
            Some(template) => Send::Templated(template),
            None => Send::Static(PreparedRequest::new(&self.plan.target, r)?),
        };
        Ok(Request {
            label: self.label(&r.label),
            groups: groups.to_vec().into_boxed_slice(),
            send,
            rules: Rules::compile(&r.checks, &r.extract, self.names).map_err(bad)?,
            keep: self.plan.scripts.is_some(),
            warned: Cell::new(false),
        })
    }
}
