//! Exact splitting of plan totals across agents: 20 VUs on 3 agents are 7 + 7 + 6, never 6.67 each.

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
}
