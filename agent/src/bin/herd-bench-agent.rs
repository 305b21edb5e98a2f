//! `herd-bench-agent PLAN`: a diagnostic that runs one agent's load without a coordinator or a
//! broker, so the engine can be measured against wrk and oha on equal terms (see `bench/`).
//!
//! It runs the whole plan as agent 0 of 1 with full recording (frames are built and encoded every
//! second exactly as in a real run, then discarded) and prints one JSON line: requests, dropped,
//! frames, and the merged p50/p99 latency in ms.

use herd_agent::engine::{run_load, LoadIo, LoadSpec};
use herd_agent::recorder::FrameIdentity;
use herd_protocol::clock::Clock;
use herd_protocol::histogram::{new_latency, LatencyMs};
use herd_protocol::{plan, AgentId, RunId};
use std::cell::Cell;
use std::process::ExitCode;
use std::rc::Rc;
use tokio::sync::mpsc;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: herd-bench-agent PLAN.yaml");
        return ExitCode::from(2);
    };
    match run(&path) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("herd-bench-agent: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Files a plan names (scripts, feeders, bodies), read beside the plan.
struct Beside(std::path::PathBuf);

impl plan::PlanFiles for Beside {
    fn read(&self, path: &str, _limit: usize) -> Result<Vec<u8>, String> {
        std::fs::read(self.0.join(path)).map_err(|e| e.to_string())
    }
}

fn run(path: &str) -> Result<String, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let dir = std::path::Path::new(path)
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    let plan = plan::from_yaml_str_with(&text, &Beside(dir))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (_control, control_rx) = mpsc::unbounded_channel();
        let (frames_tx, mut frames_rx) = mpsc::unbounded_channel();
        let io = LoadIo {
            control: control_rx,
            frames: frames_tx,
            vus: Rc::new(Cell::new(0)),
        };
        let spec = LoadSpec {
            plan,
            agent_count: 1,
            agent_index: 0,
            start: tokio::time::Instant::now(),
            clock: Clock::new(),
            identity: FrameIdentity {
                run: RunId::new("bench")?,
                agent: AgentId::numbered(0),
            },
            joins_later: false,
        };
        // Frames are merged as they come, as a coordinator would; the engine runs beside it.
        let merge = async move {
            let mut all = new_latency();
            while let Some(frame) = frames_rx.recv().await {
                if let Ok(h) = frame.total.latency.decode() {
                    let _ = all.add(&h);
                }
            }
            all
        };
        let local = tokio::task::LocalSet::new();
        let (report, all) = local
            .run_until(async { tokio::join!(run_load(spec, io), merge) })
            .await;
        let report = report?;
        let lat = LatencyMs::of(&all);
        Ok(format!(
            "{{\"requests\": {}, \"dropped\": {}, \"frames\": {}, \"p50_ms\": {}, \"p99_ms\": {}}}",
            report.requests, report.dropped, report.frames, lat.p50, lat.p99
        ))
    })
}
