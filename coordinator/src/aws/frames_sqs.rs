//! Agents' frames and statuses through an SQS queue, filled by an AWS IoT topic rule.
//!
//! With IoT Core as the broker, agents' messages can reach the coordinator two ways: its own MQTT
//! subscription ([`crate::mqtt::MqttLink`]), or a topic rule that copies every message under
//! `herd/runs/+/agents/` into a queue, which [`FramesViaSqs`] reads. The queue keeps messages while
//! no coordinator is reading: frames published while the coordinator restarts are read when it
//! is back and resumes the run, where an MQTT subscription would have missed them.
//!
//! The rule's SQL is `SELECT *, topic() AS topic FROM 'herd/runs/+/agents/#'` with an SQS action:
//! agents publish JSON objects, so each queue message is the agent's message with one more field,
//! `topic`, which is taken out again here before the message is decoded exactly as one from MQTT
//! ([`crate::mqtt::decode_inbound`]). Bodies the rule base64-encoded (the SQS action's
//! `useBase64`) are accepted too.
//!
//! Agents that sign their messages (`herd-mac1`, [`herd_protocol::msgauth`]: per-run broker
//! credentials) publish JSON followed by a MAC trailer, which a rule cannot parse as JSON; such
//! agents' messages come through the rule
//! `SELECT encode(*, 'base64') AS payload_base64, topic() AS topic FROM 'herd/runs/+/agents/#'`,
//! whose bodies carry the agent's bytes whole. With the broker's keys ([`FramesViaSqs::with_keys`])
//! every message must carry the MAC of the agent its topic names, checked as on the MQTT path
//! ([`crate::bus::authenticate`]): one that does not is deleted and counted
//! (`herd_messages_unauthenticated_total`), and nothing of it reaches a run.
//!
//! Messages handed to their run's actor are deleted once the run says their effect is stored
//! ([`FramesViaSqs::acknowledge`]), so a coordinator that dies before storing a frame reads it
//! again when it is back (after the visibility timeout); messages that can never be used (not
//! readable, not an agent topic, a run this coordinator finished) are deleted at once. Messages of
//! a run this process does not know are left alone: a resumed run may register soon, and the
//! queue's redrive policy moves them to its dead-letter queue otherwise. SQS may deliver a message twice and out of
//! order; the run already drops duplicate frames by (agent, seq) and waits for late ones.

use crate::broker::auth::BrokerKeys;
use crate::bus::{authenticate, decode_inbound, Inbox};
use aws_config::SdkConfig;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message};
use base64::Engine as _;
use herd_protocol::RunId;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

/// Receive loops reading the queue at once: each takes up to 10 messages per call.
const POLLERS: usize = 4;
/// Long-polling wait of each receive.
const WAIT: Duration = Duration::from_secs(20);
/// Pause after a failed receive, so an unreachable queue is not spun on.
const ERROR_PAUSE: Duration = Duration::from_secs(1);
/// Finished runs remembered, so their stragglers are deleted rather than left to the DLQ.
const ENDED_KEPT: usize = 1000;

#[derive(Default)]
struct Routes {
    active: HashMap<RunId, Inbox>,
    ended: VecDeque<RunId>,
    ended_set: HashSet<RunId>,
    /// Receipt handles of the messages handed to each run, in order, not yet deleted; and how
    /// many of the run's deliveries were acknowledged before them.
    delivered: HashMap<RunId, (u64, VecDeque<String>)>,
}

struct Inner {
    routes: Mutex<Routes>,
    /// The broker's credentials: when set, agent messages must carry their agent's MAC.
    keys: Mutex<Option<Arc<BrokerKeys>>>,
    /// Where acknowledged messages are deleted (`None` in unit tests of the routing).
    queue: Option<(aws_sdk_sqs::Client, String)>,
}

impl Inner {
    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Deletes messages by receipt handle, in the background.
    fn delete_later(&self, receipts: Vec<String>) {
        if let (Some((client, url)), false) = (&self.queue, receipts.is_empty()) {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                for batch in receipts.chunks(10) {
                    delete(&client, &url, batch.iter().map(String::as_str)).await;
                }
            });
        }
    }
}

/// What became of one queue message.
#[derive(Debug, PartialEq, Eq)]
enum Handled {
    /// Handed to its run: deleted once the run acknowledges it.
    Delivered,
    /// Of no use ever: delete it.
    Done,
    /// For a run this coordinator does not know (yet): leave it in the queue.
    Later,
}

/// Reads agents' messages from the frames queue; cloneable handle, see the module docs. The
/// receive loops end within one long-poll once every handle is dropped.
#[derive(Clone)]
pub struct FramesViaSqs {
    inner: Arc<Inner>,
}

