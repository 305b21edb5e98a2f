//! Data carried to agents in chunks, beside the start command: feeder rows (the `feeder_data`
//! module) and request body files (the `body_data` module), which both use this one.
//!
//! A start command is one MQTT message, which brokers cap (1 MiB on herd's embedded broker,
//! 128 KiB on AWS IoT Core), while a plan's data may be far larger (64 MiB of feeder rows, 64 MiB
//! of body files). So the coordinator [`pack`]s such data: deflated (zlib), cut into
//! [`CHUNK_BYTES`] pieces, each sent base64-encoded in its own `data_chunk` command *before* the
//! start, which names what to expect ([`ChunkedData`]: how many chunks, how many bytes, their
//! CRC-32, which also tells one data set from another). The agent keeps the chunks it hears and,
//! on the start, [`unpack`]s each data set: a chunk missing, a wrong length or checksum (and zlib's
//! own Adler-32 of the inflated bytes) make it refuse the start naming the problem, so it never
//! runs on partial data.
//!
//! The checksum guards against loss and mix-ups (a chunk of another data set), not against an
//! attacker: commands are authenticated as a whole by [`crate::msgauth`] and [`crate::cmdseal`].

use base64::Engine;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// Bytes of deflated data per chunk: base64 makes it 88 KiB, under AWS IoT Core's 128 KiB per
/// message with the command around it.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// What a start command says of one data set sent in chunks before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkedData {
    /// How many chunks (indices `0..chunks`).
    pub chunks: u32,
    /// Bytes of the deflated data, all chunks together.
    pub bytes: u64,
    /// CRC-32 of the deflated data; also names the data set in each chunk.
    pub crc32: u32,
}

/// Chunks heard before the start: by data set (its CRC-32), then by index (base64, as received).
pub type Received = BTreeMap<u32, BTreeMap<u32, String>>;

/// Deflates `data` and cuts it into chunks (base64): what the start says, and the chunks to send
/// before it. `None` only if deflating into memory failed.
pub fn pack(data: &[u8]) -> Option<(ChunkedData, Vec<String>)> {
    let mut z = ZlibEncoder::new(
        Vec::with_capacity(data.len() / 2),
        flate2::Compression::fast(),
    );
    z.write_all(data).ok()?;
    let deflated = z.finish().ok()?;
    let mut crc = flate2::Crc::new();
    crc.update(&deflated);
    let b64 = base64::engine::general_purpose::STANDARD;
    let chunks: Vec<String> = deflated
        .chunks(CHUNK_BYTES)
        .map(|c| b64.encode(c))
        .collect();
    let info = ChunkedData {
        chunks: u32::try_from(chunks.len()).unwrap_or(u32::MAX),
        bytes: deflated.len() as u64,
        crc32: crc.sum(),
    };
    Some((info, chunks))
}

/// The bytes `data` names, from the chunks of its data set in `received` (which are taken out,
/// so their memory goes as soon as they are decoded). `what` names the data in errors (`feeder
/// data`, `body data`); the error says what is wrong (a chunk that never arrived, a length or
/// checksum that does not match). At most `limit` bytes are inflated.
pub fn unpack(
    what: &str,
    data: &ChunkedData,
    received: &mut Received,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let mut chunks = received.remove(&data.crc32).unwrap_or_default();
    let missing: Vec<u32> = (0..data.chunks)
        .filter(|i| !chunks.contains_key(i))
        .collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(10).map(u32::to_string).collect();
        return Err(format!(
            "{what} incomplete: {} of {} chunks never arrived (chunks {}{})",
            missing.len(),
            data.chunks,
            shown.join(", "),
            if missing.len() > 10 { ", …" } else { "" }
        ));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut deflated = Vec::with_capacity(usize::try_from(data.bytes).unwrap_or(0));
    for i in 0..data.chunks {
        let chunk = chunks.remove(&i).unwrap_or_default();
        b64.decode_vec(chunk, &mut deflated)
            .map_err(|e| format!("{what} chunk {i} is not base64: {e}"))?;
    }
    if deflated.len() as u64 != data.bytes {
        return Err(format!(
            "{what} has {} bytes, the start command says {}",
            deflated.len(),
            data.bytes
        ));
    }
    let mut crc = flate2::Crc::new();
    crc.update(&deflated);
    if crc.sum() != data.crc32 {
        return Err(format!(
            "{what} checksum mismatch: CRC-32 {:08x}, the start command says {:08x}",
            crc.sum(),
            data.crc32
        ));
    }
    let mut out = Vec::new();
    ZlibDecoder::new(deflated.as_slice())
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{what} does not inflate: {e}"))?;
    if out.len() > limit {
        return Err(format!("{what} inflates to more than {limit} bytes"));
    }
    Ok(out)
}
