//! MQTT over TLS, as AWS IoT Core wants it: `mqtts://host:8883` with the agent's X.509 client
//! certificate, or port 443 with the ALPN protocol `x-amzn-mqtt-ca` (for networks that only let
//! https out).
//!
//! The rustls configuration is built here, on the `ring` provider named explicitly, rather than
//! by rumqttc: its default provider is aws-lc (a C build herd's agent does not otherwise need),
//! and a process that links both providers has no default one. Without `--mqtt-ca` the server is
//! checked against the Mozilla roots compiled in (`webpki-roots`), which include the Amazon roots
//! IoT Core's ATS endpoints chain to. Certificates and keys come from files, or from PEM text
//! itself (what an ECS task gets when a secret is injected as an environment variable).

use crate::error::AgentError;
use rumqttc::{TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// The ALPN protocol IoT Core needs to speak MQTT on port 443.
pub const IOT_CORE_ALPN: &str = "x-amzn-mqtt-ca";

/// PEM material: a file, or the PEM text itself.
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    /// Read from this file when the agent connects.
    File(PathBuf),
    /// The PEM text (begins with `-----BEGIN`).
    Inline(String),
}

impl PemSource {
    /// PEM text if `value` starts like PEM, otherwise a path.
    pub fn parse(value: &str) -> Self {
        if value.trim_start().starts_with("-----BEGIN") {
            Self::Inline(value.to_owned())
        } else {
            Self::File(PathBuf::from(value))
        }
    }

    fn read(&self, option: &'static str) -> Result<Vec<u8>, AgentError> {
        match self {
            Self::Inline(text) => Ok(text.as_bytes().to_vec()),
            Self::File(path) => std::fs::read(path).map_err(|e| AgentError::Tls {
                option,
                reason: format!("cannot read {}: {e}", path.display()),
            }),
        }
    }
}

impl std::str::FromStr for PemSource {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::parse(s))
    }
}

/// Never prints inline PEM: it may be a private key.
impl fmt::Debug for PemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "File({})", path.display()),
            Self::Inline(text) => write!(f, "Inline(<{} bytes of PEM>)", text.len()),
        }
    }
}

/// TLS settings for an `mqtts://` broker. All optional: with none, the server is verified against
/// the built-in roots and no client certificate is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA certificate(s) the broker's certificate must chain to, instead of the built-in roots.
    pub ca: Option<PemSource>,
    /// The agent's certificate (chain), for brokers that authenticate clients by certificate.
    pub cert: Option<PemSource>,
    /// The private key of `cert`.
    pub key: Option<PemSource>,
}

impl TlsOptions {
    /// Whether any option is set.
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }
}

/// The transport for a broker: TLS for `mqtts`, with ALPN `x-amzn-mqtt-ca` on port 443.
pub(super) fn transport(
    tls: bool,
    port: u16,
    options: &TlsOptions,
) -> Result<Transport, AgentError> {
    if !tls {
        if options.is_set() {
            return Err(AgentError::Tls {
                option: "--mqtt-ca/--mqtt-cert/--mqtt-key",
                reason: "TLS options need an mqtts:// broker address".into(),
            });
        }
        return Ok(Transport::Tcp);
    }
    Ok(Transport::Tls(TlsConfiguration::Rustls(Arc::new(
        client_config(port, options)?,
    ))))
}

