//! The load profile over time: the plan's stages, possibly replaced by live ramps, and this
//! agent's share of it.
//!
//! Each ramp starts a new segment at an absolute offset from the run's start, ramping linearly
//! from the whole-run target at that instant (as the previous segments define it) to its first
//! stage. Every agent evaluates the same function of time on the same totals and takes
//! [`split::share`] of it, so the shares of all agents add up exactly at every instant.

use herd_protocol::plan::{ramp_vus, Load, Stage};
use herd_protocol::split;
use std::time::Duration;

/// One stretch of the profile: stages that begin at `start`, ramping from `from` VUs.
#[derive(Debug, Clone, PartialEq)]
struct Segment {
    start: Duration,
    from: u32,
    stages: Vec<Stage>,
}

impl Segment {
    fn end(&self) -> Duration {
        self.start + self.stages.iter().map(|s| s.duration).sum::<Duration>()
    }

    /// The whole-run target `elapsed` after the run's start (which must be >= `start`); the
    /// same interpolation as [`Load::vus_at`] ([`ramp_vus`]), rounded down, 0 after the last stage.
    fn vus_at(&self, elapsed: Duration) -> u32 {
        ramp_vus(&self.stages, self.from, self.start, elapsed)
    }
}

/// The whole-run VU target as a function of time since the start; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Ordered by `start`; the first starts at zero from zero VUs.
    segments: Vec<Segment>,
}

impl Schedule {
    /// The plan's profile.
    pub fn new(load: &Load) -> Self {
        Self {
            segments: vec![Segment {
                start: Duration::ZERO,
                from: 0,
                stages: load.stages.clone(),
            }],
        }
    }

    fn segment_at(&self, elapsed: Duration) -> Option<&Segment> {
        self.segments.iter().rev().find(|s| s.start <= elapsed)
    }

    /// Whole-run target `elapsed` after the start.
    pub fn total_at(&self, elapsed: Duration) -> u32 {
        self.segment_at(elapsed).map_or(0, |s| s.vus_at(elapsed))
    }

    /// This agent's share of the target (agent `index` of `count`).
    pub fn share_at(&self, elapsed: Duration, count: u32, index: u32) -> u32 {
        let share = split::share(u64::from(self.total_at(elapsed)), count, index);
        u32::try_from(share).unwrap_or(u32::MAX)
    }

    /// Whether every stage is over at `elapsed`.
    pub fn is_over(&self, elapsed: Duration) -> bool {
        self.segments.last().is_none_or(|s| elapsed >= s.end())
    }

    /// Replaces the profile from `at` (offset from the start) on with `stages`, ramping from the
    /// target the profile had at `at`.
    pub fn ramp(&mut self, at: Duration, stages: Vec<Stage>) {
        let from = self.total_at(at);
        self.segments.retain(|s| s.start < at);
        self.segments.push(Segment {
            start: at,
            from,
            stages,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(secs: u64, vus: u32) -> Stage {
        Stage {
            duration: Duration::from_secs(secs),
            vus,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_plan_profile_matches_the_protocol_interpolation() {
        let load = Load {
            stages: vec![stage(2, 20), stage(3, 20), stage(2, 0)],
            ..Load::default()
        };
        let s = Schedule::new(&load);
        for t in (0..8000).step_by(37) {
            assert_eq!(s.total_at(ms(t)), load.vus_at(ms(t)), "at {t} ms");
        }
        assert!(!s.is_over(ms(6999)));
        assert!(s.is_over(ms(7000)));
    }

    #[test]
    fn shares_add_up_to_the_total_at_every_instant() {
        let s = Schedule::new(&Load {
            stages: vec![stage(3, 20), stage(1, 7)],
            ..Load::default()
        });
        for t in (0..4000).step_by(13) {
            let sum: u32 = (0..3).map(|i| s.share_at(ms(t), 3, i)).sum();
            assert_eq!(sum, s.total_at(ms(t)));
        }
        assert_eq!(
            (0..3)
                .map(|i| s.share_at(ms(3000), 3, i))
                .collect::<Vec<_>>(),
            vec![7, 7, 6]
        );
    }

    #[test]
    fn a_ramp_continues_from_the_current_target() {
        let mut s = Schedule::new(&Load {
            stages: vec![stage(10, 100)],
            ..Load::default()
        });
        // At 5 s the plan is at 50 VUs; ramp to 10 over 2 s, then hold 10 for 1 s.
        s.ramp(ms(5000), vec![stage(2, 10), stage(1, 10)]);
        assert_eq!(s.total_at(ms(4000)), 40);
        assert_eq!(s.total_at(ms(5000)), 50);
        assert_eq!(s.total_at(ms(6000)), 30);
        assert_eq!(s.total_at(ms(7500)), 10);
        assert!(!s.is_over(ms(7999)));
        assert!(s.is_over(ms(8000)));
        // A second ramp replaces the rest of the first.
        s.ramp(ms(6000), vec![stage(1, 30)]);
        assert_eq!(s.total_at(ms(6500)), 30);
        assert!(s.is_over(ms(7000)));
    }
}
