//! Acknowledgements that meet a full disk: Kafka has the events but the outbox cannot record it.
//! The events stay in flight (neither lost nor sent again), and their acknowledgements are
//! written once space returns.

mod support;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use casewire_outbox::{Outbox, OutboxConfig, Page};
use casewire_relay::{Relay, RelayConfig};
use rdkafka::mocking::MockCluster;
use support::{PATIENCE, Tmpfs, TopicReader};

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Fills the file system with a ballast file until it refuses more.
fn fill_disk(path: &std::path::Path) {
    let mut file = std::fs::File::create(path).expect("ballast");
    let block = vec![0u8; 16 * 1024];
    while file
        .write_all(&block)
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
}

#[test]
fn acknowledgements_refused_by_a_full_disk_are_written_once_space_returns() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic(support::TOPIC, 2, 1).expect("topic");
    let fs = Tmpfs::mount("4m");
    let outbox =
        Arc::new(Outbox::open(OutboxConfig::file(fs.path().join("outbox.db"))).expect("outbox"));
    let ids: Vec<String> = (0..50)
        .map(|n| {
            let event = casewire_testkit::case_event(&format!("CASE-{}", n % 5), n, "disk-full");
            outbox.enqueue(&event).wait().expect("durable");
            event.event_id.to_string()
        })
        .collect();
    let ballast = fs.path().join("ballast");
    fill_disk(&ballast);

    let relay = Relay::start(
        outbox.clone(),
        RelayConfig {
            probe_interval: Duration::from_millis(50),
            linger: Duration::from_millis(1),
            ..RelayConfig::new(mock.bootstrap_servers())
        },
    )
    .expect("relay");
    // Kafka gets every event, but the outbox cannot record it: the events stay queued, in flight.
    let mut reader = TopicReader::new(&mock.bootstrap_servers());
    reader.read_all(&ids);
    std::thread::sleep(Duration::from_millis(300));
    let stats = outbox
        .stats(Page::first(0))
        .expect("stats still read on a full disk");
    assert_eq!(
        stats.queue_size, 50,
        "nothing acknowledged without space to record it"
    );
    assert_eq!(stats.in_flight, 50, "nothing claimed again meanwhile");

    std::fs::remove_file(&ballast).expect("free space");
    wait_until("the acknowledgements to be written", || {
        outbox.stats(Page::first(0)).expect("stats").queue_size == 0
    });
    rt.block_on(relay.shutdown());
    reader.read_until(Duration::from_millis(500), |_| false);
    assert_eq!(reader.duplicates(), 0, "nothing was sent twice");
}
