//! OTLP/HTTP metrics: an `ExportMetricsServiceRequest` (protobuf) per push.
//!
//! OpenTelemetry takes deltas, so each second goes out as it is: an exponential histogram
//! `herd.request.duration` (unit `s`, scale [`SCHEMA`], positive buckets and the zero count)
//! and a monotonic sum `herd.requests` (unit `{request}`), both with delta temporality over
//! `[second, second + 1)`, attributes `run`, `test`, `step` (and `status` on the sum). What a
//! late frame adds to a second already sent goes out as one more delta for the same interval,
//! so a receiver that adds the points up gets herd's totals.
//!
//! Field numbers: `opentelemetry/proto/metrics/v1/metrics.proto` and the collector's
//! `metrics_service.proto`.

use super::native::{Native, SCHEMA};
use super::point::SecondPoint;
use super::proto::Msg;

/// The histogram's name.
pub const HISTOGRAM: &str = "herd.request.duration";
/// The counter's name.
pub const REQUESTS: &str = "herd.requests";
const DELTA: u64 = 1;

/// The `ExportMetricsServiceRequest` for `points`; `common` are attributes on every data point.
pub fn request(points: &[SecondPoint], common: &[(String, String)]) -> Vec<u8> {
    let mut histogram = Msg::default();
    let mut requests = Msg::default();
    for point in points {
        let start = point.second.saturating_mul(1_000_000_000);
        let end = start.saturating_add(1_000_000_000);
        for (step, p) in &point.steps {
            let mut attrs: Vec<(&str, &str)> = common
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            attrs.push(("step", step));
            if p.latency.count > 0 {
                histogram.msg(1, histogram_point(&p.latency, &attrs, start, end));
            }
            for (status, n) in &p.statuses {
                let mut attrs = attrs.clone();
                attrs.push(("status", status));
                let mut dp = Msg::default();
                dp.fixed64(2, start);
                dp.fixed64(3, end);
                // as_int is sfixed64: the same bytes as fixed64.
                dp.fixed64(6, *n);
                for kv in key_values(&attrs) {
                    dp.msg(7, kv);
                }
                requests.msg(1, dp);
            }
        }
    }
    histogram.uint(2, DELTA);
    requests.uint(2, DELTA);
    requests.uint(3, 1); // is_monotonic
    let mut scope = Msg::default();
    let mut name = Msg::default();
    name.bytes(1, b"herd");
    scope.msg(1, name);
    scope.msg(2, metric(HISTOGRAM, "s", 10, histogram));
    scope.msg(2, metric(REQUESTS, "{request}", 7, requests));
    let mut resource = Msg::default();
    for kv in key_values(&[("service.name", "herd")]) {
        resource.msg(1, kv);
    }
    let mut rm = Msg::default();
    rm.msg(1, resource);
    rm.msg(2, scope);
    let mut export = Msg::default();
    export.msg(1, rm);
    export.0
}

fn metric(name: &str, unit: &str, field: u32, data: Msg) -> Msg {
    let mut m = Msg::default();
    m.bytes(1, name.as_bytes());
    m.bytes(3, unit.as_bytes());
    m.msg(field, data);
    m
}

fn histogram_point(h: &Native, attrs: &[(&str, &str)], start: u64, end: u64) -> Msg {
    let mut dp = Msg::default();
    for kv in key_values(attrs) {
        dp.msg(1, kv);
    }
    dp.fixed64(2, start);
    dp.fixed64(3, end);
    dp.fixed64(4, h.count);
    dp.double(5, h.sum, true);
    dp.sint(6, i64::from(SCHEMA));
    dp.fixed64(7, h.zero_count);
    if let (Some((first, _)), Some((last, _))) =
        (h.buckets.first_key_value(), h.buckets.last_key_value())
    {
        // One dense run from the first to the last non-empty bucket; OTLP's bucket `j` is
        // Prometheus' `j + 1` (see `native`).
        let mut buckets = Msg::default();
        buckets.sint(1, i64::from(*first) - 1);
        buckets.packed(
            2,
            (*first..=*last).map(|i| h.buckets.get(&i).copied().unwrap_or(0)),
        );
        dp.msg(8, buckets);
    }
    dp
}

fn key_values(attrs: &[(&str, &str)]) -> Vec<Msg> {
    attrs
        .iter()
        .map(|(k, v)| {
            let mut value = Msg::default();
            value.bytes(1, v.as_bytes());
            let mut kv = Msg::default();
            kv.bytes(1, k.as_bytes());
            kv.msg(2, value);
            kv
        })
        .collect()
}
