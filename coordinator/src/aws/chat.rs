//! Chat text commands: what an operator types in an ops channel, mapped onto protocol commands.
//!
//! An ops chatbot (AWS Chatbot / Amazon Q Developer in chat applications, a Slack slash command
//! behind API Gateway, a script) sends plain text to the command queue, directly or through an SNS
//! topic. Four commands exist, and each becomes the same [`Command`] the JSON path carries, so a
//! chat start obeys the same checks (agent cap, one run per test) as an API call:
//!
//! - `run <test> [agents=N] [duration=30s] [concurrent]` → `start_run` of the stored test with
//!   overrides (`concurrent` sets `allow_concurrent`);
//! - `stop <run> [reason…]` → `stop_run`;
//! - `ramp <run> vus=N|rps=N for=5m [over=30s]` → `ramp_run`: ramp to N over `over` (1 s by
//!   default), then hold N for `for`;
//! - `status` → a `runs.active` event listing the active runs.
//!
//! A leading `herd` or `@herd` is ignored (`herd run checkout-smoke`), verbs and option names are
//! case-insensitive, and a mistake names the word at fault (`chat.agents: must be a whole number
//! >= 1, not "four"`).

use herd_protocol::command::{Command, Overrides};
use herd_protocol::plan::FieldError;

/// What a chat line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatCommand {
    /// A protocol command (its id comes from the message that carried the text).
    Command(Command),
    /// List the active runs.
    Status,
}

/// What the chat path accepts, for error messages.
pub const USAGE: &str = "run <test> [agents=N] [duration=30s] [concurrent] | stop <run> [reason] \
     | ramp <run> vus=N|rps=N for=5m [over=30s] | status";

/// Reads one chat line.
pub fn parse(text: &str) -> Result<ChatCommand, FieldError> {
    let mut words = text.split_whitespace().peekable();
    if words
        .peek()
        .is_some_and(|w| w.eq_ignore_ascii_case("herd") || w.eq_ignore_ascii_case("@herd"))
    {
        words.next();
    }
    let Some(verb) = words.next() else {
        return Err(error("chat", format!("empty command (expected {USAGE})")));
    };
    match verb.to_ascii_lowercase().as_str() {
        "run" | "start" => {
            let test = words.next().ok_or_else(|| {
                error(
                    "chat.test",
                    "name the stored test to run: run <test> [agents=N]",
                )
            })?;
            let mut overrides = Overrides::default();
            let mut allow_concurrent = false;
            for word in words {
                let (key, value) = match word.split_once('=') {
                    Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
                    None => (word.to_ascii_lowercase(), None),
                };
                match (key.as_str(), value) {
                    ("agents", Some(v)) => {
                        overrides.agents =
                            Some(v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                                error(
                                    "chat.agents",
                                    format!("must be a whole number >= 1, not {v:?}"),
                                )
                            })?);
                    }
                    ("duration", Some(v)) if !v.is_empty() => overrides.duration = Some(v.into()),
                    ("concurrent" | "allow_concurrent", None) => allow_concurrent = true,
                    ("concurrent" | "allow_concurrent", Some(v)) => {
                        allow_concurrent = v.parse().map_err(|_| {
                            error(
                                &format!("chat.{key}"),
                                format!("must be true or false, not {v:?}"),
                            )
                        })?;
                    }
                    ("agents" | "duration", _) => {
                        return Err(error(
                            &format!("chat.{key}"),
                            format!("needs a value: {key}=…"),
                        ))
                    }
                    _ => {
                        return Err(error(
                            "chat",
                            format!(
                            "unknown option {word:?} (known: agents=N, duration=30s, concurrent)"
                        ),
                        ))
                    }
                }
            }
            Ok(ChatCommand::Command(Command::StartRun {
                test_id: Some(test.into()),
                plan: None,
                overrides,
                allow_concurrent,
            }))
        }
        "stop" | "cancel" => {
            let run = words
                .next()
                .ok_or_else(|| error("chat.run", "name the run to stop: stop <run>"))?;
            let reason: Vec<&str> = words.collect();
            Ok(ChatCommand::Command(Command::StopRun {
                run_id: run.into(),
                reason: Some(if reason.is_empty() {
                    "stopped from chat".into()
                } else {
                    reason.join(" ")
                }),
            }))
        }
        "ramp" => {
            let run = words.next().ok_or_else(|| {
                error("chat.run", "name the run to ramp: ramp <run> vus=N for=5m")
            })?;
            ramp(run, words)
        }
        "status" => match words.next() {
            None => Ok(ChatCommand::Status),
            Some(extra) => Err(error(
                "chat",
                format!("status takes no arguments (got {extra:?})"),
            )),
        },
        other => Err(error(
            "chat",
            format!("unknown command {other:?} (expected {USAGE})"),
        )),
    }
}

