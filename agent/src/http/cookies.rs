//! One VU's cookie jar (RFC 6265): cookies set by responses, sent back on the VU's later
//! requests as a browser would.
//!
//! Why a jar of our own: the rules a load test needs are small (sections 5.1.3 domain
//! matching, 5.1.4 paths, 5.2 `Set-Cookie` parsing with `Expires`/`Max-Age`/`Domain`/`Path`/
//! `Secure`, 5.3 storage, 5.4 the `Cookie` header), and a jar crate would bring a URL and a
//! date library, and a public-suffix list, to the agent. Left out on purpose: the public-suffix
//! check (a test talks to its own hosts), `HttpOnly` and `SameSite` (no scripts, no
//! cross-site navigation here).
//!
//! Cost: a jar that never received a cookie is an empty `Vec` (no allocation), and the request
//! path only asks it for a header when it holds something, so plans whose targets set no
//! cookies run exactly as before.

use hyper::header::HeaderValue;
use hyper::Uri;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The most cookies one VU keeps; the oldest goes first beyond it (browsers keep ~3000 for a
/// whole profile; a VU talks to a handful of hosts).
const MAX_COOKIES: usize = 300;

/// One stored cookie (RFC 6265, section 5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cookie {
    name: String,
    value: String,
    /// Lower case, no leading dot.
    domain: String,
    /// Sent only to exactly `domain` (no `Domain` attribute was given).
    host_only: bool,
    path: String,
    secure: bool,
    /// `None`: a session cookie, kept for the VU's life.
    expires: Option<SystemTime>,
    /// Creation order, for the header's order among cookies of equal path length.
    created: u64,
}

/// A VU's cookies.
#[derive(Debug, Default)]
pub struct Jar {
    cookies: Vec<Cookie>,
    created: u64,
}

impl Jar {
    /// Whether the jar holds no cookie (then it has nothing to send).
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Forgets every cookie (a new user).
    pub fn clear(&mut self) {
        self.cookies.clear();
    }

