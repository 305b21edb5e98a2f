//! The summary of a finished run: what `herd run --json` writes, and what events and the API carry.

pub use crate::frame::Checks;
use crate::histogram::LatencyMs;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whole-run result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The run.
    pub run_id: String,
    /// The plan's name.
    pub name: String,
    /// `passed` (every threshold passed), `failed` (a threshold failed), or `error` (the run did
    /// not complete as planned: it failed, was cancelled, or lost an agent).
    pub status: Verdict,
    /// How the run ended.
    pub run_state: RunState,
    /// Why the run is `error`, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Requests sent (completed or failed).
    pub requests: u64,
    /// Requests that failed (transport error, or HTTP status >= 400).
    pub errors: u64,
    /// `errors / requests` in percent.
    pub error_rate: f64,
    /// Requests per second over the measured duration.
    pub rps: f64,
    /// Seconds from the first to the end of the last measured second.
    pub duration_s: f64,
    /// Latency over every response of the run (merged histograms); coordinated-omission
    /// corrected in the open model.
    pub latency_ms: LatencyMs,
    /// Service time (send to end of response) over every response of the run.
    #[serde(default)]
    pub service_latency_ms: LatencyMs,
    /// Open model: planned arrivals that could not start (see the frame's `dropped`).
    #[serde(default)]
    pub dropped: u64,
    /// Checks over the whole run.
    #[serde(default)]
    pub checks: Checks,
    /// Agents that were themselves the bottleneck (CPU near saturation or their event loop
    /// lagging) in some seconds, at most one entry per agent: figures of those seconds measure the
    /// agent as much as the target. The per-second detail stays in the stored seconds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bottlenecks: Vec<Bottleneck>,
    /// Responses by status code (as strings, as JSON keys are).
    pub status_codes: BTreeMap<String, u64>,
    /// Failures by kind.
    pub error_kinds: BTreeMap<String, u64>,
    /// The same figures per scenario step label.
    pub steps: BTreeMap<String, StepSummary>,
    /// The same figures per group (`group: NAME`): every request of the group's steps.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, StepSummary>,
    /// The same figures per region, when the plan placed its agents in regions (`regions:`):
    /// each region's agents' frames merged (percentiles from merged histograms); their requests
    /// add up to the run's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub regions: BTreeMap<String, StepSummary>,
    /// Per agent.
    pub agents: Vec<AgentSummary>,
    /// Spread of the agents' actual start times, in milliseconds.
    pub start_skew_ms: f64,
    /// How late the last agent actually started, after the start time it was given, in
    /// milliseconds (0 when every agent started on time).
    #[serde(default)]
    pub start_late_ms: f64,
    /// How far ahead of the start time the start command was sent, in milliseconds: chosen from
    /// how long agents' messages took to arrive while they got ready.
    #[serde(default)]
    pub start_lead_ms: f64,
    /// Each threshold and how it fared.
    pub thresholds: Vec<ThresholdResult>,
    /// Per second of the run.
    pub seconds: Vec<SecondSummary>,
    /// Agents lost during the run (their results up to the loss are kept).
    pub lost_agents: Vec<String>,
    /// What the command line changed in the plan (`vus=3`, `duration=3s`, `env NAME`; values
    /// given with `--env` are not shown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// What each of the run's outputs (`outputs:`, `herd.toml`'s `[[outputs]]`) pushed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputReport>,
    /// The same figures per scenario, when the plan has several (`scenarios:`): every request
    /// of the scenario, merged (percentiles from merged histograms); their requests add up to
    /// the run's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scenarios: BTreeMap<String, StepSummary>,
    /// What the plan's `setup:` did, when it has one (its requests are not in the figures above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<crate::once::PhaseSummary>,
    /// What the plan's `teardown:` did, when it has one (its requests are not in the figures
    /// above); `error` says why it failed or did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown: Option<crate::once::PhaseSummary>,
}

/// One output's pushes over a run: a push is one request carrying one or more seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputReport {
    /// `prometheus` or `otlp`.
    pub kind: String,
    /// Where it pushed.
    pub url: String,
    /// Requests the receiver accepted.
    pub pushed: u64,
    /// Requests that failed after their retries (their seconds are lost to that receiver).
    pub failed: u64,
    /// Seconds dropped because the output's queue was full (the receiver was too slow).
    pub dropped: u64,
    /// The last failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The verdict of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Completed, every threshold passed.
    Passed,
    /// Completed, a threshold failed.
    Failed,
    /// Did not complete as planned.
    Error,
}

