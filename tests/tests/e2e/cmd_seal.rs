//! End-to-end: commands only their run's agents can read or believe (issue 15, item 1's rest).
//!
//! The embedded broker (rumqttd) checks credentials at CONNECT only, so an admitted agent of
//! run A can subscribe to run B's `cmd` topic and publish there. Here a rogue holding run A's
//! agent credential and command key (read from that agent process's environment, as a
//! compromised agent would have them; the agent itself is paused so the rogue can take its
//! client id) subscribes to everything before B starts, then forges `stop`s on B's `cmd` topic:
//! unsigned, signed with A's agent password, and sealed with A's run key. B's start command
//! reaches the rogue as ciphertext (its secret's bytes appear nowhere in what it received), B's
//! agents refuse every forged stop (counted: `herd_agent_commands_refused_total`), and B runs
//! its whole planned time with herd's count equal to its target's. On Mosquitto the generated
//! ACL refuses the rogue both the subscription and the publishes, and the same holds.

use crate::broker_acl::{agent_process, connack, mosquitto_with_herd_files, BrokerLogin};
use herd_e2e::service::{metric, Service};
use herd_e2e::CountingTarget;
use herd_protocol::agent::{AgentCommand, AgentCommandMessage};
use herd_protocol::cmdseal::{self, RunKey};
use herd_protocol::{msgauth, topics, wire, AgentId, RunId};
use rumqttc::{Client, ConnectReturnCode, Event, Packet, QoS};
use serde_json::{json, Value};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Every message the rogue received: topic and payload.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

const SECRET: &str = "run-b-s3cr3t-91375";
const SECRET_ENV: &str = "HERD_E2E_CMD_SECRET";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Broker {
    Embedded,
    Mosquitto,
}

#[test]
fn another_runs_agent_cannot_read_a_runs_secrets_or_stop_it_on_the_embedded_broker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Service::start_with_env(dir.path(), &[], &[(SECRET_ENV, SECRET.to_string())]);
    rogue_on_the_command_topic(&s, Broker::Embedded);
}

#[test]
fn another_runs_agent_cannot_read_a_runs_secrets_or_stop_it_on_mosquitto() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut mosquitto, config) = mosquitto_with_herd_files(dir.path());
    let data = dir.path().join("data");
    let s = Service::start_with_env(
        &data,
        &["--config", config.to_str().expect("utf-8")],
        &[(SECRET_ENV, SECRET.to_string())],
    );
    rogue_on_the_command_topic(&s, Broker::Mosquitto);
    let _ = mosquitto.kill();
    let _ = mosquitto.wait();
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {sig} {pid}");
}

