//! End-to-end: a run pushes its seconds, while it goes, to a real Prometheus (Debian's, remote
//! write with native histograms) and to an OTLP/HTTP receiver that decodes with the
//! OpenTelemetry project's own protobuf classes; what both hold agrees with herd's summary and
//! with what the target itself counted.

use herd_e2e::observe::{OtlpReceiver, Prometheus};
use herd_e2e::{read_summary, write_file, CountingTarget, Herd};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a count, got {v}"))
}

/// The relative width of one exponential bucket at herd's schema 5 (2^(1/32) - 1), plus
/// HdrHistogram's own 0.1 %: the most a quantile read from the export may differ from herd's.
const BUCKET_ERROR: f64 = 0.0219 + 0.001;

/// `herd run` of the plan text `plan` in `dir` (its working folder too), which must pass; its
/// summary.
fn run_passing(dir: &Path, plan: &str) -> Value {
    let plan = write_file(dir, "plan.yaml", plan);
    let summary = dir.join("summary.json");
    let out = Herd::new(
        [
            "run",
            plan.to_str().expect("utf8"),
            "-q",
            "--json",
            summary.to_str().expect("utf8"),
        ],
        dir,
    )
    .in_dir(dir)
    .run(Duration::from_secs(90));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    read_summary(&summary)
}

