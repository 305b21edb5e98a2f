//! The scheduler task: wakes every [`TICK`], fires the stored tests that are due through the
//! manager (the one command path), and records each one's next fire time.

use crate::calendar::next_fire;
use crate::events::{self, EventSink};
use crate::manager::Manager;
use crate::store::{Store, TestRecord};
use herd_protocol::clock::Clock;
use herd_protocol::command::{Command, CommandMessage, Overrides};
use herd_protocol::event::Event;
use herd_protocol::PROTOCOL_VERSION;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How often due schedules are looked for: the most a fire can be late while the service runs.
pub const TICK: Duration = Duration::from_millis(250);
/// A fire found later than this (the coordinator was down) is skipped rather than run.
pub const MISSED_FIRE_GRACE: Duration = Duration::from_secs(300);

/// Fires due schedules until `shutdown` resolves.
pub async fn run(
    store: Arc<dyn Store>,
    manager: Manager,
    events: Arc<dyn EventSink>,
    shutdown: impl Future<Output = ()>,
) {
    let clock = Clock::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            () = &mut shutdown => return,
        }
        let now = clock.unix_ms();
        let tests = match store.list_tests(None).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "scheduler cannot read the tests");
                continue;
            }
        };
        for test in tests {
            if let Some(due) = test.next_fire_ms.filter(|due| *due <= now) {
                fire(&*store, &manager, &*events, test, due, now).await;
            }
        }
    }
}

/// One due fire: advance the schedule first (a crash then cannot fire it twice), then start the
/// run with an id derived from the test and the due time (a repeat of it does nothing new).
pub async fn fire(
    store: &dyn Store,
    manager: &Manager,
    events: &dyn EventSink,
    test: TestRecord,
    due: u64,
    now: u64,
) {
    let following = test
        .schedule
        .as_ref()
        .and_then(|s| next_fire(s, now.max(due) + 1).ok().flatten());
    if let Err(e) = store.set_next_fire(&test.id, following).await {
        tracing::warn!(test = %test.id, error = %e, "cannot advance a schedule");
        return;
    }
    let skip = |reason: String| {
        tracing::info!(test = %test.id, %reason, "scheduled run skipped");
        events.emit(events::message(
            Event::ScheduleSkipped {
                test: test.id.clone(),
                due_ms: due,
                reason,
            },
            None,
            now,
        ));
    };
    let late = Duration::from_millis(now.saturating_sub(due));
    if late > MISSED_FIRE_GRACE {
        skip(format!(
            "missed by {}s (the coordinator was not running)",
            late.as_secs()
        ));
        return;
    }
    let command = CommandMessage {
        version: PROTOCOL_VERSION,
        id: format!("schedule-{}-{due}", test.id),
        command: Command::StartRun {
            test_id: Some(test.id.clone()),
            plan: None,
            overrides: Overrides::default(),
            allow_concurrent: false,
        },
    };
    if let Err(rejection) = manager.execute(command).await {
        skip(rejection.message);
    }
}
