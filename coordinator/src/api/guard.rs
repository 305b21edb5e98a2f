//! What a write must get past before a handler sees it: a body no larger than its route allows
//! (413, naming the limit), and the caller's share of writes (429 with `Retry-After`).
//!
//! Body limits are per route because routes carry very different things: a plan (with feeder
//! rows inlined) may be large, a ramp or a baseline is a few fields, and a stop has no body at
//! all. A request announcing a longer `Content-Length` is refused before its body is read; one
//! without it (chunked) is cut off at the limit while being read (the limit goes into the
//! request's extensions as a `respond::BodyLimit`, which `respond::body_json` honours).
//!
//! The write rate ([`super::limiter`]) is checked after authentication, so an unknown caller
//! cannot use up someone else's share, and before the handler, so a refused write does nothing
//! (and is not audited: a flood would otherwise flood the log). Reads are not limited.

use super::auth::Identity;
use super::limiter::WriteRate;
use super::respond::{error, too_large, Body, BodyLimit};
use super::state::ApiState;
use herd_protocol::plan::MAX_BODY_FILES_BYTES;
use hyper::{Method, Request, Response, StatusCode};
use std::time::{Duration, Instant};

/// The largest body of a route that carries a plan or a test: 1 MiB for the plan itself (feeder
/// rows are inlined in it), and room for its body files, which a plan sent as a value carries in
/// base64 (`{path, content_base64}`: 4 bytes for every 3), up to the plan's limit for all of them
/// together (64 MiB, [`MAX_BODY_FILES_BYTES`], 85.3 MiB in base64): 87 MiB in all.
pub const PLAN_BODY: usize = 87 << 20;
const _: () = assert!(PLAN_BODY >= (1 << 20) + MAX_BODY_FILES_BYTES.div_ceil(3) * 4);
/// The largest body of the other writes (a ramp's stages, a baseline's run id).
pub const SMALL_BODY: usize = 16 << 10;
/// The largest file `POST /api/v1/import` takes (a HAR recording of a long session is large).
pub const IMPORT_BODY: usize = 16 << 20;

/// Lets a write through, or answers it: 429 when `identity` has no write left, 413 when the
/// announced body is over the route's limit. Otherwise the limit goes into `req`'s extensions for
/// the handler that reads the body. `segments` is the path cut at `/`.
pub fn admit<B>(
    req: &mut Request<B>,
    state: &ApiState,
    identity: &Identity,
    method: &Method,
    segments: &[&str],
) -> Result<(), Response<Body>> {
    if let Err(retry_after) = state.writes.take(&identity.subject, Instant::now()) {
        return Err(too_many(&identity.subject, retry_after, state.writes.rate));
    }
    let route = match segments {
        ["api", "v1", rest @ ..] => rest,
        other => other,
    };
    let limit = body_limit(method, route);
    let what = format!("{method} {}", req.uri().path());
    let length = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok());
    check_length(&what, length, limit)?;
    req.extensions_mut().insert(BodyLimit(limit));
    Ok(())
}

/// The body limit of `method` on `/api/v1/{route…}`.
pub fn body_limit(method: &Method, route: &[&str]) -> usize {
    match (method, route) {
        (&Method::POST, ["import"]) => IMPORT_BODY,
        (&Method::POST, ["tests"] | ["runs"] | ["tests", _, "runs"])
        | (&Method::PUT, ["tests", _]) => PLAN_BODY,
        _ => SMALL_BODY,
    }
}

/// The 413 answer when the announced `Content-Length` is already over the limit.
pub fn check_length(
    what: &str,
    content_length: Option<&str>,
    limit: usize,
) -> Result<(), Response<Body>> {
    match content_length.and_then(|l| l.trim().parse::<u64>().ok()) {
        Some(length) if length > limit as u64 => Err(too_large(what, limit)),
        _ => Ok(()),
    }
}

/// The 429 answer, with `Retry-After` in whole seconds (at least 1).
pub fn too_many(who: &str, retry_after: Duration, rate: WriteRate) -> Response<Body> {
    let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "{who} made more than {} writes at once ({} a second after that); retry in {seconds} s",
            rate.burst, rate.per_second
        ),
    );
    if let Ok(value) = hyper::header::HeaderValue::from_str(&seconds.to_string()) {
        response
            .headers_mut()
            .insert(hyper::header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_have_their_limits_and_lengths_are_checked_before_reading() {
        assert_eq!(body_limit(&Method::POST, &["runs"]), PLAN_BODY);
        assert_eq!(body_limit(&Method::PUT, &["tests", "t1"]), PLAN_BODY);
        assert_eq!(
            body_limit(&Method::POST, &["tests", "t1", "runs"]),
            PLAN_BODY
        );
        assert_eq!(
            body_limit(&Method::POST, &["runs", "r1", "ramp"]),
            SMALL_BODY
        );
        assert_eq!(body_limit(&Method::POST, &["import"]), IMPORT_BODY);
        assert_eq!(super::super::respond::human(PLAN_BODY), "87 MiB");
        assert_eq!(super::super::respond::human(SMALL_BODY), "16 KiB");
        assert!(check_length("POST /x", Some("16384"), SMALL_BODY).is_ok());
        assert!(check_length("POST /x", None, SMALL_BODY).is_ok());
        let refused = check_length("POST /x", Some("16385"), SMALL_BODY).expect_err("413");
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
