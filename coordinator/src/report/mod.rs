//! Reports of a finished run, for people: the single-file HTML report ([`html`]).
//!
//! [`render_html`] is a pure function from a run's results (its [`Summary`] and per-second
//! [`SecondSummary`]s) to a document, so the API route, `herd report --html` and
//! `herd run --out html=FILE` all write the same report from the same data; [`stored_report`]
//! reads those results from a [`crate::store::Store`] for the first two.
//!
//! [`Summary`]: herd_protocol::summary::Summary
//! [`SecondSummary`]: herd_protocol::summary::SecondSummary

mod bundle;
pub mod html;
mod stored;

pub use html::{render_html, ReportInput};
pub use stored::{stored_report, StoredReportError};
