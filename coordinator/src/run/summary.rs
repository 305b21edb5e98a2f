//! Turning a run's aggregates into its [`Summary`], thresholds included.
//!
//! Every figure comes from the aggregator's merged data: whole-run percentiles from the merge of
//! every frame's histogram, never from averaging per-second or per-agent percentiles.

use super::agents::Agents;
use crate::aggregate::{MergedStats, Totals};
use crate::store::AgentGap;
use herd_protocol::plan::{
    Metric, Plan, Selector, Threshold, GROUP_KEY_PREFIX, REGION_KEY_PREFIX, SCENARIO_KEY_PREFIX,
};
use herd_protocol::summary::{
    AgentSummary, Bottleneck, Gap, RunState, SecondSummary, ShareMoved, Summary, ThresholdResult,
    Verdict,
};
use herd_protocol::RunId;
use std::collections::BTreeMap;

/// What the summary is made of.
pub struct SummaryInput<'a> {
    /// The run.
    pub run: &'a RunId,
    /// Its plan.
    pub plan: &'a Plan,
    /// How it ended.
    pub state: RunState,
    /// Why it did not complete as planned, if it did not.
    pub reason: Option<String>,
    /// Whole-run merged data.
    pub totals: &'a Totals,
    /// Every second, in order.
    pub seconds: Vec<SecondSummary>,
    /// The agents.
    pub agents: &'a Agents,
    /// When the load ended (ms since the Unix epoch): the last agent's "finished".
    pub end_ms: u64,
    /// The start time agents were given (ms since the Unix epoch), if the load started.
    pub start_at_ms: Option<u64>,
    /// How far ahead of it the start command went out (ms).
    pub start_lead_ms: u64,
}

/// Builds the summary.
pub fn build(input: SummaryInput<'_>) -> Summary {
    let start_ms = input.agents.first_start_us().map(|us| us / 1000);
    let duration_s = start_ms.map_or(0.0, |s| input.end_ms.saturating_sub(s) as f64 / 1000.0);
    let all = &input.totals.all;
    let thresholds: Vec<ThresholdResult> = input
        .plan
        .thresholds
        .iter()
        .map(|t| evaluate(t, select(t, input.totals), duration_s))
        .collect();
    let status = match input.state {
        RunState::Completed if thresholds.iter().all(|t| t.passed) => Verdict::Passed,
        RunState::Completed => Verdict::Failed,
        _ => Verdict::Error,
    };
    let step = |s: &MergedStats| s.to_step_summary(duration_s);
    let (mut steps, mut groups, mut regions) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut scenarios = BTreeMap::new();
    for (label, s) in &input.totals.steps {
        if let Some(region) = label.strip_prefix(REGION_KEY_PREFIX) {
            regions.insert(region.to_string(), step(s));
            continue;
        }
        if let Some(scenario) = label.strip_prefix(SCENARIO_KEY_PREFIX) {
            scenarios.insert(scenario.to_string(), step(s));
            continue;
        }
        match label.strip_prefix(GROUP_KEY_PREFIX) {
            Some(group) => groups.insert(group.to_string(), step(s)),
            None => steps.insert(label.clone(), step(s)),
        };
    }
    let agents = input
        .agents
        .0
        .iter()
        .map(|(id, a)| {
            let (requests, errors) = input.totals.per_agent.get(id).copied().unwrap_or((0, 0));
            AgentSummary {
                id: id.to_string(),
                pid: a.pid,
                requests,
                errors,
                lost: a.lost.is_some(),
                gaps: a
                    .gaps
                    .iter()
                    .map(|g| gap(g, input.start_at_ms.unwrap_or(g.lost_at_ms)))
                    .collect(),
            }
        })
        .collect();
    let whole = step(all);
    let base = input.totals.first_second.unwrap_or(0);
    let base = start_ms.map_or(base, |ms| base.min(ms / 1000));
    let bottlenecks = group_bottlenecks(input.totals.bottlenecks.iter().map(
        |(second, agent, health)| Bottleneck {
            t: second.saturating_sub(base),
            last_t: second.saturating_sub(base),
            seconds: 1,
            agent: agent.to_string(),
            cpu_percent: health.cpu_percent,
            loop_lag_ms: health.loop_lag_ms,
        },
    ));
    Summary {
        run_id: input.run.to_string(),
        name: input.plan.name.clone(),
        status,
        run_state: input.state,
        reason: input.reason,
        requests: whole.requests,
        errors: whole.errors,
        error_rate: error_rate(all),
        rps: whole.rps,
        duration_s: round3(duration_s),
        latency_ms: whole.latency_ms,
        service_latency_ms: whole.service_latency_ms,
        dropped: input.totals.dropped,
        checks: whole.checks,
        bottlenecks,
        status_codes: whole.status_codes,
        error_kinds: whole.error_kinds,
        steps,
        groups,
        regions,
        agents,
        start_skew_ms: input.agents.start_skew_ms(),
        start_late_ms: input
            .start_at_ms
            .map_or(0.0, |at| input.agents.start_late_ms(at)),
        start_lead_ms: input.start_lead_ms as f64,
        thresholds,
        seconds: input.seconds,
        lost_agents: input
            .agents
            .lost()
            .into_iter()
            .map(|(id, _)| id.to_string())
            .collect(),
        overrides: Vec::new(),
        outputs: Vec::new(),
        scenarios,
        setup: None,
        teardown: None,
    }
}

