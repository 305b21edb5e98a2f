//! Agents as ECS Fargate tasks: the AWS [`Launcher`].
//!
//! Every agent is one task of the configured task definition, whose container runs the `herd`
//! image with the agent's arguments as its command override: `agent --broker URL --run RUN
//! --agent ID` (the container's entrypoint is `herd`; certificates for IoT Core come from the
//! task definition, as `HERD_MQTT_*` environment secrets). Container overrides apply to every
//! task one `RunTask` call starts, and every agent needs its own id, so each call starts one task;
//! at most ten calls are in flight at once (ten being also the API's cap of tasks per call).
//! Tasks carry the run in `startedBy` (when the run id fits its 36 characters), in their group
//! `herd:RUN` and in the tags `herd:run` / `herd:agent`, so they can be found from the console
//! and by a later coordinator.
//!
//! Transient refusals are retried ([`retry`]); when some agent cannot be started the launch fails
//! naming how many did start and why, and the ones that did are stopped again. A follower
//! ([`follow`]) then polls `DescribeTasks` and reports each task that reaches `STOPPED` to the
//! run, with its exit code and stop reason. [`Launcher::stop`] stops every task of the run.

mod follow;
pub mod retry;
mod runs;
#[cfg(test)]
mod tests;

use crate::config::EcsSettings;
use crate::launcher::{AgentExited, BoxFuture, LaunchError, LaunchSpec, Launched, Launcher};
use aws_config::SdkConfig;
use aws_sdk_ecs::error::{ProvideErrorMetadata as _, SdkError};
use aws_sdk_ecs::operation::run_task::{RunTaskError, RunTaskOutput};
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, DesiredStatus, LaunchType,
    NetworkConfiguration, Tag, TaskOverride,
};
use herd_protocol::{AgentId, RunId};
use retry::{Attempt, Backoff};
use runs::{lock, RunTasks, Runs};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// `RunTask` and `StopTask` calls in flight at once (and the API's cap of tasks per `RunTask`).
const PARALLEL_CALLS: usize = 10;
/// Longest `startedBy` ECS accepts.
const STARTED_BY_MAX: usize = 36;

/// How patient the launcher is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcsTimings {
    /// Backoff for transient `RunTask` refusals.
    pub backoff: Backoff,
    /// How often `DescribeTasks` checks whether a run's tasks are still running.
    pub follow_interval: Duration,
}

impl Default for EcsTimings {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            follow_interval: Duration::from_secs(5),
        }
    }
}

/// Launches agents as ECS Fargate tasks; see the module docs.
#[derive(Clone)]
pub struct EcsLauncher {
    client: aws_sdk_ecs::Client,
    settings: Arc<EcsSettings>,
    timings: EcsTimings,
    runs: Runs,
}

impl EcsLauncher {
    /// A launcher for `[launcher] kind = "ecs"`, with the default timings.
    pub fn new(sdk: &SdkConfig, settings: EcsSettings) -> Self {
        Self::with_timings(sdk, settings, EcsTimings::default())
    }

    /// The same with other timings (tests follow tasks more often than every 5 s).
    pub fn with_timings(sdk: &SdkConfig, settings: EcsSettings, timings: EcsTimings) -> Self {
        Self {
            client: aws_sdk_ecs::Client::new(sdk),
            settings: Arc::new(settings),
            timings,
            runs: Arc::default(),
        }
    }

