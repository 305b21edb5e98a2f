//! Carrying out each kind of command. Every check happens before anything changes, so a refused
//! command has done nothing; a carried-out one is remembered by id with its reply.

use super::run_id::new_run_id;
use super::{ActiveRun, Code, Rejection, Reply, Task};
use crate::calendar::next_fire;
use crate::run::{self, RunSpec};
use crate::store::TestRecord;
use herd_protocol::command::{Command, CommandMessage, Overrides, Schedule, TestSpec};
use herd_protocol::event::Event;
use herd_protocol::plan::{self, Plan, Stage};
use herd_protocol::{duration, RunId};
use std::hash::{BuildHasher, RandomState};

impl Task {
    pub(super) async fn command(&mut self, message: CommandMessage) -> Result<Reply, Rejection> {
        let id = message.id.clone();
        let result = self.command_inner(message).await;
        self.view.send_modify(|v| match &result {
            Ok(_) => v.commands_done += 1,
            Err(_) => v.commands_rejected += 1,
        });
        if let Err(rejection) = &result {
            let event = Event::CommandRejected {
                code: rejection.code.as_str().into(),
                message: rejection.message.clone(),
            };
            self.emit(event, Some(id));
        }
        result
    }

    async fn command_inner(&mut self, message: CommandMessage) -> Result<Reply, Rejection> {
        message
            .check()
            .map_err(|e| Rejection::field(e.path, e.message))?;
        let store = self.deps.store.clone();
        if let Some(previous) = store
            .get_command(&message.id)
            .await
            .map_err(Rejection::internal)?
        {
            self.view.send_modify(|v| v.commands_repeated += 1);
            return serde_json::from_value(previous).map_err(Rejection::internal);
        }
        let id = message.id.clone();
        let reply = match message.command {
            Command::CreateTest { test_id, test } => self.create_test(test_id, test).await?,
            Command::UpdateTest { test_id, test } => self.update_test(test_id, test).await?,
            Command::DeleteTest { test_id } => self.delete_test(test_id).await?,
            Command::StartRun {
                test_id,
                plan,
                overrides,
                allow_concurrent,
            } => {
                self.start_run(&id, test_id, plan, overrides, allow_concurrent)
                    .await?
            }
            Command::StopRun { run_id, reason } => self.stop_run(run_id, reason).await?,
            Command::RampRun { run_id, stages } => self.ramp_run(run_id, &stages).await?,
            Command::Schedule { test_id, schedule } => {
                let mut test = self.test(&test_id).await?;
                test.next_fire_ms = self.first_fire(schedule.as_ref())?;
                test.schedule = schedule;
                test.updated_at_ms = self.clock.unix_ms();
                self.save(test).await?
            }
            Command::SetBaseline { test_id, run_id } => {
                let mut test = self.test(&test_id).await?;
                let run =
                    RunId::new(&run_id).map_err(|e| Rejection::field("run_id", e.to_string()))?;
                let record = store
                    .get_run(&run)
                    .await
                    .map_err(Rejection::internal)?
                    .ok_or_else(|| Rejection::new(Code::NotFound, format!("no run {run}")))?;
                if record.test.as_deref() != Some(test_id.as_str()) {
                    return Err(Rejection::field(
                        "run_id",
                        format!("run {run} is not a run of test {test_id}"),
                    ));
                }
                if !record.state.is_terminal() {
                    return Err(Rejection::new(
                        Code::Conflict,
                        format!("run {run} has not ended"),
                    ));
                }
                test.baseline_run = Some(run);
                test.updated_at_ms = self.clock.unix_ms();
                self.save(test).await?
            }
        };
        let stored = serde_json::to_value(&reply).map_err(Rejection::internal)?;
        store
            .put_command(&id, stored, self.clock.unix_ms())
            .await
            .map_err(Rejection::internal)?;
        Ok(reply)
    }

    async fn test(&self, id: &str) -> Result<TestRecord, Rejection> {
        self.deps
            .store
            .get_test(id)
            .await
            .map_err(Rejection::internal)?
            .ok_or_else(|| Rejection::new(Code::NotFound, format!("no test {id}")))
    }

    async fn save(&self, test: TestRecord) -> Result<Reply, Rejection> {
        self.deps
            .store
            .update_test(test.clone())
            .await
            .map_err(Rejection::internal)?;
        Ok(Reply::Test {
            test: Box::new(test),
        })
    }

