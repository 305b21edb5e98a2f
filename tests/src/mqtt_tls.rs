//! MQTT over TLS for tests: a test CA with a server and a client certificate, and Mosquitto
//! with a TLS listener on them (beside a plain one for the test's own observer).

use crate::aws::{free_port, Mosquitto};
use std::path::Path;
use std::process::Child;

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `dir`.
pub fn certificates(dir: &Path) {
    certificates_for(dir, &["127.0.0.1"], "agent");
}

/// A test CA (`ca.pem`), a server certificate for `server_names` (`server.pem`, `server.key`)
/// and a client certificate (`{client}.pem`, `{client}.key`), as PEM files in `dir`.
pub fn certificates_for(dir: &Path, server_names: &[&str], client: &str) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "herd test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("CA");
    let leaf = |names: Vec<String>, purpose, name: &str| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(names).expect("params");
        params.extended_key_usages = vec![purpose];
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &ca).expect("signed");
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write cert");
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write key");
    };
    leaf(
        server_names.iter().map(ToString::to_string).collect(),
        ExtendedKeyUsagePurpose::ServerAuth,
        "server",
    );
    leaf(vec![], ExtendedKeyUsagePurpose::ClientAuth, client);
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write CA");
}

/// Mosquitto with a TLS listener that requires a client certificate from the test CA, and a
/// plain loopback listener for the test's own observer.
pub struct MosquittoTls {
    child: Child,
    /// The TLS listener's port.
    pub tls_port: u16,
    /// The plain listener's port.
    pub plain_port: u16,
}

impl MosquittoTls {
    /// Starts the broker on the certificates [`certificates`] wrote into `dir`; clients must
    /// present a certificate of the test CA.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, true)
    }

    /// Like [`MosquittoTls::start`]; `require_certificate` says whether clients must present one.
    pub fn start_with(dir: &Path, require_certificate: bool) -> Self {
        // Mosquitto started as root reads its files as the `mosquitto` user.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for f in ["ca.pem", "server.pem", "server.key"] {
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
        }
        let (tls_port, plain_port) = (free_port(), free_port());
        let d = dir.display();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "persistence false\nallow_anonymous true\n\
                 listener {tls_port} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\n\
                 keyfile {d}/server.key\nrequire_certificate {require_certificate}\n\
                 listener {plain_port} 127.0.0.1\n"
            ),
        )
        .expect("mosquitto.conf");
        let child = Mosquitto::spawn(&conf, &[tls_port, plain_port]);
        Self {
            child,
            tls_port,
            plain_port,
        }
    }
}

impl Drop for MosquittoTls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
