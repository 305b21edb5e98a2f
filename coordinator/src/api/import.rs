//! `POST /api/v1/import`: the console's upload. The body is the file (JMeter, Taurus, HAR or DLT
//! test JSON, detected by content); the query takes the overrides of `herd import`
//! (`target`, `vus`, `ramp`, `hold`, `agents`, `include_static`, and `set.NAME=VALUE`). The answer
//! is the plan (YAML text, as `herd import` writes it) with the report of every source element.
//! Nothing is stored: the console shows the plan in its editor, and saving it is a normal write.
//! Files the source names (CSV data, scripts) cannot be read here; the report says so.

use super::guard::IMPORT_BODY as MAX_FILE;
use super::respond::{error, json, Body};
use herd_protocol::import::{self, ImportOptions};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::collections::HashMap;

/// Converts the uploaded file.
pub async fn handle(req: Request<Incoming>, query: &HashMap<String, String>) -> Response<Body> {
    let options = match options(query) {
        Ok(o) => o,
        Err((field, problem)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("{field}: {problem}"),
            )
        }
    };
    let bytes = match http_body_util::Limited::new(req.into_body(), MAX_FILE)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid",
                format!("cannot read the file (at most {} MiB): {e}", MAX_FILE >> 20),
            )
        }
    };
    match import::convert(&bytes, &options) {
        Ok(imported) => json(
            StatusCode::OK,
            &serde_json::json!({
                "format": imported.format,
                "plan": imported.plan_yaml,
                "report": imported.report,
                "schedule": imported.schedule,
            }),
        ),
        Err(e) => error(StatusCode::BAD_REQUEST, "invalid", e.to_string()),
    }
}

fn options(q: &HashMap<String, String>) -> Result<ImportOptions, (String, String)> {
    let number = |key: &str| -> Result<Option<u32>, (String, String)> {
        q.get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| (key.to_string(), format!("{v:?} is not a whole number")))
            })
            .transpose()
    };
    let span = |key: &str| -> Result<_, (String, String)> {
        q.get(key)
            .map(|v| herd_protocol::duration::parse(v).map_err(|e| (key.to_string(), e)))
            .transpose()
    };
    Ok(ImportOptions {
        target: q.get("target").cloned(),
        vus: number("vus")?,
        ramp: span("ramp")?,
        hold: span("hold")?,
        agents: number("agents")?,
        set: q
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("set.")?.to_string(), v.clone())))
            .collect(),
        include_static: q.get("include_static").is_some_and(|v| v != "false"),
    })
}
