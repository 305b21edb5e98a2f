//! When a [`Schedule`] fires (`at`, every day / week / two weeks / month, or a [`Cron`]
//! expression in a time zone): pure functions of the schedule and an instant, so every rule
//! (DST, month ends, end dates) is tested with explicit times instead of a waiting clock.
//!
//! Recurring schedules keep the wall-clock time of their start in their zone: a biweekly run at
//! 09:00 Paris time stays at 09:00 across a DST change (its UTC instant moves by an hour). The
//! n-th occurrence is computed from the start directly (start + n periods), so monthly runs from
//! the 31st fall on each month's last day without drifting.

mod cron;

pub use cron::Cron;
use herd_protocol::command::{Every, Schedule};
use herd_protocol::plan::FieldError;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ToSpan};

/// The first fire time of `schedule` at or after `from_ms` (ms since the Unix epoch); `None` when
/// it will not fire again. Errors name the schedule's bad field (`schedule.tz`).
pub fn next_fire(schedule: &Schedule, from_ms: u64) -> Result<Option<u64>, FieldError> {
    let from = Timestamp::from_millisecond(i64::try_from(from_ms).unwrap_or(i64::MAX))
        .map_err(|e| bad("", e))?;
    let next = match schedule {
        Schedule::At { at } => Some(instant("at", at)?).filter(|at| *at >= from),
        Schedule::Recurring {
            every,
            start,
            tz,
            until,
        } => {
            let tz = zone(tz)?;
            let start = instant("start", start)?;
            let until = until.as_deref().map(|u| instant("until", u)).transpose()?;
            recurring(*every, start, &tz, from).filter(|t| until.is_none_or(|u| *t <= u))
        }
        Schedule::Cron { expr, tz, until } => {
            let tz = zone(tz)?;
            let cron = Cron::parse(expr).map_err(|e| bad("expr", e))?;
            let until = until.as_deref().map(|u| instant("until", u)).transpose()?;
            cron.next(from, &tz)
                .filter(|t| until.is_none_or(|u| *t <= u))
        }
    };
    Ok(next.map(|t| u64::try_from(t.as_millisecond()).unwrap_or(0)))
}

/// The first `n` fire times of `schedule` at or after `from_ms`, in order (fewer when it stops
/// firing): what a schedule editor previews. Each is [`next_fire`] after the one before, so the
/// preview is exactly what the scheduler will do.
pub fn next_fires(schedule: &Schedule, from_ms: u64, n: usize) -> Result<Vec<u64>, FieldError> {
    let mut fires = Vec::with_capacity(n);
    let mut from = from_ms;
    while fires.len() < n {
        match next_fire(schedule, from)? {
            Some(at) => {
                fires.push(at);
                from = at.saturating_add(1);
            }
            None => break,
        }
    }
    Ok(fires)
}

fn recurring(every: Every, start: Timestamp, tz: &TimeZone, from: Timestamp) -> Option<Timestamp> {
    let local = start.to_zoned(tz.clone()).datetime();
    let (period, approx_days): (fn(i64) -> Span, i64) = match every {
        Every::Daily => (|n| n.days(), 1),
        Every::Weekly => (|n| (n * 7).days(), 7),
        Every::Biweekly => (|n| (n * 14).days(), 14),
        Every::Monthly => (|n| n.months(), 28),
    };
    // Jump close to `from` (a little before, since DST shifts and short months move things), then
    // walk forward.
    let behind_days = (from.as_second() - start.as_second()) / 86_400;
    let mut n = (behind_days / approx_days - 2).max(0);
    loop {
        let at = tz
            .to_zoned(local.checked_add(period(n)).ok()?)
            .ok()?
            .timestamp();
        if at >= from {
            return Some(at);
        }
        n += 1;
    }
}

fn instant(field: &str, text: &str) -> Result<Timestamp, FieldError> {
    text.parse::<Timestamp>().map_err(|e| {
        bad(
            field,
            format!("must be an RFC 3339 time such as 2026-03-01T09:00:00Z ({e})"),
        )
    })
}

fn zone(name: &str) -> Result<TimeZone, FieldError> {
    TimeZone::get(name).map_err(|_| bad("tz", format!("unknown time zone {name:?}")))
}

fn bad(field: &str, message: impl ToString) -> FieldError {
    FieldError {
        path: if field.is_empty() {
            "schedule".into()
        } else {
            format!("schedule.{field}")
        },
        message: message.to_string(),
    }
}

#[cfg(test)]
mod preview_tests {
    use super::*;

    fn cron(expr: &str, tz: &str) -> Schedule {
        Schedule::Cron {
            expr: expr.into(),
            tz: tz.into(),
            until: None,
        }
    }

    #[test]
    fn five_fires_follow_each_other_as_the_scheduler_would() {
        // 2026-03-27 (Fri) 00:00 UTC; Paris moves to summer time on Sunday 29 March.
        let from = 1_774_569_600_000;
        let fires = next_fires(&cron("0 9 * * *", "Europe/Paris"), from, 5).expect("valid");
        let day = 86_400_000;
        // 09:00 Paris: 08:00 UTC on the 27th and 28th, 07:00 UTC from the 29th.
        let first = from + 8 * 3_600_000;
        assert_eq!(
            fires,
            vec![
                first,
                first + day,
                first + 2 * day - 3_600_000,
                first + 3 * day - 3_600_000,
                first + 4 * day - 3_600_000
            ]
        );
        for pair in fires.windows(2) {
            assert_eq!(
                next_fire(&cron("0 9 * * *", "Europe/Paris"), pair[0] + 1).expect("valid"),
                Some(pair[1])
            );
        }
    }

    #[test]
    fn a_schedule_that_stops_gives_fewer_and_a_bad_one_names_its_field() {
        let once = Schedule::At {
            at: "2031-01-01T09:00:00+01:00".into(),
        };
        assert_eq!(
            next_fires(&once, 0, 5).expect("valid"),
            vec![1_925_020_800_000]
        );
        let e = next_fires(&cron("0 9 * * *", "Mars/Olympus"), 0, 5).expect_err("bad zone");
        assert_eq!(e.path, "schedule.tz");
    }
}
