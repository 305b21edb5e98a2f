//! Several scenarios in one plan: `scenarios: {NAME: {load: …, steps: […], vars: {…}}}`.
//!
//! Like k6's scenarios or JMeter's thread groups, each scenario has its own load (closed stages,
//! iterations or open arrivals: whatever `load:` accepts) and its own steps, and all of them run
//! together from the run's start. A plan has either `scenarios:` or the single `load:` +
//! `scenario:`; the single form is a plan of one unnamed scenario and reads as before.
//!
//! Each scenario's VUs or arrivals are split over the run's agents on their own, with the same
//! exact rule as a single load ([`split`](crate::split)), and every request a scenario sends is
//! also recorded under the step key `scenario:NAME` ([`SCENARIO_KEY_PREFIX`]), the way regions
//! and groups are, so each scenario's figures are merged histograms too (never averages).
//! Step labels (and group names) must be unique across scenarios, so a step's row in the results
//! belongs to one scenario; the parser names the clash.

use super::cx::{join, kind, Cx, FieldError};
use super::{walk, Load, Plan, Step};
use serde_json::Value;
use std::time::Duration;

/// Key prefix of a scenario's figures among the aggregated steps (`scenario:browse`).
pub const SCENARIO_KEY_PREFIX: &str = "scenario:";

/// One named scenario of a plan with `scenarios:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Its name (a variable-like name: letters, digits and `_`, not starting with a digit).
    pub name: String,
    /// Its load, whole-run totals like a single plan's `load`.
    pub load: Load,
    /// Variables its VUs start with, on top of (and overriding) the plan's `vars`.
    pub vars: Vec<(String, String)>,
    /// The steps its VUs run, in order, in a loop.
    pub steps: Vec<Step>,
}

/// What one load controller runs: a scenario's name (`None` for a single-scenario plan), load,
/// variables (the plan's with the scenario's over them) and steps.
#[derive(Debug, Clone, Copy)]
pub struct ScenarioRun<'a> {
    /// The scenario's name; `None` for the single `scenario:` of a plan without `scenarios:`.
    pub name: Option<&'a str>,
    /// Its load.
    pub load: &'a Load,
    /// The scenario's own variables (the plan's `vars` come first, these override them).
    pub vars: &'a [(String, String)],
    /// Its steps.
    pub steps: &'a [Step],
}

impl Plan {
    /// Whether the plan has `scenarios:` (several named scenarios) rather than one `scenario:`.
    pub fn has_scenarios(&self) -> bool {
        !self.scenarios.is_empty()
    }

    /// What the agents run: one entry per scenario, or the plan's single load and scenario.
    pub fn scenario_runs(&self) -> Vec<ScenarioRun<'_>> {
        if self.scenarios.is_empty() {
            return vec![ScenarioRun {
                name: None,
                load: &self.load,
                vars: &[],
                steps: &self.scenario,
            }];
        }
        self.scenarios
            .iter()
            .map(|s| ScenarioRun {
                name: Some(&s.name),
                load: &s.load,
                vars: &s.vars,
                steps: &s.steps,
            })
            .collect()
    }

    /// The steps of every scenario, in order.
    pub fn all_steps(&self) -> Vec<&[Step]> {
        self.scenario_runs().into_iter().map(|r| r.steps).collect()
    }

    /// How long the load lasts as planned: the longest scenario's.
    pub fn duration(&self) -> Duration {
        self.scenario_runs()
            .iter()
            .map(|r| r.load.duration())
            .max()
            .unwrap_or_default()
    }

    /// The scenarios' names, in order (empty for a single-scenario plan).
    pub fn scenario_names(&self) -> Vec<String> {
        self.scenarios.iter().map(|s| s.name.clone()).collect()
    }
}

impl Scenario {
    /// One line on what the scenario runs, as `herd validate` lists it: `browse: 3 VUs (peak)
    /// for 2.0s, 1 step` or `buy: arrivals up to 50/s for 2.0s, 2 steps`.
    pub fn describe(&self) -> String {
        let load = match &self.load.arrival {
            Some(a) => {
                let peak = a.stages.iter().map(|s| s.rps).fold(a.start_rps, f64::max);
                format!("arrivals up to {peak}/s")
            }
            None => format!("{} VUs (peak)", self.load.max_vus()),
        };
        let iterations = self
            .load
            .iterations
            .map_or_else(String::new, |n| format!(", {n} iterations"));
        let steps = self.steps.len();
        format!(
            "{}: {load}{iterations} for {:.1}s, {steps} step{}",
            self.name,
            self.load.duration().as_secs_f64(),
            if steps == 1 { "" } else { "s" }
        )
    }
}

