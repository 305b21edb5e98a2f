//! The last steps every importer shares, once its [`Draft`] is built: the
//! `--vus/--ramp/--hold/--agents` overrides, the variables nothing defines, the YAML text and its
//! check by herd's own parser.
//!
//! Apart from `draft` so that the draft's types stay a leaf: the YAML writer (`yaml`) and every
//! importer read them, and only this module (called by `mod.rs`) puts them together with the
//! writer and the parser.

use super::draft::{Draft, DraftFeeder, DraftLoad, DraftStep, DEFAULT_HOLD};
use super::error::ImportError;
use super::options::{ImportFiles, ImportOptions};
use super::report::{Outcome, Report};
use super::yaml;
use crate::plan::{self, PlanFiles, Template, BUILTINS};
use std::collections::BTreeSet;
use std::time::Duration;

impl Draft {
    /// Leaves out body files that cannot be read beside the source (a plan naming a missing
    /// file would not validate at `herd run`): the request is sent without a body, and its report
    /// item says so.
    pub fn drop_missing_body_files(&mut self, files: &dyn ImportFiles, report: &mut Report) {
        for step in self.steps_mut() {
            let DraftStep::Request(r) = step else {
                continue;
            };
            let Some(path) = r.body_file.clone() else {
                continue;
            };
            if let Err(why) = files.read(&path) {
                r.body_file = None;
                let how = format!("its body file {path} was not read ({why}): sent without a body");
                r.notes.push(how.clone());
                if let Some(item) = r.item.and_then(|i| report.items.get_mut(i)) {
                    if matches!(item.outcome, Outcome::Converted) {
                        item.outcome = Outcome::Approximated(how);
                    }
                }
            }
        }
    }

    /// Applies the overrides, defines what nothing defines, writes the YAML and checks it with
    /// herd's parser.
    pub fn finish(
        mut self,
        options: &ImportOptions,
        report: &mut Report,
    ) -> Result<String, ImportError> {
        if self.requests().next().is_none() {
            return Err(ImportError::NoRequest(format!(
                "the {} file has no HTTP request herd can send (see the report: {} elements \
                 skipped)",
                self.source,
                report.counts().2
            )));
        }
        let target = match (&options.target, &self.target) {
            (Some(t), _) | (None, Some(t)) => t.trim_end_matches('/').to_string(),
            (None, None) => {
                return Err(ImportError::NoHost {
                    path: format!("the {} file", self.source),
                })
            }
        };
        let agents = options.agents.or(self.agents).unwrap_or(1).max(1);
        let mut overrides = options.clone();
        if self.vus_share.is_some() {
            overrides.vus = self.vus_share;
        }
        override_load(&mut self.load, &mut self.load_notes, &overrides);
        for s in &mut self.scenarios {
            let mut overrides = options.clone();
            if s.vus_share.is_some() {
                overrides.vus = s.vus_share;
            }
            override_load(&mut s.load, &mut s.load_notes, &overrides);
        }
        self.distinct_labels();
        self.define_missing(report);
        self.feeders.retain(|f| {
            let keep = !f.columns.is_empty();
            if !keep {
                report.warn(format!(
                    "feeder {}: no variable of the steps comes from it and its columns are \
                     unknown: left out",
                    f.name
                ));
            }
            keep
        });
        for f in &mut self.feeders {
            if f.file.is_none() && f.rows.len() > 1 && f.rows.len() - 1 < agents as usize {
                let data: Vec<Vec<String>> = f.rows[1..].to_vec();
                while f.rows.len() - 1 < agents as usize {
                    let next = data[(f.rows.len() - 1) % data.len()].clone();
                    f.rows.push(next);
                }
                report.warn(format!(
                    "feeder {}: its rows were repeated to give each of the {agents} agents one",
                    f.name
                ));
            }
        }
        let text = yaml::emit(&self, &target, agents);
        let stub = Stub {
            feeders: &self.feeders,
            agents,
        };
        plan::from_yaml_str_with(&text, &stub)
            .map_err(|e| ImportError::InvalidPlan(format!("{e}\n--- plan ---\n{text}")))?;
        Ok(text)
    }

