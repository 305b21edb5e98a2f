//! Exact splitting of plan totals across agents: 20 VUs on 3 agents are 7 + 7 + 6, never 6.67 each.
//!
//! **Invariant.** At every instant of a run, the shares of the agents carrying the load add up
//! to the plan's total exactly: in the closed model every agent takes [`share`] of the same
//! whole-run VU target; in the open model arrival `k` of the one global schedule is played by
//! exactly one agent. This holds when the set of agents changes mid-run (a lost agent's share is
//! redistributed, or a replacement takes it over): each change is a *reassignment* — from an
//! instant every agent receives, the load is split over a new list of carriers — and every agent
//! keeps its [`Parts`], the reassignments it heard as a timeline. Evaluated on the same instants,
//! the same totals and the same carriers, the agents' shares still add up exactly (the proptests
//! below check both models over random reassignments). An agent left out of a reassignment
//! carries nothing from its instant on.

use std::time::Duration;

/// The share of `total` that agent `index` (0-based) of `count` agents carries. The shares of all
/// agents add up to `total` exactly, and differ by at most one; lower indices get the remainder.
pub fn share(total: u64, count: u32, index: u32) -> u64 {
    if count == 0 || index >= count {
        return 0;
    }
    let count = u64::from(count);
    let index = u64::from(index);
    total / count + u64::from(index < total % count)
}

/// One agent's place in the split from an instant on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// From when (an offset from the run's start).
    pub from: Duration,
    /// How many agents carry the load.
    pub count: u32,
    /// This agent's index among them; `None`: it carries nothing.
    pub index: Option<u32>,
}

/// One agent's parts over a run: the start's, then one per reassignment it heard, by `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts(Vec<Part>);

impl Parts {
    /// From the start on: `index` of `count` (`None`: nothing, e.g. a replacement that joins later).
    pub fn new(count: u32, index: Option<u32>) -> Self {
        Self(vec![Part {
            from: Duration::ZERO,
            count,
            index,
        }])
    }

    /// From `from` on, this agent is `index` of `count`; a later part heard before is replaced
    /// (as a live ramp replaces the rest of the stages). Hearing the same reassignment twice
    /// changes nothing.
    pub fn reassign(&mut self, from: Duration, count: u32, index: Option<u32>) {
        self.0.retain(|p| p.from < from);
        self.0.push(Part { from, count, index });
    }

    /// The part in effect `elapsed` after the start.
    pub fn at(&self, elapsed: Duration) -> Part {
        self.0
            .iter()
            .rev()
            .find(|p| p.from <= elapsed)
            .or(self.0.first())
            .copied()
            .unwrap_or(Part {
                from: Duration::ZERO,
                count: 0,
                index: None,
            })
    }

    /// When the part after the one in effect at `elapsed` begins.
    pub fn next_change(&self, elapsed: Duration) -> Option<Duration> {
        self.0.iter().map(|p| p.from).find(|f| *f > elapsed)
    }

    /// This agent's share of `total` at `elapsed`.
    pub fn share_at(&self, total: u64, elapsed: Duration) -> u64 {
        let part = self.at(elapsed);
        part.index.map_or(0, |i| share(total, part.count, i))
    }

    /// The largest share of `total` this agent has in any of its parts.
    pub fn most(&self, total: u64) -> u64 {
        self.0
            .iter()
            .map(|p| p.index.map_or(0, |i| share(total, p.count, i)))
            .max()
            .unwrap_or(0)
    }

    /// The first arrival at or after `k` this agent plays, with its planned time. `time_of` gives
    /// each arrival's planned offset from the start (non-decreasing in `k`; `None` past the last).
    /// Arrival `k` belongs to the part in effect at its planned time, and in it to the agent
    /// whose index is `k mod count`: so the carriers of every part divide its arrivals exactly.
    pub fn next_arrival(
        &self,
        mut k: u64,
        time_of: impl Fn(u64) -> Option<Duration>,
    ) -> Option<(u64, Duration)> {
        loop {
            let t = time_of(k)?;
            let part = self.at(t);
            let next = self.next_change(t);
            if let (Some(j), true) = (part.index, part.count > 0) {
                let (m, j) = (u64::from(part.count), u64::from(j));
                let mine = k + (j + m - k % m) % m;
                // Past the last arrival under this part, a later part may still have some for
                // this agent (its share grew near the end): go on to the next change.
                if let Some(tm) = time_of(mine) {
                    if next.is_none_or(|n| tm < n) {
                        return Some((mine, tm));
                    }
                }
            }
            k = first_at_or_after(k, next?, &time_of)?;
        }
    }
}

