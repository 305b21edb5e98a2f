//! Telling an agent's silence from slowness: when is an agent lost?
//!
//! Judging an agent by when the run actor *handled* its last message turns every slowness into a
//! loss: a coordinator busy with 500 agents' frames, a broker behind, an agent process starved of
//! CPU for a moment — each makes messages arrive late, and a late message looked like none. So an
//! agent is judged by what it *sent*:
//! - **Send times.** Agents stamp every status message and frame with their send time (and a
//!   number). [`Heard`] keeps the newest send time seen from an agent and the smallest delay seen
//!   between its sending and our handling (its clock's offset plus the fastest delivery), so
//!   "how long ago did it last send" is read on the coordinator's clock whatever the agent's
//!   clock says. A message from an older agent without a send time counts when it is handled.
//! - **The coordinator's own lag.** [`Lag`] measures how late the run actor's 100 ms tick fires
//!   and how much longer than usual the messages it handles took to reach it (the fastest of the
//!   last few seconds: a backlog delays every message). While the coordinator is behind, the timeout is
//!   widened by that much, twice over.
//! - **Seconds that keep arriving.** An agent whose frames keep pace with the run's newest second
//!   is alive, whatever its heartbeats do.
//!
//! A lost agent that speaks again is taken back by the actor (and the episode kept as a gap);
//! this module only says who is silent. It is pure logic: callers pass the time in.

use std::collections::VecDeque;
use tokio::time::{Duration, Instant};

/// What the run heard from one agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heard {
    /// The newest send time seen (ms since the Unix epoch, on the agent's clock); 0 if none.
    pub last_sent_ms: u64,
    /// The smallest `handled - sent` seen, in ms: the agent clock's offset plus the fastest
    /// delivery. `None` until a message with a send time arrived.
    pub base_offset_ms: Option<i64>,
    /// When news from it was last handled (ms since the Unix epoch, the coordinator's clock).
    pub last_heard_ms: u64,
    /// The highest status number seen.
    pub status_seq: u64,
    /// The newest second its frames covered.
    pub last_second: Option<u64>,
}

impl Heard {
    /// Nothing heard yet; the silence is counted from `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self {
            last_heard_ms: now_ms,
            ..Self::default()
        }
    }

    /// Forgets send times and restarts the silence at `now_ms` (the coordinator restarted: its
    /// absence is not the agent's silence).
    pub fn restart(&mut self, now_ms: u64) {
        *self = Self {
            status_seq: self.status_seq,
            last_second: self.last_second,
            ..Self::new(now_ms)
        };
    }

    /// A message from the agent, sent at `sent_ms` (0: not said), handled at `now_ms`. Returns
    /// whether it is news — sent after anything seen so far — and, when it has a send time, how
    /// much longer than the agent's fastest delivery it took (the coordinator's backlog shows
    /// there).
    pub fn message(&mut self, sent_ms: u64, now_ms: u64) -> (bool, Option<u64>) {
        if sent_ms == 0 {
            self.last_heard_ms = self.last_heard_ms.max(now_ms);
            return (true, None);
        }
        let offset =
            i64::try_from(now_ms).unwrap_or(i64::MAX) - i64::try_from(sent_ms).unwrap_or(i64::MAX);
        let base = self.base_offset_ms.map_or(offset, |b| b.min(offset));
        self.base_offset_ms = Some(base);
        let news = sent_ms > self.last_sent_ms;
        if news {
            self.last_sent_ms = sent_ms;
            self.last_heard_ms = self.last_heard_ms.max(now_ms);
        }
        (news, u64::try_from(offset - base).ok())
    }

    /// A status message numbered `seq` (0: not numbered): whether it is newer than any seen.
    pub fn status_seq(&mut self, seq: u64) -> bool {
        if seq == 0 {
            return true;
        }
        let news = seq > self.status_seq;
        self.status_seq = self.status_seq.max(seq);
        news
    }

    /// A frame for `second` arrived.
    pub fn second(&mut self, second: u64) {
        self.last_second = Some(self.last_second.map_or(second, |s| s.max(second)));
    }

    /// How long it has been silent at `now_ms`: since it sent its newest message (read on the
    /// coordinator's clock), or, without send times, since news from it was handled.
    pub fn silence_ms(&self, now_ms: u64) -> u64 {
        let since_heard = now_ms.saturating_sub(self.last_heard_ms);
        match self.base_offset_ms {
            Some(base) if self.last_sent_ms > 0 => {
                let sent_here = i64::try_from(self.last_sent_ms)
                    .unwrap_or(i64::MAX)
                    .saturating_add(base);
                let since_sent = i64::try_from(now_ms)
                    .unwrap_or(i64::MAX)
                    .saturating_sub(sent_here);
                u64::try_from(since_sent).unwrap_or(0)
            }
            _ => since_heard,
        }
    }

    /// When, on the coordinator's clock, it sent its newest message (or was last heard).
    pub fn last_sign_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.silence_ms(now_ms))
    }
}

