//! The recorder's accounting rules, one at a time.
use super::*;
use herd_protocol::frame::Health;

const S: u64 = 1_700_000_000;

fn recorder() -> Recorder {
    let identity = FrameIdentity {
        run: RunId::new("r").expect("valid"),
        agent: AgentId::numbered(0),
    };
    Recorder::new(identity, vec!["a".into(), "b".into()], S)
}

fn ok(status: u16) -> Outcome {
    Outcome::Response {
        status,
        latency_us: 1_000,
        service_us: 1_000,
    }
}

#[test]
fn requests_land_in_the_second_they_completed_in() {
    let mut r = recorder();
    r.record(S * US_PER_SEC, 0, ok(200));
    r.record((S + 1) * US_PER_SEC - 1, 0, ok(200));
    // Exactly at the boundary: belongs to the next second.
    r.record((S + 1) * US_PER_SEC, 1, ok(200));
    let frames = r.flush_before(S + 1, 3, Health::default());
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].seq, frames[0].second), (0, S));
    assert_eq!(frames[0].total.requests, 2);
    assert_eq!(frames[0].vus, 3);
    // Records arriving after a flush for the current second are kept.
    r.record((S + 1) * US_PER_SEC + 10, 1, ok(200));
    let frames = r.finish((S + 1) * US_PER_SEC + 20, 0, Health::default());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].total.requests, 2);
    assert!(frames[0].is_final);
    assert_eq!(r.requests(), 4);
    assert_eq!(r.frames(), 2);
}

#[test]
fn empty_seconds_are_emitted_in_order_and_the_last_is_final() {
    let mut r = recorder();
    r.record((S + 2) * US_PER_SEC + 5, 0, ok(200));
    let frames = r.finish((S + 4) * US_PER_SEC, 1, Health::default());
    let seconds: Vec<(u64, u64, u64, bool)> = frames
        .iter()
        .map(|f| (f.seq, f.second, f.total.requests, f.is_final))
        .collect();
    assert_eq!(
        seconds,
        vec![
            (0, S, 0, false),
            (1, S + 1, 0, false),
            (2, S + 2, 1, false),
            (3, S + 3, 0, false),
            (4, S + 4, 0, true),
        ]
    );
}

#[test]
fn finish_without_requests_still_emits_one_final_frame() {
    let mut r = recorder();
    let frames = r.finish(S * US_PER_SEC + 3, 0, Health::default());
    assert_eq!(frames.len(), 1);
    assert!(frames[0].is_final && frames[0].seq == 0 && frames[0].total.requests == 0);
}

#[test]
fn steps_and_error_kinds_are_counted_separately() {
    let mut r = recorder();
    let t = S * US_PER_SEC + 1;
    r.record(t, 0, ok(200));
    r.record(t, 0, ok(404));
    r.record(t, 1, ok(503));
    r.record(t, 1, Outcome::Failure(FailureKind::Connect));
    r.record(t, 1, Outcome::Failure(FailureKind::Aborted));
    let frames = r.finish(t, 0, Health::default());
    let f = &frames[0];
    assert_eq!((f.total.requests, f.total.errors), (5, 4));
    let kinds: Vec<(&str, u64)> = f
        .total
        .error_kinds
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("aborted", 1),
            ("connect", 1),
            ("http_4xx", 1),
            ("http_5xx", 1)
        ]
    );
    assert_eq!(f.total.status_codes.get(&200), Some(&1));
    let a = &f.steps["a"];
    let b = &f.steps["b"];
    assert_eq!((a.requests, a.errors, b.requests, b.errors), (2, 1, 3, 3));
    // Failures are counted but have no latency.
    let hist = b.latency.decode().expect("valid histogram");
    assert_eq!(hist.len(), 1);
    assert_eq!(f.total.latency.decode().map(|h| h.len()).ok(), Some(3));
}

#[test]
fn recycled_buckets_start_empty() {
    let mut r = recorder();
    r.record(S * US_PER_SEC, 0, ok(500));
    assert_eq!(r.flush_before(S + 1, 0, Health::default()).len(), 1);
    r.record((S + 1) * US_PER_SEC, 1, ok(200));
    let f = r.finish((S + 1) * US_PER_SEC, 0, Health::default());
    assert_eq!(f[0].total.errors, 0);
    assert!(!f[0].steps.contains_key("a"));
    assert_eq!(f[0].total.status_codes.len(), 1);
    assert_eq!(f[0].total.latency.decode().map(|h| h.len()).ok(), Some(1));
}

#[test]
fn drops_checks_lag_and_service_times_reach_the_frame() {
    let mut r = recorder();
    let t = S * US_PER_SEC + 1;
    r.record(
        t,
        0,
        Outcome::Response {
            status: 200,
            latency_us: 900_000,
            service_us: 1_000,
        },
    );
    r.record_check(t, 0, true);
    r.record_check(t, 0, false);
    r.record_dropped(t, 3);
    r.note_lag(t, 2_500);
    r.note_lag(t, 1_000);
    let health = Health {
        cpu_percent: 40.0,
        loop_lag_ms: 99.0,
        in_flight: 7,
        commands_refused: 0,
    };
    let f = r.finish(t, 0, health).remove(0);
    assert_eq!(f.dropped, 3);
    assert_eq!(r.dropped(), 3);
    assert_eq!(f.health.loop_lag_ms, 2.5);
    assert_eq!((f.health.cpu_percent, f.health.in_flight), (40.0, 7));
    assert_eq!((f.total.checks.passed, f.total.checks.failed), (1, 1));
    assert_eq!(f.steps["a"].checks.failed, 1);
    let service = f.total.service_latency.decode().expect("valid");
    let latency = f.total.latency.decode().expect("valid");
    assert!(service.max() < 2_000 && latency.min() > 800_000);
}
