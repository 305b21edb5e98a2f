//! Thread groups to herd loads: the standard group (threads, ramp-up, loops, scheduler
//! duration and delay) and the common plugin groups (Concurrency, Stepping, Ultimate: VU stages;
//! Arrivals: the open model).
//!
//! Why stages: every one of these groups is a piecewise-linear number of threads over time,
//! which is exactly what herd's `stages` are; where a group has something stages cannot say
//! (a start delay, a thread count of 0 between steps), the note says what was changed.

use super::props::{collection, prop, El};
use crate::import::draft::{DraftLoad, DEFAULT_HOLD};
use crate::import::text::Expr;
use std::time::Duration;

/// A thread group's load.
pub(super) struct Group {
    /// Its largest number of threads (for the choice of group and the ratio of `--vus`).
    pub peak: u32,
    pub load: DraftLoad,
    /// What was approximated.
    pub notes: Vec<String>,
}

/// Whether the element is a thread group (standard, setUp/tearDown or plugin).
pub(super) fn is_thread_group(el: &El<'_>) -> bool {
    let c = el.short_class();
    c.ends_with("ThreadGroup") || c == "OpenModelThreadGroup"
}

/// Whether the group runs around the test (setUp/tearDown) rather than as its load.
pub(super) fn is_setup_or_teardown(el: &El<'_>) -> bool {
    matches!(el.short_class(), "SetupThreadGroup" | "PostThreadGroup")
}

fn secs(x: f64) -> Duration {
    Duration::from_secs_f64(x.clamp(0.0, 366.0 * 86_400.0))
}

struct Num<'e, 'x> {
    el: &'e El<'e>,
    expr: &'e mut Expr<'x>,
    notes: Vec<String>,
}

impl Num<'_, '_> {
    /// A number property, evaluated statically; `default` when absent, empty or dynamic.
    fn get(&mut self, name: &str, default: f64) -> f64 {
        let Some(raw) = self.el.prop(name) else {
            return default;
        };
        match self.expr.eval_static(raw) {
            Some(v) if v.trim().is_empty() => default,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => n,
                _ => {
                    self.notes
                        .push(format!("{name} {v:?} is not a number: {default} used"));
                    default
                }
            },
            None => {
                self.notes
                    .push(format!("{name} {raw:?} is set at run time: {default} used"));
                default
            }
        }
    }
}

/// The load of a thread group.
pub(super) fn group_load(el: &El<'_>, expr: &mut Expr<'_>) -> Option<Group> {
    let mut n = Num {
        el,
        expr,
        notes: Vec::new(),
    };
    let load = match el.short_class() {
        "ThreadGroup" | "SetupThreadGroup" | "PostThreadGroup" => standard(&mut n),
        "SteppingThreadGroup" => stepping(&mut n),
        "ConcurrencyThreadGroup" => concurrency(&mut n),
        "ArrivalsThreadGroup" => arrivals(&mut n),
        "UltimateThreadGroup" => ultimate(&mut n),
        _ => return None,
    };
    let peak = match &load {
        DraftLoad::Closed { .. } => load.peak_vus(),
        DraftLoad::Open { max_in_flight, .. } => max_in_flight.unwrap_or(1),
    };
    Some(Group {
        peak,
        load,
        notes: n.notes,
    })
}

