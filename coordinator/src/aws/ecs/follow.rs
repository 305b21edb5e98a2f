//! Following a run's tasks with `DescribeTasks`, so the run hears when an agent's task stops.
//!
//! MQTT's last will and the heartbeat timeout notice a lost agent too, but only after seconds of
//! silence and without a cause; ECS knows at once, and says why (`stoppedReason`, the container's
//! exit code: out of memory, an image that cannot be pulled, a failing health check). One poll per
//! interval, 100 tasks per call (the API's cap), until every task has stopped, the run was
//! stopped, or nobody listens any more.

use super::runs::{lock, Runs};
use crate::launcher::AgentExited;
use aws_sdk_ecs::types::Task;
use herd_protocol::RunId;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

/// Tasks per `DescribeTasks` call (the API's cap).
const DESCRIBE_MAX: usize = 100;

/// One region's cluster, and the key its tasks carry in the run's bookkeeping.
pub(super) struct Target {
    pub(super) client: aws_sdk_ecs::Client,
    pub(super) cluster: String,
    pub(super) place: String,
}

/// Follows the run's tasks in one region (one follower per region a run uses).
pub(super) async fn follow(
    target: Target,
    runs: Runs,
    run: RunId,
    events: mpsc::UnboundedSender<AgentExited>,
    every: Duration,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if events.is_closed() {
            return;
        }
        let pending: Vec<String> = {
            let runs = lock(&runs);
            let Some(tasks) = runs.get(&run).filter(|t| !t.stopped) else {
                return;
            };
            tasks
                .tasks
                .keys()
                .filter(|arn| !tasks.exited.contains(*arn))
                .filter(|arn| tasks.places.get(*arn).map_or("", String::as_str) == target.place)
                .cloned()
                .collect()
        };
        if pending.is_empty() {
            return;
        }
        for chunk in pending.chunks(DESCRIBE_MAX) {
            let described = target
                .client
                .describe_tasks()
                .cluster(&target.cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await;
            let output = match described {
                Ok(output) => output,
                Err(e) => {
                    tracing::warn!(%run, error = %crate::aws::sdk_error_text(&e), "DescribeTasks failed; trying again");
                    continue;
                }
            };
            for task in output.tasks() {
                if task.last_status() == Some("STOPPED") {
                    if let Some(arn) = task.task_arn() {
                        report(&runs, &run, &events, arn, exit_of(task));
                    }
                }
            }
            for failure in output.failures() {
                if let (Some(arn), Some("MISSING")) = (failure.arn(), failure.reason()) {
                    let detail = format!("ECS task {} is missing", short(arn));
                    report(&runs, &run, &events, arn, (false, detail));
                }
            }
        }
    }
}

/// Tells the run about a stopped task, once.
fn report(
    runs: &Runs,
    run: &RunId,
    events: &mpsc::UnboundedSender<AgentExited>,
    arn: &str,
    (success, detail): (bool, String),
) {
    let agent = {
        let mut runs = lock(runs);
        let Some(tasks) = runs.get_mut(run) else {
            return;
        };
        if !tasks.exited.insert(arn.to_owned()) {
            return;
        }
        tasks.tasks.get(arn).cloned()
    };
    if let Some(agent) = agent {
        tracing::info!(%run, %agent, %detail, "agent task stopped");
        let _ = events.send(AgentExited {
            agent,
            success,
            detail,
        });
    }
}

/// Whether a stopped task's containers all exited 0, and a line saying how it ended.
fn exit_of(task: &Task) -> (bool, String) {
    let codes: Vec<Option<i32>> = task.containers().iter().map(|c| c.exit_code()).collect();
    let success = !codes.is_empty() && codes.iter().all(|c| *c == Some(0));
    let code = match codes.as_slice() {
        [Some(c)] => format!("exit code {c}"),
        [None] | [] => "no exit code".to_owned(),
        many => format!(
            "exit codes {}",
            many.iter()
                .map(|c| c.map_or_else(|| "none".to_owned(), |c| c.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let reason = task.stopped_reason().unwrap_or("no reason given");
    let arn = task.task_arn().unwrap_or("?");
    (
        success,
        format!("ECS task {} stopped: {reason}; {code}", short(arn)),
    )
}

/// The task id at the end of its ARN.
fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::Container;

    fn task(codes: &[Option<i32>], reason: Option<&str>) -> Task {
        let mut t = Task::builder()
            .task_arn("arn:aws:ecs:us-east-1:123456789012:task/herd/abc123")
            .last_status("STOPPED")
            .set_stopped_reason(reason.map(str::to_owned));
        for code in codes {
            t = t.containers(Container::builder().set_exit_code(*code).build());
        }
        t.build()
    }

    #[test]
    fn a_stopped_task_says_how_it_ended() {
        assert_eq!(
            exit_of(&task(
                &[Some(0)],
                Some("Essential container in task exited")
            )),
            (
                true,
                "ECS task abc123 stopped: Essential container in task exited; exit code 0".into()
            )
        );
        assert_eq!(
            exit_of(&task(&[Some(137)], Some("OutOfMemoryError"))),
            (
                false,
                "ECS task abc123 stopped: OutOfMemoryError; exit code 137".into()
            )
        );
        assert_eq!(
            exit_of(&task(&[None], None)),
            (
                false,
                "ECS task abc123 stopped: no reason given; no exit code".into()
            )
        );
        assert_eq!(
            exit_of(&task(&[Some(0), None], None)).1,
            "ECS task abc123 stopped: no reason given; exit codes 0, none"
        );
    }
}
