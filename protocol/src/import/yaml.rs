//! Writes a [`Draft`] as plan YAML, with `# comments` where the importer approximated.
//!
//! Why by hand: serde_yaml writes no comments, and the comments are the point (a user reads
//! the plan to see what changed). Every user string is written as a JSON string, which YAML
//! reads as a double-quoted scalar, so no value can change meaning (`yes`, `1e3`, `#`, `: `).

use super::draft::{Draft, DraftLoad, DraftStep, Req};
use crate::duration;
use std::fmt::Write as _;

/// A YAML double-quoted scalar.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn comments(out: &mut String, indent: &str, notes: &[String]) {
    for note in notes {
        for line in note.lines() {
            let _ = writeln!(out, "{indent}# {line}");
        }
    }
}

fn d(x: std::time::Duration) -> String {
    duration::format(x)
}

fn rps(x: f64) -> String {
    let r = (x * 1000.0).round() / 1000.0;
    serde_json::Number::from_f64(r).map_or_else(|| "0".into(), |n| n.to_string())
}

/// The plan's YAML text.
pub(crate) fn emit(draft: &Draft, target: &str, agents: u32) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Imported from {} by `herd import`: its report lists every element of the file as \
         converted, approximated or skipped.",
        draft.source
    );
    comments(&mut out, "", &draft.notes);
    let _ = writeln!(out, "version: 1");
    let _ = writeln!(out, "name: {}", q(&draft.name));
    let _ = writeln!(out, "target: {}", q(target));
    let _ = writeln!(out, "agents: {agents}");
    if draft.scenarios.is_empty() {
        let _ = writeln!(out, "load:");
        load(&mut out, "  ", &draft.load, &draft.load_notes);
    }
    if !draft.vars.is_empty() {
        let _ = writeln!(out, "vars:");
        for (name, value) in &draft.vars {
            let _ = writeln!(out, "  {}: {}", q(name), q(value));
        }
    }
    if !draft.feeders.is_empty() {
        let _ = writeln!(out, "feeders:");
        for f in &draft.feeders {
            comments(&mut out, "  ", f.note.as_slice());
            let mode = if f.per_vu { "per_vu" } else { "shared" };
            match &f.file {
                Some(file) => {
                    let _ = writeln!(
                        out,
                        "  {}: {{ file: {}, mode: {mode} }}",
                        q(&f.name),
                        q(file)
                    );
                }
                None => {
                    let _ = writeln!(out, "  {}:", q(&f.name));
                    let _ = writeln!(out, "    mode: {mode}");
                    let _ = writeln!(out, "    rows:");
                    for row in &f.rows {
                        let cells: Vec<String> = row.iter().map(|c| q(c)).collect();
                        let _ = writeln!(out, "      - [{}]", cells.join(", "));
                    }
                }
            }
        }
    }
    if draft.scenarios.is_empty() {
        let _ = writeln!(out, "scenario:");
        steps(&mut out, "  ", &draft.steps);
    } else {
        let _ = writeln!(out, "scenarios:");
        for sc in &draft.scenarios {
            let _ = writeln!(out, "  {}:", q(&sc.name));
            let _ = writeln!(out, "    load:");
            load(&mut out, "      ", &sc.load, &sc.load_notes);
            let _ = writeln!(out, "    steps:");
            steps(&mut out, "      ", &sc.steps);
        }
    }
    out
}

/// A list of steps, each line after `pad`.
fn steps(out: &mut String, pad: &str, steps: &[DraftStep]) {
    for step in steps {
        match step {
            DraftStep::Think { min, max, note } => {
                comments(out, pad, note.as_slice());
                if min == max {
                    let _ = writeln!(out, "{pad}- think: {}", d(*min));
                } else {
                    let _ = writeln!(out, "{pad}- think: {}..{}", d(*min), d(*max));
                }
            }
            DraftStep::Request(r) => request(out, pad, r),
        }
    }
}

/// A load (`load:`'s content), each line after `pad`.
fn load(out: &mut String, pad: &str, load: &DraftLoad, notes: &[String]) {
    comments(out, pad, notes);
    match load {
        DraftLoad::Closed {
            stages,
            iterations,
            per_vu,
        } => {
            let _ = writeln!(out, "{pad}stages:");
            for (duration, vus) in stages {
                let _ = writeln!(out, "{pad}  - {{ duration: {}, vus: {vus} }}", d(*duration));
            }
            if let Some(n) = iterations {
                let _ = writeln!(out, "{pad}iterations: {n}");
            }
            if let Some(n) = per_vu {
                let _ = writeln!(out, "{pad}iterations_per_vu: {n}");
            }
        }
        DraftLoad::Open {
            start_rps,
            stages,
            max_in_flight,
        } => {
            let _ = writeln!(out, "{pad}arrival:");
            for (duration, r) in stages {
                let _ = writeln!(
                    out,
                    "{pad}  - {{ duration: {}, rps: {} }}",
                    d(*duration),
                    rps(*r)
                );
            }
            if *start_rps > 0.0 {
                let _ = writeln!(out, "{pad}start_rps: {}", rps(*start_rps));
            }
            if let Some(m) = max_in_flight {
                let _ = writeln!(out, "{pad}max_in_flight: {m}");
            }
        }
    }
}

fn request(out: &mut String, pad: &str, r: &Req) {
    comments(out, pad, &r.notes);
    let mut first = true;
    let mut line = |out: &mut String, text: String| {
        let _ = writeln!(out, "{pad}{}{text}", if first { "- " } else { "  " });
        first = false;
    };
    if let Some(name) = &r.name {
        line(out, format!("name: {}", q(name)));
    }
    line(out, format!("{}: {}", r.method, q(&r.path)));
    if !r.headers.is_empty() {
        line(out, "headers:".into());
        for (k, v) in &r.headers {
            let _ = writeln!(out, "{pad}    {}: {}", q(k), q(v));
        }
    }
    if let Some(body) = &r.body {
        line(out, format!("body: {}", q(body)));
    } else if let Some(file) = &r.body_file {
        line(out, format!("body_file: {}", q(file)));
    }
    let has_checks = r.status.is_some()
        || r.max_latency.is_some()
        || !r.body_contains.is_empty()
        || !r.json_checks.is_empty();
    if has_checks {
        line(out, "checks:".into());
        if let Some(s) = r.status {
            let _ = writeln!(out, "{pad}    status: {s}");
        }
        if let Some(m) = r.max_latency {
            let _ = writeln!(out, "{pad}    max_latency: {}", d(m));
        }
        if !r.body_contains.is_empty() {
            let texts: Vec<String> = r.body_contains.iter().map(|t| q(t)).collect();
            let _ = writeln!(out, "{pad}    body_contains: [{}]", texts.join(", "));
        }
        if !r.json_checks.is_empty() {
            let _ = writeln!(out, "{pad}    json:");
            for (path, value) in &r.json_checks {
                let _ = writeln!(out, "{pad}      {}: {}", q(path), value);
            }
        }
    }
    if !r.extract.is_empty() {
        line(out, "extract:".into());
        for (var, kind, expr) in &r.extract {
            let _ = writeln!(out, "{pad}    {}: {{ {kind}: {} }}", q(var), q(expr));
        }
    }
}
