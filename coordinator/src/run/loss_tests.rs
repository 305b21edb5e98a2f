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
    assert_eq!(moved.agent_count, 2);
    assert_eq!(
        moved.assignments,
        [(agent(0), 0), (agent(2), 1)].into_iter().collect()
    );
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
