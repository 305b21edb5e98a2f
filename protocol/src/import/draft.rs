//! The plan being built by an importer, before it is written as YAML.
//!
//! Why a draft and not [`Plan`](crate::plan::Plan): the output keeps what a typed plan cannot
//! (comments, feeders named by file, body files by path), and the last steps are the same for
//! every format: the `--vus/--ramp/--hold/--agents` overrides, variables nothing defines, and the
//! check by herd's own parser ([`Draft::finish`], in `finish`). This module holds only the
//! draft's types and imports none of its siblings: the importers, the YAML writer and `finish`
//! all build on it.

use serde_json::Value;
use std::time::Duration;

/// How long a load without an end in the source is held.
pub(crate) const DEFAULT_HOLD: Duration = Duration::from_secs(600);

/// The load profile.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DraftLoad {
    /// Virtual users: `(duration, vus)` stages, as the plan's `load.stages`.
    Closed {
        stages: Vec<(Duration, u32)>,
        iterations: Option<u64>,
        per_vu: Option<u32>,
    },
    /// Arrival rate: `(duration, rps)` stages from `start_rps`.
    Open {
        start_rps: f64,
        stages: Vec<(Duration, f64)>,
        max_in_flight: Option<u32>,
    },
}

impl DraftLoad {
    /// `vus` users after a linear ramp of `ramp`, held for `hold`.
    pub fn ramp_hold(vus: u32, ramp: Duration, hold: Duration) -> Self {
        let vus = vus.max(1);
        let mut stages = vec![(ramp, vus)];
        if !hold.is_zero() || ramp.is_zero() {
            stages.push((if hold.is_zero() { DEFAULT_HOLD } else { hold }, vus));
        }
        DraftLoad::Closed {
            stages,
            iterations: None,
            per_vu: None,
        }
    }

    /// The largest number of VUs (the open model's `max_in_flight`, if set).
    pub fn peak_vus(&self) -> u32 {
        match self {
            DraftLoad::Closed { stages, .. } => stages.iter().map(|s| s.1).max().unwrap_or(1),
            DraftLoad::Open { max_in_flight, .. } => max_in_flight.unwrap_or(0),
        }
    }

    /// Total duration of the stages.
    pub fn duration(&self) -> Duration {
        match self {
            DraftLoad::Closed { stages, .. } => stages.iter().map(|s| s.0).sum(),
            DraftLoad::Open { stages, .. } => stages.iter().map(|s| s.0).sum(),
        }
    }
}

/// A feeder: a CSV file beside the plan, or rows carried inline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DraftFeeder {
    pub name: String,
    pub file: Option<String>,
    /// Inline rows, header first (when `file` is `None`).
    pub rows: Vec<Vec<String>>,
    /// Its columns: read, or assumed when the file could not be read.
    pub columns: Vec<String>,
    /// Whether `columns` were read (or written inline) rather than assumed.
    pub columns_known: bool,
    pub per_vu: bool,
    pub note: Option<String>,
}

impl DraftFeeder {
    pub fn inline(name: &str, rows: Vec<Vec<String>>, note: Option<String>) -> Self {
        Self {
            name: name.to_string(),
            file: None,
            columns: rows.first().cloned().unwrap_or_default(),
            rows,
            columns_known: true,
            per_vu: false,
            note,
        }
    }
}

/// A request step.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Req {
    pub name: Option<String>,
    /// The plan key of the method: `get`, `post`…
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub body_file: Option<String>,
    pub status: Option<u16>,
    pub max_latency: Option<Duration>,
    pub body_contains: Vec<String>,
    pub json_checks: Vec<(String, Value)>,
    /// `(variable, json|regex|header, expression)`.
    pub extract: Vec<(String, &'static str, String)>,
    pub notes: Vec<String>,
    /// The origin (`scheme://host[:port]`) the source sent it to, when known at import time.
    pub origin: Option<String>,
    /// Its item in the report (to mark it skipped when its host is not the plan's target).
    pub item: Option<usize>,
}

impl Req {
    /// Sets a header unless one of that name (any case) is set.
    pub fn default_header(&mut self, name: &str, value: &str) {
        if !self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            self.headers.push((name.to_string(), value.to_string()));
        }
    }
}

/// A scenario step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DraftStep {
    Request(Box<Req>),
    Think {
        min: Duration,
        max: Duration,
        note: Option<String>,
    },
}