fn wait_run(s: &Service, op: &str, run: &str, states: &[&str], limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let (_, r) = s.request("GET", &format!("/api/v1/runs/{run}"), Some(op), None);
        if states.iter().any(|st| r["state"] == *st) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "run {run} never got to {states:?}: {r}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn rogue_on_the_command_topic(s: &Service, broker: Broker) {
    let (target_a, target_b) = (CountingTarget::start(), CountingTarget::start());
    let op = s.token("operator");
    // Run A: one agent, long enough to outlast the test; its agent is the one the rogue holds.
    let plan_a = json!({
        "version": 1, "name": "seal-a", "target": target_a.url(), "agents": 1,
        "load": {"stages": [{"duration": "60s", "vus": 1}]},
        "scenario": [{"get": "/ok"}, {"think": "50ms"}],
    });
    let (status, run) = s.request(
        "POST",
        "/api/v1/runs",
        Some(&op),
        Some(&json!({"plan": plan_a})),
    );
    assert_eq!(status, 201, "{run}");
    let run_a = run["id"].as_str().expect("run id").to_string();
    wait_run(s, &op, &run_a, &["running"], Duration::from_secs(30));
    let (pid_a0, env) = agent_process(&run_a, "agent-0");
    let var = |name: &str| {
        env.get(name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in the agent's environment"))
    };
    let (user, password, key_a) = (
        var("HERD_MQTT_USERNAME"),
        var("HERD_MQTT_PASSWORD"),
        RunKey::new(var("HERD_RUN_KEY")),
    );
    // The rogue takes agent A0's place (its client id is the one the embedded broker binds the
    // credential to); the real A0 is paused so it does not take it back.
    signal(pid_a0, "-STOP");
    let login = BrokerLogin::commander(s);
    let client_id = msgauth::agent_client_id(
        &RunId::new(run_a.as_str()).expect("id"),
        &AgentId::numbered(0),
    );
    let (rogue, mut conn) = Client::new(login.options(&client_id, &user, &password), 64);
    assert_eq!(
        connack(&mut conn),
        Some(ConnectReturnCode::Success),
        "A0's credential admits"
    );
    rogue.subscribe("#", QoS::AtLeastOnce).expect("subscribe");
    let received: Received = Arc::default();
    let (subscribed_tx, subscribed) = mpsc::channel();
    {
        let received = Arc::clone(&received);
        std::thread::spawn(move || {
            for event in conn.iter() {
                match event {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        received
                            .lock()
                            .expect("lock")
                            .push((p.topic.clone(), p.payload.to_vec()));
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
    }
    subscribed
        .recv_timeout(Duration::from_secs(10))
        .expect("SUBACK");

    // Run B: two agents, a secret from the coordinator's environment in a header.
    let plan_b = json!({
        "version": 1, "name": "seal-b", "target": target_b.url(), "agents": 2,
        "load": {"stages": [{"duration": "6s", "vus": 2}]},
        "secrets": {"API_TOKEN": {"env": SECRET_ENV}},
        "scenario": [
            {"name": "ok", "get": "/ok", "headers": {"Authorization": "Bearer ${API_TOKEN}"}},
            {"think": "20ms"},
        ],
    });
    let (status, run) = s.request(
        "POST",
        "/api/v1/runs",
        Some(&op),
        Some(&json!({"plan": plan_b})),
    );
    assert_eq!(status, 201, "{run}");
    let run_b = run["id"].as_str().expect("run id").to_string();
    wait_run(s, &op, &run_b, &["running"], Duration::from_secs(30));
    let running_since = Instant::now();
    // Let the load start, then forge stops on B's command topic.
    std::thread::sleep(Duration::from_millis(800));
    let run_b_id = RunId::new(run_b.as_str()).expect("id");
    let cmd_b = topics::commands(&run_b_id);
    let stop = wire::encode(&AgentCommandMessage {
        version: 1,
        run: run_b_id,
        command: AgentCommand::Stop { graceful_ms: 0 },
    });
    for forged in [
        stop.clone(),
        msgauth::sign(&password, &cmd_b, &stop),
        cmdseal::seal(&key_a, &cmd_b, &stop).expect("sealed"),
    ] {
        rogue
            .publish(&cmd_b, QoS::AtLeastOnce, false, forged)
            .expect("publish");
    }

    let done = wait_run(
        s,
        &op,
        &run_b,
        &["completed", "failed", "cancelled", "degraded"],
        Duration::from_secs(60),
    );
    let lasted = running_since.elapsed();
    assert_eq!(done["state"], "completed", "{done}");
    assert!(
        lasted >= Duration::from_secs(5),
        "B ran its planned 6 s, not stopped by a forged command (ended after {lasted:?})"
    );
    let requests = done["summary"]["requests"].as_u64().expect("requests");
    assert!(requests > 0, "{done}");
    assert_eq!(
        requests,
        target_b.received().total,
        "herd's count is B's target's"
    );

    // What the rogue saw: B's start command as ciphertext at most, never the secret.
    let seen = received.lock().expect("lock").clone();
    for (topic, payload) in &seen {
        assert!(
            !contains(payload, SECRET.as_bytes()),
            "the secret leaked on {topic}"
        );
    }
    let on_cmd_b: Vec<&Vec<u8>> = seen
        .iter()
        .filter(|(t, _)| *t == cmd_b)
        .map(|(_, p)| p)
        .collect();
    match broker {
        // rumqttd delivers B's commands to the rogue (its own forgeries too): the coordinator's
        // are sealed, and do not open with A's key.
        Broker::Embedded => {
            let sealed: Vec<_> = on_cmd_b.iter().filter(|p| cmdseal::is_sealed(p)).collect();
            assert!(
                sealed.len() >= 2,
                "the rogue got B's start and its own forgery: {}",
                on_cmd_b.len()
            );
            assert!(sealed.iter().all(|p| !contains(p, b"\"start\"")));
        }
        // Mosquitto's ACL lets it read nothing of B's.
        Broker::Mosquitto => assert!(on_cmd_b.is_empty(), "{} messages of B", on_cmd_b.len()),
    }

    // B's agents refused the three forgeries each (on Mosquitto none reached them).
    let metrics = s.metrics(&op);
    let expected = match broker {
        Broker::Embedded => 6.0,
        Broker::Mosquitto => 0.0,
    };
    assert_eq!(
        metric(&metrics, "herd_agent_commands_refused_total"),
        expected,
        "{metrics}"
    );
    assert!(!s.log().contains(key_a.expose()), "a run key was logged");

    let _ = rogue.disconnect();
    // (Run A may have ended already, having lost its paused agent, and killed it.)
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid_a0.to_string()])
        .status();
    let (status, body) = s.request(
        "POST",
        &format!("/api/v1/runs/{run_a}/stop"),
        Some(&op),
        None,
    );
    assert!(status < 500, "{status} {body}");
}
