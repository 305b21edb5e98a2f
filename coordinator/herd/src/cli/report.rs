//! The final summary table and the `--json` file.
//!
//! The table must stay readable with hundreds of agents: up to [`AGENTS_LISTED`] agents are
//! listed by name; beyond that they are shown as a distribution, naming only the ones that
//! matter (the lost, those with gaps, the slowest, the bottlenecks). Per-second and per-agent
//! detail is in `--json` and in the stored run.

use anyhow::Context as _;
use herd_protocol::histogram::LatencyMs;
use herd_protocol::summary::{AgentSummary, Summary};
use std::collections::BTreeMap;
use std::path::Path;

/// Prints the summary table on stdout.
pub fn print(s: &Summary) {
    let verdict = format!("{:?}", s.status).to_uppercase();
    println!();
    println!(
        "herd run {} — {}: {verdict} ({:?})",
        s.run_id, s.name, s.run_state
    );
    if let Some(reason) = &s.reason {
        println!("  reason      {reason}");
    }
    println!(
        "  requests    {}  ({:.1}/s over {:.1}s)   errors {} ({:.2}%)",
        s.requests, s.rps, s.duration_s, s.errors, s.error_rate
    );
    println!(
        "  {:<14} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "latency ms", "min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max", "requests"
    );
    println!("  {}", latency_row("all", &s.latency_ms, s.requests));
    for (label, step) in &s.steps {
        println!("  {}", latency_row(label, &step.latency_ms, step.requests));
    }
    for (name, group) in &s.groups {
        let label = format!("group {name}");
        println!(
            "  {}",
            latency_row(&label, &group.latency_ms, group.requests)
        );
    }
    for (name, region) in &s.regions {
        let label = format!("region {name}");
        println!(
            "  {}",
            latency_row(&label, &region.latency_ms, region.requests)
        );
    }
    for (name, scenario) in &s.scenarios {
        let label = format!("scenario {name}");
        println!(
            "  {}",
            latency_row(&label, &scenario.latency_ms, scenario.requests)
        );
    }
    if s.checks.passed + s.checks.failed > 0 {
        println!(
            "  checks      {} passed, {} failed",
            s.checks.passed, s.checks.failed
        );
    }
    for (name, phase) in [("setup", &s.setup), ("teardown", &s.teardown)] {
        if let Some(phase) = phase {
            println!("  {name:<11} {}", phase.line());
        }
    }
    println!("  status      {}", counts(&s.status_codes));
    if !s.error_kinds.is_empty() {
        println!("  error kinds {}", counts(&s.error_kinds));
    }
    for line in agent_lines(s) {
        println!("  {line}");
    }
    println!(
        "  start skew  {:.1} ms   last agent started {:.1} ms late (start sent {:.0} ms ahead)",
        s.start_skew_ms, s.start_late_ms, s.start_lead_ms
    );
    if !s.overrides.is_empty() {
        println!("  overridden  {}", s.overrides.join(", "));
    }
    for t in &s.thresholds {
        let mark = if t.passed { "pass" } else { "FAIL" };
        println!("  threshold   {mark}  {}  (actual {})", t.expr, t.actual);
    }
}

/// Up to this many agents are listed one by one.
const AGENTS_LISTED: usize = 10;
/// How many agents are named in a list of notable ones.
const NAMED: usize = 5;

/// The agents' lines of the table: each agent, or their distribution.
fn agent_lines(s: &Summary) -> Vec<String> {
    let mut lines = Vec::new();
    if s.agents.len() <= AGENTS_LISTED {
        let agents: Vec<String> = s
            .agents
            .iter()
            .map(|a| {
                let lost = if a.lost { " LOST" } else { "" };
                let gaps = match a.gaps.len() {
                    0 => String::new(),
                    n => format!(" ({n} gap{})", if n == 1 { "" } else { "s" }),
                };
                format!("{} {} req{lost}{gaps}", a.id, a.requests)
            })
            .collect();
        lines.push(format!("agents      {}", agents.join(", ")));
    } else {
        let mut requests: Vec<u64> = s.agents.iter().map(|a| a.requests).collect();
        requests.sort_unstable();
        let median = requests[requests.len() / 2];
        let lost = s.agents.iter().filter(|a| a.lost).count();
        lines.push(format!(
            "agents      {}   requests per agent min {} / median {} / max {}   lost {lost}",
            s.agents.len(),
            requests.first().copied().unwrap_or(0),
            median,
            requests.last().copied().unwrap_or(0),
        ));
        let mut slowest: Vec<&AgentSummary> = s.agents.iter().filter(|a| !a.lost).collect();
        slowest.sort_by_key(|a| (a.requests, a.id.clone()));
        lines.push(format!(
            "  slowest   {}",
            named(
                slowest
                    .iter()
                    .map(|a| format!("{} {} req", a.id, a.requests)),
                slowest.len()
            )
        ));
        let lost: Vec<&AgentSummary> = s.agents.iter().filter(|a| a.lost).collect();
        if !lost.is_empty() {
            lines.push(format!(
                "  lost      {}",
                named(
                    lost.iter().map(|a| format!("{} {} req", a.id, a.requests)),
                    lost.len()
                )
            ));
        }
    }
    let gapped: Vec<&AgentSummary> = s.agents.iter().filter(|a| !a.gaps.is_empty()).collect();
    if !gapped.is_empty() && s.agents.len() > AGENTS_LISTED {
        let each = gapped.iter().map(|a| {
            let back = a.gaps.iter().filter(|g| g.back_at_s.is_some()).count();
            format!("{} {}× silent, {back} back", a.id, a.gaps.len())
        });
        lines.push(format!("  gaps      {}", named(each, gapped.len())));
    }
    if !s.bottlenecks.is_empty() {
        let each = s.bottlenecks.iter().map(|b| {
            format!(
                "{} {} s (cpu {:.0}%, lag {:.0} ms)",
                b.agent, b.seconds, b.cpu_percent, b.loop_lag_ms
            )
        });
        lines.push(format!(
            "  own limit {} agent(s): {}",
            s.bottlenecks.len(),
            named(each, s.bottlenecks.len())
        ));
    }
    lines
}

/// The first few of `items`, and how many more there are.
fn named(items: impl Iterator<Item = String>, count: usize) -> String {
    let shown: Vec<String> = items.take(NAMED).collect();
    match count.saturating_sub(shown.len()) {
        0 => shown.join(", "),
        more => format!("{}, and {more} more", shown.join(", ")),
    }
}

fn latency_row(label: &str, l: &LatencyMs, requests: u64) -> String {
    let mut name = label.to_string();
    if name.chars().count() > 14 {
        name = name.chars().take(13).collect::<String>() + "…";
    }
    format!(
        "{name:<14} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {requests:>9}",
        l.min, l.mean, l.p50, l.p90, l.p95, l.p99, l.p999, l.max
    )
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "-".into();
    }
    let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    parts.join(", ")
}

/// Writes the summary as pretty JSON to `path` (`-` is stdout).
pub fn write_json(s: &Summary, path: &Path) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(s).context("cannot serialize the summary")?;
    if path == Path::new("-") {
        println!("{text}");
        return Ok(());
    }
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}
