//! The agent's own health: how much CPU the process uses, read from the kernel's accounting.
//!
//! An agent that saturates its core measures itself, not the target: requests leave late and
//! latencies are read late. Every frame therefore carries the process's CPU use over the last
//! second (user + system time from `/proc/self/stat`, so no `unsafe` and no extra crate), its
//! longest event-loop delay, and the work in flight, and the coordinator flags such seconds.

use std::time::Duration;
use tokio::time::Instant;

/// Clock ticks per second of `/proc/*/stat` times: `USER_HZ`, fixed at 100 in Linux's ABI.
const TICKS_PER_SEC: f64 = 100.0;

/// Turns successive readings of the process's CPU time into a percentage of one core.
#[derive(Debug)]
pub struct CpuSampler {
    last: Option<(Instant, u64)>,
    percent: f64,
}

impl CpuSampler {
    /// A sampler whose first reading starts now.
    pub fn new() -> Self {
        Self {
            last: cpu_ticks().map(|t| (Instant::now(), t)),
            percent: 0.0,
        }
    }

    /// CPU use since the previous call (or since creation), in percent of one core; 0 where
    /// `/proc` is not available.
    pub fn sample(&mut self) -> f64 {
        let now = Instant::now();
        let Some(ticks) = cpu_ticks() else {
            return 0.0;
        };
        let percent = match self.last {
            Some((at, before)) => {
                let wall = now.saturating_duration_since(at);
                // Ticks are 10 ms: a window this short would read 0 % or 200 %; keep it open.
                if wall < Duration::from_millis(50) {
                    return self.percent;
                }
                ticks.saturating_sub(before) as f64 / TICKS_PER_SEC / wall.as_secs_f64() * 100.0
            }
            None => 0.0,
        };
        self.last = Some((now, ticks));
        self.percent = (percent * 10.0).round() / 10.0;
        self.percent
    }
}

impl Default for CpuSampler {
    fn default() -> Self {
        Self::new()
    }
}

/// User + system time of this process, in clock ticks.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_ticks(&stat)
}

/// Fields 14 and 15 (utime, stime) of a `stat` line; the command name (field 2) may contain
/// spaces and parentheses, so counting starts after its last `)`.
fn parse_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state is field 3, so utime (14) is the 12th from here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line = "4242 (herd (x) y) R 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 1 0";
        assert_eq!(parse_ticks(line), Some(175));
        assert_eq!(parse_ticks("garbage"), None);
    }

    #[test]
    fn a_busy_loop_shows_up() {
        let mut s = CpuSampler::new();
        let until = std::time::Instant::now() + Duration::from_millis(300);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let p = s.sample();
        // Other processes may share the core; a busy loop still shows clearly.
        assert!(p > 20.0 && p <= 200.0, "{p}");
    }
}
