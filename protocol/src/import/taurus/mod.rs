//! Taurus configurations (YAML or JSON) to herd plans: each execution's load
//! (`concurrency`, `ramp-up`, `hold-for`, `iterations`, `steps`, `throughput`) and its scenario's
//! requests, headers, think times, variables, data sources, extractions and assertions, with
//! `transaction`/`loop`/`if`/`once` blocks and `include-scenario`. A scenario that runs a JMeter
//! `script:` is handed over to the JMeter importer, with the execution's load in place. Several
//! executions become several scenarios (`scenarios:`), one each, each with its own load.

mod executions;
mod requests;

use super::dlt::duration;
use super::draft::{Draft, DraftFeeder, DraftLoad, DraftStep, Req};
use super::error::ImportError;
use super::format::{detect, Format};
use super::jmeter;
use super::jmeter::samplers::{is_header_name, relative_file};
use super::options::{ImportFiles, ImportOptions};
use super::report::Report;
use super::text::{decode_text, split_url, var_name, Expr};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

fn parse(text: &str) -> Result<Value, ImportError> {
    serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        ImportError::Malformed {
            format: "YAML",
            line,
            column,
            message: e.to_string(),
        }
    })
}

pub(super) struct Cx<'a> {
    pub(super) expr: Expr<'a>,
    pub(super) report: &'a mut Report,
    pub(super) scenarios: Map<String, Value>,
    pub(super) target: Option<String>,
    /// `--target` was given: every request goes there, whatever host it names.
    pub(super) forced_target: bool,
    pub(super) counter: usize,
    pub(super) depth: usize,
}

