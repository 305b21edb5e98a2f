//! Bookkeeping of the agent's QoS1 publishes until the broker acknowledges them.
//!
//! rumqttc numbers a publish only when its event loop takes it from the request channel, and with
//! a clean session it silently drops whatever was in flight when the connection breaks. So the
//! agent keeps every message itself: `backlog` (not yet handed to the client), `handed` (in the
//! client's channel, in order), `inflight` (written, by packet id). Each `Outgoing::Publish`
//! event moves the oldest handed message to `inflight`; each `PubAck` removes one. When a
//! connection breaks, every unacknowledged message goes back to the front of the backlog to be
//! sent again after the reconnect (duplicates are fine: the coordinator drops them by sequence
//! number). The agent is done when the outbox is empty.

use std::collections::{BTreeMap, VecDeque};

/// One message to publish with QoS1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Order of submission, to resend in the original order.
    pub order: u64,
    /// MQTT topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Outbox {
    next_order: u64,
    backlog: VecDeque<Message>,
    handed: VecDeque<Message>,
    inflight: BTreeMap<u16, Message>,
    /// A publish rumqttc holds back because its packet id is still in use.
    collided: Option<(u16, Message)>,
}

impl Outbox {
    /// Queues a message.
    pub fn push(&mut self, topic: String, payload: Vec<u8>) {
        let order = self.next_order;
        self.next_order += 1;
        self.backlog.push_back(Message {
            order,
            topic,
            payload,
        });
    }

    /// Hands backlog messages, oldest first, to `try_send` until it refuses one (channel full).
    pub fn hand_over(&mut self, mut try_send: impl FnMut(&Message) -> bool) {
        while let Some(message) = self.backlog.front() {
            if !try_send(message) {
                break;
            }
            if let Some(message) = self.backlog.pop_front() {
                self.handed.push_back(message);
            }
        }
    }

    /// The client wrote a publish with packet id `pkid`.
    pub fn on_publish(&mut self, pkid: u16) {
        let message = match self.collided.take() {
            Some((id, message)) if id == pkid => Some(message),
            other => {
                self.collided = other;
                self.handed.pop_front()
            }
        };
        if let Some(message) = message {
            self.inflight.insert(pkid, message);
        }
    }

    /// The client holds a publish back until packet id `pkid` is acknowledged.
    pub fn on_await_ack(&mut self, pkid: u16) {
        if let Some(message) = self.handed.pop_front() {
            self.collided = Some((pkid, message));
        }
    }

    /// The broker acknowledged packet id `pkid`.
    pub fn on_ack(&mut self, pkid: u16) {
        self.inflight.remove(&pkid);
    }

    /// The connection broke: whatever was not acknowledged must be sent again.
    pub fn on_connection_lost(&mut self) {
        let mut lost: Vec<Message> = std::mem::take(&mut self.inflight).into_values().collect();
        lost.extend(self.handed.drain(..));
        lost.extend(self.collided.take().map(|(_, m)| m));
        lost.sort_by_key(|m| m.order);
        for message in lost.into_iter().rev() {
            self.backlog.push_front(message);
        }
    }

    /// Messages not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.backlog.len()
            + self.handed.len()
            + self.inflight.len()
            + usize::from(self.collided.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(n: usize) -> Outbox {
        let mut o = Outbox::default();
        for i in 0..n {
            o.push(format!("t{i}"), vec![u8::try_from(i).unwrap_or(0)]);
        }
        o
    }

    #[test]
    fn messages_are_pending_until_acknowledged() {
        let mut o = outbox(3);
        let mut sent = Vec::new();
        o.hand_over(|m| {
            sent.push(m.topic.clone());
            sent.len() < 3
        });
        // The channel refused the third message: it stays in the backlog.
        assert_eq!(sent, vec!["t0", "t1", "t2"]);
        assert_eq!(o.pending(), 3);
        o.on_publish(1);
        o.on_publish(2);
        o.on_ack(1);
        assert_eq!(o.pending(), 2);
        o.hand_over(|_| true);
        o.on_publish(3);
        o.on_ack(3);
        o.on_ack(2);
        assert_eq!(o.pending(), 0);
    }

    #[test]
    fn a_lost_connection_resends_everything_unacknowledged_in_order() {
        let mut o = outbox(4);
        o.hand_over(|_| true);
        o.on_publish(1);
        o.on_publish(2);
        o.on_ack(1);
        o.on_connection_lost();
        let mut resent = Vec::new();
        o.hand_over(|m| {
            resent.push(m.topic.clone());
            true
        });
        assert_eq!(resent, vec!["t1", "t2", "t3"]);
        assert_eq!(o.pending(), 3);
    }

    #[test]
    fn a_collided_publish_is_tracked_until_written() {
        let mut o = outbox(2);
        o.hand_over(|_| true);
        o.on_publish(1);
        o.on_await_ack(1);
        assert_eq!(o.pending(), 2);
        o.on_ack(1);
        o.on_publish(1);
        o.on_ack(1);
        assert_eq!(o.pending(), 0);
    }
}