fn standard(n: &mut Num<'_, '_>) -> DraftLoad {
    let threads = n.get("ThreadGroup.num_threads", 1.0).max(0.0) as u32;
    let ramp = secs(n.get("ThreadGroup.ramp_time", 1.0));
    let scheduler = n.el.bool("ThreadGroup.scheduler");
    let duration = if scheduler {
        n.get("ThreadGroup.duration", 0.0)
    } else {
        0.0
    };
    let delay = if scheduler {
        n.get("ThreadGroup.delay", 0.0)
    } else {
        0.0
    };
    if delay > 0.0 {
        n.notes
            .push(format!("the start delay of {delay}s is dropped"));
    }
    if n.el.bool("ThreadGroup.delayedStart") {
        n.notes
            .push("threads are created at once, not delayed until needed".into());
    }
    let main = super::props::element_prop(n.el.node, "ThreadGroup.main_controller");
    let forever = main.is_some_and(|m| prop(m, "LoopController.continue_forever") == Some("true"));
    let loops_raw = main
        .and_then(|m| prop(m, "LoopController.loops"))
        .unwrap_or("1");
    let loops = match n.expr.eval_static(loops_raw) {
        Some(v) => v.trim().parse::<i64>().unwrap_or(1),
        None => {
            n.notes
                .push(format!("loops {loops_raw:?} is set at run time: unlimited"));
            -1
        }
    };
    let loops = if loops < 0 || forever && loops <= 0 {
        None
    } else {
        Some(loops.max(1) as u32)
    };
    let threads = threads.max(1);
    if scheduler && duration > 0.0 {
        let hold = secs(duration).saturating_sub(ramp);
        let mut load = DraftLoad::ramp_hold(threads, ramp, hold);
        if secs(duration) < ramp {
            n.notes
                .push("the duration is shorter than the ramp-up: ramp, then a hold of 10m".into());
        }
        if let (Some(l), DraftLoad::Closed { per_vu, .. }) = (loops, &mut load) {
            *per_vu = Some(l);
        }
        return load;
    }
    match loops {
        Some(l) => {
            let mut load = DraftLoad::ramp_hold(threads, ramp, DEFAULT_HOLD);
            if let DraftLoad::Closed {
                iterations, per_vu, ..
            } = &mut load
            {
                *iterations = Some(u64::from(threads) * u64::from(l));
                *per_vu = Some(l);
            }
            load
        }
        None => {
            n.notes.push(
                "the group loops until stopped: held for 10m here (change the last stage)".into(),
            );
            DraftLoad::ramp_hold(threads, ramp, DEFAULT_HOLD)
        }
    }
}

/// `Unit`: `S` seconds or `M` minutes (the plugins' default).
fn unit(n: &mut Num<'_, '_>) -> f64 {
    match n.el.prop("Unit").map(str::trim) {
        Some("S") | Some("s") => 1.0,
        _ => 60.0,
    }
}

fn concurrency(n: &mut Num<'_, '_>) -> DraftLoad {
    let u = unit(n);
    let target = n.get("TargetLevel", 1.0).max(1.0) as u32;
    let ramp = n.get("RampUp", 0.0) * u;
    let steps = n.get("Steps", 0.0).max(0.0) as u32;
    let hold = n.get("Hold", 0.0) * u;
    let iterations = n.get("Iterations", 0.0) as u32;
    let mut stages = Vec::new();
    if steps > 0 && ramp > 0.0 {
        for i in 1..=steps {
            let vus = ((f64::from(target) * f64::from(i)) / f64::from(steps)).ceil() as u32;
            stages.push((Duration::ZERO, vus.max(1)));
            stages.push((secs(ramp / f64::from(steps)), vus.max(1)));
        }
    } else {
        stages.push((secs(ramp), target));
    }
    let hold = if hold > 0.0 {
        secs(hold)
    } else {
        n.notes.push("no hold time: held for 10m".into());
        DEFAULT_HOLD
    };
    stages.push((hold, target));
    DraftLoad::Closed {
        stages,
        iterations: None,
        per_vu: (iterations > 0).then_some(iterations),
    }
}

fn arrivals(n: &mut Num<'_, '_>) -> DraftLoad {
    let u = unit(n);
    let rate = n.get("TargetLevel", 1.0).max(0.0) / u;
    let ramp = n.get("RampUp", 0.0) * u;
    let hold = n.get("Hold", 0.0) * u;
    let limit = n.get("ConcurrencyLimit", 0.0) as u32;
    if n.get("Steps", 0.0) > 0.0 {
        n.notes.push("the rate rises linearly, not in steps".into());
    }
    let mut stages = Vec::new();
    let mut start_rps = 0.0;
    if ramp > 0.0 {
        stages.push((secs(ramp), rate));
    } else {
        start_rps = rate;
    }
    stages.push((if hold > 0.0 { secs(hold) } else { DEFAULT_HOLD }, rate));
    DraftLoad::Open {
        start_rps,
        stages,
        max_in_flight: (limit > 0).then_some(limit),
    }
}

