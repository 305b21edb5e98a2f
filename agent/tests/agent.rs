//! The whole agent, end to end: real MQTT packets to a scripted broker, real HTTP to a counting
//! target. Checks the session contract (client id, keep-alive, last will, ready → started →
//! frames → finished, clean disconnect) and that the counts reported equal what the target got.

mod common;

use common::broker::{Broker, Conn};
use common::{plan_json, Target};
use herd_agent::{run_agent, AgentConfig, AgentError};
use herd_protocol::agent::{AgentCommand, AgentCommandMessage, AgentStatus, StatusMessage};
use herd_protocol::frame::Frame;
use herd_protocol::{topics, wire, AgentId, RunId};
use rumqttc::Packet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn run() -> RunId {
    RunId::new("run-1").expect("valid")
}

fn config(broker: &Broker, agent: u32) -> AgentConfig {
    AgentConfig {
        broker: broker.url.clone(),
        tls: herd_agent::TlsOptions::default(),
        sigv4_region: None,
        run: run(),
        agent: AgentId::numbered(agent),
        credentials: None,
        command_key: None,
        start_wait: herd_agent::DEFAULT_START_WAIT,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn start_command(plan: serde_json::Value, agents: u32, delay_ms: u64) -> Vec<u8> {
    wire::encode(&AgentCommandMessage {
        version: 1,
        run: run(),
        command: AgentCommand::Start {
            plan,
            assignments: (0..agents).map(|i| (AgentId::numbered(i), i)).collect(),
            agent_count: agents,
            start_at_ms: now_ms() + delay_ms,
            secrets: Default::default(),
            allowed_targets: None,
            reassigned: Vec::new(),
            feeder_data: None,
            body_data: None,
            setup_vars: Default::default(),
        },
    })
}

/// What the broker saw from the agent.
#[derive(Default)]
struct Seen {
    statuses: Vec<AgentStatus>,
    frames: Vec<Frame>,
    disconnected: bool,
}

/// Plays the broker: handshake, then acknowledges everything, sends `on_ready` commands after the
/// agent's ready message, and records statuses and frames until the agent disconnects.
async fn script(broker: Broker, agent: u32, on_ready: Vec<Vec<u8>>) -> Seen {
    let mut conn: Conn = broker.accept().await;
    let Some(Packet::Connect(connect)) = conn.read().await else {
        panic!("expected CONNECT")
    };
    let agent_id = AgentId::numbered(agent);
    assert_eq!(connect.client_id, format!("herd-run-1-{agent_id}"));
    assert_eq!(connect.keep_alive, 5);
    assert!(connect.clean_session);
    let will = connect.last_will.expect("a last will");
    assert_eq!(will.topic, topics::status(&run(), &agent_id));
    let lost: StatusMessage = wire::decode(&will.message).expect("will is a status message");
    assert_eq!(lost.status, AgentStatus::Lost);
    conn.connack().await;

    let mut seen = Seen::default();
    let mut on_ready = Some(on_ready);
    while let Some(packet) = conn.read().await {
        match packet {
            Packet::Subscribe(sub) => {
                assert_eq!(sub.filters[0].path, topics::commands(&run()));
                conn.suback(sub.pkid).await;
            }
            Packet::Publish(p) => {
                conn.puback(p.pkid).await;
                if p.topic == topics::frames(&run(), &agent_id) {
                    seen.frames.push(wire::decode(&p.payload).expect("a frame"));
                } else {
                    assert_eq!(p.topic, topics::status(&run(), &agent_id));
                    let status: StatusMessage = wire::decode(&p.payload).expect("a status");
                    let ready = matches!(status.status, AgentStatus::Ready { .. });
                    seen.statuses.push(status.status);
                    if ready {
                        for command in on_ready.take().unwrap_or_default() {
                            conn.publish(&topics::commands(&run()), command).await;
                        }
                    }
                }
            }
            Packet::PingReq => conn.write(Packet::PingResp).await,
            Packet::Disconnect => {
                seen.disconnected = true;
                break;
            }
            _ => {}
        }
    }
    seen
}

fn check_frames(frames: &[Frame]) -> u64 {
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.seq, i as u64);
        assert_eq!(f.second, frames[0].second + i as u64);
        assert_eq!(f.is_final, i + 1 == frames.len());
    }
    frames.iter().map(|f| f.total.requests).sum()
}

