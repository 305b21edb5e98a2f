//! The run actor and a lost agent's share (`options.on_agent_loss`), with the fake bus of the
//! parent tests: what it tells the agents, and how the run ends.

use super::*;
use herd_protocol::plan::OnAgentLoss;

fn plan_with(agents: u32, policy: OnAgentLoss) -> Plan {
    let mut plan = plan(agents, 30);
    plan.options.on_agent_loss = policy;
    plan
}

#[actix::test]
async fn a_lost_agents_share_goes_to_the_others_and_a_returning_one_is_told_again() {
    tokio::time::pause();
    let mut h = start_run(plan_with(3, OnAgentLoss::Redistribute));
    let s0 = h.start_all(3).await;
    h.say(1, AgentStatus::Lost).await;
    let AgentCommand::Reassign(moved) = h.next_command().await else {
        panic!("a reassignment follows the loss")
    };
    assert_eq!((moved.seq, moved.agent_count), (1, 2));
    assert_eq!(moved.lost, vec![agent(1)], "only the lost agent is named");
    assert!(moved.at_ms >= s0 * 1000);
    // It speaks again: it is taken back, and told again that it carries nothing now.
    h.say(1, AgentStatus::Heartbeat { vus: 1 }).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let AgentCommand::Reassign(again) = h.next_command().await else {
        panic!("the reassignment is sent again")
    };
    assert_eq!(again, moved);
    let share = {
        let view = h.handle.view.borrow();
        assert!(view.lost_agents.is_empty());
        view.phase
    };
    assert_eq!(share, Phase::Running);
}

#[actix::test]
async fn with_abort_a_lost_agent_fails_the_run_naming_it_and_the_second() {
    tokio::time::pause();
    let mut h = start_run(plan_with(3, OnAgentLoss::Abort));
    h.start_all(3).await;
    h.say(2, AgentStatus::Lost).await;
    let summary = h.handle.outcome.await.expect("summary");
    assert_eq!(summary.run_state, RunState::Failed);
    let reason = summary.reason.unwrap_or_default();
    assert!(
        reason.contains("agent agent-2 was lost at second 0") && reason.contains("abort"),
        "{reason}"
    );
    let share = summary.agents[2].gaps[0].share.clone().expect("recorded");
    assert_eq!(share.action, "abort");
}

#[actix::test]
async fn with_continue_nothing_is_reassigned() {
    tokio::time::pause();
    let mut h = start_run(plan_with(2, OnAgentLoss::Continue));
    h.start_all(2).await;
    h.say(1, AgentStatus::Lost).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(h.commands.try_recv().is_err(), "no command after the loss");
}

#[actix::test]
async fn losses_in_the_same_instant_go_in_one_reassignment() {
    tokio::time::pause();
    let mut h = start_run(plan_with(5, OnAgentLoss::Redistribute));
    h.start_all(5).await;
    h.say(1, AgentStatus::Lost).await;
    h.say(3, AgentStatus::Lost).await;
    let AgentCommand::Reassign(moved) = h.next_command().await else {
        panic!("a reassignment follows the losses")
    };
    assert_eq!(moved.lost, vec![agent(1), agent(3)]);
    assert_eq!((moved.seq, moved.agent_count), (1, 3));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(h.commands.try_recv().is_err(), "one message for both");
}

