//! `multipart/form-data` bodies (RFC 7578): written once when a step's request is prepared (or
//! rendered, when a field's value has variables), with a boundary chosen so that no part holds
//! it, and the `content-type` header that names it.

use herd_protocol::plan::{FormPart, FormValue};
use std::cell::Cell;

thread_local! {
    /// Makes each boundary of this thread differ from the last.
    static DRAWS: Cell<u64> = const { Cell::new(0) };
}

/// The body of `parts` and its `content-type` value.
pub(super) fn encode(parts: &[FormPart]) -> (Vec<u8>, String) {
    let boundary = boundary(parts);
    let mut body = Vec::with_capacity(
        parts
            .iter()
            .map(|p| match &p.value {
                FormValue::Text(t) => t.len(),
                FormValue::File { file, .. } => file.content.len(),
            } + 160)
            .sum(),
    );
    for part in parts {
        body.extend_from_slice(b"--");
        body.extend_from_slice(boundary.as_bytes());
        body.extend_from_slice(b"\r\ncontent-disposition: form-data; name=\"");
        body.extend_from_slice(escape(&part.name).as_bytes());
        body.push(b'"');
        match &part.value {
            FormValue::Text(text) => {
                body.extend_from_slice(b"\r\n\r\n");
                body.extend_from_slice(text.as_bytes());
            }
            FormValue::File {
                file,
                filename,
                content_type,
            } => {
                body.extend_from_slice(b"; filename=\"");
                body.extend_from_slice(escape(filename).as_bytes());
                body.extend_from_slice(b"\"\r\ncontent-type: ");
                body.extend_from_slice(content_type.as_bytes());
                body.extend_from_slice(b"\r\n\r\n");
                body.extend_from_slice(&file.content);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--");
    body.extend_from_slice(boundary.as_bytes());
    body.extend_from_slice(b"--\r\n");
    (body, format!("multipart/form-data; boundary={boundary}"))
}

/// A boundary that no part's bytes contain.
fn boundary(parts: &[FormPart]) -> String {
    loop {
        let draw = DRAWS.with(|d| {
            d.set(d.get().wrapping_add(1));
            d.get()
        });
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.subsec_nanos());
        // A splitmix64 step over the time and the draw: distinct per draw, hard to meet by chance.
        let mut x = (u64::from(nanos) << 32 ^ draw).wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        let candidate = format!("herd-boundary-{x:016x}");
        let inside = |bytes: &[u8]| {
            bytes
                .windows(candidate.len())
                .any(|w| w == candidate.as_bytes())
        };
        let taken = parts.iter().any(|p| match &p.value {
            FormValue::Text(t) => inside(t.as_bytes()),
            FormValue::File { file, .. } => inside(&file.content),
        });
        if !taken {
            return candidate;
        }
    }
}

/// A name or filename inside the quotes of `content-disposition`: `"`, CR and LF
/// percent-encoded, as browsers do (HTML's form submission).
fn escape(name: &str) -> String {
    name.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;
    use herd_protocol::plan::BodyFile;

    #[test]
    fn fields_and_files_are_framed_by_a_boundary_they_do_not_contain() {
        let parts = vec![
            FormPart {
                name: "user".into(),
                value: FormValue::Text("alice".into()),
            },
            FormPart {
                name: "d\"oc".into(),
                value: FormValue::File {
                    file: BodyFile {
                        path: "x/doc.bin".into(),
                        content: bytes::Bytes::from_static(&[0, 1, 2, 255]),
                    },
                    filename: "doc.bin".into(),
                    content_type: "application/pdf".into(),
                },
            },
        ];
        let (body, content_type) = encode(&parts);
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .expect("boundary");
        let mut want = format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"user\"\r\n\r\nalice\r\n\
             --{boundary}\r\ncontent-disposition: form-data; name=\"d%22oc\"; \
             filename=\"doc.bin\"\r\ncontent-type: application/pdf\r\n\r\n"
        )
        .into_bytes();
        want.extend_from_slice(&[0, 1, 2, 255]);
        want.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        assert_eq!(body, want);
        // Two bodies get two boundaries.
        assert_ne!(encode(&parts).1, content_type);
    }
}
