//! End to end against tansu, a real Kafka protocol broker in its own process: the guide's four
//! resilience scenarios, broker restarts under load, and SIGKILLs of the application while it
//! drains a backlog. Every check reads the topic back through `assign()`.

// The figures these tests measure (events, duplicates) are printed for the run's record.
#![allow(clippy::print_stdout)]

mod support;

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use casewire_events::Event;
use casewire_outbox::{Outbox, OutboxConfig, Page, RetryPolicy};
use casewire_relay::{Relay, RelayConfig};
use rand::Rng;
use support::{PATIENCE, Tansu, TopicReader, relay_app};

fn event(n: usize) -> Event {
    casewire_testkit::case_event(&format!("CASE-2024-{:03}", n % 13), n, "casewire-e2e")
}

fn outbox_at(dir: &tempfile::TempDir) -> Arc<Outbox> {
    Arc::new(
        Outbox::open(OutboxConfig {
            retry: RetryPolicy::from_interval(Duration::from_millis(50), 1_000),
            ..OutboxConfig::file(dir.path().join("outbox.db"))
        })
        .expect("outbox"),
    )
}

fn relay_config(brokers: &str) -> RelayConfig {
    RelayConfig {
        probe_interval: Duration::from_millis(50),
        linger: Duration::from_millis(2),
        message_timeout: Duration::from_secs(2),
        ..RelayConfig::new(brokers)
    }
}

fn enqueue(outbox: &Outbox, from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| {
            let e = event(i);
            outbox.enqueue(&e).wait().expect("durable");
            e.event_id.to_string()
        })
        .collect()
}