#[actix::test]
async fn a_replacement_is_launched_and_takes_the_lost_agents_place_once_ready() {
    tokio::time::pause();
    let mut h = start_run(plan_with(3, OnAgentLoss::Replace));
    h.start_all(3).await;
    h.say(1, AgentStatus::Lost).await;
    // Until the new agent is ready, the others carry the share.
    let AgentCommand::Reassign(interim) = h.next_command().await else {
        panic!("the share is redistributed first")
    };
    assert_eq!(interim.lost, vec![agent(1)]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let new = AgentId::new("agent-1-r1").expect("valid");
    assert_eq!(
        h.launcher.launched.lock().expect("lock").last(),
        Some(&new),
        "a new agent is launched"
    );
    h.say_as(
        &new,
        AgentStatus::Ready {
            pid: 9,
            host: "h".into(),
        },
    )
    .await;
    let AgentCommand::Start {
        reassigned,
        assignments,
        agent_count,
        ..
    } = h.next_command().await
    else {
        panic!("the new agent gets the start")
    };
    assert!(
        assignments.is_empty() && agent_count == 3,
        "the start's own split"
    );
    assert_eq!(reassigned.len(), 2);
    let joined = &reassigned[1].joined;
    assert_eq!(
        (joined[0].agent.clone(), joined[0].index, joined[0].slot),
        (new.clone(), 1, 1)
    );
    let AgentCommand::Reassign(back) = h.next_command().await else {
        panic!("the others hear the change")
    };
    assert_eq!(back, reassigned[1]);
    assert_eq!(back.agent_count, 3);
    h.handle.addr.do_send(Cancel {
        reason: "enough".into(),
    });
    let summary = h.handle.outcome.await.expect("summary");
    let share = summary
        .agents
        .iter()
        .find(|a| a.id == "agent-1")
        .expect("agent-1")
        .gaps[0]
        .share
        .clone()
        .expect("recorded");
    assert_eq!(share.action, "replace");
    assert_eq!(share.to, vec!["agent-1-r1".to_string()]);
    assert!(share.redistributed_at_s.is_some_and(|r| r <= share.at_s));
    assert!(summary.agents.iter().any(|a| a.id == "agent-1-r1"));
}

#[actix::test]
async fn a_replacement_that_cannot_be_launched_leaves_the_share_redistributed_and_says_so() {
    tokio::time::pause();
    let mut h = start_run(plan_with(3, OnAgentLoss::Replace));
    h.start_all(3).await;
    h.launcher
        .refuse
        .store(true, std::sync::atomic::Ordering::SeqCst);
    h.say(2, AgentStatus::Lost).await;
    let AgentCommand::Reassign(moved) = h.next_command().await else {
        panic!("the share is redistributed")
    };
    assert_eq!(moved.lost, vec![agent(2)]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.handle.addr.do_send(Cancel {
        reason: "enough".into(),
    });
    let summary = h.handle.outcome.await.expect("summary");
    let share = summary.agents[2].gaps[0].share.clone().expect("recorded");
    assert_eq!(share.action, "redistribute");
    assert_eq!(share.to, vec!["agent-0".to_string(), "agent-1".to_string()]);
    let note = share.note.unwrap_or_default();
    assert!(
        note.contains("replace failed")
            && note.contains("refused")
            && note.contains("stays redistributed"),
        "{note}"
    );
    assert_eq!(summary.agents.len(), 3, "no replacement among the agents");
}

#[actix::test]
async fn a_last_will_before_the_start_is_forgiven_when_the_agent_speaks_again() {
    tokio::time::pause();
    let mut h = start_run(plan(2, 2));
    // agent-1's session is dropped while sessions connect, and it reconnects.
    h.say(1, AgentStatus::Lost).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.say(1, AgentStatus::Heartbeat { vus: 0 }).await;
    tokio::time::sleep(Timeouts::default().heartbeat * 2).await;
    // The run was not failed: every agent ready, and it starts.
    let s0 = h.start_all(2).await;
    for i in 0..2 {
        h.frame(i, 0, s0, 5, 1_000, true).await;
        h.say(
            i,
            AgentStatus::Finished {
                frames: 1,
                requests: 5,
            },
        )
        .await;
    }
    let summary = h.handle.outcome.await.expect("summary");
    assert!(summary.lost_agents.is_empty(), "{:?}", summary.lost_agents);
    assert_ne!(summary.run_state, RunState::Failed, "{:?}", summary.reason);
    assert_eq!(summary.requests, 10);
}

#[actix::test]
async fn a_last_will_before_the_start_fails_the_run_once_the_agent_stays_silent() {
    tokio::time::pause();
    let h = start_run(plan(1, 2));
    h.say(0, AgentStatus::Lost).await;
    let summary = h.handle.outcome.await.expect("summary");
    assert_eq!(summary.run_state, RunState::Failed);
    let reason = summary.reason.unwrap_or_default();
    assert!(
        reason.contains("agent agent-0 was lost before the start")
            && reason.contains("not back within 5s"),
        "{reason}"
    );
    assert_eq!(summary.requests, 0);
}
