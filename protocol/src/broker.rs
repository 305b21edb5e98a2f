//! Where an MQTT broker is: the one parser of broker URLs, for the agent and the coordinator.
//!
//! Both sides used to parse `--broker` / `[broker] url` with their own rules: the coordinator took
//! only `mqtt://host:port`, so the README's own IoT Core example (`mqtts://…:8883`) made `herd up`
//! look up a host called `mqtts://…`. Now both call [`BrokerAddr::parse`], and a scheme the
//! transport cannot speak is refused where it is used, naming the scheme.
//!
//! Accepted: `mqtt://HOST[:PORT]` (and `tcp://`, or a bare `HOST:PORT`), `mqtts://` (TLS),
//! `ws://` and `wss://` (MQTT over WebSocket, with a path, `/mqtt` by default as IoT Core wants).
//! Hosts may be names, IPv4, or IPv6 in brackets (`[::1]:1883`). Default ports: 1883, 8883, 80, 443.

use std::fmt;

/// How long an agent's MQTT session waits for the broker's CONNACK (rumqttc also bounds each
/// write with it). rumqttc's default is 5 s: when thousands of agents connect at once the
/// embedded broker accepts them more slowly than that (`herd bench swarm --agents 5000`: 3,141
/// of 5,000 timed out), each one that gives up reconnects 250 ms later, and the storm never
/// settles. A broker that refuses or is absent still fails at once; only a slow one is waited
/// for. Real and simulated agents both use it.
pub const AGENT_CONNECT_TIMEOUT_S: u64 = 30;

/// How the broker is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BrokerScheme {
    /// MQTT over plain TCP.
    Mqtt,
    /// MQTT over TLS.
    Mqtts,
    /// MQTT over WebSocket.
    Ws,
    /// MQTT over WebSocket over TLS.
    Wss,
}

impl BrokerScheme {
    /// The scheme as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::Mqtts => "mqtts",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Mqtt => 1883,
            Self::Mqtts => 8883,
            Self::Ws => 80,
            Self::Wss => 443,
        }
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Mqtts | Self::Wss)
    }

    /// Whether MQTT runs inside a WebSocket.
    pub fn is_websocket(self) -> bool {
        matches!(self, Self::Ws | Self::Wss)
    }
}

/// A broker URL that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid broker URL {url:?}: {reason}")]
pub struct BrokerAddrError {
    /// The URL as given.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A parsed broker URL; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerAddr {
    /// The scheme.
    pub scheme: BrokerScheme,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// The port (the scheme's default when the URL names none).
    pub port: u16,
    /// The WebSocket path with its query (`/mqtt` by default); empty for MQTT over TCP or TLS.
    pub path: String,
}

