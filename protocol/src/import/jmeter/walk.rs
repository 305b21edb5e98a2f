//! The walk of a JMeter tree: elements that apply by scope (headers, defaults, timers,
//! extractors, assertions) are gathered from each level first, then samplers and controllers
//! are converted in order with everything in their scope.

use super::props::{arguments, is_listener, El};
use super::rules::{self, Converted, Rule};
use super::samplers;
use super::scope::{Cx, Scope};
use super::thread_groups::is_thread_group;
use crate::import::draft::{DraftFeeder, DraftStep};
use crate::import::text::var_name;
use std::time::Duration;

/// Loops with at most this many repetitions (and bodies small enough) are unrolled.
const MAX_UNROLL: u32 = 10;
const MAX_UNROLLED_STEPS: usize = 100;

fn is_sampler(el: &El<'_>) -> bool {
    matches!(
        el.short_class(),
        "HTTPSamplerProxy" | "HTTPSampler" | "HTTPSampler2" | "TestAction"
    ) || el.short_class().ends_with("Sampler") && !el.short_class().contains("Parallel")
}

fn has_http(el: &El<'_>) -> bool {
    el.children.iter().any(|c| {
        c.enabled()
            && (matches!(
                c.short_class(),
                "HTTPSamplerProxy" | "HTTPSampler" | "HTTPSampler2"
            ) || has_http(c))
    })
}

/// Controllers whose children are always run, and how herd approximates them (`None`: exact).
fn controller(class: &str) -> Option<Option<&'static str>> {
    Some(match class {
        "GenericController" | "RecordingController" => None,
        "TransactionController" => {
            Some("herd reports its requests per step; their total is not computed")
        }
        "IfController" => Some("its condition is not evaluated: its requests always run"),
        "WhileController" => Some("its condition is not evaluated: its requests run once"),
        "ForeachController" => Some("its requests run once, not once per value"),
        "OnceOnlyController" => Some("its requests run on every iteration, not only the first"),
        "RandomController" => Some("all its requests run, not one at random"),
        "RandomOrderController" => Some("its requests run in order"),
        "InterleaveControl" => Some("all its requests run on every iteration, not one in turn"),
        "ThroughputController" => Some("its requests always run (no percentage)"),
        "RunTime" => Some("its requests run once, not for a time"),
        "SwitchController" => Some("all its requests run, not the selected one"),
        "CriticalSectionController" => Some("no lock is taken"),
        _ => return None,
    })
}