    fn first_fire(&self, schedule: Option<&Schedule>) -> Result<Option<u64>, Rejection> {
        let Some(schedule) = schedule else {
            return Ok(None);
        };
        let next = next_fire(schedule, self.clock.unix_ms())
            .map_err(|e| Rejection::field(e.path, e.message))?;
        match (next, schedule) {
            (None, Schedule::At { .. }) => Err(Rejection::field("schedule.at", "is in the past")),
            (None, _) => Err(Rejection::field(
                "schedule",
                "never fires (its end is in the past)",
            )),
            (Some(next), _) => Ok(Some(next)),
        }
    }

    fn checked_spec(&self, spec: &TestSpec) -> Result<Option<u64>, Rejection> {
        let plan = plan::from_value(&spec.plan).map_err(|e| Rejection::fields("plan", &e.0))?;
        crate::run::targets::check(&plan, self.deps.allowed_targets.as_deref())
            .map_err(|e| Rejection::fields("plan", &[e]))?;
        self.first_fire(spec.schedule.as_ref())
    }

    async fn create_test(
        &mut self,
        id: Option<String>,
        spec: TestSpec,
    ) -> Result<Reply, Rejection> {
        let id = match id {
            Some(id) => {
                RunId::new(&id).map_err(|e| Rejection::field("test_id", e.to_string()))?;
                id
            }
            None => new_test_id(),
        };
        let next_fire_ms = self.checked_spec(&spec)?;
        let now = self.clock.unix_ms();
        let test = TestRecord {
            id: id.clone(),
            name: spec.name,
            plan: spec.plan,
            tags: spec.tags,
            schedule: spec.schedule,
            next_fire_ms,
            baseline_run: None,
            created_at_ms: now,
            updated_at_ms: now,
        };
        self.deps
            .store
            .create_test(test.clone())
            .await
            .map_err(|e| match e {
                crate::store::StoreError::TestExists(id) => {
                    Rejection::new(Code::Conflict, format!("test {id} already exists"))
                }
                e => Rejection::internal(e),
            })?;
        Ok(Reply::Test {
            test: Box::new(test),
        })
    }

    async fn update_test(&mut self, id: String, spec: TestSpec) -> Result<Reply, Rejection> {
        let mut test = self.test(&id).await?;
        let next_fire_ms = self.checked_spec(&spec)?;
        test.name = spec.name;
        test.plan = spec.plan;
        test.tags = spec.tags;
        test.schedule = spec.schedule;
        test.next_fire_ms = next_fire_ms;
        test.updated_at_ms = self.clock.unix_ms();
        self.save(test).await
    }

    async fn delete_test(&mut self, id: String) -> Result<Reply, Rejection> {
        if let Some(run) = self.active_run_of(&id) {
            return Err(Rejection::new(
                Code::Conflict,
                format!("test {id} has an active run ({run}); stop it first"),
            ));
        }
        if !self
            .deps
            .store
            .delete_test(&id)
            .await
            .map_err(Rejection::internal)?
        {
            return Err(Rejection::new(Code::NotFound, format!("no test {id}")));
        }
        Ok(Reply::Deleted { test_id: id })
    }

    fn active_run_of(&self, test: &str) -> Option<RunId> {
        self.active
            .iter()
            .find(|(_, a)| a.is_live() && a.test.as_deref() == Some(test))
            .map(|(run, _)| run.clone())
    }

    async fn start_run(
        &mut self,
        command_id: &str,
        test_id: Option<String>,
        inline: Option<serde_json::Value>,
        overrides: Overrides,
        allow_concurrent: bool,
    ) -> Result<Reply, Rejection> {
        let (json, prefix) = match (&test_id, inline) {
            (Some(id), _) => (self.test(id).await?.plan, "test.plan"),
            (None, Some(plan)) => (plan, "plan"),
            (None, None) => return Err(Rejection::field("plan", "give a test_id or a plan")),
        };
        let mut plan = plan::from_value(&json).map_err(|e| Rejection::fields(prefix, &e.0))?;
        apply(&mut plan, &overrides)?;
        crate::run::secrets::values(&plan).map_err(|e| Rejection::fields(prefix, &[e]))?;
        crate::run::targets::check(&plan, self.deps.allowed_targets.as_deref())
            .map_err(|e| Rejection::fields(prefix, &[e]))?;
        let unplaced = crate::launcher::check_regions(&plan, self.deps.launcher.as_ref());
        if !unplaced.is_empty() {
            return Err(Rejection::fields(prefix, &unplaced));
        }
        if let (Some(test), false) = (&test_id, allow_concurrent) {
            if let Some(run) = self.active_run_of(test) {
                return Err(Rejection::new(
                    Code::Conflict,
                    format!("test {test} already has an active run ({run}); set allow_concurrent to run another"),
                ));
            }
        }
        let in_use: u32 = self
            .active
            .values()
            .filter(|a| a.is_live())
            .map(|a| a.agents)
            .sum();
        if in_use + plan.agents > self.config.max_agents {
            return Err(Rejection::new(
                Code::Capacity,
                format!(
                    "the run needs {} agents but {in_use} of the {} allowed are in use",
                    plan.agents, self.config.max_agents
                ),
            ));
        }
        let run = new_run_id();
        let agents = plan.agents;
        let handle = run::start(
            RunSpec {
                run: run.clone(),
                test: test_id.clone(),
                plan,
                timeouts: self.config.timeouts,
            },
            self.deps.clone(),
        );
        let mut active: ActiveRun =
            self.follow(run.clone(), test_id.clone(), command_id, handle, false);
        active.agents = agents;
        self.active.insert(run.clone(), active);
        self.publish_view();
        self.emit(
            Event::RunCreated {
                run: run.to_string(),
                test: test_id.clone(),
                agents,
            },
            Some(command_id.to_string()),
        );
        Ok(Reply::RunStarted {
            run_id: run.to_string(),
            test_id,
            agents,
        })
    }

