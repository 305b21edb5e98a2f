//! Which targets a run may reach: `[api] allowed_targets` of `herd up` (and `herd run
//! --allowed-targets`), a list of host globs (`*.staging.example.com`, `localhost`) and CIDRs
//! (`10.0.0.0/8`, `::1/128`).
//!
//! A connection is allowed when its host name matches a glob, or the address it connects to lies
//! in a CIDR. The coordinator checks a plan's target before a run starts (it can only see the
//! name); agents check every connection after resolving the name and before connecting, so a name
//! cannot resolve around the list, and a redirect to another host is checked as its own
//! connection. A refused connection fails with the error kind `blocked` and never reaches the
//! host.

use std::net::IpAddr;

/// One entry of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// A host glob, lowercase: `*` matches any run of characters (dots too).
    Host(String),
    /// An address block.
    Cidr(IpAddr, u8),
}

/// A parsed allow-list; an empty one allows nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    patterns: Vec<Pattern>,
    written: Vec<String>,
}

impl AllowList {
    /// Parses the entries; an error names the entry by its index and says what is wrong.
    pub fn parse(entries: &[String]) -> Result<Self, (usize, String)> {
        let mut patterns = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let e = entry.trim();
            if e.is_empty() {
                return Err((i, "is empty".into()));
            }
            if let Some((addr, bits)) = e.split_once('/') {
                let addr: IpAddr = addr
                    .parse()
                    .map_err(|_| (i, format!("{e:?} is not a CIDR like 10.0.0.0/8")))?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let bits: u8 = bits
                    .parse()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| (i, format!("{e:?}: the prefix must be 0..={max}")))?;
                patterns.push(Pattern::Cidr(addr, bits));
            } else if let Ok(addr) = e.trim_matches(['[', ']']).parse::<IpAddr>() {
                let bits = if addr.is_ipv4() { 32 } else { 128 };
                patterns.push(Pattern::Cidr(addr, bits));
            } else if e
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'*' | b'_'))
            {
                patterns.push(Pattern::Host(e.to_ascii_lowercase()));
            } else {
                return Err((i, format!("{e:?} is neither a host glob nor a CIDR")));
            }
        }
        Ok(Self {
            patterns,
            written: entries.to_vec(),
        })
    }

    /// The entries as written.
    pub fn entries(&self) -> &[String] {
        &self.written
    }

    /// Whether `host` (a name or an address literal) is allowed by name alone: a glob matches
    /// it, or it is an address inside a CIDR.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        if let Ok(addr) = host.parse::<IpAddr>() {
            return self.allows_addr(&host, addr);
        }
        self.patterns.iter().any(|p| match p {
            Pattern::Host(glob) => glob_matches(glob, &host),
            Pattern::Cidr(..) => false,
        })
    }

    /// Whether a connection to `addr`, resolved from `host`, is allowed.
    pub fn allows_addr(&self, host: &str, addr: IpAddr) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        self.patterns.iter().any(|p| match p {
            Pattern::Host(glob) => glob_matches(glob, &host),
            Pattern::Cidr(net, bits) => in_cidr(addr, *net, *bits),
        })
    }

    /// Whether the list has address blocks (a name outside every glob may still resolve into
    /// one: only the agent, resolving it, can tell).
    pub fn has_cidrs(&self) -> bool {
        self.patterns.iter().any(|p| matches!(p, Pattern::Cidr(..)))
    }
}

/// The host of an `http://` or `https://` URL (without port or brackets).
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next();
    }
    Some(authority.split(':').next().unwrap_or(authority))
}

fn glob_matches(glob: &str, host: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    if parts.len() == 1 {
        return glob == host;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !host.starts_with(first) || host.len() < first.len() + last.len() || !host.ends_with(last) {
        return false;
    }
    let mut rest = &host[first.len()..host.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

fn in_cidr(addr: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V4(_)) => a
            .to_ipv4_mapped()
            .is_some_and(|a| in_cidr(IpAddr::V4(a), net, bits)),
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).expect("valid")
    }

    #[test]
    fn globs_and_cidrs_decide_by_name_and_by_address() {
        let l = list(&["*.staging.example.com", "10.0.0.0/8", "localhost", "::1"]);
        assert!(l.allows_host("api.staging.example.com"));
        assert!(l.allows_host("A.B.Staging.Example.com"));
        assert!(!l.allows_host("staging.example.com.evil.org"));
        assert!(!l.allows_host("example.com"));
        assert!(l.allows_host("10.1.2.3"));
        assert!(!l.allows_host("11.1.2.3"));
        assert!(l.allows_host("[::1]"));
        assert!(l.allows_host("localhost"));
        // After resolution: a name outside every glob is allowed only into a CIDR.
        assert!(l.allows_addr("internal.corp", "10.9.9.9".parse().expect("ip")));
        assert!(!l.allows_addr("internal.corp", "192.168.1.1".parse().expect("ip")));
        assert!(l.has_cidrs());
        assert!(!list(&["127.0.0.2/32"]).allows_host("127.0.0.1"));
        assert!(list(&["0.0.0.0/0"]).allows_host("8.8.8.8"));
    }

    #[test]
    fn bad_entries_are_named_by_index() {
        let bad = |e: &[&str]| {
            AllowList::parse(&e.iter().map(|x| x.to_string()).collect::<Vec<_>>())
                .expect_err("invalid")
        };
        assert_eq!(bad(&["ok.com", "10.0.0.0/33"]).0, 1);
        assert_eq!(bad(&["http://x"]).0, 0);
        assert_eq!(bad(&[""]).0, 0);
    }

    #[test]
    fn hosts_are_read_from_urls() {
        assert_eq!(url_host("http://a.b:8080/x"), Some("a.b"));
        assert_eq!(url_host("https://[::1]:9/"), Some("::1"));
        assert_eq!(url_host("http://127.0.0.1"), Some("127.0.0.1"));
        assert_eq!(url_host("ftp://x"), None);
    }
}
