//! End-to-end: `herd up` accepting Cognito-style JWTs, verified against a JWKS the test serves
//! itself, with RSA keys generated for this test only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use herd_e2e::jwt::{JwksServer, RsaKey};
use herd_e2e::service::{plan, Service};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_herdtest";
const AUDIENCE: &str = "herd-console";

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn claims(groups: &[&str], iss: &str, aud: &str, exp: i64) -> Value {
    json!({"sub": "user-1", "iss": iss, "aud": aud, "exp": exp, "iat": now_s() - 5,
           "token_use": "id", "cognito:groups": groups})
}

fn status_of(s: &Service, method: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
    s.request(method, "/api/v1/tests", Some(token), body)
}

#[test]
fn jwts_are_checked_for_signature_issuer_audience_and_expiry_and_keys_rotate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = tempfile::tempdir().expect("tempdir");
    let a = RsaKey::generate(keys.path(), "key-a");
    let b = RsaKey::generate(keys.path(), "key-b");
    let jwks = JwksServer::start(vec![a.jwk()]);
    let s = Service::start(
        dir.path(),
        &[
            "--jwks-url",
            &jwks.url(),
            "--jwt-issuer",
            ISSUER,
            "--jwt-audience",
            AUDIENCE,
        ],
    );
    let later = now_s() + 300;
    let test = json!({"id": "jwt", "name": "jwt",
                      "plan": plan("jwt", "http://127.0.0.1:9", 1, 1, 1, &[])});

    // A valid token of the operator group reads and writes; another group only reads.
    let operator = a.sign("key-a", &claims(&["operator"], ISSUER, AUDIENCE, later));
    assert_eq!(status_of(&s, "GET", &operator, None).0, 200);
    let (status, body) = status_of(&s, "POST", &operator, Some(&test));
    assert_eq!(status, 201, "{body}");
    let viewer = a.sign("key-a", &claims(&["analysts"], ISSUER, AUDIENCE, later));
    assert_eq!(status_of(&s, "GET", &viewer, None).0, 200);
    let (status, body) = status_of(&s, "POST", &viewer, Some(&test));
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));

    // Refused: expired, signed by a key the JWKS does not hold under that kid, another audience,
    // another issuer, and an unsigned token.
    let refused = [
        (
            "expired",
            a.sign(
                "key-a",
                &claims(&["operator"], ISSUER, AUDIENCE, now_s() - 60),
            ),
        ),
        (
            "wrongly signed",
            b.sign("key-a", &claims(&["operator"], ISSUER, AUDIENCE, later)),
        ),
        (
            "wrong audience",
            a.sign("key-a", &claims(&["operator"], ISSUER, "other-app", later)),
        ),
        (
            "wrong issuer",
            a.sign(
                "key-a",
                &claims(&["operator"], "https://evil.example", AUDIENCE, later),
            ),
        ),
        (
            "unsigned",
            unsigned(&claims(&["operator"], ISSUER, AUDIENCE, later)),
        ),
    ];
    for (case, token) in &refused {
        let (status, body) = status_of(&s, "GET", token, None);
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("unauthenticated")),
            "{case}: {body}"
        );
    }
    assert_eq!(jwks.fetches(), 1, "the keys are cached");

    // Rotation: a token with a kid the cached set lacks refetches the JWKS and is accepted.
    jwks.set_keys(vec![a.jwk(), b.jwk()]);
    std::thread::sleep(Duration::from_millis(1100));
    let rotated = b.sign("key-b", &claims(&["operator"], ISSUER, AUDIENCE, later));
    let (status, body) = status_of(&s, "GET", &rotated, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(jwks.fetches(), 2, "an unknown kid refetched the JWKS");

    // A flood of unknown kids does not turn into a flood of fetches.
    for _ in 0..5 {
        let token = a.sign("key-zzz", &claims(&["operator"], ISSUER, AUDIENCE, later));
        assert_eq!(status_of(&s, "GET", &token, None).0, 401);
    }
    assert!(jwks.fetches() <= 3, "fetches: {}", jwks.fetches());
    assert_eq!(status_of(&s, "GET", &operator, None).0, 200);
}

/// `alg: none`, no signature.
fn unsigned(claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": "key-a"});
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[test]
fn the_jwks_is_fetched_over_https_trusting_the_given_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = tempfile::tempdir().expect("tempdir");
    let a = RsaKey::generate(keys.path(), "key-a");
    let jwks = herd_e2e::jwt::HttpsJwks::start(keys.path(), vec![a.jwk()]);
    let ca = jwks.ca.to_str().expect("utf-8 path").to_string();
    let args = |with_ca: bool| {
        let mut v = vec![
            "--jwks-url".to_string(),
            jwks.url(),
            "--jwt-issuer".into(),
            ISSUER.into(),
            "--jwt-audience".into(),
            AUDIENCE.into(),
        ];
        if with_ca {
            v.extend(["--jwks-ca".to_string(), ca.clone()]);
        }
        v
    };
    let token = a.sign(
        "key-a",
        &claims(&["operator"], ISSUER, AUDIENCE, now_s() + 300),
    );

    // Without the CA the server's certificate is not trusted: the token cannot be checked.
    let untrusted = tempfile::tempdir().expect("tempdir");
    let argv = args(false);
    let s = Service::start(
        untrusted.path(),
        &argv.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(status_of(&s, "GET", &token, None).0, 401);
    drop(s);

    let argv = args(true);
    let s = Service::start(
        dir.path(),
        &argv.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let (status, body) = status_of(&s, "GET", &token, None);
    assert_eq!(status, 200, "{body}");
}
