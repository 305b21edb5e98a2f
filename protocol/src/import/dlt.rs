//! DLT (Distributed Load Testing on AWS) test definitions, the JSON body of its create-test API,
//! to herd plans: tasks become agents, tasks × concurrency the VUs, `ramp-up`/`hold-for` the
//! stages, the simple test's requests the steps, and the schedule herd's test `schedule`.
//!
//! Why: DLT users move over with their tests; a JMeter test in DLT hands its script to the
//! JMeter importer, with DLT's load in place of the script's (as DLT itself does).

use super::draft::{method_key, Draft, DraftLoad, DraftStep, Req};
use super::error::ImportError;
use super::har::parse_json;
use super::jmeter;
use super::jmeter::samplers::is_header_name;
use super::options::{ImportFiles, ImportOptions};
use super::report::Report;
use super::text::{decode_text, literal, split_url};
use serde_json::{json, Value};
use std::time::Duration;

/// A Taurus/DLT duration: `30s`, `1m`, `2h`, `1d`, `1h30m`, `500ms`, or a number of seconds.
pub(crate) fn duration(v: &Value) -> Option<Duration> {
    if let Some(n) = v.as_f64() {
        return (n >= 0.0).then(|| Duration::from_secs_f64(n));
    }
    let s = v.as_str()?.trim();
    if let Ok(n) = s.parse::<f64>() {
        return (n >= 0.0).then(|| Duration::from_secs_f64(n));
    }
    let mut total = 0.0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        let scale = match c {
            'd' => 86_400.0,
            'h' => 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        total += n * scale;
    }
    if !num.is_empty() {
        total += num.parse::<f64>().ok()?;
    }
    Some(Duration::from_secs_f64(total))
}

fn u32_of(v: Option<&Value>) -> Option<u32> {
    let v = v?;
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .map(|n| n.min(u64::from(u32::MAX)) as u32)
}

