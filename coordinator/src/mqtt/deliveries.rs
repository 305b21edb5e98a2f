//! Which agent messages the coordinator's durable MQTT session may acknowledge, and when.
//!
//! With a durable session (`clean_session = false`, a stable client id, manual acknowledgements)
//! the broker keeps every QoS1 message until the coordinator acknowledges it, and delivers again
//! whatever was not acknowledged when the coordinator comes back after a crash. So a message is
//! acknowledged only once its effect is stored: the run actor says "the first `n` messages you
//! delivered me are stored" ([`Deliveries::acknowledge`]), and only those are acknowledged.
//!
//! Three more cases:
//! - **Messages for a run nobody registered yet** (right after a restart, the broker delivers the
//!   backlog before the manager has resumed the runs) wait here, unacknowledged, and are handed
//!   over in order when the run registers ([`Deliveries::release`]); after [`WAIT_LIMIT`] nobody
//!   claims them and they are acknowledged and dropped.
//! - **Messages for a run that ended** (late heartbeats) are acknowledged at once.
//! - **A reconnection** makes the broker deliver again, with their packet ids, every message not
//!   acknowledged on the previous connection: acknowledging the old deliveries too would
//!   acknowledge, by packet id, whatever the broker numbered with a reused id later. So each
//!   delivery remembers its connection, and only deliveries of the current one are acknowledged.
//!
//! This is pure bookkeeping (no client, no clock of its own): it returns packet ids to acknowledge.

use herd_protocol::RunId;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// How long messages for an unregistered run wait for it.
pub(super) const WAIT_LIMIT: Duration = Duration::from_secs(30);
/// How many ended runs are remembered (their stray messages are acknowledged at once).
const CLOSED_MEMORY: usize = 1024;

/// A QoS1 delivery that can be acknowledged: its packet id on the connection it arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Token {
    pkid: u16,
    connection: u64,
}

/// Deliveries to one registered run, in order; the first `acked` were already acknowledged.
#[derive(Debug, Default)]
struct Delivered {
    acked: u64,
    queue: VecDeque<Option<Token>>,
}

/// See the module docs. `M` is the message type (generic so the bookkeeping is testable alone).
#[derive(Debug)]
pub(super) struct Deliveries<M> {
    connection: u64,
    delivered: HashMap<RunId, Delivered>,
    waiting: HashMap<RunId, VecDeque<(Instant, M, Option<Token>)>>,
    closed: HashSet<RunId>,
    closed_order: VecDeque<RunId>,
}

impl<M> Default for Deliveries<M> {
    fn default() -> Self {
        Self {
            connection: 0,
            delivered: HashMap::new(),
            waiting: HashMap::new(),
            closed: HashSet::new(),
            closed_order: VecDeque::new(),
        }
    }
}

impl<M> Deliveries<M> {
    /// The token of a QoS1 delivery with packet id `pkid`, arriving now.
    pub(super) fn token(&self, pkid: u16) -> Token {
        Token {
            pkid,
            connection: self.connection,
        }
    }

    /// The session reconnected: earlier deliveries will come again and are not acknowledged.
    pub(super) fn reconnected(&mut self) {
        self.connection += 1;
    }

    /// A message was handed to `run`'s registered recipient.
    pub(super) fn delivered(&mut self, run: &RunId, token: Option<Token>) {
        self.delivered
            .entry(run.clone())
            .or_default()
            .queue
            .push_back(token);
    }

    /// A message arrived for `run`, which is not registered: it waits for it, unless the run
    /// ended, in which case its packet id is returned to be acknowledged now.
    pub(super) fn hold(
        &mut self,
        run: RunId,
        message: M,
        token: Option<Token>,
        now: Instant,
    ) -> Option<u16> {
        if self.closed.contains(&run) {
            return self.ackable(token);
        }
        self.waiting
            .entry(run)
            .or_default()
            .push_back((now, message, token));
        None
    }

    /// `run` registers: the messages that waited for it, in arrival order, to be delivered now
    /// (each then goes through [`Deliveries::delivered`]).
    pub(super) fn release(&mut self, run: &RunId) -> Vec<(M, Option<Token>)> {
        if self.closed.remove(run) {
            self.closed_order.retain(|r| r != run);
        }
        self.waiting
            .remove(run)
            .into_iter()
            .flatten()
            .map(|(_, message, token)| (message, token))
            .collect()
    }

    /// The first `count` deliveries to `run` took effect: the packet ids to acknowledge.
    pub(super) fn acknowledge(&mut self, run: &RunId, count: u64) -> Vec<u16> {
        let Some(d) = self.delivered.get_mut(run) else {
            return Vec::new();
        };
        let mut tokens = Vec::new();
        while d.acked < count {
            let Some(token) = d.queue.pop_front() else {
                break;
            };
            d.acked += 1;
            tokens.push(token);
        }
        tokens.into_iter().filter_map(|t| self.ackable(t)).collect()
    }

