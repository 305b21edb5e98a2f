//! `setup:` and `teardown:`: steps run once per run, by one agent, before the load and after it
//! (k6's `setup()` and `teardown()`).
//!
//! Both are lists of steps in the scenario's grammar (requests with checks and extractions,
//! groups, `if`, scripts…). What `setup` extracts is where every VU on every agent starts: its
//! extracted variables are defined for the scenario (and scenarios) and for `teardown`, like
//! `vars`. Setup runs before any VU exists, so it sees the plan's `vars`, secrets, `${env.…}`
//! and generated values, never a feeder's columns (feeders hand rows to VUs).
//!
//! An agent runs a phase from a plan of its own ([`Plan::phase_plan`]): the phase's steps as the
//! one scenario, no feeders, thresholds, outputs or regions. So the agent compiles and runs them
//! with the scenario's code, and the plan that travels to it is small whatever the feeders hold.

use super::cx::{Cx, FieldError};
use super::{walk, Feeder, Load, Plan, Stage, Step};
use serde_json::{Map, Value};
use std::time::Duration;

/// The default of `options.setup_timeout` and `options.teardown_timeout` (k6's too).
pub const DEFAULT_ONCE_TIMEOUT: Duration = Duration::from_secs(60);

/// One of the two phases a plan runs once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OncePhase {
    /// Before the load.
    Setup,
    /// After the load.
    Teardown,
}

impl OncePhase {
    /// The plan key (`setup`, `teardown`), also how results and messages name the phase.
    pub fn key(self) -> &'static str {
        match self {
            OncePhase::Setup => "setup",
            OncePhase::Teardown => "teardown",
        }
    }
}

impl Plan {
    /// The steps of `phase` (empty: the plan has none).
    pub fn once_steps(&self, phase: OncePhase) -> &[Step] {
        match phase {
            OncePhase::Setup => &self.setup,
            OncePhase::Teardown => &self.teardown,
        }
    }

    /// How long `phase` may take, all its steps together (`options.setup_timeout`,
    /// `options.teardown_timeout`).
    pub fn once_timeout(&self, phase: OncePhase) -> Duration {
        match phase {
            OncePhase::Setup => self.options.setup_timeout,
            OncePhase::Teardown => self.options.teardown_timeout,
        }
    }

    /// The variables `setup`'s steps extract, in order, without repeats: every VU of the run
    /// starts with their values.
    pub fn setup_vars(&self) -> Vec<String> {
        extracted(&self.setup)
    }

    /// One line per phase the plan has, as `herd validate` lists them: `setup: 2 steps (POST
    /// /login, GET /me), timeout 60s; every VU starts with token`.
    pub fn describe_once(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for phase in [OncePhase::Setup, OncePhase::Teardown] {
            let steps = self.once_steps(phase);
            if steps.is_empty() {
                continue;
            }
            let mut labels: Vec<&str> = Vec::new();
            walk(steps, "", &mut |_, step| match step {
                Step::Request(r) => labels.push(&r.label),
                Step::Script(s) => labels.push(&s.label),
                _ => {}
            });
            let mut line = format!(
                "{}: {} step{} ({}), timeout {}",
                phase.key(),
                steps.len(),
                if steps.len() == 1 { "" } else { "s" },
                labels.join(", "),
                crate::duration::format(self.once_timeout(phase))
            );
            let vars = extracted(steps);
            if phase == OncePhase::Setup && !vars.is_empty() {
                line.push_str(&format!("; every VU starts with {}", vars.join(", ")));
            }
            lines.push(line);
        }
        lines
    }

    /// The plan an agent runs `phase` with: its steps as the only scenario, run once; the plan's
    /// target, options, hosts, scripts, `vars` and secrets (their names: the values travel beside
    /// it); for teardown, setup's variables as `vars` without values (the command carries them).
    /// No feeders, thresholds, outputs or regions. `None` when the plan has no such steps.
    pub fn phase_plan(&self, phase: OncePhase) -> Option<Plan> {
        let steps = self.once_steps(phase);
        if steps.is_empty() {
            return None;
        }
        let mut vars = self.vars.clone();
        if phase == OncePhase::Teardown {
            for name in self.setup_vars() {
                if !vars.iter().any(|(k, _)| *k == name) {
                    vars.push((name, String::new()));
                }
            }
        }
        Some(Plan {
            name: format!("{} ({})", self.name, phase.key()),
            target: self.target.clone(),
            agents: 1,
            load: Load {
                stages: vec![Stage {
                    duration: Duration::from_secs(1),
                    vus: 1,
                }],
                iterations: Some(1),
                ..Load::default()
            },
            vars,
            feeders: Vec::new(),
            scenario: steps.to_vec(),
            thresholds: Vec::new(),
            options: self.options.clone(),
            secrets: self.secrets.clone(),
            outputs: Vec::new(),
            regions: Vec::new(),
            hosts: self.hosts.clone(),
            scenarios: Vec::new(),
            scripts: self.scripts.clone(),
            setup: Vec::new(),
            teardown: Vec::new(),
        })
    }
}

