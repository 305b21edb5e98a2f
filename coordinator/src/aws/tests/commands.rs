//! The SQS intake: raw and SNS-wrapped commands, repeats, rejections into the DLQ, chat text,
//! and a slow command's message kept invisible.

use super::*;

#[actix::test]
async fn raw_and_sns_wrapped_commands_each_start_a_run_announced_through_sns_with_attributes() {
    let aws = Aws::start().await;
    let service = Service::start(&aws, EventFormat::Json);
    aws.send(&start_run("c-raw", plan(1, 1))).await;
    aws.publish(&start_run("c-sns", plan(2, 2))).await;

    for queue in [&aws.events, &aws.events_raw] {
        let created = collect(&aws, queue, Duration::from_secs(20), |got| {
            got.iter().filter(|d| d.kind() == "run.created").count() == 2
        })
        .await;
        let mut by_command: HashMap<String, Delivered> = HashMap::new();
        for d in created.into_iter().filter(|d| d.kind() == "run.created") {
            by_command.insert(d.body["command_id"].as_str().unwrap_or("").into(), d);
        }
        for (command, agents) in [("c-raw", 1), ("c-sns", 2)] {
            let d = by_command.get(command).expect("a run.created per command");
            assert_eq!(d.body["agents"], agents, "{}", d.body);
            let run = d.body["run"].as_str().expect("run id");
            assert_eq!(
                d.attributes.get("event").map(String::as_str),
                Some("run.created")
            );
            assert_eq!(d.attributes.get("run").map(String::as_str), Some(run));
            assert!(
                !d.attributes.contains_key("test"),
                "an inline plan has no test"
            );
        }
    }
    assert_eq!(service.manager.view().active_runs, 2);
    aws.until_depth(&aws.commands, 0, Duration::from_secs(10))
        .await;
    service.stop().await;
}

#[actix::test]
async fn the_same_command_delivered_three_times_gives_one_run() {
    let aws = Aws::start().await;
    let service = Service::start(&aws, EventFormat::Json);
    let body = start_run("once", plan(1, 1));
    aws.send(&body).await;
    aws.send(&body).await;
    aws.publish(&body).await;
    aws.until_depth(&aws.commands, 0, Duration::from_secs(15))
        .await;
    let view = service.manager.view();
    assert_eq!((view.active_runs, view.commands_repeated), (1, 2));
    assert_eq!(service.store.list_runs(10).await.expect("runs").len(), 1);
    service.stop().await;
}

#[actix::test]
async fn malformed_and_invalid_commands_are_rejected_by_name_and_end_in_the_dlq() {
    let aws = Aws::start().await;
    let service = Service::start(&aws, EventFormat::Json);
    let mut events = service.local.subscribe();
    aws.send("{\"version\": 1, \"id\": \"broken\",").await;
    let mut bad = plan(1, 1);
    bad["load"]["stages"][0]["duration"] = "soon".into();
    aws.publish(&start_run("bad-plan", bad)).await;

    let problems = |got: &[Delivered]| -> Vec<String> {
        got.iter()
            .filter(|d| d.kind() == "command.rejected")
            .map(|d| {
                format!(
                    "{} {} {}",
                    d.body["command_id"], d.body["code"], d.body["message"]
                )
            })
            .collect()
    };
    let rejections = collect(&aws, &aws.events, Duration::from_secs(20), |got| {
        let p = problems(got);
        p.iter().any(|p| p.contains("broken") || p.contains("null"))
            && p.iter().any(|p| p.contains("bad-plan"))
    })
    .await;
    let problems = problems(&rejections);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("null") && p.contains("body: not valid JSON")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("bad-plan") && p.contains("plan.load.stages[0].duration")),
        "{problems:?}"
    );
    // Each is received twice (maxReceiveCount 2), then SQS moves it to the DLQ.
    aws.until_depth(&aws.dlq, 2, Duration::from_secs(30)).await;
    aws.until_depth(&aws.commands, 0, Duration::from_secs(5))
        .await;

    aws.send(&start_run("good", plan(1, 1))).await;
    let created = next_event(&mut events, |e| matches!(e.event, Event::RunCreated { .. })).await;
    assert_eq!(created.command_id.as_deref(), Some("good"));
    service.stop().await;
}

