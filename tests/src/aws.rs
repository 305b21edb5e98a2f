//! Stand-ins for AWS in tests: a moto server (SQS, SNS, DynamoDB, ECS, EC2, IoT data plane) and a
//! Mosquitto broker (the IoT Core broker's stand-in), each started per test on a free loopback port
//! and killed when dropped.
//!
//! Both are installed by `./scripts/test` (moto into `target/moto-venv`, Mosquitto from the Debian
//! package), so a fresh machine needs nothing by hand. A missing one fails the test with a message
//! saying how to install it; it never skips.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The account id moto uses.
pub const ACCOUNT: &str = "123456789012";
/// The region the tests use.
pub const REGION: &str = "us-east-1";

/// A free port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_accepting(addr: SocketAddr, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before accepting connections: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not accept connections on {addr} within 20 s");
}

/// A moto server on 127.0.0.1.
pub struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// The `moto_server` program: `HERD_MOTO_SERVER`, else the venv `./scripts/test` makes.
    pub fn program() -> PathBuf {
        if let Some(p) = std::env::var_os("HERD_MOTO_SERVER") {
            return PathBuf::from(p);
        }
        let p =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/moto-venv/bin/moto_server");
        assert!(
            p.exists(),
            "{} is missing: `./scripts/test` installs moto[server] there (or set HERD_MOTO_SERVER)",
            p.display()
        );
        p
    }

    /// Starts a fresh moto server and waits until it accepts connections.
    pub fn start() -> Self {
        let port = free_port();
        let mut child = Command::new(Self::program())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        wait_accepting(
            SocketAddr::from(([127, 0, 0, 1], port)),
            "moto_server",
            &mut child,
        );
        Self { child, port }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An SDK config aimed at this server, with static test credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "herd-tests",
            ))
            .load()
            .await
    }

    /// Environment for a `herd` process that should reach this server with the SDK's standard
    /// chain: endpoint, region and static credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }

    /// Keeps ECS tasks `RUNNING` until stopped: by default moto moves a task one step toward
    /// `STOPPED` on every `DescribeTasks` (FIELD-NOTES, "moto").
    pub fn ecs_tasks_keep_running(&self) {
        use std::io::{Read as _, Write as _};
        let body =
            r#"{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}"#;
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto's control API");
        write!(
            stream,
            "POST /moto-api/state-manager/set-transition HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("moto answers");
        assert!(
            answer.starts_with("HTTP/1.1 20") || answer.starts_with("HTTP/1.0 20"),
            "set-transition: {answer}"
        );
    }

    /// The queue URL moto gives a queue named `name`.
    pub fn queue_url(&self, name: &str) -> String {
        format!("{}/{ACCOUNT}/{name}", self.endpoint())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Mosquitto broker on 127.0.0.1, anonymous, no persistence.
pub struct Mosquitto {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// The `mosquitto` program: `HERD_MOSQUITTO`, else the Debian package's.
    pub fn program() -> PathBuf {
        if let Some(p) = std::env::var_os("HERD_MOSQUITTO") {
            return PathBuf::from(p);
        }
        let p = PathBuf::from("/usr/sbin/mosquitto");
        assert!(
            p.exists(),
            "{} is missing: `./scripts/test` installs the mosquitto package (or set HERD_MOSQUITTO)",
            p.display()
        );
        p
    }

    /// Starts a broker and waits until it accepts connections.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .expect("write mosquitto.conf");
        let child = Self::spawn(&conf, &[port]);
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    /// Runs mosquitto with the configuration file `conf` and waits until it accepts connections
    /// on every port of `ports` (its listeners on 127.0.0.1). The caller owns the process.
    pub fn spawn(conf: &Path, ports: &[u16]) -> Child {
        let mut child = Command::new(Self::program())
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        for &port in ports {
            wait_accepting(
                SocketAddr::from(([127, 0, 0, 1], port)),
                "mosquitto",
                &mut child,
            );
        }
        child
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to the broker process: a frozen broker accepts no
    /// message until it is thawed.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} mosquitto");
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates an SQS queue (with a redrive policy, if given); its URL.
pub async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    redrive: Option<String>,
) -> String {
    let mut request = sqs.create_queue().queue_name(name);
    if let Some(redrive) = redrive {
        request = request.attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            redrive,
        );
    }
    request
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("url")
}

/// The ARN of the queue at `url`.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    use aws_sdk_sqs::types::QueueAttributeName;
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("arn")
}

/// Creates an SNS topic; its ARN.
pub async fn create_topic(sns: &aws_sdk_sns::Client, name: &str) -> String {
    sns.create_topic()
        .name(name)
        .send()
        .await
        .expect("create topic")
        .topic_arn
        .expect("topic arn")
}

/// Subscribes the queue `queue_arn` to `topic`: raw, or in SNS's notification envelope.
pub async fn subscribe(sns: &aws_sdk_sns::Client, topic: &str, queue_arn: &str, raw: bool) {
    sns.subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", raw.to_string())
        .send()
        .await
        .expect("subscribe");
}

/// Creates an SNS topic that delivers to the queue `queue_arn`; the topic's ARN.
pub async fn topic_into(
    sns: &aws_sdk_sns::Client,
    name: &str,
    queue_arn: &str,
    raw: bool,
) -> String {
    let arn = create_topic(sns, name).await;
    subscribe(sns, &arn, queue_arn, raw).await;
    arn
}

/// One message from a queue subscribed to an events topic with raw delivery: the event's JSON and
/// its SNS message attributes.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The event.
    pub body: serde_json::Value,
    /// Its message attributes (`event`, `test`, `run`), as strings.
    pub attributes: std::collections::HashMap<String, String>,
}

/// Receives events from `url` until a run ends (`run.completed` or `run.failed`), failing after
/// `limit`: that event, and every event received on the way.
pub async fn await_run_end(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    limit: std::time::Duration,
) -> (serde_json::Value, Vec<Delivered>) {
    let mut got: Vec<Delivered> = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(d) = got.iter().find(|d| {
            matches!(
                d.body["type"].as_str(),
                Some("run.completed" | "run.failed")
            )
        }) {
            return (d.body.clone(), got);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "events so far: {:?}",
            got.iter().map(|d| d.body.clone()).collect::<Vec<_>>()
        );
        got.extend(receive_events(sqs, url).await);
    }
}

/// One long-poll receive (1 s) of up to 10 events from `url`, deleting what it read.
pub async fn receive_events(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Delivered> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .message_attribute_names("All")
        .send()
        .await
        .expect("receive events");
    let mut got = Vec::new();
    for m in out.messages.unwrap_or_default() {
        let attributes = m
            .message_attributes()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.string_value().unwrap_or("").to_string()))
            .collect();
        let body = serde_json::from_str(m.body().unwrap_or("")).expect("event JSON");
        got.push(Delivered { body, attributes });
        sqs.delete_message()
            .queue_url(url)
            .receipt_handle(m.receipt_handle().unwrap_or(""))
            .send()
            .await
            .expect("delete");
    }
    got
}