/// `ramp <run> vus=N|rps=N for=D [over=D]`: the stages `[{over, N}, {for, N}]`. Durations and
/// numbers are checked where every ramp is (`stages[1].duration: …`).
fn ramp<'a>(run: &str, words: impl Iterator<Item = &'a str>) -> Result<ChatCommand, FieldError> {
    let (mut target, mut hold, mut over) = (None, None, "1s");
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(error(
                "chat",
                format!("unknown option {word:?} (known: vus=N, rps=N, for=5m, over=30s)"),
            ));
        };
        let key = key.to_ascii_lowercase();
        match key.as_str() {
            "vus" | "rps" => {
                // VUs are whole; a rate may have a fraction (0.5 is one every 2 s).
                let n: Option<serde_json::Value> = if key == "vus" {
                    value.parse::<u64>().ok().map(Into::into)
                } else {
                    value.parse::<f64>().ok().map(Into::into)
                };
                let n = n.ok_or_else(|| {
                    error(
                        &format!("chat.{key}"),
                        format!("must be a number, not {value:?}"),
                    )
                })?;
                target = Some((key, n));
            }
            "for" => hold = Some(value),
            "over" => over = value,
            _ => {
                return Err(error(
                    "chat",
                    format!("unknown option {word:?} (known: vus=N, rps=N, for=5m, over=30s)"),
                ))
            }
        }
    }
    let (key, n) = target.ok_or_else(|| error("chat.vus", "give the new load: vus=N or rps=N"))?;
    let hold = hold.ok_or_else(|| error("chat.for", "say how long to hold it: for=5m"))?;
    let stage = |duration: &str| serde_json::json!({"duration": duration, key.as_str(): n.clone()});
    Ok(ChatCommand::Command(Command::RampRun {
        run_id: run.into(),
        stages: serde_json::json!([stage(over), stage(hold)]),
    }))
}

fn error(path: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        path: path.into(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(
        test: &str,
        agents: Option<u32>,
        duration: Option<&str>,
        concurrent: bool,
    ) -> ChatCommand {
        ChatCommand::Command(Command::StartRun {
            test_id: Some(test.into()),
            plan: None,
            overrides: Overrides {
                agents,
                duration: duration.map(String::from),
            },
            allow_concurrent: concurrent,
        })
    }

    #[test]
    fn run_maps_to_a_start_of_the_stored_test_with_overrides() {
        assert_eq!(
            parse("run checkout-smoke agents=4"),
            Ok(start("checkout-smoke", Some(4), None, false))
        );
        assert_eq!(
            parse("  @herd RUN checkout-smoke Duration=30s concurrent\n"),
            Ok(start("checkout-smoke", None, Some("30s"), true))
        );
        assert_eq!(
            parse("herd run t allow_concurrent=false agents=2"),
            Ok(start("t", Some(2), None, false))
        );
    }

    #[test]
    fn stop_and_status_map_to_their_commands() {
        assert_eq!(
            parse("stop run-1 the target is down"),
            Ok(ChatCommand::Command(Command::StopRun {
                run_id: "run-1".into(),
                reason: Some("the target is down".into()),
            }))
        );
        assert_eq!(
            parse("stop run-1"),
            Ok(ChatCommand::Command(Command::StopRun {
                run_id: "run-1".into(),
                reason: Some("stopped from chat".into()),
            }))
        );
        assert_eq!(parse("status"), Ok(ChatCommand::Status));
    }

    #[test]
    fn ramp_maps_to_stages_that_ramp_then_hold() {
        assert_eq!(
            parse("ramp run-1 vus=50 over=30s for=5m"),
            Ok(ChatCommand::Command(Command::RampRun {
                run_id: "run-1".into(),
                stages: serde_json::json!([
                    {"duration": "30s", "vus": 50}, {"duration": "5m", "vus": 50}
                ]),
            }))
        );
        let Ok(ChatCommand::Command(Command::RampRun { stages, .. })) =
            parse("ramp r vus=8 for=10s")
        else {
            panic!("a ramp");
        };
        assert!(
            herd_protocol::plan::ramp_from_value(&stages).is_ok(),
            "{stages}"
        );
        let Ok(ChatCommand::Command(Command::RampRun { stages, .. })) =
            parse("herd ramp r RPS=200 for=1m")
        else {
            panic!("a ramp");
        };
        assert_eq!(
            herd_protocol::plan::ramp_from_value(&stages).map(|s| s.duration()),
            Ok(std::time::Duration::from_secs(61))
        );
    }

    #[test]
    fn mistakes_name_the_word_at_fault() {
        let cases = [
            ("", "chat", "empty command"),
            ("dance", "chat", "unknown command \"dance\""),
            ("run", "chat.test", "name the stored test"),
            ("run t agents=four", "chat.agents", "\"four\""),
            ("run t agents=0", "chat.agents", ">= 1"),
            ("run t agents", "chat.agents", "needs a value"),
            ("run t concurrent=maybe", "chat.concurrent", "true or false"),
            ("run t color=red", "chat", "unknown option \"color=red\""),
            ("stop", "chat.run", "name the run"),
            ("status now", "chat", "no arguments"),
            ("ramp", "chat.run", "name the run"),
            ("ramp r for=1m", "chat.vus", "vus=N or rps=N"),
            ("ramp r vus=5", "chat.for", "for=5m"),
            ("ramp r vus=many for=1m", "chat.vus", "\"many\""),
            (
                "ramp r vus=5 for=1m loud",
                "chat",
                "unknown option \"loud\"",
            ),
        ];
        for (text, path, needle) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.path, path, "{text}: {e:?}");
            assert!(e.message.contains(needle), "{text}: {}", e.message);
        }
    }
}
