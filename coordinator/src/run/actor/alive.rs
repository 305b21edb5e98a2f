//! The run actor's side of liveness: what each message tells about its agent, who is silent at
//! a tick, taking back a lost agent that speaks again, and the start's lead time.
//!
//! The rules themselves are in [`crate::run::liveness`]; this file applies them to the run: a
//! lost agent that speaks again was slow, not gone, so it is taken back — its late frames are
//! merged as any late frame is, and the episode stays in its `gaps`. Only an agent whose process
//! exited cannot come back. Whether the run is degraded is decided at the end, by what is missing
//! then (see `finalize`).
//!
//! Before the start a loss fails the run, so there the broker's last will is not taken at its
//! word at once: while thousands of sessions connect together a broker drops some and they
//! reconnect (`herd bench swarm` at 5,000 agents lost one this way and failed). A will before the
//! start loses the agent only if nothing new is heard from it within the heartbeat timeout.

use super::machine::RunActor;
use crate::run::liveness;
use crate::run::liveness::Sign;
use crate::run::phase::Phase;
use crate::store::AgentGap;
use actix::prelude::*;
use herd_protocol::AgentId;
use std::time::Duration;
use tokio::time::Instant;

/// The longest lead the start is given, however slow the messages were.
const MAX_LEAD: Duration = Duration::from_secs(5);
/// Lead per agent: the broker hands the one start command to each, and each parses the plan.
const LEAD_PER_AGENT: Duration = Duration::from_millis(3);

impl RunActor {
    /// Notes a message from `agent`; a lost agent that sent news is taken back. Returns whether
    /// the message was news.
    pub(super) fn heard_from(&mut self, agent: &AgentId, sign: Sign) -> bool {
        let now_ms = self.clock.unix_ms();
        let waiting = matches!(self.phase(), Phase::Launching | Phase::WaitingReady);
        let Some(track) = self.agents.0.get_mut(agent) else {
            return false;
        };
        let (newer, extra) = track.heard.message(sign.sent_ms, now_ms);
        let news = match sign.status_seq {
            Some(0) => newer,
            Some(seq) => track.heard.status_seq(seq),
            None => newer || sign.new_frame,
        };
        if let Some(second) = sign.second {
            track.heard.second(second);
            self.newest_second = Some(self.newest_second.map_or(second, |s| s.max(second)));
        }
        if let Some(extra) = extra {
            self.lag.delivered(Instant::now(), extra);
            if waiting {
                let delay = now_ms.saturating_sub(sign.sent_ms);
                self.ready_delay_ms = self.ready_delay_ms.max(delay);
            }
        }
        if news {
            self.wills.remove(agent);
        }
        let back = news && track.lost.is_some() && !track.exited;
        if back {
            self.take_back(agent, now_ms);
        }
        news
    }

    /// A lost agent spoke again: it is live again, and its gap is closed.
    fn take_back(&mut self, agent: &AgentId, now_ms: u64) {
        let Some(track) = self.agents.0.get_mut(agent) else {
            return;
        };
        let Some(reason) = track.lost.take() else {
            return;
        };
        if let Some(gap) = track.gaps.last_mut() {
            gap.back_at_ms = Some(now_ms);
        }
        tracing::info!(run = %self.spec.run, %agent, %reason, "lost agent speaks again: taken back");
        self.aggregator.agent_back(agent);
        self.ledger.agent_changed(agent);
        self.share_taken_back(agent);
        if let Some(load) = self.stage.load_mut() {
            load.settled_at = None;
        }
        self.publish_view();
    }

    /// Records the gap of an agent being declared lost now.
    pub(super) fn open_gap(&mut self, agent: &AgentId, reason: &str) {
        let now_ms = self.clock.unix_ms();
        if let Some(track) = self.agents.0.get_mut(agent) {
            let silent_from_ms = track.heard.last_sign_ms(now_ms);
            track.gaps.push(AgentGap {
                silent_from_ms,
                lost_at_ms: now_ms,
                back_at_ms: None,
                reason: reason.to_string(),
                share: None,
            });
        }
    }

    /// At a tick: measures the coordinator's own lag and declares lost the agents silent beyond
    /// the (widened) timeout. Agents not ready yet are left to the ready deadline.
    pub(super) fn check_silence(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        self.lag.tick(now);
        if matches!(self.phase(), Phase::Launching) {
            return;
        }
        let now_ms = self.clock.unix_ms();
        let limit = self.lag.timeout(self.spec.timeouts.heartbeat, now);
        let silent: Vec<AgentId> = self
            .agents
            .0
            .iter()
            .filter(|(id, a)| {
                !a.settled()
                    && (a.ready || self.gone.contains(*id))
                    && liveness::is_silent(&a.heard, now_ms, limit, self.newest_second)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for agent in silent {
            let reason = if self.gone.contains(&agent) {
                "its process was gone when the coordinator restarted".to_string()
            } else {
                format!("no message sent for {limit:?}")
            };
            self.lose(&agent, reason, ctx);
        }
    }

    /// How far ahead of now the start is set: the configured minimum, plus twice the slowest
    /// delivery seen while agents got ready (the start command travels the same way back), plus
    /// a little per agent; at most [`MAX_LEAD`].
    pub(super) fn start_lead(&self) -> Duration {
        let agents = u32::try_from(self.agents.0.len()).unwrap_or(u32::MAX);
        let lead = self.spec.timeouts.start_delay
            + 2 * Duration::from_millis(self.ready_delay_ms)
            + LEAD_PER_AGENT * agents;
        lead.min(MAX_LEAD.max(self.spec.timeouts.start_delay))
    }

    /// The broker published `agent`'s last will before the start: it is lost (failing the run)
    /// unless it is heard from again within the heartbeat timeout.
    pub(super) fn will_before_start(&mut self, agent: &AgentId, ctx: &mut Context<Self>) {
        if !self.agents.0.contains_key(agent) {
            return;
        }
        self.wills.insert(agent.clone());
        let wait = self.spec.timeouts.heartbeat;
        tracing::info!(run = %self.spec.run, %agent, ?wait, "last will before the start: waiting for the agent to reconnect");
        let agent = agent.clone();
        ctx.run_later(wait, move |act, ctx| {
            let waiting = matches!(act.phase(), Phase::Launching | Phase::WaitingReady);
            let silent =
                act.wills.remove(&agent) && act.agents.0.get(&agent).is_some_and(|t| !t.settled());
            if waiting && silent {
                act.lose(
                    &agent,
                    format!("connection lost (MQTT last will) and not back within {wait:?}"),
                    ctx,
                );
            }
        });
    }
}