#[actix::test]
async fn chat_text_maps_onto_the_same_commands() {
    let aws = Aws::start().await;
    let service = Service::start(&aws, EventFormat::Json);
    let mut events = service.local.subscribe();
    let create = json!({"version": 1, "id": "c-create", "type": "create_test",
                        "test_id": "checkout-smoke", "name": "checkout smoke", "plan": plan(1, 1)});
    aws.send(&create.to_string()).await;
    aws.until_depth(&aws.commands, 0, Duration::from_secs(10))
        .await;

    aws.publish("run checkout-smoke agents=4").await;
    let created = next_event(&mut events, |e| matches!(e.event, Event::RunCreated { .. })).await;
    let Event::RunCreated { run, test, agents } = created.event else {
        unreachable!("picked a run.created")
    };
    assert_eq!((test.as_deref(), agents), (Some("checkout-smoke"), 4));
    assert!(
        created
            .command_id
            .as_deref()
            .is_some_and(|id| id.starts_with("chat-")),
        "{:?}",
        created.command_id
    );

    aws.send("status").await;
    let listing = next_event(&mut events, |e| matches!(e.event, Event::ActiveRuns { .. })).await;
    let Event::ActiveRuns { runs } = listing.event else {
        unreachable!("picked a runs.active")
    };
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].run.as_str(), runs[0].agents), (run.as_str(), 4));

    aws.publish("run checkout-smoke").await;
    let refused = next_event(&mut events, |e| {
        matches!(e.event, Event::CommandRejected { .. })
    })
    .await;
    let Event::CommandRejected { code, message } = refused.event else {
        unreachable!("picked a command.rejected")
    };
    assert_eq!(code, "conflict", "one run per test: {message}");

    aws.send(&format!("herd stop {run} enough")).await;
    let cancelled = next_event(&mut events, |e| {
        matches!(e.event, Event::RunCancelled { .. })
    })
    .await;
    assert_eq!(cancelled.event.run(), Some(run.as_str()));
    // The conflict was answered by its event: deleted, not left for the DLQ.
    aws.until_depth(&aws.commands, 0, Duration::from_secs(10))
        .await;
    assert_eq!(aws.depth(&aws.dlq).await, 0);
    service.stop().await;
}

#[actix::test]
async fn a_command_in_progress_keeps_its_message_invisible_past_the_timeout() {
    let aws = Aws::start().await;
    aws.send("slow").await;
    let first = aws
        .sqs
        .receive_message()
        .queue_url(&aws.commands)
        .visibility_timeout(VISIBILITY.as_secs() as i32)
        .wait_time_seconds(5)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default();
    let receipt = first
        .first()
        .and_then(|m| m.receipt_handle())
        .expect("the message")
        .to_string();
    let intake = SqsIntake::new(
        &aws.sdk,
        &SqsCommands {
            queue_url: aws.commands.clone(),
            wait_time: Duration::from_secs(1),
            visibility_timeout: VISIBILITY,
        },
    );
    // Work that lasts 2.5 visibility timeouts; another consumer polls the queue meanwhile.
    let work = tokio::time::sleep(VISIBILITY * 5 / 2);
    let other = async {
        let mut seen = 0;
        let deadline = tokio::time::Instant::now() + VISIBILITY * 2;
        while tokio::time::Instant::now() < deadline {
            let out = aws
                .sqs
                .receive_message()
                .queue_url(&aws.commands)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            seen += out.messages.unwrap_or_default().len();
        }
        seen
    };
    let ((), seen) = tokio::join!(intake.holding(&receipt, work), other);
    assert_eq!(
        seen, 0,
        "the message was handed to another consumer mid-command"
    );
    aws.sqs
        .delete_message()
        .queue_url(&aws.commands)
        .receipt_handle(&receipt)
        .send()
        .await
        .expect("the receipt is still valid");
    assert_eq!(aws.depth(&aws.commands).await, 0);
}
