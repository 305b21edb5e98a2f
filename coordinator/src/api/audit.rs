//! The audit log of the API's writes: who (the credential's id, never the credential), what
//! (method and path), when, and the status it got. Each write that reaches a handler is recorded
//! once, in the store ([`crate::store::Store::append_audit`]) and as an `audit.write` event on the
//! event sink (the log locally, SNS in AWS mode). Operators read it at `GET /api/v1/audit`.
//!
//! The entry is written after the handler answered, so it carries the outcome; a store failure is
//! logged and does not turn a done write into an error.

use super::auth::Identity;
use super::respond::{json, Body};
use super::state::ApiState;
use crate::events;
use crate::store::AuditEntry;
use herd_protocol::event::Event;
use hyper::{Method, Response, StatusCode};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// Records one write.
pub async fn record(
    state: &ApiState,
    identity: &Identity,
    method: &Method,
    path: &str,
    status: StatusCode,
) {
    let at_ms = state.clock.unix_ms();
    let random = RandomState::new().hash_one((at_ms, path));
    let entry = AuditEntry {
        id: format!("w-{at_ms}-{random:016x}"),
        at_ms,
        actor: identity.subject.clone(),
        action: format!("{method} {path}"),
        status: status.as_u16(),
    };
    let event = Event::AuditWrite {
        id: entry.id.clone(),
        actor: entry.actor.clone(),
        action: entry.action.clone(),
        status: entry.status,
    };
    if let Err(e) = state.store.append_audit(entry).await {
        tracing::error!(error = %e, "cannot store an audit entry");
    }
    state.events.emit(events::message(event, None, at_ms));
}

/// `GET /api/v1/audit?limit=N`: the newest entries first (100 by default, at most 1000).
pub async fn list(state: &ApiState, query: &HashMap<String, String>) -> Response<Body> {
    let limit = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100usize)
        .min(1000);
    match state.store.list_audit(limit).await {
        Ok(entries) => json(StatusCode::OK, &serde_json::json!({ "entries": entries })),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the audit log");
            super::respond::error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        }
    }
}
