//! End-to-end: scenarios that branch, group, repeat and pace (`choose`, `group`, `repeat`, `if`,
//! `pace`), and thresholds that see checks, steps and groups — run by `herd run` with real agent
//! processes against a target that counts each path it receives.

use herd_e2e::scenario::ScenarioTarget;
use herd_e2e::{read_summary, run_plan, write_file, Herd};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a count, got {v}"))
}

/// Runs `herd run` on `plan` in `dir`; returns the exit code and the summary.
fn run(dir: &Path, plan: &str) -> (Option<i32>, Value) {
    let (out, summary) = run_plan(dir, plan, Duration::from_secs(120));
    (out.status.code(), summary)
}

#[test]
fn weighted_branches_groups_repeats_and_conditions_reach_the_target_as_planned() {
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = format!(
        r#"
version: 1
name: flow
target: {}
agents: 2
load: {{ vus: 8, iterations: 4000 }}
scenario:
  - group: browse
    steps:
      - choose:
          - weight: 3
            steps: [{{ name: a, get: /p/a }}]
          - weight: 1
            steps: [{{ name: b, get: /p/b }}]
  - repeat: 2
    steps: [{{ name: r, get: /p/r }}]
  - if: "${{status}} == 200 && ${{__iteration}} >= 0"
    then: [{{ name: yes, get: /p/yes }}]
    else: [{{ name: no, get: /p/no }}]
  - if: "${{status}} != 200"
    then: [{{ get: /p/never }}]
  - pace: 1ms
"#,
        target.url()
    );
    let (code, s) = run(dir.path(), &plan);
    assert_eq!(code, Some(0), "{s}");
    let seen = target.seen();
    let count = |route: &str| seen.by_route.get(route).copied().unwrap_or(0);
    let (a, b) = (count("GET /p/a"), count("GET /p/b"));

    assert_eq!(a + b, 4000, "one branch per iteration");
    let within = |n: u64, expected: f64| (n as f64 - expected).abs() <= expected * 0.05;
    assert!(
        within(a, 3000.0) && within(b, 1000.0),
        "3:1 by weight: {a}:{b}"
    );
    assert_eq!(count("GET /p/r"), 8000, "repeat: 2");
    assert_eq!(count("GET /p/yes"), 4000, "the last status was 200");
    assert_eq!(count("GET /p/no") + count("GET /p/never"), 0);

    assert_eq!(u(&s["requests"]), seen.total);
    assert_eq!(u(&s["steps"]["a"]["requests"]), a);
    assert_eq!(u(&s["steps"]["b"]["requests"]), b);
    assert_eq!(u(&s["steps"]["r"]["requests"]), 8000);
    assert_eq!(
        u(&s["groups"]["browse"]["requests"]),
        a + b,
        "a group counts its steps' requests"
    );
    assert!(
        s["steps"].get("group:browse").is_none(),
        "groups are listed apart"
    );
}

#[test]
fn pace_makes_each_iteration_last_at_least_its_duration() {
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // 2 VUs × 4 iterations, each paced to 400 ms: at least 1.2 s from first to last request.
    let plan = format!(
        r#"
version: 1
name: paced
target: {}
load: {{ vus: 2, iterations: 8 }}
scenario:
  - get: /p/paced
  - pace: 400ms
"#,
        target.url()
    );
    let (code, s) = run(dir.path(), &plan);
    assert_eq!(code, Some(0), "{s}");
    assert_eq!(target.seen().by_route["GET /p/paced"], 8);
    let secs = s["duration_s"].as_f64().expect("duration");
    assert!(secs >= 1.2, "4 paced iterations took only {secs}s");
}

/// A plan whose requests all succeed and whose `bad` step's checks all fail, with `thresholds`.
fn checks_plan(url: &str, thresholds: &str) -> String {
    format!(
        r#"
version: 1
name: checks
target: {url}
agents: 2
load: {{ vus: 2, iterations: 40 }}
scenario:
  - group: g
    steps:
      - name: good
        get: /page
        checks: {{ status: 200, body_contains: welcome }}
  - name: bad
    get: /page
    checks: {{ body_contains: goodbye }}
thresholds: {thresholds}
"#
    )
}

