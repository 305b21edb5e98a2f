//! HPACK (RFC 7541) as herd's HTTP/2 client needs it: a full decoder for what servers send
//! (static and dynamic table, Huffman strings, table size updates), and an encoder for requests
//! that needs no state at all.
//!
//! The encoder writes every field as a literal *without indexing* (names from the static table
//! where it has them, values as plain octets; `authorization`, `proxy-authorization` and
//! `cookie` *never indexed*): the server's dynamic table is never touched, so a request's header
//! block is the same bytes on every connection and is encoded once per request step (kept beside
//! the HTTP/1.1 bytes of the step, `Hop::h2_block`).
//!
//! The decoder hands the caller only the fields whose names it asks for, and does not Huffman-
//! decode the values of the others (`date`, `server`, `etag`, ... on every response) unless the
//! field goes into the dynamic table, whose entries later fields may refer to. A malformed
//! Huffman string in a skipped value is therefore not noticed; what herd reads is checked.

use super::h2_huffman;
use std::collections::VecDeque;

/// The dynamic table size herd's decoder allows (`SETTINGS_HEADER_TABLE_SIZE`, left at its
/// default).
pub(super) const TABLE_SIZE: usize = 4096;

/// RFC 7541 Appendix A.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Why a header block cannot be decoded (a COMPRESSION_ERROR of the connection).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Malformed(pub &'static str);

/// A dynamic table entry: name and value in one buffer.
struct Entry {
    bytes: Vec<u8>,
    name_len: usize,
}

impl Entry {
    fn name(&self) -> &[u8] {
        &self.bytes[..self.name_len]
    }
    fn value(&self) -> &[u8] {
        &self.bytes[self.name_len..]
    }
    /// Its size as RFC 7541 section 4.1 counts it.
    fn size(&self) -> usize {
        self.bytes.len() + 32
    }
}

/// The decoding side of one connection.
pub(super) struct Decoder {
    /// Newest first: index 62 is the front.
    table: VecDeque<Entry>,
    size: usize,
    /// The size the server last set (at most [`TABLE_SIZE`]).
    max: usize,
    /// Huffman-decoded names and values (reused).
    name: Vec<u8>,
    value: Vec<u8>,
    /// Buffers of evicted entries, reused for new ones: nginx sends `server`, `date`,
    /// `content-type` and `content-length` with incremental indexing in every response (and
    /// never refers to them), so without this each response cost four allocations and frees.
    spare: Vec<Vec<u8>>,
}

/// Most evicted buffers kept (as many entries as the smallest fit in the table).
const SPARE: usize = TABLE_SIZE / 32;

/// Where a decoded string is.
#[derive(Clone, Copy)]
enum Text {
    /// Plain octets in the block, at this range.
    Raw(usize, usize),
    /// Huffman-decoded into the decoder's scratch buffer.
    Decoded,
    /// Not decoded (nobody reads it).
    Skipped,
}

impl Default for Decoder {
    fn default() -> Self {
        Self {
            table: VecDeque::new(),
            size: 0,
            max: TABLE_SIZE,
            name: Vec::new(),
            value: Vec::new(),
            spare: Vec::new(),
        }
    }
}

impl Decoder {
    /// Decodes `block` (a whole header block), calling `field(name, value)` for each field whose
    /// name `wanted` accepts, in order.
    pub fn decode(
        &mut self,
        block: &[u8],
        wanted: impl Fn(&[u8]) -> bool,
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), Malformed> {
        let mut at = 0;
        let mut fields_seen = false;
        while at < block.len() {
            let first = block[at];
            if first & 0x80 != 0 {
                // Indexed field (section 6.1).
                let (index, n) = integer(&block[at..], 7)?;
                at += n;
                let (name, value) = self.get(index)?;
                if wanted(name) {
                    field(name, value);
                }
            } else if first & 0xe0 == 0x20 {
                // Dynamic table size update (section 6.3): only before the first field.
                if fields_seen {
                    return Err(Malformed("a table size update after a field"));
                }
                let (size, n) = integer(&block[at..], 5)?;
                at += n;
                if size > TABLE_SIZE {
                    return Err(Malformed("a table size above the one allowed"));
                }
                self.max = size;
                self.evict(0);
                continue;
            } else {
                // A literal: with incremental indexing (01), without (0000) or never (0001).
                let indexing = first & 0x40 != 0;
                let (index, n) = integer(&block[at..], if indexing { 6 } else { 4 })?;
                at += n;
                let name = if index == 0 {
                    self.name.clear();
                    let (text, n) = string(block, at, Some(&mut self.name))?;
                    at += n;
                    text
                } else {
                    // Checked now; read below (the table cannot be borrowed across the value).
                    self.get(index)?;
                    Text::Skipped
                };
                let want = wanted(self.name_of(block, name, index));
                self.value.clear();
                let keep = want || indexing;
                let (value, n) = string(block, at, keep.then_some(&mut self.value))?;
                at += n;
                if want {
                    field(
                        self.name_of(block, name, index),
                        self.value_of(block, value),
                    );
                }
                if indexing {
                    let mut bytes = self.spare.pop().unwrap_or_default();
                    bytes.clear();
                    let (name, value) = (
                        self.name_of(block, name, index),
                        self.value_of(block, value),
                    );
                    bytes.extend_from_slice(name);
                    bytes.extend_from_slice(value);
                    let name_len = name.len();
                    self.insert(Entry { bytes, name_len });
                }
            }
            fields_seen = true;
        }
        Ok(())
    }

