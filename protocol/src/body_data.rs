//! Request body files carried to agents in chunks, beside the start command.
//!
//! A plan's body files (`body_file`, multipart `file`) travel inside it as `{path,
//! content_base64}`; a file may hold 16 MiB and a plan 64 MiB of them
//! ([`MAX_BODY_FILES_BYTES`]), far more than the one MQTT message a start command is. So when a
//! plan's files hold more than [`INLINE_LIMIT`] the coordinator takes their contents out of it
//! ([`take_bodies`]): every file's bytes, one after the other in one buffer, sent in chunks
//! before the start ([`crate::chunked`]), which names them ([`BodyData`]); each file in the plan
//! becomes `{path, chunked: {offset, bytes}}`. The agent reassembles the buffer once
//! ([`unpack_bodies`]) and parses the plan with it
//! ([`from_value_with_body_data`](crate::plan::from_value_with_body_data)): every file is then a
//! slice of that one buffer (`Bytes`), which every VU's requests send without a copy.

use base64::Engine;
use bytes::Bytes;
use serde_json::Value;
use std::time::Duration;

use crate::chunked::{pack, unpack, ChunkedData, Received};
use crate::plan::{for_each_file, walk, FormValue, Plan, Step, MAX_BODY_FILES_BYTES};

/// Bytes of body files (all together) above which they travel in chunks rather than in the
/// plan: below it a plan is as it always was, small enough for one message.
pub const INLINE_LIMIT: usize = 64 * 1024;

/// What a start command says of the body files sent in chunks before it.
pub type BodyData = ChunkedData;

/// Takes the body files' contents out of a plan's JSON form when they hold more than
/// [`INLINE_LIMIT`] bytes together: returns what the start command says and the chunks (base64)
/// to send before it. `None`: the files are small enough to stay in the plan (left as it was).
pub fn take_bodies(plan: &mut Value) -> Option<(BodyData, Vec<String>)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut inline = 0usize;
    for_each_file(plan, &mut |_, file| {
        if let Some(text) = file.get("content_base64").and_then(Value::as_str) {
            inline += text.len() / 4 * 3;
        }
    });
    if inline <= INLINE_LIMIT {
        return None;
    }
    let mut all = Vec::with_capacity(inline);
    for_each_file(plan, &mut |_, file| {
        let Some(m) = file.as_object_mut() else {
            return;
        };
        let Some(Value::String(text)) = m.get("content_base64") else {
            return;
        };
        let offset = all.len();
        // The plan's own writer made it: it decodes. Should it not, it stays inline.
        if b64.decode_vec(text.as_bytes(), &mut all).is_err() {
            all.truncate(offset);
            return;
        }
        m.remove("content_base64");
        m.insert(
            "chunked".into(),
            serde_json::json!({"offset": offset, "bytes": all.len() - offset}),
        );
    });
    pack(&all)
}

/// The body data the chunks of `data` carried (taken out of `received`): one buffer the plan's
/// files are slices of. The error names what is wrong, as [`crate::chunked::unpack`] does.
pub fn unpack_bodies(data: &BodyData, received: &mut Received) -> Result<Bytes, String> {
    unpack("body data", data, received, MAX_BODY_FILES_BYTES).map(Bytes::from)
}

/// What the start's lead gets per MiB of body files sent in chunks: the time the chunks take
/// through the broker and an agent takes to check and inflate them (a debug build on a slow
/// core), at most [`MAX_BODY_LEAD`].
const LEAD_PER_MIB: Duration = Duration::from_millis(100);

/// The longest extra lead for body files (64 MiB of them).
const MAX_BODY_LEAD: Duration = Duration::from_secs(10);

/// Bytes of all of `plan`'s body files.
pub fn body_bytes(plan: &Plan) -> usize {
    let mut total = 0usize;
    for steps in plan.all_steps() {
        walk(steps, "", &mut |_, step| {
            if let Step::Request(r) = step {
                total += r.body_file.as_ref().map_or(0, |f| f.content.len());
                for part in &r.multipart {
                    if let FormValue::File { file, .. } = &part.value {
                        total += file.content.len();
                    }
                }
            }
        });
    }
    total
}

