//! A stand-in for Fargate behind moto's ECS: moto records `RunTask` calls as tasks but runs
//! nothing, so this watches a cluster and starts, for every new task of one task definition, the
//! `herd` process the container would run: the task definition's entrypoint (`herd`) with
//! exactly the command and environment of the task's container override, as ECS would. When the
//! process exits the task is stopped (`StopTask`), as ECS stops a task whose essential container
//! exited, so the launcher's `DescribeTasks` follower sees it end.
//!
//! It runs on its own thread and tokio runtime, polling every 100 ms; dropping it kills every
//! process it started.

use aws_config::SdkConfig;
use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One task the stand-in started a process for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The task's ARN.
    pub task_arn: String,
    /// The task's `startedBy`, if any.
    pub started_by: Option<String>,
    /// The task's group.
    pub group: Option<String>,
    /// The container override's command: the process's arguments after `herd`.
    pub command: Vec<String>,
    /// The container override's environment.
    pub environment: Vec<(String, String)>,
}

/// See the module docs.
pub struct EcsStandin {
    stop: Arc<AtomicBool>,
    started: Arc<Mutex<Vec<Started>>>,
    children: Arc<Mutex<Vec<Child>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EcsStandin {
    /// Watches `cluster` for tasks of `task_definition` (its ARN) and runs the override of the
    /// container `container` with `program` (the built `herd`), adding `env` (e.g. a log level).
    pub fn start(
        sdk: &SdkConfig,
        cluster: &str,
        task_definition: &str,
        container: &str,
        program: std::path::PathBuf,
        env: Vec<(String, String)>,
    ) -> Self {
        let ecs = aws_sdk_ecs::Client::new(sdk);
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(Mutex::new(Vec::new()));
        let children = Arc::new(Mutex::new(Vec::new()));
        let (cluster, task_definition, container) = (
            cluster.to_owned(),
            task_definition.to_owned(),
            container.to_owned(),
        );
        let thread = std::thread::spawn({
            let (stop, started, children) = (stop.clone(), started.clone(), children.clone());
            move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("stand-in runtime");
                runtime.block_on(async move {
                    let mut seen: HashSet<String> = HashSet::new();
                    // Task ARN of each running process, by its index in `children`.
                    let mut running: Vec<Option<String>> = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let listed = ecs
                            .list_tasks()
                            .cluster(&cluster)
                            .send()
                            .await
                            .expect("ListTasks");
                        let new: Vec<String> = listed
                            .task_arns()
                            .iter()
                            .filter(|a| !seen.contains(*a))
                            .cloned()
                            .collect();
                        if !new.is_empty() {
                            let described = ecs
                                .describe_tasks()
                                .cluster(&cluster)
                                .set_tasks(Some(new.clone()))
                                .send()
                                .await
                                .expect("DescribeTasks");
                            for task in described.tasks() {
                                let Some(arn) = task.task_arn() else { continue };
                                seen.insert(arn.to_owned());
                                if task.task_definition_arn() != Some(task_definition.as_str()) {
                                    continue;
                                }
                                let Some(o) = task
                                    .overrides()
                                    .map(|o| o.container_overrides())
                                    .unwrap_or_default()
                                    .iter()
                                    .find(|o| o.name() == Some(container.as_str()))
                                else {
                                    continue;
                                };
                                let command = o.command().to_vec();
                                let environment: Vec<(String, String)> = o
                                    .environment()
                                    .iter()
                                    .map(|kv| {
                                        (
                                            kv.name().unwrap_or_default().to_owned(),
                                            kv.value().unwrap_or_default().to_owned(),
                                        )
                                    })
                                    .collect();
                                let child = Command::new(&program)
                                    .args(&command)
                                    .envs(env.iter().cloned())
                                    .envs(environment.iter().cloned())
                                    .stdin(Stdio::null())
                                    .stdout(Stdio::null())
                                    .stderr(Stdio::inherit())
                                    .spawn()
                                    .expect("start the task's process");
                                children.lock().expect("children").push(child);
                                running.push(Some(arn.to_owned()));
                                started.lock().expect("started").push(Started {
                                    task_arn: arn.to_owned(),
                                    started_by: task.started_by().map(str::to_owned),
                                    group: task.group().map(str::to_owned),
                                    command,
                                    environment,
                                });
                            }
                        }
                        // Essential container exited: the task stops.
                        let exited: Vec<String> = {
                            let mut children = children.lock().expect("children");
                            children
                                .iter_mut()
                                .zip(running.iter_mut())
                                .filter_map(|(child, arn)| match child.try_wait() {
                                    Ok(Some(_)) => arn.take(),
                                    _ => None,
                                })
                                .collect()
                        };
                        for arn in exited {
                            let _ = ecs
                                .stop_task()
                                .cluster(&cluster)
                                .task(&arn)
                                .reason("Essential container in task exited")
                                .send()
                                .await;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                });
            }
        });
        Self {
            stop,
            started,
            children,
            thread: Some(thread),
        }
    }

    /// Every task a process was started for, in order.
    pub fn started(&self) -> Vec<Started> {
        self.started.lock().expect("started").clone()
    }

    /// Whether every process started so far has exited.
    pub fn all_exited(&self) -> bool {
        self.children
            .lock()
            .expect("children")
            .iter_mut()
            .all(|c| matches!(c.try_wait(), Ok(Some(_))))
    }
}

impl Drop for EcsStandin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        for child in self.children.lock().expect("children").iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
