//! Parsing of the steps that hold steps (`group`, `choose`, `repeat`, `if`, and `pace`), each
//! error named by its path through the tree (`scenario[2].choose[1].steps[0].get`). Split from
//! `parse`, which dispatches a step here when it has one of [`FLOW_KEYS`].

use super::cx::{join, kind, Cx};
use super::{
    walk, Branch, Expr, Group, If, Repeat, Selector, Step, ThresholdRule, GROUP_KEY_PREFIX,
};
use serde_json::{Map, Value};

/// The keys that make a step a flow step.
pub(super) const FLOW_KEYS: &[&str] = &["group", "choose", "repeat", "if", "pace", "parallel"];

impl Cx {
    /// A list of steps at `path`; `what` says what the list is for in the error when it is empty
    /// and may not be.
    pub(super) fn step_list(
        &mut self,
        v: &Value,
        path: &str,
        may_be_empty: bool,
    ) -> Option<Vec<Step>> {
        let Value::Array(items) = v else {
            self.err(path, format!("must be a list of steps, got {}", kind(v)));
            return None;
        };
        if items.is_empty() && !may_be_empty {
            self.err(path, "must have at least one step");
            return None;
        }
        let mut steps = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.step(item, &format!("{path}[{i}]")) {
                Some(s) => steps.push(s),
                None => ok = false,
            }
        }
        ok.then_some(steps)
    }

    /// A step with one of [`FLOW_KEYS`] (`key`).
    pub(super) fn flow_step(
        &mut self,
        key: &str,
        m: &Map<String, Value>,
        v: &Value,
        path: &str,
    ) -> Option<Step> {
        match key {
            "pace" => {
                self.object(v, path, &["pace"])?;
                let d = self.duration(&m["pace"], &join(path, "pace"))?;
                if d.is_zero() {
                    self.err(&join(path, "pace"), "must be longer than 0");
                    return None;
                }
                Some(Step::Pace(d))
            }
            "group" => {
                self.object(v, path, &["group", "steps"])?;
                let p = join(path, "group");
                let name = self.string(&m["group"], &p);
                let name = match name {
                    Some(n) if n.trim().is_empty() => {
                        self.err(&p, "must not be empty");
                        None
                    }
                    other => other,
                };
                let steps = self
                    .required(m, path, "steps")
                    .and_then(|s| self.step_list(s, &join(path, "steps"), false));
                Some(Step::Group(Group {
                    name: name?,
                    steps: steps?,
                }))
            }
            "repeat" => {
                self.object(v, path, &["repeat", "steps"])?;
                let count = self.integer(&m["repeat"], &join(path, "repeat"), 1, "must be >= 1");
                let steps = self
                    .required(m, path, "steps")
                    .and_then(|s| self.step_list(s, &join(path, "steps"), false));
                Some(Step::Repeat(Repeat {
                    count: count?,
                    steps: steps?,
                }))
            }
            "parallel" => {
                self.object(v, path, &["parallel"])?;
                self.parallel(&m["parallel"], &join(path, "parallel"))
                    .map(Step::Parallel)
            }
            "choose" => {
                self.object(v, path, &["choose"])?;
                self.choose(&m["choose"], &join(path, "choose"))
                    .map(Step::Choose)
            }
            _ => {
                self.object(v, path, &["if", "then", "else"])?;
                let p = join(path, "if");
                let source = self.string(&m["if"], &p);
                let cond = source
                    .as_deref()
                    .and_then(|s| Expr::parse(s).map_err(|e| self.err(&p, e)).ok());
                let then = self
                    .required(m, path, "then")
                    .and_then(|s| self.step_list(s, &join(path, "then"), false));
                let otherwise = match m.get("else") {
                    Some(s) => self.step_list(s, &join(path, "else"), true),
                    None => Some(Vec::new()),
                };
                Some(Step::If(Box::new(If {
                    source: source?,
                    cond: cond?,
                    then: then?,
                    otherwise: otherwise?,
                })))
            }
        }
    }

    fn choose(&mut self, v: &Value, path: &str) -> Option<Vec<Branch>> {
        let Value::Array(items) = v else {
            self.err(
                path,
                format!(
                    "must be a list of branches like {{weight: 3, steps: […]}}, got {}",
                    kind(v)
                ),
            );
            return None;
        };
        if items.is_empty() {
            self.err(path, "must have at least one branch");
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let Some(m) = self.object(item, &p, &["weight", "steps"]) else {
                ok = false;
                continue;
            };
            let weight = self
                .required(m, &p, "weight")
                .and_then(|w| self.integer(w, &join(&p, "weight"), 1, "must be >= 1"));
            let steps = self
                .required(m, &p, "steps")
                .and_then(|s| self.step_list(s, &join(&p, "steps"), true));
            match (weight, steps) {
                (Some(weight), Some(steps)) => out.push(Branch { weight, steps }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// `parallel: [steps]`: requests only (at least one); what a browser would fetch at once
    /// holds no pauses or branches.
    fn parallel(&mut self, v: &Value, path: &str) -> Option<Vec<Step>> {
        let steps = self.step_list(v, path, false)?;
        let mut ok = true;
        for (i, step) in steps.iter().enumerate() {
            if !matches!(step, Step::Request(_)) {
                self.err(
                    &format!("{path}[{i}]"),
                    "must be a request (get, post, …): parallel holds requests only",
                );
                ok = false;
            }
        }
        ok.then_some(steps)
    }

    /// A step's `name` may not look like a group's key in results.
    pub(super) fn step_name_free(&mut self, name: &str, path: &str) -> bool {
        if name.starts_with(GROUP_KEY_PREFIX) {
            self.err(
                path,
                format!(
                    "must not start with {GROUP_KEY_PREFIX:?}: results use that prefix for groups"
                ),
            );
            return false;
        }
        true
    }

    /// Every `{step:…}` / `{group:…}` selector names a step label or group of the scenario.
    pub(super) fn check_selectors(&mut self, scenarios: &[&[Step]], thresholds: &[ThresholdRule]) {
        let mut steps: Vec<&str> = Vec::new();
        let mut groups: Vec<&str> = Vec::new();
        for scenario in scenarios {
            walk(scenario, "", &mut |_, s| match s {
                Step::Request(r) => steps.push(&r.label),
                Step::Script(s) => steps.push(&s.label),
                Step::Group(g) => groups.push(&g.name),
                _ => {}
            });
        }
        for (i, t) in thresholds.iter().enumerate() {
            let (kind, name, known) = match &t.selector {
                None => continue,
                Some(Selector::Step(n)) => ("step", n, &steps),
                Some(Selector::Group(n)) => ("group", n, &groups),
            };
            if !known.contains(&name.as_str()) {
                let mut list: Vec<&str> = known.clone();
                list.dedup();
                self.err(
                    &format!("thresholds[{i}]"),
                    format!(
                        "no {kind} is named {name:?} (the scenario's {kind}s: {})",
                        if list.is_empty() {
                            "none".to_string()
                        } else {
                            list.join(", ")
                        }
                    ),
                );
            }
        }
    }
}
