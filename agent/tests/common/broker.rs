//! A scripted single-client MQTT 3.1.1 broker, speaking the real protocol through rumqttc's
//! packet codec: enough to drive one agent end to end and see every packet it sends.

use bytes::BytesMut;
use rumqttc::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, QoS, SubAck, SubscribeReasonCode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX: usize = 1024 * 1024;

/// A listener on 127.0.0.1 waiting for the agent.
pub struct Broker {
    listener: TcpListener,
    /// `mqtt://127.0.0.1:PORT`
    pub url: String,
}

impl Broker {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("mqtt://{}", listener.local_addr().expect("addr"));
        Self { listener, url }
    }

    /// Accepts the agent's connection.
    pub async fn accept(&self) -> Conn {
        let (stream, _) = self.listener.accept().await.expect("accept");
        Conn {
            stream,
            buf: BytesMut::new(),
            next_pkid: 1,
        }
    }
}

/// One client connection.
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    next_pkid: u16,
}

impl Conn {
    /// The next packet, or `None` when the client closed the connection.
    pub async fn read(&mut self) -> Option<Packet> {
        loop {
            match Packet::read(&mut self.buf, MAX) {
                Ok(packet) => return Some(packet),
                Err(rumqttc::Error::InsufficientBytes(_)) => {}
                Err(e) => panic!("bad packet from the agent: {e}"),
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    pub async fn write(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        packet.write(&mut out, MAX).expect("encodable packet");
        self.stream.write_all(&out).await.expect("write to agent");
    }

    pub async fn connack(&mut self) {
        self.write(Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::Success,
            false,
        )))
        .await;
    }

    pub async fn suback(&mut self, pkid: u16) {
        self.write(Packet::SubAck(SubAck::new(
            pkid,
            vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)],
        )))
        .await;
    }

    pub async fn puback(&mut self, pkid: u16) {
        self.write(Packet::PubAck(PubAck::new(pkid))).await;
    }

    /// Sends a QoS1 message to the agent.
    pub async fn publish(&mut self, topic: &str, payload: Vec<u8>) {
        let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload);
        publish.pkid = self.next_pkid;
        self.next_pkid += 1;
        self.write(Packet::Publish(publish)).await;
    }
}
