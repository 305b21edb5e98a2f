//! Threshold expressions such as `p99 < 1s` or `error_rate < 1%`.
//!
//! A threshold compares one figure of the run with a limit. Latency figures are compared in
//! milliseconds, `error_rate` and `checks` (the share of checks that held) in percent, `rps` in
//! requests per second, `requests` and `errors` as counts; `actual` in the summary is reported in
//! the same unit. A selector after the metric narrows it to one step or one group:
//! `p99{step:login} < 300ms`, `error_rate{group:checkout} < 1%`; without one it is the whole run.

use crate::duration;

/// A figure of the whole run that a threshold can test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A latency percentile, in percent (`p99` is 99.0, `p999` is 99.9).
    Percentile(f64),
    /// Fastest latency.
    Min,
    /// Mean latency.
    Mean,
    /// Slowest latency.
    Max,
    /// Errors as a percentage of requests.
    ErrorRate,
    /// Requests per second over the run.
    Rps,
    /// Total requests.
    Requests,
    /// Total errors.
    Errors,
    /// Checks that held, as a percentage of all checks.
    Checks,
}

/// What part of the run a threshold measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The requests of the step with this label (`{step:NAME}`).
    Step(String),
    /// The requests of this group (`{group:NAME}`).
    Group(String),
}

impl Selector {
    /// How it is shown: `step login`, `group checkout`.
    pub fn describe(&self) -> String {
        match self {
            Selector::Step(s) => format!("step {s:?}"),
            Selector::Group(g) => format!("group {g:?}"),
        }
    }
}

impl Metric {
    fn is_latency(self) -> bool {
        matches!(
            self,
            Metric::Percentile(_) | Metric::Min | Metric::Mean | Metric::Max
        )
    }
}

/// How the figure is compared with the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The expression as written.
    pub expr: String,
    /// What is measured.
    pub metric: Metric,
    /// Of what: a step, a group, or (`None`) the whole run.
    pub selector: Option<Selector>,
    /// How it is compared.
    pub comparison: Comparison,
    /// The limit, in the metric's unit (ms, percent, per second, count).
    pub limit: f64,
}

impl Threshold {
    /// Parses `METRIC OP VALUE`, such as `p95 <= 250ms` or `error_rate < 0.5%`.
    pub fn parse(expr: &str) -> Result<Threshold, String> {
        let trimmed = expr.trim();
        let op_at = trimmed
            .find(['<', '>'])
            .ok_or_else(|| format!("{expr:?} has no comparison; write it like \"p99 < 500ms\""))?;
        let (lhs, rest) = trimmed.split_at(op_at);
        let (comparison, rhs) = if let Some(r) = rest.strip_prefix("<=") {
            (Comparison::Le, r)
        } else if let Some(r) = rest.strip_prefix(">=") {
            (Comparison::Ge, r)
        } else if let Some(r) = rest.strip_prefix('<') {
            (Comparison::Lt, r)
        } else if let Some(r) = rest.strip_prefix('>') {
            (Comparison::Gt, r)
        } else {
            return Err(format!("{expr:?} has no valid comparison (<, <=, >, >=)"));
        };
        let (metric, selector) = parse_selected(lhs.trim())?;
        let rhs = rhs.trim();
        let limit = if metric.is_latency() {
            duration::parse(rhs)
                .map(|d| d.as_secs_f64() * 1000.0)
                .map_err(|e| format!("limit of {expr:?} {e}"))?
        } else if matches!(metric, Metric::ErrorRate | Metric::Checks) {
            match rhs.strip_suffix('%') {
                Some(p) => number(p.trim(), expr)?,
                None => number(rhs, expr)? * 100.0,
            }
        } else {
            number(rhs, expr)?
        };
        Ok(Threshold {
            expr: trimmed.to_string(),
            metric,
            selector,
            comparison,
            limit,
        })
    }

    /// What the threshold applies to, in words: `p99 of step "login"`, `checks of the whole run`.
    pub fn applies_to(&self) -> String {
        match &self.selector {
            Some(s) => s.describe(),
            None => "the whole run".to_string(),
        }
    }

    /// Whether `actual` (in the metric's unit) passes.
    pub fn passes(&self, actual: f64) -> bool {
        match self.comparison {
            Comparison::Lt => actual < self.limit,
            Comparison::Le => actual <= self.limit,
            Comparison::Gt => actual > self.limit,
            Comparison::Ge => actual >= self.limit,
        }
    }
}

fn number(s: &str, expr: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| format!("limit {s:?} of {expr:?} is not a number"))
}

