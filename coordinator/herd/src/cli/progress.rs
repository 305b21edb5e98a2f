//! The live progress line: elapsed/total, rps, p50, p99, errors, agents k/N.

use herd_coordinator::run::RunView;
use std::io::{IsTerminal, Write};
use std::time::Duration;
use tokio::sync::watch;

/// Prints the run's progress once a second until the task is aborted. On a terminal the line is
/// rewritten in place; elsewhere (CI logs) one line per second is written.
pub async fn follow(view: watch::Receiver<RunView>) {
    let tty = std::io::stderr().is_terminal();
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    loop {
        interval.tick().await;
        let line = render(&view.borrow());
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}

/// Ends an in-place progress line.
pub fn clear() {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
}

fn render(v: &RunView) -> String {
    let (rps, p50, p99) = v
        .last_second
        .as_ref()
        .map_or((0, 0.0, 0.0), |s| (s.requests, s.p50_ms, s.p99_ms));
    // Before the start, how many agents are ready; after, how many are still running.
    let agents = if v.phase.load_started() || v.phase.is_over() {
        v.agents_live
    } else {
        v.agents_ready
    };
    format!(
        "[{:>9}] {:>5.1}s/{:.0}s  {:>7} rps  p50 {:>7.2}ms  p99 {:>7.2}ms  requests {:>8}  errors {:>5}  agents {}/{}",
        v.phase.as_str(),
        v.elapsed_s.min(v.planned_s + 999.0),
        v.planned_s,
        rps,
        p50,
        p99,
        v.requests,
        v.errors,
        agents,
        v.agents_expected
    )
}