impl BrokerAddr {
    /// Parses a broker URL; see the module docs for the forms.
    pub fn parse(url: &str) -> Result<Self, BrokerAddrError> {
        let bad = |reason: &str| BrokerAddrError {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let url_trimmed = url.trim();
        let (scheme, rest) = match url_trimmed.split_once("://") {
            None => (BrokerScheme::Mqtt, url_trimmed),
            Some((s, rest)) => {
                let scheme = match s.to_ascii_lowercase().as_str() {
                    "mqtt" | "tcp" => BrokerScheme::Mqtt,
                    "mqtts" | "ssl" | "tls" => BrokerScheme::Mqtts,
                    "ws" => BrokerScheme::Ws,
                    "wss" => BrokerScheme::Wss,
                    _ => {
                        return Err(bad(
                            "the scheme must be mqtt://, mqtts://, ws:// or wss:// (host:port alone is mqtt)",
                        ))
                    }
                };
                (scheme, rest)
            }
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(bad("the host is empty"));
        }
        if authority.contains(['@', ' ', '#']) {
            return Err(bad(
                "expected host:port (no user info, spaces or fragments)",
            ));
        }
        let path = if scheme.is_websocket() {
            match path {
                "" | "/" => "/mqtt".to_string(),
                p if p.starts_with('?') => format!("/mqtt{p}"),
                p => p.to_string(),
            }
        } else {
            if !path.trim_end_matches('/').is_empty() {
                return Err(bad(
                    "MQTT over TCP or TLS takes no path (ws:// and wss:// do)",
                ));
            }
            String::new()
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            match after {
                "" => (host, None),
                a => match a.strip_prefix(':') {
                    Some(p) => (host, Some(p)),
                    None => return Err(bad("expected :PORT after ']'")),
                },
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => {
                    return Err(bad("an IPv6 address must be in brackets: [::1]:1883"))
                }
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let port = match port {
            None => scheme.default_port(),
            Some(p) => p
                .parse()
                .map_err(|_| bad("the port is not a number from 0 to 65535"))?,
        };
        Ok(Self {
            scheme,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// `host:port`, with brackets around an IPv6 host.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The URL in its normal form (`mqtts://host:8883`, `wss://host:443/mqtt`).
impl fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.path
        )
    }
}

impl std::str::FromStr for BrokerAddr {
    type Err = BrokerAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::{BrokerAddr, BrokerScheme};
    use proptest::prelude::*;

    fn ok(url: &str) -> Option<(BrokerScheme, String, u16, String)> {
        BrokerAddr::parse(url)
            .ok()
            .map(|b| (b.scheme, b.host, b.port, b.path))
    }

    #[test]
    fn broker_addresses_in_the_forms_users_write() {
        use BrokerScheme::*;
        let s = String::from;
        assert_eq!(
            ok("mqtt://127.0.0.1:1883"),
            Some((Mqtt, s("127.0.0.1"), 1883, s("")))
        );
        assert_eq!(
            ok("127.0.0.1:1999"),
            Some((Mqtt, s("127.0.0.1"), 1999, s("")))
        );
        assert_eq!(ok("tcp://broker/"), Some((Mqtt, s("broker"), 1883, s(""))));
        assert_eq!(ok("mqtt://[::1]:1884"), Some((Mqtt, s("::1"), 1884, s(""))));
        assert_eq!(ok("mqtt://[::1]"), Some((Mqtt, s("::1"), 1883, s(""))));
        assert_eq!(
            ok("mqtts://abc-ats.iot.eu-west-1.amazonaws.com"),
            Some((Mqtts, s("abc-ats.iot.eu-west-1.amazonaws.com"), 8883, s("")))
        );
        assert_eq!(ok("mqtts://h:443"), Some((Mqtts, s("h"), 443, s(""))));
        assert_eq!(ok("ws://h"), Some((Ws, s("h"), 80, s("/mqtt"))));
        assert_eq!(ok("wss://h:443/mqtt"), Some((Wss, s("h"), 443, s("/mqtt"))));
        assert_eq!(
            ok("wss://h/mqtt?X-Amz-Date=1"),
            Some((Wss, s("h"), 443, s("/mqtt?X-Amz-Date=1")))
        );
        for bad in [
            "",
            "h:port",
            "mqtt://:1883",
            "h:1/x",
            "http://h",
            "mqtt://u@h:1",
            "::1:1883",
            "mqtt://[::1",
            "mqtt://h:70000",
        ] {
            assert!(BrokerAddr::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn errors_name_the_url_and_the_problem() {
        let e = BrokerAddr::parse("http://h:1").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("invalid broker URL \"http://h:1\": the scheme must be mqtt://, mqtts://, ws:// or wss:// (host:port alone is mqtt)")
        );
    }

    proptest! {
        /// Display gives a URL that parses back to the same address.
        #[test]
        fn display_round_trips(
            scheme in prop_oneof![Just("mqtt"), Just("mqtts"), Just("ws"), Just("wss")],
            host in prop_oneof!["[a-z][a-z0-9.-]{0,20}", Just("::1".to_string()), Just("10.0.0.1".to_string())],
            port in proptest::option::of(any::<u16>()),
        ) {
            let h = if host.contains(':') { format!("[{host}]") } else { host.clone() };
            let url = match port { Some(p) => format!("{scheme}://{h}:{p}"), None => format!("{scheme}://{h}") };
            let parsed = BrokerAddr::parse(&url).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&parsed.host, &host);
            let again = BrokerAddr::parse(&parsed.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(again, parsed);
        }

        /// Nothing makes the parser panic.
        #[test]
        fn never_panics(url in ".{0,64}") {
            let _ = BrokerAddr::parse(&url);
        }
    }
}