/// Many events in few transactions, for backlogs.
fn fill(outbox: &Outbox, n: usize) -> Vec<String> {
    let events: Vec<Event> = (0..n).map(event).collect();
    casewire_testkit::fill(outbox, &events);
    events.iter().map(|e| e.event_id.to_string()).collect()
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    casewire_testkit::test_logging();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn scenario_1_broker_up_events_reach_the_topic() {
    let rt = runtime();
    let _guard = rt.enter();
    let tansu = Tansu::started();
    let dir = tempfile::tempdir().expect("dir");
    let outbox = outbox_at(&dir);
    let relay = Relay::start(outbox.clone(), relay_config(&tansu.brokers())).expect("relay");
    let ids = enqueue(&outbox, 0, 100);
    let mut reader = TopicReader::new(&tansu.brokers());
    reader.read_all(&ids);
    assert_eq!(reader.duplicates(), 0);
    reader.assert_per_key_order(&ids);
    wait_until("acknowledgements", || {
        outbox.stats(Page::first(0)).expect("stats").queue_size == 0
    });
    rt.block_on(relay.shutdown());
}

#[test]
fn scenarios_2_and_3_broker_down_events_queue_then_recovery_empties_the_queue() {
    let rt = runtime();
    let _guard = rt.enter();
    let mut tansu = Tansu::stopped();
    let dir = tempfile::tempdir().expect("dir");
    let outbox = outbox_at(&dir);
    let relay = Relay::start(outbox.clone(), relay_config(&tansu.brokers())).expect("relay");
    // Scenario 2: accepted and queued while no broker runs.
    let ids = enqueue(&outbox, 0, 200);
    let stats = outbox.stats(Page::first(10)).expect("stats");
    assert_eq!(stats.queue_size, 200);
    assert!(stats.kafka_available && !stats.kafka_connected);
    assert_eq!(stats.events.len(), 10);
    // Scenario 3: the broker starts, the queue empties, the topic holds everything.
    tansu.start();
    wait_until("the queue to empty", || {
        outbox.stats(Page::first(0)).expect("stats").queue_size == 0
    });
    assert!(outbox.stats(Page::first(0)).expect("stats").kafka_connected);
    let mut reader = TopicReader::new(&tansu.brokers());
    reader.read_all(&ids);
    assert_eq!(reader.duplicates(), 0);
    reader.assert_per_key_order(&ids);
    assert!(
        outbox
            .stats(Page::first(0))
            .expect("stats")
            .events
            .is_empty()
    );
    rt.block_on(relay.shutdown());
}

#[test]
fn scenario_4_queued_events_survive_a_sigkilled_app_and_are_delivered_after_restart() {
    let mut tansu = Tansu::stopped();
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("outbox.db");
    // The app accepts events while no broker runs, then is killed.
    let mut app = relay_app(&db, &tansu.brokers(), &["--enqueue", "50"]);
    let mut lines = BufReader::new(app.stdout.take().expect("stdout")).lines();
    let ids: Vec<String> = (0..50)
        .map(|_| {
            let line = lines.next().expect("a line").expect("utf-8");
            line.strip_prefix("durable ")
                .expect("durable line")
                .to_owned()
        })
        .collect();
    app.kill().expect("SIGKILL");
    app.wait().expect("reaped");
    // Restarted, it loads the queue; the broker comes up; everything is delivered.
    let mut app = relay_app(&db, &tansu.brokers(), &["--exit-when-drained"]);
    tansu.start();
    let mut reader = TopicReader::new(&tansu.brokers());
    reader.read_all(&ids);
    let status = app.wait().expect("app exits once drained");
    assert!(status.success());
    assert_eq!(
        reader.duplicates(),
        0,
        "nothing was delivered before the kill"
    );
    reader.assert_per_key_order(&ids);
}

#[test]
fn ten_broker_restarts_under_continuous_load_lose_nothing() {
    let rt = runtime();
    let _guard = rt.enter();
    let mut tansu = Tansu::started();
    let dir = tempfile::tempdir().expect("dir");
    let outbox = outbox_at(&dir);
    let relay = Relay::start(outbox.clone(), relay_config(&tansu.brokers())).expect("relay");
    let committed: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    // Held by the test for the instant of each kill.
    let pause = Arc::new(Mutex::new(()));
    let load = {
        let (outbox, committed, stop, pause) = (
            outbox.clone(),
            committed.clone(),
            stop.clone(),
            pause.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let _running = pause.lock().expect("lock");
                let id = enqueue(&outbox, n, 1).remove(0);
                committed.lock().expect("lock").push(id);
                n += 1;
                drop(_running);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut reader = TopicReader::new(&tansu.brokers());
    for _ in 0..10 {
        // tansu keeps its log in memory: what it holds when killed is gone. So the load pauses
        // for the instant of the kill, until the reader has everything committed; every
        // absence at the end is then the relay's loss, not the broker's. The load runs on
        // through the outage and the recovery.
        let paused = pause.lock().expect("lock");
        let snapshot = committed.lock().expect("lock").clone();
        reader.read_all(&snapshot);
        reader.disconnect();
        tansu.kill();
        drop(paused);
        // The outage: events keep being committed and queue locally.
        std::thread::sleep(Duration::from_millis(300));
        tansu.start();
        reader.connect();
    }
    stop.store(true, Ordering::Relaxed);
    load.join().expect("load");
    let all = committed.lock().expect("lock").clone();
    reader.read_all(&all);
    wait_until("the queue to empty", || {
        outbox.stats(Page::first(0)).expect("stats").queue_size == 0
    });
    assert!(all.len() > 500, "load ran: {}", all.len());
    let stats = outbox.stats(Page::first(0)).expect("stats");
    assert_eq!(stats.dead_letter_count, 0);
    println!(
        "{} events through 10 broker restarts; {} duplicates (same eventId)",
        all.len(),
        reader.duplicates()
    );
    rt.block_on(relay.shutdown());
}

#[test]
fn twenty_sigkills_while_draining_a_backlog_lose_nothing() {
    let tansu = Tansu::started();
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("outbox.db");
    let ids = {
        let outbox = Outbox::open(OutboxConfig::file(&db)).expect("outbox");
        fill(&outbox, 20_000)
    };
    let mut rng = rand::rng();
    for _ in 0..20 {
        let mut app = relay_app(&db, &tansu.brokers(), &[]);
        std::thread::sleep(Duration::from_millis(rng.random_range(40..160)));
        app.kill().expect("SIGKILL");
        app.wait().expect("reaped");
    }
    let mut app = relay_app(&db, &tansu.brokers(), &["--exit-when-drained"]);
    let status = app.wait().expect("drains and exits");
    assert!(status.success());
    let mut reader = TopicReader::new(&tansu.brokers());
    reader.read_all(&ids);
    let known: std::collections::HashSet<&String> = ids.iter().collect();
    assert!(
        reader.seen.keys().all(|id| known.contains(id)),
        "only committed events reach the topic"
    );
    let duplicates = reader.duplicates();
    println!(
        "20000 events drained through 20 SIGKILLs: {duplicates} duplicates, each with an eventId already seen"
    );
    reader.assert_per_key_order(&ids);
}