/// The terminal states of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Every agent ran its share to the end.
    Completed,
    /// The run reached its end, but at least one agent was lost on the way.
    Degraded,
    /// The run could not start or could not finish.
    Failed,
    /// Stopped on request.
    Cancelled,
}

/// Per-step figures: the same shape as the whole run's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StepSummary {
    /// Requests of this step.
    pub requests: u64,
    /// Errors of this step.
    pub errors: u64,
    /// Requests per second of this step.
    pub rps: f64,
    /// Latency of this step.
    pub latency_ms: LatencyMs,
    /// Service time of this step.
    #[serde(default)]
    pub service_latency_ms: LatencyMs,
    /// Checks of this step.
    #[serde(default)]
    pub checks: Checks,
    /// Responses by status code.
    pub status_codes: BTreeMap<String, u64>,
    /// Failures by kind.
    pub error_kinds: BTreeMap<String, u64>,
}

/// Per-agent figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSummary {
    /// Agent id.
    pub id: String,
    /// Its OS process id, as it reported it.
    pub pid: Option<u32>,
    /// Requests it sent.
    pub requests: u64,
    /// Errors it saw.
    pub errors: u64,
    /// Whether it was lost during the run (and stayed lost: its data is incomplete).
    pub lost: bool,
    /// Times it fell silent for longer than the timeout and was declared lost, whether it was
    /// taken back afterwards or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
}

/// One episode of an agent's silence long enough to declare it lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// When the last message it sent before the silence was sent, in seconds since the load's
    /// start (negative: before the start).
    pub silent_from_s: f64,
    /// When it was declared lost, in seconds since the load's start.
    pub lost_at_s: f64,
    /// When it spoke again and was taken back, in seconds since the load's start; absent when it
    /// never did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back_at_s: Option<f64>,
    /// Why it was declared lost.
    pub reason: String,
    /// What became of its share of the load (`options.on_agent_loss`): absent when the loss
    /// came after the load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<ShareMoved>,
}

/// Where a lost agent's share of the load went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareMoved {
    /// The policy applied: `continue` (nobody took it over), `redistribute` (the surviving
    /// agents split the load), `replace` (a new agent took it), `abort` (the run ended).
    pub action: String,
    /// From when the new split held, in seconds since the load's start.
    pub at_s: f64,
    /// The agents that carried the load from then on, in index order; for `replace`, the new
    /// agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// `replace`: from when the surviving agents carried the share until the new agent took it
    /// (at `at_s`), in seconds since the load's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redistributed_at_s: Option<f64>,
    /// What did not go as the policy asked, e.g. `replace` falling back to `redistribute` when
    /// no new agent could be launched, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A threshold and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// The expression as written.
    pub expr: String,
    /// What it measured: `the whole run`, `step "login"`, `group "checkout"`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub applies_to: String,
    /// The measured figure, in the metric's unit.
    pub actual: f64,
    /// Whether it passed.
    pub passed: bool,
}

/// One second of the run, across agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecondSummary {
    /// Seconds since the run's start second (0 is the second the load started in).
    pub t: u64,
    /// Requests completed in that second.
    pub requests: u64,
    /// Errors in that second.
    pub errors: u64,
    /// Arrivals dropped in that second (open model).
    #[serde(default)]
    pub dropped: u64,
    /// Median latency of that second (merged across agents).
    pub p50_ms: f64,
    /// 99th percentile of that second (merged across agents).
    pub p99_ms: f64,
    /// Agents whose frame for that second arrived.
    pub agents_reported: u32,
    /// Agents that were expected to report it.
    pub agents_expected: u32,
    /// 90th percentile of that second (merged across agents). Absent from seconds stored by a
    /// herd that did not keep it, as are the fields below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_ms: Option<f64>,
    /// 99.9th percentile of that second (merged across agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p999_ms: Option<f64>,
    /// Virtual users running at the end of that second, summed over the agents that reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vus: Option<u64>,
    /// Responses of that second by HTTP status code.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub status_codes: BTreeMap<String, u64>,
    /// Failures of that second by kind (`timeout`, `connect`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_kinds: BTreeMap<String, u64>,
    /// The reporting agents' own health in that second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<SecondHealth>,
    /// The second per region, when the plan placed its agents in regions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub regions: BTreeMap<String, RegionSecond>,
    /// The second per scenario, when the plan has several (`scenarios:`), shaped like a
    /// region's part.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scenarios: BTreeMap<String, RegionSecond>,
}

