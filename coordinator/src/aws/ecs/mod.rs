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
//!
//! **Regions.** An agent the plan places in a region (`LaunchSpec::regions`) is started in that
//! region's cluster (`[[launcher.regions]]`) by an ECS client for that region (the same
//! credentials and endpoint override, another region); agents without one, and the
//! coordinator's own region when it has no table of its own, use `[launcher]`. A region that is
//! not configured fails the launch before any task starts. Each task remembers its region, so
//! following and stopping call the right region's endpoint and cluster.

mod follow;
pub mod retry;
mod runs;
#[cfg(test)]
mod tests;

use crate::config::{EcsRegion, EcsSettings};
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
use runs::{lock, Runs};
use std::collections::{BTreeMap, BTreeSet};
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

/// Where one region's agents run: an ECS client for the region and its settings.
#[derive(Clone)]
struct Place {
    client: aws_sdk_ecs::Client,
    at: Arc<EcsRegion>,
}

/// The key of the `[launcher]` table's own placement (agents without a region).
const HOME: &str = "";

/// Launches agents as ECS Fargate tasks; see the module docs.
#[derive(Clone)]
pub struct EcsLauncher {
    /// The `[launcher]` table's placement (agents without a region; key [`HOME`]).
    home: Place,
    /// By region name: `[[launcher.regions]]`, and the coordinator's own region.
    places: Arc<BTreeMap<String, Place>>,
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
        let home_client = aws_sdk_ecs::Client::new(sdk);
        let home_region = sdk.region().map(ToString::to_string);
        let home = Place {
            client: home_client.clone(),
            at: Arc::new(settings.home(home_region.as_deref().unwrap_or_default())),
        };
        let mut places = BTreeMap::new();
        for name in settings.region_names(home_region.as_deref()) {
            let Some(at) = settings.placement(&name, home_region.as_deref()) else {
                continue;
            };
            let client = if home_region.as_deref() == Some(name.as_str()) {
                home_client.clone()
            } else {
                let config = aws_sdk_ecs::config::Builder::from(sdk)
                    .region(aws_sdk_ecs::config::Region::new(name.clone()))
                    .build();
                aws_sdk_ecs::Client::from_conf(config)
            };
            places.insert(
                name,
                Place {
                    client,
                    at: Arc::new(at),
                },
            );
        }
        Self {
            home,
            places: Arc::new(places),
            timings,
            runs: Arc::default(),
        }
    }

    /// Where each agent of `spec` runs (its region's key), or why one cannot run anywhere.
    fn placements(&self, spec: &LaunchSpec) -> Result<Vec<(AgentId, String)>, String> {
        spec.agents
            .iter()
            .map(|agent| match spec.regions.get(agent) {
                None => Ok((agent.clone(), HOME.to_owned())),
                Some(region) if self.places.contains_key(region) => {
                    Ok((agent.clone(), region.clone()))
                }
                Some(region) => Err(format!(
                    "{agent}: region {region:?} has no [[launcher.regions]] table in herd.toml \
                     (configured: {})",
                    self.region_names().join(", ")
                )),
            })
            .collect()
    }

    fn region_names(&self) -> Vec<String> {
        self.places.keys().cloned().collect()
    }

    /// The placement of a region's key ([`HOME`], or one that is not configured: `[launcher]`).
    fn place(&self, key: &str) -> &Place {
        self.places.get(key).unwrap_or(&self.home)
    }

    /// Starts one agent's task, retrying transient refusals; its ARN, or why not.
    async fn run_one(
        &self,
        run: RunId,
        agent: AgentId,
        broker_url: String,
        place: &str,
    ) -> Result<String, String> {
        let place = self.place(place);
        let s = &place.at;
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
            let mut call = place
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

    /// Stops tasks (each with its region's key), ten calls at a time; failures are logged (the
    /// task may be gone already).
    async fn stop_tasks(&self, run: &RunId, arns: Vec<(String, String)>, reason: &str) {
        for wave in arns.chunks(PARALLEL_CALLS) {
            let mut calls = JoinSet::new();
            for (arn, place) in wave {
                let place = self.place(place);
                let call = place
                    .client
                    .stop_task()
                    .cluster(&place.at.cluster)
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

    /// Tasks of the run still running in every region that this process may not know of
    /// (started by an earlier coordinator process): found by `startedBy`, with their region.
    async fn listed_tasks(&self, run: &RunId) -> Vec<(String, String)> {
        let mut all = Vec::new();
        let keys = std::iter::once(HOME).chain(self.places.keys().map(String::as_str));
        for key in keys {
            for arn in self.listed_in(run, key).await {
                if !all.iter().any(|(a, _)| *a == arn) {
                    all.push((arn, key.to_owned()));
                }
            }
        }
        all
    }

    /// The run's running tasks in one region's cluster.
    async fn listed_in(&self, run: &RunId, key: &str) -> Vec<String> {
        if run.as_str().len() > STARTED_BY_MAX {
            return Vec::new();
        }
        let place = self.place(key);
        let mut arns = Vec::new();
        let mut next = None;
        loop {
            let page = place
                .client
                .list_tasks()
                .cluster(&place.at.cluster)
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
        let placements = self
            .placements(&spec)
            .map_err(|reason| LaunchError::Refused {
                started: 0,
                requested: spec.agents.len(),
                reason,
            })?;
        // A later launch for the same run (a replacement agent) adds to its tasks.
        let had_tasks = {
            let mut runs = lock(&self.runs);
            let tasks = runs.entry(run.clone()).or_default();
            tasks.launching = true;
            !tasks.tasks.is_empty()
        };
        let mut launched = Vec::with_capacity(spec.agents.len());
        let mut refused: Option<String> = None;
        let mut launched_places = Vec::with_capacity(spec.agents.len());
        for wave in placements.chunks(PARALLEL_CALLS) {
            let mut calls = JoinSet::new();
            for (agent, place) in wave {
                let (this, run, agent) = (self.clone(), run.clone(), agent.clone());
                let (broker, place) = (spec.broker_url.clone(), place.clone());
                calls.spawn(async move {
                    let result = this.run_one(run, agent.clone(), broker, &place).await;
                    (agent, place, result)
                });
            }
            while let Some(done) = calls.join_next().await {
                match done {
                    Ok((agent, place, Ok(arn))) => {
                        if let Some(tasks) = lock(&self.runs).get_mut(&run) {
                            tasks.tasks.insert(arn.clone(), agent.clone());
                            tasks.places.insert(arn.clone(), place.clone());
                        }
                        launched_places.push(place);
                        launched.push(Launched { agent, handle: arn });
                    }
                    Ok((agent, _, Err(reason))) => {
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
            if (refused.is_some() || stopped) && !had_tasks {
                runs.remove(&run);
            }
            stopped
        };
        if stopped_meanwhile && refused.is_none() {
            refused = Some("the run was stopped while its agents were launching".into());
        }
        if let Some(reason) = refused {
            let started = launched.len();
            let arns = launched
                .into_iter()
                .map(|l| l.handle)
                .zip(launched_places)
                .collect();
            self.stop_tasks(&run, arns, "herd: the run's launch failed")
                .await;
            return Err(LaunchError::Refused {
                started,
                requested: spec.agents.len(),
                reason,
            });
        }
        for key in launched_places.into_iter().collect::<BTreeSet<_>>() {
            let place = self.place(&key);
            tokio::spawn(follow::follow(
                follow::Target {
                    client: place.client.clone(),
                    cluster: place.at.cluster.clone(),
                    place: key,
                },
                Arc::clone(&self.runs),
                run.clone(),
                events.clone(),
                self.timings.follow_interval,
            ));
        }
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

    fn regions(&self) -> Option<Vec<String>> {
        Some(self.region_names())
    }

    fn stop(&self, run: &RunId) -> BoxFuture<()> {
        let (this, run) = (self.clone(), run.clone());
        Box::pin(async move {
            // What this process started (none after a restart), then what ECS lists for the run.
            let mut arns: Vec<(String, String)> = {
                let mut runs = lock(&this.runs);
                match runs.get_mut(&run) {
                    None => Vec::new(),
                    Some(tasks) => {
                        tasks.stopped = true;
                        let arns = tasks
                            .tasks
                            .keys()
                            .filter(|a| !tasks.exited.contains(*a))
                            .map(|a| {
                                let place = tasks.places.get(a).cloned().unwrap_or_default();
                                (a.clone(), place)
                            })
                            .collect();
                        if !tasks.launching {
                            runs.remove(&run);
                        }
                        arns
                    }
                }
            };
            for listed in this.listed_tasks(&run).await {
                if !arns.iter().any(|(a, _)| *a == listed.0) {
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
