//! Human durations as users write them in plans: `250ms`, `2s`, `1.5s`, `1m30s`, `1h`, `500us`.

use std::time::Duration;

/// Parses a duration such as `10ms`, `2s`, `1.5s`, `1m30s` or `1h`. A bare number is refused:
/// its unit would be a guess.
pub fn parse(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("must be a duration like \"10s\" or \"250ms\", got an empty string".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("must be a duration like \"10s\" or \"250ms\", got {input:?}"))?;
        let scale = match unit.trim() {
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "must be a duration with a unit (us, ms, s, m, h), got {input:?}"
                ))
            }
            other => return Err(format!("unknown duration unit {other:?} in {input:?}")),
        };
        total += value * scale;
        rest = after;
    }
    if !total.is_finite() || total > 366.0 * 86_400.0 {
        return Err(format!("duration {input:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Formats a duration so that [`parse`] reads it back exactly (whole microseconds).
pub fn format(d: Duration) -> String {
    let us = d.as_micros();
    if us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else if us.is_multiple_of(1_000) {
        format!("{}ms", us / 1_000)
    } else {
        format!("{us}us")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_forms_users_write() {
        assert_eq!(parse("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("500us"), Ok(Duration::from_micros(500)));
        assert!(parse("10").is_err());
        assert!(parse("10 parsecs").is_err());
        assert!(parse("").is_err());
    }

    proptest! {
        #[test]
        fn format_round_trips(us in 0u64..10_000_000_000) {
            let d = Duration::from_micros(us);
            prop_assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