#[test]
fn prometheus_and_otlp_receive_the_runs_histograms_and_counts() {
    let prometheus = Prometheus::start();
    let otlp = OtlpReceiver::start();
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = format!(
        r#"
version: 1
name: export
target: {target}
agents: 2
load:
  start_rps: 60
  arrival:
    - {{ duration: 4s, rps: 60 }}
scenario:
  - name: fast
    get: /ok
  - name: slow
    get: /delay/15
  - name: missing
    get: /status/404
outputs:
  - prometheus: {{ url: "{prom}", labels: {{ team: load }} }}
  - otlp: {{ url: "{otlp}", headers: {{ x-tenant: herd }} }}
"#,
        target = target.url(),
        prom = prometheus.write_url(),
        otlp = otlp.url(),
    );
    let s = run_passing(dir.path(), &plan);
    let got = target.received();
    assert_eq!(u(&s["requests"]), got.total, "herd's count is the target's");
    assert!(got.total >= 400, "too little load: {}", got.total);
    let run = s["run_id"].as_str().expect("run id");

    // The summary says what each output did.
    let outputs = s["outputs"].as_array().expect("outputs in the summary");
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    for o in outputs {
        assert!(u(&o["pushed"]) >= 3, "a push per second or so: {o}");
        assert_eq!((u(&o["failed"]), u(&o["dropped"])), (0, 0), "{o}");
    }

    // Prometheus: the cumulative histograms' counts and the counters are the target's count.
    let sel = format!(r#"{{run="{run}",team="load"}}"#);
    let count = prometheus.scalar(&format!(
        "sum(histogram_count(herd_request_duration_seconds{sel}))"
    ));
    assert_eq!(count as u64, got.total, "histogram_count over the run");
    let requests = prometheus.scalar(&format!("sum(herd_requests_total{sel})"));
    assert_eq!(
        requests as u64, got.total,
        "herd_requests_total over the run"
    );
    let not_found = prometheus.scalar(&format!(
        r#"sum(herd_requests_total{{run="{run}",step="missing",status="404"}})"#
    ));
    assert_eq!(not_found as u64, got.by_status[&404]);
    let slow = prometheus.scalar(&format!(
        r#"histogram_count(herd_request_duration_seconds{{run="{run}",step="slow",test="export"}})"#
    ));
    assert_eq!(slow as u64, got.by_route["GET /delay/15"]);

    // The p99 PromQL reads over the whole run agrees with herd's within a bucket's width, both
    // from the histogram's last value and from its increase over the run.
    let herd_p99 = s["latency_ms"]["p99"].as_f64().expect("p99") / 1000.0;
    for promql in [
        format!("histogram_quantile(0.99, sum(herd_request_duration_seconds{sel}))"),
        format!("histogram_quantile(0.99, sum(increase(herd_request_duration_seconds{sel}[10m])))"),
    ] {
        let p99 = prometheus.scalar(&promql);
        eprintln!("{promql} = {p99} s; herd's p99 {herd_p99} s");
        assert!(
            (p99 / herd_p99 - 1.0).abs() <= BUCKET_ERROR,
            "{promql} = {p99} s, herd's p99 {herd_p99} s"
        );
    }

    // OTLP: the independent decoder's sums are the target's count, bucket by bucket.
    let t = otlp.totals();
    assert_eq!(t["bad"], serde_json::json!([]), "{t}");
    assert_eq!(t["scales"], serde_json::json!([5]), "{t}");
    assert_eq!(t["temporalities"], serde_json::json!([1]), "delta: {t}");
    assert_eq!(t["resource"]["service.name"], "herd");
    for key in ["run", "test", "step"] {
        assert!(
            t["attribute_keys"]
                .as_array()
                .is_some_and(|a| a.contains(&Value::from(key))),
            "{key}: {t}"
        );
    }
    let by_step = t["count_by_step"].as_object().expect("counts by step");
    let decoded: u64 = by_step.values().map(u).sum();
    assert_eq!(decoded, got.total, "OTLP histogram counts: {t}");
    assert_eq!(
        t["bucket_sum_by_step"], t["count_by_step"],
        "buckets add up"
    );
    assert_eq!(u(&by_step["slow"]), got.by_route["GET /delay/15"]);
    let statuses = t["requests_by_status"].as_object().expect("by status");
    assert_eq!(statuses.values().map(u).sum::<u64>(), got.total);
    assert_eq!(u(&statuses["missing 404"]), got.by_status[&404]);
}

#[test]
fn bad_outputs_are_refused_naming_each_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_file(
        dir.path(),
        "plan.yaml",
        r#"
version: 1
name: bad outputs
target: http://127.0.0.1:9
load: { vus: 1, duration: 1s }
scenario: [{ get: / }]
outputs:
  - prometheus: { url: "ftp://x", labels: { run: a, "9x": b } }
  - otlp: { headers: { "bad header": x } }
  - influx: { url: "http://x" }
"#,
    );
    let out =
        Herd::new(["run", plan.to_str().expect("utf8")], dir.path()).run(Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for field in [
        "outputs[0].prometheus.url",
        "outputs[0].prometheus.labels.run",
        "outputs[0].prometheus.labels.9x",
        "outputs[1].otlp.url: is required",
        "outputs[1].otlp.headers.bad header",
        "outputs[2].influx: unknown field",
    ] {
        assert!(stderr.contains(field), "{field} not in:\n{stderr}");
    }
}

#[test]
fn herd_toml_outputs_apply_to_every_run_of_herd_up() {
    let prometheus = Prometheus::start();
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_file(
        dir.path(),
        "herd.toml",
        &format!(
            "[[outputs]]\nprometheus = {{ url = \"{}\", labels = {{ env = \"ci\" }} }}\n",
            prometheus.write_url()
        ),
    );
    let s = herd_e2e::service::Service::start(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("utf8")],
    );
    let op = s.token("operator");
    let plan = serde_json::json!({
        "version": 1, "name": "from toml", "target": target.url(), "agents": 1,
        "load": {"vus": 2, "duration": "3s"},
        "scenario": [{"name": "home", "get": "/ok"}],
    });
    let (status, body) = s.request(
        "POST",
        "/api/v1/tests",
        Some(&op),
        Some(&serde_json::json!({"id": "exported", "name": "exported", "plan": plan})),
    );
    assert!(status == 200 || status == 201, "{status} {body}");
    let (status, summary) = s.request(
        "POST",
        "/api/v1/tests/exported/runs?wait=true",
        Some(&op),
        None,
    );
    assert_eq!(status, 200, "{summary}");
    let got = target.received();
    assert_eq!(u(&summary["requests"]), got.total);
    assert_eq!(summary["outputs"][0]["kind"], "prometheus", "{summary}");
    let run = summary["run_id"].as_str().expect("run id");
    let count = prometheus.scalar(&format!(
        r#"sum(histogram_count(herd_request_duration_seconds{{run="{run}",test="exported",env="ci",step="home"}}))"#
    ));
    assert_eq!(
        count as u64, got.total,
        "the stored test's run, labelled with its id"
    );
}

