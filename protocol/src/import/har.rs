//! HAR recordings (a browser's or a proxy's) to herd plans, the way Gatling's recorder and
//! har-to-k6 do it: entries in time order, pauses above 100 ms as think times, static resources
//! left out (unless asked), hop-by-hop, pseudo and cookie headers dropped (the cookie jar's
//! job), base64 bodies decoded, redirects left to herd (which follows them).

use super::draft::{method_key, Draft, DraftLoad, DraftStep, Req};
use super::error::ImportError;
use super::jmeter::samplers::is_header_name;
use super::options::ImportOptions;
use super::report::Report;
use super::text::{decode_text, literal, split_url};
use base64::Engine as _;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Pauses shorter than this are the browser's own, not the user's.
const MIN_PAUSE_MS: i64 = 100;

const DROPPED: [&str; 12] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "cookie",
    "http2-settings",
];

const STATIC_EXT: [&str; 20] = [
    "png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "bmp", "css", "js", "mjs", "map", "woff",
    "woff2", "ttf", "otf", "eot", "mp4", "webm", "mp3",
];

/// Parses JSON, with the error's line and column.
pub(crate) fn parse_json(text: &str) -> Result<Value, ImportError> {
    serde_json::from_str(text).map_err(|e| ImportError::Malformed {
        format: "JSON",
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

fn is_static(url_path: &str, mime: &str) -> bool {
    let mime = mime.to_ascii_lowercase();
    if mime.starts_with("image/")
        || mime.starts_with("font/")
        || mime.starts_with("audio/")
        || mime.starts_with("video/")
        || mime.contains("css")
        || mime.contains("javascript")
        || mime.contains("font")
    {
        return true;
    }
    let file = url_path.split(['?', '#']).next().unwrap_or_default();
    let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    ext.is_some_and(|e| !file.ends_with('/') && STATIC_EXT.contains(&e.as_str()))
}

/// Milliseconds since the epoch of an RFC 3339 time (`2013-10-17T13:42:23.467Z`, `+02:00`).
pub(crate) fn rfc3339_ms(s: &str) -> Option<i64> {
    let (date, time) = s.trim().split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) => (&time[..i], &time[i..]),
        None => (time, "Z"),
    };
    let mut c = clock.split(':');
    let (h, min) = (
        c.next()?.parse::<i64>().ok()?,
        c.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = c.next().unwrap_or("0").parse().ok()?;
    let off_min = match offset.chars().next() {
        Some('+') | Some('-') => {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let mut o = offset[1..].split(':');
            let oh: i64 = o.next()?.parse().ok()?;
            let om: i64 = o.next().unwrap_or("0").parse().ok()?;
            sign * (oh * 60 + om)
        }
        _ => 0,
    };
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + min * 60 - off_min * 60;
    Some(secs * 1000 + (sec * 1000.0).round() as i64)
}

struct Entry<'a> {
    index: usize,
    start: Option<i64>,
    time: f64,
    v: &'a Value,
}

/// Converts a HAR file.
pub(super) fn convert(
    bytes: &[u8],
    options: &ImportOptions,
    report: &mut Report,
) -> Result<Draft, ImportError> {
    let (text, warning) = decode_text(bytes);
    if let Some(w) = warning {
        report.warn(w);
    }
    let root = parse_json(text.trim_start_matches('\u{feff}'))?;
    let entries = root
        .pointer("/log/entries")
        .and_then(Value::as_array)
        .ok_or_else(|| ImportError::Invalid("log.entries is not a list".into()))?;
    let mut list: Vec<Entry<'_>> = entries
        .iter()
        .enumerate()
        .map(|(index, v)| Entry {
            index,
            start: v
                .get("startedDateTime")
                .and_then(Value::as_str)
                .and_then(rfc3339_ms),
            time: v
                .get("time")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                .max(0.0),
            v,
        })
        .collect();
    list.sort_by_key(|e| (e.start.unwrap_or(i64::MIN), e.index));
    let creator = root
        .pointer("/log/creator/name")
        .and_then(Value::as_str)
        .unwrap_or("a recording");
    let title = root
        .pointer("/log/pages/0/title")
        .and_then(Value::as_str)
        .unwrap_or(creator);
    let mut draft = Draft::new("HAR", title);
    draft.load = DraftLoad::ramp_hold(1, Duration::ZERO, Duration::from_secs(60));
    draft
        .load_notes
        .push("a recording has no load: 1 VU for 1m (set --vus, --ramp, --hold)".into());

    // The most frequent host becomes the target.
    let mut hosts: BTreeMap<String, usize> = BTreeMap::new();
    for e in &list {
        let url =
            e.v.pointer("/request/url")
                .and_then(Value::as_str)
                .unwrap_or_default();
        let mime =
            e.v.pointer("/response/content/mimeType")
                .and_then(Value::as_str)
                .unwrap_or_default();
        if let Some(u) = split_url(url) {
            if options.include_static || !is_static(&u.path, mime) {
                *hosts.entry(u.origin()).or_default() += 1;
            }
        }
    }
    let target = options.target.clone().or_else(|| {
        hosts
            .iter()
            .max_by_key(|(h, n)| (**n, std::cmp::Reverse((*h).clone())))
            .map(|(h, _)| h.clone())
    });
    draft.target = target.clone();

    let mut prev_end: Option<f64> = None;
    let mut redirect_to: Option<String> = None;
    for e in &list {
        let req = e.v.get("request").unwrap_or(&Value::Null);
        let method = req
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_ascii_uppercase();
        let url = req.get("url").and_then(Value::as_str).unwrap_or_default();
        let path = format!("entries[{}] {method} {url}", e.index);
        let element = "entry";
        let mime =
            e.v.pointer("/response/content/mimeType")
                .and_then(Value::as_str)
                .unwrap_or_default();
        let status =
            e.v.pointer("/response/status")
                .and_then(Value::as_i64)
                .unwrap_or(0);
        let gap = match (e.start, prev_end) {
            (Some(s), Some(p)) => (s as f64 - p).round() as i64,
            _ => 0,
        };
        if let Some(s) = e.start {
            let end = s as f64 + e.time;
            prev_end = Some(prev_end.map_or(end, |p: f64| p.max(end)));
        }
        let followed = redirect_to.take();
        let Some(u) = split_url(url) else {
            report.skipped(&path, element, "not an http(s) URL");
            continue;
        };
        if followed.as_deref() == Some(url) {
            report.skipped(
                &path,
                element,
                "a redirect of the previous request, which herd follows itself",
            );
            continue;
        }
        if !options.include_static && is_static(&u.path, mime) {
            report.skipped(
                &path,
                element,
                "a static resource (give --include-static to keep it)",
            );
            continue;
        }
        if options.target.is_none() && target.as_deref() != Some(u.origin().as_str()) {
            report.skipped(
                &path,
                element,
                format!(
                    "its host {} is not the plan's target {} (herd plans have one target)",
                    u.origin(),
                    target.as_deref().unwrap_or("-")
                ),
            );
            continue;
        }
        let Some(key) = method_key(&method) else {
            report.skipped(&path, element, format!("herd does not send {method}"));
            continue;
        };
        if (300..400).contains(&status) {
            let location =
                e.v.pointer("/response/redirectURL")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
            if !location.is_empty() {
                redirect_to = Some(if location.starts_with('/') {
                    format!("{}{location}", u.origin())
                } else {
                    location.to_string()
                });
            }
        }
        let mut notes = Vec::new();
        if gap > MIN_PAUSE_MS && draft.requests().next().is_some() {
            let d = Duration::from_millis(gap as u64);
            draft.steps.push(DraftStep::Think {
                min: d,
                max: d,
                note: None,
            });
        }
        let mut r = Req {
            method: key,
            path: literal(&u.path),
            ..Req::default()
        };
        for h in req
            .get("headers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = h.get("name").and_then(Value::as_str).unwrap_or_default();
            let value = h.get("value").and_then(Value::as_str).unwrap_or_default();
            let lower = name.to_ascii_lowercase();
            if name.starts_with(':')
                || DROPPED.contains(&lower.as_str())
                || !is_header_name(name)
                || value.contains(['\r', '\n'])
            {
                continue;
            }
            r.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
            r.headers.push((name.to_string(), literal(value)));
        }
        if let Some(post) = req.get("postData") {
            let text = post.get("text").and_then(Value::as_str).unwrap_or_default();
            let encoded = post.get("encoding").and_then(Value::as_str) == Some("base64");
            let body = if encoded {
                match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
                    Ok(b) => match String::from_utf8(b) {
                        Ok(s) => Some(s),
                        Err(_) => {
                            notes.push("its binary body is left out (herd sends text bodies or body files)".to_string());
                            None
                        }
                    },
                    Err(_) => {
                        notes.push("its body is not valid base64: left out".to_string());
                        None
                    }
                }
            } else if !text.is_empty() {
                Some(text.to_string())
            } else {
                let params: Vec<String> = post
                    .get("params")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        format!(
                            "{}={}",
                            p.get("name").and_then(Value::as_str).unwrap_or_default(),
                            p.get("value").and_then(Value::as_str).unwrap_or_default()
                        )
                    })
                    .collect();
                (!params.is_empty()).then(|| params.join("&"))
            };
            if let Some(b) = body {
                if b.contains('\u{0}') {
                    notes.push("its binary body is left out".to_string());
                } else {
                    r.body = Some(literal(&b));
                    let mime = post
                        .get("mimeType")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if !mime.is_empty() {
                        r.default_header("content-type", mime);
                    }
                }
            }
        }
        if (200..300).contains(&status) {
            r.status = Some(status as u16);
        }
        r.notes = notes.clone();
        if notes.is_empty() {
            report.converted(&path, element);
        } else {
            report.approx(&path, element, notes.join("; "));
        }
        draft.steps.push(DraftStep::Request(Box::new(r)));
    }
    Ok(draft)
}
