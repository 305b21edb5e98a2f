//! HPACK's Huffman code (RFC 7541, section 5.2 and Appendix B), decoding only: servers (nginx
//! among them) Huffman-code the header values they send; herd sends its own as plain literals,
//! which every decoder must accept.
//!
//! The code is canonical — each symbol's code follows from the bit lengths alone, ordered by
//! length then symbol — so only the 257 lengths of Appendix B are written here, and the codes
//! are derived from them. Decoding goes four bits at a time through a table of the code tree's
//! 256 inner nodes (built once per process): at most one symbol ends within four bits (the
//! shortest code has five), so a byte costs two lookups instead of eight branches.

use std::sync::OnceLock;

/// Bit lengths of the codes of the symbols 0..=255 and EOS (256), from RFC 7541 Appendix B.
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

const EOS: u16 = 256;

/// A step of four bits from one inner node.
#[derive(Clone, Copy, Default)]
struct Step {
    /// The inner node reached.
    next: u8,
    /// The symbol completed on the way, if `EMITS`.
    symbol: u8,
    flags: u8,
}

/// A symbol was completed.
const EMITS: u8 = 1;
/// The bits are not a valid code (they reach EOS, which must not appear in a string).
const FAILS: u8 = 2;
/// The node reached may end a string: the root, or up to seven 1-bits into a code (padding
/// is the most significant bits of EOS, all ones, shorter than a byte).
const ENDS: u8 = 4;

type Table = [[Step; 16]; 256];

/// The decoding table, built the first time a Huffman string is decoded.
fn table() -> &'static Table {
    static TABLE: OnceLock<Box<Table>> = OnceLock::new();
    TABLE.get_or_init(build)
}

/// Why a Huffman string cannot be decoded.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Invalid;

/// Decodes the Huffman-coded `bytes`, appending the text to `out`.
pub(super) fn decode(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), Invalid> {
    let table = table();
    let mut state = 0usize;
    let mut ends = true;
    for &byte in bytes {
        for nibble in [byte >> 4, byte & 0x0f] {
            let step = table[state][usize::from(nibble)];
            if step.flags & FAILS != 0 {
                return Err(Invalid);
            }
            if step.flags & EMITS != 0 {
                out.push(step.symbol);
            }
            state = usize::from(step.next);
            ends = step.flags & ENDS != 0;
        }
    }
    if ends {
        Ok(())
    } else {
        Err(Invalid)
    }
}

/// A node of the code tree while the table is built.
#[derive(Clone, Copy)]
enum Node {
    Inner([Option<u16>; 2]),
    Leaf(u16),
}

