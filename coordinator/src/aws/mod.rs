//! AWS mode: the adapters that put herd's boundaries on AWS services.
//!
//! Each boundary of the coordinator keeps its trait and gets an AWS implementation beside the
//! local one, chosen by `herd.toml`; the actors do not change:
//! - command intake: SQS (long polling) into [`crate::manager::Manager::execute`]
//!   ([`sqs::SqsIntake`]; bodies in [`envelope`], chat text in [`chat`]);
//! - events ([`crate::events::EventSink`]) to SNS, with message attributes for filtering
//!   ([`sns::SnsEvents`]; AWS Chatbot format in [`chatbot`]);
//! - the [`crate::store::Store`] on DynamoDB: [`dynamo::DynamoStore`];
//! - [`crate::launcher::Launcher`]: ECS Fargate tasks ([`ecs`]);
//! - [`crate::bus::AgentBus`]: commands out through the IoT data plane's `Publish` ([`iot`]),
//!   agents' messages in over MQTT or from an SQS queue an IoT rule fills ([`frames_sqs`]).
//!
//! Every client is built from one [`SdkConfig`](aws_config::SdkConfig) made by [`sdk_config`], so
//! one `endpoint_url` (or the standard `AWS_ENDPOINT_URL*` variables) points all of them at an
//! emulator such as moto.

pub mod chat;
pub mod chatbot;
pub mod dynamo;
pub mod ecs;
pub mod envelope;
pub mod frames_sqs;
pub mod iot;
pub mod sns;
pub mod sqs;
#[cfg(test)]
mod tests;

use crate::config::AwsSettings;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The SDK configuration all of herd's AWS clients share: region, credentials from the standard
/// chain (environment, profile, ECS task role, instance role), and the optional endpoint override.
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    loader.load().await
}

/// `Code: message` of an AWS service error, or the whole error chain of anything else (a
/// timeout, a connection refused), for logs and error messages. (`SdkError` and
/// `ProvideErrorMetadata` are smithy's, re-exported alike by every SDK crate.)
pub(crate) fn sdk_error_text<E, R>(e: &aws_sdk_ecs::error::SdkError<E, R>) -> String
where
    E: std::error::Error + aws_sdk_ecs::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_ecs::error::ProvideErrorMetadata as _;
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => aws_sdk_ecs::error::DisplayErrorContext(e).to_string(),
    }
}
