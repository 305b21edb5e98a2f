//! Commands from an SQS queue: the command intake of the AWS mode.
//!
//! Other systems (and, through SNS topics fanned into the queue, ops chatbots) send commands to
//! one queue; every message goes through the same `Manager` path as the HTTP API, the
//! scheduler and the MQTT topic. What a body may be is in [`super::envelope`].
//!
//! **Receiving.** Long polling (`wait_time`), up to 10 messages a call, at most [`IN_FLIGHT`]
//! messages handled at once, each in its own task, so a slow command does not hold up the others.
//! Each receive sets the messages' visibility timeout to `visibility_timeout`; a command still in
//! progress after half of it gets its visibility extended (`ChangeMessageVisibility`) every half
//! timeout, so SQS does not hand it to another consumer meanwhile.
//!
//! **Deleting.** A message is deleted only after `CommandSink::execute` returned: the manager has
//! then stored the command id with its reply, so if the delete is lost and SQS delivers the
//! message again, the repeat gets the first reply and does nothing (at-least-once delivery,
//! exactly-once effect). What happens to a message depends on the outcome ([`disposition`]):
//! - carried out, or a repeat: **deleted**;
//! - body unreadable (not JSON, not a command, bad chat text), or refused `invalid` (a bad plan or
//!   field) or `not_found`: **kept**. It can never succeed as sent, so the queue's redrive policy
//!   moves it to the DLQ after `maxReceiveCount` receives, where it can be inspected and replayed;
//! - refused `conflict` (the test's run is active, the run already ended) or `capacity` (the
//!   agent cap): **deleted**. The refusal is an answer: the sender gets `command.rejected` with
//!   the command id and decides (resend, with the same id if it likes: a refused command is not
//!   remembered). Retrying by redelivery instead would start a load test at an unpredictable
//!   later time, whenever what blocked it ended; repeat the event on every receive; and finally
//!   mix answered commands into the DLQ with the broken ones;
//! - refused `internal` (the store failed): **kept**. herd's own transient failure: SQS delivers
//!   it again after the visibility timeout, and the DLQ catches it if the failure lasts;
//! - refused `unavailable` (shutting down): **made visible at once**, for another coordinator or
//!   this one restarted.
//!
//! Each unreadable or refused message yields a `command.rejected` event naming the problem
//! (with the field path for plan errors) on every receive, so a sender watching events learns it
//! without reading the DLQ. A chat `status` is answered with a `runs.active` event and deleted.
//!
//! **Errors talking to SQS** are logged and retried with a growing pause (1 s doubling to 30 s);
//! the intake never gives up while the coordinator runs. On shutdown it stops receiving and lets
//! the commands in progress finish (and their messages be deleted).

use super::envelope::{self, Request};
use crate::config::SqsCommands;
use crate::events::{self, EventSink};
use crate::manager::{Code, CommandSink, Rejection, Reply};
use aws_config::SdkConfig;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use herd_protocol::clock::Clock;
use herd_protocol::event::Event;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Messages handled at once (SQS hands out at most 10 per receive).
pub const IN_FLIGHT: usize = 10;

/// The pause after a failed receive: doubling from 1 s up to 30 s.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What becomes of a message after its command was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Delete it: done, or answered.
    Delete,
    /// Leave it: it comes back after its visibility timeout, and ends in the DLQ eventually.
    Keep,
    /// Make it visible again now, for another consumer.
    Release,
}

/// What to do with a message given the manager's answer (see the module's table).
pub fn disposition(outcome: &Result<Reply, Rejection>) -> Disposition {
    match outcome {
        Ok(_) => Disposition::Delete,
        Err(r) => match r.code {
            Code::Conflict | Code::Capacity => Disposition::Delete,
            Code::Invalid | Code::NotFound | Code::Internal => Disposition::Keep,
            Code::Unavailable => Disposition::Release,
        },
    }
}

/// Takes commands from an SQS queue.
pub struct SqsIntake {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    wait: Duration,
    visibility: Duration,
    clock: Clock,
}

impl SqsIntake {
    /// An intake of the queue `cfg.queue_url`.
    pub fn new(sdk: &SdkConfig, cfg: &SqsCommands) -> Self {
        Self {
            client: aws_sdk_sqs::Client::new(sdk),
            queue_url: cfg.queue_url.clone(),
            wait: cfg.wait_time,
            visibility: cfg.visibility_timeout.max(Duration::from_secs(1)),
            clock: Clock::new(),
        }
    }

