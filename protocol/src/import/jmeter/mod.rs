//! JMeter test plans (`.jmx`) to herd plans.
//!
//! Why this shape: a JMX is a tree whose meaning depends on scope (a Header Manager applies to
//! the samplers beside it and below it), so the converter walks it with a scope, as JMeter does.
//! herd plans have one scenario: of several thread groups, the largest becomes the plan and the
//! others are reported as skipped, each of their requests named (multi-scenario plans are a
//! later change). Nothing unknown is fatal: every element is reported.

mod props;
pub(super) mod rules;
pub(super) mod samplers;
mod scope;
mod thread_groups;
mod walk;

use super::draft::{Draft, DraftLoad, DraftStep};
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
    let chosen = candidates
        .iter()
        .copied()
        .max_by_key(|i| (loads[*i].2.peak, std::cmp::Reverse(*i)));
    let total_peak: u32 = candidates.iter().map(|i| loads[*i].2.peak).sum();
    let mut draft = Draft::new("JMeter", plan.name());
    let mut steps: Vec<DraftStep> = Vec::new();
    let original_vus = options.vus;
    let mut options = options.clone();
    for (i, (g, path, load)) in loads.iter().enumerate() {
        if Some(i) != chosen {
            let why = if is_setup_or_teardown(g) {
                "setUp/tearDown thread groups run once around the test; herd has no such phase"
                    .to_string()
            } else {
                format!(
                    "herd plans have one scenario: the largest thread group ({}) is converted; \
                     import this one on its own (multi-scenario plans are planned)",
                    chosen.map_or("none", |c| loads[c].0.name())
                )
            };
            cx.skip_tree(g, path, &why);
            continue;
        }
        let item = cx.report.items.len();
        cx.report.converted(path, g.class());
        cx.walk(&g.children, &base, path, &mut steps);
        let mut group_notes = load.notes.clone();
        if candidates.len() > 1 {
            if let Some(v) = options.vus {
                let share = ((f64::from(v) * f64::from(load.peak)) / f64::from(total_peak.max(1)))
                    .round() as u32;
                options.vus = Some(share.max(1));
                group_notes.push(format!(
                    "--vus {v} is the total of the thread groups: this one's share is {}",
                    share.max(1)
                ));
            }
        }
        if !group_notes.is_empty() {
            cx.report.items[item].outcome = Outcome::Approximated(group_notes.join("; "));
        }
        draft.load = load.load.clone();
        draft.load_notes = load.notes.clone();
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
    if chosen.is_none() {
        return Err(ImportError::NoRequest(
            "the test plan has no enabled thread group herd can run".into(),
        ));
    }
    if let Some((per_min, mode, path, class, unit)) = cx.throughput.take() {
        let per_iteration = steps
            .iter()
            .filter(|s| matches!(s, DraftStep::Request(_)))
            .count()
            .max(1) as f64;
        let peak = draft.load.peak_vus().max(1);
        let mut rate = per_min / 60.0 / per_iteration;
        if mode == "0" {
            rate *= f64::from(peak);
        }
        let duration = draft.load.duration();
        draft.load = DraftLoad::Open {
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
    if options.vus != original_vus {
        draft.vus_share = options.vus;
    }
    choose_target(&mut steps, &options, &mut cx)?;
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
    draft.steps = steps;
    draft.target = options.target.clone().or(draft.target);
    if draft.target.is_none() {
        draft.target = target_of(&draft.steps);
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

/// The plan's target: `--target`, else the most frequent origin; requests to other hosts are
/// left out (herd plans have one target), each named in the report.
fn choose_target(
    steps: &mut Vec<DraftStep>,
    options: &ImportOptions,
    cx: &mut Cx<'_>,
) -> Result<(), ImportError> {
    if options.target.is_some() {
        return Ok(());
    }
    let Some(target) = target_of(steps) else {
        if let Some(path) = &cx.first_hostless {
            return Err(ImportError::NoHost { path: path.clone() });
        }
        return Ok(());
    };
    steps.retain(|s| {
        let DraftStep::Request(r) = s else {
            return true;
        };
        match &r.origin {
            Some(o) if *o != target => {
                if let Some(item) = r.item.and_then(|i| cx.report.items.get_mut(i)) {
                    item.outcome = Outcome::Skipped(format!(
                        "its host {o} is not the plan's target {target} (herd plans have one \
                         target; import with --target to send everything to one host)"
                    ));
                }
                false
            }
            _ => true,
        }
    });
    // Think steps left before nothing are harmless; a plan of only pauses is caught later.
    Ok(())
}
