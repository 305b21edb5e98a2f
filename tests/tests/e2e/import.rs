//! End-to-end: `herd import` turns real JMeter, Taurus, HAR and DLT files (from public
//! repositories, `tests/fixtures/import/SOURCES.md`) into plans that `herd run` executes, and
//! herd's counts equal the target's, route by route; `POST /api/v1/import` answers the same plan.

use herd_e2e::service::Service;
use herd_e2e::{herd_bin, wait_with_limit, CountingTarget};
use herd_protocol::plan::{self, PlanFiles, Step};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn fixture(kind: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/import")
        .join(kind)
        .join(name)
}

/// Imports `file` against `target` with a short load; the plan's path, or why it did not import.
fn import(file: &Path, target: &str, dir: &Path) -> Result<PathBuf, String> {
    let plan = dir.join(format!(
        "{}.yaml",
        file.file_stem().and_then(|s| s.to_str()).unwrap_or("plan")
    ));
    let out = Command::new(herd_bin())
        .arg("import")
        .arg(file)
        .args([
            "--target", target, "--vus", "2", "--ramp", "0s", "--hold", "2s",
        ])
        .args(["--agents", "2", "-o"])
        .arg(&plan)
        .output()
        .expect("herd import");
    if !out.status.success() {
        return Err(format!(
            "did not import (exit {:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(plan)
}

/// Runs `plan` and returns herd's summary.
fn run(plan: &Path, dir: &Path) -> Result<serde_json::Value, String> {
    let json = dir.join("summary.json");
    let child = Command::new(herd_bin())
        .arg("run")
        .arg(plan)
        .arg("--json")
        .arg(&json)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("herd run");
    let out = wait_with_limit(child, Duration::from_secs(60));
    let text = std::fs::read_to_string(&json)
        .map_err(|_| format!("wrote no summary: {}", String::from_utf8_lossy(&out.stderr)))?;
    Ok(serde_json::from_str(&text).expect("summary JSON"))
}

/// Files an imported plan names (feeders), beside it.
struct Beside<'a>(&'a Path);

impl PlanFiles for Beside<'_> {
    fn read(&self, path: &str, _limit: usize) -> Result<Vec<u8>, String> {
        std::fs::read(self.0.join(path)).map_err(|e| e.to_string())
    }
}

/// The route (`METHOD /path`, as the target counts it) of each request step of `plan`, by
/// label, with the plan's `vars` put in (a variable an extraction or a feeder sets varies);
/// `None` when a label's path still holds a variable or two steps share a label with different
/// routes.
fn routes_by_label(plan: &Path) -> Option<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(plan).expect("plan file");
    let dir = plan.parent().expect("plan dir");
    let parsed = plan::from_yaml_str_with(&text, &Beside(dir)).expect("the imported plan parses");
    let mut varying: Vec<String> = parsed
        .feeders
        .iter()
        .flat_map(|f| f.rows.first().cloned().unwrap_or_default())
        .collect();
    for steps in parsed.all_steps() {
        plan::walk(steps, "scenario", &mut |_, step| {
            if let Step::Request(r) = step {
                varying.extend(r.extract.iter().map(|e| e.var.clone()));
            }
        });
    }
    let mut routes = BTreeMap::new();
    let mut clear = true;
    // Every scenario's steps (a file with several thread groups or executions has several).
    let all: Vec<Step> = parsed.all_steps().into_iter().flatten().cloned().collect();
    plan::walk(&all, "scenario", &mut |_, step| {
        if let Step::Request(r) = step {
            let mut path = r.path.split('?').next().unwrap_or_default().to_string();
            for (name, value) in &parsed.vars {
                if !varying.contains(name) {
                    path = path.replace(&format!("${{{name}}}"), value);
                }
            }
            let route = format!("{} {path}", r.method.as_str());
            clear &= !path.contains("${");
            if routes
                .insert(r.label.clone(), route.clone())
                .is_some_and(|old| old != route)
            {
                clear = false;
            }
        }
    });
    clear.then_some(routes)
}

