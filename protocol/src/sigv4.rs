//! MQTT over WebSocket to AWS IoT Core without certificates: the `wss://ENDPOINT/mqtt` URL
//! presigned with SigV4 (service `iotdevicegateway`), as IoT Core's documentation specifies it.
//!
//! Why presigning here, by hand, rather than the AWS SDK's signer: the agent has no AWS SDK (it is
//! a few hundred kilobytes of load generator, and must stay one), and the coordinator and the agent
//! must sign identically; the recipe is short and fixed. It is checked against an independent
//! implementation (botocore's `SigV4QueryAuth`) by the end-to-end test's IoT stand-in, and against
//! AWS's published example here.
//!
//! The recipe (IoT Core's "Signature Version 4 for MQTT over WebSocket"): a canonical GET request
//! for the path with the `X-Amz-*` query parameters sorted, the single signed header `host`, and
//! the SHA-256 of an empty payload; the signature goes last, and a session token (temporary
//! credentials, e.g. an ECS task role) is appended *after* signing, unsigned.
//!
//! Each connection attempt signs a fresh URL (the session's request hook calls [`presign`]), so
//! URLs never outlive the credentials: [`Credentials`] are fetched again when they are about to
//! expire ([`crate::aws_credentials`]).

use crate::aws_credentials::Credentials;
use ring::{digest, hmac};
use std::fmt::Write as _;

/// The IoT Core service name SigV4 signs for.
pub const SERVICE: &str = "iotdevicegateway";
/// How long a presigned URL is valid (seconds): only the connection's opening needs it.
pub const EXPIRES_S: u64 = 300;

/// What to sign: the endpoint as the client names it in its `Host` header (with `:port` when the
/// port is not the scheme's default), the path (`/mqtt`), and the region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// `HOST` or `HOST:PORT`, exactly as sent in the `Host` header.
    pub host: &'a str,
    /// The request path, `/mqtt` for IoT Core.
    pub path: &'a str,
    /// The AWS region, e.g. `eu-west-1`.
    pub region: &'a str,
}

/// The path and query of a URL presigned at `now_s` (seconds since the Unix epoch), valid for
/// [`EXPIRES_S`]: `/mqtt?X-Amz-Algorithm=…&X-Amz-Signature=…[&X-Amz-Security-Token=…]`.
pub fn presign(target: &Target<'_>, credentials: &Credentials, now_s: u64) -> String {
    let (date, amz_date) = timestamps(now_s);
    let scope = format!("{date}/{}/{SERVICE}/aws4_request", target.region);
    let query = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}&X-Amz-Date={amz_date}\
         &X-Amz-Expires={EXPIRES_S}&X-Amz-SignedHeaders=host",
        uri_encode(&format!("{}/{scope}", credentials.access_key_id))
    );
    let canonical_request = format!(
        "GET\n{}\n{query}\nhost:{}\n\nhost\n{}",
        target.path,
        target.host,
        hex(digest::digest(&digest::SHA256, b"").as_ref())
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
    );
    let key = [date.as_str(), target.region, SERVICE, "aws4_request"]
        .iter()
        .fold(
            format!("AWS4{}", credentials.secret_access_key).into_bytes(),
            |key, part| sign(&key, part.as_bytes()),
        );
    let signature = hex(&sign(&key, string_to_sign.as_bytes()));
    let mut url = format!("{}?{query}&X-Amz-Signature={signature}", target.path);
    if let Some(token) = &credentials.session_token {
        url.push_str("&X-Amz-Security-Token=");
        url.push_str(&uri_encode(token));
    }
    url
}

fn sign(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// SigV4's URI encoding: everything but `A-Z a-z 0-9 - _ . ~` as `%XX` (upper case).
fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `(YYYYMMDD, YYYYMMDDTHHMMSSZ)` in UTC.
fn timestamps(now_s: u64) -> (String, String) {
    let days = now_s / 86_400;
    let rem = now_s % 86_400;
    let (y, m, d) = civil_from_days(days);
    let date = format!("{y:04}{m:02}{d:02}");
    let stamp = format!(
        "{date}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    (date, stamp)
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_credentials() -> Credentials {
        // AWS's documentation example key pair.
        Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            expires_at_s: None,
        }
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(
            timestamps(0),
            ("19700101".into(), "19700101T000000Z".into())
        );
        // 2013-05-24T00:00:00Z, the date of AWS's SigV4 examples.
        assert_eq!(
            timestamps(1_369_353_600),
            ("20130524".into(), "20130524T000000Z".into())
        );
        // A leap day, late in the day.
        assert_eq!(
            timestamps(1_709_251_199),
            ("20240229".into(), "20240229T235959Z".into())
        );
    }

    #[test]
    fn the_signing_key_matches_aws_published_example() {
        // "Deriving the signing key" example: iam, us-east-1, 20150830, this secret.
        let key = ["20150830", "us-east-1", "iam", "aws4_request"]
            .iter()
            .fold(
                b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec(),
                |key, part| sign(&key, part.as_bytes()),
            );
        assert_eq!(
            hex(&key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn a_presigned_url_has_the_parameters_iot_core_reads_and_the_token_after_the_signature() {
        let target = Target {
            host: "example-ats.iot.eu-west-1.amazonaws.com",
            path: "/mqtt",
            region: "eu-west-1",
        };
        let mut creds = example_credentials();
        let url = presign(&target, &creds, 1_369_353_600);
        assert!(url.starts_with(
            "/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Feu-west-1%2Fiotdevicegateway%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature="
        ), "{url}");
        // botocore 1.x `SigV4QueryAuth` (same credentials, timestamp and expiry) signs the same.
        let signature = url.rsplit('=').next().unwrap_or_default();
        assert_eq!(
            signature,
            "3ef92477674b5d361b9d540256c9612cc11040c9d845c7d20c089621cfbfdd8f"
        );
        // The same request signs the same; a second later it does not.
        assert_eq!(url, presign(&target, &creds, 1_369_353_600));
        assert_ne!(url, presign(&target, &creds, 1_369_353_601));
        creds.session_token = Some("tok/en+=".into());
        let with_token = presign(&target, &creds, 1_369_353_600);
        assert_eq!(
            with_token,
            format!("{url}&X-Amz-Security-Token=tok%2Fen%2B%3D")
        );
    }

    #[test]
    fn secrets_are_not_printed() {
        let mut creds = example_credentials();
        creds.session_token = Some("token".into());
        let shown = format!("{creds:?}");
        assert!(
            !shown.contains("EXAMPLEKEY") && !shown.contains("token\""),
            "{shown}"
        );
    }
}
