//! Where SigV4's credentials come from, for processes without the AWS SDK (the agent): the
//! environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), else the ECS
//! container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` on
//! `169.254.170.2`, or `AWS_CONTAINER_CREDENTIALS_FULL_URI` with
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN`) — the task role a Fargate agent runs with. That endpoint
//! speaks plain HTTP on a link-local address, so one GET over a TCP stream is all it takes.
//!
//! [`Provider`] caches what it fetched and fetches again five minutes before temporary
//! credentials expire, so every connection attempt signs with credentials that are still valid.

use std::collections::HashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

/// The ECS credentials endpoint's address.
const ECS_HOST: &str = "169.254.170.2";
/// Fetch again this long before temporary credentials expire (seconds).
const REFRESH_EARLY_S: u64 = 300;

/// AWS credentials (an access key, or temporary ones with a session token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (`AKIA…`, `ASIA…`).
    pub access_key_id: String,
    /// The secret key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
    /// When temporary credentials expire (seconds since the Unix epoch).
    pub expires_at_s: Option<u64>,
}

impl std::fmt::Debug for Credentials {
    // Never print the secret or the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .field("expires_at_s", &self.expires_at_s)
            .finish()
    }
}

/// Credentials that could not be found or fetched.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Neither the environment nor a container endpoint names any.
    #[error(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where \
         AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/_FULL_URI is set (an ECS task role)"
    )]
    Missing,
    /// The container endpoint could not be reached or answered badly.
    #[error("AWS container credentials from {url}: {reason}")]
    Endpoint {
        /// The endpoint.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// A cached source of credentials (see the module docs).
#[derive(Debug)]
pub struct Provider {
    env: HashMap<String, String>,
    cached: Mutex<Option<Credentials>>,
}

impl Provider {
    /// Reads the process's environment.
    pub fn from_env() -> Self {
        Self::with_env(std::env::vars().collect())
    }

    /// Reads these variables instead of the process's (tests).
    pub fn with_env(env: HashMap<String, String>) -> Self {
        Self {
            env,
            cached: Mutex::new(None),
        }
    }

    /// Valid credentials at `now_s` (seconds since the Unix epoch), fetched if need be.
    pub async fn get(&self, now_s: u64) -> Result<Credentials, CredentialsError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            if c.expires_at_s.is_none_or(|at| now_s + REFRESH_EARLY_S < at) {
                return Ok(c.clone());
            }
        }
        let fresh = self.load().await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    async fn load(&self) -> Result<Credentials, CredentialsError> {
        let var = |k: &str| self.env.get(k).filter(|v| !v.is_empty()).cloned();
        if let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            return Ok(Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: var("AWS_SESSION_TOKEN"),
                expires_at_s: None,
            });
        }
        let url = match (
            var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
            var("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        ) {
            (Some(relative), _) => format!("http://{ECS_HOST}{relative}"),
            (None, Some(full)) => full,
            (None, None) => return Err(CredentialsError::Missing),
        };
        let body = http_get(&url, var("AWS_CONTAINER_AUTHORIZATION_TOKEN").as_deref())
            .await
            .map_err(|reason| CredentialsError::Endpoint {
                url: url.clone(),
                reason,
            })?;
        parse_container_credentials(&body)
            .map_err(|reason| CredentialsError::Endpoint { url, reason })
    }
}

/// One HTTP/1.1 GET to a plain `http://host[:port]/path` URL; the body of a 200 answer.
async fn http_get(url: &str, authorization: Option<&str>) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// container endpoints are supported")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .map_err(|e| e.to_string())?;
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
        if let Some(token) = authorization {
            request.push_str(&format!("Authorization: {token}\r\n"));
        }
        request.push_str("\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(answer)
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), exchange)
        .await
        .map_err(|_| "no answer within 5 s".to_string())??;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or("the answer is not HTTP")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered {status:?}"));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err("chunked answers are not supported".into());
    }
    Ok(body.to_string())
}