/// Converts a DLT test definition; the second value is its schedule, if any.
pub(super) fn convert(
    bytes: &[u8],
    options: &ImportOptions,
    files: &dyn ImportFiles,
    report: &mut Report,
) -> Result<(Draft, Option<Value>), ImportError> {
    let (text, warning) = decode_text(bytes);
    if let Some(w) = warning {
        report.warn(w);
    }
    let root = parse_json(&text)?;
    let name = root
        .get("testName")
        .and_then(Value::as_str)
        .unwrap_or("imported");
    let scenario = root.get("testScenario").unwrap_or(&Value::Null);
    let scenario = match scenario {
        Value::String(s) => parse_json(s)?,
        other => other.clone(),
    };
    let execution = scenario
        .pointer("/execution/0")
        .cloned()
        .unwrap_or(Value::Null);

    // Tasks and concurrency: per region, or (older tests) in the execution.
    let mut agents = 0u32;
    let mut vus = 0u32;
    let mut regions = Vec::new();
    for t in root
        .get("testTaskConfigs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let tasks = u32_of(t.get("taskCount")).unwrap_or(1);
        let conc = u32_of(t.get("concurrency")).unwrap_or(1);
        agents += tasks;
        vus += tasks * conc;
        regions.push(format!(
            "{} ({tasks} tasks × {conc})",
            t.get("region").and_then(Value::as_str).unwrap_or("?")
        ));
    }
    if agents == 0 {
        let tasks = u32_of(execution.get("taskCount"))
            .or(u32_of(root.get("taskCount")))
            .unwrap_or(1);
        let conc = u32_of(execution.get("concurrency")).unwrap_or(1);
        agents = tasks;
        vus = tasks * conc;
    }
    if regions.len() > 1 || !regions.is_empty() {
        report.approx(
            "testTaskConfigs",
            "testTaskConfigs",
            format!(
                "{}: herd has no regions; all {agents} tasks are agents running {vus} VUs in all",
                regions.join(", ")
            ),
        );
    } else {
        report.converted("testScenario.execution", "taskCount/concurrency");
    }
    let ramp = execution
        .get("ramp-up")
        .and_then(duration)
        .unwrap_or_default();
    let hold = execution
        .get("hold-for")
        .and_then(duration)
        .unwrap_or_default();
    report.converted("testScenario.execution[0]", "ramp-up/hold-for");
    let schedule = schedule(&root, report);
    for key in [
        "tags",
        "showLive",
        "healthyThreshold",
        "regionalTaskDetails",
    ] {
        if root.get(key).is_some() {
            report.skipped(
                key,
                key,
                "a DLT console setting, not part of a herd plan (tags belong to the stored test)",
            );
        }
    }

    let test_type = root
        .get("testType")
        .and_then(Value::as_str)
        .unwrap_or("simple");
    let scen_name = execution
        .get("scenario")
        .and_then(Value::as_str)
        .unwrap_or(name);
    let scen = scenario
        .pointer("/scenarios")
        .and_then(|s| {
            s.get(scen_name)
                .or_else(|| s.as_object().and_then(|m| m.values().next()))
        })
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(script) = scen.get("script").and_then(Value::as_str) {
        let path = format!("testScenario.scenarios.{scen_name}.script");
        if test_type != "jmeter" && !script.ends_with(".jmx") {
            return Err(ImportError::NoRequest(format!(
                "the {test_type} test runs the script {script}, which herd does not read"
            )));
        }
        let bytes = files.read(script).map_err(|e| {
            ImportError::NoRequest(format!(
                "the test runs the JMeter script {script}, which was not read ({e}): import \
                 {script} itself with --vus {vus} --ramp {} --hold {} --agents {agents}",
                crate::duration::format(ramp),
                crate::duration::format(hold)
            ))
        })?;
        report.approx(&path, "script", format!("handed over to the JMeter importer; DLT's load ({vus} VUs, ramp {}, hold {}) replaces the script's, as DLT does", crate::duration::format(ramp), crate::duration::format(hold)));
        let mut o = options.clone();
        o.vus = o.vus.or(Some(vus.max(1)));
        o.ramp = o.ramp.or(Some(ramp));
        o.hold = o.hold.or(Some(hold));
        o.agents = o.agents.or(Some(agents.max(1)));
        let mut draft = jmeter::convert(&bytes, &o, files, report)?;
        draft.source = "DLT (JMeter script)";
        draft.agents = Some(agents.max(1));
        let ramp_hold = DraftLoad::ramp_hold(vus.max(1), ramp, hold);
        draft.load = ramp_hold;
        draft.load_notes = vec![format!("DLT's load: {vus} VUs on {agents} tasks")];
        return Ok((draft, schedule));
    }

    let mut draft = Draft::new("DLT", name);
    draft.agents = Some(agents.max(1));
    draft.load = DraftLoad::ramp_hold(vus.max(1), ramp, hold);
    let requests = scen
        .get("requests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut target: Option<String> = options.target.clone();
    for (i, r) in requests.iter().enumerate() {
        let url = r.get("url").and_then(Value::as_str).unwrap_or_default();
        let method = r
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_ascii_uppercase();
        let path = format!("testScenario.scenarios.{scen_name}.requests[{i}] {method} {url}");
        let Some(u) = split_url(url) else {
            report.skipped(&path, "request", "not an http(s) URL");
            continue;
        };
        let origin = u.origin();
        if target.is_none() {
            target = Some(origin.clone());
        }
        if options.target.is_none() && target.as_deref() != Some(origin.as_str()) {
            report.skipped(
                &path,
                "request",
                "its host is not the plan's target (herd plans have one target)",
            );
            continue;
        }
        let Some(key) = method_key(&method) else {
            report.skipped(&path, "request", format!("herd does not send {method}"));
            continue;
        };
        let mut req = Req {
            method: key,
            path: literal(&u.path),
            ..Req::default()
        };
        if let Some(Value::Object(h)) = r.get("headers") {
            for (k, v) in h {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                if is_header_name(k) && !v.contains(['\r', '\n']) {
                    req.headers.push((k.clone(), literal(&v)));
                }
            }
        }
        match r.get("body") {
            Some(Value::String(b)) if !b.is_empty() && key != "get" && key != "head" => {
                req.body = Some(literal(b))
            }
            Some(Value::String(_)) | None | Some(Value::Null) => {}
            Some(other) if key != "get" && key != "head" => {
                req.body = Some(literal(&other.to_string()))
            }
            Some(_) => {}
        }
        report.converted(&path, "request");
        draft.steps.push(DraftStep::Request(Box::new(req)));
    }
    draft.target = target;
    Ok((draft, schedule))
}

/// DLT's schedule fields as herd's test `schedule`.
fn schedule(root: &Value, report: &mut Report) -> Option<Value> {
    let s = |k: &str| {
        root.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let tz = s("scheduleTimezone").unwrap_or("UTC");
    if let Some(cron) = s("cronValue") {
        let mut v = json!({"kind": "cron", "expr": cron, "tz": tz});
        if let Some(until) = s("cronExpiryDate") {
            v["until"] = json!(format!("{until}T23:59:59Z"));
        }
        report.converted("cronValue", "schedule");
        return Some(v);
    }
    let (date, time) = (s("scheduleDate")?, s("scheduleTime").unwrap_or("00:00"));
    let at = format!("{date}T{time}:00Z");
    if let Some(every) = s("recurrence") {
        report.converted("recurrence", "schedule");
        return Some(json!({"kind": "recurring", "every": every, "start": at, "tz": tz}));
    }
    if tz == "UTC" {
        report.converted("scheduleDate", "schedule");
    } else {
        report.approx(
            "scheduleDate",
            "schedule",
            format!("{date} {time} in {tz} is written as UTC: correct the offset"),
        );
    }
    Some(json!({"kind": "at", "at": at}))
}
