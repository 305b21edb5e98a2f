//! The console (`console/` at the repository root): the web UI, embedded in the binary at build
//! time (`build.rs`) and served here without a credential — it holds no data; the app signs in
//! through the API with a token or a Cognito ID token.
//!
//! History-API routing: every console route (`/`, `/login`, `/tests`, `/tests/{id}`, `/runs`,
//! `/runs/{id}`) answers `index.html`, and the app's router draws the page, so a reload or a
//! shared link works. Files are gzipped at build time and sent compressed when the client accepts
//! gzip (the first load is then ~70 KB instead of ~330), with an ETag so that a browser
//! revalidates (`Cache-Control: no-cache`) and gets `304 Not Modified` until the binary changes.
//! The file names carry no hash, so nothing may be cached without that check.

use super::respond::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};

/// `(path, content type, ETag, raw, gzip)` for each file of `console/MANIFEST`.
type File = (
    &'static str,
    &'static str,
    &'static str,
    &'static [u8],
    &'static [u8],
);

static FILES: &[File] = include!(concat!(env!("OUT_DIR"), "/console_files.rs"));

/// The embedded file at `path` (`/index.html`, `/assets/app.js`, …).
fn file(path: &str) -> Option<&'static File> {
    FILES.iter().find(|f| f.0 == path)
}

/// Whether `path` is a page of the app (answered with `index.html`).
fn is_route(path: &str) -> bool {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let segments: Vec<&str> = rest.split('/').collect();
    segments.iter().all(|s| !s.is_empty())
        && matches!(
            segments.as_slice(),
            ["login" | "tests" | "runs"] | ["tests" | "runs", _]
        )
}

/// The console's answer to `method path`, or `None` when the path is not the console's.
pub fn serve(method: &Method, path: &str, headers: &HeaderMap) -> Option<Response<Body>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    if path.starts_with("/assets/") {
        return Some(match file(path) {
            Some(found) => respond(method, found, headers),
            None => super::respond::error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no console file {path}"),
            ),
        });
    }
    is_route(path).then(|| file("/index.html").map(|f| respond(method, f, headers)))?
}

fn respond(method: &Method, f: &'static File, headers: &HeaderMap) -> Response<Body> {
    let (_, content_type, etag, raw, gz) = *f;
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    let (status, body) = if matches {
        (StatusCode::NOT_MODIFIED, None)
    } else if gzip {
        (StatusCode::OK, Some(gz))
    } else {
        (StatusCode::OK, Some(raw))
    };
    let length = body.map_or(0, <[u8]>::len);
    let body: Body = match body {
        Some(b) if method != Method::HEAD => Full::new(Bytes::from_static(b)).boxed(),
        _ => Empty::new().boxed(),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ETAG, HeaderValue::from_static(etag));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if status == StatusCode::OK {
        if gzip {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    response
}

/// Whether an `Accept-Encoding` value allows gzip (`gzip`, `x-gzip` or `*`, not with `q=0`).
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        matches!(coding.as_str(), "gzip" | "x-gzip" | "*") && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, accept: Option<&str>) -> Option<Response<Body>> {
        let mut headers = HeaderMap::new();
        if let Some(a) = accept {
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(a).expect("header"),
            );
        }
        serve(&Method::GET, path, &headers)
    }

    #[test]
    fn every_console_route_answers_the_app_and_nothing_else_does() {
        for path in [
            "/",
            "/login",
            "/tests",
            "/tests/",
            "/tests/x",
            "/tests/new",
            "/runs",
            "/runs/r-1",
        ] {
            let r = get(path, None).unwrap_or_else(|| panic!("{path} is the console's"));
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html;charset=utf-8");
        }
        for path in [
            "/api/v1/runs",
            "/runs/a/b",
            "/tests//",
            "/nope",
            "/healthz",
            "/openapi.json",
            "/index.html",
        ] {
            assert!(get(path, None).is_none(), "{path} is not the console's");
        }
        let post = serve(&Method::POST, "/", &HeaderMap::new());
        assert!(post.is_none());
        let missing = get("/assets/nope.js", None).expect("the console's answer");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn assets_are_typed_gzipped_on_request_and_revalidated_by_etag() {
        let plain = get("/assets/app.js", None).expect("app.js");
        assert_eq!(
            plain.headers()[header::CONTENT_TYPE],
            "text/javascript;charset=utf-8"
        );
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let zipped = get("/assets/app.js", Some("br, gzip;q=0.8")).expect("app.js");
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        let length = |r: &Response<Body>| -> u64 {
            r.headers()[header::CONTENT_LENGTH]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("number")
        };
        assert!(length(&zipped) < length(&plain));
        assert!(get("/assets/app.js", Some("gzip;q=0"))
            .expect("app.js")
            .headers()
            .get(header::CONTENT_ENCODING)
            .is_none());

        let etag = plain.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, etag);
        let again = serve(&Method::GET, "/assets/app.js", &headers).expect("app.js");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn the_embedded_gzip_is_the_file() {
        use std::io::Read as _;
        for (path, _, _, raw, gz) in FILES {
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(*gz)
                .read_to_end(&mut back)
                .expect("gzip");
            assert_eq!(&back, raw, "{path}");
        }
    }
}
