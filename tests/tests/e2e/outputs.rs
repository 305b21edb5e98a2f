//! End-to-end: `herd run --out` and `herd report RUN --out` write JUnit and CSV that agree with the
//! summary and with what the target itself counted.

use herd_e2e::{read_summary, write_file, CountingTarget, Herd};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a count, got {v}"))
}

/// A CSV file as its header and rows of named fields.
fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("csv written");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), header.len(), "row {line:?}");
            header
                .iter()
                .zip(fields)
                .map(|(h, f)| (h.to_string(), f.to_string()))
                .collect()
        })
        .collect()
}

fn column_sum(rows: &[BTreeMap<String, String>], column: &str) -> u64 {
    rows.iter()
        .map(|r| r[column].parse::<u64>().expect("a count"))
        .sum()
}

/// Python's own XML parser (xml.etree) reads the JUnit file and prints what a CI reporter
/// counts: suites, cases, failures, and the failure's message.
fn junit_as_python_reads_it(path: &Path) -> Value {
    let script = r#"
import json, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
cases = [c for s in suites for c in s.findall("testcase")]
failures = [f for c in cases for f in c.findall("failure")]
print(json.dumps({
    "root": root.tag, "suites": len(suites), "cases": len(cases), "failures": len(failures),
    "messages": [f.get("message") for f in failures],
    "suite_tests": suites[0].get("tests"), "suite_failures": suites[0].get("failures"),
    "names": [c.get("name") for c in cases],
}))
"#;
    let out = Command::new("python3")
        .args(["-c", script, path.to_str().expect("utf8")])
        .output()
        .expect("python3 is needed to read the JUnit file with an independent parser");
    assert!(
        out.status.success(),
        "python could not parse the JUnit file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

#[test]
fn junit_and_csv_outputs_agree_with_the_summary_and_the_target() {
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = format!(
        r#"
version: 1
name: outputs
target: {}
agents: 2
load:
  start_rps: 40
  arrival:
    - {{ duration: 4s, rps: 40 }}
scenario:
  - name: ok
    get: /ok
  - name: bad
    get: /status/503
thresholds:
  - "p99 < 5s"
  - "error_rate < 1%"
"#,
        target.url()
    );
    let plan = write_file(dir.path(), "plan.yaml", &plan);
    let p = |name: &str| dir.path().join(name).to_str().expect("utf8").to_string();
    let out = Herd::new(
        [
            "run",
            plan.to_str().expect("utf8"),
            "-q",
            "--out",
            &format!("junit={},csv={}", p("junit.xml"), p("seconds.csv")),
            "--out",
            &format!("csv-steps={}", p("steps.csv")),
            "--out",
            &format!("json={}", p("summary.json")),
        ],
        dir.path(),
    )
    .run(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One threshold failed: exit 1.
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    let s = read_summary(&dir.path().join("summary.json"));
    let got = target.received();
    assert_eq!(u(&s["requests"]), got.total, "herd's count is the target's");
    assert!(got.total >= 300, "too little load: {}", got.total);

    // JUnit: one suite, two cases, one failure naming the expression and the actual value.
    let junit = junit_as_python_reads_it(&dir.path().join("junit.xml"));
    assert_eq!(junit["root"], "testsuites", "{junit}");
    assert_eq!(
        (
            u(&junit["suites"]),
            u(&junit["cases"]),
            u(&junit["failures"])
        ),
        (1, 2, 1),
        "{junit}"
    );
    assert_eq!(junit["suite_tests"], "2");
    assert_eq!(junit["suite_failures"], "1");
    let message = junit["messages"][0].as_str().expect("a failure message");
    let actual = s["thresholds"][1]["actual"].as_f64().expect("actual");
    assert!(
        message.starts_with("error_rate < 1%: actual ") && message.contains(&actual.to_string()),
        "{message} (actual {actual})"
    );

    // CSV: one row per second of the run, sums equal to the summary's and the target's counts.
    let rows = read_csv(&dir.path().join("seconds.csv"));
    let seconds = s["seconds"].as_array().expect("seconds");
    assert_eq!(rows.len(), seconds.len(), "a row per second of the run");
    assert!(
        (4..=5).contains(&rows.len()),
        "a 4 s run: {} rows",
        rows.len()
    );
    for (row, second) in rows.iter().zip(seconds) {
        assert_eq!(row["t"], second["t"].to_string());
        assert_eq!(row["requests"], second["requests"].to_string());
    }
    assert_eq!(column_sum(&rows, "requests"), u(&s["requests"]));
    assert_eq!(column_sum(&rows, "errors"), u(&s["errors"]));
    assert_eq!(column_sum(&rows, "status_2xx"), got.by_status[&200]);
    assert_eq!(column_sum(&rows, "status_5xx"), got.by_status[&503]);
    assert_eq!(column_sum(&rows, "no_response"), 0);
    let p99_max = rows
        .iter()
        .map(|r| r["p99_ms"].parse::<f64>().expect("ms"))
        .fold(0.0, f64::max);
    assert!(p99_max > 0.0 && p99_max <= s["latency_ms"]["max"].as_f64().expect("max"));

    // Per step: the same sums, per step, as the target counted per route.
    let steps = read_csv(&dir.path().join("steps.csv"));
    for (step, route) in [("ok", "GET /ok"), ("bad", "GET /status/503")] {
        let mine: Vec<_> = steps
            .iter()
            .filter(|r| r["step"] == step)
            .cloned()
            .collect();
        assert_eq!(column_sum(&mine, "requests"), got.by_route[route], "{step}");
        assert_eq!(
            column_sum(&mine, "requests"),
            u(&s["steps"][step]["requests"])
        );
    }

    // The stored run gives the same files again.
    let run_id = s["run_id"].as_str().expect("run id");
    let again = Herd::new(
        [
            "report",
            run_id,
            "--out",
            &format!("csv={},junit={}", p("again.csv"), p("again.xml")),
        ],
        dir.path(),
    )
    .run(Duration::from_secs(30));
    assert_eq!(
        again.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    for (first, second) in [("seconds.csv", "again.csv"), ("junit.xml", "again.xml")] {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(first)).expect("first"),
            std::fs::read_to_string(dir.path().join(second)).expect("second"),
            "{first} from the run and from the store"
        );
    }
}

#[test]
fn a_bad_out_is_refused_before_any_load() {
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = format!(
        "version: 1\nname: bad-out\ntarget: {}\nload: {{ vus: 1, duration: 1s }}\nscenario:\n  - get: /ok\n",
        target.url()
    );
    let plan = write_file(dir.path(), "plan.yaml", &plan);
    for (value, says) in [("xml=a.xml", "\"xml\""), ("junit", "KIND=FILE")] {
        let out = Herd::new(
            ["run", plan.to_str().expect("utf8"), "-q", "--out", value],
            dir.path(),
        )
        .run(Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
    // html writes the single-file report, the document the API serves for the run.
    let report = dir.path().join("r.html");
    let out = Herd::new(
        [
            "run",
            plan.to_str().expect("utf8"),
            "-q",
            "--out",
            &format!("html={}", report.display()),
        ],
        dir.path(),
    )
    .run(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let html = std::fs::read_to_string(&report).expect("the report");
    assert!(
        html.contains("uPlot") && html.contains("</html>"),
        "a whole report"
    );
}
