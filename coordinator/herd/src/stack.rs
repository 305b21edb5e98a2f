//! `herd init aws`: a hub stack's outputs (infra/cloudformation/herd.yaml) become `herd.toml`.
//!
//! The outputs are a contract (infra/README.md, "Outputs: the contract"): each names one
//! `herd.toml` key. [`render`] turns them into the file's text, refusing when any output it needs
//! is missing (all of them named at once) or malformed; the caller validates the text with the
//! real parser before writing it. Cognito's outputs are not `herd.toml` keys but `herd up` flags;
//! they are optional (moto does not create Cognito resources, and a stack may be used without the
//! console), so without them the file is written all the same and [`Rendered::jwt_flags`] is
//! `None`.
//!
//! Reading the outputs (`DescribeStacks`) needs the `aws` feature; rendering does not.

use std::collections::BTreeMap;

/// The outputs every `herd.toml` needs, in the file's order.
pub const REQUIRED_OUTPUTS: [&str; 14] = [
    "Region",
    "MaxAgents",
    "CommandsQueueUrl",
    "EventsTopicArn",
    "TablePrefix",
    "BrokerUrl",
    "IotEndpointUrl",
    "FramesQueueUrl",
    "ClusterName",
    "AgentTaskDefinition",
    "AgentContainerName",
    "Subnets",
    "SecurityGroups",
    "AssignPublicIp",
];

/// Cognito's outputs: `herd up --jwks-url`, `--jwt-issuer`, `--jwt-audience` (optional).
pub const COGNITO_OUTPUTS: [&str; 3] = ["CognitoJwksUrl", "CognitoIssuer", "CognitoClientId"];

/// Why a stack's outputs give no `herd.toml`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// Outputs the file needs are absent (or empty).
    #[error("the stack has no output {}: is it a herd hub stack (infra/cloudformation/herd.yaml), and finished?", .0.join(", "))]
    Missing(Vec<String>),
    /// An output has a value its key cannot take.
    #[error("output {output} = {value:?}: {problem}")]
    Malformed {
        /// The output.
        output: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        problem: &'static str,
    },
}

/// `herd.toml` from a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The file's text.
    pub toml: String,
    /// `--jwks-url … --jwt-issuer … --jwt-audience …` for `herd up`, when the stack has Cognito.
    pub jwt_flags: Option<String>,
}

/// A TOML basic string: JSON's string escapes are all valid TOML ones.
pub(crate) fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// A comma-separated output as a TOML array of strings.
pub(crate) fn list(s: &str) -> String {
    let items: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(quoted)
        .collect();
    format!("[{}]", items.join(", "))
}

/// An output's value, unless absent, empty, or a `${…}` a stand-in left unresolved.
pub(crate) fn present<'a>(outputs: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    outputs
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty() && !v.contains("${"))
}

/// Every one of `names` among `outputs`, or the error naming all that are missing.
pub(crate) fn require(
    outputs: &BTreeMap<String, String>,
    names: &[&str],
) -> Result<(), RenderError> {
    let missing: Vec<String> = names
        .iter()
        .filter(|name| present(outputs, name).is_none())
        .map(|name| (*name).to_owned())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(RenderError::Missing(missing))
    }
}

