//! HTTP/2 against hand-written frames: what a real server rarely does but may (CONTINUATION,
//! padding, pings, settings changed mid-connection), and what a broken one sends (malformed
//! frames: an `io` failure after a GOAWAY, never a panic).

use super::h2_frame::{self as frame, Head};
use super::h2_hpack::{put_field, put_indexed};
use super::*;
use crate::recorder::Outcome;
use herd_protocol::plan::{HttpVersion, Method as PlanMethod, Options, RequestStep};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A frame as the hand-written server reads it.
#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// The server side of one connection, frame by frame.
struct Wire {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    /// Accepts a connection and reads the client's preface.
    async fn accept(listener: &TcpListener) -> Wire {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut wire = Wire {
            tcp,
            buf: Vec::new(),
        };
        wire.fill_to(frame::PREFACE.len()).await;
        assert_eq!(&wire.buf[..frame::PREFACE.len()], frame::PREFACE);
        wire.buf.drain(..frame::PREFACE.len());
        wire
    }

    async fn fill_to(&mut self, n: usize) {
        let mut chunk = [0u8; 4096];
        while self.buf.len() < n {
            let got = self.tcp.read(&mut chunk).await.expect("read");
            assert!(got > 0, "the client closed the connection");
            self.buf.extend_from_slice(&chunk[..got]);
        }
    }

    async fn frame(&mut self) -> Frame {
        self.fill_to(Head::SIZE).await;
        let bytes: [u8; 9] = self.buf[..9].try_into().expect("nine bytes");
        let head = Head::parse(&bytes);
        self.fill_to(Head::SIZE + head.len).await;
        let payload = self.buf[Head::SIZE..Head::SIZE + head.len].to_vec();
        self.buf.drain(..Head::SIZE + head.len);
        Frame {
            kind: head.kind,
            flags: head.flags,
            stream: head.stream,
            payload,
        }
    }

    /// The next frame of `kind`, skipping others.
    async fn next(&mut self, kind: u8) -> Frame {
        loop {
            let f = self.frame().await;
            if f.kind == kind {
                return f;
            }
        }
    }

    async fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let mut out = Vec::new();
        frame::put_head(&mut out, payload.len(), kind, flags, stream);
        out.extend_from_slice(payload);
        self.tcp.write_all(&out).await.expect("write");
    }

    async fn raw(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).await.expect("write");
    }
}

/// A response head: `:status` then `fields`, as literals.
fn head_block(status: u16, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    if status == 200 {
        put_indexed(&mut block, 8);
    } else {
        put_field(&mut block, b":status", status.to_string().as_bytes(), false);
    }
    for (name, value) in fields {
        put_field(&mut block, name.as_bytes(), value.as_bytes(), false);
    }
    block
}

fn step(method: PlanMethod, body: Option<&str>) -> RequestStep {
    RequestStep {
        label: "step".into(),
        named: false,
        method,
        path: "/w".into(),
        headers: vec![],
        body: body.map(Into::into),
        body_file: None,
        checks: vec![],
        extract: vec![],
        timeout: None,
        multipart: vec![],
    }
}

/// Runs `server` on one connection while the client sends `requests`; returns what each got.
async fn against<F, Fut>(requests: Vec<RequestStep>, server: F) -> Vec<(Outcome, Option<Captured>)>
where
    F: FnOnce(Wire) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let target = format!("http://{}", listener.local_addr().expect("addr"));
    let served = tokio::spawn(async move {
        let wire = Wire::accept(&listener).await;
        server(wire).await;
    });
    let options = Options {
        http: HttpVersion::Http2,
        timeout: Duration::from_millis(3000),
        ..Options::default()
    };
    let client = Client::new(&options).expect("client");
    let mut conns = client.connections();
    let mut got = Vec::new();
    for step in &requests {
        let request = PreparedRequest::new(&target, step).expect("valid request");
        got.push(execute_capture(&mut conns, &request, &mut |_| {}, true).await);
    }
    drop(conns);
    served.await.expect("the server's checks passed");
    got
}

fn status(outcome: &Outcome) -> Option<u16> {
    match outcome {
        Outcome::Response { status, .. } => Some(*status),
        _ => None,
    }
}

#[tokio::test]
async fn continuation_padding_interim_responses_and_trailers_are_read() {
    let got = against(vec![step(PlanMethod::Get, None)], |mut w| async move {
        let request = w.next(frame::HEADERS).await;
        assert_eq!(request.flags & frame::END_STREAM, frame::END_STREAM);
        let id = request.stream;
        // 103 Early Hints first, then the head in three pieces, the first padded.
        w.send(
            frame::HEADERS,
            frame::END_HEADERS,
            id,
            &head_block(103, &[]),
        )
        .await;
        let long = "v".repeat(40);
        let block = head_block(200, &[("x-long", &long), ("x-more", "m")]);
        let (a, rest) = block.split_at(10);
        let (b, c) = rest.split_at(20);
        let mut padded = vec![4u8];
        padded.extend_from_slice(a);
        padded.extend_from_slice(&[0; 4]);
        w.send(frame::HEADERS, frame::PADDED, id, &padded).await;
        w.send(frame::CONTINUATION, 0, id, b).await;
        w.send(frame::CONTINUATION, frame::END_HEADERS, id, c).await;
        // A padded DATA frame, an empty one, then trailers end the stream.
        w.send(frame::DATA, frame::PADDED, id, b"\x03abc\0\0\0")
            .await;
        w.send(frame::DATA, 0, id, b"").await;
        let trailers = head_block(200, &[("x-trailer", "t")]);
        w.send(
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            id,
            &trailers[1..],
        )
        .await;
    })
    .await;
    let (outcome, captured) = &got[0];
    assert_eq!(status(outcome), Some(200), "{outcome:?}");
    let captured = captured.as_ref().expect("captured");
    assert_eq!(captured.headers["x-long"], "v".repeat(40).as_str());
    assert_eq!(captured.headers["x-more"], "m");
    assert!(!captured.headers.contains_key("x-trailer"));
    assert_eq!(captured.body, b"abc");
}

