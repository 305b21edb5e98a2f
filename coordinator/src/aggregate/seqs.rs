//! The set of sequence numbers received from one agent.
//!
//! Agents number their frames 0, 1, 2, … and almost always deliver them in order, so the set is
//! kept as "everything below `contiguous`" plus the few out-of-order numbers above it: constant
//! memory for a well-behaved agent however long the run, and gaps are cheap to list.

use std::collections::BTreeSet;
use std::ops::Range;

/// Received sequence numbers.
#[derive(Debug, Default, Clone)]
pub(super) struct SeqSet {
    /// Every number below this one was received.
    contiguous: u64,
    /// Numbers received above `contiguous` (never contains `contiguous` itself).
    above: BTreeSet<u64>,
}

impl SeqSet {
    /// Whether `seq` was received.
    pub(super) fn contains(&self, seq: u64) -> bool {
        seq < self.contiguous || self.above.contains(&seq)
    }

    /// Records `seq`; false if it was already there.
    pub(super) fn insert(&mut self, seq: u64) -> bool {
        if self.contains(seq) {
            return false;
        }
        if seq == self.contiguous {
            self.contiguous += 1;
            while self.above.remove(&self.contiguous) {
                self.contiguous += 1;
            }
        } else {
            self.above.insert(seq);
        }
        true
    }

    /// Whether every number in `0..n` was received.
    pub(super) fn has_all_below(&self, n: u64) -> bool {
        self.contiguous >= n
    }

    /// One past the highest number received (0 when none was).
    pub(super) fn end(&self) -> u64 {
        self.above.last().map_or(self.contiguous, |last| last + 1)
    }

    /// The runs of numbers in `0..n` that were not received, in order.
    pub(super) fn gaps_below(&self, n: u64) -> Vec<Range<u64>> {
        let mut gaps = Vec::new();
        let mut next = self.contiguous;
        for &seq in self.above.range(..n) {
            if seq > next {
                gaps.push(next..seq);
            }
            next = seq + 1;
        }
        if next < n {
            gaps.push(next..n);
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::SeqSet;

    #[test]
    fn in_order_numbers_stay_contiguous() {
        let mut s = SeqSet::default();
        for seq in 0..1000 {
            assert!(s.insert(seq));
        }
        assert!(s.above.is_empty());
        assert!(s.has_all_below(1000));
        assert!(!s.insert(999));
        assert_eq!(s.end(), 1000);
    }

    #[test]
    fn gaps_are_listed_and_filled() {
        let mut s = SeqSet::default();
        for seq in [0, 1, 4, 2, 6] {
            assert!(s.insert(seq));
        }
        assert!(!s.insert(4));
        assert_eq!(s.gaps_below(8), vec![3..4, 5..6, 7..8]);
        assert_eq!(s.gaps_below(u64::MAX), vec![3..4, 5..6, 7..u64::MAX]);
        assert_eq!(s.end(), 7);
        assert!(s.insert(3));
        assert!(s.insert(5));
        assert!(s.has_all_below(7));
        assert!(s.above.is_empty());
        assert!(s.gaps_below(7).is_empty());
        assert_eq!(s.gaps_below(9), vec![7..9]);
    }
}
