//! End-to-end: per-run broker credentials (issue 15 item 1) on `herd up`'s embedded broker.
//!
//! Two runs go at once. A rogue client tries, with no credential, a wrong one, and a real agent
//! credential of the *other* run (read from that agent process's environment, as a compromised
//! agent would have it), to connect, to publish a frame into run A, and to start a run on
//! `herd/commands`. The broker refuses the connections; what an admitted client publishes
//! without the right MAC is dropped by the coordinator. Run A's totals equal its target's count.

use herd_e2e::service::{plan, Service};
use herd_e2e::CountingTarget;
use herd_protocol::frame::{Frame, Stats};
use herd_protocol::{msgauth, topics, wire, AgentId, RunId};
use rumqttc::{Client, ConnectReturnCode, Connection, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A broker URL and credential, as `herd up` writes them to `broker-credentials.json`.
pub struct BrokerLogin {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
}

impl BrokerLogin {
    /// The commander's login of a running `herd up`.
    pub fn commander(s: &Service) -> Self {
        let path = s.data_dir.join("broker-credentials.json");
        let text = std::fs::read_to_string(&path).expect("broker-credentials.json");
        let v: Value = serde_json::from_str(&text).expect("json");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "only its owner may read it");
        }
        let url = v["url"].as_str().expect("url");
        let (host, port) = url
            .trim_start_matches("mqtt://")
            .rsplit_once(':')
            .expect("host:port");
        Self {
            host: host.into(),
            port: port.parse().expect("port"),
            username: v["username"].as_str().expect("username").into(),
            password: v["password"].as_str().expect("password").into(),
        }
    }

    /// Options for `client_id` with this login's user name and `password`.
    pub fn options(&self, client_id: &str, username: &str, password: &str) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, self.host.clone(), self.port);
        o.set_keep_alive(Duration::from_secs(5));
        o.set_max_packet_size(1 << 20, 1 << 20);
        o.set_credentials(username, password);
        o
    }

    /// A connected client with this login (panics if the broker refuses it).
    pub fn connect(&self, client_id: &str) -> (Client, Connection) {
        let (client, mut connection) =
            Client::new(self.options(client_id, &self.username, &self.password), 64);
        assert_eq!(connack(&mut connection), Some(ConnectReturnCode::Success));
        (client, connection)
    }

    /// `payload` signed as this login's holder signs it for `topic`.
    pub fn sign(&self, topic: &str, payload: &[u8]) -> Vec<u8> {
        msgauth::sign(&self.password, topic, payload)
    }
}

/// The CONNACK's code, or `None` if the connection failed otherwise (or timed out).
pub(crate) fn connack(connection: &mut Connection) -> Option<ConnectReturnCode> {
    for event in connection.iter().take(5) {
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => return Some(ack.code),
            Ok(_) => {}
            Err(rumqttc::ConnectionError::ConnectionRefused(code)) => return Some(code),
            Err(_) => return None,
        }
    }
    None
}

/// Whether the broker admits a CONNECT with these.
fn admitted(login: &BrokerLogin, client_id: &str, user: Option<(&str, &str)>) -> bool {
    let o = match user {
        Some((u, p)) => login.options(client_id, u, p),
        None => {
            let mut o = MqttOptions::new(client_id, login.host.clone(), login.port);
            o.set_keep_alive(Duration::from_secs(5));
            o
        }
    };
    let (_client, mut connection) = Client::new(o, 8);
    connack(&mut connection) == Some(ConnectReturnCode::Success)
}