fn build() -> Box<Table> {
    // Canonical codes: by length, then symbol, each one more than the last, shifted left when
    // the length grows.
    let mut order: Vec<u16> = (0..=EOS).collect();
    order.sort_by_key(|&s| (LENGTHS[usize::from(s)], s));
    let mut nodes = vec![Node::Inner([None, None])];
    // Inner nodes are numbered in creation order (root 0); `ones[i]`: node i is reached from the
    // root by this many 1-bits and nothing else (`None` otherwise).
    let mut inner_of = vec![Some(0u8)];
    let mut ones: Vec<Option<u8>> = vec![Some(0)];
    let mut code: u32 = 0;
    let mut previous = LENGTHS[usize::from(order[0])];
    for (i, &symbol) in order.iter().enumerate() {
        let length = LENGTHS[usize::from(symbol)];
        if i > 0 {
            code = (code + 1) << (length - previous);
        }
        previous = length;
        let mut at = 0usize;
        let mut run = Some(0u8);
        for bit in (0..length).rev() {
            let b = ((code >> bit) & 1) as usize;
            run = run.filter(|_| b == 1).map(|n| n + 1);
            let Node::Inner(children) = nodes[at] else {
                unreachable!("a prefix code has no code through a leaf");
            };
            let child = match children[b] {
                Some(child) => usize::from(child),
                None => {
                    let child = nodes.len();
                    let leaf = bit == 0;
                    nodes.push(if leaf {
                        Node::Leaf(symbol)
                    } else {
                        Node::Inner([None, None])
                    });
                    if leaf {
                        inner_of.push(None);
                        ones.push(None);
                    } else {
                        let n = inner_of.iter().flatten().count() as u8;
                        inner_of.push(Some(n));
                        ones.push(run);
                    }
                    if let Node::Inner(children) = &mut nodes[at] {
                        children[b] = Some(child as u16);
                    }
                    child
                }
            };
            at = child;
        }
    }
    let mut table: Box<Table> = Box::new([[Step::default(); 16]; 256]);
    for (node, inner) in inner_of.iter().enumerate() {
        let Some(state) = inner else { continue };
        for nibble in 0..16u8 {
            let mut at = node;
            let mut step = Step::default();
            for bit in (0..4).rev() {
                let b = usize::from((nibble >> bit) & 1);
                let Node::Inner(children) = nodes[at] else {
                    unreachable!("walks restart at the root after a leaf");
                };
                at = children[b].map_or(0, usize::from);
                if let Node::Leaf(symbol) = nodes[at] {
                    if symbol == EOS {
                        step.flags |= FAILS;
                        break;
                    }
                    step.symbol = symbol as u8;
                    step.flags |= EMITS;
                    at = 0;
                }
            }
            step.next = inner_of[at].unwrap_or(0);
            if ones[at].is_some_and(|n| n < 8) {
                step.flags |= ENDS;
            }
            table[usize::from(*state)][usize::from(nibble)] = step;
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_bytes::hex;

    fn decoded(bytes: &[u8]) -> Result<Vec<u8>, Invalid> {
        let mut out = Vec::new();
        decode(bytes, &mut out).map(|()| out)
    }

    #[test]
    fn the_examples_of_rfc_7541_appendix_c_decode() {
        for (coded, text) in [
            ("f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"),
            ("a8eb 1064 9cbf", "no-cache"),
            ("25a8 49e9 5ba9 7d7f", "custom-key"),
            ("25a8 49e9 5bb8 e8b4 bf", "custom-value"),
            ("6402", "302"),
            ("aec3 771a 4b", "private"),
            (
                "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
                "Mon, 21 Oct 2013 20:13:21 GMT",
            ),
            (
                "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
                "https://www.example.com",
            ),
            ("", ""),
        ] {
            assert_eq!(decoded(&hex(coded)), Ok(text.as_bytes().to_vec()), "{text}");
        }
    }

    #[test]
    fn every_byte_round_trips_through_its_canonical_code() {
        // Encodes each byte value (and all of them at once) with codes derived here
        // independently of the table, then decodes.
        let mut order: Vec<u16> = (0..=EOS).collect();
        order.sort_by_key(|&s| (LENGTHS[usize::from(s)], s));
        let mut codes = [0u32; 257];
        let (mut code, mut previous) = (0u32, LENGTHS[usize::from(order[0])]);
        for (i, &s) in order.iter().enumerate() {
            let length = LENGTHS[usize::from(s)];
            if i > 0 {
                code = (code + 1) << (length - previous);
            }
            previous = length;
            codes[usize::from(s)] = code;
        }
        assert_eq!(codes[usize::from(EOS)], 0x3fff_ffff, "EOS is thirty 1-bits");
        let encode = |text: &[u8]| {
            let (mut bits, mut n, mut out) = (0u64, 0u32, Vec::new());
            for &b in text {
                let len = u32::from(LENGTHS[usize::from(b)]);
                bits = (bits << len) | u64::from(codes[usize::from(b)]);
                n += len;
                while n >= 8 {
                    n -= 8;
                    out.push((bits >> n) as u8);
                }
            }
            if n > 0 {
                out.push(((bits << (8 - n)) | (0xff >> n)) as u8);
            }
            out
        };
        let all: Vec<u8> = (0..=255).collect();
        for text in std::iter::once(all.clone()).chain(all.iter().map(|&b| vec![b, b, b])) {
            assert_eq!(decoded(&encode(&text)), Ok(text));
        }
    }

    #[test]
    fn bad_padding_and_eos_are_rejected() {
        // "a" is 00011 (5 bits): padded with 1s it is 0x1f; with 0s it is not valid.
        assert_eq!(decoded(&[0x1f]), Ok(b"a".to_vec()));
        assert_eq!(decoded(&[0x18]), Err(Invalid));
        // Eight or more bits of padding: a whole byte of 1s.
        assert_eq!(decoded(&[0x1f, 0xff]), Err(Invalid));
        // EOS itself (thirty 1-bits) in the string.
        assert_eq!(decoded(&[0xff, 0xff, 0xff, 0xfc]), Err(Invalid));
    }
}