#[tokio::test]
async fn pings_are_answered_and_settings_changed_mid_connection_apply() {
    let post = step(PlanMethod::Post, Some(&"p".repeat(100)));
    let got = against(
        vec![step(PlanMethod::Get, None), post],
        |mut w| async move {
            let first = w.next(frame::HEADERS).await;
            w.send(frame::PING, 0, 0, b"12345678").await;
            let pong = w.next(frame::PING).await;
            assert_eq!(
                (pong.flags, &pong.payload[..]),
                (frame::ACK, &b"12345678"[..])
            );
            // New settings before the response: a stream window of 10 bytes from now on.
            let mut settings = Vec::new();
            settings.extend_from_slice(&frame::SETTINGS_INITIAL_WINDOW_SIZE.to_be_bytes());
            settings.extend_from_slice(&10u32.to_be_bytes());
            w.send(frame::SETTINGS, 0, 0, &settings).await;
            w.send(
                frame::HEADERS,
                frame::END_HEADERS | frame::END_STREAM,
                first.stream,
                &head_block(200, &[]),
            )
            .await;
            let ack = loop {
                let f = w.frame().await;
                if f.kind == frame::SETTINGS && f.flags & frame::ACK != 0 {
                    break f;
                }
            };
            assert!(ack.payload.is_empty());
            let second = w.next(frame::HEADERS).await;
            let data = w.next(frame::DATA).await;
            assert_eq!(data.payload, b"p".repeat(10), "only the stream's window");
            assert_eq!(data.flags & frame::END_STREAM, 0);
            w.send(frame::WINDOW_UPDATE, 0, second.stream, &90u32.to_be_bytes())
                .await;
            let data = w.next(frame::DATA).await;
            assert_eq!(data.payload, b"p".repeat(90));
            assert_eq!(data.flags & frame::END_STREAM, frame::END_STREAM);
            w.send(
                frame::HEADERS,
                frame::END_HEADERS | frame::END_STREAM,
                second.stream,
                &head_block(201, &[]),
            )
            .await;
        },
    )
    .await;
    assert_eq!(status(&got[0].0), Some(200), "{:?}", got[0].0);
    assert_eq!(status(&got[1].0), Some(201), "{:?}", got[1].0);
}

#[tokio::test]
async fn malformed_frames_fail_the_request_as_io_after_a_goaway() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a frame over 16 KiB", {
            let mut f = Vec::new();
            frame::put_head(&mut f, 20_000, frame::DATA, 0, 1);
            f.extend_from_slice(&[0; 20_000]);
            f
        }),
        (
            "DATA on stream 0",
            [0, 0, 1, 0, 0, 0, 0, 0, 0, b'x'].to_vec(),
        ),
        (
            "a bad header block",
            [0, 0, 1, 1, 4, 0, 0, 0, 1, 0x80].to_vec(),
        ),
        (
            "a head without :status",
            [0, 0, 0, 1, 4, 0, 0, 0, 1].to_vec(),
        ),
        (
            "padding longer than the frame",
            [0, 0, 2, 1, 0x0c, 0, 0, 0, 1, 5, 0x88].to_vec(),
        ),
        ("a short PING", [0, 0, 1, 6, 0, 0, 0, 0, 0, 0].to_vec()),
        (
            "a zero WINDOW_UPDATE",
            [0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0].to_vec(),
        ),
        (
            "a stray CONTINUATION",
            [0, 0, 1, 9, 4, 0, 0, 0, 1, 0x88].to_vec(),
        ),
        (
            "HEADERS not continued",
            [0, 0, 1, 1, 0, 0, 0, 0, 1, 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 1].to_vec(),
        ),
        (
            "DATA before the head",
            [0, 0, 1, 0, 1, 0, 0, 0, 1, b'x'].to_vec(),
        ),
        (
            "PUSH_PROMISE",
            [0, 0, 4, 5, 4, 0, 0, 0, 1, 0, 0, 0, 2].to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        let got = against(vec![step(PlanMethod::Get, None)], move |mut w| async move {
            let request = w.next(frame::HEADERS).await;
            assert_eq!(request.stream, 1);
            w.raw(&bytes).await;
            let goaway = w.next(frame::GOAWAY).await;
            assert_ne!(goaway.payload[4..8], [0, 0, 0, 0], "an error code");
        })
        .await;
        assert_eq!(
            got[0].0,
            Outcome::Failure(FailureKind::Io),
            "{what}: {:?}",
            got[0].0
        );
    }
}
