//! What an SQS message body on the command queue may be, and how each is read.
//!
//! Four shapes are accepted, because commands reach the queue from programs and from people,
//! directly or fanned in through SNS topics:
//!
//! 1. a protocol command, raw: `{"version": 1, "id": "…", "type": "start_run", …}` (see
//!    `docs/commands.schema.json`);
//! 2. the same inside an SNS notification, as an SNS → SQS subscription without raw message
//!    delivery writes it: `{"Type": "Notification", "MessageId": "…", "TopicArn": "…",
//!    "Message": "<the command as a JSON string>", "Timestamp": …, "Signature": …, …}`;
//! 3. chat text, raw: `run checkout-smoke agents=4` (see [`super::chat`]);
//! 4. chat text inside an SNS notification: what an ops channel produces when AWS Chatbot
//!    (Amazon Q Developer in chat applications) runs `sns publish --topic-arn <commands topic>
//!    --message "run checkout-smoke agents=4"`, e.g. behind a custom action alias. (Chatbot does
//!    not forward free chat text by itself; its custom actions run AWS CLI commands.)
//!
//! A body starting with `{` is JSON; anything else is chat text. Only one SNS envelope is
//! unwrapped, and only of `Type` `Notification`.
//!
//! Chat text carries no id, so it gets one from the delivery: `chat-<SNS MessageId>` inside an
//! envelope, `chat-<SQS MessageId>` otherwise. Both stay the same when SQS delivers the message
//! again, so a redelivered chat `run` starts one run, like a JSON command with its own id.

use super::chat::{self, ChatCommand};
use herd_protocol::command::CommandMessage;
use herd_protocol::{wire, PROTOCOL_VERSION};
use serde_json::Value;

/// What a readable message asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// A command for the manager.
    Command(CommandMessage),
    /// A chat `status`: list the active runs (answered as an event carrying this id).
    Status {
        /// The id the answer carries.
        id: String,
    },
}

/// Why a message is not a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The command id, when the body had one.
    pub id: Option<String>,
    /// What is wrong, naming the field or word at fault.
    pub problem: String,
}

/// Reads a message body; `message_id` is the SQS message's id.
pub fn read(body: &str, message_id: &str) -> Result<Request, Unreadable> {
    read_inner(body, message_id, false)
}

fn read_inner(body: &str, delivery_id: &str, wrapped: bool) -> Result<Request, Unreadable> {
    let text = body.trim();
    let where_ = if wrapped { "Message" } else { "body" };
    if text.is_empty() {
        return Err(unreadable(None, format!("{where_}: is empty")));
    }
    if !text.starts_with('{') {
        return from_chat(text, delivery_id);
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| unreadable(None, format!("{where_}: not valid JSON: {e}")))?;
    if let Some(kind) = value.get("Type").and_then(Value::as_str) {
        if wrapped {
            return Err(unreadable(
                None,
                "Message: an SNS envelope inside an SNS envelope".into(),
            ));
        }
        if kind != "Notification" {
            return Err(unreadable(
                None,
                format!("Type: an SNS {kind:?} message is not a command"),
            ));
        }
        let inner = value
            .get("Message")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                unreadable(
                    None,
                    "Message: an SNS notification without a string Message".into(),
                )
            })?;
        let sns_id = value
            .get("MessageId")
            .and_then(Value::as_str)
            .unwrap_or(delivery_id);
        return read_inner(inner, sns_id, true);
    }
    let id = value.get("id").and_then(Value::as_str).map(String::from);
    wire::check_version(&value).map_err(|e| unreadable(id.clone(), version_problem(e)))?;
    let command: CommandMessage = serde_json::from_value(value)
        .map_err(|e| unreadable(id.clone(), format!("{where_}: {e}")))?;
    Ok(Request::Command(command))
}

fn version_problem(e: wire::WireError) -> String {
    match e {
        wire::WireError::MissingVersion => {
            format!("version: required, a number (this herd speaks {PROTOCOL_VERSION})")
        }
        e => format!("version: {e}"),
    }
}

