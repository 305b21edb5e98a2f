//! The exporter's encodings read back with a small protobuf reader, and its actor-side rules
//! (only what changed is sent again; a full queue drops and counts).

use super::native::{upper_bound, Native, SCHEMA};
use super::point::{SecondPoint, StepPoint};
use super::prom::PromState;
use super::*;
use std::collections::BTreeMap;

/// A protobuf field as read back: varint, fixed64, or length-delimited.
#[derive(Debug, Clone)]
enum Field {
    Varint(u64),
    Fixed(u64),
    Bytes(Vec<u8>),
}

fn varint(b: &[u8], i: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*i];
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return v;
        }
        shift += 7;
    }
}

fn fields(b: &[u8]) -> Vec<(u64, Field)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let key = varint(b, &mut i);
        let f = match key & 7 {
            0 => Field::Varint(varint(b, &mut i)),
            1 => {
                let v = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
                i += 8;
                Field::Fixed(v)
            }
            2 => {
                let n = varint(b, &mut i) as usize;
                i += n;
                Field::Bytes(b[i - n..i].to_vec())
            }
            w => panic!("wire type {w}"),
        };
        out.push((key >> 3, f));
    }
    out
}

fn bytes_of(fs: &[(u64, Field)], n: u64) -> Vec<Vec<u8>> {
    fs.iter()
        .filter(|(k, _)| *k == n)
        .filter_map(|(_, f)| match f {
            Field::Bytes(b) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

fn varint_of(fs: &[(u64, Field)], n: u64) -> u64 {
    fs.iter()
        .find_map(|(k, f)| match f {
            Field::Varint(v) if *k == n => Some(*v),
            _ => None,
        })
        .unwrap_or(0)
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn native(buckets: &[(i32, u64)], zero: u64) -> Native {
    let buckets: BTreeMap<i32, u64> = buckets.iter().copied().collect();
    Native {
        count: buckets.values().sum::<u64>() + zero,
        sum: 1.0,
        zero_count: zero,
        buckets,
    }
}

fn point(second: u64, latency: Native, ok: u64) -> SecondPoint {
    SecondPoint {
        second,
        steps: BTreeMap::from([(
            "GET /".to_string(),
            StepPoint {
                latency,
                statuses: BTreeMap::from([("200".to_string(), ok)]),
            },
        )]),
    }
}

/// Bucket counts by index, decoded from a remote-write Histogram message (spans + deltas).
fn decode_histogram(h: &[u8]) -> (u64, i64, u64, BTreeMap<i32, u64>, i64) {
    let fs = fields(h);
    let mut deltas = Vec::new();
    for packed in bytes_of(&fs, 12) {
        let mut i = 0;
        while i < packed.len() {
            deltas.push(unzigzag(varint(&packed, &mut i)));
        }
    }
    let mut buckets = BTreeMap::new();
    let mut index = 0i32;
    let mut count = 0i64;
    let mut d = deltas.into_iter();
    for span in bytes_of(&fs, 11) {
        let s = fields(&span);
        index += unzigzag(varint_of(&s, 1)) as i32;
        for _ in 0..varint_of(&s, 2) {
            count += d.next().expect("a delta per bucket");
            buckets.insert(index, count as u64);
            index += 1;
        }
    }
    let ts = varint_of(&fs, 15) as i64;
    (
        varint_of(&fs, 1),
        unzigzag(varint_of(&fs, 4)),
        varint_of(&fs, 6),
        buckets,
        ts,
    )
}

#[test]
fn remote_write_carries_cumulative_native_histograms_with_spans_and_deltas() {
    let mut state = PromState::new(vec![
        ("run".into(), "r1".into()),
        ("test".into(), "t".into()),
    ]);
    let first = point(100, native(&[(-300, 2), (-299, 5), (-290, 1)], 1), 9);
    let second = point(101, native(&[(-299, 1), (-200, 4)], 0), 5);
    let body = state.push(&[first, second], i64::MAX);
    let series = bytes_of(&fields(&body), 1);
    assert_eq!(series.len(), 2, "one histogram and one counter series");
    let hist = fields(&series[0]);
    let labels: Vec<(String, String)> = bytes_of(&hist, 1)
        .iter()
        .map(|l| {
            let f = fields(l);
            let s = |n| String::from_utf8(bytes_of(&f, n)[0].clone()).expect("utf8");
            (s(1), s(2))
        })
        .collect();
    let names: Vec<&str> = labels.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["__name__", "run", "step", "test"], "sorted");
    assert_eq!(labels[0].1, "herd_request_duration_seconds");
    let samples: Vec<_> = bytes_of(&hist, 4)
        .iter()
        .map(|h| decode_histogram(h))
        .collect();
    assert_eq!(
        samples.len(),
        3,
        "an empty sample first, then one per second"
    );
    assert_eq!(samples[0].0, 0);
    assert_eq!(samples[0].4, 100_999);
    let (count, schema, zero, buckets, ts) = samples[1].clone();
    assert_eq!(
        (count, schema, zero, ts),
        (9, i64::from(SCHEMA), 1, 101_000)
    );
    assert_eq!(buckets, BTreeMap::from([(-300, 2), (-299, 5), (-290, 1)]));
    let (count, _, zero, buckets, ts) = samples[2].clone();
    assert_eq!((count, zero, ts), (14, 1, 102_000), "cumulative");
    assert_eq!(
        buckets,
        BTreeMap::from([(-300, 2), (-299, 6), (-290, 1), (-200, 4)])
    );
    let counter = fields(&series[1]);
    let values: Vec<(f64, u64)> = bytes_of(&counter, 2)
        .iter()
        .map(|s| {
            let f = fields(s);
            let v = f
                .iter()
                .find_map(|(k, f)| match f {
                    Field::Fixed(v) if *k == 1 => Some(f64::from_bits(*v)),
                    _ => None,
                })
                .unwrap_or(0.0);
            (v, varint_of(&f, 2))
        })
        .collect();
    assert_eq!(values, [(0.0, 100_999), (9.0, 101_000), (14.0, 102_000)]);
}

/// A resumed run's series go on from what was exported before the restart: no empty first
/// sample (a counter reset to Prometheus), the counter and the histogram continue.
#[test]
fn a_resumed_runs_remote_write_continues_its_series() {
    let labels = vec![("run".to_string(), "r1".to_string())];
    let before = point(100, native(&[(-300, 2), (-299, 5)], 1), 8);
    // What the killed coordinator had exported: second 100.
    let mut resumed = PromState::new(labels).seeded(&before.steps);
    let body = resumed.push(&[point(103, native(&[(-299, 1)], 0), 1)], i64::MAX);
    let series = bytes_of(&fields(&body), 1);
    let hist: Vec<_> = bytes_of(&fields(&series[0]), 4)
        .iter()
        .map(|h| decode_histogram(h))
        .collect();
    assert_eq!(hist.len(), 1, "no empty sample before it: {hist:?}");
    assert_eq!(hist[0].0, 9, "8 before the restart, 1 after");
    assert_eq!(hist[0].3, BTreeMap::from([(-300, 2), (-299, 6)]));
    let counter = fields(&series[1]);
    let values: Vec<f64> = bytes_of(&counter, 2)
        .iter()
        .map(|s| {
            fields(s)
                .iter()
                .find_map(|(k, f)| match f {
                    Field::Fixed(v) if *k == 1 => Some(f64::from_bits(*v)),
                    _ => None,
                })
                .unwrap_or(0.0)
        })
        .collect();
    assert_eq!(values, [9.0], "the counter goes on from 8");
}

#[test]
fn otlp_buckets_are_offset_by_one_from_prometheus_indices() {
    let body = super::otlp::request(&[point(7, native(&[(10, 3), (12, 1)], 2), 6)], &[]);
    let rm = bytes_of(&fields(&body), 1);
    let scope = bytes_of(&fields(&rm[0]), 2);
    let metrics = bytes_of(&fields(&scope[0]), 2);
    let hist = bytes_of(&fields(&metrics[0]), 10);
    let hf = fields(&hist[0]);
    assert_eq!(varint_of(&hf, 2), 1, "delta temporality");
    let dp = fields(&bytes_of(&hf, 1)[0]);
    let fixed = |n| {
        dp.iter()
            .find_map(|(k, f)| match f {
                Field::Fixed(v) if *k == n => Some(*v),
                _ => None,
            })
            .unwrap_or(0)
    };
    assert_eq!((fixed(2), fixed(3)), (7_000_000_000, 8_000_000_000));
    assert_eq!((fixed(4), fixed(7)), (6, 2), "count and zero count");
    assert_eq!(unzigzag(varint_of(&dp, 6)), i64::from(SCHEMA));
    let positive = fields(&bytes_of(&dp, 8)[0]);
    assert_eq!(
        unzigzag(varint_of(&positive, 1)),
        9,
        "OTLP index = Prometheus index - 1"
    );
    let packed = &bytes_of(&positive, 2)[0];
    let mut i = 0;
    let mut counts = Vec::new();
    while i < packed.len() {
        counts.push(varint(packed, &mut i));
    }
    assert_eq!(counts, [3, 0, 1]);
    // OTLP bucket 9 is (base^9, base^10]: Prometheus bucket 10.
    assert!(upper_bound(9) < upper_bound(10));
}

#[test]
fn plan_outputs_replace_defaults_of_the_same_kind_and_url() {
    let d = |url: &str| Output::Prometheus {
        url: url.into(),
        labels: vec![],
    };
    let mine = Output::Prometheus {
        url: "http://a".into(),
        labels: vec![("x".into(), "y".into())],
    };
    let all = outputs_of(&[d("http://a"), d("http://b")], std::slice::from_ref(&mine));
    assert_eq!(all, vec![d("http://b"), mine]);
}

#[test]
fn a_second_sent_again_sends_only_what_changed() {
    let before = point(5, native(&[(1, 2)], 0), 2);
    let after = point(5, native(&[(1, 3), (4, 1)], 0), 4);
    let d = after.minus(&before);
    assert_eq!(d.requests(), 2);
    assert_eq!(
        d.steps["GET /"].latency.buckets,
        BTreeMap::from([(1, 1), (4, 1)])
    );
    assert!(after.minus(&after).steps.is_empty());
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_and_the_end_does_not_wait_past_its_limit() {
    // Port 9 refuses connections; on this current-thread runtime the output's task does not
    // run until the test awaits, so the queue fills deterministically.
    let outputs = [Output::Prometheus {
        url: "http://127.0.0.1:9/api/v1/write".into(),
        labels: vec![],
    }];
    let mut exporter = Exporter::start(&outputs, "r", "t").expect("an output");
    for s in 0..(QUEUE as u64 + 10) {
        exporter.queue(point(s, native(&[(1, 1)], 0), 1));
    }
    let reports = exporter.finish(std::time::Duration::ZERO).await;
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(
        (r.kind.as_str(), r.pushed, r.dropped, r.failed),
        ("prometheus", 0, 10, 1)
    );
    assert!(
        r.last_error
            .as_deref()
            .is_some_and(|e| e.contains("did not end")),
        "{r:?}"
    );
    assert!(Exporter::start(&[], "r", "t").is_none());
}
