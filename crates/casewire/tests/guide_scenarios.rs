//! The guide's curl scenarios over HTTP against `casewire serve` and a tansu broker: an upload
//! while Kafka is down succeeds (201) and the stats show its event; the broker starts and the
//! queue empties onto the topic; a server restarted with queued events delivers them.

use std::time::{Duration, Instant};

use casewire_testkit::Tansu;
use serde_json::Value;

mod support;

use support::{add_user, casewire, login, queue_size, serve, stop, topic_events};

const PATIENCE: Duration = Duration::from_secs(60);

/// Event types read from the whole topic until every type in `want` is among them.
fn topic_has(brokers: &str, want: &[&str]) -> Vec<String> {
    let has_all = |events: &[Value]| {
        want.iter()
            .all(|w| events.iter().any(|e| e["eventType"] == *w))
    };
    topic_events(&[("bootstrap.servers", brokers)], has_all, PATIENCE)
        .iter()
        .map(|event| event["eventType"].as_str().expect("type").to_owned())
        .collect()
}

#[test]
fn an_upload_during_an_outage_is_accepted_queued_and_delivered_after_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut tansu = Tansu::stopped();
    assert!(
        add_user(dir.path(), "investigator", "admin")
            .status
            .success()
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = reqwest::Client::new();
    // Scenario 2: Kafka is down; the upload still succeeds and its event is queued.
    let (server, base) = serve(&mut casewire(dir.path(), Some(&tansu.brokers())));
    let token = rt.block_on(login(&client, &base, "investigator"));
    let form = reqwest::multipart::Form::new()
        .text("caseId", "CASE-2024-001")
        .text("wallet", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
        .text("reporter", "test@fraud.com")
        .part(
            "evidenceFile",
            reqwest::multipart::Part::bytes(b"test evidence".to_vec()).file_name("test.txt"),
        );
    let status = rt.block_on(async {
        client
            .post(format!("{base}/api/evidence/upload"))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .expect("upload")
            .status()
    });
    assert_eq!(status, reqwest::StatusCode::CREATED);
    let queued = rt.block_on(queue_size(&client, &base, &token));
    assert!(queued >= 2, "the login and the upload are queued: {queued}");

    // Test 4: the server restarts with the events queued.
    stop(server);
    let (server, base) = serve(&mut casewire(dir.path(), Some(&tansu.brokers())));
    let token = rt.block_on(login(&client, &base, "investigator"));

    // Scenario 3: Kafka comes back; the queue empties onto the topic.
    tansu.start();
    let deadline = Instant::now() + PATIENCE;
    while rt.block_on(queue_size(&client, &base, &token)) > 0 {
        assert!(Instant::now() < deadline, "the queue never emptied");
        std::thread::sleep(Duration::from_millis(50));
    }
    let types = topic_has(&tansu.brokers(), &["evidence.uploaded", "user.login"]);
    assert!(types.iter().any(|t| t == "evidence.uploaded"), "{types:?}");
    assert!(types.iter().any(|t| t == "user.login"), "{types:?}");
    stop(server);
}
