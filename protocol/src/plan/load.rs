//! The load profile: closed (virtual users) or open (arrival rate), as functions of time.
//!
//! Both models are defined for the whole run; agents take exact shares of them. For the closed
//! model that share is [`split::share`](crate::split::share) of the VU target at every instant.
//! For the open model the plan defines one global arrival schedule — arrival `k` happens when the
//! integral of the rate reaches `k` — and agent `i` of `n` takes every arrival `k ≡ i (mod n)`, so
//! the agents' arrivals add up to the plan's exactly, whatever `n` and however the rate ramps.

use std::time::Duration;

/// The load profile. Exactly one model is set: `stages` (closed) or `arrival` (open).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Load {
    /// Closed model: VU stages in order, each ramping linearly from the previous stage's target
    /// (0 at the start). Empty in the open model.
    pub stages: Vec<Stage>,
    /// Open model: arrival-rate stages; `None` in the closed model.
    pub arrival: Option<Arrival>,
    /// Closed model: how many iterations the whole run starts, all VUs of all agents together
    /// (`None`: no limit). Agents take exact shares ([`split::share`](crate::split::share)); the
    /// run ends when they are done, or when the stages end if that comes first.
    pub iterations: Option<u64>,
    /// Closed model: how many iterations each VU runs before it leaves (`None`: no limit). The
    /// stages still bound the run's duration.
    pub iterations_per_vu: Option<u32>,
}

/// How long a run with an `iterations` limit and no duration may last at most.
pub const DEFAULT_ITERATIONS_DURATION: Duration = Duration::from_secs(600);

/// One closed-model ramp stage. A stage of zero duration jumps to its VU count at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    /// How long the stage lasts.
    pub duration: Duration,
    /// Virtual users (for the whole run, all agents together) at the end of the stage.
    pub vus: u32,
}

/// The open model: iterations start at a planned rate, whether or not earlier ones finished.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    /// Rate (whole run, iterations per second) at the start of the first stage.
    pub start_rps: f64,
    /// Stages in order; each ramps linearly from the previous rate to its own.
    pub stages: Vec<RateStage>,
    /// Most iterations in flight at once (whole run, split across agents like VUs). An arrival
    /// that finds the cap reached waits for a free slot (its latency still counts from its
    /// planned start); one that cannot start within the request timeout is `dropped`.
    pub max_in_flight: u32,
}

/// The stages of a live ramp, for the model the run follows.
#[derive(Debug, Clone, PartialEq)]
pub enum RampStages {
    /// Closed model: VU stages, ramping from the VU target at the ramp's start.
    Vus(Vec<Stage>),
    /// Open model: rate stages, ramping from the arrival rate at the ramp's start.
    Rate(Vec<RateStage>),
}

impl RampStages {
    /// How long the new stages last.
    pub fn duration(&self) -> Duration {
        match self {
            Self::Vus(s) => s.iter().map(|s| s.duration).sum(),
            Self::Rate(s) => s.iter().map(|s| s.duration).sum(),
        }
    }

    /// The stages as a plan writes them (what the ramp command carries).
    pub fn to_json(&self) -> serde_json::Value {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        match self {
            Self::Vus(s) => s
                .iter()
                .map(|s| serde_json::json!({"duration": ms(s.duration), "vus": s.vus}))
                .collect(),
            Self::Rate(s) => s
                .iter()
                .map(|s| serde_json::json!({"duration": ms(s.duration), "rps": s.rps}))
                .collect(),
        }
    }
}

/// One open-model stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateStage {
    /// How long the stage lasts.
    pub duration: Duration,
    /// Iterations per second (whole run) at the end of the stage.
    pub rps: f64,
}

/// Default of [`Arrival::max_in_flight`].
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 1000;

impl Load {
    /// Total planned duration of the load.
    pub fn duration(&self) -> Duration {
        match &self.arrival {
            Some(a) => a.duration(),
            None => self.stages.iter().map(|s| s.duration).sum(),
        }
    }

    /// The whole run's target VU count `elapsed` after the start: the linear interpolation of the
    /// stage it falls in, rounded down; 0 once every stage has ended (and always 0 in the open
    /// model).
    pub fn vus_at(&self, elapsed: Duration) -> u32 {
        ramp_vus(&self.stages, 0, Duration::ZERO, elapsed)
    }

