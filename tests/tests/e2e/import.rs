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

/// Imports `file` against `target` with a short load; the plan's path.
fn import(file: &Path, target: &str, dir: &Path) -> PathBuf {
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
    assert!(
        out.status.success(),
        "{} did not import: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    plan
}

/// Runs `plan` and returns herd's summary.
fn run(plan: &Path, dir: &Path) -> serde_json::Value {
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
    let text = std::fs::read_to_string(&json).unwrap_or_else(|_| {
        panic!(
            "{} wrote no summary: {}",
            plan.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(&text).expect("summary JSON")
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
    plan::walk(&parsed.scenario, "scenario", &mut |_, step| {
        if let Step::Request(r) = step {
            varying.extend(r.extract.iter().map(|e| e.var.clone()));
        }
    });
    let mut routes = BTreeMap::new();
    let mut clear = true;
    plan::walk(&parsed.scenario, "scenario", &mut |_, step| {
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

#[test]
fn imported_plans_run_with_exact_counts() {
    for (kind, name) in [
        ("jmeter", "build-web-test-plan.jmx"),
        ("jmeter", "extractors.jmx"),
        ("jmeter", "TestHeaderManager.jmx"),
        ("taurus", "get-post.json"),
        ("taurus", "existing.yml"),
        ("har", "params.har"),
        ("har", "x-www-form-url-encoded.har"),
        ("dlt", "simple-get.json"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = CountingTarget::start();
        let plan = import(&fixture(kind, name), &target.url(), dir.path());
        let summary = run(&plan, dir.path());
        let requests = summary["requests"].as_u64().expect("requests");
        let received = target.received();
        assert!(requests > 0, "{kind}/{name}: no request sent: {summary}");
        assert_eq!(
            requests, received.total,
            "{kind}/{name}: herd's count is the target's ({:?})",
            received.by_route
        );
        let steps: u64 = summary["steps"]
            .as_object()
            .expect("steps")
            .values()
            .filter_map(|s| s["requests"].as_u64())
            .sum();
        assert_eq!(steps, requests, "{kind}/{name}: the steps add up");
        // Route by route: herd's count per step is the target's count per path.
        let routes = routes_by_label(&plan)
            .unwrap_or_else(|| panic!("{kind}/{name}: every step has a static path of its own"));
        let mut herd_by_route: BTreeMap<String, u64> = BTreeMap::new();
        for (label, step) in summary["steps"].as_object().expect("steps") {
            let route = routes
                .get(label)
                .unwrap_or_else(|| panic!("{kind}/{name}: no step labelled {label}"));
            *herd_by_route.entry(route.clone()).or_default() +=
                step["requests"].as_u64().unwrap_or(0);
        }
        herd_by_route.retain(|_, n| *n > 0);
        assert_eq!(
            herd_by_route, received.by_route,
            "{kind}/{name}: herd's count per step is the target's per path"
        );
    }
}

#[test]
fn a_file_without_requests_exits_2_naming_the_problem() {
    let out = Command::new(herd_bin())
        .arg("import")
        .arg(fixture("jmeter", "recording-with-think-time.jmx"))
        .output()
        .expect("herd import");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no request"), "{stderr}");
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