    /// Stores what one `Set-Cookie` header of a response to `uri` says, at `now`. A header
    /// that is malformed, or whose `Domain` does not cover the host, is ignored, as a browser
    /// ignores it.
    pub fn store(&mut self, uri: &Uri, set_cookie: &[u8], now: SystemTime) {
        let Some(host) = uri.host().map(str::to_ascii_lowercase) else {
            return;
        };
        let Ok(text) = std::str::from_utf8(set_cookie) else {
            return;
        };
        let mut attributes = text.split(';');
        let Some((name, value)) = attributes.next().and_then(|pair| pair.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return;
        }
        let mut cookie = Cookie {
            name: name.to_string(),
            value: value.to_string(),
            domain: host.clone(),
            host_only: true,
            path: default_path(uri.path()),
            secure: false,
            expires: None,
            created: self.created,
        };
        let mut max_age = None;
        for attribute in attributes {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            let (key, val) = (key.trim(), val.trim());
            if key.eq_ignore_ascii_case("expires") {
                if let Some(t) = parse_date(val) {
                    cookie.expires = Some(t);
                }
            } else if key.eq_ignore_ascii_case("max-age") {
                let digits = val.strip_prefix('-').unwrap_or(val);
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    let secs: i64 = val.parse().unwrap_or(i64::MAX);
                    max_age = Some(if secs <= 0 {
                        UNIX_EPOCH
                    } else {
                        // At most ten years ahead: far beyond any run, and no overflow.
                        now + Duration::from_secs(secs.unsigned_abs().min(315_360_000))
                    });
                }
            } else if key.eq_ignore_ascii_case("domain") {
                let domain = val.strip_prefix('.').unwrap_or(val).to_ascii_lowercase();
                if !domain.is_empty() {
                    if !domain_matches(&host, &domain) {
                        return;
                    }
                    cookie.domain = domain;
                    cookie.host_only = false;
                }
            } else if key.eq_ignore_ascii_case("path") {
                if val.starts_with('/') {
                    cookie.path = val.to_string();
                }
            } else if key.eq_ignore_ascii_case("secure") {
                cookie.secure = true;
            }
        }
        // Max-Age wins over Expires (section 5.3, step 3).
        if max_age.is_some() {
            cookie.expires = max_age;
        }
        let same = |c: &Cookie| {
            c.name == cookie.name && c.domain == cookie.domain && c.path == cookie.path
        };
        let old = self.cookies.iter().position(same);
        if cookie.expires.is_some_and(|t| t <= now) {
            // An expiry in the past deletes the cookie (how servers log out).
            if let Some(i) = old {
                self.cookies.remove(i);
            }
            return;
        }
        match old {
            Some(i) => {
                // Replacing keeps the old creation time (section 5.3, step 11).
                cookie.created = self.cookies[i].created;
                self.cookies[i] = cookie;
            }
            None => {
                if self.cookies.len() >= MAX_COOKIES {
                    self.cookies.remove(0);
                }
                self.created += 1;
                self.cookies.push(cookie);
            }
        }
    }

    /// The `Cookie` header for a request to `uri` at `now` (section 5.4), merged after the
    /// step's own `Cookie` header (`written`): a cookie the step writes by name is not sent
    /// twice. `None` when the jar has nothing for this request.
    pub fn header(
        &mut self,
        uri: &Uri,
        written: Option<&HeaderValue>,
        now: SystemTime,
    ) -> Option<HeaderValue> {
        self.cookies.retain(|c| c.expires.is_none_or(|t| t > now));
        let host = uri.host()?.to_ascii_lowercase();
        let secure = uri.scheme_str() == Some("https");
        let path = uri.path();
        let written = written.and_then(|v| v.to_str().ok()).unwrap_or("");
        let is_written = |name: &str| {
            written
                .split(';')
                .any(|pair| pair.split('=').next().is_some_and(|n| n.trim() == name))
        };
        let mut chosen: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| {
                (if c.host_only {
                    c.domain == host
                } else {
                    domain_matches(&host, &c.domain)
                }) && path_matches(path, &c.path)
                    && (secure || !c.secure)
                    && !is_written(&c.name)
            })
            .collect();
        if chosen.is_empty() {
            return None;
        }
        // Longer paths first, then older cookies first (section 5.4, step 2).
        chosen.sort_by(|a, b| {
            b.path
                .len()
                .cmp(&a.path.len())
                .then(a.created.cmp(&b.created))
        });
        let mut out = written.trim().trim_end_matches(';').to_string();
        for c in chosen {
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(&c.name);
            out.push('=');
            out.push_str(&c.value);
        }
        HeaderValue::from_str(&out).ok()
    }
}

/// Section 5.1.3: `host` is `domain`, or a name under it (never an IP address).
fn domain_matches(host: &str, domain: &str) -> bool {
    if host == domain {
        return true;
    }
    let is_ip = host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[');
    !is_ip
        && host
            .strip_suffix(domain)
            .is_some_and(|head| head.ends_with('.'))
}

/// Section 5.1.4: the directory of the request path (up to, not including, its last `/`).
fn default_path(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => path[..i].to_string(),
    }
}

/// Section 5.1.4: the cookie's path is the request's, or a directory above it.
fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || request
            .strip_prefix(cookie)
            .is_some_and(|rest| cookie.ends_with('/') || rest.starts_with('/'))
}

