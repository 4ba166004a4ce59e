//! Shared test fixtures.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use casewire_events::{Event, EventType, Metadata, Priority};
use casewire_outbox::{ManualClock, Outbox, OutboxConfig, Page, RetryPolicy};
use chrono::DateTime;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};
use tempfile::TempDir;

/// A temporary directory with an outbox file in it, on a manual clock.
pub(crate) struct Fixture {
    pub(crate) dir: TempDir,
    pub(crate) clock: Arc<ManualClock>,
    rng: std::sync::Mutex<StdRng>,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("temp dir"),
            clock: Arc::new(ManualClock::new(
                DateTime::from_timestamp_millis(1_704_672_000_000).expect("valid time"),
            )),
            rng: std::sync::Mutex::new(StdRng::seed_from_u64(42)),
        }
    }

    pub(crate) fn db_path(&self) -> PathBuf {
        self.dir.path().join("outbox.db")
    }

    /// Config with no jitter, so schedules are exact.
    pub(crate) fn config(&self) -> OutboxConfig {
        OutboxConfig {
            clock: self.clock.clone(),
            retry: RetryPolicy {
                jitter: 0.0,
                ..RetryPolicy::from_interval(Duration::from_secs(10), 3)
            },
            ..OutboxConfig::file(self.db_path())
        }
    }

    pub(crate) fn open(&self) -> Outbox {
        Outbox::open(self.config()).expect("outbox opens")
    }

    /// Queues `n` events of keys K0, K1… durably, one transaction each.
    pub(crate) fn queue(&self, outbox: &Outbox, n: usize, priority: Priority) {
        for i in 0..n {
            outbox
                .enqueue(&self.event(&format!("K{i}"), priority))
                .wait()
                .expect("durable");
        }
    }

    /// A valid `case.updated` event whose partition key is `case`.
    pub(crate) fn event(&self, case: &str, priority: Priority) -> Event {
        let mut rng = self.rng.lock().expect("rng");
        Event::new(
            EventType::CaseUpdated,
            data(json!({"caseId": case, "status": "open"})),
            Metadata::default(),
            casewire_outbox::Clock::now(&*self.clock),
            &mut *rng,
        )
        .with_priority(priority)
    }
}

pub(crate) fn data(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("data must be an object"),
    }
}

/// Every queued event id, in order.
pub(crate) fn queued_ids(outbox: &Outbox) -> Vec<String> {
    outbox
        .list_queued(Page::first(usize::MAX >> 1))
        .expect("list")
        .into_iter()
        .map(|e| e.event_id)
        .collect()
}

/// Every dead-lettered event id, in order.
pub(crate) fn dead_ids(outbox: &Outbox) -> Vec<String> {
    outbox
        .dead_letters(Page::first(usize::MAX >> 1))
        .expect("list")
        .into_iter()
        .map(|e| e.event_id)
        .collect()
}
