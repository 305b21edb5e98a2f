//! MQTT over WebSocket (`ws://`, `wss://`) for both processes, optionally with every connection's
//! URL presigned with SigV4 — how AWS IoT Core admits a client by its IAM role instead of an
//! X.509 certificate (an ECS task role on Fargate).
//!
//! The URL is signed in rumqttc's request hook, so each connection attempt (the first and every
//! reconnection) carries a fresh signature with credentials that are still valid; a URL signed
//! once at start would expire with its credentials and the agent could never reconnect.

use crate::aws_credentials::Provider;
use crate::broker::{BrokerAddr, BrokerScheme};
use crate::sigv4::{presign, Target};
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use std::sync::Arc;

/// Signs each WebSocket connection to IoT Core.
#[derive(Debug, Clone)]
pub struct SigV4 {
    /// The region the endpoint is in.
    pub region: String,
    /// Where the credentials come from.
    pub credentials: Arc<Provider>,
}

impl SigV4 {
    /// The region from an IoT Core endpoint (`…-ats.iot.eu-west-1.amazonaws.com`), else
    /// `fallback` (`AWS_REGION`); `None` when neither names one.
    pub fn region_for(host: &str, fallback: Option<String>) -> Option<String> {
        let labels: Vec<&str> = host.split('.').collect();
        labels
            .windows(3)
            .find(|w| w[0] == "iot" && w[2] == "amazonaws")
            .map(|w| w[1].to_string())
            .or(fallback.filter(|r| !r.is_empty()))
    }
}

/// Session options for a `ws://` or `wss://` broker (`tls` is the rustls configuration for
/// `wss://`; ignored for `ws://`), signed with `sigv4` when given.
pub fn websocket_options(
    client_id: impl Into<String>,
    addr: &BrokerAddr,
    tls: Option<rustls::ClientConfig>,
    sigv4: Option<SigV4>,
) -> MqttOptions {
    let scheme = if addr.scheme.is_tls() { "wss" } else { "ws" };
    let host = if addr.host.contains(':') {
        format!("[{}]", addr.host)
    } else {
        addr.host.clone()
    };
    let path = if addr.path.is_empty() {
        "/mqtt"
    } else {
        &addr.path
    };
    let url = format!("{scheme}://{host}:{}{path}", addr.port);
    let mut options = MqttOptions::new(client_id, url, addr.port);
    options.set_transport(match (addr.scheme, tls) {
        (BrokerScheme::Wss, Some(config)) => {
            Transport::Wss(TlsConfiguration::Rustls(Arc::new(config)))
        }
        _ => Transport::Ws,
    });
    if let Some(sigv4) = sigv4 {
        let path = path.split('?').next().unwrap_or("/mqtt").to_string();
        options.set_request_modifier(move |request| sign(request, sigv4.clone(), path.clone()));
    }
    options
}

/// Replaces the request's path and query with a presigned one for its own `Host` header (which
/// is what the server checks the signature against).
async fn sign(mut request: http::Request<()>, sigv4: SigV4, path: String) -> http::Request<()> {
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let credentials = match sigv4.credentials.get(now_s).await {
        Ok(c) => c,
        Err(e) => {
            // The connection goes out unsigned and the server refuses it; say why here.
            tracing::error!(error = %e, "cannot sign the MQTT WebSocket URL (SigV4)");
            return request;
        }
    };
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let target = Target {
        host: &host,
        path: &path,
        region: &sigv4.region,
    };
    let path_and_query = presign(&target, &credentials, now_s);
    let mut parts = request.uri().clone().into_parts();
    match path_and_query.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(e) => tracing::error!(error = %e, "a presigned URL that is not a URI"),
    }
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_region_is_read_from_an_iot_endpoint() {
        assert_eq!(
            SigV4::region_for("abc123-ats.iot.eu-west-1.amazonaws.com", None).as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            SigV4::region_for("127.0.0.1", Some("us-east-2".into())).as_deref(),
            Some("us-east-2")
        );
        assert_eq!(SigV4::region_for("broker.local", None), None);
    }

    #[tokio::test]
    async fn each_connection_request_is_presigned_for_its_host() {
        let credentials = Arc::new(Provider::with_env(HashMap::from([
            ("AWS_ACCESS_KEY_ID".to_string(), "AKID".to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), "SECRET".to_string()),
            ("AWS_SESSION_TOKEN".to_string(), "TOKEN".to_string()),
        ])));
        let sigv4 = SigV4 {
            region: "eu-west-1".into(),
            credentials,
        };
        let request = http::Request::builder()
            .uri("ws://127.0.0.1:9001/mqtt")
            .header("host", "127.0.0.1:9001")
            .body(())
            .expect("request");
        let signed = sign(request, sigv4, "/mqtt".into()).await;
        let uri = signed.uri().to_string();
        assert!(uri.starts_with("ws://127.0.0.1:9001/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F"), "{uri}");
        assert!(uri.ends_with("&X-Amz-Security-Token=TOKEN"), "{uri}");
    }

    #[test]
    fn websocket_options_name_the_url_and_transport() {
        let addr = BrokerAddr::parse("ws://127.0.0.1:9001/mqtt").expect("addr");
        let options = websocket_options("c", &addr, None, None);
        assert!(matches!(options.transport(), Transport::Ws));
        assert_eq!(options.broker_address().0, "ws://127.0.0.1:9001/mqtt");
    }
}