/// What a fixture is expected to do, when it is not to run with exact counts per path.
enum Expect {
    /// Run, counted route by route.
    PerPath,
    /// Run with exact totals; a path holds a value set at run time (extracted, or a feeder's),
    /// so steps cannot be matched with paths ahead.
    TotalsOnly,
    /// `herd import` exits 2 with this in its message (a file without a request herd can send).
    ImportFails(&'static str),
    /// The plan names a data file its source repository does not ship: `herd run` refuses it,
    /// naming the file.
    NeedsData(&'static str),
}

fn expected(kind: &str, name: &str) -> Expect {
    match (kind, name) {
        ("jmeter", "IfController.jmx" | "dsl-test-plan.jmx") => Expect::TotalsOnly,
        ("jmeter", "recording-with-think-time.jmx" | "simple-http-request-test-plan.jmx") => {
            Expect::ImportFails("no request converted")
        }
        ("dlt", "jmeter-script.json") => {
            Expect::ImportFails("import build-web-test-plan.jmx itself")
        }
        ("jmeter", "build-adv-web-test-plan.jmx") => Expect::NeedsData("CHANGE_FOLDER/login.csv"),
        ("jmeter", "csvs.jmx") => Expect::NeedsData("tests/resources/test1.csv"),
        ("jmeter", "disabled.jmx") => Expect::NeedsData("not_found.csv"),
        ("taurus", "csv-usage.yml") => Expect::NeedsData("pages.csv"),
        _ => Expect::PerPath,
    }
}

/// Imports and runs one fixture; how it differs from what is expected, if it does.
fn check_fixture(kind: &str, name: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = CountingTarget::start();
    let imported = import(&fixture(kind, name), &target.url(), dir.path());
    let plan = match (expected(kind, name), imported) {
        (Expect::ImportFails(says), Err(e)) if e.contains(says) && e.contains("exit Some(2)") => {
            return Ok(())
        }
        (Expect::ImportFails(says), other) => {
            return Err(format!(
                "expected an import error with {says:?}, got {other:?}"
            ))
        }
        (_, imported) => imported?,
    };
    let run = run(&plan, dir.path());
    match (expected(kind, name), run) {
        (Expect::NeedsData(file), Err(e)) if e.contains(file) => Ok(()),
        (Expect::NeedsData(file), other) => {
            Err(format!("expected a refusal naming {file}, got {other:?}"))
        }
        (expect, run) => compare(&plan, &run?, &target, matches!(expect, Expect::PerPath)),
    }
}

/// Herd's counts against the target's: in all, by step, and (`per_path`) route by route.
fn compare(
    plan: &Path,
    summary: &serde_json::Value,
    target: &CountingTarget,
    per_path: bool,
) -> Result<(), String> {
    let requests = summary["requests"].as_u64().expect("requests");
    let received = target.received();
    if requests == 0 {
        return Err(format!("no request sent: {summary}"));
    }
    if requests != received.total {
        return Err(format!(
            "herd counted {requests}, the target {} ({:?})",
            received.total, received.by_route
        ));
    }
    let steps = summary["steps"].as_object().expect("steps");
    let sum: u64 = steps.values().filter_map(|s| s["requests"].as_u64()).sum();
    if sum != requests {
        return Err(format!("the steps add up to {sum}, not {requests}"));
    }
    // A plan of several scenarios breaks the run down per scenario too, adding up the same.
    if let Some(scenarios) = summary.get("scenarios").and_then(|s| s.as_object()) {
        let sum: u64 = scenarios
            .values()
            .filter_map(|s| s["requests"].as_u64())
            .sum();
        if sum != requests {
            return Err(format!("the scenarios add up to {sum}, not {requests}"));
        }
    }
    if !per_path {
        return match routes_by_label(plan) {
            Some(_) => Err("every path is known ahead: expect it per path".into()),
            None => Ok(()),
        };
    }
    // Route by route: herd's count per step is the target's count per path.
    let routes =
        routes_by_label(plan).ok_or("a step's path varies (a variable set at run time)")?;
    let mut herd_by_route: BTreeMap<String, u64> = BTreeMap::new();
    for (label, step) in steps {
        let route = routes
            .get(label)
            .ok_or(format!("no step labelled {label}"))?;
        *herd_by_route.entry(route.clone()).or_default() += step["requests"].as_u64().unwrap_or(0);
    }
    herd_by_route.retain(|_, n| *n > 0);
    if herd_by_route != received.by_route {
        return Err(format!(
            "per path, herd {herd_by_route:?} but the target {:?}",
            received.by_route
        ));
    }
    Ok(())
}

#[test]
fn every_fixture_imports_and_runs_with_the_targets_counts_per_path() {
    let mut all = Vec::new();
    for kind in ["jmeter", "taurus", "har", "dlt"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/import")
            .join(kind);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("fixture dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| {
                [".jmx", ".yml", ".json", ".har"]
                    .iter()
                    .any(|x| n.ends_with(x))
            })
            .collect();
        names.sort();
        all.extend(names.into_iter().map(|n| (kind, n)));
    }
    assert!(
        all.len() >= 16,
        "ten JMeter, three Taurus, three HAR files at least"
    );
    // Three at a time: each is a target and a herd run of its own, mostly waiting.
    let failed: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..3)
            .map(|w| {
                let mine: Vec<_> = all.iter().skip(w).step_by(3).collect();
                scope.spawn(move || {
                    mine.into_iter()
                        .filter_map(|(kind, name)| {
                            check_fixture(kind, name)
                                .err()
                                .map(|e| format!("{kind}/{name}: {e}"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    assert!(
        failed.is_empty(),
        "{} fixtures, failed:\n{}",
        all.len(),
        failed.join("\n")
    );
}

#[test]
fn the_api_converts_an_upload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Service::start(&dir.path().join("data"), &[]);
    let op = s.token("operator");
    let body = std::fs::read_to_string(fixture("taurus", "get-post.json")).expect("fixture");
    let (status, answer) = s.request_raw(
        "POST",
        "/api/v1/import?target=http://127.0.0.1:9&vus=3",
        Some(&op),
        &body,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["format"], "taurus", "{answer}");
    assert!(
        answer["plan"]
            .as_str()
            .is_some_and(|p| p.contains("target: \"http://127.0.0.1:9\"") && p.contains("vus: 3")),
        "{answer}"
    );
    assert!(
        answer["report"]["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty()),
        "{answer}"
    );
    let (status, answer) = s.request_raw("POST", "/api/v1/import", Some(&op), "<jmeterTestPlan");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["code"], "invalid", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("line 1, column 1")),
        "{answer}"
    );
}
