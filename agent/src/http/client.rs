//! The agent's HTTP client: settings shared by every virtual user ([`Client`]), and the
//! connections each virtual user or open-model worker owns ([`Connections`]).
//!
//! There is no shared pool. A closed-model VU sends one request at a time, so it needs one
//! connection per origin it talks to, and owning it outright costs nothing per request: no lock,
//! no lookup in a map of idle connections, no hand-over between tasks. A connection that fails,
//! times out or is closed by the server is dropped, and the next request opens a new one, as a
//! real client would. A VU keeps connections to a few origins (redirects may lead elsewhere).

use super::connector::{self, Origin, ProxyRoute, Route};
use super::cookies::Jar;
use super::h1::H1;
use super::h2::H2;
use super::request::Hop;
use super::{tls, Answer, Attempt, Keep};
use crate::error::AgentError;
use crate::recorder::FailureKind;
use herd_protocol::plan::{HostOverride, HttpVersion, Options, Plan};
use std::cell::Cell;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Connections a VU keeps open at most (to distinct origins).
const MAX_ORIGINS: usize = 4;

/// What every connection of one agent shares: the plan's options and the TLS configuration.
#[derive(Clone)]
pub struct Client {
    settings: Rc<Settings>,
}

pub(super) struct Settings {
    tls: tokio_rustls::TlsConnector,
    http: HttpVersion,
    pub timeout: Duration,
    connect_timeout: Duration,
    pub redirects: u32,
    /// Whether each VU keeps a cookie jar (`options.cookies`).
    pub cookies: bool,
    /// The plan's `hosts:` overrides (looked up only when a connection is opened).
    hosts: Vec<HostOverride>,
    /// The plan's `options.proxy`, if any.
    proxy: Option<ProxyRoute>,
    /// Whether a first failure to connect / to shake hands was logged (once each, per agent).
    warned_connect: Cell<bool>,
    warned_tls: Cell<bool>,
}

impl Settings {
    fn route(&self) -> Route<'_> {
        match &self.proxy {
            Some(p) => Route::Proxy(p),
            None => Route::Direct(&self.hosts),
        }
    }
}

impl Client {
    /// A client for `plan`: its `options` and its `hosts:` overrides.
    pub fn for_plan(plan: &Plan) -> Result<Self, AgentError> {
        Self::with_hosts(&plan.options, plan.hosts.clone())
    }

    /// A client for a plan's `options`.
    pub fn new(options: &Options) -> Result<Self, AgentError> {
        Self::with_hosts(options, Vec::new())
    }

    pub(super) fn with_hosts(
        options: &Options,
        hosts: Vec<HostOverride>,
    ) -> Result<Self, AgentError> {
        let tls =
            tls::connector(options.http, options.insecure_tls, &options.tls).map_err(|e| {
                AgentError::TargetTls {
                    reason: e.to_string(),
                }
            })?;
        Ok(Self {
            settings: Rc::new(Settings {
                tls,
                http: options.http,
                timeout: options.timeout,
                connect_timeout: options.connect_timeout,
                redirects: options.redirects,
                cookies: options.cookies,
                hosts,
                proxy: options.proxy.as_ref().map(|p| ProxyRoute {
                    origin: Origin {
                        tls: false,
                        host: p.host.clone(),
                        port: p.port,
                    },
                    authorization: p
                        .authorization()
                        .map(|a| bytes::Bytes::from(format!("proxy-authorization: {a}\r\n")))
                        .unwrap_or_default(),
                    tunnel_plain: options.http == HttpVersion::Http2,
                }),
                warned_connect: Cell::new(false),
                warned_tls: Cell::new(false),
            }),
        })
    }

    /// A new, empty set of connections for one VU or worker.
    pub fn connections(&self) -> Connections {
        Connections {
            settings: Rc::clone(&self.settings),
            lane: Lane::default(),
            jar: Jar::default(),
            extra: Vec::new(),
        }
    }
}

/// The connections one VU or open-model worker owns, by origin, and its cookie jar.
pub struct Connections {
    pub(super) settings: Rc<Settings>,
    /// Where the VU's requests go one after the other.
    pub(super) lane: Lane,
    /// The cookies of the VU (or of the open-model arrival) these connections serve.
    pub(super) jar: Jar,
    /// More lanes for the requests of a `parallel` step beyond its first (which takes `lane`),
    /// opened the first time one is needed: empty, so no allocation, for other plans.
    pub(super) extra: Vec<Lane>,
}

impl Connections {
    /// Forgets the cookies: the next requests are a new user's (an open-model arrival).
    pub fn clear_cookies(&mut self) {
        self.jar.clear();
    }
}

/// Connections by origin, one request at a time, and the timer that bounds their requests: a VU
/// has one lane, and one more for each request of a `parallel` step beyond the first (a browser
/// opens a connection per request it sends at once).
#[derive(Default)]
pub(super) struct Lane {
    pool: Pool,
    /// Set to the deadline of some earlier request and moved on only when it fires: requests
    /// are far shorter than the timeout, so arming a timer per request (a timer-wheel insert and
    /// removal each time) would be wasted work.
    timer: Option<Pin<Box<Sleep>>>,
}

/// Open connections, by origin.
#[derive(Default)]
struct Pool {
    open: Vec<(Rc<Origin>, Conn)>,
}