/// `herd.toml` from the outputs of the hub stack `stack`; see the module docs.
pub fn render(stack: &str, outputs: &BTreeMap<String, String>) -> Result<Rendered, RenderError> {
    require(outputs, &REQUIRED_OUTPUTS)?;
    let o = |name: &str| present(outputs, name).unwrap_or_default();
    let max_agents: u32 = o("MaxAgents").parse().map_err(|_| RenderError::Malformed {
        output: "MaxAgents",
        value: o("MaxAgents").to_owned(),
        problem: "not a whole number",
    })?;
    let public_ip = match o("AssignPublicIp") {
        "true" => true,
        "false" => false,
        other => {
            return Err(RenderError::Malformed {
                output: "AssignPublicIp",
                value: other.to_owned(),
                problem: "not true or false",
            })
        }
    };
    let jwt_flags = match COGNITO_OUTPUTS.map(|name| present(outputs, name)) {
        [Some(jwks), Some(issuer), Some(audience)] => Some(format!(
            "--jwks-url {jwks} --jwt-issuer {issuer} --jwt-audience {audience}"
        )),
        _ => None,
    };
    let q = |name: &str| quoted(o(name));
    let toml = format!(
        r#"# herd.toml of the herd stack {stack:?}, written by `herd init aws` from its outputs.
# The stack runs a coordinator of its own (its ECS service): use this file for
# `herd token create --config herd.toml`, or for `herd up --config herd.toml` in its place (scale
# the service to 0 first: two coordinators would share the commands and frames queues).
version = 1

[aws]
region = {region}

[api]
max_agents = {max_agents}

[commands]
sqs_queue_url = {commands}

[events]
sns_topic_arn = {events}

[store]
kind = "dynamodb"
table_prefix = {prefix}
# The stack owns the tables.
create_tables = false

[broker]
# Agents connect here. The coordinator opens no MQTT session: commands go out through the IoT
# data plane, frames come back through the stack's topic rule and queue.
url = {broker}
auth = "none"
commands_via = "iot-data"
iot_endpoint_url = {iot}
frames_via = "sqs"
frames_queue_url = {frames}

[launcher]
kind = "ecs"
cluster = {cluster}
task_definition = {task}
container_name = {container}
subnets = {subnets}
security_groups = {groups}
assign_public_ip = {public_ip}
"#,
        region = q("Region"),
        commands = q("CommandsQueueUrl"),
        events = q("EventsTopicArn"),
        prefix = q("TablePrefix"),
        broker = q("BrokerUrl"),
        iot = q("IotEndpointUrl"),
        frames = q("FramesQueueUrl"),
        cluster = q("ClusterName"),
        task = q("AgentTaskDefinition"),
        container = q("AgentContainerName"),
        subnets = list(o("Subnets")),
        groups = list(o("SecurityGroups")),
    );
    Ok(Rendered { toml, jwt_flags })
}

/// Why a stack's outputs could not be read.
#[cfg(feature = "aws")]
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    /// There is no such stack (in this account and region).
    #[error("DescribeStacks {stack}: no such stack in this account and region ({message})")]
    NotFound {
        /// The stack.
        stack: String,
        /// CloudFormation's error.
        message: String,
    },
    /// CloudFormation refused or could not be reached.
    #[error("DescribeStacks {stack}: {message}")]
    Call {
        /// The stack.
        stack: String,
        /// CloudFormation's error.
        message: String,
    },
    /// The stack exists but is not in a state with outputs to trust.
    #[error(
        "stack {stack} is {status}: its outputs are those of a finished create or update only"
    )]
    NotReady {
        /// The stack.
        stack: String,
        /// Its status.
        status: String,
    },
}