impl FramesViaSqs {
    /// Starts reading `queue_url` (`[broker] frames_queue_url`) on the current tokio runtime.
    pub fn start(sdk: &SdkConfig, queue_url: &str) -> Self {
        let client = aws_sdk_sqs::Client::new(sdk);
        let inner = Arc::new(Inner {
            routes: Mutex::default(),
            keys: Mutex::default(),
            queue: Some((client.clone(), queue_url.to_owned())),
        });
        for _ in 0..POLLERS {
            tokio::spawn(poll(
                client.clone(),
                queue_url.to_owned(),
                Arc::downgrade(&inner),
            ));
        }
        Self { inner }
    }

    /// Checks every agent message against the credentials of `keys`, as the MQTT session does
    /// (see the module docs).
    #[must_use]
    pub fn with_keys(self, keys: Option<Arc<BrokerKeys>>) -> Self {
        *self
            .inner
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = keys;
        self
    }

    /// Routes a run's messages to `inbox`.
    pub fn register(&self, run: &RunId, inbox: Inbox) {
        let mut routes = self.inner.routes();
        routes.ended_set.remove(run);
        routes.active.insert(run.clone(), inbox);
    }

    /// The first `count` messages handed to `run` since it registered took effect: they are
    /// deleted from the queue (see [`crate::bus::AgentBus::acknowledge`]).
    pub fn acknowledge(&self, run: &RunId, count: u64) {
        let receipts = {
            let mut routes = self.inner.routes();
            let Some((acked, queue)) = routes.delivered.get_mut(run) else {
                return;
            };
            let mut receipts = Vec::new();
            while *acked < count {
                let Some(receipt) = queue.pop_front() else {
                    break;
                };
                *acked += 1;
                receipts.push(receipt);
            }
            receipts
        };
        self.inner.delete_later(receipts);
    }

    /// Stops routing a run's messages; what it was handed, and later ones, are deleted.
    pub fn unregister(&self, run: &RunId) {
        let mut routes = self.inner.routes();
        routes.active.remove(run);
        let receipts = routes
            .delivered
            .remove(run)
            .map(|(_, queue)| queue.into_iter().collect())
            .unwrap_or_default();
        self.inner.delete_later(receipts);
        if routes.ended_set.insert(run.clone()) {
            routes.ended.push_back(run.clone());
        }
        while routes.ended.len() > ENDED_KEPT {
            if let Some(old) = routes.ended.pop_front() {
                routes.ended_set.remove(&old);
            }
        }
    }
}

async fn poll(client: aws_sdk_sqs::Client, queue_url: String, inner: Weak<Inner>) {
    let wait = i32::try_from(WAIT.as_secs()).unwrap_or(20);
    while inner.strong_count() > 0 {
        let received = client
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(queue = %queue_url, error = %super::sdk_error_text(&e), "cannot read the frames queue");
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let done: Vec<&str> = messages
            .iter()
            .filter(|m| {
                handle(&strong, m.body().unwrap_or_default(), m.receipt_handle()) == Handled::Done
            })
            .filter_map(Message::receipt_handle)
            .collect();
        drop(strong);
        delete(&client, &queue_url, done.into_iter()).await;
    }
}

fn handle(inner: &Inner, body: &str, receipt: Option<&str>) -> Handled {
    let (topic, payload) = match decode_body(body) {
        Ok(decoded) => decoded,
        Err(e) => {
            tracing::warn!(error = %e, "frames queue: a message herd cannot read; deleted");
            return Handled::Done;
        }
    };
    let keys = inner
        .keys
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let checked = match &keys {
        // Counted and logged by `authenticate`; never of use, so deleted.
        Some(keys) => match authenticate(keys, &topic, &payload) {
            Ok(checked) => checked,
            Err(_) => return Handled::Done,
        },
        None => &payload[..],
    };
    let Some((run, message)) = decode_inbound(&topic, checked) else {
        tracing::debug!(%topic, "frames queue: not an agent topic; deleted");
        return Handled::Done;
    };
    let mut routes = inner.routes();
    if let Some(inbox) = routes.active.get(&run).cloned() {
        // Recorded in delivery order, under the lock, so counts and receipts stay aligned.
        let (_, queue) = routes.delivered.entry(run).or_default();
        queue.push_back(receipt.unwrap_or_default().to_owned());
        let _ = inbox.send(message);
        Handled::Delivered
    } else if routes.ended_set.contains(&run) {
        Handled::Done
    } else {
        Handled::Later
    }
}

