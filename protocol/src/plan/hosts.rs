//! `hosts:` — connect to a name at an address of the plan's choosing, like k6's `hosts` or curl's
//! `--resolve`: a staging server reached under its production name, a host behind a load balancer
//! tested directly, a name that DNS does not know yet.
//!
//! Only where the agent *connects* changes: the URL, the `Host` header, TLS's server name (SNI)
//! and the certificate's name check stay the name's, so the server sees what a real client sends.

use super::cx::{join, kind, Cx};
use serde_json::{Map, Value};
use std::net::{IpAddr, SocketAddr};

/// One entry of `hosts:`: connections to `name` go to `ip` (and to `port`, when given, instead
/// of the URL's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOverride {
    /// The host name, in lower case (names compare without case).
    pub name: String,
    /// Where its connections go.
    pub ip: IpAddr,
    /// The port to connect to instead of the URL's, if the plan gives one.
    pub port: Option<u16>,
}

impl HostOverride {
    /// The address as the plan writes it: `10.0.0.5`, `10.0.0.5:8080`, `[::1]:8080`.
    pub fn address(&self) -> String {
        match self.port {
            None => self.ip.to_string(),
            Some(port) => SocketAddr::new(self.ip, port).to_string(),
        }
    }
}

/// The `hosts:` map as a plan writes it.
pub fn hosts_json(hosts: &[HostOverride]) -> Value {
    Value::Object(
        hosts
            .iter()
            .map(|h| (h.name.clone(), Value::String(h.address())))
            .collect::<Map<String, Value>>(),
    )
}

impl Cx {
    /// `hosts: {NAME: IP | IP:PORT, …}`.
    pub(super) fn hosts(&mut self, v: &Value) -> Option<Vec<HostOverride>> {
        let Value::Object(m) = v else {
            self.err(
                "hosts",
                format!(
                    "must be a map of host names to IP addresses, like {{api.example.com: \
                     10.0.0.5}}; got {}",
                    kind(v)
                ),
            );
            return None;
        };
        let mut out: Vec<HostOverride> = Vec::with_capacity(m.len());
        let mut ok = true;
        for (name, address) in m {
            let path = join("hosts", name);
            let lower = name.to_ascii_lowercase();
            if !is_host_name(&lower) {
                self.err(
                    &path,
                    "is not a host name (letters, digits, '-' and '.'; no scheme, port or path)",
                );
                ok = false;
            } else if out.iter().any(|h| h.name == lower) {
                self.err(&path, "is given twice (host names compare without case)");
                ok = false;
            }
            let parsed = match address {
                Value::String(s) => parse_address(s.trim()),
                other => Err(format!("must be an IP address, got {}", kind(other))),
            };
            match parsed {
                Ok((ip, port)) => out.push(HostOverride {
                    name: lower,
                    ip,
                    port,
                }),
                Err(e) => {
                    self.err(&path, e);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn parse_address(s: &str) -> Result<(IpAddr, Option<u16>), String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(format!("{s:?}: the port must be from 1 to 65535"));
        }
        return Ok((addr.ip(), Some(addr.port())));
    }
    Err(format!(
        "{s:?} is not an IP address (like 10.0.0.5, 10.0.0.5:8080 or [::1]:8080): a name must map \
         to an address, not to another name"
    ))
}
