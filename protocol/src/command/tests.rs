//! Round trips of every command and event, and the `start_run` shape other systems rely on.

use super::*;
use crate::event::{Event, EventMessage};
use crate::wire::{decode, encode};
use proptest::prelude::*;
use serde_json::json;

fn schedule() -> impl Strategy<Value = Option<Schedule>> {
    prop_oneof![
        Just(None),
        "[0-9:TZ-]{1,20}".prop_map(|at| Some(Schedule::At { at })),
        (
            prop_oneof![
                Just(Every::Daily),
                Just(Every::Weekly),
                Just(Every::Biweekly),
                Just(Every::Monthly)
            ],
            "[a-zA-Z/_]{1,20}",
            proptest::option::of("[0-9:TZ-]{1,20}")
        )
            .prop_map(|(every, tz, until)| Some(Schedule::Recurring {
                every,
                start: "2026-01-01T09:00:00Z".into(),
                tz,
                until
            })),
        ("[0-9*/, -]{1,20}", proptest::option::of("[0-9:TZ-]{1,20}")).prop_map(|(expr, until)| {
            Some(Schedule::Cron {
                expr,
                tz: "UTC".into(),
                until,
            })
        }),
    ]
}

fn spec() -> impl Strategy<Value = TestSpec> {
    (
        "[a-z ]{1,12}",
        proptest::collection::vec("[a-z]{1,6}", 0..3),
        schedule(),
        0u32..100,
    )
        .prop_map(|(name, tags, schedule, vus)| TestSpec {
            name,
            plan: json!({"version": 1, "load": {"stages": [{"duration": "1s", "vus": vus}]}}),
            tags,
            schedule,
        })
}

fn command() -> impl Strategy<Value = Command> {
    let id = "[a-z0-9-]{1,12}";
    prop_oneof![
        (proptest::option::of(id), spec())
            .prop_map(|(test_id, test)| Command::CreateTest { test_id, test }),
        (id, spec()).prop_map(|(test_id, test)| Command::UpdateTest { test_id, test }),
        id.prop_map(|test_id| Command::DeleteTest { test_id }),
        (
            proptest::option::of(id),
            proptest::option::of(1u32..10),
            proptest::option::of("[0-9]{1,3}s"),
            any::<bool>()
        )
            .prop_map(|(test_id, agents, duration, allow_concurrent)| {
                let plan = test_id.is_none().then(|| json!({"name": "x"}));
                Command::StartRun {
                    test_id,
                    plan,
                    overrides: Overrides { agents, duration },
                    allow_concurrent,
                }
            }),
        (id, proptest::option::of("[a-z ]{0,10}"))
            .prop_map(|(run_id, reason)| Command::StopRun { run_id, reason }),
        (id, 0u32..100).prop_map(|(run_id, vus)| Command::RampRun {
            run_id,
            stages: json!([{"duration": "10s", "vus": vus}]),
        }),
        (id, schedule()).prop_map(|(test_id, schedule)| Command::Schedule { test_id, schedule }),
        (id, id).prop_map(|(test_id, run_id)| Command::SetBaseline { test_id, run_id }),
    ]
}