    /// A literal's name: in the block, decoded, or (`Skipped`) the name of the field at `index`.
    fn name_of<'a>(&'a self, block: &'a [u8], name: Text, index: usize) -> &'a [u8] {
        match name {
            Text::Raw(s, e) => &block[s..e],
            Text::Decoded => &self.name,
            Text::Skipped => self.get(index).map_or(&[][..], |(n, _)| n),
        }
    }

    /// A literal's value: in the block, decoded, or (`Skipped`) not read.
    fn value_of<'a>(&'a self, block: &'a [u8], value: Text) -> &'a [u8] {
        match value {
            Text::Raw(s, e) => &block[s..e],
            Text::Decoded => &self.value,
            Text::Skipped => &[],
        }
    }

    /// The field at `index` of the static table followed by the dynamic one.
    fn get(&self, index: usize) -> Result<(&[u8], &[u8]), Malformed> {
        match index {
            0 => Err(Malformed("index 0")),
            1..=61 => {
                let (name, value) = STATIC[index - 1];
                Ok((name.as_bytes(), value.as_bytes()))
            }
            _ => self
                .table
                .get(index - 62)
                .map(|e| (e.name(), e.value()))
                .ok_or(Malformed("an index beyond the tables")),
        }
    }

    fn insert(&mut self, entry: Entry) {
        let size = entry.size();
        if size > self.max {
            // Larger than the whole table: empties it (section 4.4).
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        self.size += size;
        self.table.push_front(entry);
    }

    /// Evicts the oldest entries until `room` more fits.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max {
            match self.table.pop_back() {
                Some(e) => {
                    self.size -= e.size();
                    if self.spare.len() < SPARE {
                        self.spare.push(e.bytes);
                    }
                }
                None => break,
            }
        }
    }
}

/// An integer with an `n`-bit prefix (section 5.1) at the start of `bytes`: its value and the
/// bytes it took. Values beyond 2^28 are refused (no header field comes near that).
fn integer(bytes: &[u8], n: u32) -> Result<(usize, usize), Malformed> {
    let mask = (1usize << n) - 1;
    let first = usize::from(*bytes.first().ok_or(Malformed("a truncated integer"))?) & mask;
    if first < mask {
        return Ok((first, 1));
    }
    let mut value = mask;
    for (i, &b) in bytes[1..].iter().enumerate() {
        if i >= 4 {
            return Err(Malformed("an integer too large"));
        }
        value += usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 2));
        }
    }
    Err(Malformed("a truncated integer"))
}

/// A string literal (section 5.2) at `block[at..]`: where it is, and the bytes it took. A
/// Huffman string is decoded into `out` when there is one, skipped otherwise.
fn string(block: &[u8], at: usize, out: Option<&mut Vec<u8>>) -> Result<(Text, usize), Malformed> {
    let rest = &block[at..];
    let huffman = rest.first().is_some_and(|b| b & 0x80 != 0);
    let (len, n) = integer(rest, 7)?;
    let end = n
        .checked_add(len)
        .filter(|&end| end <= rest.len())
        .ok_or(Malformed("a string beyond the block"))?;
    let text = match (huffman, out) {
        (false, _) => Text::Raw(at + n, at + end),
        (true, Some(out)) => {
            h2_huffman::decode(&rest[n..end], out)
                .map_err(|_| Malformed("an invalid Huffman string"))?;
            Text::Decoded
        }
        (true, None) => Text::Skipped,
    };
    Ok((text, end))
}