/// The variables `steps` extract, in order, without repeats.
pub fn extracted(steps: &[Step]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    walk(steps, "", &mut |_, step| {
        if let Step::Request(r) = step {
            for e in &r.extract {
                if !names.contains(&e.var) {
                    names.push(e.var.clone());
                }
            }
        }
    });
    names
}

/// Moves the errors pushed since `from` that name the scenario (`scenario[0].get`, as the
/// variable check does) under `key` (`setup[0].get`).
fn rebase(errors: &mut [FieldError], from: usize, key: &str) {
    for e in &mut errors[from..] {
        if let Some(rest) = e.path.strip_prefix("scenario") {
            e.path = format!("{key}{rest}");
        }
    }
}

impl Cx {
    /// `setup:` or `teardown:` (`phase`) of the plan's map `m`: empty when absent; else a list
    /// of steps with at least one request or script step, in the scenario's grammar.
    pub(super) fn once_steps(
        &mut self,
        m: &Map<String, Value>,
        phase: OncePhase,
    ) -> Option<Vec<Step>> {
        match m.get(phase.key()) {
            None => Some(Vec::new()),
            Some(v) => self.scenario_steps(v, phase.key()),
        }
    }

    /// Checks the variables of `setup` and `teardown`: setup sees `defined` (the plan's vars and
    /// secrets) and what it extracts itself; teardown also what setup extracted. A variable setup
    /// extracts may not be a feeder's column: every VU would start with two values for it.
    pub(super) fn check_once_variables(
        &mut self,
        defined: &[(String, String)],
        feeders: &[Feeder],
        setup: &[Step],
        teardown: &[Step],
    ) {
        let from = self.errors.len();
        self.check_variables(Some(defined), Some(&[]), setup);
        rebase(&mut self.errors, from, OncePhase::Setup.key());
        let mut with_setup = defined.to_vec();
        with_setup.extend(extracted(setup).into_iter().map(|n| (n, String::new())));
        let from = self.errors.len();
        self.check_variables(Some(&with_setup), Some(&[]), teardown);
        rebase(&mut self.errors, from, OncePhase::Teardown.key());
        for name in extracted(setup) {
            if let Some(f) = feeders.iter().find(|f| f.columns.contains(&name)) {
                self.err(
                    OncePhase::Setup.key(),
                    format!(
                        "extracts {name}, which is also a column of feeders.{}: every VU starts \
                         with setup's variables, so use another name for one of them",
                        f.name
                    ),
                );
            }
        }
    }
}

/// `defined` with setup's extracted variables added (as names without values), for checking the
/// scenario's variables: every VU starts with them.
pub(super) fn with_setup_vars(
    defined: &[(String, String)],
    setup: &[Step],
) -> Vec<(String, String)> {
    let mut all = defined.to_vec();
    for name in extracted(setup) {
        if !all.iter().any(|(k, _)| *k == name) {
            all.push((name, String::new()));
        }
    }
    all
}

/// Body files named by `setup` and `teardown` steps, loaded the way the scenario's are (each
/// list is loaded as a scenario of its own, its errors named under its key).
pub(super) fn load_once_body_files(
    value: &mut Value,
    files: &dyn super::PlanFiles,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for phase in [OncePhase::Setup, OncePhase::Teardown] {
        let Some(steps) = value.get_mut(phase.key()) else {
            continue;
        };
        let mut alone = serde_json::json!({ "scenario": steps.take() });
        let mut found = super::body::load_body_files(&mut alone, files);
        rebase(&mut found, 0, phase.key());
        errors.extend(found);
        *steps = alone["scenario"].take();
    }
    errors
}
