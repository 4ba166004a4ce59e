//! The whole backend ([`App`]) against a real tansu broker: settings changed while it runs
//! restart the relay, and nothing queued is lost or sent twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use casewire_core::{App, DeliveryStage, JsonFileStore, RequestInfo, Role, Settings};
use casewire_testkit::Tansu;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const PATIENCE: Duration = Duration::from_secs(30);

fn open(dir: &std::path::Path) -> App {
    let settings = Settings::load(casewire_testkit::test_env(&[]), None, dir).expect("settings");
    App::open(dir, settings, Arc::new(JsonFileStore::in_dir(dir))).expect("app")
}

fn change(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
        .collect()
}

/// Waits, bounded, until `done` holds; the outbox's commits are the events to wait on.
async fn until(app: &App, what: &str, done: impl Fn(&App) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    let mut commits = app.outbox.subscribe();
    while !done(app) {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        let _ = tokio::time::timeout(Duration::from_millis(100), commits.changed()).await;
    }
}

fn queue_empty(app: &App) -> bool {
    app.outbox
        .stats(casewire_outbox::Page::first(0))
        .map(|s| s.queue_size == 0)
        .unwrap_or(false)
}

/// The event ids on the topic, read from the start of every partition to its end (librdkafka
/// reports each partition's end, so nothing is guessed from a quiet moment).
fn events_on_topic(brokers: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "casewire-core-app-test")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some("fraud.events"), Duration::from_secs(10))
        .expect("metadata");
    let partitions = metadata.topics()[0].partitions().len();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset("fraud.events", p, Offset::Beginning)
            .expect("offset");
    }
    consumer.assign(&tpl).expect("assign");
    let (mut ids, mut ended) = (Vec::new(), std::collections::HashSet::new());
    let deadline = Instant::now() + PATIENCE;
    while ended.len() < partitions {
        assert!(
            Instant::now() < deadline,
            "the topic was not read to its end"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let event: serde_json::Value =
                    serde_json::from_slice(message.payload().expect("value")).expect("json");
                ids.push(event["eventId"].as_str().expect("id").to_owned());
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            _ => {}
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_settings_changed_while_running_restart_the_relay_and_lose_or_resend_nothing() {
    let tansu = Tansu::started();
    let dir = tempfile::tempdir().expect("temp dir");
    let app = open(dir.path());
    assert!(
        !app.start_relay().await.expect("no relay"),
        "no brokers yet"
    );
    let user = app
        .auth
        .add_user("investigator", Role::User, "correct horse battery")
        .expect("user");
    let from = RequestInfo::default();
    let mut cases = Vec::new();
    for title in ["one", "two", "three"] {
        cases.push(
            app.cases
                .create(title, "", &user, &from)
                .expect("case")
                .case_id,
        );
    }
    let timeline = app.cases.timeline(&cases[0]).expect("timeline");
    assert_eq!(timeline[0].delivery.state, DeliveryStage::Waiting);

    // A broker set from the settings screen starts the relay, and the backlog drains.
    app.change_settings(change(&[("KAFKA_BROKERS", Some(&tansu.brokers()))]))
        .await
        .expect("brokers");
    until(&app, "the backlog is delivered", queue_empty).await;
    assert!(app.relay_status().running);

    // Another change restarts the relay; what is queued meanwhile and after is delivered once.
    for title in ["four", "five"] {
        cases.push(
            app.cases
                .create(title, "", &user, &from)
                .expect("case")
                .case_id,
        );
    }
    app.change_settings(change(&[("KAFKA_CLIENT_ID", Some("casewire-laptop-7"))]))
        .await
        .expect("client id");
    until(&app, "the new events are delivered", queue_empty).await;
    let mut ids = events_on_topic(&tansu.brokers());
    assert_eq!(ids.len(), 5, "{ids:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "no event was sent twice");

    // Each timeline says when headquarters got its event.
    until(&app, "the delivery times are recorded", |app| {
        cases.iter().all(|id| {
            app.cases.timeline(id).expect("timeline")[0]
                .delivery
                .delivered_at
                .is_some()
        })
    })
    .await;
    for id in &cases {
        assert_eq!(
            app.cases.timeline(id).expect("timeline")[0].delivery.state,
            DeliveryStage::Delivered
        );
    }

    // An invalid change is refused with the reason, and the running relay is untouched.
    let refused = app
        .change_settings(change(&[(
            "KAFKA_SECURITY_PROTOCOL",
            Some("carrier_pigeon"),
        )]))
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("carrier_pigeon"), "{refused}");
    assert_eq!(
        app.settings().get("KAFKA_CLIENT_ID").as_deref(),
        Some("casewire-laptop-7")
    );
    assert!(app.relay_status().running);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_from_the_screen_are_kept_for_the_next_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let app = open(dir.path());
        app.change_settings(change(&[
            ("RETRY_INTERVAL", Some("2500")),
            ("CASEWIRE_THEME", Some("dark")),
        ]))
        .await
        .expect("saved");
        app.shutdown().await;
    }
    let app = open(dir.path());
    assert_eq!(
        app.settings().get("RETRY_INTERVAL").as_deref(),
        Some("2500")
    );
    // The retry interval shapes the outbox when it opens: the new start uses it.
    assert_eq!(
        app.outbox.retry_policy().retry_interval(),
        Duration::from_millis(2500)
    );
}
