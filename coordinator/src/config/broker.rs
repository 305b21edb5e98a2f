//! `[broker]`: where the coordinator's MQTT session goes (if it has one), how it authenticates,
//! what agents are told to connect to, and which way commands and frames travel.

use super::errors::{url_with_scheme, Errors};
use super::raw::RawBroker;
use crate::broker::mosquitto::MosquittoFiles;
use crate::broker::LogWindow;
use herd_protocol::broker::BrokerAddr;
use herd_protocol::tls::{PemSource, TlsOptions};

/// How commands go out to agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandsVia {
    /// The coordinator's own MQTT session.
    Mqtt,
    /// The IoT data plane's `Publish` API at this endpoint (`None`: the SDK's own for the
    /// region, or `[aws] endpoint_url`).
    IotData {
        /// Endpoint override for the data plane only.
        endpoint_url: Option<String>,
    },
}

/// How agents' frames and statuses come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramesVia {
    /// The coordinator's own MQTT subscription.
    Mqtt,
    /// An SQS queue an IoT topic rule forwards `herd/runs/#` into (survives coordinator restarts).
    Sqs {
        /// The queue URL.
        queue_url: String,
    },
}

/// How the coordinator authenticates to its broker (`[broker] auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerAuth {
    /// No client credentials (a local or private broker; or no session at all, with
    /// `commands_via = "iot-data"` and `frames_via = "sqs"`).
    None,
    /// An X.509 client certificate: `cert_file` and `key_file` (IoT Core on `mqtts://…:8883`).
    Certificate,
    /// MQTT over WebSocket (`wss://ENDPOINT/mqtt`), each connection presigned with SigV4 with the
    /// credentials of the environment or the ECS task role (IoT Core without certificates).
    SigV4,
}

impl BrokerAuth {
    /// As `herd.toml` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Certificate => "certificate",
            Self::SigV4 => "sigv4",
        }
    }
}

/// The MQTT broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// `None`: start the embedded broker; otherwise the broker the coordinator connects to.
    pub url: Option<BrokerAddr>,
    /// `auth`: `none`, or `certificate` (the default when `cert_file` is given).
    pub auth: BrokerAuth,
    /// `ca_file`, `cert_file`, `key_file`: TLS material for an `mqtts://` broker.
    pub tls: TlsOptions,
    /// What agents are told to connect to, when it differs from `url` (an IoT Core endpoint).
    pub agent_url: Option<BrokerAddr>,
    /// Commands out.
    pub commands_via: CommandsVia,
    /// Frames and statuses in.
    pub frames_via: FramesVia,
    /// `mosquitto_password_file`, `mosquitto_acl_file`, `mosquitto_pid_file`: an external
    /// Mosquitto whose users and ACLs the coordinator writes, per run.
    pub mosquitto: Option<MosquittoFiles>,
    /// `embedded_log_mib`: how much of each filter's messages the embedded broker keeps
    /// ([`LogWindow`]; `herd run` sizes it from its agents instead).
    pub embedded_log: LogWindow,
}

impl Default for BrokerConfig {
    /// The embedded broker, with commands and frames over the coordinator's own session.
    fn default() -> Self {
        Self {
            url: None,
            auth: BrokerAuth::None,
            tls: TlsOptions::default(),
            agent_url: None,
            commands_via: CommandsVia::Mqtt,
            frames_via: FramesVia::Mqtt,
            mosquitto: None,
            embedded_log: LogWindow::DEFAULT,
        }
    }
}

fn broker_addr(errors: &mut Errors, key: &str, url: Option<&str>) -> Option<BrokerAddr> {
    match BrokerAddr::parse(url?) {
        Ok(addr) => Some(addr),
        Err(e) => {
            errors.push(key, e.reason);
            None
        }
    }
}