/// The pid and environment of the agent process `agent` of `run`.
pub(crate) fn agent_process(run: &str, agent: &str) -> (u32, HashMap<String, String>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let has = |flag: &str, value: &str| {
                args.windows(2)
                    .any(|w| w[0] == flag.as_bytes() && w[1] == value.as_bytes())
            };
            if !(has("--run", run) && has("--agent", agent)) {
                continue;
            }
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let env = environ
                .split(|b| *b == 0)
                .filter_map(|kv| {
                    let kv = String::from_utf8_lossy(kv);
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect();
            return (pid, env);
        }
        assert!(Instant::now() < deadline, "no agent process of {run}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The credential the agent `agent` of `run` runs with, read from its process's environment.
fn agent_credential(run: &str, agent: &str) -> msgauth::Credential {
    let (_, env) = agent_process(run, agent);
    match (env.get("HERD_MQTT_USERNAME"), env.get("HERD_MQTT_PASSWORD")) {
        (Some(username), Some(password)) => msgauth::Credential {
            username: username.clone(),
            password: password.clone(),
        },
        _ => panic!("agent {agent} of {run} has no broker credential"),
    }
}

/// A well-formed frame of `agent` in `run` claiming a million requests.
fn forged_frame(run: &RunId, agent: &AgentId, seq: u64) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let frame = Frame {
        version: 1,
        run: run.clone(),
        agent: agent.clone(),
        seq,
        second: now,
        is_final: false,
        vus: 1,
        total: Stats {
            requests: 1_000_000,
            ..Stats::default()
        },
        steps: Default::default(),
        dropped: 0,
        health: Default::default(),
        sent_ms: now * 1000,
    };
    wire::encode(&frame)
}

fn wait_state(s: &Service, op: &str, test: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, runs) = s.request("GET", &format!("/api/v1/tests/{test}/runs"), Some(op), None);
        let list = runs["runs"].as_array().cloned().unwrap_or_default();
        if let Some(run) = list.iter().find(|r| r["state"] == state) {
            return run.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {state} run of {test}: {runs}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_id(run: &Value) -> String {
    run["id"]
        .as_str()
        .or(run["run_id"].as_str())
        .expect("run id")
        .to_string()
}

/// Which broker the scenario runs against: what differs is who enforces what.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Enforcer {
    /// rumqttd: credentials (bound to the agent's client id) at CONNECT, topics by the
    /// coordinator's MAC check.
    Embedded,
    /// Mosquitto with herd's password and ACL files: credentials and topics at the broker (it
    /// does not bind client ids), the MAC check behind it.
    Mosquitto,
}

#[test]
fn rogue_clients_cannot_connect_inject_frames_or_start_runs_and_totals_stay_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Service::start(dir.path(), &[]);
    rogue_attempts(&s, Enforcer::Embedded);
}

/// A Mosquitto on 127.0.0.1 that reads herd's password and ACL files (in `dir`, empty until
/// herd writes them), and a `herd.toml` pointing herd at them; the broker's process and the
/// config's path.
pub(crate) fn mosquitto_with_herd_files(
    dir: &std::path::Path,
) -> (std::process::Child, std::path::PathBuf) {
    let (passwd, acl, pid) = (
        dir.join("herd.passwd"),
        dir.join("herd.acl"),
        dir.join("mosquitto.pid"),
    );
    std::fs::write(&passwd, "").expect("passwd");
    std::fs::write(&acl, "").expect("acl");
    let port = herd_e2e::service::free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npersistence false\nuser root\n\
             password_file {}\nacl_file {}\n",
            passwd.display(),
            acl.display()
        ),
    )
    .expect("mosquitto.conf");
    let mosquitto = herd_e2e::aws::Mosquitto::spawn(&conf, &[port]);
    // Mosquitto writes a pid file only as a daemon: the test writes it, as systemd would.
    std::fs::write(&pid, mosquitto.id().to_string()).expect("pid file");
    let config = dir.join("herd.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\nurl = \"mqtt://127.0.0.1:{port}\"\nmosquitto_password_file = \"{}\"\n\
             mosquitto_acl_file = \"{}\"\nmosquitto_pid_file = \"{}\"\n",
            passwd.display(),
            acl.display(),
            pid.display()
        ),
    )
    .expect("herd.toml");
    (mosquitto, config)
}