fn from_chat(text: &str, delivery_id: &str) -> Result<Request, Unreadable> {
    let id = format!("chat-{delivery_id}");
    match chat::parse(text) {
        Ok(ChatCommand::Command(command)) => Ok(Request::Command(CommandMessage {
            version: PROTOCOL_VERSION,
            id,
            command,
        })),
        Ok(ChatCommand::Status) => Ok(Request::Status { id }),
        Err(e) => Err(unreadable(Some(id), format!("{}: {}", e.path, e.message))),
    }
}

fn unreadable(id: Option<String>, problem: String) -> Unreadable {
    Unreadable { id, problem }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herd_protocol::command::{Command, Overrides};
    use serde_json::json;

    fn sns(message: &str) -> String {
        json!({"Type": "Notification", "MessageId": "sns-1",
               "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": message,
               "Timestamp": "2026-01-01T00:00:00.000Z", "SignatureVersion": "1"})
        .to_string()
    }

    fn stop(id: &str) -> Request {
        Request::Command(CommandMessage {
            version: 1,
            id: id.into(),
            command: Command::StopRun {
                run_id: "run-1".into(),
                reason: None,
            },
        })
    }

    #[test]
    fn a_raw_command_and_the_same_inside_an_sns_envelope_read_alike() {
        let body =
            json!({"version": 1, "id": "c1", "type": "stop_run", "run_id": "run-1"}).to_string();
        assert_eq!(read(&body, "sqs-1"), Ok(stop("c1")));
        assert_eq!(read(&sns(&body), "sqs-1"), Ok(stop("c1")));
    }

    #[test]
    fn chat_text_gets_its_id_from_the_delivery() {
        let expected = |id: &str| {
            Request::Command(CommandMessage {
                version: 1,
                id: id.into(),
                command: Command::StartRun {
                    test_id: Some("checkout-smoke".into()),
                    plan: None,
                    overrides: Overrides {
                        agents: Some(4),
                        duration: None,
                    },
                    allow_concurrent: false,
                },
            })
        };
        let text = "run checkout-smoke agents=4";
        assert_eq!(read(text, "sqs-1"), Ok(expected("chat-sqs-1")));
        assert_eq!(read(&sns(text), "sqs-2"), Ok(expected("chat-sns-1")));
        assert_eq!(
            read(&sns("status"), "sqs-3"),
            Ok(Request::Status {
                id: "chat-sns-1".into()
            })
        );
    }

    #[test]
    fn unreadable_bodies_name_the_problem_and_keep_an_id_when_there_is_one() {
        let cases = [
            ("", None, "body: is empty"),
            ("{not json", None, "body: not valid JSON"),
            (
                r#"{"id": "c9", "type": "start_run"}"#,
                Some("c9"),
                "version: required",
            ),
            (
                r#"{"version": 7, "id": "c9", "type": "stop_run", "run_id": "r"}"#,
                Some("c9"),
                "version: unsupported message version 7",
            ),
            (
                r#"{"version": 1, "type": "stop_run", "run_id": "r"}"#,
                None,
                "missing field `id`",
            ),
            (
                r#"{"version": 1, "id": "c9", "type": "launch_rockets"}"#,
                Some("c9"),
                "unknown variant `launch_rockets`",
            ),
            (
                r#"{"version": 1, "id": "c9", "type": "stop_run"}"#,
                Some("c9"),
                "missing field `run_id`",
            ),
            (
                r#"{"Type": "SubscriptionConfirmation", "Message": "x"}"#,
                None,
                "SubscriptionConfirmation",
            ),
            (
                r#"{"Type": "Notification", "Message": 5}"#,
                None,
                "without a string Message",
            ),
            ("run", Some("chat-m"), "chat.test: name the stored test"),
        ];
        for (body, id, needle) in cases {
            let e = read(body, "m").expect_err(body);
            assert_eq!(e.id.as_deref(), id, "{body}: {e:?}");
            assert!(e.problem.contains(needle), "{body}: {}", e.problem);
        }
        let nested = sns(&sns("status"));
        let e = read(&nested, "m").expect_err("nested");
        assert!(
            e.problem.contains("inside an SNS envelope"),
            "{}",
            e.problem
        );
        let e = read(&sns("{oops"), "m").expect_err("bad inner");
        assert!(
            e.problem.starts_with("Message: not valid JSON"),
            "{}",
            e.problem
        );
    }
}
