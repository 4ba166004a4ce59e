//! The relay against librdkafka's mock cluster: broker down and up, injected produce errors,
//! round-trip time, permanent refusals, shutdown.

use std::sync::atomic::Ordering;
use std::time::Duration;

use casewire_outbox::Page;
use casewire_relay::{Relay, RelayConfig};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use crate::support::{
    Fixture, TOPIC, assert_delivered_once_in_order, assert_per_key_order, read_topic, relay_config,
    until,
};

/// A one-broker mock cluster with the topic's 4 partitions pinned to broker 1, so taking the
/// broker down takes every partition down.
fn cluster() -> MockCluster<'static, DefaultProducerContext> {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic(TOPIC, 4, 1).expect("topic");
    for p in 0..4 {
        mock.partition_leader(TOPIC, p, Some(1)).expect("leader");
    }
    mock
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_topic_once_with_key_value_and_headers() {
    let mock = cluster();
    let fx = Fixture::new();
    let ids = fx.enqueue(200, 7);
    let relay =
        Relay::start(fx.outbox.clone(), relay_config(&mock.bootstrap_servers())).expect("relay");
    until("the queue to drain", || fx.stats().queue_size == 0).await;
    // Events committed while the relay runs go out at once too.
    let later = fx.enqueue(20, 7);
    until("the new events to drain", || fx.stats().queue_size == 0).await;
    let all: Vec<String> = ids.into_iter().chain(later).collect();
    assert_eq!(
        relay
            .counters()
            .published
            .load(std::sync::atomic::Ordering::Relaxed),
        220
    );
    let stats = fx.stats();
    assert!(stats.kafka_connected && stats.kafka_available);
    relay.shutdown().await;
    let delivered = tokio::task::spawn_blocking({
        let brokers = mock.bootstrap_servers();
        move || read_topic(&brokers, 220)
    })
    .await
    .expect("reader");
    assert_delivered_once_in_order(&delivered, &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_down_at_start_queues_events_without_counting_attempts() {
    let mock = cluster();
    mock.broker_down(1).expect("down");
    let fx = Fixture::new();
    let relay =
        Relay::start(fx.outbox.clone(), relay_config(&mock.bootstrap_servers())).expect("relay");
    let ids = fx.enqueue(50, 5);
    until("the relay to notice no broker", || {
        let s = fx.stats();
        s.kafka_available && !s.kafka_connected
    })
    .await;
    // Many probe intervals pass: the events stay queued, none counted as a retry.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = fx.outbox.stats(Page::first(100)).expect("stats");
    assert_eq!(stats.queue_size, 50);
    assert!(stats.events.iter().all(|e| e.retry_count == 0));
    assert_eq!(stats.dead_letter_count, 0);

    mock.broker_up(1).expect("up");
    until("the backlog to drain after recovery", || {
        fx.stats().queue_size == 0
    })
    .await;
    assert!(fx.stats().kafka_connected);
    relay.shutdown().await;
    let brokers = mock.bootstrap_servers();
    let delivered = tokio::task::spawn_blocking(move || read_topic(&brokers, 50))
        .await
        .expect("reader");
    assert_delivered_once_in_order(&delivered, &ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_lost_mid_stream_delivers_everything_when_it_returns() {
    let mock = cluster();
    let fx = Fixture::new();
    let mut config = relay_config(&mock.bootstrap_servers());
    // Messages time out in librdkafka while the broker is away: those attempts do not count.
    config.message_timeout = Duration::from_millis(300);
    // A window smaller than each batch: the relay drains a backlog, window after window.
    config.window = 10;
    let relay = Relay::start(fx.outbox.clone(), config).expect("relay");
    let first = fx.enqueue(30, 3);
    until("the first events to drain", || fx.stats().queue_size == 0).await;
    mock.broker_down(1).expect("down");
    let second = fx.enqueue(30, 3);
    until("the relay to notice", || !fx.stats().kafka_connected).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stats = fx.outbox.stats(Page::first(100)).expect("stats");
    assert_eq!(stats.queue_size, 30);
    assert!(
        stats.events.iter().all(|e| e.retry_count == 0),
        "{:?}",
        stats.events
    );
    mock.broker_up(1).expect("up");
    until("the second batch to drain", || fx.stats().queue_size == 0).await;
    // Once the backlog is drained, the outbox deletes the delivered rows.
    until("the delivered rows to be deleted", || {
        fx.stats().awaiting_deletion == 0
    })
    .await;
    relay.shutdown().await;
    let all: Vec<String> = first.into_iter().chain(second).collect();
    let brokers = mock.bootstrap_servers();
    let delivered = tokio::task::spawn_blocking(move || read_topic(&brokers, 60))
        .await
        .expect("reader");
    assert_delivered_once_in_order(&delivered, &all);
}

/// 300 events over 4 keys through a broker that fails the next produce requests with
/// `errors`: every event reaches the topic once, in order, and none is dead-lettered. Returns
/// the drained fixture.
async fn drained_through_produce_errors(errors: &[RDKafkaRespErr]) -> Fixture {
    let mock = cluster();
    mock.request_errors(RDKafkaApiKey::Produce, errors);
    let fx = Fixture::new();
    let ids = fx.enqueue(300, 4);
    let relay =
        Relay::start(fx.outbox.clone(), relay_config(&mock.bootstrap_servers())).expect("relay");
    until("the queue to drain", || fx.stats().queue_size == 0).await;
    assert_eq!(fx.stats().dead_letter_count, 0, "nothing dead-lettered");
    relay.shutdown().await;
    let brokers = mock.bootstrap_servers();
    let delivered = tokio::task::spawn_blocking(move || read_topic(&brokers, 300))
        .await
        .expect("reader");
    assert_delivered_once_in_order(&delivered, &ids);
    fx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_produce_errors_are_retried_in_per_key_order() {
    drained_through_produce_errors(&[
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR__TRANSPORT,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    ])
    .await;
}

/// A link that flaps leaves the idempotent producer's sequence out of step with the broker's:
/// librdkafka bumps its epoch and fails the batch with the broker's idempotence error, or the
/// broker no longer knows the producer. That says nothing against the events: none counts,
/// none is dead-lettered, and every one reaches the topic once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotence_errors_from_a_broker_out_of_step_with_the_producer_count_nothing() {
    let fx = drained_through_produce_errors(&[
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
    ])
    .await;
    assert_eq!(fx.outbox.delivery_totals().failed, 0, "no attempt counted");
}

/// A failed event goes back to the queue by a write of its own. Until that write commits, the
/// outbox still counts the event in flight and would hand out the next event of its case ahead
/// of it: the relay claims nothing meanwhile, however long the write takes (here another
/// connection holds the database's write lock, as a slow or busy disk would).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_event_of_a_case_waits_while_the_failed_one_is_written_back() {
    let mock = cluster();
    // Refused by the broker, not retried by librdkafka: the first event fails, and counts.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP],
    );
    let fx = Fixture::new();
    let ids = fx.enqueue(2, 1);
    let blocker = rusqlite::Connection::open(fx.path()).expect("second connection");
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("the write lock");
    let mut config = relay_config(&mock.bootstrap_servers());
    // One event at a time: the second is claimed only after the first's report.
    config.window = 1;
    let relay = Relay::start(fx.outbox.clone(), config).expect("relay");
    let counters = relay.shared_counters();
    until("the first event's failure to be reported", || {
        counters.failed.load(Ordering::Relaxed) == 1
    })
    .await;
    // Its failure cannot be written yet. A relay that claimed now would send the second event
    // at once; none is sent while the write waits.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        counters.published.load(Ordering::Relaxed),
        0,
        "nothing is sent while the failure waits to be written"
    );
    blocker.execute_batch("COMMIT").expect("release");
    until("both events to drain", || fx.stats().queue_size == 0).await;
    relay.shutdown().await;
    assert_eq!(
        fx.outbox.delivery_totals().failed,
        1,
        "the one failure counted"
    );
    let brokers = mock.bootstrap_servers();
    let delivered = tokio::task::spawn_blocking(move || read_topic(&brokers, 2))
        .await
        .expect("reader");
    assert_delivered_once_in_order(&delivered, &ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_broker_still_gets_everything() {
    let mock = cluster();
    mock.broker_round_trip_time(1, Duration::from_millis(500))
        .expect("rtt");
    let fx = Fixture::new();
    let ids = fx.enqueue(100, 10);
    let relay =
        Relay::start(fx.outbox.clone(), relay_config(&mock.bootstrap_servers())).expect("relay");
    until("the queue to drain", || fx.stats().queue_size == 0).await;
    relay.shutdown().await;
    let brokers = mock.bootstrap_servers();
    let delivered = tokio::task::spawn_blocking(move || read_topic(&brokers, 100))
        .await
        .expect("reader");
    assert_delivered_once_in_order(&delivered, &ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_authorization_failure_is_reported_burns_no_attempt_and_the_event_is_delivered_once_allowed()
 {
    let mock = cluster();
    // The next produce request is refused: the only event queued then is in it. An ACL says
    // nothing against the event: it waits, uncounted, and goes once the cluster lets it.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let fx = Fixture::new();
    let refused = fx.enqueue(1, 1);
    let relay =
        Relay::start(fx.outbox.clone(), relay_config(&mock.bootstrap_servers())).expect("relay");
    let counters = relay.shared_counters();
    let mut refusals = counters.refused.subscribe();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        refusals.wait_for(|r| *r == Some(casewire_relay::Refusal::Authorization)),
    )
    .await
    .expect("the refusal reported within 30 s")
    .expect("relay running");
    let flowing = fx.enqueue(40, 4);
    until("every event to drain", || fx.stats().queue_size == 0).await;
    assert_eq!(fx.stats().dead_letter_count, 0, "nothing dead-lettered");
    assert_eq!(fx.outbox.delivery_totals().failed, 0, "no attempt counted");
    assert_eq!(counters.refused(), None, "a delivery ends the refusal");
    relay.shutdown().await;
    let brokers = mock.bootstrap_servers();
    let delivered = tokio::task::spawn_blocking(move || read_topic(&brokers, 41))
        .await
        .expect("reader");
    let mut expected = refused;
    expected.extend(flowing);
    assert_delivered_once_in_order(&delivered, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_dead_lettered_while_other_keys_flow() {
    let mock = cluster();
    let fx = Fixture::new();
    let mut config = relay_config(&mock.bootstrap_servers());
    config
        .properties
        .insert("message.max.bytes".into(), "2000".into());
    let mut big = crate::support::event("CASE-BIG", 0);
    big.data.insert("notes".into(), "x".repeat(5_000).into());
    fx.outbox.enqueue(&big).wait().expect("durable");
    let small = fx.enqueue(50, 5);
    let relay = Relay::start(fx.outbox.clone(), config).expect("relay");
    until("everything to settle", || {
        let s = fx.stats();
        s.queue_size == 0 && s.dead_letter_count == 1
    })
    .await;
    let dead = fx
        .outbox
        .dead_letters(Page::first(10))
        .expect("dead letters");
    assert_eq!(dead[0].event_id, big.event_id.as_str());
    assert!(
        dead[0].reason.to_lowercase().contains("too large"),
        "{}",
        dead[0].reason
    );
    relay.shutdown().await;
    let brokers = mock.bootstrap_servers();
    let delivered = tokio::task::spawn_blocking(move || read_topic(&brokers, 50))
        .await
        .expect("reader");
    assert_delivered_once_in_order(&delivered, &small);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_commits_what_was_delivered_and_leaves_the_rest_queued() {
    let mock = cluster();
    mock.broker_round_trip_time(1, Duration::from_millis(200))
        .expect("rtt");
    let fx = Fixture::new();
    let ids = fx.enqueue(500, 20);
    let relay =
        Relay::start(fx.outbox.clone(), relay_config(&mock.bootstrap_servers())).expect("relay");
    until("deliveries to begin", || fx.stats().queue_size < 500).await;
    relay.shutdown().await;
    let after = fx.stats();
    assert_eq!(after.in_flight, 0);
    // A second relay delivers the rest.
    let relay =
        Relay::start(fx.outbox.clone(), relay_config(&mock.bootstrap_servers())).expect("relay");
    until("the rest to drain", || fx.stats().queue_size == 0).await;
    relay.shutdown().await;
    let brokers = mock.bootstrap_servers();
    let delivered = tokio::task::spawn_blocking(move || read_topic(&brokers, 500))
        .await
        .expect("reader");
    // A graceful shutdown waited for every report: nothing was sent twice.
    assert_delivered_once_in_order(&delivered, &ids);
    assert_per_key_order(&delivered, &ids);
}

#[test]
fn invalid_relay_configuration_is_a_clear_startup_error() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let fx = Fixture::new();
    let mut config = RelayConfig::new("127.0.0.1:9092");
    config
        .properties
        .insert("no.such.property".into(), "1".into());
    let err = Relay::start(fx.outbox.clone(), config)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("no.such.property"), "{err}");
    assert!(!err.is_retriable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_unreported_at_shutdown_go_back_to_the_queue_for_the_next_relay() {
    let mock = cluster();
    mock.broker_round_trip_time(1, Duration::from_millis(500))
        .expect("rtt");
    let fx = Fixture::new();
    let ids = fx.enqueue(100, 10);
    let mut config = relay_config(&mock.bootstrap_servers());
    config.shutdown_timeout = Duration::from_millis(50);
    let relay = Relay::start(fx.outbox.clone(), config).expect("relay");
    until("events to be in flight", || fx.stats().in_flight > 0).await;
    relay.shutdown().await;
    until("the outbox to take the unreported events back", || {
        fx.stats().in_flight == 0
    })
    .await;
    // The next relay on the same outbox delivers everything.
    let relay =
        Relay::start(fx.outbox.clone(), relay_config(&mock.bootstrap_servers())).expect("relay");
    until("the queue to drain", || fx.stats().queue_size == 0).await;
    relay.shutdown().await;
    let brokers = mock.bootstrap_servers();
    let delivered = tokio::task::spawn_blocking(move || crate::support::read_topic(&brokers, 100))
        .await
        .expect("reader");
    let seen: std::collections::HashSet<_> = delivered
        .iter()
        .map(|d| d.event.event_id.to_string())
        .collect();
    assert!(
        ids.iter().all(|id| seen.contains(id)),
        "every event delivered at least once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_relay_stops_instead_of_spinning() {
    let mock = cluster();
    let fx = Fixture::new();
    let relay =
        Relay::start(fx.outbox.clone(), relay_config(&mock.bootstrap_servers())).expect("relay");
    until("the relay to connect", || fx.stats().kafka_connected).await;
    drop(relay);
    // The loop ends and says so: the outbox no longer reports a relay.
    until("the relay loop to end", || !fx.stats().kafka_available).await;
}
