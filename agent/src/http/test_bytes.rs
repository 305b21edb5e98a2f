//! Test helpers for byte-level tests of the HTTP modules (HPACK, Huffman, frames, decoding).

/// The bytes written in `s` as hex digits, whitespace ignored (`"4882 6402"`).
pub(super) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Header fields as owned pairs, to compare with what a decoder handed over.
pub(super) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}