/// The extra lead the start of `plan` needs for agents to take in its body files: none when
/// they travel inside the plan.
pub fn body_lead(plan: &Plan) -> Duration {
    let bytes = body_bytes(plan);
    if bytes <= INLINE_LIMIT {
        return Duration::ZERO;
    }
    let mib = bytes as f64 / f64::from(1u32 << 20);
    LEAD_PER_MIB.mul_f64(mib).min(MAX_BODY_LEAD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{from_value, from_value_with_body_data, from_yaml_str_with, PlanFiles};

    /// Every file is 300 KiB of bytes that differ by name, so a slice in the wrong place shows.
    struct Files;

    impl PlanFiles for Files {
        fn read(&self, path: &str, _limit: usize) -> Result<Vec<u8>, String> {
            let seed = path
                .bytes()
                .fold(7u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
            Ok((0..300 * 1024u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
                .collect())
        }
    }

    fn plan(scenario: &str) -> Plan {
        let text = format!(
            "version: 1\nname: t\ntarget: http://h\nload: {{stages: [{{duration: 1s, vus: 1}}]}}\n\
             scenario: {scenario}\n"
        );
        from_yaml_str_with(&text, &Files).expect("valid")
    }

    #[test]
    fn small_files_stay_in_the_plan() {
        let p = plan("[{post: /a, body_file: {path: a, content_base64: 'AAEC'}}]");
        let mut json = p.to_json();
        let before = json.clone();
        assert!(take_bodies(&mut json).is_none());
        assert_eq!(json, before);
        assert_eq!(body_lead(&p), Duration::ZERO);
    }

    #[test]
    fn large_files_travel_in_chunks_and_come_back_as_slices_of_one_buffer() {
        let p = plan(
            "[{post: /a, body_file: a.bin}, {group: g, steps: [{put: /b, body_file: b.bin}]}, \
             {post: /c, multipart: [{name: n, value: v}, {name: f, file: c.bin}]}]",
        );
        assert_eq!(body_bytes(&p), 3 * 300 * 1024);
        assert!(body_lead(&p) > Duration::ZERO);
        let mut json = p.to_json();
        let (data, chunks) = take_bodies(&mut json).expect("chunked");
        assert_eq!(
            json["scenario"][0]["body_file"],
            serde_json::json!({"path": "a.bin", "chunked": {"offset": 0, "bytes": 307_200}})
        );
        assert_eq!(
            json["scenario"][2]["multipart"][1]["file"]["chunked"]["offset"],
            serde_json::json!(2 * 307_200)
        );
        assert!(!json.to_string().contains("content_base64"));
        // Only an agent, with the data, reads that form.
        assert!(from_value(&json)
            .expect_err("no body data")
            .to_string()
            .contains("scenario[0].body_file.chunked: only a start command's plan"));

        let mut received: Received =
            Received::from([(data.crc32, (0..).zip(chunks.clone()).collect())]);
        let buffer = unpack_bodies(&data, &mut received).expect("whole");
        assert!(received.is_empty(), "the chunks are taken as they are used");
        assert_eq!(buffer.len(), 3 * 307_200);
        let back = from_value_with_body_data(&json, buffer.clone()).expect("valid");
        assert_eq!(back, p);
        // The files are views of the one buffer, not copies of it.
        let Step::Request(r) = &back.scenario[0] else {
            panic!("a request");
        };
        let file = r.body_file.as_ref().expect("file");
        assert_eq!(file.content.as_ptr(), buffer.as_ptr());

        // A chunk missing: the start is refused, naming it; a slice beyond the data too.
        let mut gap: Received = Received::from([(data.crc32, (0..).zip(chunks).collect())]);
        gap.get_mut(&data.crc32).map(|c| c.remove(&0));
        let e = unpack_bodies(&data, &mut gap).expect_err("gap");
        assert!(e.starts_with("body data incomplete: 1 of"), "{e}");
        let e = from_value_with_body_data(&json, buffer.slice(..1000))
            .expect_err("short")
            .to_string();
        assert!(
            e.contains("scenario[0].body_file.chunked: bytes 0..+307200 lie beyond the 1000 bytes"),
            "{e}"
        );
    }
}