const SCENARIO_KEYS: &[&str] = &["load", "steps", "vars"];

/// Moves the errors a parse step pushed since `from` under `scenarios.NAME`: the load and vars
/// parsers name their fields from the plan's top (`load.stages[0].vus`).
fn rebase(errors: &mut [FieldError], from: usize, prefix: &str) {
    for e in &mut errors[from..] {
        e.path = join(prefix, &e.path);
    }
}

impl Cx {
    /// `scenarios: {NAME: {load, steps, vars}}`; `plan_vars` are the plan's `vars` (for the
    /// variable check). Every problem is reported, each at its field.
    pub(super) fn scenarios(
        &mut self,
        v: &Value,
        plan_vars: Option<&[(String, String)]>,
        feeders: Option<&[super::Feeder]>,
    ) -> Option<Vec<Scenario>> {
        let Value::Object(m) = v else {
            self.err(
                "scenarios",
                format!(
                    "must be a map of scenario names to {{load, steps}}, got {}",
                    kind(v)
                ),
            );
            return None;
        };
        if m.is_empty() {
            self.err("scenarios", "must name at least one scenario");
            return None;
        }
        let mut out = Vec::with_capacity(m.len());
        let mut ok = true;
        for (name, value) in m {
            match self.one_scenario(name, value, plan_vars, feeders) {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        if ok {
            self.check_unique_labels(&out);
        }
        ok.then_some(out)
    }

    fn one_scenario(
        &mut self,
        name: &str,
        v: &Value,
        plan_vars: Option<&[(String, String)]>,
        feeders: Option<&[super::Feeder]>,
    ) -> Option<Scenario> {
        let path = join("scenarios", name);
        let mut ok = true;
        if !super::is_var_name(name) {
            self.err(
                &path,
                "is not a scenario name (letters, digits and _, not starting with a digit)",
            );
            ok = false;
        }
        let m = self.object(v, &path, SCENARIO_KEYS)?;
        let load_value = self.required(m, &path, "load");
        let from = self.errors.len();
        let load = load_value.and_then(|v| self.load(v));
        let vars = match m.get("vars") {
            Some(v) => self.vars(v),
            None => Some(Vec::new()),
        };
        rebase(&mut self.errors, from, &path);
        let steps = self
            .required(m, &path, "steps")
            .and_then(|v| self.scenario_steps(v, &join(&path, "steps")));
        if let (Some(steps), Some(vars)) = (&steps, &vars) {
            let all_vars = plan_vars.map(|p| {
                let mut all = p.to_vec();
                all.extend(vars.iter().cloned());
                all
            });
            let from = self.errors.len();
            self.check_variables(all_vars.as_deref(), feeders, steps);
            for e in &mut self.errors[from..] {
                if let Some(rest) = e.path.strip_prefix("scenario") {
                    e.path = format!("{path}.steps{rest}");
                }
            }
        }
        let scenario = Scenario {
            name: name.to_string(),
            load: load?,
            vars: vars?,
            steps: steps?,
        };
        ok.then_some(scenario)
    }

    /// A step label or group name used by two scenarios is an error: results list steps by
    /// label, and a row must belong to one scenario.
    fn check_unique_labels(&mut self, scenarios: &[Scenario]) {
        let mut owner: std::collections::BTreeMap<(String, &str), &str> = Default::default();
        for s in scenarios {
            let mut own: Vec<(String, &str)> = Vec::new();
            walk(&s.steps, "", &mut |_, step| match step {
                Step::Request(r) => own.push((r.label.clone(), "step")),
                Step::Group(g) => own.push((g.name.clone(), "group")),
                _ => {}
            });
            let path = join(&join("scenarios", &s.name), "steps");
            for key in own {
                let first = *owner.entry(key.clone()).or_insert(&s.name);
                if first != s.name {
                    let (label, what) = key;
                    self.err(
                        &path,
                        format!(
                            "{what} {label:?} is in scenario {first} too: results list steps \
                             by label, so give it a `name:` of its own in one of them"
                        ),
                    );
                    owner.insert((label, what), &s.name);
                }
            }
        }
    }
}
