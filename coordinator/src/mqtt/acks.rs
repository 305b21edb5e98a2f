//! Sending the durable session's acknowledgements: in order, through one task.
//!
//! A run's flush acknowledges every message it covered at once — 10,000 and more a second at
//! thousands of agents — and rumqttc takes requests through a bounded queue (1,024). The session
//! used to try each acknowledgement there and spawn a task per acknowledgement the queue refused.
//! That broke twice at scale (the swarm bench, 5,000 agents on Mosquitto):
//! - **Cost:** thousands of tasks waiting to send on the same queue; each one that gets through
//!   unregisters from the queue's list of waiting senders by scanning it (flume), so the cost was
//!   quadratic: 28 % of the coordinator's CPU (`perf`) went to that scan.
//! - **Order:** MQTT 3.1.1 §4.6 wants a subscriber's PUBACKs in the order of the PUBLISHes; a
//!   later acknowledgement that found room in the queue overtook earlier ones still waiting in
//!   their tasks.
//!
//! Now [`Acks::send`] only appends packet ids to a queue, and one task ([`pump`]) hands them to
//! the client in that order, waiting for room when the client's queue is full: at most one
//! sender ever waits.

use rumqttc::{AsyncClient, Publish, QoS};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;

/// Packet ids to acknowledge, in order, and the task that sends them.
#[derive(Clone)]
pub(super) struct Acks {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<u16>>,
    more: Notify,
}

impl Acks {
    /// The queue, and the task to run that sends its acknowledgements through `client`; the task
    /// ends when the client's event loop is gone.
    pub(super) fn new(client: AsyncClient) -> (Self, impl std::future::Future<Output = ()>) {
        let shared = Arc::new(Shared::default());
        let task = pump(client, Arc::clone(&shared));
        (Self { shared }, task)
    }

    /// [`Acks::new`] with its task spawned on the current runtime.
    #[cfg(test)]
    fn start(client: AsyncClient) -> Self {
        let (acks, task) = Self::new(client);
        tokio::spawn(task);
        acks
    }

    /// Acknowledges these packet ids after every id given before.
    pub(super) fn send(&self, pkids: impl IntoIterator<Item = u16>) {
        let mut queue = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = queue.len();
        queue.extend(pkids);
        let added = queue.len() > before;
        drop(queue);
        if added {
            self.shared.more.notify_one();
        }
    }
}

/// Sends queued acknowledgements one by one, in order.
async fn pump(client: AsyncClient, shared: Arc<Shared>) {
    loop {
        let batch: Vec<u16> = {
            let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.drain(..).collect()
        };
        if batch.is_empty() {
            shared.more.notified().await;
            continue;
        }
        for pkid in batch {
            let mut publish = Publish::new("", QoS::AtLeastOnce, Vec::new());
            publish.pkid = pkid;
            if client.ack(&publish).await.is_err() {
                // The event loop is gone: nothing will ever be acknowledged on this session.
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::Request;

    fn acked(request: Request) -> u16 {
        match request {
            Request::PubAck(ack) => ack.pkid,
            other => panic!("not an acknowledgement: {other:?}"),
        }
    }

    /// Acknowledgements given while the client's queue is full go out after the earlier ones and
    /// before later ones, whatever room the queue has when each is given.
    #[tokio::test]
    async fn acknowledgements_leave_in_the_order_given_even_when_the_queue_was_full() {
        let (tx, rx) = flume::bounded(2);
        let acks = Acks::start(AsyncClient::from_senders(tx));
        acks.send(1..=4);
        // The queue holds two; the task waits to send the third.
        let first = acked(rx.recv_async().await.expect("request"));
        // Room for one more now: a later acknowledgement must still wait its turn.
        acks.send([5]);
        let mut rest = Vec::new();
        for _ in 0..4 {
            rest.push(acked(rx.recv_async().await.expect("request")));
        }
        assert_eq!(first, 1);
        assert_eq!(rest, vec![2, 3, 4, 5]);
    }

    /// Thousands acknowledged at once are all sent, each once, with the queue small.
    #[tokio::test]
    async fn a_flush_of_thousands_is_sent_whole() {
        let (tx, rx) = flume::bounded(8);
        let acks = Acks::start(AsyncClient::from_senders(tx));
        acks.send(1..=20_000u16);
        let mut got = Vec::new();
        while got.len() < 20_000 {
            got.push(acked(rx.recv_async().await.expect("request")));
        }
        assert_eq!(got, (1..=20_000u16).collect::<Vec<_>>());
        assert!(rx.is_empty());
    }
}