/// One scenario of a plan with several (`scenarios:`): a JMeter thread group, a Taurus
/// execution.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DraftScenario {
    /// Its name in the plan (a variable-like name, unique in the plan).
    pub name: String,
    pub load: DraftLoad,
    pub load_notes: Vec<String>,
    pub steps: Vec<DraftStep>,
    /// `--vus` as this scenario's share of the total (the groups keep their ratio).
    pub vus_share: Option<u32>,
}

/// A name the plan accepts for a scenario, from a source's name (`Thread Group 1` →
/// `Thread_Group_1`), unique among `taken`.
pub(crate) fn scenario_name(source: &str, taken: &[String]) -> String {
    let mut name: String = source
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, 's');
        if name.len() == 1 {
            name.push_str("cenario");
        }
    }
    let base = name.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

/// A scenario's share of `--vus` (`total`, for all scenarios together) by its `peak` among all
/// scenarios' (`peaks`): the scenarios keep their ratio, as DLT does with thread groups.
pub(crate) fn vus_share(total: u32, peak: u32, peaks: u32) -> u32 {
    ((f64::from(total) * f64::from(peak)) / f64::from(peaks.max(1)))
        .round()
        .max(1.0) as u32
}

/// The plan being built.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Draft {
    pub source: &'static str,
    pub name: String,
    pub target: Option<String>,
    pub agents: Option<u32>,
    pub load: DraftLoad,
    pub load_notes: Vec<String>,
    pub vars: Vec<(String, String)>,
    pub feeders: Vec<DraftFeeder>,
    pub steps: Vec<DraftStep>,
    pub notes: Vec<String>,
    /// `--vus` as this plan's share, when the source split it (JMeter thread groups).
    pub vus_share: Option<u32>,
    /// Several scenarios (JMeter thread groups, Taurus executions); when set, they hold every
    /// load and step, and `load` and `steps` are unused.
    pub scenarios: Vec<DraftScenario>,
}

impl Draft {
    pub fn new(source: &'static str, name: &str) -> Self {
        Self {
            source,
            name: if name.trim().is_empty() {
                "imported".into()
            } else {
                name.trim().to_string()
            },
            target: None,
            agents: None,
            load: DraftLoad::ramp_hold(1, Duration::ZERO, Duration::from_secs(60)),
            load_notes: Vec::new(),
            vars: Vec::new(),
            feeders: Vec::new(),
            steps: Vec::new(),
            notes: Vec::new(),
            vus_share: None,
            scenarios: Vec::new(),
        }
    }

    /// Defines a variable unless it is defined already.
    pub fn define(&mut self, name: &str, value: &str) {
        if !self.vars.iter().any(|(n, _)| n == name) {
            self.vars.push((name.to_string(), value.to_string()));
        }
    }

    /// Every request, of every scenario.
    pub fn requests(&self) -> impl Iterator<Item = &Req> {
        self.steps
            .iter()
            .chain(self.scenarios.iter().flat_map(|s| &s.steps))
            .filter_map(|s| match s {
                DraftStep::Request(r) => Some(r.as_ref()),
                DraftStep::Think { .. } => None,
            })
    }

    /// Every step, of every scenario.
    pub fn steps_mut(&mut self) -> impl Iterator<Item = &mut DraftStep> {
        self.steps
            .iter_mut()
            .chain(self.scenarios.iter_mut().flat_map(|s| &mut s.steps))
    }

    /// Makes request labels unique across scenarios (a plan requires it: results list steps by
    /// label): a label already used by an earlier scenario is prefixed with the scenario's name.
    pub fn distinct_labels(&mut self) {
        let mut seen: Vec<(String, usize)> = Vec::new();
        for (i, s) in self.scenarios.iter_mut().enumerate() {
            for step in &mut s.steps {
                let DraftStep::Request(r) = step else {
                    continue;
                };
                let label = r
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{} {}", r.method.to_ascii_uppercase(), r.path));
                if seen.iter().any(|(l, j)| *l == label && *j != i) {
                    let renamed = format!("{}: {label}", s.name);
                    r.notes.push(format!(
                        "named {renamed:?}: another scenario has a step {label:?}"
                    ));
                    r.name = Some(renamed.clone());
                    seen.push((renamed, i));
                } else {
                    seen.push((label, i));
                }
            }
        }
    }
}

/// The plan key of an HTTP method (`GET` → `get`), for the methods a plan can send.
pub(crate) fn method_key(method: &str) -> Option<&'static str> {
    Some(match method {
        "GET" => "get",
        "POST" => "post",
        "PUT" => "put",
        "PATCH" => "patch",
        "DELETE" => "delete",
        "HEAD" => "head",
        _ => return None,
    })
}