fn stepping(n: &mut Num<'_, '_>) -> DraftLoad {
    let total = n.get("ThreadGroup.num_threads", 1.0).max(1.0) as u32;
    let delay = n.get("Threads initial delay", 0.0);
    let burst = n.get("Start users count burst", 0.0).max(0.0) as u32;
    let count = n.get("Start users count", 1.0).max(1.0) as u32;
    let period = n.get("Start users period", 0.0).max(0.0);
    let ramp = n.get("rampUp", 0.0).max(0.0);
    let flight = n.get("flighttime", 0.0).max(0.0);
    let stop_count = n.get("Stop users count", 0.0).max(0.0) as u32;
    let stop_period = n.get("Stop users period", 0.0).max(0.0);
    if delay > 0.0 {
        n.notes
            .push(format!("the initial delay of {delay}s is dropped"));
    }
    let mut stages = Vec::new();
    let mut cur = burst.min(total);
    if cur > 0 {
        stages.push((Duration::ZERO, cur));
    }
    while cur < total {
        let next = (cur + count).min(total);
        let r = ramp.min(period);
        stages.push((secs(r), next));
        if period > r {
            stages.push((secs(period - r), next));
        }
        cur = next;
    }
    stages.push((
        if flight > 0.0 {
            secs(flight)
        } else {
            DEFAULT_HOLD
        },
        total,
    ));
    if stop_count > 0 && stop_period > 0.0 {
        let steps = total.div_ceil(stop_count);
        stages.push((secs(stop_period * f64::from(steps)), 0));
        n.notes
            .push("the stepped ramp-down is one linear ramp to 0".into());
    }
    if stages.iter().all(|s| s.0.is_zero()) {
        stages.push((DEFAULT_HOLD, total));
    }
    DraftLoad::Closed {
        stages,
        iterations: None,
        per_vu: None,
    }
}

/// The Ultimate Thread Group's rows (threads, initial delay, startup, hold, shutdown) add up to
/// a piecewise-linear number of threads; its breakpoints are the stages.
fn ultimate(n: &mut Num<'_, '_>) -> DraftLoad {
    let mut rows: Vec<[f64; 5]> = Vec::new();
    for row in collection(n.el.node, "ultimatethreadgroupdata") {
        let mut vals = [0.0; 5];
        for (i, cell) in row.children.iter().take(5).enumerate() {
            vals[i] = n
                .expr
                .eval_static(&cell.text)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
                .max(0.0);
        }
        rows.push(vals);
    }
    if rows.is_empty() {
        n.notes.push("no rows: 1 VU for 10m".into());
        return DraftLoad::ramp_hold(1, Duration::ZERO, DEFAULT_HOLD);
    }
    let at = |t: f64| -> f64 {
        rows.iter()
            .map(|[k, d, s, h, sd]| {
                let (up, down) = (d + s, d + s + h);
                if t <= *d {
                    0.0
                } else if t < up {
                    k * (t - d) / s.max(f64::EPSILON)
                } else if t <= down {
                    *k
                } else if t < down + sd {
                    k * (1.0 - (t - down) / sd.max(f64::EPSILON))
                } else {
                    0.0
                }
            })
            .sum()
    };
    let mut points: Vec<f64> = rows
        .iter()
        .flat_map(|[_, d, s, h, sd]| [*d, d + s, d + s + h, d + s + h + sd])
        .collect();
    points.push(0.0);
    points.sort_by(f64::total_cmp);
    points.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    let mut stages: Vec<(Duration, u32)> = Vec::new();
    let mut prev = 0.0;
    let mut clamped = false;
    for &t in points.iter().skip(1) {
        let (left, right) = (at(t - 1e-6).round() as u32, at(t + 1e-6).round() as u32);
        if stages.is_empty() && left == 0 {
            prev = t;
            if right > 0 {
                stages.push((Duration::ZERO, right));
            }
            continue;
        }
        stages.push((secs(t - prev), left));
        if right != left && right > 0 {
            stages.push((Duration::ZERO, right));
        }
        prev = t;
    }
    while stages.len() > 1
        && stages.last().is_some_and(|s| s.1 == 0)
        && stages[stages.len() - 2].1 == 0
    {
        stages.pop();
    }
    let last = stages.len().saturating_sub(1);
    for (i, s) in stages.iter_mut().enumerate() {
        if s.1 == 0 && i != last {
            s.1 = 1;
            clamped = true;
        }
    }
    if clamped {
        n.notes
            .push("moments with 0 threads between rows keep 1 VU".into());
    }
    if points.first().is_some_and(|p| *p == 0.0) && rows.iter().all(|r| r[1] > 0.0) {
        n.notes
            .push("the initial delay before the first row is dropped".into());
    }
    if stages.is_empty() || stages.iter().all(|s| s.1 == 0) {
        return DraftLoad::ramp_hold(1, Duration::ZERO, DEFAULT_HOLD);
    }
    DraftLoad::Closed {
        stages,
        iterations: None,
        per_vu: None,
    }
}