/// Converts a Taurus configuration: one execution as the plan's scenario, several as one
/// scenario each (`scenarios:`), each with its own load; `--vus` is then their total, split by
/// their peaks' ratio.
pub(super) fn convert(
    bytes: &[u8],
    options: &ImportOptions,
    files: &dyn ImportFiles,
    report: &mut Report,
) -> Result<Draft, ImportError> {
    let (text, _) = decode_text(bytes);
    let root = parse(&text)?;
    let executions = match root.get("execution") {
        Some(Value::Array(a)) if a.len() > 1 => a.clone(),
        _ => return convert_one(bytes, options, files, report),
    };
    let mut merged: Option<Draft> = None;
    let mut first_error = None;
    let sub_options = ImportOptions {
        vus: None,
        ..options.clone()
    };
    for (i, exec) in executions.iter().enumerate() {
        let mut sub = root.clone();
        if let Value::Object(m) = &mut sub {
            m.insert("execution".into(), Value::Array(vec![exec.clone()]));
            if i > 0 {
                // Tool settings are reported once, with the first execution.
                for key in TOOL_KEYS {
                    m.remove(*key);
                }
            }
        }
        let mut sub_report = Report::default();
        let result = convert_one(
            sub.to_string().as_bytes(),
            &sub_options,
            files,
            &mut sub_report,
        );
        for mut item in sub_report.items {
            if let Some(rest) = item.path.strip_prefix("execution[0]") {
                item.path = format!("execution[{i}]{rest}");
            }
            report.items.push(item);
        }
        for w in sub_report.warnings {
            if !report.warnings.contains(&w) {
                report.warnings.push(w);
            }
        }
        let draft = match result {
            Ok(d) => d,
            Err(e) => {
                report.warn(format!("execution[{i}]: {e}: no scenario for it"));
                first_error.get_or_insert(e);
                continue;
            }
        };
        let source_name = match exec.get("scenario") {
            Some(Value::String(n)) => n.clone(),
            _ => format!("execution_{i}"),
        };
        executions::merge(&mut merged, draft, &source_name);
    }
    let Some(mut draft) = merged else {
        return Err(first_error
            .unwrap_or_else(|| ImportError::NoRequest("no execution has a request".into())));
    };
    if draft.scenarios.len() == 1 {
        if let Some(only) = draft.scenarios.pop() {
            draft.load = only.load;
            draft.load_notes = only.load_notes;
            draft.steps = only.steps;
        }
        return Ok(draft);
    }
    if let Some(v) = options.vus {
        executions::split_vus(&mut draft, v);
    }
    report.warn(format!(
        "{} executions became {} scenarios, each with its own load: {}",
        executions.len(),
        draft.scenarios.len(),
        draft
            .scenarios
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(draft)
}

/// Keys of a Taurus file that configure the tool, not the test.
const TOOL_KEYS: &[&str] = &[
    "modules",
    "services",
    "provisioning",
    "settings",
    "included-configs",
];

/// Converts a Taurus configuration's first execution.
fn convert_one(
    bytes: &[u8],
    options: &ImportOptions,
    files: &dyn ImportFiles,
    report: &mut Report,
) -> Result<Draft, ImportError> {
    let (text, warning) = decode_text(bytes);
    if let Some(w) = warning {
        report.warn(w);
    }
    let root = parse(&text)?;
    let scenarios = root
        .get("scenarios")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let executions: Vec<Value> = match root.get("execution") {
        Some(Value::Array(a)) => a.clone(),
        Some(v @ Value::Object(_)) => vec![v.clone()],
        _ => scenarios
            .keys()
            .take(1)
            .map(|k| Value::String(k.clone()))
            .map(|k| {
                let mut m = Map::new();
                m.insert("scenario".into(), k);
                Value::Object(m)
            })
            .collect(),
    };
    let Some(exec) = executions.first() else {
        return Err(ImportError::NoRequest(
            "no execution and no scenario".into(),
        ));
    };
    for (i, _) in executions.iter().enumerate().skip(1) {
        report.skipped(
            &format!("execution[{i}]"),
            "execution",
            "herd plans have one scenario: the first execution is converted",
        );
    }
    for key in TOOL_KEYS {
        let key = *key;
        if root.get(key).is_some() {
            report.skipped(
                key,
                key,
                "Taurus tool settings have no meaning in a herd plan",
            );
        }
    }
    let (scen_name, scen) = match exec.get("scenario") {
        Some(Value::String(n)) => (n.clone(), scenarios.get(n).cloned().unwrap_or(Value::Null)),
        Some(v @ Value::Object(_)) => ("scenario".to_string(), v.clone()),
        _ => ("scenario".into(), Value::Null),
    };
    let mut props: BTreeMap<String, String> = BTreeMap::new();
    if let Some(Value::Object(p)) = scen.get("properties") {
        for (k, v) in p {
            props.insert(k.clone(), scalar(v));
        }
    }
    props.extend(options.set.clone());
    let (load, load_notes) = load(exec);
    report.push(
        "execution[0]",
        "execution",
        if load_notes.is_empty() {
            super::report::Outcome::Converted
        } else {
            super::report::Outcome::Approximated(load_notes.join("; "))
        },
    );

    if let Some(script) = scen.get("script").and_then(Value::as_str) {
        let path = format!("scenarios.{scen_name}.script");
        let bytes = files.read(script).map_err(|e| {
            ImportError::NoRequest(format!("the scenario runs the script {script}, which was not read ({e}): import it directly"))
        })?;
        if detect(&bytes) != Format::Jmeter {
            return Err(ImportError::NoRequest(format!(
                "the scenario runs {script}, which is not a JMeter test plan"
            )));
        }
        report.approx(
            &path,
            "script",
            "handed over to the JMeter importer; the execution's load replaces the script's",
        );
        let mut o = options.clone();
        o.set = props;
        let exec_load = exec.get("concurrency").is_some()
            || exec.get("hold-for").is_some()
            || exec.get("ramp-up").is_some();
        let mut draft = jmeter::convert(&bytes, &o, files, report)?;
        if exec_load {
            draft.load = load;
            draft.load_notes =
                vec!["the execution's load replaces the script's (as Taurus does)".into()];
        }
        if let Some(Value::Object(h)) = scen.get("headers") {
            for step in &mut draft.steps {
                if let DraftStep::Request(r) = step {
                    for (k, v) in h {
                        r.default_header(k, &scalar(v));
                    }
                }
            }
        }
        draft.source = "Taurus (JMeter script)";
        return Ok(draft);
    }

    let mut cx = Cx {
        expr: Expr::new(&props),
        report,
        scenarios,
        target: scen
            .get("default-address")
            .and_then(Value::as_str)
            .and_then(split_url)
            .map(|u| u.origin()),
        forced_target: options.target.is_some(),
        counter: 0,
        depth: 0,
    };
    let mut draft = Draft::new("Taurus", &scen_name);
    draft.load = load;
    draft.load_notes = load_notes;
    if let Some(Value::Object(vars)) = scen.get("variables") {
        for (k, v) in vars {
            let value = scalar(v);
            let value = cx.expr.eval_static(&value).unwrap_or(value);
            cx.expr.statics.insert(k.clone(), value.clone());
            draft.define(&var_name(k), &value);
        }
        cx.report
            .converted(&format!("scenarios.{scen_name}.variables"), "variables");
    }
    for (i, ds) in scen
        .get("data-sources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("scenarios.{scen_name}.data-sources[{i}]");
        let (file, names) = match ds {
            Value::String(s) => (s.clone(), Vec::new()),
            Value::Object(m) => (
                m.get("path").map(scalar).unwrap_or_default(),
                m.get("variable-names")
                    .map(scalar)
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(var_name)
                    .collect(),
            ),
            _ => continue,
        };
        let file = cx.expr.eval_static(&file).unwrap_or(file);
        let mut notes = Vec::new();
        let rel = relative_file(&file, &mut notes);
        let mut f = DraftFeeder {
            name: var_name(
                rel.rsplit('/')
                    .next()
                    .unwrap_or("data")
                    .split('.')
                    .next()
                    .unwrap_or("data"),
            ),
            file: Some(rel.clone()),
            rows: Vec::new(),
            columns: names.clone(),
            columns_known: !names.is_empty(),
            per_vu: false,
            note: None,
        };
        match files.read(&rel) {
            Ok(bytes) => {
                let (t, _) = decode_text(&bytes);
                if let Ok(records) = crate::plan::parse_csv(&t) {
                    if names.is_empty() {
                        f.columns = records
                            .first()
                            .map(|h| h.iter().map(|c| var_name(c)).collect())
                            .unwrap_or_default();
                        f.columns_known = true;
                    } else if records.first() != Some(&names) {
                        let mut rows = vec![names.clone()];
                        rows.extend(records.into_iter().filter(|r| r.len() == names.len()));
                        f.file = None;
                        f.rows = rows;
                        notes.push("rows carried inline under the variable names".into());
                    }
                }
            }
            Err(e) => notes.push(format!("{rel} was not read ({e})")),
        }
        draft.feeders.push(f);
        if notes.is_empty() {
            cx.report.converted(&path, "data-sources")
        } else {
            cx.report.approx(&path, "data-sources", notes.join("; "))
        }
    }
    let mut base = Req::default();
    if let Some(Value::Object(h)) = scen.get("headers") {
        for (k, v) in h {
            if is_header_name(k) {
                let v = cx.expr.template(&scalar(v));
                base.headers.push((k.clone(), v));
            }
        }
    }
    let think = scen
        .get("think-time")
        .and_then(|t| think_time(t, &mut Vec::new()));
    for key in [
        "retrieve-resources",
        "store-cookie",
        "store-cache",
        "keepalive",
        "timeout",
        "follow-redirects",
    ] {
        if scen.get(key).is_some() {
            cx.report.approx(&format!("scenarios.{scen_name}.{key}"), key, "herd's own behaviour applies (options: redirects followed, no cache, a cookie jar per VU)");
        }
    }
    let requests = scen
        .get("requests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    cx.requests(
        &requests,
        &format!("scenarios.{scen_name}.requests"),
        &base,
        think,
        None,
        &mut draft,
    );
    let Cx { expr, target, .. } = cx;
    draft.target = options.target.clone().or(target);
    for (n, v) in expr.fixed {
        draft.define(&n, &v);
    }
    draft.feeders.extend(expr.generated);
    Ok(draft)
}

pub(super) fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The execution's load.
fn load(exec: &Value) -> (DraftLoad, Vec<String>) {
    let mut notes = Vec::new();
    let conc = exec
        .get("concurrency")
        .and_then(|c| {
            c.as_u64()
                .or_else(|| c.get("local").and_then(Value::as_u64))
        })
        .unwrap_or(1)
        .max(1) as u32;
    let ramp = exec.get("ramp-up").and_then(duration).unwrap_or_default();
    let hold = exec.get("hold-for").and_then(duration);
    let iterations = exec.get("iterations").and_then(Value::as_u64);
    let steps = exec.get("steps").and_then(Value::as_u64).unwrap_or(0) as u32;
    if exec.get("locations").is_some() {
        notes.push("locations are not separate in herd (use --agents)".into());
    }
    if let Some(rps) = exec
        .get("throughput")
        .and_then(Value::as_f64)
        .filter(|r| *r > 0.0)
    {
        notes.push(format!(
            "throughput {rps} requests/s became {rps} iterations/s, at most {conc} in flight"
        ));
        let hold = hold.unwrap_or(super::draft::DEFAULT_HOLD);
        let mut stages = Vec::new();
        if !ramp.is_zero() {
            stages.push((ramp, rps));
        }
        stages.push((
            if hold.is_zero() {
                super::draft::DEFAULT_HOLD
            } else {
                hold
            },
            rps,
        ));
        return (
            DraftLoad::Open {
                start_rps: if ramp.is_zero() { rps } else { 0.0 },
                stages,
                max_in_flight: Some(conc),
            },
            notes,
        );
    }
    let mut load = if steps > 1 && !ramp.is_zero() {
        let mut stages = Vec::new();
        for i in 1..=steps {
            let v = (conc * i).div_ceil(steps).max(1);
            stages.push((Duration::ZERO, v));
            stages.push((ramp / steps, v));
        }
        stages.push((
            hold.filter(|h| !h.is_zero())
                .unwrap_or(super::draft::DEFAULT_HOLD),
            conc,
        ));
        DraftLoad::Closed {
            stages,
            iterations: None,
            per_vu: None,
        }
    } else {
        DraftLoad::ramp_hold(conc, ramp, hold.unwrap_or_default())
    };
    if let DraftLoad::Closed {
        iterations: it,
        per_vu,
        ..
    } = &mut load
    {
        match (iterations, hold) {
            (Some(n), _) => {
                *per_vu = Some(n.min(u64::from(u32::MAX)) as u32);
                if hold.is_none() {
                    *it = Some(n * u64::from(conc));
                }
            }
            (None, None) => {
                *per_vu = Some(1);
                *it = Some(u64::from(conc));
                notes.push(
                    "no hold-for nor iterations: one iteration per VU, as Taurus does".into(),
                );
            }
            _ => {}
        }
    }
    (load, notes)
}

/// `500ms`, `2s`, `1.5` (seconds), `uniform(mean, dev)`, `gaussian(mean, dev)`, `poisson(mean, offset)`.
pub(super) fn think_time(v: &Value, notes: &mut Vec<String>) -> Option<(Duration, Duration)> {
    if let Some(s) = v.as_str() {
        if let Some((kind, rest)) = s.split_once('(') {
            let args: Vec<Duration> = rest
                .trim_end_matches(')')
                .split(',')
                .filter_map(|a| duration(&Value::String(a.trim().into())))
                .collect();
            let (a, b) = (
                args.first().copied()?,
                args.get(1).copied().unwrap_or_default(),
            );
            notes.push(format!("{} think time drawn uniformly", kind.trim()));
            return Some(match kind.trim() {
                "poisson" => (b, a + a.saturating_sub(b)),
                _ => (a.saturating_sub(b), a + b),
            });
        }
    }
    duration(v).map(|d| (d, d))
}
