//! 5-field cron expressions (`minute hour day-of-month month day-of-week`), read in a time zone.
//!
//! Fields take `*`, numbers, ranges (`1-5`), steps (`*/15`, `10-50/20`), lists (`1,15`) and names
//! (`jan`, `mon`); day-of-week 0 and 7 are Sunday. As in Vixie cron, when both day fields are
//! restricted a day matches if either does. A local time that does not exist (inside a DST gap) is
//! skipped; one that occurs twice (a DST fold) fires once, at its first occurrence.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// A parsed expression: the allowed values of each field as bit sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    /// Parses an expression; the error names the bad field.
    pub fn parse(expr: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "must have 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            ));
        }
        let mut weekdays = field(fields[4], 0, 7, &WEEKDAYS, "day-of-week")?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Cron {
            minutes: field(fields[0], 0, 59, &[], "minute")?,
            hours: field(fields[1], 0, 23, &[], "hour")?,
            days: field(fields[2], 1, 31, &[], "day-of-month")?,
            months: field(fields[3], 1, 12, &MONTHS, "month")?,
            weekdays,
            days_restricted: fields[2] != "*",
            weekdays_restricted: fields[4] != "*",
        })
    }

    fn day_matches(&self, dt: DateTime) -> bool {
        let dom = self.days & bit(dt.day()) != 0;
        let dow = self.weekdays & bit(dt.weekday().to_sunday_zero_offset()) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            _ => dom && dow,
        }
    }

    /// The first fire time at or after `from`, in `tz`; `None` if there is none within 5 years.
    pub fn next(&self, from: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = from.to_zoned(tz.clone()).datetime();
        // Round up to a whole minute.
        let mut dt = local.with().second(0).subsec_nanosecond(0).build().ok()?;
        if dt < local {
            dt = dt.checked_add(1.minute()).ok()?;
        }
        let limit = dt.checked_add(5.years()).ok()?;
        while dt < limit {
            if self.months & bit(dt.month()) == 0 {
                dt = dt
                    .first_of_month()
                    .checked_add(1.month())
                    .ok()?
                    .start_of_day();
            } else if !self.day_matches(dt) {
                dt = dt.tomorrow().ok()?.start_of_day();
            } else if self.hours & bit(dt.hour()) == 0 {
                dt = dt
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
            } else if self.minutes & bit(dt.minute()) == 0 {
                dt = dt.checked_add(1.minute()).ok()?;
            } else {
                let zoned = tz.to_zoned(dt).ok()?;
                // In a DST gap the local time does not exist and jiff moves it: skip it.
                if zoned.datetime() == dt && zoned.timestamp() >= from {
                    return Some(zoned.timestamp());
                }
                dt = dt.checked_add(1.minute()).ok()?;
            }
        }
        None
    }
}

fn bit(v: i8) -> u64 {
    1u64 << u32::try_from(v).unwrap_or(63)
}

fn value(text: &str, min: u8, max: u8, names: &[&str], name: &str) -> Result<u8, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        // Month names start at 1, weekday names at 0.
        return Ok(i as u8 + min);
    }
    match text.parse::<u8>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(format!("{name}: {text:?} is not a value in {min}-{max}")),
    }
}

fn field(text: &str, min: u8, max: u8, names: &[&str], name: &str) -> Result<u64, String> {
    let mut bits = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => match s.parse::<u8>() {
                Ok(s) if s > 0 => (r, s),
                _ => return Err(format!("{name}: step {s:?} must be a number > 0")),
            },
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                value(a, min, max, names, name)?,
                value(b, min, max, names, name)?,
            )
        } else {
            let v = value(range, min, max, names, name)?;
            (v, if step > 1 { max } else { v })
        };
        if lo > hi {
            return Err(format!("{name}: range {range:?} runs backwards"));
        }
        for v in (lo..=hi).step_by(usize::from(step)) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}