impl Cx<'_> {
    /// Gathers the scoped elements of `els` into a copy of `parent`.
    pub(super) fn scope(&mut self, els: &[El<'_>], parent: &Scope, at: &str) -> Scope {
        let mut scope = parent.clone();
        for el in els {
            if is_sampler(el)
                || is_thread_group(el)
                || controller(el.short_class()).is_some()
                || el.short_class() == "LoopController"
                || is_listener(el)
                || has_http(el)
            {
                continue;
            }
            let path = join(at, &el.label());
            if !el.enabled() {
                self.report.skipped(&path, el.class(), "disabled");
                continue;
            }
            self.scoped(el, &mut scope, &path);
        }
        scope
    }

    fn scoped(&mut self, el: &El<'_>, scope: &mut Scope, path: &str) {
        let class = el.short_class();
        let element = el.class();
        match class {
            "HeaderManager" => {
                for h in super::props::collection(el.node, "HeaderManager.headers") {
                    let name = super::props::prop(h, "Header.name")
                        .unwrap_or_default()
                        .trim();
                    let value = super::props::prop(h, "Header.value").unwrap_or_default();
                    if name.is_empty() {
                        continue;
                    }
                    scope.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
                    scope.headers.push((name.to_string(), value.to_string()));
                }
                self.report.converted(path, element);
            }
            "ConfigTestElement" if el.guiclass() == "HttpDefaultsGui" => {
                scope.defaults = samplers::defaults(el, &scope.defaults);
                self.report.converted(path, element);
            }
            "CookieManager" => {
                let cookies: Vec<String> =
                    super::props::collection(el.node, "CookieManager.cookies")
                        .iter()
                        .map(|c| {
                            let name = c.attr("name").unwrap_or_default();
                            format!(
                                "{name}={}",
                                super::props::prop(c, "Cookie.value").unwrap_or_default()
                            )
                        })
                        .collect();
                if !cookies.is_empty() {
                    scope
                        .headers
                        .retain(|(k, _)| !k.eq_ignore_ascii_case("cookie"));
                    scope.headers.push(("Cookie".into(), cookies.join("; ")));
                }
                // Each VU's cookie jar (`options.cookies`, on by default) keeps and sends back
                // what responses set, as the manager does; the cookies it writes are sent as a
                // `Cookie` header, which the jar's join.
                self.report.converted(path, element);
            }
            "Arguments" => {
                let mut notes = Vec::new();
                for (name, value, _) in arguments(el.node) {
                    self.define_var(name, value, &mut notes);
                }
                self.outcome(path, element, notes);
            }
            "CSVDataSet" => self.csv(el, path),
            "ConstantThroughputTimer" | "PreciseThroughputTimer" => self.throughput_timer(el, path),
            c if c.ends_with("Timer") => match rules::timer(el, &mut self.expr) {
                Converted::Rules(r, notes) => {
                    scope.rules.extend(r);
                    self.outcome(path, element, notes);
                }
                Converted::Skip(why) => self.report.skipped(path, element, why),
            },
            c if c.ends_with("Assertion") => {
                match rules::assertion(el, &mut self.expr, &mut self.counter) {
                    Converted::Rules(r, notes) => {
                        scope.rules.extend(r);
                        self.outcome(path, element, notes);
                    }
                    Converted::Skip(why) => self.report.skipped(path, element, why),
                }
            }
            c if c.ends_with("Extractor") || c == "JSONPostProcessor" => {
                match rules::extractor(el) {
                    Converted::Rules(r, notes) => {
                        scope.rules.extend(r);
                        self.outcome(path, element, notes);
                    }
                    Converted::Skip(why) => self.report.skipped(path, element, why),
                }
            }
            c if c.contains("PreProcessor")
                || c.contains("PostProcessor")
                || c.starts_with("JSR223")
                || c.starts_with("BeanShell") =>
            {
                self.report
                    .skipped(path, element, "scripts are not run by herd")
            }
            _ => self.report.skipped(path, element, "not supported by herd"),
        }
    }

    /// `--set`-evaluated user-defined variable into `vars`.
    pub(super) fn define_var(&mut self, name: &str, value: &str, notes: &mut Vec<String>) {
        if name.trim().is_empty() {
            return;
        }
        let herd = var_name(name);
        let v = match self.expr.eval_static(value) {
            Some(v) => v,
            None => {
                notes.push(format!(
                    "{name}: its value {value:?} is computed at run time: empty here"
                ));
                String::new()
            }
        };
        self.expr.statics.insert(name.trim().to_string(), v.clone());
        self.vars.retain(|(n, _)| *n != herd);
        self.vars.push((herd, v));
    }

    pub(super) fn outcome(&mut self, path: &str, element: &str, mut notes: Vec<String>) {
        notes.extend(self.expr.take_notes());
        if notes.is_empty() {
            self.report.converted(path, element);
        } else {
            self.report.approx(path, element, notes.join("; "));
        }
    }

    fn csv(&mut self, el: &El<'_>, path: &str) {
        let file = el.prop_or("filename", "").trim().to_string();
        let mut notes = Vec::new();
        let file = self.expr.eval_static(&file).unwrap_or(file);
        let relative = samplers::relative_file(&file, &mut notes);
        let names: Vec<String> = el
            .prop_or("variableNames", "")
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(var_name)
            .collect();
        let delimiter = el.prop_or("delimiter", ",");
        let delimiter = if delimiter == "\\t" { "\t" } else { delimiter };
        let ignore_first = el.bool("ignoreFirstLine");
        let per_vu = el.prop_or("shareMode", "shareMode.all") == "shareMode.thread";
        let feeder_name = var_name(
            relative
                .rsplit(['/', '\\'])
                .next()
                .unwrap_or("data")
                .split('.')
                .next()
                .unwrap_or("data"),
        );
        let mut feeder = DraftFeeder {
            name: feeder_name,
            file: Some(relative.clone()),
            rows: Vec::new(),
            columns: names.clone(),
            columns_known: !names.is_empty(),
            per_vu,
            note: None,
        };
        if el.prop("recycle") == Some("false") || el.bool("stopThread") {
            notes.push("rows are recycled: herd starts over at the end".into());
        }
        match self.files.read(&relative).or_else(|e| {
            if relative != file {
                self.files.read(&file)
            } else {
                Err(e)
            }
        }) {
            Ok(bytes) => {
                let (text, _) = crate::import::text::decode_text(&bytes);
                let text = if delimiter == "," {
                    text
                } else {
                    text.replace(delimiter, ",")
                };
                match crate::plan::parse_csv(&text) {
                    Ok(mut records) => {
                        let header_ok = ignore_first || names.is_empty();
                        if names.is_empty() {
                            feeder.columns = records
                                .first()
                                .map(|h| h.iter().map(|c| var_name(c)).collect())
                                .unwrap_or_default();
                            feeder.columns_known = true;
                        }
                        if header_ok
                            && delimiter == ","
                            && (names.is_empty() || records.first() == Some(&names))
                        {
                            // The file's own header names the variables: keep the file.
                        } else {
                            if ignore_first && !records.is_empty() {
                                records.remove(0);
                            }
                            let mut rows = vec![feeder.columns.clone()];
                            rows.extend(
                                records
                                    .into_iter()
                                    .filter(|r| r.len() == feeder.columns.len()),
                            );
                            feeder.file = None;
                            feeder.rows = rows;
                            notes.push("the rows are carried inline in the plan, under the variable names as header".into());
                        }
                    }
                    Err(e) => notes.push(format!(
                        "{relative} is not CSV herd reads ({e}): named as it is"
                    )),
                }
            }
            Err(e) => {
                if !names.is_empty() && !ignore_first {
                    notes.push(format!(
                        "{relative} was not read ({e}); herd reads its first row as the variable \
                         names: add the header row {}",
                        names.join(",")
                    ));
                } else {
                    notes.push(format!("{relative} was not read ({e})"));
                }
            }
        }
        if self.feeders.iter().any(|f| f.name == feeder.name) {
            feeder.name = format!("{}_{}", feeder.name, self.feeders.len() + 1);
        }
        self.feeders.push(feeder);
        self.outcome(path, el.class(), notes);
    }

    fn throughput_timer(&mut self, el: &El<'_>, path: &str) {
        let per_min = self
            .expr
            .eval_static(el.prop_or("throughput", "0"))
            .and_then(|t| t.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        let (per_min, what) = if el.short_class() == "PreciseThroughputTimer" {
            let period = el
                .prop_or("throughputPeriod", "3600")
                .trim()
                .parse::<f64>()
                .unwrap_or(3600.0)
                .max(1.0);
            (per_min * 60.0 / period, "samples per period")
        } else {
            (per_min, "samples per minute")
        };
        if per_min <= 0.0 {
            self.report.skipped(path, el.class(), "no throughput");
            return;
        }
        let mode = el.prop_or("calcMode", "0").trim().to_string();
        self.throughput = Some((
            per_min,
            mode,
            path.to_string(),
            el.class().to_string(),
            what,
        ));
    }

    /// Converts the samplers and controllers of `els` in order, into `out`.
    pub(super) fn walk(
        &mut self,
        els: &[El<'_>],
        parent: &Scope,
        at: &str,
        out: &mut Vec<DraftStep>,
    ) {
        let scope = self.scope(els, parent, at);
        for el in els {
            if is_listener(el) {
                continue;
            }
            let path = join(at, &el.label());
            let class = el.short_class();
            let structural = is_sampler(el)
                || controller(class).is_some()
                || class == "LoopController"
                || has_http(el);
            if !structural {
                continue;
            }
            if !el.enabled() {
                self.skip_tree(el, &path, "disabled");
                continue;
            }
            match class {
                "HTTPSamplerProxy" | "HTTPSampler" | "HTTPSampler2" => {
                    self.sampler(el, &scope, &path, out)
                }
                "TestAction" => self.flow_action(el, &path, out),
                "LoopController" => self.loop_controller(el, &scope, &path, out),
                _ if is_sampler(el) => {
                    self.report
                        .skipped(&path, el.class(), "herd sends HTTP requests only")
                }
                _ => {
                    let mut inner = scope.clone();
                    let note = match controller(class) {
                        Some(note) => note,
                        None => Some("an unknown controller: its requests run in order"),
                    };
                    if class == "TransactionController" {
                        inner.tx = Some(el.name().to_string()).filter(|n| !n.is_empty());
                    }
                    match note {
                        None => self.report.converted(&path, el.class()),
                        Some(n) => self.report.approx(&path, el.class(), n),
                    }
                    self.walk(&el.children, &inner, &path, out);
                }
            }
        }
    }

    fn loop_controller(
        &mut self,
        el: &El<'_>,
        scope: &Scope,
        path: &str,
        out: &mut Vec<DraftStep>,
    ) {
        let raw = el.prop_or("LoopController.loops", "1");
        let loops = self
            .expr
            .eval_static(raw)
            .and_then(|v| v.trim().parse::<i64>().ok());
        let item = self.report.items.len();
        self.report.converted(path, el.class());
        let mut body = Vec::new();
        self.walk(&el.children, scope, path, &mut body);
        let (times, note) = match loops {
            Some(n)
                if n >= 1
                    && n as u32 <= MAX_UNROLL
                    && body.len() * n as usize <= MAX_UNROLLED_STEPS =>
            {
                (n as u32, None)
            }
            Some(n) if n >= 1 => (
                1,
                Some(format!(
                    "{n} repetitions: herd has no loops; its requests run once per iteration"
                )),
            ),
            _ => (
                1,
                Some("repeats until stopped: its requests run once per iteration".to_string()),
            ),
        };
        if let Some(n) = note {
            self.report.items[item].outcome = crate::import::report::Outcome::Approximated(n);
        } else if times > 1 {
            self.report.items[item].outcome = crate::import::report::Outcome::Approximated(
                format!("unrolled: its requests are written {times} times"),
            );
        }
        for _ in 0..times {
            out.extend(body.iter().cloned());
        }
    }

    fn flow_action(&mut self, el: &El<'_>, path: &str, out: &mut Vec<DraftStep>) {
        let action = el.prop_or("ActionProcessor.action", "1");
        let ms = self
            .expr
            .eval_static(el.prop_or("ActionProcessor.duration", "0"))
            .and_then(|d| d.trim().parse::<u64>().ok());
        match (action.trim(), ms) {
            ("1", Some(ms)) if ms > 0 => {
                let d = Duration::from_millis(ms);
                out.push(DraftStep::Think {
                    min: d,
                    max: d,
                    note: None,
                });
                self.report.converted(path, el.class());
            }
            _ => self.report.skipped(
                path,
                el.class(),
                "only a pause of a fixed duration is converted",
            ),
        }
    }

    fn sampler(&mut self, el: &El<'_>, scope: &Scope, path: &str, out: &mut Vec<DraftStep>) {
        let own = self.scope(&el.children, scope, path);
        match samplers::http(el, &own, self) {
            Err(why) => self.report.skipped(path, el.class(), why),
            Ok(mut req) => {
                let (mut min, mut max) = (Duration::ZERO, Duration::ZERO);
                for rule in &own.rules {
                    if let Rule::Think(a, b) = rule {
                        min += *a;
                        max += *b;
                    }
                    if let Rule::Extract {
                        var,
                        default: Some(d),
                        ..
                    } = rule
                    {
                        if !self.vars.iter().any(|(n, _)| n == var) {
                            self.vars.push((var.clone(), d.clone()));
                        }
                    }
                    rule.apply(&mut req);
                }
                if !max.is_zero() {
                    out.push(DraftStep::Think {
                        min,
                        max,
                        note: None,
                    });
                }
                if req.origin.is_none() && self.first_hostless.is_none() {
                    self.first_hostless = Some(path.to_string());
                }
                req.item = Some(self.report.items.len());
                let notes = std::mem::take(&mut req.notes);
                self.outcome(path, el.class(), notes);
                out.push(DraftStep::Request(Box::new(req)));
            }
        }
    }

    /// Reports a subtree that is not converted: the element, and each HTTP sampler in it.
    pub(super) fn skip_tree(&mut self, el: &El<'_>, path: &str, why: &str) {
        self.report.skipped(path, el.class(), why);
        for c in &el.children {
            if c.enabled()
                && (matches!(
                    c.short_class(),
                    "HTTPSamplerProxy" | "HTTPSampler" | "HTTPSampler2"
                ) || has_http(c))
            {
                let why = if why == "disabled" {
                    "inside a disabled element"
                } else {
                    why
                };
                self.skip_tree(c, &join(path, &c.label()), why);
            }
        }
    }
}

pub(super) fn join(at: &str, label: &str) -> String {
    if at.is_empty() {
        label.to_string()
    } else {
        format!("{at} > {label}")
    }
}