#[test]
fn on_mosquitto_the_generated_password_and_acl_files_keep_rogues_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut mosquitto, config) = mosquitto_with_herd_files(dir.path());
    let data = dir.path().join("data");
    let s = Service::start(&data, &["--config", config.to_str().expect("utf-8")]);
    rogue_attempts(&s, Enforcer::Mosquitto);
    let hashes = std::fs::read_to_string(dir.path().join("herd.passwd")).expect("passwd");
    assert!(hashes.contains("herd-coordinator:$7$"), "{hashes}");
    let _ = mosquitto.kill();
    let _ = mosquitto.wait();
}

/// A coordinator killed mid-run and restarted resumes it with exact counts on a Mosquitto that
/// checks per-run credentials: the master key in the data directory gives the same credentials,
/// and the files keep the agents' rights while the coordinator is away.
#[test]
fn a_run_on_mosquitto_with_per_run_credentials_resumes_after_a_sigkill_with_exact_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut mosquitto, config) = mosquitto_with_herd_files(dir.path());
    crate::resume::killed_mid_run_and_resumed(dir.path(), &config, &[]);
    let _ = mosquitto.kill();
    let _ = mosquitto.wait();
}

fn rogue_attempts(s: &Service, enforcer: Enforcer) {
    let (target_a, target_b) = (CountingTarget::start(), CountingTarget::start());
    let op = s.token("operator");
    for (id, target) in [("acl-a", &target_a), ("acl-b", &target_b)] {
        let test = json!({"id": id, "name": id, "plan": plan(id, &target.url(), 2, 2, 6, &[])});
        assert_eq!(
            s.request("POST", "/api/v1/tests", Some(&op), Some(&test)).0,
            201
        );
    }
    let login = BrokerLogin::commander(s);
    let (commander, mut commander_conn) = login.connect("e2e-commander");
    std::thread::spawn(move || for _ in commander_conn.iter() {});
    let cmd = topics::COORDINATOR_COMMANDS;
    let start = |id: &str, test: &str| {
        json!({"version": 1, "id": id, "type": "start_run", "test_id": test})
            .to_string()
            .into_bytes()
    };
    // The commander starts both runs, signing the commands.
    for (id, test) in [("acl-start-a", "acl-a"), ("acl-start-b", "acl-b")] {
        commander
            .publish(
                cmd,
                QoS::AtLeastOnce,
                false,
                login.sign(cmd, &start(id, test)),
            )
            .expect("publish");
    }
    let run_a = RunId::new(run_id(&wait_state(s, &op, "acl-a", "running"))).expect("id");
    let run_b = run_id(&wait_state(s, &op, "acl-b", "running"));
    let stolen = agent_credential(&run_b, "agent-0");
    let a0 = AgentId::numbered(0);
    let a0_client = msgauth::agent_client_id(&run_a, &a0);

    // Connecting: no credential, a wrong one, another run's agent's with this run's client id,
    // a made-up agent of this run.
    assert!(!admitted(&login, "rogue-1", None), "anonymous");
    assert!(!admitted(
        &login,
        "rogue-2",
        Some((&login.username, "wrong"))
    ));
    if enforcer == Enforcer::Embedded {
        // rumqttd binds an agent's credential to its client id; Mosquitto does not (its ACL
        // confines what the credential may publish instead, below).
        assert!(!admitted(
            &login,
            &a0_client,
            Some((&stolen.username, &stolen.password))
        ));
    }
    let a0_user = msgauth::agent_username(&run_a, &a0);
    assert!(!admitted(
        &login,
        &a0_client,
        Some((&a0_user, &stolen.password))
    ));
    assert!(!admitted(&login, &a0_client, Some((&a0_user, "00"))));

    // Publishing into run A through an admitted session: unsigned, signed with run B's stolen
    // credential, signed by the commander. Each is a valid frame claiming a million requests.
    let frames_topic = topics::frames(&run_a, &a0);
    for payload in [
        forged_frame(&run_a, &a0, 900),
        msgauth::sign(
            &stolen.password,
            &frames_topic,
            &forged_frame(&run_a, &a0, 901),
        ),
        login.sign(&frames_topic, &forged_frame(&run_a, &a0, 902)),
    ] {
        commander
            .publish(&frames_topic, QoS::AtLeastOnce, false, payload)
            .expect("publish");
    }
    // With the stolen credential itself (Mosquitto admits it under another client id; its ACL
    // lets it write only its own topics).
    let stolen_session = (enforcer == Enforcer::Mosquitto).then(|| {
        let (client, mut conn) = Client::new(
            login.options("rogue-b", &stolen.username, &stolen.password),
            16,
        );
        assert_eq!(connack(&mut conn), Some(ConnectReturnCode::Success));
        std::thread::spawn(move || for _ in conn.iter() {});
        let frame = forged_frame(&run_a, &a0, 903);
        let signed = msgauth::sign(&stolen.password, &frames_topic, &frame);
        client
            .publish(&frames_topic, QoS::AtLeastOnce, false, signed)
            .expect("publish");
        let start = msgauth::sign(&stolen.password, cmd, &start("acl-rogue-3", "acl-a"));
        client
            .publish(cmd, QoS::AtLeastOnce, false, start)
            .expect("publish");
        client
    });
    // Starting a run on `herd/commands`: unsigned, and signed with the stolen agent credential.
    commander
        .publish(cmd, QoS::AtLeastOnce, false, start("acl-rogue-1", "acl-a"))
        .expect("publish");
    commander
        .publish(
            cmd,
            QoS::AtLeastOnce,
            false,
            msgauth::sign(&stolen.password, cmd, &start("acl-rogue-2", "acl-b")),
        )
        .expect("publish");

    let done_a = wait_state(s, &op, "acl-a", "completed");
    let done_b = wait_state(s, &op, "acl-b", "completed");
    for (run, target, test) in [(&done_a, &target_a, "acl-a"), (&done_b, &target_b, "acl-b")] {
        let (status, full) = s.request(
            "GET",
            &format!("/api/v1/runs/{}", run_id(run)),
            Some(&op),
            None,
        );
        assert_eq!(status, 200, "{full}");
        let requests = full["summary"]["requests"].as_u64().expect("requests");
        assert!(requests > 0, "{full}");
        assert_eq!(
            requests,
            target.received().total,
            "{test}: herd's count is the target's"
        );
        let (_, runs) = s.request(
            "GET",
            &format!("/api/v1/tests/{test}/runs"),
            Some(&op),
            None,
        );
        assert_eq!(
            runs["runs"].as_array().map(Vec::len),
            Some(1),
            "no rogue start: {runs}"
        );
    }
    // The coordinator counted what it dropped: on rumqttd three frames and two commands; on
    // Mosquitto the ACL kept every frame from it, and only the commander's two commands came.
    let metrics = s.metrics(&op);
    let dropped = metrics
        .lines()
        .find_map(|l| l.strip_prefix("herd_messages_unauthenticated_total "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    let expected = match enforcer {
        Enforcer::Embedded => 5,
        Enforcer::Mosquitto => 2,
    };
    assert_eq!(dropped, Some(expected), "{metrics}");
    if let Some(client) = stolen_session {
        let _ = client.disconnect();
    }
    // The credentials are in no log line.
    let log = s.log();
    for secret in [&login.password, &stolen.password] {
        assert!(
            !log.contains(secret.as_str()),
            "a broker password was logged"
        );
    }
    // Run B's credential is refused once its run ended.
    let b0 = AgentId::numbered(0);
    let b_client = msgauth::agent_client_id(&RunId::new(run_b).expect("id"), &b0);
    // (The run closes its credentials as it ends; Mosquitto reloads its files on the signal.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while admitted(
        &login,
        &b_client,
        Some((&stolen.username, &stolen.password)),
    ) {
        assert!(
            Instant::now() < deadline,
            "run B's credential still admitted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = commander.disconnect();
}
