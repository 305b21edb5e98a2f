//! The final summary table and the `--json` file.

use anyhow::Context as _;
use herd_protocol::histogram::LatencyMs;
use herd_protocol::summary::Summary;
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
    println!("  status      {}", counts(&s.status_codes));
    if !s.error_kinds.is_empty() {
        println!("  error kinds {}", counts(&s.error_kinds));
    }
    let agents: Vec<String> = s
        .agents
        .iter()
        .map(|a| {
            let lost = if a.lost { " LOST" } else { "" };
            format!("{} {} req{lost}", a.id, a.requests)
        })
        .collect();
    println!("  agents      {}", agents.join(", "));
    println!("  start skew  {:.1} ms", s.start_skew_ms);
    for t in &s.thresholds {
        let mark = if t.passed { "pass" } else { "FAIL" };
        println!("  threshold   {mark}  {}  (actual {})", t.expr, t.actual);
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