/// `METRIC` or `METRIC{step:NAME}` / `METRIC{group:NAME}`.
fn parse_selected(lhs: &str) -> Result<(Metric, Option<Selector>), String> {
    let Some(open) = lhs.find('{') else {
        return Ok((parse_metric(lhs)?, None));
    };
    let inner = lhs[open + 1..]
        .strip_suffix('}')
        .ok_or_else(|| format!("{lhs:?}: a selector is written {{step:NAME}} or {{group:NAME}}"))?;
    let (kind, name) = inner
        .split_once(':')
        .ok_or_else(|| format!("{lhs:?}: a selector is written {{step:NAME}} or {{group:NAME}}"))?;
    let name = name.trim().to_string();
    if name.is_empty() {
        return Err(format!("{lhs:?}: the selector names no step or group"));
    }
    let selector = match kind.trim() {
        "step" => Selector::Step(name),
        "group" => Selector::Group(name),
        other => {
            return Err(format!(
                "{lhs:?}: unknown selector {other:?} (use {{step:NAME}} or {{group:NAME}})"
            ))
        }
    };
    Ok((parse_metric(lhs[..open].trim())?, Some(selector)))
}

fn parse_metric(name: &str) -> Result<Metric, String> {
    Ok(match name {
        "min" => Metric::Min,
        "mean" | "avg" => Metric::Mean,
        "max" => Metric::Max,
        "p50" | "median" => Metric::Percentile(50.0),
        "p90" => Metric::Percentile(90.0),
        "p95" => Metric::Percentile(95.0),
        "p99" => Metric::Percentile(99.0),
        "p999" => Metric::Percentile(99.9),
        "error_rate" => Metric::ErrorRate,
        "rps" => Metric::Rps,
        "requests" => Metric::Requests,
        "errors" => Metric::Errors,
        "checks" => Metric::Checks,
        other => {
            if let Some(q) = other
                .strip_prefix("p(")
                .and_then(|s| s.strip_suffix(')'))
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|q| *q > 0.0 && *q <= 100.0)
            {
                Metric::Percentile(q)
            } else {
                return Err(format!(
                    "unknown metric {other:?} (use min, mean, max, p50, p90, p95, p99, p999, \
                     p(N), error_rate, checks, rps, requests or errors)"
                ));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_examples() {
        let t = Threshold::parse("p99 < 1s").expect("valid");
        assert_eq!(
            (t.metric, t.comparison, t.limit),
            (Metric::Percentile(99.0), Comparison::Lt, 1000.0)
        );
        let t = Threshold::parse("error_rate < 1%").expect("valid");
        assert_eq!((t.metric, t.limit), (Metric::ErrorRate, 1.0));
        let t = Threshold::parse("error_rate <= 0.05").expect("valid");
        assert_eq!(t.limit, 5.0);
        let t = Threshold::parse("p(99.9) >= 250ms").expect("valid");
        assert_eq!(
            (t.metric, t.comparison, t.limit),
            (Metric::Percentile(99.9), Comparison::Ge, 250.0)
        );
        assert!(t.passes(250.0) && !t.passes(249.9));
    }

    #[test]
    fn selectors_and_checks() {
        let t = Threshold::parse("p99{step:login} < 300ms").expect("valid");
        assert_eq!(
            (t.metric, t.selector.clone(), t.limit),
            (
                Metric::Percentile(99.0),
                Some(Selector::Step("login".into())),
                300.0
            )
        );
        assert_eq!(t.applies_to(), "step \"login\"");
        let t = Threshold::parse("error_rate{group: checkout} < 1%").expect("valid");
        assert_eq!(t.selector, Some(Selector::Group("checkout".into())));
        let t = Threshold::parse("checks > 99%").expect("valid");
        assert_eq!(
            (t.metric, t.limit, t.selector),
            (Metric::Checks, 99.0, None)
        );
        let t = Threshold::parse("checks{step:GET /a} >= 0.999").expect("valid");
        assert_eq!(t.limit, 99.9);
        assert_eq!(t.selector, Some(Selector::Step("GET /a".into())));
        for bad in [
            "p99{stage:x} < 1s",
            "p99{step:} < 1s",
            "p99{step:x < 1s",
            "p99{x} < 1s",
        ] {
            assert!(Threshold::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(Threshold::parse("p99 1s").is_err());
        assert!(Threshold::parse("p98x < 1s").is_err());
        assert!(Threshold::parse("p99 < fast").is_err());
        assert!(Threshold::parse("rps > many").is_err());
    }
}
