//! Shared fixtures: an outbox on a temp file, a mock cluster, a consumer that reads everything.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use casewire_events::{Event, EventType, Metadata};
use casewire_outbox::{Outbox, OutboxConfig, Page, QueueStats, RetryPolicy};
use casewire_relay::RelayConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::json;

pub(crate) const TOPIC: &str = "fraud.events";

/// Upper bound for any single wait in these tests.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

pub(crate) struct Fixture {
    /// Holds the outbox's directory for the test's lifetime.
    _dir: tempfile::TempDir,
    pub(crate) outbox: Arc<Outbox>,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        casewire_testkit::test_logging();
        let dir = tempfile::tempdir().expect("temp dir");
        let outbox = Arc::new(Outbox::open(outbox_config(&dir)).expect("outbox"));
        Fixture { _dir: dir, outbox }
    }

    /// Enqueues `n` events spread over `keys` cases; returns their ids in commit order.
    pub(crate) fn enqueue(&self, n: usize, keys: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let e = event(&format!("CASE-2024-{:03}", i % keys), i);
                self.outbox.enqueue(&e).wait().expect("durable");
                e.event_id.to_string()
            })
            .collect()
    }

    /// The outbox's database file.
    #[allow(dead_code)]
    pub(crate) fn path(&self) -> std::path::PathBuf {
        self._dir.path().join("outbox.db")
    }

    #[allow(dead_code)]
    pub(crate) fn stats(&self) -> QueueStats {
        self.outbox.stats(Page::first(100)).expect("stats")
    }
}

pub(crate) fn outbox_config(dir: &tempfile::TempDir) -> OutboxConfig {
    OutboxConfig {
        // Short schedules: tests never wait through a production retry interval.
        retry: RetryPolicy::from_interval(Duration::from_millis(40), 3),
        ..OutboxConfig::file(dir.path().join("outbox.db"))
    }
}

pub(crate) fn relay_config(brokers: &str) -> RelayConfig {
    RelayConfig {
        probe_interval: Duration::from_millis(50),
        linger: Duration::from_millis(1),
        message_timeout: Duration::from_secs(5),
        shutdown_timeout: Duration::from_secs(5),
        ..RelayConfig::new(brokers)
    }
}

pub(crate) fn event(case: &str, n: usize) -> Event {
    Event::new(
        EventType::CaseUpdated,
        json!({"caseId": case, "n": n})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        Metadata {
            source: Some("casewire-test".into()),
            ..Metadata::default()
        },
        chrono::Utc::now(),
        &mut rand::rng(),
    )
}

/// Polls `check` every 10 ms until it holds; fails the test after [`PATIENCE`].
pub(crate) async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One message read back from the topic.
#[derive(Debug, Clone)]
pub(crate) struct Delivered {
    pub(crate) key: String,
    pub(crate) event: Event,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) partition: i32,
}

/// Reads the whole topic from the beginning through `assign()`, until `expected` messages have
/// arrived (or [`PATIENCE`] passes), and checks every message's schema and headers.
pub(crate) fn read_topic(brokers: &str, expected: usize) -> Vec<Delivered> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "casewire-tests")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(TOPIC), Duration::from_secs(10))
        .expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    assert!(partitions > 0, "topic {TOPIC} has partitions");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .expect("offset");
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + PATIENCE;
    let mut out = Vec::new();
    while out.len() < expected && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.expect("fetch");
        let event = Event::from_json(message.payload().expect("value"))
            .expect("value is an event document");
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Delivered {
            key: String::from_utf8(message.key().expect("key").to_vec()).expect("utf-8 key"),
            event,
            headers,
            partition: message.partition(),
        });
    }
    out
}

/// Checks what was read: the expected ids, each exactly once; each message's key, headers and
/// schema; and per-key commit order.
pub(crate) fn assert_delivered_once_in_order(delivered: &[Delivered], expected: &[String]) {
    let mut seen = HashMap::new();
    for d in delivered {
        *seen.entry(d.event.event_id.to_string()).or_insert(0) += 1;
        assert_eq!(d.key, d.event.partition_key());
        assert_eq!(d.headers["ce_id"], d.event.event_id.as_str());
        assert_eq!(d.headers["ce_type"], d.event.event_type.as_str());
        assert_eq!(d.headers["ce_specversion"], "1.0");
        assert_eq!(
            d.headers["ce_source"],
            d.event.metadata.source.clone().unwrap_or_default()
        );
        assert_eq!(d.headers["content-type"], "application/json");
        assert_eq!(d.headers["priority"], d.event.priority.as_str());
        assert_eq!(
            d.headers["ce_time"],
            d.event
                .timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        d.event
            .validate(&Default::default())
            .expect("every message passes the schema");
    }
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "missing from the topic: {missing:?}");
    let dupes: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "delivered more than once: {dupes:?}");
    assert_eq!(delivered.len(), expected.len());
    assert_per_key_order(delivered, expected);
}

/// Within each key, messages are in commit order (the order of `expected`).
pub(crate) fn assert_per_key_order(delivered: &[Delivered], expected: &[String]) {
    let rank: HashMap<&str, usize> = expected
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut last: HashMap<(&str, i32), usize> = HashMap::new();
    for d in delivered {
        let Some(&r) = rank.get(d.event.event_id.as_str()) else {
            continue;
        };
        if let Some(prev) = last.insert((d.key.as_str(), d.partition), r) {
            assert!(
                prev < r,
                "key {} out of order: {} after a later event",
                d.key,
                d.event.event_id
            );
        }
    }
}