#[tokio::test(flavor = "current_thread")]
async fn an_agent_runs_its_share_and_reports_exact_counts() {
    let target = Target::start().await;
    let broker = Broker::bind().await;
    let config = config(&broker, 1);
    let plan = plan_json(
        &target.url,
        "[{duration: 500ms, vus: 9}, {duration: 1500ms, vus: 9}]",
        "[{get: /}, {think: 2ms}]",
        "{graceful_stop: 2s}",
    );
    let commands = vec![b"not a command".to_vec(), start_command(plan, 3, 300)];
    let (result, seen) = tokio::join!(
        run_agent(config, std::future::pending()),
        tokio::time::timeout(Duration::from_secs(8), script(broker, 1, commands)),
    );
    let report = result.expect("the agent finishes");
    let seen = seen.expect("the agent disconnects in time");
    assert!(
        seen.disconnected,
        "the agent must say goodbye (no last will)"
    );

    let requests = check_frames(&seen.frames);
    assert!(requests > 50, "only {requests} requests");
    assert_eq!(requests, target.received());
    assert_eq!(
        (report.requests, report.frames),
        (requests, seen.frames.len() as u64)
    );
    assert_eq!(seen.frames.iter().map(|f| f.vus).max(), Some(3));

    let s = &seen.statuses;
    assert!(matches!(s[0], AgentStatus::Ready { .. }), "{s:?}");
    assert!(
        s.iter().any(
            |x| matches!(x, AgentStatus::Error { message } if message.contains("not valid JSON"))
        ),
        "{s:?}"
    );
    assert!(s.iter().any(|x| matches!(x, AgentStatus::Started { .. })));
    // The running VUs reach the coordinator in the frames (above); heartbeats are left out while
    // frames flow (`runner::heartbeat_due`).
    assert_eq!(
        s.last(),
        Some(&AgentStatus::Finished {
            frames: report.frames,
            requests
        })
    );
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_stops_the_load_gracefully() {
    let target = Target::start().await;
    let broker = Broker::bind().await;
    let plan = plan_json(
        &target.url,
        "[{duration: 100ms, vus: 4}, {duration: 60s, vus: 4}]",
        "[{get: /}]",
        "{graceful_stop: 1s}",
    );
    let commands = vec![start_command(plan, 1, 100)];
    let shutdown = tokio::time::sleep(Duration::from_millis(1500));
    let (result, seen) = tokio::join!(
        run_agent(config(&broker, 0), shutdown),
        tokio::time::timeout(Duration::from_secs(8), script(broker, 0, commands)),
    );
    let report = result.expect("the agent finishes");
    let seen = seen.expect("the agent disconnects in time");
    assert!(seen.disconnected);
    let requests = check_frames(&seen.frames);
    assert!(requests > 0);
    assert_eq!(requests, target.received());
    assert_eq!(report.requests, requests);
}

#[tokio::test(flavor = "current_thread")]
async fn an_agent_missing_from_the_assignments_reports_an_error() {
    let target = Target::start().await;
    let broker = Broker::bind().await;
    let plan = plan_json(&target.url, "[{duration: 1s, vus: 1}]", "[{get: /}]", "{}");
    // Two agents are assigned; this one is agent-5.
    let commands = vec![start_command(plan, 2, 100)];
    let (result, seen) = tokio::join!(
        run_agent(config(&broker, 5), std::future::pending()),
        tokio::time::timeout(Duration::from_secs(8), script(broker, 5, commands)),
    );
    assert!(
        matches!(result, Err(AgentError::NotAssigned { .. })),
        "{result:?}"
    );
    let seen = seen.expect("the agent disconnects in time");
    assert!(seen.disconnected);
    assert!(seen.frames.is_empty());
    assert!(matches!(
        seen.statuses.last(),
        Some(AgentStatus::Error { message }) if message.contains("agent-5")
    ));
    assert_eq!(target.received(), 0);
}

/// A plan whose feeder rows (~600 KiB) are too large for the start command, its rows taken out,
/// and the `data_chunk` commands that carry them (every chunk but those in `skip`), then the
/// start command naming them.
fn chunked_start(target: &str, skip: &[u32]) -> Vec<Vec<u8>> {
    let rows: Vec<String> = (0..20_000)
        .map(|i| format!("[u{i}, \"{}\"]", "x".repeat(20 + i % 7)))
        .collect();
    let yaml = format!(
        "version: 1\nname: t\ntarget: {target}\nagents: 1\nload: {{vus: 2, duration: 1s}}\n\
         feeders: {{users: {{rows: [[user, pad], {}], mode: random}}}}\n\
         scenario: [{{get: '/?u=${{user}}'}}, {{think: 5ms}}]\n",
        rows.join(", ")
    );
    let mut plan = herd_protocol::plan::from_yaml_str(&yaml)
        .expect("valid")
        .to_json();
    let (data, chunks) = herd_protocol::feeder_data::take_rows(&mut plan).expect("chunked");
    assert!(data.chunks >= 2, "{data:?}");
    let message = |command| {
        wire::encode(&AgentCommandMessage {
            version: 1,
            run: run(),
            command,
        })
    };
    let mut commands: Vec<Vec<u8>> = (0u32..)
        .zip(chunks)
        .filter(|(i, _)| !skip.contains(i))
        .map(|(index, data_b64)| {
            message(AgentCommand::DataChunk {
                crc32: data.crc32,
                index,
                data: data_b64,
            })
        })
        .collect();
    commands.push(message(AgentCommand::Start {
        plan,
        assignments: Default::default(),
        agent_count: 1,
        start_at_ms: now_ms() + 500,
        secrets: Default::default(),
        allowed_targets: None,
        reassigned: Vec::new(),
        feeder_data: Some(data),
        body_data: None,
        setup_vars: Default::default(),
    }));
    commands
}

#[tokio::test(flavor = "current_thread")]
async fn feeder_rows_sent_in_chunks_are_put_back_before_the_load() {
    let target = Target::start().await;
    let broker = Broker::bind().await;
    let commands = chunked_start(&target.url, &[]);
    let (result, seen) = tokio::join!(
        run_agent(config(&broker, 0), std::future::pending()),
        tokio::time::timeout(Duration::from_secs(15), script(broker, 0, commands)),
    );
    let report = result.expect("the agent runs with its rows");
    let seen = seen.expect("the agent disconnects in time");
    let requests = check_frames(&seen.frames);
    assert!(requests > 10, "{requests}");
    assert_eq!(requests, target.received());
    assert_eq!(report.requests, requests);
}

#[tokio::test(flavor = "current_thread")]
async fn an_agent_missing_a_feeder_chunk_refuses_the_start_and_says_so() {
    let target = Target::start().await;
    let broker = Broker::bind().await;
    let commands = chunked_start(&target.url, &[1]);
    let (result, seen) = tokio::join!(
        run_agent(config(&broker, 0), std::future::pending()),
        tokio::time::timeout(Duration::from_secs(15), script(broker, 0, commands)),
    );
    assert!(matches!(result, Err(AgentError::Feeder(_))), "{result:?}");
    let seen = seen.expect("the agent disconnects in time");
    assert!(seen.frames.is_empty());
    assert!(
        matches!(
            seen.statuses.last(),
            Some(AgentStatus::Error { message })
                if message.contains("feeder data incomplete") && message.contains("(chunks 1)")
        ),
        "{:?}",
        seen.statuses.last()
    );
    assert_eq!(target.received(), 0);
}