/// Small (each connection's state is boxed; an HTTP/2 one is over a kilobyte): a connection is
/// moved in and out around each request.
enum Conn {
    H1(Box<H1>),
    H2(Box<H2>),
    /// Plain HTTP/1.1 to a proxy: each request names its absolute URL, with the proxy's
    /// `Proxy-Authorization` line (or nothing).
    H1Proxied(Box<H1>, bytes::Bytes),
}

impl Conn {
    fn is_open(&self) -> bool {
        match self {
            Conn::H1(c) | Conn::H1Proxied(c, _) => c.is_open(),
            Conn::H2(c) => c.is_open(),
        }
    }

    async fn exchange(&mut self, hop: &Hop, keep: Keep) -> Result<Answer, Attempt> {
        let head = hop.method == hyper::Method::HEAD;
        match self {
            Conn::H1(c) => c.exchange(&hop.h1_wire, hop.h1_body(), head, keep).await,
            Conn::H2(c) => c.exchange(&hop.h2_block, hop.h2_body(), keep).await,
            Conn::H1Proxied(c, authorization) => {
                let wire = hop.absolute_form(authorization);
                c.exchange(&wire, hop.h1_body(), head, keep).await
            }
        }
    }
}

impl Lane {
    /// Sends one request (no redirect followed) and reads its whole response, or gives up at
    /// `deadline` (`Timeout`).
    pub(super) async fn exchange(
        &mut self,
        settings: &Settings,
        hop: &Hop,
        keep: Keep,
        deadline: Instant,
    ) -> Result<Answer, FailureKind> {
        let Self { pool, timer } = self;
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() > deadline {
            // An earlier request had a longer timeout (a step's own `timeout`): this one's
            // deadline comes first.
            timer.as_mut().reset(deadline);
        }
        let mut work = pin!(pool.exchange(settings, hop, keep));
        loop {
            tokio::select! {
                biased;
                answer = &mut work => return answer,
                () = timer.as_mut() => {
                    if Instant::now() >= deadline {
                        // Dropping `work` drops the connection in use: its state is unknown.
                        return Err(FailureKind::Timeout);
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        }
    }
}

impl Pool {
    /// Sends one request on the open connection to its origin, or on a new one.
    async fn exchange(
        &mut self,
        settings: &Settings,
        hop: &Hop,
        keep: Keep,
    ) -> Result<Answer, FailureKind> {
        let origin = &hop.target.origin;
        // Taken out while in use: if the caller drops this future (timeout), the connection,
        // whose state is then unknown, goes with it.
        if let Some(mut conn) = self.take(origin) {
            match conn.exchange(hop, keep).await {
                Ok(answer) => {
                    self.keep(origin, conn);
                    return Ok(answer);
                }
                Err(Attempt::Stale) => {}
                Err(Attempt::Failed(kind)) => return Err(kind),
            }
        }
        // A new connection too may turn the request away unprocessed (an HTTP/2 server refusing
        // the stream, or going away at once): it is sent once more, on another.
        for _ in 0..2 {
            let mut conn = Self::open(settings, origin).await?;
            match conn.exchange(hop, keep).await {
                Ok(answer) => {
                    self.keep(origin, conn);
                    return Ok(answer);
                }
                Err(Attempt::Stale) => {}
                Err(Attempt::Failed(kind)) => return Err(kind),
            }
        }
        Err(FailureKind::Closed)
    }

    fn take(&mut self, origin: &Rc<Origin>) -> Option<Conn> {
        let i = self
            .open
            .iter()
            .position(|(o, _)| Rc::ptr_eq(o, origin) || **o == **origin)?;
        Some(self.open.swap_remove(i).1)
    }

    fn keep(&mut self, origin: &Rc<Origin>, conn: Conn) {
        if !conn.is_open() {
            return;
        }
        if self.open.len() >= MAX_ORIGINS {
            self.open.remove(0);
        }
        self.open.push((Rc::clone(origin), conn));
    }

    async fn open(s: &Settings, origin: &Origin) -> Result<Conn, FailureKind> {
        let connected = connector::connect(origin, &s.tls, s.connect_timeout, s.route())
            .await
            .map_err(|e| {
                let warned = match e.kind {
                    FailureKind::Tls => &s.warned_tls,
                    _ => &s.warned_connect,
                };
                if !warned.replace(true) {
                    let hint = if e.kind == FailureKind::Tls {
                        " (for a test server with a self-signed certificate, set \
                         options.insecure_tls: true)"
                    } else {
                        ""
                    };
                    tracing::warn!(
                        host = %origin.host,
                        port = origin.port,
                        "cannot open a connection: {}{hint}; further failures of this kind are counted, not logged",
                        e.reason
                    );
                }
                e.kind
            })?;
        let h2 = match s.http {
            HttpVersion::Http2 => true,
            HttpVersion::Http1 => false,
            HttpVersion::Auto => connected.alpn_h2,
        };
        if h2 {
            Ok(Conn::H2(Box::new(H2::new(connected.stream))))
        } else if connected.absolute_form {
            let authorization = s
                .proxy
                .as_ref()
                .map(|p| p.authorization.clone())
                .unwrap_or_default();
            Ok(Conn::H1Proxied(
                Box::new(H1::new(connected.stream)),
                authorization,
            ))
        } else {
            Ok(Conn::H1(Box::new(H1::new(connected.stream))))
        }
    }
}