/// The endpoint's JSON: `AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration` (RFC 3339).
fn parse_container_credentials(body: &str) -> Result<Credentials, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        access_key_id: String,
        secret_access_key: String,
        token: Option<String>,
        expiration: Option<String>,
    }
    let a: Answer = serde_json::from_str(body).map_err(|e| format!("unexpected answer: {e}"))?;
    let expires_at_s = match a.expiration {
        Some(t) => Some(unix_from_rfc3339(&t).ok_or(format!("unreadable Expiration {t:?}"))?),
        None => None,
    };
    Ok(Credentials {
        access_key_id: a.access_key_id,
        secret_access_key: a.secret_access_key,
        session_token: a.token,
        expires_at_s,
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` → seconds since the Unix epoch.
fn unix_from_rfc3339(t: &str) -> Option<u64> {
    let n = |s: &str| s.parse::<u64>().ok();
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day) = (n(d.next()?)?, n(d.next()?)?, n(d.next()?)?);
    let time = time.trim_end_matches('Z');
    let time = time.split('.').next()?;
    let mut hms = time.split(':');
    let (h, mi, s) = (n(hms.next()?)?, n(hms.next()?)?, n(hms.next()?)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || y < 1970 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rfc3339_times_are_read() {
        assert_eq!(unix_from_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_from_rfc3339("2024-02-29T23:59:59.123Z"),
            Some(1_709_251_199)
        );
        assert_eq!(unix_from_rfc3339("yesterday"), None);
    }

    #[tokio::test]
    async fn the_environment_comes_first_and_nothing_is_an_error_that_says_what_to_set() {
        let p = Provider::with_env(env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "SECRET"),
            ("AWS_SESSION_TOKEN", "TOKEN"),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:1/never",
            ),
        ]));
        let c = p.get(0).await.expect("credentials");
        assert_eq!(
            (c.access_key_id.as_str(), c.session_token.as_deref()),
            ("AKID", Some("TOKEN"))
        );
        let none = Provider::with_env(HashMap::new()).get(0).await;
        assert!(none
            .err()
            .is_some_and(|e| e.to_string().contains("AWS_ACCESS_KEY_ID")));
    }

    /// A container endpoint that hands out credentials numbered by the request, expiring at
    /// `expires`, and checks the authorization token.
    async fn endpoint(expires: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut s, _)) = listener.accept().await {
                n += 1;
                let mut buf = vec![0; 4096];
                let len = s.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..len]).to_string();
                let answer = if request.starts_with("GET /creds HTTP/1.1")
                    && request.contains("Authorization: secret-token")
                {
                    let body = format!(
                        r#"{{"AccessKeyId":"ASIA{n}","SecretAccessKey":"S","Token":"T{n}","Expiration":"{expires}"}}"#
                    );
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_string()
                };
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        format!("http://{addr}/creds")
    }

    #[tokio::test]
    async fn container_credentials_are_fetched_cached_and_fetched_again_before_they_expire() {
        let url = endpoint("1970-01-01T01:00:00Z").await;
        let p = Provider::with_env(env(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret-token"),
        ]));
        let first = p.get(0).await.expect("fetched");
        assert_eq!(first.access_key_id, "ASIA1");
        assert_eq!(first.expires_at_s, Some(3600));
        assert_eq!(p.get(3000).await.expect("cached").access_key_id, "ASIA1");
        // Within five minutes of the expiry: fetched again.
        assert_eq!(p.get(3400).await.expect("fresh").access_key_id, "ASIA2");
    }

    #[tokio::test]
    async fn a_refusing_endpoint_is_named_in_the_error() {
        let url = endpoint("1970-01-01T01:00:00Z").await;
        let p = Provider::with_env(env(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url)]));
        let e = p.get(0).await.expect_err("no token").to_string();
        assert!(e.contains(&url) && e.contains("403"), "{e}");
    }
}