/// Deletes up to 10 messages (one batch) by receipt handle.
async fn delete<'a>(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    receipts: impl Iterator<Item = &'a str>,
) {
    let entries: Vec<DeleteMessageBatchRequestEntry> = receipts
        .filter(|r| !r.is_empty())
        .enumerate()
        .filter_map(|(i, receipt)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(receipt)
                .build()
                .ok()
        })
        .collect();
    if entries.is_empty() {
        return;
    }
    match client
        .delete_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send()
        .await
    {
        Ok(out) if out.failed().is_empty() => {}
        Ok(out) => tracing::warn!(
            failed = out.failed().len(),
            "frames queue: some messages could not be deleted and will be read again"
        ),
        Err(e) => tracing::warn!(
            error = %super::sdk_error_text(&e),
            "frames queue: cannot delete messages; they will be read again"
        ),
    }
}

/// The topic and the agent's own payload out of a message the topic rule wrote.
fn decode_body(body: &str) -> Result<(String, Vec<u8>), String> {
    let trimmed = body.trim();
    let json = if trimmed.starts_with('{') {
        trimmed.as_bytes().to_vec()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(trimmed)
            .map_err(|_| "neither a JSON object nor base64".to_owned())?
    };
    let mut value: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| format!("not JSON: {e}"))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| "not a JSON object".to_owned())?;
    // The agent's bytes whole (a signed message), from `encode(*, 'base64') AS payload_base64`.
    if let (Some(serde_json::Value::String(topic)), Some(serde_json::Value::String(raw))) =
        (object.get("topic"), object.get("payload_base64"))
    {
        let payload = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|_| "payload_base64: not base64".to_owned())?;
        return Ok((topic.clone(), payload));
    }
    let topic = match object.remove("topic") {
        Some(serde_json::Value::String(topic)) => topic,
        _ => {
            return Err(
                "no \"topic\" field: the topic rule must SELECT *, topic() AS topic".to_owned(),
            )
        }
    };
    let payload = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
    Ok((topic, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::AgentInbound;
    use herd_protocol::agent::{AgentStatus, StatusMessage};
    use herd_protocol::{msgauth, topics, wire, AgentId};

    fn status_body(run: &RunId, agent: &AgentId) -> String {
        let mut value: serde_json::Value = serde_json::from_slice(&wire::encode(&StatusMessage {
            version: 1,
            agent: agent.clone(),
            sent_ms: 0,
            seq: 0,
            status: AgentStatus::Heartbeat { vus: 3 },
        }))
        .expect("json");
        value["topic"] = topics::status(run, agent).into();
        value.to_string()
    }

    #[test]
    fn the_rules_body_gives_back_the_topic_and_the_agents_message() {
        let run = RunId::new("r1").expect("run");
        let agent = AgentId::numbered(2);
        let body = status_body(&run, &agent);
        let (topic, payload) = decode_body(&body).expect("decodes");
        assert_eq!(topic, "herd/runs/r1/agents/agent-2/status");
        let Some((to, AgentInbound::Status(status))) = decode_inbound(&topic, &payload) else {
            panic!("a status for r1")
        };
        assert_eq!(to, run);
        assert_eq!(status.status, AgentStatus::Heartbeat { vus: 3 });
        // The SQS action's useBase64 encodes the whole body.
        let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
        assert_eq!(decode_body(&encoded).map(|d| d.0), Ok(topic));
    }

    #[test]
    fn bodies_the_rule_did_not_write_are_refused_with_the_reason() {
        assert_eq!(
            decode_body(r#"{"version":1}"#),
            Err("no \"topic\" field: the topic rule must SELECT *, topic() AS topic".into())
        );
        assert_eq!(
            decode_body("[1,2]"),
            Err("neither a JSON object nor base64".into())
        );
        assert!(decode_body("{not json").is_err_and(|e| e.starts_with("not JSON")));
    }

    #[test]
    fn messages_leave_the_queue_only_once_their_run_acknowledged_them() {
        let queue = FramesViaSqs {
            inner: Arc::new(Inner {
                routes: Mutex::default(),
                keys: Mutex::default(),
                queue: None,
            }),
        };
        let run = RunId::new("r1").expect("run");
        let receipts = ["a", "b", "c"].map(String::from);
        queue
            .inner
            .routes()
            .delivered
            .insert(run.clone(), (0, receipts.into_iter().collect()));
        queue.acknowledge(&run, 2);
        let left = |q: &FramesViaSqs| q.inner.routes().delivered.get(&run).cloned();
        assert_eq!(left(&queue), Some((2, VecDeque::from(["c".to_owned()]))));
        queue.acknowledge(&run, 2);
        assert_eq!(left(&queue), Some((2, VecDeque::from(["c".to_owned()]))));
        queue.unregister(&run);
        assert_eq!(
            left(&queue),
            None,
            "an ended run's messages are all deleted"
        );
    }

    /// A body as `SELECT encode(*, 'base64') AS payload_base64, topic() AS topic` writes it.
    fn raw_body(topic: &str, message: &[u8]) -> String {
        serde_json::json!({
            "topic": topic,
            "payload_base64": base64::engine::general_purpose::STANDARD.encode(message),
        })
        .to_string()
    }

    #[test]
    fn with_the_brokers_keys_only_messages_signed_by_their_topics_agent_reach_the_run() {
        use crate::metrics::METRICS;
        let keys = Arc::new(BrokerKeys::generate().expect("randomness"));
        let queue = FramesViaSqs {
            inner: Arc::new(Inner {
                routes: Mutex::default(),
                keys: Mutex::default(),
                queue: None,
            }),
        }
        .with_keys(Some(Arc::clone(&keys)));
        let run = RunId::new("r1").expect("run");
        let (a0, a1) = (AgentId::numbered(0), AgentId::numbered(1));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        queue.register(&run, tx);
        let topic = topics::status(&run, &a0);
        let status = wire::encode(&StatusMessage::new(
            a0.clone(),
            AgentStatus::Heartbeat { vus: 3 },
        ));
        let dropped = |m: &crate::metrics::Metrics| {
            let mut text = String::new();
            m.render(&mut text);
            text.lines()
                .find_map(|l| l.strip_prefix("herd_messages_unauthenticated_total "))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap_or_default()
        };
        let before = dropped(&METRICS);
        // Unsigned (either body form), signed by a neighbour, by another run's agent: dropped.
        let refused = [
            status_body(&run, &a0),
            raw_body(&topic, &status),
            raw_body(
                &topic,
                &msgauth::sign(&keys.agent(&run, &a1).password, &topic, &status),
            ),
            raw_body(
                &topic,
                &msgauth::sign(
                    &keys.agent(&RunId::new("r2").expect("run"), &a0).password,
                    &topic,
                    &status,
                ),
            ),
        ];
        for body in &refused {
            assert_eq!(handle(&queue.inner, body, Some("rcpt")), Handled::Done);
        }
        assert!(rx.try_recv().is_err(), "nothing reached the run");
        assert!(dropped(&METRICS) >= before + refused.len() as u64);
        // Signed with its agent's credential: delivered.
        let signed = msgauth::sign(&keys.agent(&run, &a0).password, &topic, &status);
        assert_eq!(
            handle(&queue.inner, &raw_body(&topic, &signed), Some("rcpt")),
            Handled::Delivered
        );
        assert!(matches!(
            rx.try_recv(),
            Ok(AgentInbound::Status(StatusMessage { agent, .. })) if agent == a0
        ));
    }

    #[test]
    fn without_keys_the_raw_body_form_is_read_too() {
        let inner = Inner {
            routes: Mutex::default(),
            keys: Mutex::default(),
            queue: None,
        };
        let run = RunId::new("r1").expect("run");
        let topic = topics::status(&run, &AgentId::numbered(0));
        let body = raw_body(&topic, b"{\"version\":1}");
        assert_eq!(decode_body(&body), Ok((topic, b"{\"version\":1}".to_vec())));
        assert_eq!(
            decode_body(r#"{"topic":"t","payload_base64":"%%"}"#),
            Err("payload_base64: not base64".into())
        );
        assert_eq!(handle(&inner, &body, None), Handled::Later);
    }

    #[test]
    fn messages_are_kept_only_for_runs_that_may_still_come() {
        let inner = Inner {
            routes: Mutex::default(),
            keys: Mutex::default(),
            queue: None,
        };
        let handle_of = |run: &str| {
            let run = RunId::new(run).expect("run");
            handle(&inner, &status_body(&run, &AgentId::numbered(0)), None)
        };
        assert_eq!(handle_of("unknown"), Handled::Later);
        let ended = FramesViaSqs {
            inner: Arc::new(Inner {
                routes: Mutex::default(),
                keys: Mutex::default(),
                queue: None,
            }),
        };
        ended.unregister(&RunId::new("ended").expect("run"));
        let body = status_body(&RunId::new("ended").expect("run"), &AgentId::numbered(0));
        assert_eq!(handle(&ended.inner, &body, None), Handled::Done);
        assert_eq!(handle(&inner, "garbage", None), Handled::Done);
        assert_eq!(
            handle(&inner, r#"{"topic":"herd/runs/r1/cmd","version":1}"#, None),
            Handled::Done
        );
    }
}
