//! The session's driver runs on its own thread: what agents send is decoded and routed while the
//! runtime that opened the session (the run actors') is busy or not running at all.

use super::*;
use crate::broker::auth::BrokerKeys;
use crate::broker::{EmbeddedBroker, LogWindow};
use herd_protocol::agent::{AgentStatus, StatusMessage};
use herd_protocol::{msgauth, AgentId};
use std::sync::mpsc;

/// Publishes `count` signed heartbeats of `agent` through a session of its own (its own thread
/// and runtime), until the broker acknowledged them all.
fn agent_publishes(broker: &EmbeddedBroker, run: &RunId, agent: &AgentId, count: u64) {
    let credential = broker.auth().agent(run, agent);
    let addr = broker.addr();
    let (run, agent) = (run.clone(), agent.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let mut options = MqttOptions::new(
                msgauth::agent_client_id(&run, &agent),
                addr.ip().to_string(),
                addr.port(),
            );
            options.set_credentials(credential.username.clone(), credential.password.clone());
            let (client, mut eventloop) = AsyncClient::new(options, 16);
            let topic = topics::status(&run, &agent);
            for seq in 1..=count {
                let message = StatusMessage::new(agent.clone(), AgentStatus::Heartbeat { vus: 1 })
                    .sent(1, seq);
                let payload = msgauth::sign(&credential.password, &topic, &wire::encode(&message));
                client
                    .publish(topic.clone(), QoS::AtLeastOnce, false, payload)
                    .await
                    .expect("queued");
            }
            let mut acked = 0;
            while acked < count {
                if let Ok(Event::Incoming(Incoming::PubAck(_))) = eventloop.poll().await {
                    acked += 1;
                }
            }
        });
    });
}

#[test]
fn agent_messages_reach_the_run_while_the_runtime_that_opened_the_session_runs_nothing() {
    let keys = Arc::new(BrokerKeys::generate().expect("randomness"));
    let broker = EmbeddedBroker::start(Arc::clone(&keys), LogWindow::total_mib(8)).expect("broker");
    let run = RunId::new("r1").expect("run");
    let agent = AgentId::numbered(0);
    keys.launched(&run, std::slice::from_ref(&agent));
    let mut endpoint = BrokerEndpoint::parse(&broker.url()).expect("url");
    endpoint.credentials = Some(keys.coordinator().clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (inbox, mut messages) = tokio::sync::mpsc::unbounded_channel();
    let link = runtime.block_on(async {
        let link = MqttLink::connect(&endpoint, "coordinator")
            .await
            .expect("connects");
        link.authenticate_with(Arc::clone(&keys));
        link.subscribe_run(&run, inbox).await.expect("subscribed");
        link
    });
    // From here on the runtime is never driven again: a driver task spawned on it would never
    // read the socket, and nothing would arrive.
    agent_publishes(&broker, &run, &agent, 3);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        while let Some(message) = messages.blocking_recv() {
            if tx.send(message).is_err() {
                return;
            }
        }
    });
    for seq in 1..=3 {
        // Generous: this waits for delivery, it does not time it.
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(AgentInbound::Status(status)) => {
                assert_eq!((status.agent.clone(), status.seq), (agent.clone(), seq));
            }
            other => panic!("expected heartbeat {seq}, got {other:?}"),
        }
    }
    drop(link);
}
