//! Several Taurus executions in one plan: each execution's draft becomes a scenario of the
//! merged plan (`scenarios:`), with its own load; `--vus` is split by their peaks' ratio, as DLT
//! splits thread groups.
//!
//! Why apart from `mod.rs`: these are pure functions of drafts, which the converter there calls
//! once per execution; they import nothing of it.

use crate::import::draft::{scenario_name, vus_share, Draft, DraftScenario};

/// Adds one execution's draft to the plan being merged: its scenario (or, for a JMeter script
/// with several thread groups, each of its scenarios), its variables and feeders.
pub(super) fn merge(merged: &mut Option<Draft>, draft: Draft, source_name: &str) {
    let plan = merged.get_or_insert_with(|| {
        let mut d = Draft::new(draft.source, &draft.name);
        d.target = draft.target.clone();
        d.agents = draft.agents;
        d.notes = draft.notes.clone();
        d
    });
    if plan.target.is_none() {
        plan.target = draft.target.clone();
    }
    for (n, v) in &draft.vars {
        plan.define(n, v);
    }
    for f in draft.feeders {
        if !plan.feeders.iter().any(|g| g.name == f.name) {
            plan.feeders.push(f);
        }
    }
    let add = |plan: &mut Draft, name: &str, scenario: DraftScenario| {
        let taken: Vec<String> = plan.scenarios.iter().map(|s| s.name.clone()).collect();
        plan.scenarios.push(DraftScenario {
            name: scenario_name(name, &taken),
            ..scenario
        });
    };
    if draft.scenarios.is_empty() {
        let scenario = DraftScenario {
            name: String::new(),
            load: draft.load,
            load_notes: draft.load_notes,
            steps: draft.steps,
            vus_share: None,
        };
        add(plan, source_name, scenario);
    } else {
        for s in draft.scenarios {
            let name = format!("{source_name}_{}", s.name);
            add(plan, &name, s);
        }
    }
}

/// Gives each scenario its share of `--vus` (`v`, the total), by the ratio of their peaks.
pub(super) fn split_vus(draft: &mut Draft, v: u32) {
    let peaks: Vec<u32> = draft
        .scenarios
        .iter()
        .map(|s| s.load.peak_vus().max(1))
        .collect();
    let total: u32 = peaks.iter().sum();
    for (s, peak) in draft.scenarios.iter_mut().zip(peaks) {
        s.vus_share = Some(vus_share(v, peak, total));
    }
}