/// Appends `value` with an `n`-bit prefix, the prefix's other bits `flags` (section 5.1).
fn put_integer(out: &mut Vec<u8>, flags: u8, n: u32, value: usize) {
    let mask = (1usize << n) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Appends a plain (not Huffman-coded) string literal.
fn put_string(out: &mut Vec<u8>, text: &[u8]) {
    put_integer(out, 0, 7, text.len());
    out.extend_from_slice(text);
}

/// Appends the field `name: value` as a literal without indexing (never indexed if
/// `sensitive`), naming it by its static table index when it has one.
pub(super) fn put_field(out: &mut Vec<u8>, name: &[u8], value: &[u8], sensitive: bool) {
    let flags = if sensitive { 0x10 } else { 0 };
    match STATIC.iter().position(|(n, _)| n.as_bytes() == name) {
        Some(i) => put_integer(out, flags, 4, i + 1),
        None => {
            out.push(flags);
            put_string(out, name);
        }
    }
    put_string(out, value);
}

/// Appends a field the static table has whole (`index`), e.g. `:method: GET`.
pub(super) fn put_indexed(out: &mut Vec<u8>, index: usize) {
    put_integer(out, 0x80, 7, index);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_bytes::{hex, pairs};

    fn all(d: &mut Decoder, block: &[u8]) -> Result<Vec<(String, String)>, Malformed> {
        let mut got = Vec::new();
        d.decode(
            block,
            |_| true,
            |n, v| {
                got.push((
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                ))
            },
        )?;
        Ok(got)
    }

    #[test]
    fn the_huffman_responses_of_rfc_7541_c6_decode_with_evictions() {
        // RFC 7541 C.6: three responses, Huffman-coded, with a 256-byte dynamic table (set by a
        // size update here, as SETTINGS would).
        let mut d = Decoder::default();
        assert_eq!(all(&mut d, &[0x3f, 0xe1, 0x01]), Ok(vec![]));
        assert_eq!(d.max, 256);
        let first = hex(
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        );
        let want = [
            (":status", "302"),
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ("location", "https://www.example.com"),
        ];
        assert_eq!(all(&mut d, &first), Ok(pairs(&want)));
        assert_eq!(d.size, 222);
        // The second refers to three of those and evicts the oldest (:status 302).
        let second = hex("4883 640e ff c1 c0 bf");
        let want2 = [
            (":status", "307"),
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ("location", "https://www.example.com"),
        ];
        assert_eq!(all(&mut d, &second), Ok(pairs(&want2)));
        assert_eq!(d.size, 222);
        assert_eq!(d.get(62), Ok((&b":status"[..], &b"307"[..])));
    }

    #[test]
    fn only_wanted_fields_are_handed_over_and_skipped_values_keep_the_table_right() {
        let mut block = Vec::new();
        put_indexed(&mut block, 8);
        put_field(&mut block, b"date", b"today", false);
        // Literal with incremental indexing, new name, Huffman value "302" (6402).
        block.extend_from_slice(&[0x40, 0x01, b'x', 0x82, 0x64, 0x02]);
        // Huffman value "private" for a skipped field: not decoded.
        block.extend_from_slice(&[0x0f, 0x09, 0x85, 0xae, 0xc3, 0x77, 0x1a, 0x4b]);
        let mut d = Decoder::default();
        let mut got = Vec::new();
        d.decode(
            &block,
            |n| n == b":status",
            |n, v| got.push((n.to_vec(), v.to_vec())),
        )
        .expect("valid");
        assert_eq!(got, vec![(b":status".to_vec(), b"200".to_vec())]);
        // The indexed field went into the table even though nobody asked for it.
        assert_eq!(d.get(62), Ok((&b"x"[..], &b"302"[..])));
        assert_eq!(all(&mut d, &[0xbe]), Ok(pairs(&[("x", "302")])));
    }

    #[test]
    fn what_herd_encodes_decodes_to_the_same_fields() {
        let mut block = Vec::new();
        put_indexed(&mut block, 2);
        put_field(&mut block, b":path", &[b'p'; 300], false);
        put_field(&mut block, b"cookie", b"a=1", true);
        put_field(&mut block, b"x-custom", b"v", false);
        assert_eq!(&block[..3], &[0x82, 0x04, 0x7f]);
        let got = all(&mut Decoder::default(), &block).expect("valid");
        let path = "p".repeat(300);
        assert_eq!(
            got,
            pairs(&[
                (":method", "GET"),
                (":path", &path),
                ("cookie", "a=1"),
                ("x-custom", "v")
            ])
        );
    }

    #[test]
    fn malformed_blocks_are_errors_not_panics() {
        for bad in [
            &[0x80][..],                     // index 0
            &[0xbe],                         // beyond the tables
            &[0xff, 0xff, 0xff, 0xff, 0xff], // an integer running on
            &[0xff, 0x80],                   // truncated integer
            &[0x00, 0x05, b'a'],             // a string beyond the block
            &[0x00, 0x01, b'a', 0x81, 0x00], // an invalid Huffman string (zero padding)
            &[0x3f, 0xe2, 0x1f],             // a table size above 4096
            &[0x82, 0x20],                   // a size update after a field
            &[0x40],                         // a literal cut short
        ] {
            assert!(all(&mut Decoder::default(), bad).is_err(), "{bad:02x?}");
        }
        // Every truncation of a valid block is an error or decodes a prefix of it, never panics.
        let mut block = Vec::new();
        put_field(&mut block, b"x-long", &[b'v'; 200], false);
        block.extend_from_slice(&[0x40, 0x01, b'x', 0x82, 0x64, 0x02]);
        for cut in 0..block.len() {
            let _ = all(&mut Decoder::default(), &block[..cut]);
        }
    }

    #[test]
    fn an_entry_larger_than_the_table_empties_it() {
        let mut d = Decoder::default();
        let mut block = vec![0x40, 0x01, b'a', 0x01, b'b'];
        assert!(all(&mut d, &block).is_ok());
        assert_eq!(d.table.len(), 1);
        block.clear();
        block.extend_from_slice(&[0x40, 0x01, b'b']);
        put_string(&mut block, &[b'v'; TABLE_SIZE]);
        assert!(all(&mut d, &block).is_ok());
        assert_eq!((d.table.len(), d.size), (0, 0));
    }
}
