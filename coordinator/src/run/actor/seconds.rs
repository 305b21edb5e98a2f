//! The run's per-second rows for its summary, kept in memory only while they may still change.
//!
//! Why: the summary carries every second of the run, and holding them all until the end cost
//! about 1 KB per second of run whatever the number of agents: the 1-hour soak of stop 14
//! (`bench/soak.py --minutes 60`, 4 agents) grew the coordinator from 28.4 to 32.2 MiB between
//! its 5th and 60th minute, almost all of it these rows. A second that the store holds as it is
//! and that can no longer change is dropped from memory; the summary reads such seconds back
//! from the store when the run ends ([`RunSeconds::merged`]).
//!
//! When a second can no longer change: the aggregator drops a second [`LATE_HORIZON_S`] after the
//! latest emitted one ([`crate::aggregate::Aggregator::settled_before`]); a frame later than that
//! is counted in the run's totals only, never in its second. When the store holds it as it is: a
//! flush that wrote the row's latest version succeeded ([`RunSeconds::stored`]). A row changed
//! again after it was written (a late frame) gets a new version, so a write of an older version
//! never lets the newer one go. A store that is down keeps every row it did not take in memory.
//!
//! [`LATE_HORIZON_S`]: crate::aggregate::LATE_HORIZON_S

use herd_protocol::summary::SecondSummary;
use std::collections::BTreeMap;

/// One row: the summary of second `t`, which version of it this is, and whether the store holds
/// exactly this version.
#[derive(Debug)]
struct Row {
    /// The absolute second (Unix seconds) the row is of, as the aggregator knows it.
    second: u64,
    summary: SecondSummary,
    version: u64,
    stored: bool,
}

/// The seconds of a run's summary: those still in memory, and how many were dropped from it.
#[derive(Debug, Default)]
pub(super) struct RunSeconds {
    /// By `t` (seconds since the load's start).
    recent: BTreeMap<u64, Row>,
    /// The version the next [`RunSeconds::put`] gets.
    next_version: u64,
    /// Rows dropped from memory since the run began here: the store holds them.
    dropped: u64,
}

impl RunSeconds {
    /// Puts the latest summary of `second` (a new or a changed row, not stored yet) and returns
    /// its version, for [`RunSeconds::stored`] once a write of it succeeded.
    pub(super) fn put(&mut self, second: u64, summary: SecondSummary) -> u64 {
        let version = self.next_version;
        self.next_version += 1;
        self.recent.insert(
            summary.t,
            Row {
                second,
                summary,
                version,
                stored: false,
            },
        );
        version
    }

    /// The store took version `version` of row `t`: the row may be dropped once settled, unless
    /// it changed again since.
    pub(super) fn stored(&mut self, t: u64, version: u64) {
        if let Some(row) = self.recent.get_mut(&t).filter(|r| r.version == version) {
            row.stored = true;
        }
    }

    /// Every row in memory is what the store holds (a resumed run's seconds, read from it).
    pub(super) fn all_stored(&mut self) {
        for row in self.recent.values_mut() {
            row.stored = true;
        }
    }

    /// Drops the stored rows of seconds before `settled_before` (absolute), which nothing can
    /// change any more; the last row stays, for the run's view.
    pub(super) fn forget_settled(&mut self, settled_before: u64) {
        let last = self.recent.keys().next_back().copied();
        let before = self.recent.len();
        self.recent
            .retain(|t, row| !(row.stored && row.second < settled_before && Some(*t) != last));
        self.dropped += (before - self.recent.len()) as u64;
    }

    /// The latest second, for the run's view.
    pub(super) fn last(&self) -> Option<&SecondSummary> {
        self.recent.values().next_back().map(|r| &r.summary)
    }

    /// Whether some rows were dropped from memory, so the summary must read them back.
    pub(super) fn dropped_any(&self) -> bool {
        self.dropped > 0
    }

    /// The rows in memory, in order.
    pub(super) fn in_memory(&self) -> Vec<SecondSummary> {
        self.recent.values().map(|r| r.summary.clone()).collect()
    }

    /// Every second of the run, ordered by `t`: the store's rows (`stored`, as read back at the
    /// end) with the ones in memory, which are as new or newer, in their place.
    pub(super) fn merged(
        in_memory: Vec<SecondSummary>,
        stored: Vec<SecondSummary>,
    ) -> Vec<SecondSummary> {
        let mut all: BTreeMap<u64, SecondSummary> = stored.into_iter().map(|s| (s.t, s)).collect();
        all.extend(in_memory.into_iter().map(|s| (s.t, s)));
        all.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: u64, requests: u64) -> SecondSummary {
        SecondSummary {
            t,
            requests,
            errors: 0,
            dropped: 0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            agents_reported: 1,
            agents_expected: 1,
            p90_ms: None,
            p999_ms: None,
            vus: None,
            status_codes: BTreeMap::new(),
            error_kinds: BTreeMap::new(),
            health: None,
            regions: BTreeMap::new(),
            scenarios: BTreeMap::new(),
        }
    }

    const START: u64 = 1_000;

    #[test]
    fn only_stored_settled_rows_leave_memory_and_the_last_one_stays() {
        let mut seconds = RunSeconds::default();
        let versions: Vec<u64> = (0..5).map(|t| seconds.put(START + t, row(t, 10))).collect();
        // Rows 0..=3 stored; row 2 changed again after its write was taken.
        for t in 0..4 {
            seconds.stored(t, versions[t as usize]);
        }
        seconds.put(START + 2, row(2, 11));
        seconds.forget_settled(START + 5);
        let kept: Vec<u64> = seconds.in_memory().iter().map(|s| s.t).collect();
        // 0, 1 and 3 are gone; 2 (changed since stored) and 4 (never stored, and last) stay.
        assert_eq!(kept, vec![2, 4]);
        assert!(seconds.dropped_any());
        assert_eq!(seconds.last().map(|s| s.t), Some(4));
    }

    #[test]
    fn rows_not_settled_stay_even_when_stored() {
        let mut seconds = RunSeconds::default();
        for t in 0..3 {
            let v = seconds.put(START + t, row(t, 1));
            seconds.stored(t, v);
        }
        seconds.forget_settled(START + 1);
        let kept: Vec<u64> = seconds.in_memory().iter().map(|s| s.t).collect();
        assert_eq!(kept, vec![1, 2]);
    }

    #[test]
    fn an_old_write_succeeding_late_does_not_let_a_newer_row_go() {
        let mut seconds = RunSeconds::default();
        let old = seconds.put(START, row(0, 5));
        seconds.put(START, row(0, 6));
        seconds.put(START + 1, row(1, 1));
        seconds.stored(0, old);
        seconds.forget_settled(START + 10);
        assert_eq!(seconds.in_memory()[0].requests, 6);
        assert!(!seconds.dropped_any());
    }

    #[test]
    fn a_resumed_runs_rows_are_stored_already() {
        let mut seconds = RunSeconds::default();
        for t in 0..3 {
            seconds.put(START + t, row(t, 1));
        }
        seconds.all_stored();
        seconds.forget_settled(START + 3);
        assert_eq!(seconds.in_memory().len(), 1);
    }

    #[test]
    fn the_merge_prefers_memory_and_keeps_the_order() {
        let stored = vec![row(0, 1), row(1, 1), row(2, 1)];
        let memory = vec![row(2, 9), row(3, 4)];
        let all = RunSeconds::merged(memory, stored);
        let got: Vec<(u64, u64)> = all.iter().map(|s| (s.t, s.requests)).collect();
        assert_eq!(got, vec![(0, 1), (1, 1), (2, 9), (3, 4)]);
    }
}
