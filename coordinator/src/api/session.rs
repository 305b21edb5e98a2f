//! What a browser asks before and after signing in: `GET /api/v1/auth/config` (no credential:
//! where Cognito's Hosted UI is, if anywhere) and `GET /api/v1/whoami` (the credential's role and
//! subject, so the console shows operators their controls and viewers none), and `GET
//! /api/v1/regions` (what the editor offers for a plan's `regions:`).

use super::auth::{Auth, Identity};
use super::respond::{json, Body};
use hyper::{Response, StatusCode};
use serde_json::json as j;

/// `GET /api/v1/auth/config`: `{"cognito": {domain, client_id, scopes}}` or `{"cognito": null}`.
pub fn config(auth: &Auth) -> Response<Body> {
    let cognito = auth.hosted_ui().map(|ui| {
        j!({
            "domain": ui.domain.trim_end_matches('/'),
            "client_id": ui.client_id,
            "scopes": ["openid", "email"],
        })
    });
    json(StatusCode::OK, &j!({ "cognito": cognito }))
}

/// `GET /api/v1/whoami`: `{"role": "viewer"|"operator", "subject": …}`.
pub fn whoami(identity: &Identity) -> Response<Body> {
    json(
        StatusCode::OK,
        &j!({"role": identity.role.to_string(), "subject": identity.subject}),
    )
}

/// `GET /api/v1/regions`: `{"regions": [NAME, …]}`, the regions a plan's `regions:` may name, or
/// `{"regions": null}` when any name will do (local agents take them as labels).
pub fn regions(regions: Option<Vec<String>>) -> Response<Body> {
    json(StatusCode::OK, &j!({ "regions": regions }))
}
