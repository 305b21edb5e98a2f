//! Support for JWT tests: RSA keys generated at test time with the `openssl` CLI (no key is ever
//! committed), RS256 tokens signed with them, and a JWKS served over plain HTTP on 127.0.0.1 that
//! counts its fetches and can be changed while it runs (key rotation).
//!
//! Signing shells out to `openssl dgst -sign`, so the tokens are produced independently of the
//! `jsonwebtoken` crate the coordinator verifies them with.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// An RSA key pair in a PEM file, with the key id it is published under.
pub struct RsaKey {
    pem: PathBuf,
    /// The `kid` of its JWK.
    pub kid: String,
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl CLI is needed by the JWT tests (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl RsaKey {
    /// A new 2048-bit key, written (private) under `dir`.
    pub fn generate(dir: &Path, kid: &str) -> Self {
        let pem = dir.join(format!("{kid}.pem"));
        let path = pem.to_str().expect("utf-8 path");
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            path,
        ]);
        Self {
            pem,
            kid: kid.to_string(),
        }
    }

    /// Its public half as a JWK (`RS256`, `use: sig`), as Cognito publishes it.
    pub fn jwk(&self) -> Value {
        let path = self.pem.to_str().expect("utf-8 path");
        let out = openssl(&["rsa", "-in", path, "-noout", "-modulus"]);
        let text = String::from_utf8_lossy(&out);
        let hex = text.trim().trim_start_matches("Modulus=");
        let n: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex modulus"))
            .collect();
        json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
               "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB"})
    }

    /// An RS256 JWT with these `claims`, whose header names `kid` (normally this key's).
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let dir = self.pem.parent().expect("key dir");
        let data = dir.join(format!("{}-input", self.kid));
        std::fs::write(&data, &input).expect("write signing input");
        let sig = openssl(&[
            "dgst",
            "-sha256",
            "-sign",
            self.pem.to_str().expect("utf-8 path"),
            data.to_str().expect("utf-8 path"),
        ]);
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

/// A JWKS document served on `http://127.0.0.1:PORT/.well-known/jwks.json`.
pub struct JwksServer {
    addr: SocketAddr,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicU64>,
}

impl JwksServer {
    /// Serves `keys` (JWKs) until the test process ends.
    pub fn start(keys: Vec<Value>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let keys = Arc::new(Mutex::new(keys));
        let fetches = Arc::new(AtomicU64::new(0));
        let (k, f) = (keys.clone(), fetches.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                f.fetch_add(1, Ordering::SeqCst);
                let body = json!({"keys": *k.lock().expect("keys")}).to_string();
                let _ = write!(
                    &stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            addr,
            keys,
            fetches,
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    /// Replaces the keys it serves (a rotation).
    pub fn set_keys(&self, keys: Vec<Value>) {
        *self.keys.lock().expect("keys") = keys;
    }

    /// How many times it was fetched.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// A JWKS served over https by `openssl s_server -WWW` with a certificate for 127.0.0.1 issued by
/// a CA made for the test (its PEM is [`HttpsJwks::ca`]).
pub struct HttpsJwks {
    server: std::process::Child,
    port: u16,
    /// The test CA's certificate (PEM), to pass as `--jwks-ca`.
    pub ca: PathBuf,
}

impl HttpsJwks {
    /// Writes `keys` as `jwks.json` under `dir` and serves `dir` over https.
    pub fn start(dir: &Path, keys: Vec<Value>) -> Self {
        let p = |name: &str| dir.join(name).to_str().expect("utf-8 path").to_string();
        let ca = dir.join("ca.pem");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=herd test CA",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &p("leaf.key"),
            "-out",
            &p("leaf.csr"),
        ]);
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write ext");
        openssl(&[
            "x509",
            "-req",
            "-days",
            "1",
            "-in",
            &p("leaf.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-extfile",
            &p("leaf.ext"),
            "-out",
            &p("leaf.pem"),
        ]);
        std::fs::write(dir.join("jwks.json"), json!({"keys": keys}).to_string())
            .expect("write jwks");
        let port = crate::service::free_port();
        let server = Command::new("openssl")
            .args(["s_server", "-WWW", "-quiet", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-cert", &p("leaf.pem"), "-key", &p("leaf.key")])
            .current_dir(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "s_server did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self { server, port, ca }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/jwks.json", self.port)
    }
}

impl Drop for HttpsJwks {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
