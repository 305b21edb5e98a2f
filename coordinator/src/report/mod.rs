//! Reports of a finished run, for people: the single-file HTML report ([`html`]).
//!
//! A leaf, like `aggregate`: pure functions from a run's stored results (its [`Summary`] and
//! per-second [`SecondSummary`]s) to a document, so the API route, `herd report --html` and
//! `herd run --out html=FILE` all write the same report from the same data, with no I/O here.
//!
//! [`Summary`]: herd_protocol::summary::Summary
//! [`SecondSummary`]: herd_protocol::summary::SecondSummary

mod bundle;
pub mod html;

pub use html::{render_html, ReportInput};