/// How far behind the coordinator itself is: its tick's lateness and its messages' backlog.
#[derive(Debug)]
pub struct Lag {
    period: Duration,
    last_tick: Option<Instant>,
    /// Recent tick lateness, `(when, ms)`, for [`Lag::WINDOW`].
    ticks: VecDeque<(Instant, u64)>,
    /// Recent extra delivery delays, `(when, ms)`, for [`Lag::BACKLOG_WINDOW`].
    backlog: VecDeque<(Instant, u64)>,
}

impl Lag {
    /// How long a lateness widens the timeout after it was seen.
    pub const WINDOW: Duration = Duration::from_secs(10);
    /// Over how long the fastest delivery is taken as the backlog.
    pub const BACKLOG_WINDOW: Duration = Duration::from_secs(3);

    /// For a tick every `period`.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            last_tick: None,
            ticks: VecDeque::new(),
            backlog: VecDeque::new(),
        }
    }

    /// The tick fired at `now`.
    pub fn tick(&mut self, now: Instant) {
        if let Some(last) = self.last_tick.replace(now) {
            let late = now
                .saturating_duration_since(last)
                .saturating_sub(self.period);
            self.ticks.push_back((now, millis(late)));
        }
        while self
            .ticks
            .front()
            .is_some_and(|(at, _)| *at + Self::WINDOW < now)
        {
            self.ticks.pop_front();
        }
    }

    /// A message reached the actor `extra_ms` later than its agent's fastest delivery.
    pub fn delivered(&mut self, now: Instant, extra_ms: u64) {
        self.backlog.push_back((now, extra_ms));
        while self
            .backlog
            .front()
            .is_some_and(|(at, _)| *at + Self::BACKLOG_WINDOW < now)
        {
            self.backlog.pop_front();
        }
    }

    /// How far behind the coordinator is at `now`: its worst recent tick lateness, or the
    /// smallest extra delay of the messages of the backlog window (every message waits in a
    /// backlog), whichever is larger.
    pub fn behind(&self, now: Instant) -> Duration {
        let ticks = self.ticks.iter().map(|(_, ms)| *ms).max().unwrap_or(0);
        let backlog = self
            .backlog
            .iter()
            .filter(|(at, _)| *at + Self::BACKLOG_WINDOW >= now)
            .map(|(_, ms)| *ms)
            .min()
            .unwrap_or(0);
        Duration::from_millis(ticks.max(backlog))
    }

    /// The silence after which an agent is lost: `timeout`, widened by twice how far behind the
    /// coordinator is.
    pub fn timeout(&self, timeout: Duration, now: Instant) -> Duration {
        timeout + 2 * self.behind(now)
    }
}

/// Whether an agent is silent beyond `limit` at `now_ms`: it sent nothing newer for longer, and
/// its frames do not keep pace with the newest second of the run (`run_second`): an agent whose
/// seconds still arrive within `limit` of the others' is alive.
pub fn is_silent(heard: &Heard, now_ms: u64, limit: Duration, run_second: Option<u64>) -> bool {
    let limit_ms = millis(limit);
    if heard.silence_ms(now_ms) <= limit_ms {
        return false;
    }
    match (heard.last_second, run_second) {
        (Some(mine), Some(newest)) => newest.saturating_sub(mine) * 1000 > limit_ms,
        _ => true,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "liveness_tests.rs"]
mod tests;

/// What a message says about its agent besides its content.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sign {
    /// Its send time (0: not said).
    pub(crate) sent_ms: u64,
    /// Its status number (0: not said; `None` for a frame).
    pub(crate) status_seq: Option<u64>,
    /// The second a frame covers.
    pub(crate) second: Option<u64>,
    /// A frame merged for the first time (not a duplicate).
    pub(crate) new_frame: bool,
}
