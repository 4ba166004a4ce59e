//! Fixtures for end-to-end tests: a tansu broker process, the relay-app helper, and a consumer
//! that reads the whole topic through `assign()`.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use casewire_events::Event;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

pub const TOPIC: &str = "fraud.events";

/// Upper bound for any single wait.
pub const PATIENCE: Duration = Duration::from_secs(60);

// Not every test file that includes this module starts a broker.
#[allow(unused_imports)]
pub use casewire_testkit::Tansu;

/// The relay-app helper process.
pub fn relay_app(db: &std::path::Path, brokers: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_relay-app"))
        .arg(db)
        .arg(brokers)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn relay-app")
}

/// A consumer assigned to every partition of the topic from the beginning, reading
/// continuously; `auto.offset.reset=earliest` carries it over a broker restart (which empties
/// tansu's memory storage).
pub struct TopicReader {
    consumer: Option<BaseConsumer>,
    brokers: String,
    partitions: i32,
    /// Event id → how many times it was read.
    pub seen: HashMap<String, usize>,
    /// Every message read, in read order.
    pub messages: Vec<(String, i32, Event)>,
}

impl TopicReader {
    pub fn new(brokers: &str) -> TopicReader {
        let mut reader = TopicReader {
            consumer: None,
            brokers: brokers.to_owned(),
            partitions: 0,
            seen: HashMap::new(),
            messages: Vec::new(),
        };
        reader.connect();
        reader
    }

    /// Drops the consumer, before its broker restarts: tansu gives the topic a new id when it
    /// comes back empty, and librdkafka 2.12 crashes (a NULL topic name in its metadata cache)
    /// when a fetch response names a topic id it no longer knows.
    pub fn disconnect(&mut self) {
        self.consumer = None;
        self.partitions = 0;
    }

    /// A fresh consumer, assigned from the beginning once the topic exists.
    pub fn connect(&mut self) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", "casewire-e2e")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "true")
            .set("fetch.wait.max.ms", "20")
            .set("reconnect.backoff.max.ms", "200")
            .create()
            .expect("consumer");
        self.consumer = Some(consumer);
        self.partitions = 0;
    }

    fn consumer(&self) -> &BaseConsumer {
        self.consumer.as_ref().expect("connected")
    }

    fn assign(&mut self) -> bool {
        let Ok(metadata) = self
            .consumer()
            .fetch_metadata(Some(TOPIC), Duration::from_secs(2))
        else {
            return false;
        };
        let partitions = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len() as i32);
        if partitions == 0 {
            return false;
        }
        if partitions != self.partitions {
            let mut tpl = TopicPartitionList::new();
            for p in 0..partitions {
                tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
                    .expect("offset");
            }
            self.consumer().assign(&tpl).expect("assign");
            self.partitions = partitions;
        }
        true
    }

    /// Reads for up to `for_at_most`, or until `done` holds.
    pub fn read_until(
        &mut self,
        for_at_most: Duration,
        mut done: impl FnMut(&TopicReader) -> bool,
    ) -> bool {
        let deadline = Instant::now() + for_at_most;
        while Instant::now() < deadline {
            if done(self) {
                return true;
            }
            if self.partitions == 0 && !self.assign() {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            let polled = self
                .consumer()
                .poll(Duration::from_millis(50))
                .map(|r| r.map(|m| m.detach()));
            // Errors while a broker restarts are expected; the consumer reconnects.
            if let Some(Ok(message)) = polled {
                let event =
                    Event::from_json(message.payload().expect("value")).expect("an event document");
                event
                    .validate(&Default::default())
                    .expect("every message passes the schema");
                let key = String::from_utf8(message.key().expect("key").to_vec()).expect("utf-8");
                assert_eq!(key, event.partition_key());
                *self.seen.entry(event.event_id.to_string()).or_default() += 1;
                self.messages.push((key, message.partition(), event));
            }
        }
        done(self)
    }

    /// Reads until every id in `ids` has been seen at least once.
    ///
    /// Linear in the messages read: the ids still missing are struck off as their messages
    /// arrive (checking every id after every message was quadratic, and a debug build on a
    /// loaded machine spent its whole patience on 20,000 ids).
    pub fn read_all(&mut self, ids: &[String]) {
        let mut missing: std::collections::HashSet<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| !self.seen.contains_key(*id))
            .collect();
        let mut checked = self.messages.len();
        let ok = self.read_until(PATIENCE, |r| {
            for (_, _, event) in &r.messages[checked..] {
                missing.remove(event.event_id.as_str());
            }
            checked = r.messages.len();
            missing.is_empty()
        });
        let missing: Vec<_> = ids
            .iter()
            .filter(|id| !self.seen.contains_key(*id))
            .take(10)
            .collect();
        assert!(
            ok,
            "events missing from the topic (first 10): {missing:?} of {}",
            ids.len()
        );
    }

    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// Events read more than once (they carry the same eventId, so consumers can drop them).
    pub fn duplicates(&self) -> usize {
        self.seen.values().map(|n| n - 1).sum()
    }

    /// Checks per-key commit order among the first reading of each event.
    pub fn assert_per_key_order(&self, commit_order: &[String]) {
        let rank: HashMap<&str, usize> = commit_order
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let mut last: HashMap<&str, usize> = HashMap::new();
        let mut first_reads = std::collections::HashSet::new();
        for (key, _, event) in &self.messages {
            let id = event.event_id.as_str();
            if !first_reads.insert(id) {
                continue;
            }
            let Some(&r) = rank.get(id) else { continue };
            if let Some(prev) = last.insert(key.as_str(), r) {
                assert!(
                    prev < r,
                    "key {key}: {id} arrived after a later event of its key"
                );
            }
        }
    }
}

/// A small tmpfs mounted for one test (the tests run as root), unmounted when dropped.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root: run the tests as root"
        );
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}