#[test]
fn a_run_whose_checks_fail_fails_on_a_checks_threshold_and_only_then() {
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, s) = run(dir.path(), &checks_plan(&target.url(), "[]"));
    assert_eq!(code, Some(0), "no threshold looks at checks: {s}");
    assert_eq!(u(&s["errors"]), 0);
    assert_eq!(u(&s["steps"]["bad"]["checks"]["failed"]), 40);

    let thresholds = r#"["checks > 99%", "checks{step:good} > 99%", "checks{step:bad} > 99%",
      "error_rate{group:g} < 1%", "requests{group:g} >= 40", "p99{step:bad} < 10s"]"#;
    let (code, s) = run(dir.path(), &checks_plan(&target.url(), thresholds));
    assert_eq!(code, Some(1), "{s}");
    let results: Vec<(String, bool, f64)> = s["thresholds"]
        .as_array()
        .expect("thresholds")
        .iter()
        .map(|t| {
            (
                t["expr"].as_str().expect("expr").to_string(),
                t["passed"].as_bool().expect("passed"),
                t["actual"].as_f64().expect("actual"),
            )
        })
        .collect();
    let expect = [
        // 80 checks passed of `good` (status and body) and 40 failed of `bad`.
        ("checks > 99%", false, 200.0 / 3.0),
        ("checks{step:good} > 99%", true, 100.0),
        ("checks{step:bad} > 99%", false, 0.0),
        ("error_rate{group:g} < 1%", true, 0.0),
        ("requests{group:g} >= 40", true, 40.0),
    ];
    for (i, (expr, passed, actual)) in expect.iter().enumerate() {
        assert_eq!(&results[i].0, expr);
        assert_eq!(results[i].1, *passed, "{expr}: {results:?}");
        assert!((results[i].2 - actual).abs() < 0.01, "{expr}: {results:?}");
    }
    assert!(
        results[5].1,
        "a latency threshold of one step passes on its own"
    );

    // `herd validate` says what each threshold applies to.
    let out = Herd::new(
        [
            "validate",
            dir.path().join("plan.yaml").to_str().expect("utf8"),
        ],
        dir.path(),
    )
    .run(Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for line in [
        "threshold \"checks > 99%\" applies to the whole run",
        "threshold \"checks{step:bad} > 99%\" applies to step \"bad\"",
        "threshold \"error_rate{group:g} < 1%\" applies to group \"g\"",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
}

#[test]
fn command_line_overrides_replace_the_load_and_env_values_reach_requests() {
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // The plan asks for 50 VUs over a minute; the command line makes it 3 VUs for 3 s, and the
    // path comes from `--env`.
    let plan = write_file(
        dir.path(),
        "plan.yaml",
        &format!(
            r#"
version: 1
name: overridden
target: {}
load:
  stages: [{{ duration: 1m, vus: 50 }}]
scenario:
  - name: env
    get: /p/${{env.HERD_E2E_PATH}}
  - think: 100ms
"#,
            target.url()
        ),
    );
    let json = dir.path().join("summary.json");
    let out = Herd::new(
        [
            "run",
            plan.to_str().expect("utf8"),
            "--vus",
            "3",
            "--duration",
            "3s",
            "--env",
            "HERD_E2E_PATH=from-env",
            "--set",
            "options.timeout=5s",
            "--json",
            json.to_str().expect("utf8"),
            "-q",
        ],
        dir.path(),
    )
    .run(Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = read_summary(&json);
    let seen = target.seen();
    assert_eq!(u(&s["requests"]), seen.total);
    assert_eq!(seen.by_route["GET /p/from-env"], seen.total);
    // 3 VUs, each about 10 iterations a second, for 3 s: about 90 (50 VUs would be ~1,500).
    assert!((40..=140).contains(&seen.total), "{} requests", seen.total);
    let secs = s["duration_s"].as_f64().expect("duration");
    assert!((2.5..5.0).contains(&secs), "ran {secs}s");
    assert_eq!(
        s["overrides"],
        serde_json::json!([
            "vus=3",
            "duration=3s",
            "options.timeout=5s",
            "env HERD_E2E_PATH"
        ])
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("overridden  vus=3, duration=3s"),
        "the table shows what was overridden"
    );

    // Without the value, the plan is invalid and names the field.
    let out = Herd::new(["validate", plan.to_str().expect("utf8")], dir.path())
        .run(Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("scenario[0].get: ${env.HERD_E2E_PATH}: HERD_E2E_PATH is not set"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
