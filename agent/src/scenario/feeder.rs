//! This agent's rows of a data feeder, and how they are handed to its VUs.
//!
//! The agent keeps only its own rows (agent `i` of `n`: rows `i, i + n, …` of the plan's feeder,
//! see [`Feeder::rows_for`]), so no row is ever used by two agents. `shared`: each iteration of
//! any VU takes the next row, round-robin, starting over after the last. `per_vu`: VU slot `s`
//! takes row `s` (modulo the agent's row count) once, when it starts. `random`: each iteration
//! takes a row drawn uniformly from the agent's rows. `unique`: each iteration takes the next
//! row, and after the last there is none ([`AgentFeeder::exhausted`]): the iteration does not
//! run, and the engine stops the VU or the run as the feeder's `on_exhausted` says. With rows split by
//! agent index and never handed out twice by an agent, every row is used at most once in the
//! whole run, with no coordination between agents while the load runs.

use super::names::Names;
use super::template::random_below;
use herd_protocol::plan::{Feeder, FeederMode, OnExhausted};
use std::cell::Cell;

/// One feeder, as this agent uses it.
#[derive(Debug)]
pub(crate) struct AgentFeeder {
    /// Its name in the plan, for the reason a run ends.
    pub(crate) name: String,
    /// What happens when a `unique` feeder has no row left.
    pub(crate) on_exhausted: OnExhausted,
    /// Variable index of each column.
    columns: Vec<usize>,
    /// This agent's rows; never empty.
    rows: Vec<Vec<String>>,
    mode: FeederMode,
    /// Shared and unique modes: the next row to hand out.
    next: Cell<usize>,
}

impl AgentFeeder {
    /// The rows of `feeder` that agent `index` of `count` uses; the error says why there are none.
    pub(crate) fn new(
        feeder: &Feeder,
        names: &Names,
        count: u32,
        index: u32,
    ) -> Result<Self, String> {
        let rows: Vec<Vec<String>> = feeder.rows_for(count, index).map(<[_]>::to_vec).collect();
        if rows.is_empty() {
            return Err(format!(
                "feeder {} has {} rows, none of them for agent {index} of {count}",
                feeder.name,
                feeder.rows.len()
            ));
        }
        let columns = feeder
            .columns
            .iter()
            .map(|c| names.get(c).ok_or_else(|| format!("unknown variable {c}")))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name: feeder.name.clone(),
            on_exhausted: feeder.on_exhausted,
            columns,
            rows,
            mode: feeder.mode,
            next: Cell::new(0),
        })
    }

    /// A VU in `slot` starts: a per-VU feeder gives it its row.
    pub(crate) fn start_vu(&self, slot: u32, vars: &mut [String]) {
        if self.mode == FeederMode::PerVu {
            self.fill(slot as usize % self.rows.len(), vars);
        }
    }

    /// Whether a `unique` feeder has no row left for this agent (checked before any feeder
    /// hands out a row, so an iteration that cannot run takes no row of another feeder).
    pub(crate) fn exhausted(&self) -> bool {
        self.mode == FeederMode::Unique && self.next.get() >= self.rows.len()
    }

    /// An iteration starts: shared, random and unique feeders give it a row (a `unique` one
    /// that is [exhausted](Self::exhausted) gives none).
    pub(crate) fn start_iteration(&self, vars: &mut [String]) {
        let row = match self.mode {
            FeederMode::PerVu => return,
            FeederMode::Shared => {
                let row = self.next.get();
                self.next.set((row + 1) % self.rows.len());
                row
            }
            FeederMode::Random => random_below(self.rows.len() as u64) as usize,
            FeederMode::Unique => {
                let row = self.next.get();
                if row >= self.rows.len() {
                    return;
                }
                self.next.set(row + 1);
                row
            }
        };
        self.fill(row, vars);
    }

    fn fill(&self, row: usize, vars: &mut [String]) {
        for (column, value) in self.columns.iter().zip(&self.rows[row]) {
            if let Some(slot) = vars.get_mut(*column) {
                // Reuses the slot's buffer: no allocation once values have been seen.
                slot.clone_from(value);
            }
        }
    }
}