    /// Starts one agent's task, retrying transient refusals; its ARN, or why not.
    async fn run_one(
        &self,
        run: RunId,
        agent: AgentId,
        broker_url: String,
    ) -> Result<String, String> {
        let s = &self.settings;
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(s.subnets.clone()))
            .set_security_groups(Some(s.security_groups.clone()))
            .assign_public_ip(if s.assign_public_ip {
                AssignPublicIp::Enabled
            } else {
                AssignPublicIp::Disabled
            })
            .build()
            .map_err(|e| format!("launcher.subnets: {e}"))?;
        let network = NetworkConfiguration::builder()
            .awsvpc_configuration(vpc)
            .build();
        let overrides = TaskOverride::builder()
            .container_overrides(
                ContainerOverride::builder()
                    .name(&s.container_name)
                    .set_command(Some(agent_command(&broker_url, &run, &agent)))
                    .build(),
            )
            .build();
        retry::with_backoff(&self.timings.backoff, || {
            let mut call = self
                .client
                .run_task()
                .cluster(&s.cluster)
                .task_definition(&s.task_definition)
                .launch_type(LaunchType::Fargate)
                .count(1)
                .network_configuration(network.clone())
                .overrides(overrides.clone())
                .group(format!("herd:{run}"))
                .tags(Tag::builder().key("herd:run").value(run.as_str()).build())
                .tags(
                    Tag::builder()
                        .key("herd:agent")
                        .value(agent.as_str())
                        .build(),
                );
            if run.as_str().len() <= STARTED_BY_MAX {
                call = call.started_by(run.as_str());
            }
            async move { classify(call.send().await) }
        })
        .await
    }

    /// Stops tasks, ten calls at a time; failures are logged (the task may be gone already).
    async fn stop_tasks(&self, run: &RunId, arns: Vec<String>, reason: &str) {
        for wave in arns.chunks(PARALLEL_CALLS) {
            let mut calls = JoinSet::new();
            for arn in wave {
                let call = self
                    .client
                    .stop_task()
                    .cluster(&self.settings.cluster)
                    .task(arn)
                    .reason(reason);
                let arn = arn.clone();
                calls.spawn(async move { (arn, call.send().await) });
            }
            while let Some(done) = calls.join_next().await {
                match done {
                    Ok((_, Ok(_))) => {}
                    Ok((arn, Err(e))) => {
                        tracing::warn!(%run, task = %arn, error = %super::sdk_error_text(&e), "StopTask failed");
                    }
                    Err(e) => tracing::warn!(%run, error = %e, "StopTask call panicked"),
                }
            }
        }
    }

    /// Tasks of the run still running that this process may not know of (started by an earlier
    /// coordinator process): found by `startedBy`.
    async fn listed_tasks(&self, run: &RunId) -> Vec<String> {
        if run.as_str().len() > STARTED_BY_MAX {
            return Vec::new();
        }
        let mut arns = Vec::new();
        let mut next = None;
        loop {
            let page = self
                .client
                .list_tasks()
                .cluster(&self.settings.cluster)
                .started_by(run.as_str())
                .desired_status(DesiredStatus::Running)
                .set_next_token(next)
                .send()
                .await;
            match page {
                Ok(page) => {
                    arns.extend(page.task_arns().iter().cloned());
                    next = page.next_token().map(str::to_owned);
                    if next.is_none() {
                        return arns;
                    }
                }
                Err(e) => {
                    tracing::warn!(%run, error = %super::sdk_error_text(&e), "ListTasks failed");
                    return arns;
                }
            }
        }
    }

    async fn launch_all(
        &self,
        spec: LaunchSpec,
        events: mpsc::UnboundedSender<AgentExited>,
    ) -> Result<Vec<Launched>, LaunchError> {
        let run = spec.run.clone();
        lock(&self.runs).insert(
            run.clone(),
            RunTasks {
                launching: true,
                ..RunTasks::default()
            },
        );
        let mut launched = Vec::with_capacity(spec.agents.len());
        let mut refused: Option<String> = None;
        for wave in spec.agents.chunks(PARALLEL_CALLS) {
            let mut calls = JoinSet::new();
            for agent in wave {
                let (this, run, agent) = (self.clone(), run.clone(), agent.clone());
                let broker = spec.broker_url.clone();
                calls.spawn(async move {
                    let result = this.run_one(run, agent.clone(), broker).await;
                    (agent, result)
                });
            }
            while let Some(done) = calls.join_next().await {
                match done {
                    Ok((agent, Ok(arn))) => {
                        if let Some(tasks) = lock(&self.runs).get_mut(&run) {
                            tasks.tasks.insert(arn.clone(), agent.clone());
                        }
                        launched.push(Launched { agent, handle: arn });
                    }
                    Ok((agent, Err(reason))) => {
                        refused.get_or_insert(format!("{agent}: {reason}"));
                    }
                    Err(e) => {
                        refused.get_or_insert(format!("a RunTask call panicked: {e}"));
                    }
                }
            }
            if refused.is_some() {
                break;
            }
            if lock(&self.runs).get(&run).is_some_and(|t| t.stopped) {
                refused = Some("the run was stopped while its agents were launching".into());
                break;
            }
        }
        let stopped_meanwhile = {
            let mut runs = lock(&self.runs);
            let stopped = runs.get(&run).is_none_or(|t| t.stopped);
            if let Some(tasks) = runs.get_mut(&run) {
                tasks.launching = false;
            }
            if refused.is_some() || stopped {
                runs.remove(&run);
            }
            stopped
        };
        if stopped_meanwhile && refused.is_none() {
            refused = Some("the run was stopped while its agents were launching".into());
        }
        if let Some(reason) = refused {
            let started = launched.len();
            let arns = launched.into_iter().map(|l| l.handle).collect();
            self.stop_tasks(&run, arns, "herd: the run's launch failed")
                .await;
            return Err(LaunchError::Refused {
                started,
                requested: spec.agents.len(),
                reason,
            });
        }
        tokio::spawn(follow::follow(
            self.client.clone(),
            self.settings.cluster.clone(),
            Arc::clone(&self.runs),
            run,
            events,
            self.timings.follow_interval,
        ));
        Ok(launched)
    }
}

