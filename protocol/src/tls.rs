//! The one rustls client builder: agents' https targets, agents' and the coordinator's `mqtts://`
//! and `wss://` brokers, and the coordinator's JWKS fetch all take their TLS configuration here.
//!
//! Why one place: it was built three times, each choosing the crypto provider, the roots and the
//! PEM handling on its own. rustls runs on the `ring` provider named explicitly: rumqttc's default
//! provider is aws-lc (a C build the agent does not otherwise need), and a process that links both
//! has no default provider at all. Without a CA of the caller's, servers are checked against the
//! Mozilla roots compiled in (`webpki-roots`), which include the Amazon roots IoT Core's ATS
//! endpoints chain to, so a container needs no CA bundle. PEM material comes from a file or is
//! the PEM text itself (what an ECS task gets when a secret is injected as an environment variable).
//!
//! `insecure` swaps the certificate check for one that accepts any chain and any name (test
//! environments with self-signed certificates), but still verifies the handshake signatures
//! against the certificate the server sent, as Go's `InsecureSkipVerify` (k6) does: the server
//! must at least hold the key of the certificate it shows.
//!
//! This module is behind the `runtime` feature (with [`crate::clock`]): it reads files, which the
//! rest of the crate never does.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// The ALPN protocol IoT Core needs to speak MQTT on port 443.
pub const IOT_CORE_ALPN: &str = "x-amzn-mqtt-ca";

/// A TLS option that could not be used, named as the user wrote it (`--mqtt-ca`, `broker.ca_file`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{option}: {reason}")]
pub struct TlsError {
    /// The flag or key the user set.
    pub option: String,
    /// What is wrong with it.
    pub reason: String,
}

/// PEM material: a file, or the PEM text itself.
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    /// Read from this file when the configuration is built.
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

    fn read(&self, option: &str) -> Result<Vec<u8>, TlsError> {
        match self {
            Self::Inline(text) => Ok(text.as_bytes().to_vec()),
            Self::File(path) => std::fs::read(path).map_err(|e| TlsError {
                option: option.to_string(),
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

/// CA and client certificate for a TLS connection. All optional: with none, the server is
/// verified against the built-in roots and no client certificate is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA certificate(s) the server's certificate must chain to, instead of the built-in roots.
    pub ca: Option<PemSource>,
    /// The client's certificate (chain), for servers that authenticate clients by certificate.
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

/// How the user named the three options, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct OptionNames {
    /// The CA option (`--mqtt-ca`).
    pub ca: &'static str,
    /// The certificate option (`--mqtt-cert`).
    pub cert: &'static str,
    /// The key option (`--mqtt-key`).
    pub key: &'static str,
}

/// What a client configuration is for.
#[derive(Debug, Clone, Default)]
pub struct ClientTls<'a> {
    /// Roots and client certificate (none: the built-in roots, no client certificate).
    pub options: Option<(&'a TlsOptions, OptionNames)>,
    /// Accept any server certificate (see the module docs).
    pub insecure: bool,
    /// With a CA of the caller's, trust the built-in roots as well (not instead).
    pub builtin_roots_too: bool,
    /// ALPN protocols offered, in order of preference.
    pub alpn: Vec<Vec<u8>>,
}

/// Builds a rustls client configuration; see the module docs.
pub fn client_config(spec: &ClientTls<'_>) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError {
            option: "tls".into(),
            reason: e.to_string(),
        })?;
    let (options, names) = match spec.options {
        Some((o, n)) => (o.clone(), Some(n)),
        None => (TlsOptions::default(), None),
    };
    let name = |pick: fn(&OptionNames) -> &'static str| names.as_ref().map_or("tls", pick);
    let builder = if spec.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate { provider }))
    } else {
        let mut roots = RootCertStore::empty();
        if options.ca.is_none() || spec.builtin_roots_too {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        match &options.ca {
            None => {}
            Some(ca) => {
                let option = name(|n| n.ca);
                for cert in certificates(ca, option)? {
                    roots.add(cert).map_err(|e| TlsError {
                        option: option.into(),
                        reason: format!("not a usable CA certificate: {e}"),
                    })?;
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match (&options.cert, &options.key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, name(|n| n.cert))?;
            let key_option = name(|n| n.key);
            let key_pem = key.read(key_option)?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError {
                option: key_option.into(),
                reason: format!("no PEM private key found: {e}"),
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError {
                    option: key_option.into(),
                    reason: format!("does not suit the certificate of {}: {e}", name(|n| n.cert)),
                })?
        }
        (Some(_), None) => {
            return Err(TlsError {
                option: name(|n| n.key).into(),
                reason: format!("required with {}", name(|n| n.cert)),
            })
        }
        (None, Some(_)) => {
            return Err(TlsError {
                option: name(|n| n.cert).into(),
                reason: format!("required with {}", name(|n| n.key)),
            })
        }
    };
    config.alpn_protocols = spec.alpn.clone();
    Ok(config)
}

/// The server name to verify and to send as SNI (none is sent for an IP address).
pub fn server_name(host: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(host.to_string()).ok()
}

fn certificates(
    source: &PemSource,
    option: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = source.read(option)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError {
            option: option.into(),
            reason: format!("invalid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError {
            option: option.into(),
            reason: "no PEM certificate found".into(),
        });
    }
    Ok(certs)
}

/// Accepts any certificate chain for any name; still checks handshake signatures.
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: OptionNames = OptionNames {
        ca: "--mqtt-ca",
        cert: "--mqtt-cert",
        key: "--mqtt-key",
    };

    fn pem_pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("self-signed");
        (cert.pem(), key.serialize_pem())
    }

    fn err(options: &TlsOptions) -> String {
        match client_config(&ClientTls {
            options: Some((options, NAMES)),
            ..ClientTls::default()
        }) {
            Ok(_) => panic!("expected an error for {options:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn client_certificates_and_alpn() {
        let (cert, key) = pem_pair();
        let options = TlsOptions {
            ca: Some(PemSource::Inline(cert.clone())),
            cert: Some(PemSource::Inline(cert)),
            key: Some(PemSource::Inline(key)),
        };
        let with = client_config(&ClientTls {
            options: Some((&options, NAMES)),
            alpn: vec![IOT_CORE_ALPN.as_bytes().to_vec()],
            ..ClientTls::default()
        })
        .expect("config");
        assert_eq!(with.alpn_protocols, vec![b"x-amzn-mqtt-ca".to_vec()]);
        assert!(with.client_auth_cert_resolver.has_certs());
        let plain = client_config(&ClientTls::default()).expect("config");
        assert!(plain.alpn_protocols.is_empty());
        assert!(!plain.client_auth_cert_resolver.has_certs());
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
    fn bad_options_name_the_option() {
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
    }
}
