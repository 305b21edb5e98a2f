//! herd's exit codes: what a CI job branches on.

use herd_protocol::summary::Verdict;

/// Process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 0: the run completed and every threshold passed (or: the plan is valid).
    Passed = 0,
    /// 1: the run completed and at least one threshold failed.
    ThresholdsFailed = 1,
    /// 2: the plan or the command line is invalid; no load was sent.
    Invalid = 2,
    /// 3: the run did not complete as planned: it failed, was cancelled, or lost an agent.
    RunError = 3,
    /// 4: herd itself could not work (broker, store, I/O).
    Internal = 4,
}

impl From<Verdict> for Code {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Passed => Code::Passed,
            Verdict::Failed => Code::ThresholdsFailed,
            Verdict::Error => Code::RunError,
        }
    }
}

impl From<Code> for std::process::ExitCode {
    fn from(c: Code) -> Self {
        std::process::ExitCode::from(c as u8)
    }
}