    /// The highest VU count any stage reaches (0 in the open model).
    pub fn max_vus(&self) -> u32 {
        self.stages.iter().map(|s| s.vus).max().unwrap_or(0)
    }
}

/// The VU target `elapsed` after a run's start, for `stages` that begin at `start` and ramp
/// linearly from `from` VUs: the interpolation of the stage `elapsed` falls in, rounded down; 0
/// once every stage has ended. Live ramps reuse it with their own `start` and `from`.
pub fn ramp_vus(stages: &[Stage], from: u32, start: Duration, elapsed: Duration) -> u32 {
    let (mut from, mut start) = (from, start);
    for stage in stages {
        let end = start + stage.duration;
        if elapsed < end {
            let frac = elapsed.saturating_sub(start).as_secs_f64() / stage.duration.as_secs_f64();
            let v = f64::from(from) + (f64::from(stage.vus) - f64::from(from)) * frac;
            return v.floor().max(0.0) as u32;
        }
        from = stage.vus;
        start = end;
    }
    0
}

impl Arrival {
    /// Total planned duration.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// Segments `(start, duration, from_rps, to_rps, arrivals_before)`, in order.
    fn segments(&self) -> impl Iterator<Item = (f64, f64, f64, f64, f64)> + '_ {
        let mut start = 0.0;
        let mut from = self.start_rps;
        let mut before = 0.0;
        self.stages.iter().map(move |s| {
            let d = s.duration.as_secs_f64();
            let seg = (start, d, from, s.rps, before);
            start += d;
            before += (from + s.rps) / 2.0 * d;
            from = s.rps;
            seg
        })
    }

    /// The rate (whole run, per second) `elapsed` after the start; 0 once every stage ended.
    pub fn rate_at(&self, elapsed: Duration) -> f64 {
        let t = elapsed.as_secs_f64();
        for (start, d, r0, r1, _) in self.segments() {
            if t < start + d {
                return r0 + (r1 - r0) * ((t - start) / d).clamp(0.0, 1.0);
            }
        }
        0.0
    }

    /// This schedule with everything from `at` (after the start) on replaced by `stages`, which
    /// ramp from the rate at `at`: a live ramp. Arrivals before `at` keep their planned times,
    /// so agents that apply the same ramp keep splitting one schedule exactly.
    pub fn ramped(&self, at: Duration, stages: Vec<RateStage>) -> Arrival {
        let mut kept = Vec::new();
        let mut start = Duration::ZERO;
        for stage in &self.stages {
            if start >= at {
                break;
            }
            let end = start + stage.duration;
            kept.push(if end <= at {
                *stage
            } else {
                RateStage {
                    duration: at - start,
                    rps: self.rate_at(at),
                }
            });
            start = end;
        }
        let ended = self.duration();
        if at > ended {
            // The ramp begins after the schedule ended: the rate fell to 0 then (a stage of no
            // duration is a jump) and stayed there until `at`.
            kept.push(RateStage {
                duration: Duration::ZERO,
                rps: 0.0,
            });
            kept.push(RateStage {
                duration: at - ended,
                rps: 0.0,
            });
        }
        kept.extend(stages);
        Arrival {
            start_rps: self.start_rps,
            stages: kept,
            max_in_flight: self.max_in_flight,
        }
    }

    /// The planned number of arrivals in the whole run: every `k` with `k < ∫rate`.
    pub fn total(&self) -> u64 {
        let integral: f64 = self
            .segments()
            .map(|(_, d, a, b, _)| (a + b) / 2.0 * d)
            .sum();
        integral.ceil().max(0.0) as u64
    }

    /// When arrival `k` (0-based, whole run) is planned, as an offset from the start; `None` when
    /// the run has fewer arrivals.
    pub fn time_of(&self, k: u64) -> Option<Duration> {
        let k = k as f64;
        for (start, d, r0, r1, before) in self.segments() {
            let after = before + (r0 + r1) / 2.0 * d;
            if k < after {
                // Solve r0·τ + (r1 − r0)/(2d)·τ² = x in the numerically stable form.
                let x = k - before;
                let a = (r1 - r0) / (2.0 * d);
                let denom = r0 + (r0 * r0 + 4.0 * a * x).max(0.0).sqrt();
                let tau = if x <= 0.0 || denom <= 0.0 {
                    0.0
                } else {
                    (2.0 * x / denom).min(d)
                };
                return Some(Duration::from_secs_f64(start + tau));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(start_rps: f64, stages: &[(u64, f64)]) -> Arrival {
        Arrival {
            start_rps,
            stages: stages
                .iter()
                .map(|&(ms, rps)| RateStage {
                    duration: Duration::from_millis(ms),
                    rps,
                })
                .collect(),
            max_in_flight: 10,
        }
    }

    #[test]
    fn a_ramp_keeps_the_arrivals_before_it_and_follows_its_stages_after() {
        // 100/s for 10 s; at 4 s, ramp to 300/s over 2 s, then hold 300/s for 1 s.
        let a = arrival(100.0, &[(10_000, 100.0)]);
        let r = a.ramped(
            Duration::from_secs(4),
            vec![
                RateStage {
                    duration: Duration::from_secs(2),
                    rps: 300.0,
                },
                RateStage {
                    duration: Duration::from_secs(1),
                    rps: 300.0,
                },
            ],
        );
        // 400 before the ramp, (100 + 300) / 2 × 2 = 400 during it, 300 after: 1100 in 7 s.
        assert_eq!(r.total(), 1100);
        assert_eq!(r.duration(), Duration::from_secs(7));
        for k in [0, 1, 250, 399] {
            let (old, new) = (a.time_of(k).expect("old"), r.time_of(k).expect("new"));
            assert!(
                old.abs_diff(new) < Duration::from_micros(1),
                "{k}: {old:?} {new:?}"
            );
        }
        let t = r.time_of(400).expect("the ramp's first").as_secs_f64();
        assert!((t - 4.0).abs() < 1e-9, "{t}");
        assert!((r.rate_at(Duration::from_secs(5)) - 200.0).abs() < 1e-9);
        assert!((r.rate_at(Duration::from_millis(6500)) - 300.0).abs() < 1e-9);
        assert_eq!(r.time_of(1100), None);
        // A ramp after the end starts from 0, with no arrival in the gap.
        let late = a.ramped(
            Duration::from_secs(12),
            vec![RateStage {
                duration: Duration::from_secs(1),
                rps: 50.0,
            }],
        );
        assert_eq!(late.total(), 1000 + 25);
        let t = late
            .time_of(1000)
            .expect("first after the gap")
            .as_secs_f64();
        assert!((t - 12.0).abs() < 1e-9, "{t}");
    }

    #[test]
    fn a_fixed_rate_is_evenly_spaced() {
        let a = arrival(100.0, &[(2000, 100.0)]);
        assert_eq!(a.total(), 200);
        assert_eq!(a.time_of(0), Some(Duration::ZERO));
        let t = a.time_of(150).expect("in range").as_secs_f64();
        assert!((t - 1.5).abs() < 1e-9, "{t}");
        assert_eq!(a.time_of(200), None);
    }

    #[test]
    fn a_ramp_follows_the_integral_of_the_rate() {
        // 0 → 100 rps over 2 s: 100 arrivals; arrival k at sqrt(k/25) s.
        let a = arrival(0.0, &[(2000, 100.0), (1000, 100.0)]);
        assert_eq!(a.total(), 200);
        for k in [1u64, 25, 64, 99] {
            let t = a.time_of(k).expect("in range").as_secs_f64();
            assert!((t - (k as f64 / 25.0).sqrt()).abs() < 1e-9, "{k}: {t}");
        }
        let t = a.time_of(150).expect("in range").as_secs_f64();
        assert!((t - 2.5).abs() < 1e-9);
        // Times never go backwards, even across stages and ramps down.
        let down = arrival(50.0, &[(1000, 200.0), (1500, 10.0), (500, 0.0)]);
        let times: Vec<Duration> = (0..down.total()).filter_map(|k| down.time_of(k)).collect();
        assert_eq!(times.len() as u64, down.total());
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn every_nth_arrival_splits_the_rate_exactly() {
        let a = arrival(0.0, &[(1000, 33.0), (1000, 7.0)]);
        let total = a.total();
        let per_agent: Vec<u64> = (0..3u64)
            .map(|i| {
                (i..)
                    .step_by(3)
                    .take_while(|k| a.time_of(*k).is_some())
                    .count() as u64
            })
            .collect();
        assert_eq!(per_agent.iter().sum::<u64>(), total);
    }
}