fn client_config(port: u16, options: &TlsOptions) -> Result<rustls::ClientConfig, AgentError> {
    let mut roots = rustls::RootCertStore::empty();
    match &options.ca {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(ca) => {
            for cert in certificates(ca, "--mqtt-ca")? {
                roots.add(cert).map_err(|e| AgentError::Tls {
                    option: "--mqtt-ca",
                    reason: format!("not a usable CA certificate: {e}"),
                })?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AgentError::Tls {
            option: "mqtts",
            reason: e.to_string(),
        })?
        .with_root_certificates(roots);
    let mut config = match (&options.cert, &options.key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "--mqtt-cert")?;
            let key_pem = key.read("--mqtt-key")?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| AgentError::Tls {
                option: "--mqtt-key",
                reason: format!("no PEM private key found: {e}"),
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| AgentError::Tls {
                    option: "--mqtt-key",
                    reason: format!("does not suit the certificate of --mqtt-cert: {e}"),
                })?
        }
        (Some(_), None) => {
            return Err(AgentError::Tls {
                option: "--mqtt-key",
                reason: "required with --mqtt-cert".into(),
            })
        }
        (None, Some(_)) => {
            return Err(AgentError::Tls {
                option: "--mqtt-cert",
                reason: "required with --mqtt-key".into(),
            })
        }
    };
    config.alpn_protocols = alpn(port);
    Ok(config)
}

/// IoT Core serves MQTT on 443 only to clients that ask for it by ALPN.
fn alpn(port: u16) -> Vec<Vec<u8>> {
    if port == 443 {
        vec![IOT_CORE_ALPN.as_bytes().to_vec()]
    } else {
        Vec::new()
    }
}

fn certificates(
    source: &PemSource,
    option: &'static str,
) -> Result<Vec<CertificateDer<'static>>, AgentError> {
    let pem = source.read(option)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AgentError::Tls {
            option,
            reason: format!("invalid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(AgentError::Tls {
            option,
            reason: "no PEM certificate found".into(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("self-signed");
        (cert.pem(), key.serialize_pem())
    }

    fn err(options: &TlsOptions) -> String {
        match transport(true, 8883, options) {
            Ok(_) => panic!("expected an error for {options:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn alpn_only_on_port_443() {
        let (cert, key) = pem_pair();
        let options = TlsOptions {
            ca: Some(PemSource::Inline(cert.clone())),
            cert: Some(PemSource::Inline(cert)),
            key: Some(PemSource::Inline(key)),
        };
        let on_443 = client_config(443, &options).expect("config");
        assert_eq!(on_443.alpn_protocols, vec![b"x-amzn-mqtt-ca".to_vec()]);
        assert!(on_443.client_auth_cert_resolver.has_certs());
        let on_8883 = client_config(8883, &TlsOptions::default()).expect("config");
        assert!(on_8883.alpn_protocols.is_empty());
        assert!(!on_8883.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn pem_text_or_a_path() {
        assert_eq!(
            PemSource::parse("/etc/herd/ca.pem"),
            PemSource::File(PathBuf::from("/etc/herd/ca.pem"))
        );
        let inline = PemSource::parse("-----BEGIN PRIVATE KEY-----\nsecret\n");
        assert!(matches!(inline, PemSource::Inline(_)));
        assert!(!format!("{inline:?}").contains("secret"));
    }

    #[test]
    fn bad_options_name_the_flag() {
        let (cert, key) = pem_pair();
        let only_cert = TlsOptions {
            cert: Some(PemSource::Inline(cert.clone())),
            ..TlsOptions::default()
        };
        assert_eq!(err(&only_cert), "--mqtt-key: required with --mqtt-cert");
        let missing = TlsOptions {
            ca: Some(PemSource::File(PathBuf::from("/nonexistent/ca.pem"))),
            ..TlsOptions::default()
        };
        assert!(err(&missing).starts_with("--mqtt-ca: cannot read /nonexistent/ca.pem"));
        let not_pem = TlsOptions {
            ca: Some(PemSource::Inline("-----BEGIN nonsense".into())),
            ..TlsOptions::default()
        };
        assert!(err(&not_pem).starts_with("--mqtt-ca: "));
        let key_as_cert = TlsOptions {
            cert: Some(PemSource::Inline(key.clone())),
            key: Some(PemSource::Inline(key)),
            ..TlsOptions::default()
        };
        assert_eq!(err(&key_as_cert), "--mqtt-cert: no PEM certificate found");
        let plain = transport(false, 1883, &only_cert)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            plain.as_deref(),
            Some("--mqtt-ca/--mqtt-cert/--mqtt-key: TLS options need an mqtts:// broker address")
        );
    }
}
