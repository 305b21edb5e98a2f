//! End-to-end: `herd up --config herd.toml` chooses its adapters from the file. Here the broker is
//! an external Mosquitto (the IoT Core stand-in) instead of the embedded one — over TCP, TLS with a
//! private CA, or WebSocket with SigV4-presigned URLs — and a bad file is refused with every
//! problem named.

use herd_e2e::aws::Mosquitto;
use herd_e2e::mqtt_tls::{certificates, MosquittoTls};
use herd_e2e::service::{plan, Service};
use herd_e2e::sigv4::{self, IotWebSocket};
use herd_e2e::{herd_bin, wait_with_limit, CountingTarget};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs a 2-agent plan through the service and checks herd's count against the target's.
fn runs_with_exact_counts(s: &Service, target: &CountingTarget, name: &str) {
    let op = s.token("operator");
    let (status, summary) = s.request(
        "POST",
        "/api/v1/runs?wait=true",
        Some(&op),
        Some(&serde_json::json!({"plan": plan(name, &target.url(), 2, 4, 2, &[])})),
    );
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["status"], "passed", "{summary}");
    let requests = summary["requests"].as_u64().expect("requests");
    assert!(requests > 10, "{summary}");
    assert_eq!(
        requests,
        target.received().total,
        "herd's count is the target's"
    );
}

#[test]
fn a_run_goes_through_an_external_mosquitto_broker_with_exact_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Mosquitto::start();
    let config = dir.path().join("herd.toml");
    std::fs::write(&config, format!("[broker]\nurl = \"{}\"\n", broker.url())).expect("write");
    let target = CountingTarget::start();
    let s = Service::start(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("utf-8 path")],
    );
    assert_eq!(
        s.broker_url(),
        broker.url(),
        "herd up uses the configured broker"
    );
    runs_with_exact_counts(&s, &target, "ext");
    // Stopping the coordinator leaves the external broker up: it is not ours to stop.
    drop(s);
    assert!(std::net::TcpStream::connect(("127.0.0.1", broker.port())).is_ok());
}

#[test]
fn a_bad_config_file_names_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("herd.toml");
    std::fs::write(
        &config,
        "[store]\nkind = \"postgres\"\n[launcher]\nkind = \"ecs\"\ncluster = \"c\"\n",
    )
    .expect("write");
    let out = Command::new(herd_bin())
        .args(["up", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("herd up");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in ["store.kind", "launcher.task_definition", "launcher.subnets"] {
        assert!(stderr.contains(key), "{key} missing from: {stderr}");
    }
}

#[test]
fn herd_schema_commands_prints_the_checked_in_schema() {
    let out = Command::new(herd_bin())
        .args(["schema", "commands"])
        .output()
        .expect("herd schema commands");
    assert!(out.status.success(), "{out:?}");
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/commands.schema.json");
    let checked_in: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).expect("read")).expect("JSON");
    assert_eq!(printed, checked_in);
    assert_eq!(printed["title"], "CommandMessage");
}

/// `[broker] url = "mqtts://…"` with a private CA (`ca_file`): the coordinator's own session and
/// its local agents speak TLS to Mosquitto, and a run goes through with exact counts. (Before,
/// the coordinator took `mqtts://127.0.0.1` for a host name and `herd up` failed to start.)
#[test]
fn a_run_goes_through_mosquitto_over_tls_with_a_private_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("mkdir");
    certificates(&certs);
    let broker = MosquittoTls::start_with(&certs, false);
    let url = format!("mqtts://127.0.0.1:{}", broker.tls_port);
    let config = dir.path().join("herd.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\nurl = \"{url}\"\nca_file = \"{}\"\n",
            certs.join("ca.pem").display()
        ),
    )
    .expect("write");
    let target = CountingTarget::start();
    let s = Service::start(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("utf-8 path")],
    );
    assert_eq!(s.broker_url(), url, "herd up uses the TLS broker");
    runs_with_exact_counts(&s, &target, "tls");
}

/// A `herd.toml` without the CA: the broker's certificate is not trusted, and `herd up` says so
/// at start (exit 4), naming the broker.
#[test]
fn an_untrusted_tls_broker_is_named_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("mkdir");
    certificates(&certs);
    let broker = MosquittoTls::start_with(&certs, false);
    let config = dir.path().join("herd.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\nurl = \"mqtts://127.0.0.1:{}\"\n",
            broker.tls_port
        ),
    )
    .expect("write");
    let out = Command::new(herd_bin())
        .args(["up", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("herd up");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("mqtts://127.0.0.1:{}", broker.tls_port)),
        "{stderr}"
    );
}

/// `[broker] auth = "sigv4"` over WebSocket, as on IoT Core without certificates: the
/// coordinator's session and its agents' each present a SigV4-presigned URL (with a session
/// token, appended unsigned), which the stand-in checks with botocore before letting the
/// connection through to Mosquitto; the run's counts are exact.
#[test]
fn a_run_goes_through_a_sigv4_signed_websocket_with_exact_counts() {
    let iot = IotWebSocket::start(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("herd.toml");
    std::fs::write(
        &config,
        format!("[broker]\nurl = \"{}\"\nauth = \"sigv4\"\n", iot.url()),
    )
    .expect("write");
    let target = CountingTarget::start();
    let s = Service::start_with_env(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("utf-8 path")],
        &IotWebSocket::credentials_env(sigv4::SECRET),
    );
    runs_with_exact_counts(&s, &target, "sigv4");
    let verdicts = iot.verdicts();
    assert!(
        verdicts.iter().all(|v| v.starts_with("ACCEPTED")),
        "{verdicts:?}"
    );
    // The coordinator and both agents.
    assert!(verdicts.len() >= 3, "{verdicts:?}");
}

/// A URL signed with the wrong secret, or one that has expired by the broker's clock, is
/// refused; the agent retries, then exits naming the broker and the refusal.
#[test]
fn wrongly_signed_and_expired_urls_are_refused_and_the_agent_says_so() {
    for (offset, secret, why) in [
        (0, "not-the-secret", "REFUSED signature does not match"),
        (3600, sigv4::SECRET, "REFUSED expired"),
    ] {
        let iot = IotWebSocket::start(offset);
        let mut agent = Command::new(herd_bin());
        agent
            .args(["agent", "--broker", &iot.url(), "--mqtt-auth", "sigv4"])
            .args(["--run", "run-sigv4", "--agent", "agent-0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in IotWebSocket::credentials_env(secret) {
            agent.env(k, v);
        }
        let child = agent.spawn().expect("herd agent");
        assert!(
            iot.wait_for(Duration::from_secs(10), |v| v == why)
                .is_some(),
            "{:?}",
            iot.verdicts()
        );
        let out = wait_with_limit(child, Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&iot.url()) && stderr.contains("403"),
            "the agent names the broker and the refusal: {stderr}"
        );
        assert!(
            iot.verdicts().iter().all(|v| v.starts_with("REFUSED")),
            "{:?}",
            iot.verdicts()
        );
    }
}