    /// `run` ended: everything delivered to it or waiting for it is acknowledged, and so is
    /// whatever arrives for it later.
    pub(super) fn close(&mut self, run: &RunId) -> Vec<u16> {
        let mut tokens: Vec<Option<Token>> = self
            .delivered
            .remove(run)
            .map(|d| d.queue.into_iter().collect())
            .unwrap_or_default();
        tokens.extend(
            self.waiting
                .remove(run)
                .into_iter()
                .flatten()
                .map(|(_, _, t)| t),
        );
        if self.closed.insert(run.clone()) {
            self.closed_order.push_back(run.clone());
            if self.closed_order.len() > CLOSED_MEMORY {
                if let Some(oldest) = self.closed_order.pop_front() {
                    self.closed.remove(&oldest);
                }
            }
        }
        tokens.into_iter().filter_map(|t| self.ackable(t)).collect()
    }

    /// Messages that waited longer than `limit` for their run: dropped, their packet ids returned
    /// to be acknowledged.
    pub(super) fn expire(&mut self, now: Instant, limit: Duration) -> Vec<u16> {
        let mut tokens = Vec::new();
        self.waiting.retain(|run, queue| {
            while queue
                .front()
                .is_some_and(|(at, _, _)| now.duration_since(*at) >= limit)
            {
                if let Some((_, _, token)) = queue.pop_front() {
                    tracing::debug!(%run, "dropping a message no run claimed");
                    tokens.push(token);
                }
            }
            !queue.is_empty()
        });
        tokens.into_iter().filter_map(|t| self.ackable(t)).collect()
    }

    /// The packet id to acknowledge for `token`, if it can be (a current-connection QoS1 delivery).
    pub(super) fn ackable(&self, token: Option<Token>) -> Option<u16> {
        token
            .filter(|t| t.connection == self.connection)
            .map(|t| t.pkid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &str) -> RunId {
        RunId::new(s).expect("valid")
    }

    #[test]
    fn only_what_the_run_stored_is_acknowledged_in_delivery_order() {
        let mut d = Deliveries::<&str>::default();
        let r = run("r");
        for pkid in [5, 6, 7] {
            let t = d.token(pkid);
            d.delivered(&r, Some(t));
        }
        d.delivered(&r, None); // a QoS0 message counts but has nothing to acknowledge
        assert_eq!(d.acknowledge(&r, 2), vec![5, 6]);
        assert_eq!(d.acknowledge(&r, 2), Vec::<u16>::new(), "each once");
        assert_eq!(d.acknowledge(&r, 10), vec![7]);
        assert_eq!(d.acknowledge(&run("other"), 3), Vec::<u16>::new());
    }

    #[tokio::test(start_paused = true)]
    async fn messages_for_an_unregistered_run_wait_for_it_or_expire() {
        let mut d = Deliveries::default();
        let (r, stray) = (run("r"), run("stray"));
        let t0 = Instant::now();
        assert_eq!(d.hold(r.clone(), "a", Some(d.token(1)), t0), None);
        assert_eq!(d.hold(stray.clone(), "x", Some(d.token(2)), t0), None);
        assert_eq!(d.hold(r.clone(), "b", None, t0), None);
        let released = d.release(&r);
        assert_eq!(
            released.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(d.expire(t0 + WAIT_LIMIT / 2, WAIT_LIMIT).is_empty());
        assert_eq!(d.expire(t0 + WAIT_LIMIT, WAIT_LIMIT), vec![2]);
        assert!(d.release(&stray).is_empty(), "expired messages are gone");
    }

    #[test]
    fn an_ended_run_has_everything_acknowledged_now_and_later() {
        let mut d = Deliveries::default();
        let r = run("r");
        d.delivered(&r, Some(d.token(1)));
        d.delivered(&r, Some(d.token(2)));
        assert_eq!(d.acknowledge(&r, 1), vec![1]);
        assert_eq!(d.close(&r), vec![2]);
        let now = Instant::now();
        assert_eq!(d.hold(r.clone(), "late", Some(d.token(3)), now), Some(3));
        // Registering again (a resumed run) reopens it.
        assert!(d.release(&r).is_empty());
        assert_eq!(d.hold(r.clone(), "next", Some(d.token(4)), now), None);
    }

    #[test]
    fn deliveries_of_an_earlier_connection_are_never_acknowledged() {
        let mut d = Deliveries::<&str>::default();
        let r = run("r");
        d.delivered(&r, Some(d.token(9)));
        d.reconnected();
        // The broker delivers packet 9 again on the new connection.
        d.delivered(&r, Some(d.token(9)));
        assert_eq!(
            d.acknowledge(&r, 2),
            vec![9],
            "acknowledged once, for the new delivery"
        );
        d.delivered(&r, Some(d.token(3)));
        d.reconnected();
        assert!(d.close(&r).is_empty());
    }
}
