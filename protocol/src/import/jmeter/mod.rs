//! JMeter test plans (`.jmx`) to herd plans.
//!
//! Why this shape: a JMX is a tree whose meaning depends on scope (a Header Manager applies to
//! the samplers beside it and below it), so the converter walks it with a scope, as JMeter does.
//! Several enabled thread groups become several scenarios (`scenarios:`), each with its own load;
//! `--vus` is then their total, split by the groups' ratio (as DLT does). Nothing unknown is
//! fatal: every element is reported.

mod props;
pub(super) mod rules;
pub(super) mod samplers;
mod scope;
mod thread_groups;
mod walk;

use super::draft::{scenario_name, vus_share, Draft, DraftLoad, DraftScenario, DraftStep};
use super::error::ImportError;
use super::options::{ImportFiles, ImportOptions};
use super::report::{Outcome, Report};
use super::text::{decode_text, Expr};
use super::xml;
use props::{arguments, element_prop, is_listener, El};
use scope::{Cx, Scope};
use std::collections::BTreeMap;
use thread_groups::{group_load, is_setup_or_teardown, is_thread_group};
use walk::join;

/// Converts a JMX file.
pub(super) fn convert(
    bytes: &[u8],
    options: &ImportOptions,
    files: &dyn ImportFiles,
    report: &mut Report,
) -> Result<Draft, ImportError> {
    let (text, warning) = decode_text(bytes);
    if let Some(w) = warning {
        report.warn(w);
    }
    let root = xml::parse(&text)?;
    if root.name != "jmeterTestPlan" {
        return Err(ImportError::Invalid(format!(
            "the root element is <{}>, not <jmeterTestPlan>",
            root.name
        )));
    }
    let top = root
        .children
        .iter()
        .find(|c| c.name == "hashTree")
        .ok_or_else(|| ImportError::Invalid("the test plan has no <hashTree>".into()))?;
    let top = El::list(top);
    let plan = top
        .iter()
        .find(|e| e.short_class() == "TestPlan")
        .ok_or_else(|| ImportError::Invalid("no TestPlan element".into()))?;
    let mut cx = Cx {
        expr: Expr::new(&options.set),
        report,
        files,
        vars: Vec::new(),
        feeders: Vec::new(),
        throughput: None,
        counter: 0,
        first_hostless: None,
    };
    let plan_path = plan.label();
    let mut notes = Vec::new();
    if let Some(udv) = element_prop(plan.node, "TestPlan.user_defined_variables") {
        for (name, value, _) in arguments(udv) {
            cx.define_var(name, value, &mut notes);
        }
    }
    if plan.bool("TestPlan.serialize_threadgroups") {
        notes.push("thread groups run one after another in JMeter".into());
    }
    cx.outcome(&plan_path, plan.class(), notes);
    let base = cx.scope(&plan.children, &Scope::default(), &plan_path);

    let groups: Vec<&El<'_>> = plan
        .children
        .iter()
        .filter(|e| is_thread_group(e))
        .collect();
    let mut loads = Vec::new();
    for g in &groups {
        let path = join(&plan_path, &g.label());
        if !g.enabled() {
            cx.skip_tree(g, &path, "disabled");
            continue;
        }
        match group_load(g, &mut cx.expr) {
            Some(load) => loads.push((*g, path, load)),
            None => cx.skip_tree(
                g,
                &path,
                "this kind of thread group is not supported by herd",
            ),
        }
    }
    let main_groups: Vec<usize> = (0..loads.len())
        .filter(|i| !is_setup_or_teardown(loads[*i].0))
        .collect();
    let candidates: Vec<usize> = if main_groups.is_empty() {
        (0..loads.len()).collect()
    } else {
        main_groups
    };
    // Groups that send HTTP requests come first: a group of other samplers converts to nothing.
    let with_http: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|i| walk_has_sampler(loads[*i].0))
        .collect();
    let candidates = if with_http.is_empty() {
        candidates
    } else {
        with_http
    };
    // Every candidate group becomes a scenario (one alone: the plan's single scenario).
    let chosen: Vec<usize> = candidates.clone();
    let total_peak: u32 = candidates.iter().map(|i| loads[*i].2.peak).sum();
    let several = chosen.len() > 1;
    let mut draft = Draft::new("JMeter", plan.name());
    let mut scenarios: Vec<DraftScenario> = Vec::new();
    for (i, (g, path, load)) in loads.iter().enumerate() {
        if !chosen.contains(&i) {
            let why = if is_setup_or_teardown(g) {
                "setUp/tearDown thread groups run once around the test; herd has no such phase"
            } else {
                "it sends no HTTP request"
            };
            cx.skip_tree(g, path, why);
            continue;
        }
        let item = cx.report.items.len();
        cx.report.converted(path, g.class());
        let mut steps: Vec<DraftStep> = Vec::new();
        cx.walk(&g.children, &base, path, &mut steps);
        let mut group_notes = load.notes.clone();
        let taken: Vec<String> = scenarios.iter().map(|s| s.name.clone()).collect();
        let name = scenario_name(g.name(), &taken);
        if several {
            group_notes.push(format!(
                "scenario {name} of the plan's {} (one per thread group, each with its own load)",
                chosen.len()
            ));
        }
        let mut part = None;
        if several {
            if let Some(v) = options.vus {
                let share = vus_share(v, load.peak, total_peak);
                part = Some(share);
                group_notes.push(format!(
                    "--vus {v} is the total of the thread groups: this one's share is {}",
                    share
                ));
            }
        }
        if !group_notes.is_empty() {
            cx.report.items[item].outcome = Outcome::Approximated(group_notes.join("; "));
        }
        let mut scenario = DraftScenario {
            name,
            load: load.load.clone(),
            load_notes: load.notes.clone(),
            steps,
            vus_share: part,
        };
        throughput(&mut cx, &mut scenario);
        scenarios.push(scenario);
    }
    for el in &plan.children {
        if !is_thread_group(el) && !is_listener(el) && el.enabled() && walk_has_sampler(el) {
            cx.skip_tree(
                el,
                &join(&plan_path, &el.label()),
                "outside any thread group",
            );
        }
    }
    if scenarios.is_empty() {
        return Err(ImportError::NoRequest(
            "the test plan has no enabled thread group herd can run".into(),
        ));
    }
    choose_target(&mut scenarios, options, &mut cx)?;
    if several {
        // A group whose every sampler went to another host (or was disabled) sends nothing.
        scenarios.retain(|s| {
            let keep = s.steps.iter().any(|s| matches!(s, DraftStep::Request(_)));
            if !keep {
                cx.report.warn(format!(
                    "thread group {}: no request of it is sent: no scenario for it",
                    s.name
                ));
            }
            keep
        });
    }
    let several = scenarios.len() > 1;
    if several {
        cx.report.warn(format!(
            "{} thread groups became {} scenarios, each with its own load: {}",
            scenarios.len(),
            scenarios.len(),
            scenarios
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if several {
        draft.scenarios = scenarios;
    } else if let Some(only) = scenarios.pop() {
        draft.load = only.load;
        draft.load_notes = only.load_notes;
        draft.steps = only.steps;
    }
    let Cx {
        expr,
        vars,
        feeders,
        ..
    } = cx;
    draft.vars = vars;
    for (name, value) in expr.fixed {
        draft.define(&name, &value);
    }
    draft.feeders = feeders;
    draft.feeders.extend(expr.generated);
    draft.target = options.target.clone().or(draft.target);
    if draft.target.is_none() {
        let all: Vec<DraftStep> = draft
            .requests()
            .cloned()
            .map(|r| DraftStep::Request(Box::new(r)))
            .collect();
        draft.target = target_of(&all);
    }
    Ok(draft)
}

fn walk_has_sampler(el: &El<'_>) -> bool {
    matches!(
        el.short_class(),
        "HTTPSamplerProxy" | "HTTPSampler" | "HTTPSampler2"
    ) || el.children.iter().any(walk_has_sampler)
}

fn target_of(steps: &[DraftStep]) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in steps {
        if let DraftStep::Request(r) = s {
            if let Some(o) = &r.origin {
                *counts.entry(o.as_str()).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .max_by_key(|(o, n)| (*n, std::cmp::Reverse(*o)))
        .map(|(o, _)| o.to_string())
}

/// A Constant Throughput Timer met while walking a thread group turns its load into an arrival
/// rate.
fn throughput(cx: &mut Cx<'_>, scenario: &mut DraftScenario) {
    let Some((per_min, mode, path, class, unit)) = cx.throughput.take() else {
        return;
    };
    let per_iteration = scenario
        .steps
        .iter()
        .filter(|s| matches!(s, DraftStep::Request(_)))
        .count()
        .max(1) as f64;
    let peak = scenario.load.peak_vus().max(1);
    let mut rate = per_min / 60.0 / per_iteration;
    if mode == "0" {
        rate *= f64::from(peak);
    }
    let duration = scenario.load.duration();
    scenario.load = DraftLoad::Open {
        start_rps: rate,
        stages: vec![(duration, rate)],
        max_in_flight: Some(peak),
    };
    cx.report.approx(
        &path,
        &class,
        format!(
            "{per_min} {unit} became an arrival rate of {rate:.3} iterations/s ({per_iteration} \
             requests per iteration), at most {peak} in flight"
        ),
    );
}

/// The plan's target: `--target`, else the most frequent origin of every scenario's requests;
/// requests to other hosts are left out (herd plans have one target), each named in the report.
fn choose_target(
    scenarios: &mut [DraftScenario],
    options: &ImportOptions,
    cx: &mut Cx<'_>,
) -> Result<(), ImportError> {
    if options.target.is_some() {
        return Ok(());
    }
    let all: Vec<DraftStep> = scenarios
        .iter()
        .flat_map(|s| s.steps.iter().cloned())
        .collect();
    let Some(target) = target_of(&all) else {
        if let Some(path) = &cx.first_hostless {
            return Err(ImportError::NoHost { path: path.clone() });
        }
        return Ok(());
    };
    for s in scenarios {
        s.steps.retain(|s| {
            let DraftStep::Request(r) = s else {
                return true;
            };
            match &r.origin {
                Some(o) if *o != target => {
                    if let Some(item) = r.item.and_then(|i| cx.report.items.get_mut(i)) {
                        item.outcome = Outcome::Skipped(format!(
                            "its host {o} is not the plan's target {target} (herd plans have \
                             one target; import with --target to send everything to one host)"
                        ));
                    }
                    false
                }
                _ => true,
            }
        });
    }
    // Think steps left before nothing are harmless; a plan of only pauses is caught later.
    Ok(())
}
