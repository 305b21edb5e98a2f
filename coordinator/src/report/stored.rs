//! The report of a run as the store holds it: what `GET /api/v1/runs/{id}/report.html` and
//! `herd report RUN_ID --html FILE` both serve, read the same way.

use super::html::{render_html, ReportInput};
use crate::store::{Store, StoreError};
use herd_protocol::RunId;

/// Why a stored run has no report.
#[derive(Debug, thiserror::Error)]
pub enum StoredReportError {
    /// The store has no such run.
    #[error("no run {0}")]
    NotFound(RunId),
    /// The run has not ended: its summary, which the report is built from, is not there yet.
    #[error("run {run} has not ended (it is {state}): its report is written from its summary")]
    NotEnded {
        /// The run.
        run: RunId,
        /// Its state now.
        state: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The single-file HTML report of `run`, written at `now_ms`.
pub async fn stored_report(
    store: &dyn Store,
    run: &RunId,
    now_ms: u64,
) -> Result<String, StoredReportError> {
    let record = store
        .get_run(run)
        .await?
        .ok_or_else(|| StoredReportError::NotFound(run.clone()))?;
    let not_ended = || StoredReportError::NotEnded {
        run: run.clone(),
        state: record.state.as_str(),
    };
    if !record.state.is_terminal() {
        return Err(not_ended());
    }
    let summary = store.get_summary(run).await?.ok_or_else(not_ended)?;
    let seconds = store.list_second_summaries(run).await?;
    Ok(render_html(&ReportInput {
        summary: &summary,
        seconds: &seconds,
        plan: Some(&record.plan),
        created_at_ms: Some(record.created_at_ms),
        test_id: record.test.as_deref(),
        written_at_ms: now_ms,
    }))
}