/// Section 5.1.1's lenient date parser: the time, day, month and year are found among the
/// tokens in any order (`Wed, 21 Oct 2015 07:28:00 GMT`, `Wednesday, 21-Oct-15 07:28:00 GMT`).
fn parse_date(text: &str) -> Option<SystemTime> {
    let delimiter = |c: char| {
        c == '\t'
            || (' '..='/').contains(&c)
            || (';'..='@').contains(&c)
            || ('['..='`').contains(&c)
            || ('{'..='~').contains(&c)
    };
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    for token in text.split(delimiter).filter(|t| !t.is_empty()) {
        if time.is_none() {
            let parts: Vec<&str> = token.split(':').collect();
            if parts.len() == 3 {
                let n = |s: &str| {
                    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
                    (!digits.is_empty() && digits.len() <= 2)
                        .then(|| digits.parse::<u64>().ok())
                        .flatten()
                };
                if let (Some(h), Some(m), Some(s)) = (n(parts[0]), n(parts[1]), n(parts[2])) {
                    time = Some((h, m, s));
                    continue;
                }
            }
        }
        let digits: String = token.chars().take_while(char::is_ascii_digit).collect();
        if day.is_none() && (1..=2).contains(&digits.len()) {
            day = digits.parse::<u64>().ok();
            continue;
        }
        if month.is_none() && token.len() >= 3 {
            let prefix = token[..3].to_ascii_lowercase();
            let months = [
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ];
            if let Some(i) = months.iter().position(|m| *m == prefix) {
                month = Some(i as u64 + 1);
                continue;
            }
        }
        if year.is_none() && (2..=4).contains(&digits.len()) {
            year = digits.parse::<u64>().ok();
        }
    }
    let (h, mi, s) = time?;
    let (day, month, mut year) = (day?, month?, year?);
    if (70..=99).contains(&year) {
        year += 1900;
    } else if year <= 69 {
        year += 2000;
    }
    if !(1..=31).contains(&day) || year < 1601 || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    let secs = days.checked_mul(86_400)? + h * 3600 + mi * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days from 1970-01-01 to a date (Howard Hinnant's algorithm); `None` before 1970 (such a
/// cookie has expired anyway: it is then treated as having no usable date, and a date before
/// 1970 is rare enough to ignore).
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().expect("valid URI")
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn sent(jar: &mut Jar, url: &str, now: SystemTime) -> Option<String> {
        jar.header(&uri(url), None, now)
            .map(|v| v.to_str().expect("ascii").to_string())
    }

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn dates_parse_in_the_forms_servers_write() {
        let t = at(1_445_412_480); // 2015-10-21 07:28:00 UTC
        assert_eq!(parse_date("Wed, 21 Oct 2015 07:28:00 GMT"), Some(t));
        assert_eq!(parse_date("Wednesday, 21-Oct-15 07:28:00 GMT"), Some(t));
        assert_eq!(parse_date("Wed Oct 21 07:28:00 2015"), Some(t));
        assert_eq!(
            parse_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(UNIX_EPOCH)
        );
        assert_eq!(
            parse_date("Sat, 29 Feb 2020 23:59:59 GMT"),
            Some(at(1_583_020_799))
        );
        assert_eq!(parse_date("not a date"), None);
        assert_eq!(parse_date("21 Oct 2015"), None, "no time");
        assert_eq!(parse_date("Wed, 21 Oct 2015 25:00:00 GMT"), None);
    }

    #[test]
    fn host_only_cookies_go_back_to_their_host_and_path() {
        let mut jar = Jar::default();
        assert!(jar.is_empty());
        let now = at(NOW);
        jar.store(
            &uri("http://app.test/account/login"),
            b"sid=abc; HttpOnly",
            now,
        );
        jar.store(
            &uri("http://app.test/account/login"),
            b"root=1; Path=/",
            now,
        );
        assert_eq!(
            sent(&mut jar, "http://app.test/account/me", now).as_deref(),
            Some("sid=abc; root=1"),
            "longer paths first"
        );
        assert_eq!(
            sent(&mut jar, "http://app.test/", now).as_deref(),
            Some("root=1")
        );
        assert_eq!(
            sent(&mut jar, "http://app.test/accounts", now).as_deref(),
            Some("root=1"),
            "/account does not match /accounts"
        );
        assert_eq!(
            sent(&mut jar, "http://api.app.test/account/x", now),
            None,
            "host only"
        );
        assert_eq!(sent(&mut jar, "http://other.test/", now), None);
    }

    #[test]
    fn domain_cookies_cover_subdomains_and_foreign_domains_are_refused() {
        let mut jar = Jar::default();
        let now = at(NOW);
        jar.store(
            &uri("http://www.app.test/"),
            b"d=1; Domain=.App.test; Path=/",
            now,
        );
        jar.store(
            &uri("http://www.app.test/"),
            b"evil=1; Domain=other.test",
            now,
        );
        jar.store(
            &uri("http://www.app.test/"),
            b"sub=1; Domain=deep.www.app.test",
            now,
        );
        assert_eq!(
            sent(&mut jar, "http://app.test/", now).as_deref(),
            Some("d=1")
        );
        assert_eq!(
            sent(&mut jar, "http://a.b.app.test/", now).as_deref(),
            Some("d=1")
        );
        assert_eq!(sent(&mut jar, "http://other.test/", now), None);
        assert_eq!(
            sent(&mut jar, "http://xapp.test/", now),
            None,
            "not a subdomain"
        );
        // An IP address matches only itself.
        jar.store(&uri("http://127.0.0.1:8080/"), b"ip=1; Domain=0.0.1", now);
        jar.store(&uri("http://127.0.0.1:8080/"), b"ip=2", now);
        assert_eq!(
            sent(&mut jar, "http://127.0.0.1:9/", now).as_deref(),
            Some("ip=2")
        );
    }

    #[test]
    fn expiry_max_age_replacement_and_deletion() {
        let mut jar = Jar::default();
        let now = at(NOW);
        let u = "http://app.test/";
        jar.store(
            &uri(u),
            b"a=1; Max-Age=10; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            now,
        );
        jar.store(&uri(u), b"b=1; Expires=Wed, 21 Oct 2099 07:28:00 GMT", now);
        jar.store(
            &uri(u),
            b"gone=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
            now,
        );
        assert_eq!(
            sent(&mut jar, u, now).as_deref(),
            Some("a=1; b=1"),
            "Max-Age wins"
        );
        assert_eq!(
            sent(&mut jar, u, at(NOW + 11)).as_deref(),
            Some("b=1"),
            "a expired"
        );
        jar.store(&uri(u), b"b=2", now);
        assert_eq!(
            sent(&mut jar, u, now).as_deref(),
            Some("b=2"),
            "replaced by name, domain, path"
        );
        jar.store(&uri(u), b"b=; Max-Age=0", now);
        assert_eq!(sent(&mut jar, u, now), None, "deleted");
        assert!(jar.is_empty());
        for bad in [&b"novalue"[..], b"=x", b"\xff=1"] {
            jar.store(&uri(u), bad, now);
        }
        assert!(jar.is_empty(), "malformed headers are ignored");
    }

    #[test]
    fn secure_cookies_go_only_over_https_and_written_cookies_win() {
        let mut jar = Jar::default();
        let now = at(NOW);
        jar.store(&uri("https://app.test/"), b"s=1; Secure", now);
        jar.store(&uri("https://app.test/"), b"p=1", now);
        assert_eq!(
            sent(&mut jar, "http://app.test/", now).as_deref(),
            Some("p=1")
        );
        assert_eq!(
            sent(&mut jar, "https://app.test/", now).as_deref(),
            Some("s=1; p=1")
        );
        let written = HeaderValue::from_static("p=mine; x=2");
        let merged = jar
            .header(&uri("https://app.test/"), Some(&written), now)
            .expect("merged");
        assert_eq!(merged, "p=mine; x=2; s=1");
        jar.clear();
        assert_eq!(
            jar.header(&uri("https://app.test/"), Some(&written), now),
            None
        );
    }

    #[test]
    fn a_jar_keeps_at_most_its_limit_dropping_the_oldest() {
        let mut jar = Jar::default();
        let now = at(NOW);
        for i in 0..=MAX_COOKIES {
            jar.store(&uri("http://app.test/"), format!("c{i}=1").as_bytes(), now);
        }
        let header = sent(&mut jar, "http://app.test/", now).expect("cookies");
        assert_eq!(header.split("; ").count(), MAX_COOKIES);
        assert!(!header.starts_with("c0="), "{}", &header[..20]);
    }
}