/// The outputs of `stack` (a name or stack id), read with `DescribeStacks`.
#[cfg(feature = "aws")]
pub async fn describe_outputs(
    sdk: &aws_config::SdkConfig,
    stack: &str,
) -> Result<BTreeMap<String, String>, DescribeError> {
    use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata as _};
    let client = aws_sdk_cloudformation::Client::new(sdk);
    let answer = client
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| {
            let message = match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                _ => DisplayErrorContext(&e).to_string(),
            };
            let stack = stack.to_owned();
            // CloudFormation's answer for a stack it does not know.
            if e.code() == Some("ValidationError") && message.contains("does not exist") {
                DescribeError::NotFound { stack, message }
            } else {
                DescribeError::Call { stack, message }
            }
        })?;
    let Some(found) = answer.stacks().first() else {
        return Err(DescribeError::NotFound {
            stack: stack.to_owned(),
            message: "DescribeStacks named no stack".to_owned(),
        });
    };
    let status = found
        .stack_status()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    if !matches!(
        status.as_str(),
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "UPDATE_ROLLBACK_COMPLETE" | "IMPORT_COMPLETE"
    ) {
        return Err(DescribeError::NotReady {
            stack: stack.to_owned(),
            status,
        });
    }
    Ok(found
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use herd_coordinator::config::{BrokerAuth, LauncherConfig, ServiceConfig, StoreConfig};

    fn outputs() -> BTreeMap<String, String> {
        [
            ("Region", "eu-west-1"),
            ("MaxAgents", "64"),
            (
                "CommandsQueueUrl",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/herd-commands",
            ),
            (
                "EventsTopicArn",
                "arn:aws:sns:eu-west-1:123456789012:herd-events",
            ),
            ("TablePrefix", "herd-"),
            (
                "BrokerUrl",
                "mqtts://abc-ats.iot.eu-west-1.amazonaws.com:8883",
            ),
            (
                "IotEndpointUrl",
                "https://abc-ats.iot.eu-west-1.amazonaws.com",
            ),
            (
                "FramesQueueUrl",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/herd-frames",
            ),
            ("ClusterName", "herd"),
            (
                "AgentTaskDefinition",
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/herd-agent:3",
            ),
            ("AgentContainerName", "herd-agent"),
            ("Subnets", "subnet-a,subnet-b"),
            ("SecurityGroups", "sg-1"),
            ("AssignPublicIp", "true"),
            ("ConsoleUrl", "http://herd-123.eu-west-1.elb.amazonaws.com"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn every_output_of_the_contract_becomes_its_key_and_the_parser_accepts_it() {
        let rendered = render("herd", &outputs()).expect("renders");
        let c = ServiceConfig::from_toml(&rendered.toml).expect("the parser accepts it");
        assert_eq!(c.aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.max_agents, Some(64));
        assert!(c.commands.is_some() && c.events.is_some());
        assert_eq!(
            c.store,
            StoreConfig::DynamoDb {
                table_prefix: "herd-".into(),
                create_tables: false
            }
        );
        assert_eq!(c.broker.auth, BrokerAuth::None);
        assert_eq!(
            c.broker.url.map(|u| u.to_string()).as_deref(),
            Some("mqtts://abc-ats.iot.eu-west-1.amazonaws.com:8883")
        );
        let LauncherConfig::Ecs(ecs) = c.launcher else {
            panic!("ecs launcher expected");
        };
        assert_eq!(ecs.subnets, ["subnet-a", "subnet-b"]);
        assert_eq!(ecs.security_groups, ["sg-1"]);
        assert!(ecs.assign_public_ip);
        assert_eq!(rendered.jwt_flags, None, "no Cognito outputs, no flags");
    }

    #[test]
    fn cognito_outputs_become_herd_up_flags_and_unresolved_ones_are_absent() {
        let mut o = outputs();
        o.insert(
            "CognitoIssuer".into(),
            "https://cognito-idp.eu-west-1.amazonaws.com/${UserPool}".into(),
        );
        o.insert(
            "CognitoJwksUrl".into(),
            "https://x/.well-known/jwks.json".into(),
        );
        o.insert("CognitoClientId".into(), "abc".into());
        assert_eq!(render("herd", &o).expect("renders").jwt_flags, None);
        o.insert(
            "CognitoIssuer".into(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X".into(),
        );
        assert_eq!(
            render("herd", &o).expect("renders").jwt_flags.as_deref(),
            Some(
                "--jwks-url https://x/.well-known/jwks.json --jwt-issuer \
                 https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X --jwt-audience abc"
            )
        );
    }

    #[test]
    fn missing_outputs_are_all_named_and_malformed_ones_refused() {
        let mut o = outputs();
        o.remove("FramesQueueUrl");
        o.remove("Subnets");
        o.insert("ClusterName".into(), " ".into());
        assert_eq!(
            render("herd", &o),
            Err(RenderError::Missing(vec![
                "FramesQueueUrl".into(),
                "ClusterName".into(),
                "Subnets".into()
            ]))
        );
        let mut o = outputs();
        o.insert("AssignPublicIp".into(), "ENABLED".into());
        assert!(matches!(
            render("herd", &o),
            Err(RenderError::Malformed {
                output: "AssignPublicIp",
                ..
            })
        ));
    }

    #[test]
    fn values_are_escaped_as_toml_strings() {
        let mut o = outputs();
        o.insert("TablePrefix".into(), "a\"b\\c".into());
        let rendered = render("x\"y", &o).expect("renders");
        assert!(rendered.toml.contains(r#"table_prefix = "a\"b\\c""#));
        assert!(ServiceConfig::from_toml(&rendered.toml)
            .expect_err("a prefix with quotes is no table name")
            .to_string()
            .starts_with("store.table_prefix"));
    }
}