#[test]
fn an_unreachable_output_is_reported_and_costs_the_run_nothing() {
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // Nothing listens on port 9 of the loopback: every push is refused.
    let plan = format!(
        "version: 1\nname: down\ntarget: {}\nload: {{ vus: 2, duration: 2s }}\nscenario: [{{ get: /ok }}]\noutputs: [{{ otlp: {{ url: \"http://127.0.0.1:9/v1/metrics\" }} }}]\n",
        target.url()
    );
    let s = run_passing(dir.path(), &plan);
    assert_eq!(u(&s["requests"]), target.received().total);
    let o = &s["outputs"][0];
    assert_eq!(o["kind"], "otlp", "{s}");
    assert_eq!(u(&o["pushed"]), 0, "{o}");
    assert!(u(&o["failed"]) >= 1, "{o}");
    assert!(
        o["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("127.0.0.1:9")),
        "{o}"
    );
}

/// `herd run` in a folder with a `herd.toml` pushes to its `[[outputs]]` too, merged with the
/// plan's `outputs:`; a bad file is refused naming its key before anything runs.
#[test]
fn herd_run_reads_herd_toml_outputs_with_the_plans() {
    let prometheus = Prometheus::start();
    let otlp = OtlpReceiver::start();
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    write_file(
        dir.path(),
        "herd.toml",
        &format!(
            "[[outputs]]\nprometheus = {{ url = \"{}\", labels = {{ env = \"ci\" }} }}\n",
            prometheus.write_url()
        ),
    );
    let plan = format!(
        r#"
version: 1
name: toml-outputs
target: {target}
agents: 1
load: {{ vus: 2, duration: 3s }}
scenario:
  - name: home
    get: /ok
outputs:
  - otlp: {{ url: "{otlp}" }}
"#,
        target = target.url(),
        otlp = otlp.url(),
    );
    // In the folder of its herd.toml, without --config.
    let s = run_passing(dir.path(), &plan);
    let got = target.received();
    assert_eq!(u(&s["requests"]), got.total);
    let kinds: Vec<&str> = s["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .filter_map(|o| o["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["prometheus", "otlp"],
        "herd.toml's, then the plan's"
    );
    let run = s["run_id"].as_str().expect("run id");
    let count = prometheus.scalar(&format!(
        r#"sum(herd_requests_total{{run="{run}",env="ci"}})"#
    ));
    assert_eq!(count as u64, got.total, "herd.toml's output got the run");
    let t = otlp.totals();
    let decoded: u64 = t["count_by_step"]
        .as_object()
        .expect("counts by step")
        .values()
        .map(u)
        .sum();
    assert_eq!(decoded, got.total, "the plan's output too: {t}");

    let bad = tempfile::tempdir().expect("tempdir");
    let config = write_file(
        bad.path(),
        "other.toml",
        "[[outputs]]\nprometheus = { url = \"ftp://x\" }\n",
    );
    let plan = write_file(bad.path(), "plan.yaml", &plan);
    let out = Herd::new(
        [
            "run",
            plan.to_str().expect("utf8"),
            "-q",
            "--config",
            config.to_str().expect("utf8"),
        ],
        bad.path(),
    )
    .run(Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("outputs[0].prometheus.url"), "{stderr}");
    assert_eq!(target.received().total, got.total, "nothing ran");
}
