//! End-to-end: HTTP breadth — `hosts:` overrides, a step's own `timeout`, and `parallel` steps —
//! run by `herd run` with real agent processes, each checked against what the target itself saw.

use bytes::Bytes;
use herd_e2e::{query, run_plan_ok, serve_http, Answer, CountingTarget};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn load(vus: u32, iterations: u32) -> String {
    format!(
        "load:\n  stages:\n    - {{ duration: 10ms, vus: {vus} }}\n    - {{ duration: 60s, vus: {vus} }}\n  iterations_per_vu: {iterations}\n"
    )
}

#[test]
fn a_hosts_override_reaches_the_local_target_under_a_name_dns_does_not_know() {
    let target = CountingTarget::start();
    let port = target.url().rsplit(':').next().expect("port").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = format!(
        "version: 1\nname: hosts\ntarget: http://herd-test.invalid:{port}\nagents: 2\n{}\
         hosts:\n  herd-test.invalid: 127.0.0.1\nscenario:\n  - get: /ok\n",
        load(4, 5)
    );
    let s = run_plan_ok(dir.path(), &plan, Duration::from_secs(60));
    let received = target.received();
    assert_eq!(u(&s["requests"]), 20);
    assert_eq!(received.total, 20);
    assert_eq!(received.by_route.get("GET /ok"), Some(&20));
    assert_eq!(u(&s["errors"]), 0, "{s}");
}

#[test]
fn a_steps_own_timeout_counts_its_requests_as_timeouts_while_other_steps_wait_longer() {
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = format!(
        "version: 1\nname: timeouts\ntarget: {}\nagents: 2\n{}\
         scenario:\n  - {{ name: hurried, get: /delay/1500, timeout: 200ms }}\n\
         \x20 - {{ name: patient, get: /delay/300 }}\n\
         options: {{ timeout: 5s }}\n",
        target.url(),
        load(2, 3)
    );
    let s = run_plan_ok(dir.path(), &plan, Duration::from_secs(60));
    assert_eq!(u(&s["requests"]), 12);
    assert_eq!(u(&s["steps"]["hurried"]["requests"]), 6);
    assert_eq!(u(&s["steps"]["hurried"]["errors"]), 6, "{}", s["steps"]);
    assert_eq!(u(&s["steps"]["patient"]["errors"]), 0, "{}", s["steps"]);
    assert_eq!(u(&s["error_kinds"]["timeout"]), 6, "{}", s["error_kinds"]);
    assert_eq!(target.received().by_route.get("GET /delay/300"), Some(&6));
}

/// What the parallel target saw, per iteration (`vu`, `it`): how many of its requests were in
/// the target at once at most, by route, and extraction results.
#[derive(Debug, Default)]
struct Seen {
    total: u64,
    by_route: BTreeMap<String, u64>,
    /// Per (vu, iteration): requests of the parallel step now in the target, and the most at once.
    batches: BTreeMap<(String, String), (u32, u32)>,
    /// `/after` requests that carried the token their iteration's parallel request returned.
    token_ok: u64,
    token_bad: Vec<String>,
}

async fn parallel_target(req: Request<Incoming>, seen: Arc<Mutex<Seen>>) -> Answer {
    let path = req.uri().path().to_string();
    let q = query(&req);
    req.into_body().collect().await?;
    let key = (
        q.get("vu").cloned().unwrap_or_default(),
        q.get("it").cloned().unwrap_or_default(),
    );
    {
        let mut s = seen.lock().expect("lock");
        s.total += 1;
        *s.by_route.entry(path.clone()).or_default() += 1;
    }
    let mut body = "ok".to_string();
    if path.starts_with("/p/") {
        {
            let mut s = seen.lock().expect("lock");
            let batch = s.batches.entry(key.clone()).or_default();
            batch.0 += 1;
            batch.1 = batch.1.max(batch.0);
        }
        // Held until the iteration's three parallel requests are all here (or 3 s passed, which
        // only requests sent one after the other would wait for).
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let most = seen.lock().expect("lock").batches[&key].1;
            if most >= 3 || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen.lock()
            .expect("lock")
            .batches
            .get_mut(&key)
            .expect("batch")
            .0 -= 1;
        if path == "/p/c" {
            body = format!("{{\"token\":\"tok-{}-{}\"}}", key.0, key.1);
        }
    } else if path == "/after" {
        let want = format!("tok-{}-{}", key.0, key.1);
        let mut s = seen.lock().expect("lock");
        if q.get("t") == Some(&want) {
            s.token_ok += 1;
        } else {
            s.token_bad.push(format!("{q:?}"));
        }
    }
    Ok(Response::new(Full::new(Bytes::from(body))))
}

#[test]
fn parallel_requests_overlap_at_the_target_and_each_is_counted_as_its_own_step() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let addr = serve_http(seen.clone(), parallel_target);
    let dir = tempfile::tempdir().expect("tempdir");
    let q = "vu=${__vu}&it=${__iteration}";
    let plan = format!(
        "version: 1\nname: parallel\ntarget: http://{addr}\nagents: 2\n{}\
         scenario:\n  - get: /page?{q}\n  - parallel:\n\
         \x20     - {{ name: a, get: '/p/a?{q}' }}\n\
         \x20     - {{ name: b, get: '/p/b?{q}' }}\n\
         \x20     - {{ name: c, get: '/p/c?{q}', extract: {{ token: {{ json: $.token }} }} }}\n\
         \x20 - {{ name: after, get: '/after?t=${{token}}&{q}' }}\n\
         options: {{ timeout: 10s }}\n",
        load(4, 5)
    );
    let s = run_plan_ok(dir.path(), &plan, Duration::from_secs(90));
    let seen = seen.lock().expect("lock");
    // 4 VUs × 5 iterations × 5 requests.
    assert_eq!(u(&s["requests"]), 100);
    assert_eq!(seen.total, 100);
    assert_eq!(u(&s["errors"]), 0, "{s}");
    for (step, route) in [
        ("a", "/p/a"),
        ("b", "/p/b"),
        ("c", "/p/c"),
        ("after", "/after"),
    ] {
        assert_eq!(u(&s["steps"][step]["requests"]), 20, "{step}");
        assert_eq!(seen.by_route.get(route), Some(&20), "{route}");
    }
    assert_eq!(seen.batches.len(), 20, "{:?}", seen.batches);
    assert!(
        seen.batches.values().all(|(_, most)| *most == 3),
        "every iteration's three requests were in the target at once: {:?}",
        seen.batches
    );
    // The extraction from a parallel request reached the next step.
    assert_eq!(seen.token_ok, 20, "{:?}", seen.token_bad);
    assert_eq!(u(&s["steps"]["c"]["checks"]["passed"]), 20);
}
