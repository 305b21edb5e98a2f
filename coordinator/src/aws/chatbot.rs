//! Events as AWS Chatbot custom notifications, so an ops channel subscribed to the events topic
//! shows them readably (`[events] format = "chatbot"`).
//!
//! The shape is Chatbot's custom notification schema (Amazon Q Developer in chat applications):
//! `{"version": "1.0", "source": "custom", "id", "content": {"textType": "client-markdown",
//! "title", "description", "keywords"}, "metadata": {"threadId", "summary", "eventType",
//! "relatedResources", "additionalContext": {string: string}}}`. `version` must be `1.0` and
//! `source` must be `custom`, or Chatbot ignores the message. A run's notifications share its id
//! as `threadId`, so a channel that allows threads groups each run's story in one thread.

use herd_protocol::event::{Event, EventMessage};
use herd_protocol::summary::{Summary, Verdict};
use serde_json::{json, Map, Value};

/// The Chatbot custom notification of an event.
pub fn notification(message: &EventMessage) -> Value {
    let event = &message.event;
    let (title, description) = text(event, message.command_id.as_deref());
    let mut context = Map::new();
    context.insert("event".into(), event.name().into());
    if let Some(run) = event.run() {
        context.insert("run".into(), run.into());
    }
    if let Some(test) = event.test() {
        context.insert("test".into(), test.into());
    }
    if let Some(command) = &message.command_id {
        context.insert("command".into(), command.clone().into());
    }
    let mut keywords = vec![Value::from(event.name())];
    keywords.extend(event.test().map(Value::from));
    let mut metadata = json!({
        "summary": title,
        "eventType": event.name(),
        "relatedResources": event.run().into_iter().collect::<Vec<_>>(),
        "additionalContext": context,
    });
    if let Some(run) = event.run() {
        metadata["threadId"] = run.into();
    }
    json!({
        "version": "1.0",
        "source": "custom",
        "id": format!("{}-{}", event.name(), message.at_ms),
        "content": {
            "textType": "client-markdown",
            "title": title,
            "description": description,
            "keywords": keywords,
        },
        "metadata": metadata,
    })
}

fn of_test(test: Option<&String>) -> String {
    test.map(|t| format!(" of test `{t}`")).unwrap_or_default()
}

