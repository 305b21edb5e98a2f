//! Response bodies as checks and extractions read them: decoded when the server compressed them
//! (`Content-Encoding: gzip`, `deflate` or `br`), as k6 and browsers do. Only what a step looks
//! at is decoded, and only once; the wire is untouched (the bytes counted and timed are the ones
//! the server sent), and herd never adds an `Accept-Encoding` of its own: a plan asks for
//! compression by sending that header, as a browser would.
//!
//! Decoding stops at [`MAX_CAPTURED_BODY`] bytes of output, like the capture itself, so a small
//! compressed body cannot expand into gigabytes in an agent (a "zip bomb"). A body cut by the
//! capture limit, or damaged, yields what decoded before the break; a body in an encoding herd
//! does not know (or a chain of several) is read as it came.

use super::{Captured, MAX_CAPTURED_BODY};
use std::borrow::Cow;
use std::io::Read;

/// The body of `captured` as the application sent it, before any content coding.
pub fn decoded_body(captured: &Captured) -> Cow<'_, [u8]> {
    let raw = captured.body.as_slice();
    let Some(coding) = captured
        .headers
        .get(hyper::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return Cow::Borrowed(raw);
    };
    match coding.trim().to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => Cow::Owned(read_capped(flate2::read::MultiGzDecoder::new(raw))),
        // RFC 9110 says zlib-wrapped; some servers send raw deflate: try the wrapper first.
        "deflate" => {
            let zlib = read_capped(flate2::read::ZlibDecoder::new(raw));
            if zlib.is_empty() && !raw.is_empty() {
                Cow::Owned(read_capped(flate2::read::DeflateDecoder::new(raw)))
            } else {
                Cow::Owned(zlib)
            }
        }
        "br" => Cow::Owned(read_capped(brotli_decompressor::Decompressor::new(
            raw, 4096,
        ))),
        _ => Cow::Borrowed(raw),
    }
}

/// Reads `reader` to its end, an error, or [`MAX_CAPTURED_BODY`] bytes, whichever comes first.
fn read_capped(reader: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut limited = reader.take(MAX_CAPTURED_BODY as u64);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match limited.read(&mut chunk) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_bytes::hex;
    use hyper::header::{HeaderMap, HeaderValue, CONTENT_ENCODING};
    use std::io::Write;

    /// `brotli.compress(TEXT)` from Python's `brotli` package (an independent encoder).
    const BR: &str = "1bfb00608c93e58a47b794207b7d1073a3d42fe326e09faa333cd1208cc101463241aaf362cf8baf3e78c8b6575963928dff78afc5aac9c73e57cd11941986692344048ae12432854aa35f4d392a995c49594555ad3b6b";

    fn text() -> String {
        let items: Vec<String> = (0..20).map(|i| format!("\"item-{i}\"")).collect();
        format!(
            "{{\"ok\": true, \"token\": \"abc123\", \"items\": [{}]}}",
            items.join(", ")
        )
    }

    fn captured(coding: Option<&'static str>, body: Vec<u8>) -> Captured {
        let mut headers = HeaderMap::new();
        if let Some(c) = coding {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(c));
        }
        Captured { headers, body }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }

    #[test]
    fn every_known_coding_decodes_to_the_same_text() {
        let text = text();
        let zlib = {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(text.as_bytes()).expect("zlib");
            e.finish().expect("zlib")
        };
        let raw_deflate = {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(text.as_bytes()).expect("deflate");
            e.finish().expect("deflate")
        };
        for (coding, body) in [
            (Some("gzip"), gzip(text.as_bytes())),
            (Some("X-Gzip"), gzip(text.as_bytes())),
            (Some("deflate"), zlib),
            (Some("deflate"), raw_deflate),
            (Some("br"), hex(BR)),
            (None, text.clone().into_bytes()),
            (Some("identity"), text.clone().into_bytes()),
        ] {
            let c = captured(coding, body);
            assert_eq!(
                String::from_utf8_lossy(&decoded_body(&c)),
                text,
                "{coding:?}"
            );
        }
    }

    #[test]
    fn unknown_or_broken_bodies_are_read_as_far_as_they_go() {
        // An unknown coding: the bytes as they came.
        let c = captured(Some("zstd"), b"\x28\xb5\x2f\xfd".to_vec());
        assert_eq!(&*decoded_body(&c), b"\x28\xb5\x2f\xfd");
        // A gzip body cut short (the capture limit): the part that decoded.
        let long = "0123456789".repeat(10_000);
        let mut cut = gzip(long.as_bytes());
        cut.truncate(cut.len() / 2);
        let cut = captured(Some("gzip"), cut);
        let out = decoded_body(&cut);
        assert!(!out.is_empty() && long.as_bytes().starts_with(&out));
        // Not gzip at all: nothing decodes, and nothing panics.
        assert!(decoded_body(&captured(Some("gzip"), b"plain text".to_vec())).is_empty());
    }

    #[test]
    fn a_small_body_cannot_expand_past_the_capture_limit() {
        let zeros = vec![0u8; MAX_CAPTURED_BODY * 4];
        let bomb = gzip(&zeros);
        assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
        assert_eq!(
            decoded_body(&captured(Some("gzip"), bomb)).len(),
            MAX_CAPTURED_BODY
        );
    }
}
