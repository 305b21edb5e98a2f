//! A protobuf writer for the two messages herd sends (remote write's `WriteRequest`, OTLP's
//! `ExportMetricsServiceRequest`).
//!
//! Hand-written rather than `prost`: herd only *encodes*, a handful of messages with a few field
//! kinds each (varint, zigzag, fixed64, double, bytes, nested), so ~60 lines replace a derive
//! macro crate and its build time. Nested messages are written into their own buffer and
//! appended with their length; the messages are small (one push is a few KiB), so the copy is
//! cheaper than computing sizes first. Decoding is checked in tests by independent decoders
//! (Prometheus itself, Python's `opentelemetry-proto`).

/// A message being written.
#[derive(Default)]
pub(super) struct Msg(pub(super) Vec<u8>);

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u64) {
        self.varint((u64::from(field) << 3) | wire);
    }

    /// `uint32`/`uint64`/`int64`/enum (skipped when zero, as proto3 does).
    pub(super) fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, VARINT);
            self.varint(v);
        }
    }

    /// `int64` (two's complement varint).
    pub(super) fn int(&mut self, field: u32, v: i64) {
        self.uint(field, v as u64);
    }

    /// `sint32`/`sint64` (zigzag).
    pub(super) fn sint(&mut self, field: u32, v: i64) {
        self.uint(field, zigzag(v));
    }

    /// `fixed64`.
    pub(super) fn fixed64(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, FIXED64);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// `double`; `always` for `optional` fields, whose presence means something.
    pub(super) fn double(&mut self, field: u32, v: f64, always: bool) {
        if always || v != 0.0 {
            self.key(field, FIXED64);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// `string`/`bytes`.
    pub(super) fn bytes(&mut self, field: u32, v: &[u8]) {
        self.key(field, LEN);
        self.varint(v.len() as u64);
        self.0.extend_from_slice(v);
    }

    /// A nested message.
    pub(super) fn msg(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    /// A packed `repeated` of varints (already zigzagged where the type is `sint`).
    pub(super) fn packed(&mut self, field: u32, values: impl IntoIterator<Item = u64>) {
        let mut inner = Msg::default();
        for v in values {
            inner.varint(v);
        }
        if !inner.0.is_empty() {
            self.bytes(field, &inner.0);
        }
    }
}

/// Zigzag encoding of a signed integer (`sint32`/`sint64`).
pub(super) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_zigzag_and_nesting_match_the_protobuf_encoding() {
        let mut m = Msg::default();
        m.uint(1, 150);
        assert_eq!(m.0, [0x08, 0x96, 0x01]);
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(-64), 127);
        let mut outer = Msg::default();
        let mut inner = Msg::default();
        inner.bytes(2, b"testing");
        outer.msg(3, inner);
        assert_eq!(
            outer.0,
            [0x1a, 0x09, 0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']
        );
        let mut p = Msg::default();
        p.packed(4, [3, 270, 86942]);
        assert_eq!(p.0, [0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05]);
    }
}