/// A structural check of a command against the schema: its `type` is one the schema lists, and it
/// carries every field the schema requires of that type and of every message.
fn conforms(schema: &serde_json::Value, message: &serde_json::Value) -> Result<(), String> {
    let required = |s: &serde_json::Value| -> Vec<String> {
        s["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    };
    let kind = &message["type"];
    let variant = schema["oneOf"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| &v["properties"]["type"]["const"] == kind)
        .ok_or_else(|| format!("type {kind} is not in the schema"))?;
    for field in required(schema).into_iter().chain(required(variant)) {
        if message.get(&field).is_none() {
            return Err(format!("{kind}: the schema requires {field}: {message}"));
        }
    }
    for field in message.as_object().into_iter().flatten().map(|(k, _)| k) {
        if schema["properties"].get(field).is_none() && variant["properties"].get(field).is_none() {
            return Err(format!("{kind}: {field} is not in the schema"));
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn every_command_conforms_to_the_schema(id in "[a-zA-Z0-9-]{1,40}", command in command()) {
        let message = serde_json::to_value(CommandMessage { version: 1, id, command }).expect("json");
        prop_assert_eq!(conforms(&json_schema(), &message), Ok(()));
    }

    #[test]
    fn commands_round_trip(id in "[a-zA-Z0-9-]{1,40}", command in command()) {
        let message = CommandMessage { version: 1, id, command };
        prop_assert_eq!(decode::<CommandMessage>(&encode(&message)).ok(), Some(message));
    }

    #[test]
    fn events_round_trip(run in "[a-z0-9-]{1,12}", at_ms in 0u64..u64::MAX / 2, agents in 0u32..100) {
        for event in [
            Event::RunCreated { run: run.clone(), test: Some("t".into()), agents },
            Event::RunStarted { run: run.clone(), test: None },
            Event::RunProgress {
                run: run.clone(), test: None, elapsed_s: 3.0, planned_s: 10.0,
                agents_live: agents, requests: at_ms, errors: 1, last_second: None,
            },
            Event::AgentLost { run: run.clone(), agent: "agent-0".into() },
            Event::ActiveRuns { runs: vec![crate::event::ActiveRun {
                run: run.clone(), test: Some("t".into()), phase: "running".into(), agents,
                elapsed_s: 1.5, planned_s: 10.0, requests: 7, errors: 0,
            }] },
            Event::ScheduleSkipped { test: "t".into(), due_ms: at_ms, reason: "busy".into() },
            Event::CommandRejected { code: "invalid".into(), message: "plan.name: missing".into() },
            Event::AuditWrite { id: "w1".into(), actor: "tok-1".into(), action: "POST /api/v1/runs".into(), status: 201 },
        ] {
            let message = EventMessage { version: 1, at_ms, command_id: Some(run.clone()), event };
            prop_assert_eq!(decode::<EventMessage>(&encode(&message)).ok(), Some(message));
        }
    }
}

#[test]
fn the_queue_start_run_shape_is_understood() {
    let body = br#"{"version":1,"id":"ci-42","type":"start_run","plan":{"name":"p"}}"#;
    let message: CommandMessage = decode(body).expect("the contract shape decodes");
    assert_eq!(message.id, "ci-42");
    assert_eq!(
        message.command,
        Command::StartRun {
            test_id: None,
            plan: Some(json!({"name": "p"})),
            overrides: Overrides::default(),
            allow_concurrent: false,
        }
    );
    assert!(message.check().is_ok());
    let out: serde_json::Value = serde_json::from_slice(&encode(&message)).expect("json");
    assert_eq!(
        out,
        json!({"version": 1, "id": "ci-42", "type": "start_run", "plan": {"name": "p"}})
    );
}

#[test]
fn envelopes_are_checked() {
    let bad = |text: &str| {
        let m: CommandMessage = decode(text.as_bytes()).expect("decodes");
        m.check().expect_err("refused").path
    };
    assert_eq!(
        bad(r#"{"version":1,"id":"","type":"delete_test","test_id":"t"}"#),
        "id"
    );
    assert_eq!(bad(r#"{"version":1,"id":"a","type":"start_run"}"#), "plan");
    assert_eq!(
        bad(r#"{"version":1,"id":"a","type":"start_run","test_id":"t","plan":{}}"#),
        "plan"
    );
    let err =
        decode::<CommandMessage>(br#"{"version":2,"id":"a","type":"delete_test","test_id":"t"}"#)
            .expect_err("version 2 is refused");
    assert!(err.to_string().contains("unsupported message version 2"));
    assert!(decode::<CommandMessage>(br#"{"version":1,"id":"a","type":"explode"}"#).is_err());
}

#[test]
fn event_names_match_their_json_type() {
    let event = Event::AgentLost {
        run: "r".into(),
        agent: "a".into(),
    };
    let json = serde_json::to_value(&event).expect("json");
    assert_eq!(json["type"], event.name());
    assert_eq!(event.run(), Some("r"));
    let listing = Event::ActiveRuns { runs: Vec::new() };
    let json = serde_json::to_value(&listing).expect("json");
    assert_eq!(json["type"], listing.name());
}

/// `docs/commands.schema.json` is what [`json_schema`] generates: a change to the command types
/// that is not carried into the checked-in file fails here. `HERD_BLESS=1` rewrites the file.
#[test]
fn the_checked_in_command_schema_is_the_generated_one() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/commands.schema.json");
    let generated = serde_json::to_string_pretty(&json_schema()).expect("schema JSON") + "\n";
    if std::env::var_os("HERD_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/commands.schema.json");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is stale: regenerate it with `HERD_BLESS=1 cargo test -p herd-protocol command_schema`",
        path.display()
    );
}