pub(super) fn broker(errors: &mut Errors, raw: RawBroker) -> BrokerConfig {
    let url = broker_addr(errors, "broker.url", raw.url.as_deref());
    let agent_url = broker_addr(errors, "broker.agent_url", raw.agent_url.as_deref());
    let tls = TlsOptions {
        ca: raw.ca_file.as_deref().map(PemSource::parse),
        cert: raw.cert_file.as_deref().map(PemSource::parse),
        key: raw.key_file.as_deref().map(PemSource::parse),
    };
    if tls.is_set() && !url.as_ref().is_some_and(|u| u.scheme.is_tls()) {
        errors.push(
            "broker.ca_file",
            "ca_file, cert_file and key_file are for a TLS broker: broker.url = \"mqtts://…\"",
        );
    }
    if tls.cert.is_some() != tls.key.is_some() {
        errors.push(
            "broker.key_file",
            "cert_file and key_file go together (a client certificate and its key)",
        );
    }
    let auth = auth(errors, raw.auth.as_deref(), &tls);
    if auth == BrokerAuth::SigV4 && !url.as_ref().is_some_and(|u| u.scheme.is_websocket()) {
        errors.push(
            "broker.auth",
            "\"sigv4\" signs MQTT over WebSocket: broker.url = \"wss://ENDPOINT/mqtt\"",
        );
    }
    if raw.agent_url.is_some() && raw.url.is_none() {
        errors.push(
            "broker.agent_url",
            "needs broker.url (the embedded broker is local only)",
        );
    }
    let commands_via = match raw.commands_via.as_deref() {
        None | Some("mqtt") => {
            if raw.iot_endpoint_url.is_some() {
                errors.push(
                    "broker.iot_endpoint_url",
                    "only for commands_via = \"iot-data\"",
                );
            }
            CommandsVia::Mqtt
        }
        Some("iot-data") => {
            if let Some(url) = &raw.iot_endpoint_url {
                url_with_scheme(errors, "broker.iot_endpoint_url", url, &["http", "https"]);
            }
            CommandsVia::IotData {
                endpoint_url: raw.iot_endpoint_url,
            }
        }
        Some(other) => {
            errors.push(
                "broker.commands_via",
                format!("{other:?} is not mqtt or iot-data"),
            );
            CommandsVia::Mqtt
        }
    };
    let frames_via = match raw.frames_via.as_deref() {
        None | Some("mqtt") => {
            if raw.frames_queue_url.is_some() {
                errors.push("broker.frames_queue_url", "only for frames_via = \"sqs\"");
            }
            FramesVia::Mqtt
        }
        Some("sqs") => {
            let queue_url = errors.required(
                "broker.frames_queue_url",
                raw.frames_queue_url,
                "when broker.frames_via = \"sqs\"",
            );
            FramesVia::Sqs { queue_url }
        }
        Some(other) => {
            errors.push("broker.frames_via", format!("{other:?} is not mqtt or sqs"));
            FramesVia::Mqtt
        }
    };
    if commands_via == CommandsVia::Mqtt && frames_via != FramesVia::Mqtt {
        errors.push(
            "broker.frames_via",
            "\"sqs\" needs commands_via = \"iot-data\" (frames reach SQS through IoT Core)",
        );
    }
    let mosquitto = match (raw.mosquitto_password_file, raw.mosquitto_acl_file) {
        (Some(password_file), Some(acl_file)) => {
            if url.is_none() {
                errors.push(
                    "broker.mosquitto_password_file",
                    "is for an external Mosquitto: give broker.url",
                );
            }
            Some(MosquittoFiles {
                password_file: password_file.into(),
                acl_file: acl_file.into(),
                pid_file: raw.mosquitto_pid_file.map(Into::into),
            })
        }
        (None, None) => {
            if raw.mosquitto_pid_file.is_some() {
                errors.push(
                    "broker.mosquitto_pid_file",
                    "goes with mosquitto_password_file and mosquitto_acl_file",
                );
            }
            None
        }
        (Some(_), None) => {
            errors.push(
                "broker.mosquitto_acl_file",
                "is needed with mosquitto_password_file",
            );
            None
        }
        (None, Some(_)) => {
            errors.push(
                "broker.mosquitto_password_file",
                "is needed with mosquitto_acl_file",
            );
            None
        }
    };
    let embedded_log = match raw.embedded_log_mib {
        None => LogWindow::DEFAULT,
        Some(_) if url.is_some() => {
            errors.push(
                "broker.embedded_log_mib",
                "is for the embedded broker: without broker.url",
            );
            LogWindow::DEFAULT
        }
        Some(mib) if !(2..=4096).contains(&mib) => {
            errors.push(
                "broker.embedded_log_mib",
                format!("{mib} is not between 2 and 4096 (MiB kept per subscribed topic filter)"),
            );
            LogWindow::DEFAULT
        }
        Some(mib) => LogWindow::total_mib(mib),
    };
    BrokerConfig {
        url,
        auth,
        tls,
        agent_url,
        commands_via,
        frames_via,
        mosquitto,
        embedded_log,
    }
}

/// `[broker] auth`, checked against the TLS material given with it.
fn auth(errors: &mut Errors, raw: Option<&str>, tls: &TlsOptions) -> BrokerAuth {
    let has_cert = tls.cert.is_some() || tls.key.is_some();
    match raw {
        None if has_cert => BrokerAuth::Certificate,
        None | Some("none") => {
            if has_cert {
                errors.push(
                    "broker.auth",
                    "\"none\" sends no client certificate: remove cert_file and key_file, or say auth = \"certificate\"",
                );
            }
            BrokerAuth::None
        }
        Some("certificate") => {
            // One of the two alone is reported above ("go together").
            if !has_cert {
                for key in ["broker.cert_file", "broker.key_file"] {
                    errors.push(key, "required when broker.auth = \"certificate\"");
                }
            }
            BrokerAuth::Certificate
        }
        Some("sigv4") => {
            if has_cert {
                errors.push(
                    "broker.auth",
                    "\"sigv4\" signs with IAM credentials, not a certificate: remove cert_file and key_file",
                );
            }
            BrokerAuth::SigV4
        }
        Some(other) => {
            errors.push(
                "broker.auth",
                format!("{other:?} is not none, certificate or sigv4"),
            );
            BrokerAuth::None
        }
    }
}