    /// Every variable the steps reference that nothing defines: a column of a feeder whose file
    /// was not read, or else an empty `vars` entry, with a warning.
    fn define_missing(&mut self, report: &mut Report) {
        let mut defined: BTreeSet<String> = self.vars.iter().map(|(n, _)| n.clone()).collect();
        for f in &self.feeders {
            defined.extend(f.columns.iter().cloned());
        }
        for r in self.requests() {
            defined.extend(r.extract.iter().map(|e| e.0.clone()));
        }
        defined.extend(BUILTINS.iter().map(|b| b.to_string()));
        let mut missing: Vec<String> = Vec::new();
        for r in self.requests() {
            let mut texts: Vec<&str> = vec![&r.path];
            texts.extend(r.headers.iter().map(|h| h.1.as_str()));
            texts.extend(r.body.as_deref());
            texts.extend(r.body_contains.iter().map(String::as_str));
            texts.extend(r.json_checks.iter().filter_map(|c| c.1.as_str()));
            for t in texts {
                if let Ok(t) = Template::parse(t) {
                    for v in t.vars() {
                        if !defined.contains(v) && !missing.iter().any(|m| m == v) {
                            missing.push(v.to_string());
                        }
                    }
                }
            }
        }
        if missing.is_empty() {
            return;
        }
        if let Some(f) = self.feeders.iter_mut().find(|f| !f.columns_known) {
            f.columns.extend(missing.iter().cloned());
            report.warn(format!(
                "feeder {}: its file was not read; the variables {} are taken to be its columns \
                 (its header row must name them)",
                f.name,
                missing.join(", ")
            ));
            return;
        }
        for m in &missing {
            self.vars.push((m.clone(), String::new()));
        }
        report.warn(format!(
            "variables not defined in the file (set by scripts or at run time?): {} — defined \
             empty in `vars`; give them values",
            missing.join(", ")
        ));
    }
}

/// Applies `--vus/--ramp/--hold` to one load (the plan's, or one scenario's with its share of
/// `--vus`), noting what replaced the file's.
fn override_load(load: &mut DraftLoad, load_notes: &mut Vec<String>, o: &ImportOptions) {
    if o.vus.is_none() && o.ramp.is_none() && o.hold.is_none() {
        return;
    }
    let mut said = Vec::new();
    match load {
        DraftLoad::Closed {
            stages,
            iterations,
            per_vu,
        } => {
            let peak = stages.iter().map(|s| s.1).max().unwrap_or(1);
            let first_ramp = stages
                .first()
                .filter(|s| s.1 > 0)
                .map_or(Duration::ZERO, |s| s.0);
            let total: Duration = stages.iter().map(|s| s.0).sum();
            let vus = o.vus.unwrap_or(peak).max(1);
            let ramp = o.ramp.unwrap_or(first_ramp);
            let hold = o.hold.unwrap_or(total.saturating_sub(first_ramp));
            if o.hold.is_some() {
                *iterations = None;
                *per_vu = None;
            }
            let DraftLoad::Closed { stages: s, .. } = DraftLoad::ramp_hold(vus, ramp, hold) else {
                return;
            };
            *stages = s;
            said.push(format!("{vus} VUs, ramp {}", crate::duration::format(ramp)));
        }
        DraftLoad::Open {
            start_rps,
            stages,
            max_in_flight,
        } => {
            if let Some(v) = o.vus {
                *max_in_flight = Some(v.max(1));
                said.push(format!("max_in_flight {v}"));
            }
            if o.ramp.is_some() || o.hold.is_some() {
                let rate = stages.iter().map(|s| s.1).fold(*start_rps, f64::max);
                let first_ramp = stages.first().map_or(Duration::ZERO, |s| s.0);
                let total: Duration = stages.iter().map(|s| s.0).sum();
                let ramp = o.ramp.unwrap_or(first_ramp);
                let mut hold = o.hold.unwrap_or(total.saturating_sub(first_ramp));
                if hold.is_zero() {
                    hold = DEFAULT_HOLD;
                }
                *stages = Vec::new();
                if ramp.is_zero() {
                    *start_rps = rate;
                } else {
                    *start_rps = 0.0;
                    stages.push((ramp, rate));
                }
                stages.push((hold, rate));
            }
        }
    }
    load_notes.clear();
    load_notes.push(format!(
        "the file's load was replaced by --vus/--ramp/--hold ({})",
        said.join(", ")
    ));
}

/// Feeder and body files for the check of the written plan: a feeder's file has its columns
/// and one row per agent; a body file is empty (its content is read at `herd run`).
struct Stub<'a> {
    feeders: &'a [DraftFeeder],
    agents: u32,
}

impl PlanFiles for Stub<'_> {
    fn read(&self, path: &str, _limit: usize) -> Result<Vec<u8>, String> {
        let Some(f) = self
            .feeders
            .iter()
            .find(|f| f.file.as_deref() == Some(path))
        else {
            return Ok(Vec::new());
        };
        let mut csv = f.columns.join(",");
        csv.push('\n');
        for _ in 0..self.agents.max(1) {
            csv.push_str(&vec!["x"; f.columns.len()].join(","));
            csv.push('\n');
        }
        Ok(csv.into_bytes())
    }
}
