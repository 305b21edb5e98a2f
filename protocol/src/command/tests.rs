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
        (id, schedule()).prop_map(|(test_id, schedule)| Command::Schedule { test_id, schedule }),
        (id, id).prop_map(|(test_id, run_id)| Command::SetBaseline { test_id, run_id }),
    ]
}

proptest! {
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
            Event::AgentLost { run: run.clone(), agent: "agent-0".into() },
            Event::ScheduleSkipped { test: "t".into(), due_ms: at_ms, reason: "busy".into() },
            Event::CommandRejected { code: "invalid".into(), message: "plan.name: missing".into() },
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
}
