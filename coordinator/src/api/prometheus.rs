//! `/metrics` in the Prometheus text format: the manager's figures (runs by state, agents in use,
//! command outcomes, runs ended) beside the process-wide counters of [`crate::metrics`] (frames,
//! frame lag, agents connected).

use super::respond::Body;
use super::state::ApiState;
use hyper::Response;

/// The metrics page.
pub async fn metrics(state: &ApiState) -> Response<Body> {
    let v = state.manager.view();
    let phases = state.manager.active_phases().await;
    let mut text = String::new();
    text.push_str("# HELP herd_runs Active runs, by state.\n# TYPE herd_runs gauge\n");
    for phase in [
        "launching",
        "waiting_ready",
        "running",
        "stopping",
        "finalizing",
    ] {
        let n = phases.iter().filter(|p| **p == phase).count();
        text.push_str(&format!("herd_runs{{state=\"{phase}\"}} {n}\n"));
    }
    text.push_str("# HELP herd_runs_active Runs in progress.\n# TYPE herd_runs_active gauge\n");
    text.push_str(&format!("herd_runs_active {}\n", v.active_runs));
    text.push_str(
        "# HELP herd_agents_in_use Agents used by active runs.\n# TYPE herd_agents_in_use gauge\n",
    );
    text.push_str(&format!("herd_agents_in_use {}\n", v.agents_in_use));
    text.push_str(
        "# HELP herd_commands_total Commands by outcome.\n# TYPE herd_commands_total counter\n",
    );
    for (outcome, n) in [
        ("done", v.commands_done),
        ("rejected", v.commands_rejected),
        ("repeated", v.commands_repeated),
    ] {
        text.push_str(&format!(
            "herd_commands_total{{outcome=\"{outcome}\"}} {n}\n"
        ));
    }
    text.push_str("# HELP herd_runs_ended_total Runs ended, by final state.\n# TYPE herd_runs_ended_total counter\n");
    let mut ended: Vec<_> = v.runs_ended.iter().collect();
    ended.sort();
    for (state, n) in ended {
        text.push_str(&format!("herd_runs_ended_total{{state=\"{state}\"}} {n}\n"));
    }
    crate::metrics::METRICS.render(&mut text);
    let mut response = Response::new(http_body_util::BodyExt::boxed(http_body_util::Full::new(
        bytes::Bytes::from(text),
    )));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}
