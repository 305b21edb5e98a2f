//! Stand-ins for the two AWS IoT Core features moto cannot play: the data plane's `Publish` that
//! reaches MQTT subscribers, and a topic rule that forwards messages into SQS.
//!
//! - [`IotStandin`] is an HTTP server speaking the REST binding of the data plane's `Publish`
//!   (`POST /topics/{topic}?qos=1&retain=true`, the topic percent-encoded as one path segment,
//!   the body the payload) that republishes each call to an MQTT broker with the same QoS and
//!   retain flag, and records it. The real SDK client reaches it through its endpoint override.
//! - [`TopicRuleToSqs`] subscribes to the broker and sends every matching message to an SQS queue
//!   as the rule `SELECT *, topic() AS topic` writes it: the JSON payload with a `topic` field.
//!
//! Each runs on its own thread and tokio runtime, so it serves whatever runtime the test uses.

use aws_config::SdkConfig;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rumqttc::{AsyncClient, Event, EventLoop, Incoming as MqttIncoming, MqttOptions, QoS};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One `Publish` call the stand-in received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The topic, decoded.
    pub topic: String,
    /// `qos` (0 when absent, as IoT Core defaults).
    pub qos: u8,
    /// `retain` (false when absent).
    pub retain: bool,
    /// The body.
    pub payload: Vec<u8>,
}

/// The data plane's `Publish`, republishing to an MQTT broker; see the module docs.
pub struct IotStandin {
    addr: SocketAddr,
    published: Arc<Mutex<Vec<Published>>>,
}

fn host_port(broker_url: &str) -> (String, u16) {
    let rest = broker_url.strip_prefix("mqtt://").unwrap_or(broker_url);
    let (host, port) = rest.rsplit_once(':').expect("broker URL mqtt://HOST:PORT");
    (host.to_owned(), port.parse().expect("broker port"))
}

/// Connects to the broker and waits for its CONNACK.
async fn connect(broker_url: &str, client_id: &str) -> (AsyncClient, EventLoop) {
    let (host, port) = host_port(broker_url);
    let mut options = MqttOptions::new(client_id, host, port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 256);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(MqttIncoming::ConnAck(_))) => return (client, eventloop),
            Ok(_) => {}
            Err(e) => panic!("stand-in cannot connect to {broker_url}: {e}"),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("stand-in runtime")
}

impl IotStandin {
    /// Starts the HTTP server on 127.0.0.1 and connects it to `broker_url` (`mqtt://HOST:PORT`).
    pub fn start(broker_url: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let published = Arc::new(Mutex::new(Vec::new()));
        let record = published.clone();
        let broker_url = broker_url.to_owned();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            runtime().block_on(async move {
                let (client, mut eventloop) = connect(&broker_url, "iot-standin").await;
                tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
                let _ = ready_tx.send(());
                serve(listener, client, record).await;
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the stand-in connected to the broker");
        Self { addr, published }
    }

    /// The endpoint to give the IoT data plane client: `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every `Publish` call so far, in order.
    pub fn published(&self) -> Vec<Published> {
        self.published.lock().expect("published lock").clone()
    }
}

async fn serve(
    listener: std::net::TcpListener,
    client: AsyncClient,
    record: Arc<Mutex<Vec<Published>>>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (client, record) = (client.clone(), record.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req| publish(req, client.clone(), record.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("header"));
    response
}

async fn publish(
    req: Request<Incoming>,
    client: AsyncClient,
    record: Arc<Mutex<Vec<Published>>>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let payload = req.into_body().collect().await?.to_bytes().to_vec();
    let topic = match (method.as_str(), path.strip_prefix("/topics/")) {
        ("POST", Some(encoded)) if !encoded.is_empty() => percent_decode(encoded),
        _ => {
            return Ok(answer(
                StatusCode::NOT_FOUND,
                format!(r#"{{"message":"not a Publish call: {method} {path}"}}"#),
            ))
        }
    };
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    };
    let qos = match param("qos").as_deref() {
        None | Some("0") => 0,
        Some("1") => 1,
        Some(other) => {
            return Ok(answer(
                StatusCode::BAD_REQUEST,
                format!(r#"{{"message":"qos {other} is not 0 or 1"}}"#),
            ))
        }
    };
    let retain = param("retain").as_deref() == Some("true");
    let level = if qos == 1 {
        QoS::AtLeastOnce
    } else {
        QoS::AtMostOnce
    };
    record.lock().expect("published lock").push(Published {
        topic: topic.clone(),
        qos,
        retain,
        payload: payload.clone(),
    });
    match client.publish(topic, level, retain, payload).await {
        Ok(()) => Ok(answer(StatusCode::OK, "{}".into())),
        Err(e) => Ok(answer(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(r#"{{"message":"broker: {e}"}}"#),
        )),
    }
}

/// Decodes `%XX` escapes (the SDK escapes `/` in the topic label).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An IoT topic rule with an SQS action, over the stand-in broker; see the module docs.
pub struct TopicRuleToSqs {
    forwarded: Arc<AtomicU64>,
}

impl TopicRuleToSqs {
    /// Subscribes to `filter` on `broker_url` (returns once subscribed) and forwards every
    /// message to `queue_url` as `SELECT *, topic() AS topic FROM '<filter>'` would.
    pub fn start(broker_url: &str, sdk: &SdkConfig, queue_url: &str, filter: &str) -> Self {
        let forwarded = Arc::new(AtomicU64::new(0));
        let count = forwarded.clone();
        let (broker_url, queue_url, filter) = (
            broker_url.to_owned(),
            queue_url.to_owned(),
            filter.to_owned(),
        );
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            runtime().block_on(async move {
                let (client, mut eventloop) = connect(&broker_url, "iot-topic-rule").await;
                client
                    .subscribe(&filter, QoS::AtLeastOnce)
                    .await
                    .expect("subscribe");
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(MqttIncoming::SubAck(_))) => {
                            let _ = ready_tx.send(());
                        }
                        Ok(Event::Incoming(MqttIncoming::Publish(p))) => {
                            let Some(body) = rule_body(&p.topic, &p.payload) else {
                                continue;
                            };
                            sqs.send_message()
                                .queue_url(&queue_url)
                                .message_body(body)
                                .send()
                                .await
                                .expect("the topic rule's SQS action");
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the topic rule subscribed");
        Self { forwarded }
    }

    /// Messages forwarded so far.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }
}

/// `SELECT *, topic() AS topic` over a JSON object payload.
fn rule_body(topic: &str, payload: &[u8]) -> Option<String> {
    let mut value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    value.as_object_mut()?.insert("topic".into(), topic.into());
    Some(value.to_string())
}
