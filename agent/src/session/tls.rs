//! The transport of the agent's MQTT session: plain TCP, or TLS as AWS IoT Core wants it
//! (`mqtts://host:8883` with the agent's X.509 client certificate, or port 443 with the ALPN
//! protocol `x-amzn-mqtt-ca` for networks that only let https out), or WebSocket (`ws://`,
//! `wss://ENDPOINT/mqtt`), presigned with SigV4 for IoT Core with the task role's credentials
//! ([`herd_protocol::mqtt_ws`]).
//!
//! The rustls configuration itself comes from the protocol crate's one builder
//! ([`herd_protocol::tls`]), shared with the coordinator's own broker session.

use crate::error::AgentError;
use herd_protocol::aws_credentials::Provider;
use herd_protocol::broker::{BrokerAddr, BrokerScheme};
use herd_protocol::mqtt_ws::{self, SigV4};
use herd_protocol::tls::{self, ClientTls, OptionNames, TlsError, TlsOptions, IOT_CORE_ALPN};
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use std::sync::Arc;

/// How `herd agent` spells its TLS options.
const NAMES: OptionNames = OptionNames {
    ca: "--mqtt-ca",
    cert: "--mqtt-cert",
    key: "--mqtt-key",
};

/// Session options for `client_id` at `broker`: TCP, TLS, or WebSocket (signed with SigV4 when
/// `sigv4_region` is given).
pub(super) fn options(
    client_id: String,
    broker: &BrokerAddr,
    options: &TlsOptions,
    sigv4_region: Option<&str>,
) -> Result<MqttOptions, AgentError> {
    if !broker.scheme.is_websocket() {
        if sigv4_region.is_some() {
            return Err(herd_protocol::broker::BrokerAddrError {
                url: broker.to_string(),
                reason: "SigV4 signs MQTT over WebSocket: use a wss:// (or ws://) broker address"
                    .into(),
            }
            .into());
        }
        let mut mqtt = MqttOptions::new(client_id, broker.host.clone(), broker.port);
        mqtt.set_transport(transport(broker, options)?);
        return Ok(mqtt);
    }
    let tls = match broker.scheme {
        BrokerScheme::Wss => Some(tls::client_config(&ClientTls {
            options: Some((options, NAMES)),
            ..ClientTls::default()
        })?),
        _ => None,
    };
    let sigv4 = sigv4_region.map(|region| SigV4 {
        region: region.to_string(),
        credentials: std::sync::Arc::new(Provider::from_env()),
    });
    Ok(mqtt_ws::websocket_options(client_id, broker, tls, sigv4))
}

/// The transport for a broker: TLS for `mqtts`, with ALPN `x-amzn-mqtt-ca` on port 443.
fn transport(broker: &BrokerAddr, options: &TlsOptions) -> Result<Transport, AgentError> {
    match broker.scheme {
        BrokerScheme::Mqtt => {
            if options.is_set() {
                return Err(TlsError {
                    option: "--mqtt-ca/--mqtt-cert/--mqtt-key".into(),
                    reason: "TLS options need an mqtts:// broker address".into(),
                }
                .into());
            }
            Ok(Transport::Tcp)
        }
        BrokerScheme::Mqtts => {
            let config = tls::client_config(&ClientTls {
                options: Some((options, NAMES)),
                alpn: alpn(broker.port),
                ..ClientTls::default()
            })?;
            Ok(Transport::Tls(TlsConfiguration::Rustls(Arc::new(config))))
        }
        BrokerScheme::Ws | BrokerScheme::Wss => Err(herd_protocol::broker::BrokerAddrError {
            url: broker.to_string(),
            reason: "a WebSocket broker takes its options from `options`".into(),
        }
        .into()),
    }
}

/// IoT Core serves MQTT on 443 only to clients that ask for it by ALPN.
fn alpn(port: u16) -> Vec<Vec<u8>> {
    if port == 443 {
        vec![IOT_CORE_ALPN.as_bytes().to_vec()]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(url: &str) -> BrokerAddr {
        BrokerAddr::parse(url).expect("address")
    }

    #[test]
    fn tls_only_for_mqtts_and_alpn_only_on_443() {
        assert!(matches!(
            transport(&addr("mqtt://h:1883"), &TlsOptions::default()),
            Ok(Transport::Tcp)
        ));
        assert!(matches!(
            transport(&addr("mqtts://h"), &TlsOptions::default()),
            Ok(Transport::Tls(_))
        ));
        assert_eq!(alpn(443), vec![b"x-amzn-mqtt-ca".to_vec()]);
        assert!(alpn(8883).is_empty());
    }

    #[test]
    fn tls_options_need_mqtts() {
        let ca_only = TlsOptions {
            ca: Some(tls::PemSource::Inline("x".into())),
            ..TlsOptions::default()
        };
        let plain = transport(&addr("mqtt://h:1883"), &ca_only)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            plain.as_deref(),
            Some("--mqtt-ca/--mqtt-cert/--mqtt-key: TLS options need an mqtts:// broker address")
        );
        let signed_tcp = options(
            "c".into(),
            &addr("mqtts://h"),
            &TlsOptions::default(),
            Some("eu-west-1"),
        )
        .err()
        .map(|e| e.to_string());
        assert!(signed_tcp.is_some_and(|e| e.contains("SigV4 signs MQTT over WebSocket")));
        let ws = options(
            "c".into(),
            &addr("wss://h/mqtt"),
            &TlsOptions::default(),
            Some("eu-west-1"),
        )
        .expect("websocket options");
        assert!(matches!(ws.transport(), Transport::Wss(_)));
    }
}
