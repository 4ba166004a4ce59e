//! Relay benchmark: `cargo bench -p casewire-relay --bench relay`.
//!
//! Starts tansu brokers itself (from `scripts/bootstrap`'s cache, or `TANSU_BIN`) and measures in
//! one run:
//! - the reference: a bare rdkafka producer (idempotent, acks=all, lz4, as the relay's) sending
//!   N = 200,000 guide-shaped events as fast as it can, until all are acknowledged;
//! - the relay draining the same N events from a durable outbox backlog (until every event is
//!   acknowledged in the outbox), and how long the idle writer then takes to delete their rows;
//! - the same drain from an encrypted database (SQLCipher), beside each unencrypted one (first
//!   in even rounds, second in odd ones), as a ratio of it;
//! - commit-to-delivery-report latency (p50, p99) at a steady 1,000 events/s;
//! - the time from a broker accepting connections to the first delivered backlog event.
//!
//! The reference and the drain alternate over `RELAY_BENCH_ROUNDS` rounds (default 5); the
//! figures are medians, `drain_ratio` the median of the rounds' ratios. The last line printed is
//! one JSON object with every figure. `RELAY_BENCH_EVENTS` overrides N.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use casewire_events::Event;
use casewire_outbox::{Outbox, OutboxConfig, Page};
use casewire_relay::{Relay, RelayConfig};
use casewire_testkit::{Tansu, fill, guide_event};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::json;