    async fn stop_run(
        &mut self,
        run_id: String,
        reason: Option<String>,
    ) -> Result<Reply, Rejection> {
        let run = RunId::new(&run_id).map_err(|e| Rejection::field("run_id", e.to_string()))?;
        if let Some(active) = self.active.get(&run).filter(|a| a.is_live()) {
            active.addr.do_send(run::Cancel {
                reason: reason.unwrap_or_else(|| "stopped on request".into()),
            });
            return Ok(Reply::Stopping { run_id });
        }
        Err(self.not_active(&run).await)
    }
}

impl Task {
    async fn ramp_run(
        &mut self,
        run_id: String,
        stages: &serde_json::Value,
    ) -> Result<Reply, Rejection> {
        let run = RunId::new(&run_id).map_err(|e| Rejection::field("run_id", e.to_string()))?;
        let stages =
            plan::ramp_from_value(stages).map_err(|errors| Rejection::fields("", &errors.0))?;
        let Some(active) = self.active.get(&run) else {
            return Err(self.not_active(&run).await);
        };
        match active.addr.send(run::Ramp { stages }).await {
            Ok(Ok(run::Ramped { at_ms, ends_at_ms })) => Ok(Reply::Ramping {
                run_id,
                at_ms,
                ends_at_ms,
            }),
            Ok(Err(run::RampRefused::WrongModel(why))) => Err(Rejection::field("stages", why)),
            Ok(Err(run::RampRefused::NotRunning(phase))) => Err(Rejection::new(
                Code::Conflict,
                format!("run {run} is not running its load (it is {phase})"),
            )),
            Err(_) => Err(Rejection::new(
                Code::Conflict,
                format!("run {run} ended meanwhile"),
            )),
        }
    }

    /// Why a command for an inactive run is refused: it ended, or it never was.
    async fn not_active(&self, run: &RunId) -> Rejection {
        match self.deps.store.get_run(run).await {
            Ok(Some(r)) => Rejection::new(
                Code::Conflict,
                format!("run {run} is not active (it is {})", r.state),
            ),
            Ok(None) => Rejection::new(Code::NotFound, format!("no run {run}")),
            Err(e) => Rejection::internal(e),
        }
    }
}

/// Applies per-run overrides: agents, and a total duration the stages are scaled to.
fn apply(plan: &mut Plan, overrides: &Overrides) -> Result<(), Rejection> {
    if let Some(agents) = overrides.agents {
        if agents == 0 {
            return Err(Rejection::field("overrides.agents", "must be >= 1"));
        }
        plan.agents = agents;
        let problems = plan.check_agents(agents);
        if !problems.is_empty() {
            return Err(Rejection::fields("plan", &problems));
        }
    }
    if let Some(text) = &overrides.duration {
        let target =
            duration::parse(text).map_err(|e| Rejection::field("overrides.duration", e))?;
        if plan.has_scenarios() {
            return Err(Rejection::field(
                "overrides.duration",
                "the plan has several scenarios, each with its own load: change their loads in \
                 the plan",
            ));
        }
        let total = plan.load.duration();
        if target.is_zero() || total.is_zero() {
            return Err(Rejection::field("overrides.duration", "must be > 0"));
        }
        let factor = target.as_secs_f64() / total.as_secs_f64();
        plan.load.stages = plan
            .load
            .stages
            .iter()
            .map(|s| Stage {
                duration: s.duration.mul_f64(factor),
                vus: s.vus,
            })
            .collect();
    }
    Ok(())
}

fn new_test_id() -> String {
    let random = RandomState::new().hash_one(std::time::SystemTime::now()) & 0xffff_ffff;
    format!("test-{random:08x}")
}
