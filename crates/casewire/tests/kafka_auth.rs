//! `casewire serve` against a broker that demands SASL/SCRAM over TLS (`../shared/KAFKA-AUTH.md`,
//! `casewire_testkit::secure_kafka`): the right credentials deliver, a wrong password or a CA
//! that did not sign the broker's certificate is reported as a refusal (readiness, metrics, the
//! badge, an alert) that burns no attempt and dead-letters nothing, and the backlog drains once
//! the settings are corrected. No password ever reaches the log.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use casewire_testkit::secure_kafka::{PASSWORD, SecureKafka, USER_256, USER_512};
use rdkafka::ClientConfig;
use serde_json::{Value, json};

mod support;
use support::{add_user, casewire, login, queue_stats, stop, topic_events};

const PATIENCE: Duration = Duration::from_secs(45);
const WRONG: &str = "not-the-Scram-password";

/// `casewire serve` relaying to `kafka` as `user` with `password`, trusting `ca`; its log goes
/// to `log`. Returns once it listens.
fn serve_secure(
    data: &Path,
    kafka: &SecureKafka,
    user: &str,
    password: &str,
    ca: &Path,
    log: &Path,
) -> (Child, String) {
    let mechanism = if user == USER_256 {
        "SCRAM-SHA-256"
    } else {
        "SCRAM-SHA-512"
    };
    let mut child = casewire(data, Some(&kafka.tls_brokers()))
        .env("KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
        .env("KAFKA_SASL_MECHANISM", mechanism)
        .env("KAFKA_SASL_USERNAME", user)
        .env("KAFKA_SASL_PASSWORD", password)
        .env("KAFKA_SSL_CA_LOCATION", ca)
        .env("KAFKA_MESSAGE_TIMEOUT_MS", "5000")
        .env("RUST_LOG", "info,librdkafka=info")
        .env("CASEWIRE_LISTEN", "127.0.0.1:0")
        .arg("serve")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let log = log.to_owned();
    // Every line goes to the log file; the address is told once it is seen.
    std::thread::spawn(move || {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log");
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(file, "{line}");
            if let Some((_, url)) = line.split_once("casewire listening on ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("serve said where it listens");
    (child, base)
}

/// Waits, bounded, for `done` to hold of `/readyz`'s answer.
async fn until_ready_says(client: &reqwest::Client, base: &str, relay: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let response = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("readyz");
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        if body["relay"] == relay {
            assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE, "{body}");
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never said {relay:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET path` with `token`, as JSON.
async fn get_json(client: &reqwest::Client, base: &str, path: &str, token: &str) -> Value {
    client
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect(path)
        .json()
        .await
        .expect("json")
}

async fn until_drained(client: &reqwest::Client, base: &str, token: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = queue_stats(client, base, token).await;
        if stats["queue"]["queueSize"] == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the backlog never drained: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The event ids on the topic, read over TLS as `user`, until `want` are read.
fn delivered_ids(kafka: &SecureKafka, user: &str, want: usize) -> Vec<String> {
    let settings = kafka.client_settings(user, PASSWORD, &kafka.ca());
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    topic_events(&settings, |events| events.len() >= want, PATIENCE)
        .iter()
        .map(|event| event["eventId"].as_str().expect("id").to_owned())
        .collect()
}

fn assert_no_password(log: &Path) {
    let text = std::fs::read_to_string(log).expect("log");
    assert!(!text.is_empty(), "the log was captured");
    for secret in [PASSWORD, WRONG] {
        assert!(
            !text.contains(secret),
            "a password reached the log: {}",
            log.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_refusal_that_burns_nothing_and_the_backlog_drains_once_corrected() {
    let kafka = tokio::task::spawn_blocking(SecureKafka::start)
        .await
        .expect("broker");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    assert!(add_user(&data, "root", "superadmin").status.success());
    let log = dir.path().join("serve.log");
    let client = reqwest::Client::new();

    let (child, base) = serve_secure(&data, &kafka, USER_512, WRONG, &kafka.ca(), &log);
    let token = login(&client, &base, "root").await;
    for n in 0..5 {
        let response = client
            .post(format!("{base}/api/cases"))
            .bearer_auth(&token)
            .json(&json!({"title": format!("Waiting for HQ {n}"), "description": ""}))
            .send()
            .await
            .expect("case");
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    }
    until_ready_says(&client, &base, "refused: authentication").await;
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("casewire_kafka_refused{reason=\"authentication\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("casewire_events_failed_total 0"),
        "no attempt counted"
    );
    let sync = get_json(&client, &base, "/api/sync", &token).await;
    assert_eq!(sync["sync"]["state"], "error", "{sync}");
    assert_eq!(sync["sync"]["refused"], "authentication", "{sync}");
    let stats = queue_stats(&client, &base, &token).await;
    assert_eq!(stats["queue"]["deadLetterCount"], 0, "{stats}");
    let alerts = get_json(
        &client,
        &base,
        "/api/queue/events?eventType=system.alert",
        &token,
    )
    .await;
    let alerts = alerts["events"].as_array().expect("events").len();
    assert_eq!(alerts, 1, "one alert for the refusal");
    let waiting = stats["queue"]["queueSize"].as_u64().expect("size");
    stop(child);

    // Corrected: the backlog (the cases, the logins, the alert) drains.
    let (child, base) = serve_secure(&data, &kafka, USER_512, PASSWORD, &kafka.ca(), &log);
    let token = login(&client, &base, "root").await;
    until_drained(&client, &base, &token).await;
    let body = get_json(&client, &base, "/readyz", &token).await;
    assert_eq!(body["relay"], "running", "{body}");
    stop(child);
    let want = waiting as usize;
    let ids = tokio::task::spawn_blocking(move || delivered_ids(&kafka, USER_512, want))
        .await
        .expect("consumer");
    assert!(ids.len() >= want, "{} of {want} delivered", ids.len());
    assert_no_password(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha_256_delivers_and_a_certificate_from_another_ca_is_refused() {
    let kafka = tokio::task::spawn_blocking(SecureKafka::start)
        .await
        .expect("broker");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    assert!(add_user(&data, "root", "superadmin").status.success());
    let log = dir.path().join("serve.log");
    let client = reqwest::Client::new();

    let (child, base) = serve_secure(&data, &kafka, USER_256, PASSWORD, &kafka.ca(), &log);
    let token = login(&client, &base, "root").await;
    until_drained(&client, &base, &token).await;
    stop(child);

    let (child, base) = serve_secure(&data, &kafka, USER_256, PASSWORD, &kafka.other_ca(), &log);
    let token = login(&client, &base, "root").await;
    until_ready_says(&client, &base, "refused: certificate").await;
    let stats = queue_stats(&client, &base, &token).await;
    assert_eq!(stats["queue"]["deadLetterCount"], 0, "{stats}");
    assert!(
        stats["queue"]["queueSize"].as_u64().expect("size") >= 1,
        "the login waits"
    );
    stop(child);
    assert_no_password(&log);
}

/// Records whether the one message sent was delivered.
struct Outcome(std::sync::Arc<std::sync::Mutex<Option<bool>>>);

impl rdkafka::ClientContext for Outcome {}

impl rdkafka::producer::ProducerContext for Outcome {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        *self.0.lock().expect("lock") = Some(result.is_ok());
    }
}

#[test]
fn a_plaintext_client_is_refused_by_the_broker() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let kafka = SecureKafka::start();
    // To the TLS port without TLS, and to tansu's own port without SASL: neither delivers.
    for brokers in [
        kafka.tls_brokers(),
        format!("127.0.0.1:{}", kafka.plain_port),
    ] {
        let outcome = std::sync::Arc::new(std::sync::Mutex::new(None));
        let producer: BaseProducer<Outcome> = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("security.protocol", "plaintext")
            .set("message.timeout.ms", "3000")
            .create_with_context(Outcome(outcome.clone()))
            .expect("producer");
        producer
            .send(
                BaseRecord::<str, str>::to("fraud.events")
                    .key("k")
                    .payload("v"),
            )
            .map_err(|(e, _)| e)
            .expect("queued locally");
        let deadline = Instant::now() + Duration::from_secs(15);
        while outcome.lock().expect("lock").is_none() && Instant::now() < deadline {
            producer.poll(Duration::from_millis(100));
        }
        assert_eq!(
            *outcome.lock().expect("lock"),
            Some(false),
            "{brokers}: a client without TLS or credentials delivered, or never heard back"
        );
        let _ = producer.flush(Duration::from_secs(1));
    }
}
