//! The SNS sink: events in order, with attributes, as JSON and as AWS Chatbot notifications, and
//! a full queue that drops and counts.

use super::*;

#[actix::test]
async fn events_reach_subscribers_in_order_and_as_chatbot_notifications() {
    let aws = Aws::start().await;
    let sink = aws.sink(EventFormat::Json);
    for i in 0..25 {
        let event = Event::AgentLost {
            run: "run-ordered".into(),
            agent: format!("agent-{i}"),
        };
        sink.emit(crate::events::message(event, None, 1000 + i));
    }
    assert!(
        sink.flush(Duration::from_secs(20)).await,
        "published in time"
    );
    let got = collect(&aws, &aws.events_raw, Duration::from_secs(20), |got| {
        got.len() == 25
    })
    .await;
    let agents: Vec<String> = got
        .iter()
        .map(|d| d.body["agent"].as_str().unwrap_or("").into())
        .collect();
    let expected: Vec<String> = (0..25).map(|i| format!("agent-{i}")).collect();
    assert_eq!(agents, expected);

    let chatbot = aws.sink(EventFormat::Chatbot);
    let event = Event::CommandRejected {
        code: "invalid".into(),
        message: "plan.agents: must be >= 1".into(),
    };
    chatbot.emit(crate::events::message(event, Some("c-7".into()), 1));
    assert!(chatbot.flush(Duration::from_secs(20)).await);
    let got = collect(&aws, &aws.events, Duration::from_secs(20), |got| {
        got.len() >= 26
    })
    .await;
    let last = got.last().expect("the chatbot notification");
    assert_eq!(last.body["version"], "1.0");
    assert_eq!(last.body["source"], "custom");
    assert_eq!(
        last.body["content"]["description"],
        "plan.agents: must be >= 1"
    );
    assert_eq!(
        last.attributes.get("event").map(String::as_str),
        Some("command.rejected")
    );
    assert_eq!(
        sink.stats()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[actix::test]
async fn a_full_queue_drops_events_and_counts_them() {
    let aws = Aws::start().await;
    let cfg = SnsSettings {
        topic_arn: aws.events_topic.clone(),
        format: EventFormat::Json,
        progress_interval: None,
    };
    let sink = SnsEvents::with_queue(&aws.sdk, &cfg, 4);
    // The actix test runtime has one thread: the publisher cannot run while this loop does.
    for i in 0..10 {
        let event = Event::AgentLost {
            run: "run-full".into(),
            agent: format!("agent-{i}"),
        };
        sink.emit(crate::events::message(event, None, i));
    }
    assert!(sink.flush(Duration::from_secs(20)).await);
    let stats = sink.stats();
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!((count(&stats.published), count(&stats.dropped)), (4, 6));
}