fn text(event: &Event, command: Option<&str>) -> (String, String) {
    match event {
        Event::RunCreated { run, test, agents } => (
            format!("herd: run {run} created"),
            format!(
                "Run `{run}`{} is launching {agents} agents.",
                of_test(test.as_ref())
            ),
        ),
        Event::RunStarted { run, test } => (
            format!("herd: run {run} started"),
            format!(
                "The load of run `{run}`{} has started.",
                of_test(test.as_ref())
            ),
        ),
        Event::RunProgress {
            run,
            elapsed_s,
            planned_s,
            requests,
            errors,
            last_second,
            ..
        } => {
            let last = last_second
                .as_ref()
                .map(|s| {
                    format!(
                        "\nLast second: {} requests, p50 {:.1} ms, p99 {:.1} ms.",
                        s.requests, s.p50_ms, s.p99_ms
                    )
                })
                .unwrap_or_default();
            (
                format!("herd: run {run} at {elapsed_s:.0} s of {planned_s:.0} s"),
                format!("{requests} requests, {errors} errors so far.{last}"),
            )
        }
        Event::RunCompleted { run, summary, .. } => {
            let (mark, verdict) = match summary.status {
                Verdict::Passed => ("✅", "passed"),
                Verdict::Failed => ("❌", "failed its thresholds"),
                Verdict::Error => ("⚠️", "ended with an error"),
            };
            (
                format!("{mark} herd: run {run} {verdict}"),
                figures(summary),
            )
        }
        Event::RunFailed {
            run,
            reason,
            summary,
            ..
        } => (
            format!("🔥 herd: run {run} failed"),
            format!("Reason: {reason}\n{}", figures(summary)),
        ),
        Event::RunCancelled { run, summary, .. } => (
            format!("⏹️ herd: run {run} cancelled"),
            format!("Results until the stop:\n{}", figures(summary)),
        ),
        Event::ThresholdBreached { run, failed, .. } => (
            format!("❌ herd: run {run} breached {} threshold(s)", failed.len()),
            failed
                .iter()
                .map(|t| format!("• `{}` (measured {:.2})", t.expr, t.actual))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Event::AgentLost { run, agent } => (
            format!("⚠️ herd: agent {agent} of run {run} lost"),
            format!(
                "Agent `{agent}` stopped reporting; the run goes on without it, \
                 and its results until the loss are kept."
            ),
        ),
        Event::ScheduleSkipped { test, reason, .. } => (
            format!("⏭️ herd: a scheduled run of {test} was skipped"),
            reason.clone(),
        ),
        Event::ActiveRuns { runs } => (
            format!("herd: {} active run(s)", runs.len()),
            if runs.is_empty() {
                "No run is active.".into()
            } else {
                runs.iter()
                    .map(|r| {
                        format!(
                            "• `{}`{}: {}, {} agents, {:.0} s of {:.0} s, {} requests, {} errors",
                            r.run,
                            of_test(r.test.as_ref()),
                            r.phase,
                            r.agents,
                            r.elapsed_s,
                            r.planned_s,
                            r.requests,
                            r.errors
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            },
        ),
        Event::CommandRejected { code, message } => (
            format!(
                "🚫 herd: command {} rejected ({code})",
                command.unwrap_or("without an id")
            ),
            message.clone(),
        ),
        Event::AuditWrite {
            actor,
            action,
            status,
            ..
        } => (
            format!("📝 herd: {action} by {actor}"),
            format!("{action} by {actor}: HTTP {status}"),
        ),
    }
}

fn figures(s: &Summary) -> String {
    let mut text = format!(
        "*{}*: {} requests in {:.1} s ({:.1}/s), {} errors ({:.2} %).\n\
         Latency p50 {:.1} ms · p95 {:.1} ms · p99 {:.1} ms · max {:.1} ms.",
        s.name,
        s.requests,
        s.duration_s,
        s.rps,
        s.errors,
        s.error_rate,
        s.latency_ms.p50,
        s.latency_ms.p95,
        s.latency_ms.p99,
        s.latency_ms.max
    );
    for t in &s.thresholds {
        let mark = if t.passed { "✓" } else { "✗" };
        text.push_str(&format!("\n{mark} `{}` (measured {:.2})", t.expr, t.actual));
    }
    if !s.lost_agents.is_empty() {
        text.push_str(&format!("\nLost agents: {}", s.lost_agents.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use herd_protocol::summary::ThresholdResult;

    fn message(event: Event, command: Option<&str>) -> EventMessage {
        EventMessage {
            version: 1,
            at_ms: 1_700_000_000_000,
            command_id: command.map(String::from),
            event,
        }
    }

    #[test]
    fn a_notification_has_the_fields_chatbot_requires_and_threads_by_run() {
        let n = notification(&message(
            Event::RunCreated {
                run: "run-1".into(),
                test: Some("checkout".into()),
                agents: 4,
            },
            Some("c-1"),
        ));
        assert_eq!(n["version"], "1.0");
        assert_eq!(n["source"], "custom");
        assert_eq!(n["content"]["textType"], "client-markdown");
        assert_eq!(n["content"]["title"], "herd: run run-1 created");
        let description = n["content"]["description"].as_str().expect("text");
        assert!(description.contains("`checkout`") && description.contains("4 agents"));
        assert_eq!(n["metadata"]["threadId"], "run-1");
        assert_eq!(n["metadata"]["eventType"], "run.created");
        assert_eq!(
            n["metadata"]["additionalContext"],
            json!({"event": "run.created", "run": "run-1", "test": "checkout", "command": "c-1"})
        );
        for value in n["metadata"]["additionalContext"]
            .as_object()
            .expect("map")
            .values()
        {
            assert!(value.is_string(), "Chatbot takes string values only");
        }
    }

    #[test]
    fn a_rejection_names_the_command_and_the_problem() {
        let n = notification(&message(
            Event::CommandRejected {
                code: "invalid".into(),
                message: "plan.load.stages[0].vus: must be > 0".into(),
            },
            Some("c-9"),
        ));
        assert_eq!(
            n["content"]["title"],
            "🚫 herd: command c-9 rejected (invalid)"
        );
        assert_eq!(
            n["content"]["description"],
            "plan.load.stages[0].vus: must be > 0"
        );
        assert!(n["metadata"].get("threadId").is_none());
    }

    #[test]
    fn a_breach_lists_each_failed_threshold() {
        let n = notification(&message(
            Event::ThresholdBreached {
                run: "run-2".into(),
                test: None,
                failed: vec![ThresholdResult {
                    expr: "p99 < 100ms".into(),
                    applies_to: "the whole run".into(),
                    actual: 250.0,
                    passed: false,
                }],
            },
            None,
        ));
        assert_eq!(
            n["content"]["description"],
            "• `p99 < 100ms` (measured 250.00)"
        );
    }
}