    /// Takes commands until `shutdown` resolves, then waits for those in progress.
    pub async fn run(
        self,
        manager: impl CommandSink + Clone,
        sink: Arc<dyn EventSink>,
        shutdown: impl Future<Output = ()>,
    ) {
        let this = Arc::new(self);
        let mut in_flight = JoinSet::new();
        let mut backoff = BACKOFF_FIRST;
        tokio::pin!(shutdown);
        tracing::info!(queue = %this.queue_url, "taking commands from SQS");
        loop {
            while in_flight.try_join_next().is_some() {}
            if in_flight.len() >= IN_FLIGHT {
                tokio::select! {
                    _ = in_flight.join_next() => continue,
                    () = &mut shutdown => break,
                }
            }
            let room = IN_FLIGHT - in_flight.len();
            let received = tokio::select! {
                received = this.receive(room) => received,
                () = &mut shutdown => break,
            };
            match received {
                Ok(messages) => {
                    backoff = BACKOFF_FIRST;
                    for message in messages {
                        let (this, manager, sink) = (this.clone(), manager.clone(), sink.clone());
                        in_flight
                            .spawn(async move { this.handle(message, &manager, &*sink).await });
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        queue = %this.queue_url,
                        error = %e,
                        retry_in_s = backoff.as_secs(),
                        "cannot receive commands from SQS"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = &mut shutdown => break,
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        while in_flight.join_next().await.is_some() {}
        tracing::info!(queue = %this.queue_url, "stopped taking commands from SQS");
    }

    async fn receive(&self, max: usize) -> Result<Vec<Message>, String> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(self.wait.as_secs().min(20) as i32)
            .visibility_timeout(seconds(self.visibility))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        Ok(output.messages.unwrap_or_default())
    }

    async fn handle(&self, message: Message, manager: &dyn CommandSink, sink: &dyn EventSink) {
        let Some(receipt) = message.receipt_handle() else {
            tracing::warn!("an SQS message without a receipt handle: ignored");
            return;
        };
        let message_id = message.message_id().unwrap_or("");
        let receives = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .map(String::as_str)
            .unwrap_or("?");
        match envelope::read(message.body().unwrap_or(""), message_id) {
            Err(unreadable) => {
                tracing::warn!(
                    message = message_id,
                    receives,
                    problem = %unreadable.problem,
                    "not a command: left for the queue's redrive policy (DLQ)"
                );
                let event = Event::CommandRejected {
                    code: Code::Invalid.as_str().into(),
                    message: unreadable.problem,
                };
                sink.emit(events::message(event, unreadable.id, self.clock.unix_ms()));
            }
            Ok(Request::Status { id }) => {
                let runs = manager.active_runs().await;
                let event = Event::ActiveRuns { runs };
                sink.emit(events::message(event, Some(id), self.clock.unix_ms()));
                self.delete(receipt).await;
            }
            Ok(Request::Command(command)) => {
                let id = command.id.clone();
                let outcome = self.holding(receipt, manager.execute(command)).await;
                let disposition = disposition(&outcome);
                match &outcome {
                    Ok(_) => {
                        tracing::info!(command = %id, message = message_id, "SQS command carried out")
                    }
                    Err(r) => tracing::info!(
                        command = %id,
                        message = message_id,
                        receives,
                        code = r.code.as_str(),
                        problem = %r.message,
                        ?disposition,
                        "SQS command refused"
                    ),
                }
                match disposition {
                    Disposition::Delete => self.delete(receipt).await,
                    Disposition::Keep => {}
                    Disposition::Release => self.set_visibility(receipt, Duration::ZERO).await,
                }
            }
        }
    }

    /// Runs `work`, extending the message's visibility every half timeout while it is not done.
    pub async fn holding<F: Future>(&self, receipt: &str, work: F) -> F::Output {
        tokio::pin!(work);
        let every = self.visibility / 2;
        loop {
            tokio::select! {
                output = &mut work => return output,
                () = tokio::time::sleep(every) => self.set_visibility(receipt, self.visibility).await,
            }
        }
    }

    async fn set_visibility(&self, receipt: &str, timeout: Duration) {
        if let Err(e) = self
            .client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds(timeout))
            .send()
            .await
        {
            tracing::warn!(error = %DisplayErrorContext(&e), "cannot change a command message's visibility");
        }
    }

    async fn delete(&self, receipt: &str) {
        // A lost delete is harmless: the redelivered command's id is known, the repeat does nothing.
        if let Err(e) = self
            .client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            tracing::warn!(error = %DisplayErrorContext(&e), "cannot delete a handled command message");
        }
    }
}

/// A duration as SQS's whole seconds (visibility timeouts are at most 12 hours).
fn seconds(d: Duration) -> i32 {
    d.as_secs().min(43_200) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_permanent_and_herd_failures_stay_on_the_queue() {
        let refused = |code| Err(Rejection::new(code, "x"));
        let done = Ok(Reply::Stopping { run_id: "r".into() });
        assert_eq!(disposition(&done), Disposition::Delete);
        assert_eq!(disposition(&refused(Code::Conflict)), Disposition::Delete);
        assert_eq!(disposition(&refused(Code::Capacity)), Disposition::Delete);
        assert_eq!(disposition(&refused(Code::Invalid)), Disposition::Keep);
        assert_eq!(disposition(&refused(Code::NotFound)), Disposition::Keep);
        assert_eq!(disposition(&refused(Code::Internal)), Disposition::Keep);
        assert_eq!(
            disposition(&refused(Code::Unavailable)),
            Disposition::Release
        );
    }
}
