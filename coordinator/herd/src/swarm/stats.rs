//! Small figures the bench reports: distributions, and the coordinator process's own CPU and
//! memory read from `/proc` (Linux), split between the embedded broker's threads and the rest.

use serde_json::{json, Value};

/// p50, p99 and max of a set of measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Distribution {
    /// Measurements.
    pub n: u64,
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Distribution {
    /// The distribution of `values` (all zero when empty).
    pub fn of(mut values: Vec<f64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let i = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
            values[i]
        };
        Self {
            n: values.len() as u64,
            p50: rank(0.50),
            p99: rank(0.99),
            max: values[values.len() - 1],
        }
    }

    /// `{p50, p99, max}` rounded to 0.1 ms.
    pub fn to_json(self) -> Value {
        let r = |v: f64| (v * 10.0).round() / 10.0;
        json!({"p50": r(self.p50), "p99": r(self.p99), "max": r(self.max)})
    }

    /// Reads `{p50, p99, max}` back.
    pub fn from_json(value: &Value) -> Self {
        let f = |k: &str| value.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        Self {
            n: 0,
            p50: f("p50"),
            p99: f("p99"),
            max: f("max"),
        }
    }
}

/// Threads of the embedded broker (rumqttd): the thread herd starts it on, its router, its
/// listener (named after the listener, `herd-v4`) and its timer.
const BROKER_THREADS: [&str; 4] = ["herd-broker", "router-0", "herd-v4", "timer"];

/// CPU seconds this process has used so far: (broker threads, everything else).
pub fn cpu_seconds() -> (f64, f64) {
    // Clock ticks per second: 100 on every Linux this runs on (USER_HZ).
    const TICKS: f64 = 100.0;
    let (mut broker, mut rest) = (0u64, 0u64);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0.0, 0.0);
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: comm may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ticks = stat_ticks(&stat);
        if BROKER_THREADS.contains(&comm) {
            broker += ticks;
        } else {
            rest += ticks;
        }
    }
    (broker as f64 / TICKS, rest as f64 / TICKS)
}

/// CPU seconds process `pid` has used so far (all its threads; 0 when it is gone): the
/// simulated agents' child, so the bench reports the swarm's cost apart from the coordinator's.
pub fn process_cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .map_or(0.0, |stat| stat_ticks(&stat) as f64 / 100.0)
}

/// utime + stime of a `/proc/…/stat` line, in clock ticks.
fn stat_ticks(stat: &str) -> u64 {
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After comm: state is field 0, utime field 11, stime field 12.
    [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum()
}

/// This process's peak resident memory (`VmHWM`), in MB.
pub fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// This process's resident memory now (`VmRSS`), in MB.
pub fn rss_mb() -> f64 {
    status_mb("VmRSS:")
}

fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Whether memory stays flat: resident memory sampled once a second from the run's start, read
/// at the end of the first minute and at the end, and the growth per minute in between. State
/// per agent-second that grows with run length shows up as a steady slope here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RssTrend {
    /// Resident MB after the first minute (or at the last sample of a shorter run).
    pub after_first_minute_mb: f64,
    /// Resident MB at the end.
    pub end_mb: f64,
    /// (end − after first minute) per minute in between; 0 for runs of a minute or less.
    pub growth_mb_per_min: f64,
    /// Every 30th sample (30 s, 60 s, …): the shape of the curve.
    pub every_30s_mb: Vec<f64>,
}

impl RssTrend {
    /// The trend of samples taken once a second (sample `i` at `i + 1` seconds).
    pub fn of(samples: &[f64]) -> Self {
        let (Some(&end), Some(&first)) = (samples.last(), samples.get(59).or(samples.last()))
        else {
            return Self::default();
        };
        let minutes = samples.len().saturating_sub(60) as f64 / 60.0;
        Self {
            after_first_minute_mb: first,
            end_mb: end,
            growth_mb_per_min: if minutes > 0.0 {
                (end - first) / minutes
            } else {
                0.0
            },
            every_30s_mb: samples.iter().skip(29).step_by(30).copied().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let d = Distribution::of((1..=100).map(f64::from).collect());
        assert_eq!((d.n, d.p50, d.p99, d.max), (100, 50.0, 99.0, 100.0));
        assert_eq!(Distribution::of(Vec::new()), Distribution::default());
    }

    #[test]
    fn the_rss_trend_reads_the_first_minute_and_the_slope_after_it() {
        let flat: Vec<f64> = (0..180)
            .map(|i| if i < 60 { i as f64 } else { 60.0 })
            .collect();
        let t = RssTrend::of(&flat);
        assert_eq!(
            (t.after_first_minute_mb, t.end_mb, t.growth_mb_per_min),
            (59.0, 60.0, 0.5)
        );
        let growing: Vec<f64> = (0..180).map(f64::from).collect();
        assert_eq!(RssTrend::of(&growing).growth_mb_per_min, 60.0);
        assert_eq!(
            RssTrend::of(&growing).every_30s_mb,
            [29.0, 59.0, 89.0, 119.0, 149.0, 179.0]
        );
        assert_eq!(RssTrend::of(&[5.0, 6.0]).after_first_minute_mb, 6.0);
        assert_eq!(RssTrend::of(&[]), RssTrend::default());
    }

    #[test]
    fn this_process_has_used_some_cpu_and_memory() {
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        let (broker, rest) = cpu_seconds();
        assert_eq!(broker, 0.0);
        assert!(rest > 0.0);
        assert!(peak_rss_mb() > 1.0);
        assert!(rss_mb() > 1.0);
        assert!(process_cpu_seconds(std::process::id()) >= rest - 0.02);
        assert_eq!(
            stat_ticks("1 (a b) R 0 0 0 0 0 0 0 0 0 0 7 5 0"),
            12,
            "a command name with spaces"
        );
    }
}
