use super::*;
use crate::store::suite;

fn data_of(html: &str) -> Value {
    let start = html
        .find("<script type=\"application/json\" id=\"herd-report-data\">")
        .expect("data element");
    let rest = &html[start..];
    let open = rest.find('>').expect("tag end") + 1;
    let close = rest.find("</script>").expect("data element end");
    serde_json::from_str(&rest[open..close]).expect("the data is JSON")
}

#[test]
fn the_report_carries_the_run_s_data_as_json_that_round_trips() {
    let mut summary = suite::summary("r-1", 101);
    summary.name = "a </script><script>alert(1)</script> & <!-- name".into();
    let plan = json!({"name": "p", "thresholds": ["p99 < 1s"]});
    let input = ReportInput {
        plan: Some(&plan),
        created_at_ms: Some(1_700_000_000_000),
        test_id: Some("checkout"),
        ..ReportInput::of_summary(&summary, 1_800_000_000_000)
    };
    let html = render_html(&input);
    let data = data_of(&html);
    let back: Summary = serde_json::from_value(data["summary"].clone()).expect("a summary");
    assert_eq!(back, summary);
    let seconds: Vec<SecondSummary> =
        serde_json::from_value(data["seconds"].clone()).expect("seconds");
    assert_eq!(seconds, summary.seconds);
    assert_eq!(data["plan"], plan);
    assert_eq!(data["run"]["test_id"], "checkout");
    assert_eq!(data["written_at_ms"], 1_800_000_000_000u64);
    // The hostile name ends no element: one data element, one module script, and the title
    // escaped.
    assert_eq!(html.matches("</script>").count(), 2, "{}", &html[..400]);
    assert!(html.contains("<title>herd report · a &lt;/script&gt;"));
}

#[test]
fn the_report_needs_no_network() {
    let summary = suite::summary("r-2", 10);
    let html = render_html(&ReportInput::of_summary(&summary, 0));
    for needle in ["<link", " src=", "@import", "url(http", "//cdn", "fetch("] {
        assert!(!html.contains(needle), "the report contains {needle:?}");
    }
    assert!(html.contains("uPlot"), "uPlot is inlined");
    assert!(
        html.contains("function runCharts"),
        "the console's charts are inlined"
    );
}

#[test]
fn every_module_the_report_runs_bundles_and_none_can_end_its_script() {
    let script = bundle(MODULES).expect("the console's modules bundle");
    for (name, source) in MODULES {
        assert!(
            !source.to_ascii_lowercase().contains("</script") && !source.contains("<!--"),
            "{name} would end its <script>"
        );
    }
    let returned: Vec<&str> = script
        .lines()
        .filter(|l| l.starts_with("return {"))
        .collect();
    for name in [
        "uPlot",
        "runCharts",
        "summaryTables",
        "thresholdLines",
        "verdictNote",
    ] {
        assert!(
            returned
                .iter()
                .any(|l| l.contains(&format!(" {name},")) || l.contains(&format!(" {name} "))),
            "{name} is returned by its module's scope: {returned:?}"
        );
    }
}