/// The first arrival at or after `k` planned at or after `t` (`None`: there is none).
fn first_at_or_after(
    k: u64,
    t: Duration,
    time_of: &impl Fn(u64) -> Option<Duration>,
) -> Option<u64> {
    // Past the last arrival counts as "after": the predicate is monotone in k.
    let after = |k: u64| time_of(k).is_none_or(|tk| tk >= t);
    if after(k) {
        return time_of(k).map(|_| k);
    }
    let (mut lo, mut step) = (k, 1u64);
    let mut hi = k.saturating_add(step);
    while !after(hi) {
        lo = hi;
        step = step.saturating_mul(2);
        hi = hi.saturating_add(step);
    }
    // after(lo) is false, after(hi) is true.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if after(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    time_of(hi).map(|_| hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn twenty_on_three_is_seven_seven_six() {
        assert_eq!(
            (0..3).map(|i| share(20, 3, i)).collect::<Vec<_>>(),
            vec![7, 7, 6]
        );
    }

    proptest! {
        #[test]
        fn shares_add_up_exactly(total in 0u64..1_000_000, count in 1u32..200) {
            let shares: Vec<u64> = (0..count).map(|i| share(total, count, i)).collect();
            prop_assert_eq!(shares.iter().sum::<u64>(), total);
            let (min, max) = (shares.iter().min().copied(), shares.iter().max().copied());
            prop_assert!(max.unwrap_or(0) - min.unwrap_or(0) <= 1);
        }
    }

    /// Every agent's parts after the reassignments `moves` (`(from_ms, carriers)`, each carrier a
    /// position in 0..agents; the start's carriers are all agents).
    fn parts_of(agents: u32, moves: &[(u64, Vec<u32>)]) -> Vec<Parts> {
        (0..agents)
            .map(|a| {
                let mut parts = Parts::new(agents, Some(a));
                for (from_ms, carriers) in moves {
                    let index = carriers.iter().position(|c| *c == a).map(|i| i as u32);
                    parts.reassign(
                        Duration::from_millis(*from_ms),
                        carriers.len() as u32,
                        index,
                    );
                }
                parts
            })
            .collect()
    }

    fn moves() -> impl Strategy<Value = Vec<(u64, Vec<u32>)>> {
        prop::collection::vec(
            (1u64..10_000, prop::collection::btree_set(0u32..6, 1..6)),
            0..4,
        )
        .prop_map(|mut v| {
            v.sort_by_key(|(t, _)| *t);
            v.into_iter()
                .map(|(t, set)| (t, set.into_iter().collect()))
                .collect()
        })
    }

    proptest! {
        /// Closed model: over any survivors, at any instant, the shares sum to the plan's total.
        #[test]
        fn shares_over_the_carriers_add_up_at_every_instant(
            moves in moves(), total in 0u64..10_000, at_ms in 0u64..12_000,
        ) {
            let parts = parts_of(6, &moves);
            let at = Duration::from_millis(at_ms);
            let sum: u64 = parts.iter().map(|p| p.share_at(total, at)).sum();
            prop_assert_eq!(sum, total);
        }

        /// Open model: over any survivors, every planned arrival is played exactly once.
        #[test]
        fn every_arrival_is_played_exactly_once(moves in moves(), rate in 1u64..3_000) {
            let total = rate * 12;
            let time_of = |k: u64| (k < total).then(|| Duration::from_micros(k * 1_000_000 / rate));
            let mut played = vec![0u32; total as usize];
            for parts in parts_of(6, &moves) {
                let mut k = 0;
                while let Some((mine, t)) = parts.next_arrival(k, time_of) {
                    prop_assert!(mine >= k);
                    prop_assert_eq!(Some(t), time_of(mine));
                    played[mine as usize] += 1;
                    k = mine + 1;
                }
            }
            prop_assert!(played.iter().all(|n| *n == 1), "{:?}", played.iter().enumerate().find(|(_, n)| **n != 1));
        }
    }

    /// Found by the proptest above: agent 0's next arrival under the first part (12) was past
    /// the end, and it gave up instead of taking 9, 10 and 11, which were all its own after the
    /// change at 8.001 s.
    #[test]
    fn an_agent_whose_share_grows_near_the_end_plays_the_last_arrivals() {
        let time_of = |k: u64| (k < 12).then(|| Duration::from_secs(k));
        let mut played = Vec::new();
        for parts in parts_of(6, &[(8001, vec![0])]) {
            let mut k = 0;
            while let Some((mine, _)) = parts.next_arrival(k, time_of) {
                played.push(mine);
                k = mine + 1;
            }
        }
        played.sort_unstable();
        assert_eq!(played, (0..12).collect::<Vec<_>>());
    }

    #[test]
    fn a_repeated_reassignment_changes_nothing_and_a_later_one_replaces_the_rest() {
        let mut p = Parts::new(3, Some(2));
        p.reassign(Duration::from_secs(5), 2, Some(1));
        let once = p.clone();
        p.reassign(Duration::from_secs(5), 2, Some(1));
        assert_eq!(p, once);
        assert_eq!(p.share_at(20, Duration::from_secs(4)), 6);
        assert_eq!(p.share_at(20, Duration::from_secs(5)), 10);
        p.reassign(Duration::from_secs(3), 3, None);
        assert_eq!(p.share_at(20, Duration::from_secs(6)), 0);
        assert_eq!(
            p.next_change(Duration::from_secs(1)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(p.most(20), 6);
    }
}
