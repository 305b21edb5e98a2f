//! Where the coordinator's events go: one of herd's boundaries.
//!
//! The manager holds an `Arc<dyn EventSink>` and never knows where events end up. Locally,
//! [`LocalEvents`] writes them to the log and to an in-memory broadcast that SSE clients and tests
//! subscribe to; in AWS mode an SNS adapter implements the same trait, and [`Fanout`] sends
//! every event to both.

use herd_protocol::event::{Event, EventMessage};
use herd_protocol::PROTOCOL_VERSION;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Receives every event. `emit` must not block: adapters that do I/O queue or spawn.
pub trait EventSink: Send + Sync + 'static {
    /// Publishes one event.
    fn emit(&self, event: EventMessage);
}

/// The local sink: the log, plus a broadcast to in-process subscribers.
#[derive(Debug, Clone)]
pub struct LocalEvents {
    tx: broadcast::Sender<EventMessage>,
}

impl LocalEvents {
    /// A sink keeping up to 1024 events for slow subscribers.
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
        }
    }

    /// Every event emitted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EventMessage> {
        self.tx.subscribe()
    }
}

impl Default for LocalEvents {
    fn default() -> Self {
        Self::new()
    }
}

impl EventSink for LocalEvents {
    fn emit(&self, event: EventMessage) {
        // `run.progress` comes every second of every run: the log shows it only when asked.
        if matches!(event.event, Event::RunProgress { .. }) {
            tracing::debug!(
                event = event.event.name(),
                run = event.event.run().unwrap_or(""),
                "{}",
                serde_json::to_string(&event.event).unwrap_or_default()
            );
        } else {
            tracing::info!(
                event = event.event.name(),
                run = event.event.run().unwrap_or(""),
                command = event.command_id.as_deref().unwrap_or(""),
                "{}",
                serde_json::to_string(&event.event).unwrap_or_default()
            );
        }
        // No subscriber is not an error.
        let _ = self.tx.send(event);
    }
}

/// Several sinks as one: each event goes to every one of them, in order (the log and SNS, say).
pub struct Fanout(pub Vec<Arc<dyn EventSink>>);

impl EventSink for Fanout {
    fn emit(&self, event: EventMessage) {
        if let Some((last, rest)) = self.0.split_last() {
            for sink in rest {
                sink.emit(event.clone());
            }
            last.emit(event);
        }
    }
}

/// An event stamped now.
pub fn message(event: Event, command_id: Option<String>, at_ms: u64) -> EventMessage {
    EventMessage {
        version: PROTOCOL_VERSION,
        at_ms,
        command_id,
        event,
    }
}
