//! A network that drops packets, not one that refuses connections: `casewire serve` in the
//! test's network namespace, a tansu broker in one of its own behind a veth pair, and nftables
//! rules in the broker's namespace that drop every packet, drop 30 % of them, or come and go
//! (`casewire_testkit::netns`). Cases are created over the API the whole time. Whatever the
//! network does, every case the API accepted reaches the topic, no attempt is counted and
//! nothing is dead-lettered; once the link returns, the backlog moves within 2 s.
//!
//! Needs root (network namespaces, nftables), as the README's test command runs.

use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use casewire_testkit::Tansu;
use casewire_testkit::netns::Link;
use serde_json::{Value, json};

mod support;
use support::{add_user, casewire, login, queue_size, serve, stop, topic_events};

const PATIENCE: Duration = Duration::from_secs(120);
/// librdkafka's `message.timeout.ms` here: a cut longer than this makes messages time out, so
/// the tests see the relay notice the partition (30 s in production).
const MESSAGE_TIMEOUT_MS: u64 = 4000;

/// The app, the broker behind a link the test can break, and a client logged in.
struct Partitioned {
    client: reqwest::Client,
    base: String,
    token: String,
    server: Option<Child>,
    tansu: Tansu,
    // Dropped last: the namespace outlives the broker in it.
    link: Link,
    _dir: tempfile::TempDir,
}

impl Drop for Partitioned {
    /// A test that failed before `settle` stopped the server leaves no `casewire serve` behind
    /// (it would hold the test's output open, and its port).
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

impl Partitioned {
    async fn start() -> Partitioned {
        let link = Link::new();
        let mut tansu = Tansu::behind(&link);
        tansu.start();
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(add_user(dir.path(), "hq", "admin").status.success());
        let (server, base) = serve(
            casewire(dir.path(), Some(&tansu.brokers()))
                .env("KAFKA_MESSAGE_TIMEOUT_MS", MESSAGE_TIMEOUT_MS.to_string()),
        );
        let client = reqwest::Client::new();
        let token = login(&client, &base, "hq").await;
        Partitioned {
            client,
            base,
            token,
            server: Some(server),
            tansu,
            link,
            _dir: dir,
        }
    }

    async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// Waits, bounded, for the metric `name` to satisfy `holds`; returns its value.
    async fn until_metric(&self, name: &str, holds: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = metric(&self.metrics().await, name);
            if holds(value) {
                return value;
            }
            assert!(Instant::now() < deadline, "{name} stayed at {value}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts `clients` loops creating cases until the returned flag is set; each loop's task
    /// returns the ids of the cases the API accepted (201).
    fn create_cases(
        &self,
        clients: usize,
    ) -> (Arc<AtomicBool>, Vec<tokio::task::JoinHandle<Vec<String>>>) {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..clients)
            .map(|n| {
                let (client, url) = (self.client.clone(), format!("{}/api/cases", self.base));
                let (token, stop) = (self.token.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let response = client
                            .post(&url)
                            .bearer_auth(&token)
                            .json(&json!({"title": format!("Seized phone {n}-{}", ids.len())}))
                            .send()
                            .await
                            .expect("the API answers whatever the network does");
                        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
                        let body: Value = response.json().await.expect("json");
                        ids.push(body["case"]["caseId"].as_str().expect("caseId").to_owned());
                        // A steady trickle, not a flood: the backlog is what is being tested.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    ids
                })
            })
            .collect();
        (stop, tasks)
    }

