//! One output's task: takes seconds from its bounded queue, batches what is waiting, encodes it
//! for its receiver and pushes it, retrying with backoff. It runs beside the run actor and
//! never blocks it: the actor only `try_send`s (see [`super::Exporter`]).

use super::http::Poster;
use super::point::{SecondPoint, StepPoint};
use super::prom::PromState;
use herd_protocol::plan::Output;
use herd_protocol::summary::OutputReport;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;

/// Seconds one push carries at most (a receiver that was down gets the backlog in a few).
const BATCH: usize = 30;
/// Attempts per push, and the first pause between them (doubled each time).
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// How a sink turns seconds into a request body.
enum Encoder {
    Prometheus(PromState),
    Otlp(Vec<(String, String)>),
}

/// Runs one output until its queue is closed and drained. `seed`: what a resumed run had
/// exported, by step (cumulative outputs go on from it).
pub(super) async fn run(
    output: Output,
    common: Vec<(String, String)>,
    mut queue: mpsc::Receiver<SecondPoint>,
    report: Arc<Mutex<OutputReport>>,
    seed: BTreeMap<String, StepPoint>,
) {
    let poster = Poster::new(output.url().starts_with("https://"));
    let (mut encoder, headers) = match &output {
        Output::Prometheus { labels, .. } => {
            let mut all = common;
            all.extend(labels.iter().cloned());
            let headers = vec![
                ("Content-Encoding".to_string(), "snappy".to_string()),
                ("Content-Type".into(), "application/x-protobuf".into()),
                ("X-Prometheus-Remote-Write-Version".into(), "0.1.0".into()),
                ("User-Agent".into(), "herd".into()),
            ];
            (
                Encoder::Prometheus(PromState::new(all).seeded(&seed)),
                headers,
            )
        }
        Output::Otlp { headers, .. } => {
            let mut all = vec![
                (
                    "Content-Type".to_string(),
                    "application/x-protobuf".to_string(),
                ),
                ("User-Agent".into(), "herd".into()),
            ];
            all.extend(headers.iter().cloned());
            (Encoder::Otlp(common), all)
        }
    };
    let clock = herd_protocol::clock::Clock::new();
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let body = match &mut encoder {
            Encoder::Prometheus(state) => {
                let now_ms = i64::try_from(clock.unix_ms()).unwrap_or(i64::MAX);
                let raw = state.push(&batch, now_ms);
                match snap::raw::Encoder::new().compress_vec(&raw) {
                    Ok(body) => body,
                    Err(e) => {
                        fail(&report, &output, format!("snappy: {e}"));
                        batch.clear();
                        continue;
                    }
                }
            }
            Encoder::Otlp(common) => super::otlp::request(&batch, common),
        };
        batch.clear();
        push(&poster, &output, &headers, body, &report).await;
    }
}

async fn push(
    poster: &Poster,
    output: &Output,
    headers: &[(String, String)],
    body: Vec<u8>,
    report: &Arc<Mutex<OutputReport>>,
) {
    let mut pause = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        match poster.post(output.url(), headers, body.clone()).await {
            Ok(()) => {
                lock(report).pushed += 1;
                return;
            }
            Err(e) if e.retry && attempt < ATTEMPTS => {
                tracing::debug!(output = output.kind(), url = output.url(), error = %e, attempt, "push failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => {
                fail(report, output, e.message);
                return;
            }
        }
    }
}

fn fail(report: &Arc<Mutex<OutputReport>>, output: &Output, message: String) {
    tracing::warn!(output = output.kind(), url = output.url(), error = %message, "push failed");
    let mut r = lock(report);
    r.failed += 1;
    r.last_error = Some(message);
}

pub(super) fn lock(report: &Arc<Mutex<OutputReport>>) -> std::sync::MutexGuard<'_, OutputReport> {
    report.lock().unwrap_or_else(PoisonError::into_inner)
}