/// One region's part of a second: its agents' frames merged.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct RegionSecond {
    /// Requests completed in that second by the region's agents.
    pub requests: u64,
    /// Errors among them.
    pub errors: u64,
    /// Median latency (from the region's merged histogram).
    pub p50_ms: f64,
    /// 99th percentile (from the region's merged histogram).
    pub p99_ms: f64,
}

/// The agents' own health in one second, across those that reported it: the worst CPU and
/// event-loop delay (an agent near saturation measures itself), and the work in flight.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SecondHealth {
    /// The highest CPU use of one agent, in percent of one core.
    pub cpu_max_percent: f64,
    /// The agent with that CPU use.
    pub cpu_max_agent: String,
    /// The longest event-loop delay of one agent, in ms.
    pub loop_lag_max_ms: f64,
    /// Iterations (open model) or busy virtual users (closed model) at the second's end, summed.
    pub in_flight: u64,
    /// How many agents were their own bottleneck in that second.
    pub bottlenecks: u32,
}

impl SecondHealth {
    /// Adds one agent's health in the second.
    pub fn add(&mut self, agent: &str, health: &crate::frame::Health) {
        if health.cpu_percent > self.cpu_max_percent || self.cpu_max_agent.is_empty() {
            self.cpu_max_percent = health.cpu_percent;
            self.cpu_max_agent = agent.to_string();
        }
        self.loop_lag_max_ms = self.loop_lag_max_ms.max(health.loop_lag_ms);
        self.in_flight = self.in_flight.saturating_add(u64::from(health.in_flight));
        self.bottlenecks = self
            .bottlenecks
            .saturating_add(u32::from(health.is_bottleneck()));
    }
}

/// The seconds in which one agent was the bottleneck.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bottleneck {
    /// The first such second, in seconds since the run's start second.
    pub t: u64,
    /// The last such second (equal to `t` for one second; older summaries do not have it).
    #[serde(default)]
    pub last_t: u64,
    /// How many seconds between `t` and `last_t` (both included) the agent was the bottleneck.
    #[serde(default = "one")]
    pub seconds: u64,
    /// The agent.
    pub agent: String,
    /// Its highest CPU use in those seconds, in percent of one core.
    pub cpu_percent: f64,
    /// Its longest event-loop delay in those seconds, in ms.
    pub loop_lag_ms: f64,
}

fn one() -> u64 {
    1
}

/// A live aggregate, published on [`crate::topics::live`] as each second is known, and the data
/// of each `second` event of `GET /api/v1/runs/{id}/live` (SSE). Its JSON Schema is
/// [`live_json_schema`] (`herd schema live`, `docs/live.schema.json`): other dashboards read
/// this, so fields are only ever added (optional), and a change of meaning takes a new `version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LiveMessage {
    /// Protocol version.
    #[serde(default = "crate::wire::current_version")]
    #[schemars(schema_with = "crate::command::version_schema")]
    pub version: u32,
    /// The run.
    pub run: String,
    /// The second, across agents.
    pub second: SecondSummary,
    /// Requests of the run so far.
    pub total_requests: u64,
    /// Errors of the run so far.
    pub total_errors: u64,
    /// When the second ended (ms since the Unix epoch): its delay is `now - second_end_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_end_ms: Option<u64>,
    /// SSE only: the second was read back from the store (a late viewer's or a reconnect's
    /// replay), so its delay says nothing about the live path.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    /// Live only (absent from replays and stored seconds): each reporting agent's own health in
    /// the second, highest CPU first, at most [`AgentHealth::LISTED`] of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<AgentHealth>,
}

/// One agent's own health in one second, as its frame told it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct AgentHealth {
    /// The agent.
    pub agent: String,
    /// Its CPU use, in percent of one core.
    pub cpu_percent: f64,
    /// Its event-loop delay, in ms.
    pub loop_lag_ms: f64,
    /// Its iterations (open model) or busy virtual users (closed model) at the second's end.
    pub in_flight: u32,
}

