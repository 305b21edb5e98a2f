//! Fire times, with explicit instants: DST changes, month ends, end dates, cron fields.

use crate::calendar::{next_fire, Cron};
use herd_protocol::command::{Every, Schedule};
use jiff::Timestamp;

fn ms(text: &str) -> u64 {
    let t: Timestamp = text.parse().expect("valid instant");
    t.as_millisecond() as u64
}

fn iso(ms: u64) -> String {
    Timestamp::from_millisecond(ms as i64)
        .expect("valid")
        .to_string()
}

/// The next `n` fire times from `from`, each the first one after the previous.
fn fires(schedule: &Schedule, from: &str, n: usize) -> Vec<String> {
    let mut at = ms(from);
    let mut out = Vec::new();
    for _ in 0..n {
        match next_fire(schedule, at).expect("valid schedule") {
            Some(next) => {
                out.push(iso(next));
                at = next + 1;
            }
            None => break,
        }
    }
    out
}

#[test]
fn biweekly_keeps_the_wall_clock_time_across_a_dst_change() {
    // Paris moves to summer time on 2026-03-29: 09:00 local is 08:00Z before and 07:00Z after.
    let schedule = Schedule::Recurring {
        every: Every::Biweekly,
        start: "2026-03-02T08:00:00Z".into(),
        tz: "Europe/Paris".into(),
        until: None,
    };
    assert_eq!(
        fires(&schedule, "2026-03-01T00:00:00Z", 4),
        [
            "2026-03-02T08:00:00Z",
            "2026-03-16T08:00:00Z",
            "2026-03-30T07:00:00Z",
            "2026-04-13T07:00:00Z"
        ]
    );
    // Asking from far later lands on the same series.
    assert_eq!(
        fires(&schedule, "2026-03-30T07:00:00.001Z", 1),
        ["2026-04-13T07:00:00Z"]
    );
}

#[test]
fn monthly_from_the_31st_falls_on_each_months_last_day_and_stops_at_until() {
    let schedule = Schedule::Recurring {
        every: Every::Monthly,
        start: "2026-01-31T12:00:00Z".into(),
        tz: "UTC".into(),
        until: Some("2026-04-15T00:00:00Z".into()),
    };
    assert_eq!(
        fires(&schedule, "2026-01-01T00:00:00Z", 10),
        [
            "2026-01-31T12:00:00Z",
            "2026-02-28T12:00:00Z",
            "2026-03-31T12:00:00Z"
        ]
    );
}

#[test]
fn daily_and_weekly_series() {
    let daily = Schedule::Recurring {
        every: Every::Daily,
        start: "2026-01-01T06:30:00Z".into(),
        tz: "UTC".into(),
        until: None,
    };
    assert_eq!(
        fires(&daily, "2026-02-10T07:00:00Z", 2),
        ["2026-02-11T06:30:00Z", "2026-02-12T06:30:00Z"]
    );
    let weekly = Schedule::Recurring {
        every: Every::Weekly,
        start: "2026-01-01T06:30:00Z".into(),
        tz: "UTC".into(),
        until: None,
    };
    assert_eq!(
        fires(&weekly, "2026-01-02T00:00:00Z", 1),
        ["2026-01-08T06:30:00Z"]
    );
}

#[test]
fn at_fires_once_and_not_in_the_past() {
    let at = Schedule::At {
        at: "2026-05-01T10:00:00+02:00".into(),
    };
    assert_eq!(
        fires(&at, "2026-04-01T00:00:00Z", 3),
        ["2026-05-01T08:00:00Z"]
    );
    assert!(fires(&at, "2026-06-01T00:00:00Z", 1).is_empty());
}

#[test]
fn cron_in_a_zone_with_steps_ranges_and_names() {
    let cron = |expr: &str, tz: &str| Schedule::Cron {
        expr: expr.into(),
        tz: tz.into(),
        until: None,
    };
    assert_eq!(
        fires(
            &cron("*/20 9-10 * * mon-fri", "UTC"),
            "2026-01-02T10:30:00Z",
            3
        ),
        // Friday 10:40, then Monday 09:00 and 09:20.
        [
            "2026-01-02T10:40:00Z",
            "2026-01-05T09:00:00Z",
            "2026-01-05T09:20:00Z"
        ]
    );
    assert_eq!(
        fires(
            &cron("0 9 * * *", "America/New_York"),
            "2026-03-07T00:00:00Z",
            2
        ),
        // New York moves to summer time on 2026-03-08.
        ["2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z"]
    );
    // Day-of-month OR day-of-week when both are restricted: the 1st, or any Sunday.
    assert_eq!(
        fires(&cron("0 0 1 * sun", "UTC"), "2026-02-27T00:00:00Z", 2),
        ["2026-03-01T00:00:00Z", "2026-03-08T00:00:00Z"]
    );
    // 02:30 does not exist in Paris on 2026-03-29: skipped, not fired at 03:30.
    assert_eq!(
        fires(
            &cron("30 2 * * *", "Europe/Paris"),
            "2026-03-28T12:00:00Z",
            2
        ),
        ["2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"]
    );
}

#[test]
fn bad_schedules_name_their_field() {
    let err = |s: Schedule| next_fire(&s, 0).expect_err("invalid").path;
    assert_eq!(
        err(Schedule::At {
            at: "tomorrow".into()
        }),
        "schedule.at"
    );
    assert_eq!(
        err(Schedule::Cron {
            expr: "* * *".into(),
            tz: "UTC".into(),
            until: None
        }),
        "schedule.expr"
    );
    assert_eq!(
        err(Schedule::Cron {
            expr: "* * * * *".into(),
            tz: "Mars/Olympus".into(),
            until: None
        }),
        "schedule.tz"
    );
    for bad in [
        "61 * * * *",
        "* * * * 8",
        "5-1 * * * *",
        "*/0 * * * *",
        "x * * * *",
    ] {
        assert!(Cron::parse(bad).is_err(), "{bad} must be refused");
    }
}