fn main() {
    let n: usize = std::env::var("RELAY_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let events: Vec<Event> = (0..n).map(guide_event).collect();

    // The reference and the drain alternate, round by round, so drift on a shared machine
    // falls on both; the ratio reported is the median of the rounds' ratios.
    let rounds: usize = std::env::var("RELAY_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let (mut raws, mut drains, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut sweeps = Vec::new();
    let (mut encrypted_drains, mut encrypted_ratios) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let raw = {
            let broker = broker();
            raw_producer(&broker.brokers(), &events)
        };
        let drain_once = |key: Option<casewire_outbox::DatabaseKey>| {
            let broker = broker();
            let dir = tempfile::tempdir().unwrap();
            let outbox = open_keyed(&dir, key);
            fill(&outbox, &events);
            // The fill leaves hundreds of megabytes for the disk to write back: not during the
            // drain, which would pay for it.
            let _ = std::process::Command::new("sync").status();
            if let Some(pause) = std::env::var_os("RELAY_BENCH_PAUSE_BEFORE_DRAIN") {
                // For attaching a profiler to the drain alone.
                println!("filled; draining in {} s", pause.to_string_lossy());
                std::thread::sleep(Duration::from_secs(
                    pause.to_string_lossy().parse().unwrap_or(5),
                ));
            }
            // Timed from the first delivery report, so the producer's start (connection, producer
            // id) is not counted; the reference is timed after a warm-up message likewise.
            let started = Instant::now();
            let relay = Relay::start(outbox.clone(), config(&broker.brokers())).unwrap();
            let mut deliveries = relay.subscribe_deliveries();
            let first = rt.block_on(deliveries.recv()).unwrap().len();
            let start = Instant::now();
            println!(
                "relay start to first delivery report: {:.0} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
            wait_until(|| outbox.stats(Page::first(0)).unwrap().queue_size == 0);
            let rate = (n - first) as f64 / start.elapsed().as_secs_f64();
            // The delivered rows are deleted once the drain is over: timed, not counted above.
            let swept = Instant::now();
            wait_until(|| outbox.stats(Page::first(0)).unwrap().awaiting_deletion == 0);
            let sweep = swept.elapsed().as_secs_f64() * 1e3;
            rt.block_on(relay.shutdown());
            (rate, sweep)
        };
        // The same drain from an encrypted database (SQLCipher), beside it, in the order ABBA:
        // whichever runs second is each in turn.
        let key = || Some(casewire_outbox::DatabaseKey::new([7; 32]));
        let ((drain, sweep), (encrypted, _)) = if round % 2 == 0 {
            let encrypted = drain_once(key());
            (drain_once(None), encrypted)
        } else {
            let plain = drain_once(None);
            (plain, drain_once(key()))
        };
        sweeps.push(sweep);
        println!(
            "round {round}: the drain from an encrypted database {encrypted:.0} events/s ({:.2} of the unencrypted one)",
            encrypted / drain
        );
        encrypted_ratios.push(encrypted / drain);
        encrypted_drains.push(encrypted);
        println!(
            "round {round}: bare rdkafka producer {raw:.0} events/s, relay draining a durable backlog {drain:.0} events/s ({:.2}), delivered rows deleted {:.0} ms after",
            drain / raw,
            sweeps.last().copied().unwrap_or_default()
        );
        raws.push(raw);
        drains.push(drain);
        ratios.push(drain / raw);
    }
    let (raw_producer_per_s, relay_drain_per_s, drain_ratio) =
        (median(&raws), median(&drains), median(&ratios));
    println!(
        "median of {rounds} rounds: bare producer {raw_producer_per_s:.0} events/s, relay {relay_drain_per_s:.0} events/s, ratio {drain_ratio:.2}"
    );

    let (p50, p99) = {
        let broker = broker();
        let dir = tempfile::tempdir().unwrap();
        let outbox = open(&dir);
        let relay = Relay::start(outbox.clone(), config(&broker.brokers())).unwrap();
        // Warm up: the healthy path is measured once the producer is connected.
        let mut deliveries = relay.subscribe_deliveries();
        outbox.enqueue(&guide_event(0)).wait().unwrap();
        rt.block_on(deliveries.recv()).unwrap();
        let latencies = steady_latency(&rt, &outbox, &relay, 1_000, Duration::from_secs(5));
        rt.block_on(relay.shutdown());
        latencies
    };
    println!("commit to delivery report at 1,000 events/s: p50 {p50:.2} ms, p99 {p99:.2} ms");

    let recovery_first_event_ms = {
        let mut broker = Tansu::stopped();
        let dir = tempfile::tempdir().unwrap();
        let outbox = open(&dir);
        fill(&outbox, &events[..10_000.min(n)]);
        let relay = Relay::start(outbox.clone(), config(&broker.brokers())).unwrap();
        let mut deliveries = relay.subscribe_deliveries();
        // Let the relay find no broker and settle into probing.
        wait_until(|| {
            let s = outbox.stats(Page::first(0)).unwrap();
            s.kafka_available && !s.kafka_connected
        });
        std::thread::sleep(Duration::from_secs(2));
        let up = broker.start();
        rt.block_on(deliveries.recv()).unwrap();
        let ms = up.elapsed().as_secs_f64() * 1e3;
        rt.block_on(relay.shutdown());
        ms
    };
    println!(
        "broker accepting connections to first backlog event delivered: {recovery_first_event_ms:.0} ms"
    );

    let summary = json!({
        "events": n,
        "raw_producer_per_s": raw_producer_per_s.round(),
        "relay_drain_per_s": relay_drain_per_s.round(),
        "drain_ratio": (drain_ratio * 100.0).round() / 100.0,
        "drain_ratios": ratios.iter().map(|r| (r * 100.0).round() / 100.0).collect::<Vec<_>>(),
        "sweep_after_drain_ms": median(&sweeps).round(),
        "encrypted_drain_per_s": median(&encrypted_drains).round(),
        "encrypted_drain_ratio": (median(&encrypted_ratios) * 100.0).round() / 100.0,
        "encrypted_drain_ratios": encrypted_ratios.iter().map(|r| (r * 100.0).round() / 100.0).collect::<Vec<_>>(),
        "commit_to_ack_p50_ms": (p50 * 100.0).round() / 100.0,
        "commit_to_ack_p99_ms": (p99 * 100.0).round() / 100.0,
        "recovery_first_event_ms": recovery_first_event_ms.round(),
    });
    println!("{summary}");
}

/// Sends one message and waits for it: the topic exists and the producer is connected.
fn warm_up(producer: &ThreadedProducer<DefaultProducerContext>) {
    producer
        .send(BaseRecord::<(), str>::to("fraud.events").payload("warm-up"))
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

fn config(brokers: &str) -> RelayConfig {
    let defaults = RelayConfig::new(brokers);
    RelayConfig {
        window: std::env::var("RELAY_BENCH_WINDOW")
            .ok()
            .and_then(|w| w.parse().ok())
            .unwrap_or(defaults.window),
        ..defaults
    }
}

fn open(dir: &tempfile::TempDir) -> Arc<Outbox> {
    open_keyed(dir, None)
}

fn open_keyed(dir: &tempfile::TempDir, key: Option<casewire_outbox::DatabaseKey>) -> Arc<Outbox> {
    Arc::new(
        Outbox::open(OutboxConfig {
            quota_bytes: u64::MAX,
            key,
            ..OutboxConfig::file(dir.path().join("outbox.db"))
        })
        .unwrap(),
    )
}

/// The reference: the same messages (key, value, headers) through a bare producer configured
/// as the relay's, with the whole set handed over at once and flushed.
fn raw_producer(brokers: &str, events: &[Event]) -> f64 {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    warm_up(&producer);
    let prepared: Vec<(String, Vec<u8>, Event)> = events
        .iter()
        .map(|e| (e.partition_key(), e.to_json(), e.clone()))
        .collect();
    let start = Instant::now();
    for (key, payload, event) in &prepared {
        let headers =
            event
                .headers()
                .iter()
                .fold(OwnedHeaders::new_with_capacity(7), |h, (k, v)| {
                    h.insert(Header {
                        key: k,
                        value: Some(v.as_str()),
                    })
                });
        let mut record = BaseRecord::to("fraud.events")
            .key(key.as_bytes())
            .payload(payload.as_slice())
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    events.len() as f64 / start.elapsed().as_secs_f64()
}

/// Commits one event every `1/rate` s for `length`, and measures from each commit to its
/// delivery report. Returns (p50, p99) in ms.
fn steady_latency(
    rt: &tokio::runtime::Runtime,
    outbox: &Arc<Outbox>,
    relay: &Relay,
    rate: u32,
    length: Duration,
) -> (f64, f64) {
    let mut deliveries = relay.subscribe_deliveries();
    let total = (rate as f64 * length.as_secs_f64()) as usize;
    let interval = Duration::from_secs(1) / rate;
    let committed: Arc<std::sync::Mutex<Vec<Option<Instant>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; total + 1]));
    let producer = {
        let (outbox, committed) = (outbox.clone(), committed.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            for i in 0..total {
                let due = start + interval * i as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                outbox.enqueue(&guide_event(i)).wait().unwrap();
                // The outbox numbers events in commit order; seq 1 was the warm-up event.
                committed.lock().unwrap()[i] = Some(Instant::now());
            }
        })
    };
    let mut latencies = Vec::with_capacity(total);
    rt.block_on(async {
        while latencies.len() < total {
            let seqs = deliveries.recv().await.unwrap();
            let now = Instant::now();
            let committed = committed.lock().unwrap();
            for &seq in seqs.iter() {
                // The report can beat the committer's timestamp by a hair: count that as 0.
                let Some(slot) = committed.get(seq as usize - 2) else {
                    continue;
                };
                let at = slot.unwrap_or(now);
                latencies.push(now.saturating_duration_since(at).as_secs_f64() * 1e3);
            }
        }
    });
    producer.join().unwrap();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (pick(0.50), pick(0.99))
}

fn wait_until(mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !check() {
        assert!(Instant::now() < deadline, "benchmark phase did not finish");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A tansu broker whose topic exists, as in production: the first produce to a fresh tansu
/// auto-creates the topic, and librdkafka then waits about half a second for its metadata.
fn broker() -> Tansu {
    let broker = Tansu::started();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.brokers())
        .create()
        .unwrap();
    warm_up(&producer);
    broker
}
