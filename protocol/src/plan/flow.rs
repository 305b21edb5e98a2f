//! Steps that hold steps: `group`, `choose`, `repeat`, `if`/`then`/`else`, `parallel`; and `pace`.
//!
//! A plain plan is a flat list of requests and pauses; these let one say which requests belong
//! together (a group's results are reported beside its steps'), which path a user takes (weighted
//! at random per iteration, or by a condition over variables and the last status), how often
//! (a fixed repeat) and how fast (an iteration takes at least its `pace`). [`walk`] visits every
//! step of a tree with its field path, so validation and the agent's compiler see nested steps
//! the way they see top-level ones.

use super::expr::Expr;
use super::Step;

/// Frames and the aggregator carry a group's figures among the steps' under this prefix (step
/// names may not start with it), so groups need no second map on the wire or in the store; the
/// summary lists them apart, without the prefix.
pub const GROUP_KEY_PREFIX: &str = "group:";

/// `group: NAME, steps: […]`: requests reported under the group as well as under their steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The group's name.
    pub name: String,
    /// Its steps.
    pub steps: Vec<Step>,
}

/// One branch of a `choose`: taken with probability `weight / sum of weights`.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    /// Relative weight, at least 1.
    pub weight: u32,
    /// Its steps (may be empty: "do nothing" for a share of iterations).
    pub steps: Vec<Step>,
}

/// `repeat: N, steps: […]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Repeat {
    /// How many times, at least 1.
    pub count: u32,
    /// The steps repeated.
    pub steps: Vec<Step>,
}

/// `if: EXPR, then: […], else: […]`.
#[derive(Debug, Clone, PartialEq)]
pub struct If {
    /// The condition as written.
    pub source: String,
    /// The condition.
    pub cond: Expr<String>,
    /// Steps run when it holds.
    pub then: Vec<Step>,
    /// Steps run when it does not (may be empty).
    pub otherwise: Vec<Step>,
}

impl Step {
    /// The lists of steps this step holds, with the field path of each list relative to the
    /// step (`steps`, `choose[1].steps`, `then`, `else`).
    pub fn children(&self) -> Vec<(String, &[Step])> {
        match self {
            Step::Group(g) => vec![("steps".into(), g.steps.as_slice())],
            Step::Repeat(r) => vec![("steps".into(), r.steps.as_slice())],
            Step::Choose(branches) => branches
                .iter()
                .enumerate()
                .map(|(i, b)| (format!("choose[{i}].steps"), b.steps.as_slice()))
                .collect(),
            Step::If(c) => vec![
                ("then".into(), c.then.as_slice()),
                ("else".into(), c.otherwise.as_slice()),
            ],
            Step::Parallel(steps) => vec![("parallel".into(), steps.as_slice())],
            Step::Request(_) | Step::Think(_) | Step::Pace(_) | Step::Script(_) => Vec::new(),
        }
    }
}

/// Visits every step of `steps` and of the steps they hold, parents first, each with its field
/// path under `at` (`scenario[2].choose[0].steps[1]`).
pub fn walk<'a>(steps: &'a [Step], at: &str, f: &mut impl FnMut(&str, &'a Step)) {
    for (i, step) in steps.iter().enumerate() {
        let path = format!("{at}[{i}]");
        f(&path, step);
        for (key, inner) in step.children() {
            walk(inner, &format!("{path}.{key}"), f);
        }
    }
}