impl Launcher for EcsLauncher {
    fn launch(
        &self,
        spec: LaunchSpec,
        events: mpsc::UnboundedSender<AgentExited>,
    ) -> BoxFuture<Result<Vec<Launched>, LaunchError>> {
        let this = self.clone();
        Box::pin(async move { this.launch_all(spec, events).await })
    }

    fn stop(&self, run: &RunId) -> BoxFuture<()> {
        let (this, run) = (self.clone(), run.clone());
        Box::pin(async move {
            // What this process started (none after a restart), then what ECS lists for the run.
            let mut arns: Vec<String> = {
                let mut runs = lock(&this.runs);
                match runs.get_mut(&run) {
                    None => Vec::new(),
                    Some(tasks) => {
                        tasks.stopped = true;
                        let arns = tasks
                            .tasks
                            .keys()
                            .filter(|a| !tasks.exited.contains(*a))
                            .cloned()
                            .collect();
                        if !tasks.launching {
                            runs.remove(&run);
                        }
                        arns
                    }
                }
            };
            for listed in this.listed_tasks(&run).await {
                if !arns.contains(&listed) {
                    arns.push(listed);
                }
            }
            this.stop_tasks(&run, arns, "herd: the run ended").await;
        })
    }
}

/// The container command: `herd agent …` without the entrypoint.
fn agent_command(broker_url: &str, run: &RunId, agent: &AgentId) -> Vec<String> {
    [
        "agent",
        "--broker",
        broker_url,
        "--run",
        run.as_str(),
        "--agent",
        agent.as_str(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Sorts a `RunTask` answer into done, worth retrying, or failed for good.
fn classify(result: Result<RunTaskOutput, SdkError<RunTaskError>>) -> Attempt<String> {
    match result {
        Ok(output) => {
            if let Some(arn) = output.tasks().iter().find_map(|t| t.task_arn()) {
                return Attempt::Done(arn.to_owned());
            }
            let Some(failure) = output.failures().first() else {
                return Attempt::Fail("RunTask started no task and named no failure".into());
            };
            let reason = match (failure.reason(), failure.detail()) {
                (Some(r), Some(d)) => format!("{r} ({d})"),
                (Some(r), None) => r.to_owned(),
                (None, Some(d)) => d.to_owned(),
                (None, None) => "RunTask failure without a reason".to_owned(),
            };
            if retry::failure_is_transient(&reason) {
                Attempt::Retry(reason)
            } else {
                Attempt::Fail(reason)
            }
        }
        Err(e) => {
            let text = super::sdk_error_text(&e);
            let transient = match &e {
                SdkError::ServiceError(_) => e.code().is_some_and(retry::error_code_is_transient),
                SdkError::TimeoutError(_)
                | SdkError::DispatchFailure(_)
                | SdkError::ResponseError(_) => true,
                _ => false,
            };
            if transient {
                Attempt::Retry(text)
            } else {
                Attempt::Fail(text)
            }
        }
    }
}