    /// Stops the case loops, waits for the queue to drain and the server to stop, then checks
    /// the topic: every accepted case is on it, nothing was dead-lettered, no attempt counted.
    async fn settle(
        mut self,
        (stop_flag, tasks): (Arc<AtomicBool>, Vec<tokio::task::JoinHandle<Vec<String>>>),
    ) {
        stop_flag.store(true, Ordering::Relaxed);
        let mut accepted = Vec::new();
        for task in tasks {
            accepted.extend(task.await.expect("case loop"));
        }
        let deadline = Instant::now() + PATIENCE;
        while queue_size(&self.client, &self.base, &self.token).await > 0 {
            assert!(Instant::now() < deadline, "the backlog never drained");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let metrics = self.metrics().await;
        assert_eq!(metric(&metrics, "casewire_events_failed_total"), 0.0);
        assert_eq!(metric(&metrics, "casewire_events_dead_lettered_total"), 0.0);
        assert_eq!(metric(&metrics, "casewire_dead_letters"), 0.0);
        stop(self.server.take().expect("server"));

        let brokers = self.tansu.brokers();
        let want = accepted.len();
        let events = tokio::task::spawn_blocking(move || {
            topic_events(
                &[("bootstrap.servers", &brokers)],
                |events| created_cases(events).len() >= want,
                PATIENCE,
            )
        })
        .await
        .expect("consumer");
        let on_topic = created_cases(&events);
        let missing: Vec<&String> = accepted
            .iter()
            .filter(|id| !on_topic.contains(*id))
            .collect();
        assert!(
            want > 0 && missing.is_empty(),
            "{} of {want} accepted cases never reached the topic: {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
    }
}

/// The case ids of the `case.created` events among `events`.
fn created_cases(events: &[Value]) -> std::collections::HashSet<String> {
    events
        .iter()
        .filter(|e| e["eventType"] == "case.created")
        .filter_map(|e| e["data"]["caseId"].as_str().map(str::to_owned))
        .collect()
}

/// The value of the unlabelled metric `name` in a Prometheus text exposition.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no metric {name}"))
        .trim()
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_dropping_every_packet_mid_drain_loses_nothing_counts_nothing_and_the_backlog_moves_within_2_s_of_its_return()
 {
    let app = Partitioned::start().await;
    let writers = app.create_cases(4);
    // Draining: events are reaching the broker as cases are created.
    app.until_metric("casewire_events_published_total", |n| n >= 20.0)
        .await;

    app.link.cut();
    // The relay learns of the partition only by waiting: messages in flight time out.
    app.until_metric("casewire_kafka_connected", |up| up == 0.0)
        .await;
    app.until_metric("casewire_events_unreachable_total", |n| n > 0.0)
        .await;
    // Cases keep being accepted and queued meanwhile.
    let queued = queue_size(&app.client, &app.base, &app.token).await;
    let deadline = Instant::now() + PATIENCE;
    while queue_size(&app.client, &app.base, &app.token).await <= queued {
        assert!(
            Instant::now() < deadline,
            "no case was queued during the partition"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A partition of some length: a connection attempt made now has long given up waiting
    // for its first answers (TCP's SYN retries back off: 1, 3, 7, 15 s).
    tokio::time::sleep(Duration::from_secs(12)).await;
    let published = metric(&app.metrics().await, "casewire_events_published_total");
    app.link.restore();
    let returned = Instant::now();
    app.until_metric("casewire_events_published_total", |n| n > published)
        .await;
    let first = returned.elapsed();
    assert!(
        first <= Duration::from_secs(2),
        "the first backlog event reached the broker {} ms after the link returned",
        first.as_millis()
    );
    app.settle(writers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_that_flaps_every_few_seconds_for_a_minute_loses_nothing_and_counts_nothing() {
    let app = Partitioned::start().await;
    let writers = app.create_cases(2);
    let end = Instant::now() + Duration::from_secs(60);
    let mut cuts = 0;
    while Instant::now() < end {
        app.link.cut();
        cuts += 1;
        // Cuts of 2 to 5 s: some shorter than the message timeout, some longer.
        tokio::time::sleep(Duration::from_millis(2000 + 1000 * (cuts % 4))).await;
        app.link.restore();
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    app.settle(writers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_losing_30_percent_of_its_packets_delivers_everything_and_counts_nothing() {
    let app = Partitioned::start().await;
    app.link.lose(30);
    let writers = app.create_cases(2);
    // Cases for 20 s over the lossy link; the loss stays while the backlog drains.
    tokio::time::sleep(Duration::from_secs(20)).await;
    app.settle(writers).await;
}
