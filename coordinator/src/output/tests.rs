use super::*;
use herd_protocol::histogram::{new_latency, EncodedHistogram};
use std::collections::BTreeMap;

fn summary(thresholds: serde_json::Value, run_state: &str) -> Summary {
    let zero = serde_json::json!({"min":0.0,"mean":0.0,"p50":0.0,"p90":0.0,"p95":0.0,"p99":0.0,"p999":0.0,"max":0.0});
    serde_json::from_value(serde_json::json!({
        "run_id": "r-1", "name": "a <b> & \"c\"", "status": "failed", "run_state": run_state,
        "requests": 10, "errors": 0, "error_rate": 0.0, "rps": 5.0, "duration_s": 2.0,
        "latency_ms": zero, "status_codes": {}, "error_kinds": {}, "steps": {}, "agents": [],
        "start_skew_ms": 0.0, "thresholds": thresholds, "seconds": [], "lost_agents": []
    }))
    .expect("a summary")
}

#[test]
fn out_values_parse_into_kinds_and_files() {
    let specs = OutputSpec::parse_list("junit=a.xml,csv=b.csv,csv-steps=c.csv,json=-,html=r.html")
        .expect("valid");
    let kinds: Vec<OutputKind> = specs.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, OutputKind::ALL.to_vec());
    assert_eq!(specs[3].path, PathBuf::from("-"));
    let err = OutputSpec::parse_list("junit=a.xml,xml=b").expect_err("unknown kind");
    assert!(err.to_string().contains("\"xml\""), "{err}");
    let err = OutputSpec::parse_list("junit").expect_err("no file");
    assert!(err.to_string().contains("KIND=FILE"), "{err}");
    assert!(OutputSpec::parse_list("csv=").is_err());
}

#[test]
fn html_is_the_single_file_report() {
    let results = RunResults {
        summary: summary(serde_json::json!([]), "completed"),
        seconds: vec![],
        record: None,
    };
    let html = render(OutputKind::Html, &results).expect("html");
    assert!(
        html.starts_with("<!doctype html>") || html.starts_with("<!DOCTYPE html>"),
        "{}",
        &html[..80.min(html.len())]
    );
}

#[test]
fn junit_has_one_case_per_threshold_and_a_failure_with_the_actual_value() {
    let s = summary(
        serde_json::json!([
            {"expr": "p99 < 5s", "actual": 12.5, "passed": true},
            {"expr": "error_rate < 1%", "actual": 3.25, "passed": false}
        ]),
        "completed",
    );
    let xml = junit::render(&s);
    assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
    assert!(
        xml.contains("message=\"error_rate &lt; 1%: actual 3.25%\""),
        "{xml}"
    );
    assert!(
        xml.contains("tests=\"2\" failures=\"1\" errors=\"0\""),
        "{xml}"
    );
    // The plan's name is escaped.
    assert!(
        xml.contains("herd.a &lt;b&gt; &amp; &quot;c&quot;"),
        "{xml}"
    );
}

#[test]
fn junit_reports_a_run_that_did_not_complete_as_an_error_case() {
    let s = summary(serde_json::json!([]), "degraded");
    let xml = junit::render(&s);
    assert!(xml.contains("<testcase name=\"run\""), "{xml}");
    assert!(xml.contains("errors=\"1\""), "{xml}");
}

fn second(t: u64, latencies_us: &[u64], codes: &[(u16, u64)], requests: u64) -> SecondRecord {
    let mut h = new_latency();
    for us in latencies_us {
        h.record(*us).expect("in range");
    }
    SecondRecord {
        t,
        second: 1_000 + t,
        requests,
        errors: 1,
        dropped: 0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        agents_reported: 2,
        agents_expected: 3,
        status_codes: codes.iter().copied().collect::<BTreeMap<_, _>>(),
        histogram: EncodedHistogram::encode(&h),
        checkpoint: None,
        detail: Default::default(),
    }
}

#[test]
fn csv_has_a_row_per_second_with_classes_and_percentiles_from_the_histogram() {
    let seconds = vec![
        second(0, &[1_000, 2_000, 3_000], &[(200, 2), (503, 1)], 3),
        second(1, &[10_000], &[(404, 1)], 2),
    ];
    let text = csv::per_second(&seconds);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let row1: Vec<&str> = lines[1].split(',').collect();
    let row2: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(row1[col("t")], "0");
    assert_eq!(row1[col("second")], "1000");
    assert_eq!(row1[col("status_2xx")], "2");
    assert_eq!(row1[col("status_5xx")], "1");
    assert_eq!(row1[col("max_ms")], "3.001");
    assert_eq!(row1[col("p50_ms")], "2");
    assert_eq!(row1[col("agents_reported")], "2");
    // One request of the second had no status: a transport failure.
    assert_eq!(row2[col("status_4xx")], "1");
    assert_eq!(row2[col("no_response")], "1");
    assert_eq!(header.len(), row1.len());
}

#[test]
fn status_classes_clamp_odd_codes() {
    let codes: BTreeMap<u16, u64> = [(99, 1), (200, 2), (302, 3), (700, 4)].into();
    assert_eq!(csv::classes(&codes), [1, 2, 3, 0, 4]);
}