impl AgentHealth {
    /// How many agents a live message lists: a table a person reads, and a message that stays
    /// small at 10,000 agents (the worst ones are the ones worth seeing; the second's
    /// [`SecondHealth`] still covers all).
    pub const LISTED: usize = 32;

    /// Keeps `agent` in `list` if it is among the [`Self::LISTED`] highest CPU users so far.
    pub fn keep_worst(list: &mut Vec<AgentHealth>, agent: &str, health: &crate::frame::Health) {
        let entry = || AgentHealth {
            agent: agent.to_string(),
            cpu_percent: health.cpu_percent,
            loop_lag_ms: health.loop_lag_ms,
            in_flight: health.in_flight,
        };
        if list.len() < Self::LISTED {
            list.push(entry());
            return;
        }
        let least = list
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.cpu_percent.total_cmp(&b.1.cpu_percent))
            .map(|(i, h)| (i, h.cpu_percent));
        if let Some((i, cpu)) = least {
            if health.cpu_percent > cpu {
                list[i] = entry();
            }
        }
    }

    /// `list` ordered for reading: highest CPU first, then by agent.
    pub fn sorted(mut list: Vec<AgentHealth>) -> Vec<AgentHealth> {
        list.sort_by(|a, b| {
            b.cpu_percent
                .total_cmp(&a.cpu_percent)
                .then_with(|| a.agent.cmp(&b.agent))
        });
        list
    }
}

/// The JSON Schema (draft 2020-12) of [`LiveMessage`].
pub fn live_json_schema() -> serde_json::Value {
    schemars::schema_for!(LiveMessage).to_value()
}

#[cfg(test)]
mod live_schema_tests {
    use super::*;

    /// `docs/live.schema.json` is what [`live_json_schema`] generates; `HERD_BLESS=1` rewrites it.
    #[test]
    fn the_checked_in_live_schema_is_the_generated_one() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/live.schema.json");
        let generated = serde_json::to_string_pretty(&live_json_schema()).expect("schema") + "\n";
        if std::env::var_os("HERD_BLESS").is_some() {
            std::fs::write(&path, &generated).expect("write docs/live.schema.json");
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "{} is stale: regenerate it with `HERD_BLESS=1 cargo test -p herd-protocol live_schema`",
            path.display()
        );
    }

    #[test]
    fn old_live_messages_still_read_and_new_fields_are_left_out_when_unknown() {
        let old = serde_json::json!({"version": 1, "run": "r", "total_requests": 3, "total_errors": 0,
            "second": {"t": 0, "requests": 3, "errors": 0, "dropped": 0, "p50_ms": 1.0, "p99_ms": 2.0,
                "agents_reported": 1, "agents_expected": 1}});
        let m: LiveMessage = serde_json::from_value(old.clone()).expect("an old message reads");
        assert_eq!(
            (
                m.second.p90_ms,
                m.second.health.clone(),
                m.replayed,
                m.agents.len()
            ),
            (None, None, false, 0)
        );
        assert_eq!(
            serde_json::to_value(&m).expect("json"),
            old,
            "absent stays absent"
        );
    }
}

#[cfg(test)]
mod agent_health_tests {
    use super::AgentHealth;
    use crate::frame::Health;

    #[test]
    fn the_list_keeps_the_highest_cpu_agents_and_no_more() {
        let mut list = Vec::new();
        for i in 0..100u32 {
            // CPU 0..99 in a scrambled order.
            let cpu = f64::from((i * 37) % 100);
            let health = Health {
                cpu_percent: cpu,
                loop_lag_ms: 0.5,
                in_flight: i,
                ..Health::default()
            };
            AgentHealth::keep_worst(&mut list, &format!("agent-{i}"), &health);
        }
        let list = AgentHealth::sorted(list);
        assert_eq!(list.len(), AgentHealth::LISTED);
        let cpus: Vec<f64> = list.iter().map(|h| h.cpu_percent).collect();
        let want: Vec<f64> = (0..AgentHealth::LISTED as u32)
            .map(|k| f64::from(99 - k))
            .collect();
        assert_eq!(cpus, want);
        // The entry is the agent's own: agent-i has CPU (i * 37) % 100.
        for h in &list {
            let i: u32 = h.agent["agent-".len()..].parse().expect("index");
            assert_eq!((f64::from((i * 37) % 100), h.in_flight), (h.cpu_percent, i));
        }
    }
}