/// One entry per agent: its first and last bottleneck second, how many, and the worst figures.
/// (The seconds themselves are in the stored seconds.)
pub fn group_bottlenecks(each: impl Iterator<Item = Bottleneck>) -> Vec<Bottleneck> {
    let mut by_agent: std::collections::BTreeMap<String, Bottleneck> = Default::default();
    for b in each {
        match by_agent.get_mut(&b.agent) {
            None => {
                by_agent.insert(b.agent.clone(), b);
            }
            Some(g) => {
                g.t = g.t.min(b.t);
                g.last_t = g.last_t.max(b.last_t);
                g.seconds += b.seconds;
                g.cpu_percent = g.cpu_percent.max(b.cpu_percent);
                g.loop_lag_ms = g.loop_lag_ms.max(b.loop_lag_ms);
            }
        }
    }
    let mut grouped: Vec<Bottleneck> = by_agent.into_values().collect();
    grouped.sort_by(|a, b| b.seconds.cmp(&a.seconds).then(a.t.cmp(&b.t)));
    grouped
}

/// A gap, in seconds since the load's start.
fn gap(g: &AgentGap, start_ms: u64) -> Gap {
    let rel = |ms: u64| round3((ms as f64 - start_ms as f64) / 1000.0);
    Gap {
        silent_from_s: rel(g.silent_from_ms),
        lost_at_s: rel(g.lost_at_ms),
        back_at_s: g.back_at_ms.map(rel),
        reason: g.reason.clone(),
        share: g.share.as_ref().map(|m| ShareMoved {
            action: m.action.clone(),
            at_s: rel(m.at_ms),
            to: m.to.iter().map(ToString::to_string).collect(),
            redistributed_at_s: m.interim_at_ms.map(rel),
            note: m.note.clone(),
        }),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn error_rate(s: &MergedStats) -> f64 {
    if s.requests == 0 {
        0.0
    } else {
        round3(s.errors as f64 * 100.0 / s.requests as f64)
    }
}

/// The merged data a threshold measures: its step's, its group's, or the whole run's. A step or
/// group that never ran has nothing (`None`), and its threshold fails.
fn select<'a>(t: &Threshold, totals: &'a Totals) -> Option<&'a MergedStats> {
    match &t.selector {
        None => Some(&totals.all),
        Some(Selector::Step(label)) => totals.steps.get(label),
        Some(Selector::Group(name)) => totals.steps.get(&format!("{GROUP_KEY_PREFIX}{name}")),
    }
}

/// Evaluates one threshold on the data it selects. A latency threshold with no response to
/// measure fails: "p99 < 1s" must not pass a run that never got an answer; so does a `checks`
/// threshold without a check, and any threshold on a step or group that never ran.
pub fn evaluate(t: &Threshold, selected: Option<&MergedStats>, duration_s: f64) -> ThresholdResult {
    let Some(all) = selected else {
        return ThresholdResult {
            expr: t.expr.clone(),
            applies_to: t.applies_to(),
            actual: 0.0,
            passed: false,
        };
    };
    let h = &all.latency;
    let latency = |v: f64| (!h.is_empty()).then_some(herd_protocol::histogram::us_to_ms(v));
    let actual = match t.metric {
        Metric::Percentile(p) => latency(h.value_at_quantile(p / 100.0) as f64),
        Metric::Min => latency(h.min() as f64),
        Metric::Mean => latency(h.mean()),
        Metric::Max => latency(h.max() as f64),
        Metric::ErrorRate => Some(error_rate(all)),
        Metric::Rps => Some(all.to_step_summary(duration_s).rps),
        Metric::Requests => Some(all.requests as f64),
        Metric::Errors => Some(all.errors as f64),
        Metric::Checks => {
            let c = all.checks;
            let n = c.passed + c.failed;
            (n > 0).then(|| c.passed as f64 * 100.0 / n as f64)
        }
    };
    ThresholdResult {
        expr: t.expr.clone(),
        applies_to: t.applies_to(),
        actual: actual.unwrap_or(0.0),
        passed: actual.is_some_and(|a| t.passes(a)),
    }
}
