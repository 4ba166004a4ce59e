//! The guide's "Event Publishing Points": each action queues exactly its event, with the
//! guide's type, priority and data, and metadata naming the authenticated caller. And
//! `Idempotency-Key`: a repeat answers the same and queues nothing.

use casewire_events::{Event, EventType, Priority};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Server, WALLET, server, upload_form, upload_form_for};

/// Checks the one event an action queued and returns it.
fn only(events: Vec<Event>, event_type: EventType, priority: Priority, user: &str) -> Event {
    assert_eq!(
        events.iter().map(|e| e.event_type).collect::<Vec<_>>(),
        [event_type],
        "exactly one {event_type:?}"
    );
    let event = events.into_iter().next().expect("one event");
    check(&event, priority, user);
    event
}

fn check(event: &Event, priority: Priority, user: &str) {
    assert_eq!(event.priority, priority, "{:?}", event.event_type);
    event
        .validate(&Default::default())
        .expect("the event passes its schema");
    assert_eq!(event.metadata.user_id.as_deref(), Some(user));
    assert_eq!(event.metadata.ip_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(event.metadata.source.as_deref(), Some("casewire"));
}

async fn create_case(s: &Server, token: &str) -> String {
    let (status, body, _) = s
        .act(
            s.client
                .post(s.url("/api/cases"))
                .bearer_auth(token)
                .json(&json!({"title": "Drained wallet"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["case"]["caseId"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_publishing_point_of_the_guide_queues_exactly_its_event() {
    let s = server().await;
    let before = s.events().len();
    let investigator = s.token("investigator").await;
    only(
        s.events().split_off(before),
        EventType::UserLogin,
        Priority::Low,
        "investigator",
    );
    let analyst = s.token("analyst").await;
    let admin = s.token("admin").await;
    let case_id = create_case(&s, &investigator).await;

    // POST /api/evidence/upload → evidence.uploaded, medium.
    let (status, body, events) = s
        .act(
            s.client
                .post(s.url("/api/evidence/upload"))
                .bearer_auth(&investigator)
                .multipart(upload_form_for(
                    &case_id,
                    b"wallet drain screenshot".to_vec(),
                    WALLET,
                )),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let evidence = &body["evidence"];
    let id = evidence["evidenceId"].as_str().expect("id").to_owned();
    let event = only(
        events,
        EventType::EvidenceUploaded,
        Priority::Medium,
        "investigator",
    );
    assert_eq!(event.data["evidenceId"], id.as_str());
    assert_eq!(event.data["caseId"], case_id.as_str());
    assert_eq!(event.data["wallet"], WALLET);
    assert_eq!(event.data["filename"], "test.txt");
    assert_eq!(event.data["storageHash"], evidence["storageHash"]);

    // POST /api/evidence/:id/anchor → the request's system.info; its evidence.anchored (high)
    // comes from the anchoring worker once the chain has it (anchoring.rs, on a real node).
    let (status, body, events) = s
        .act(
            s.client
                .post(s.url(&format!("/api/evidence/{id}/anchor")))
                .bearer_auth(&analyst),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["anchor"]["state"], "waiting");
    let event = only(events, EventType::SystemInfo, Priority::Low, "analyst");
    assert_eq!(event.data["action"], "anchor.requested");
    assert_eq!(event.data["evidenceId"], id.as_str());
    assert_eq!(event.data["caseId"], case_id.as_str());
    let (status, body, events) = s
        .act(
            s.client
                .get(s.url(&format!("/api/evidence/{id}/anchor")))
                .bearer_auth(&investigator),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(events.is_empty(), "reading anchors records nothing");
    assert_eq!(body["request"]["state"], "waiting");
    assert_eq!(
        body["chainConfigured"], false,
        "no chain: it waits for an admin"
    );

    // GET /api/evidence/:id/download → evidence.downloaded, medium.
    let (status, _, events) = s
        .act(
            s.client
                .get(s.url(&format!("/api/evidence/{id}/download")))
                .bearer_auth(&investigator),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let event = only(
        events,
        EventType::EvidenceDownloaded,
        Priority::Medium,
        "investigator",
    );
    assert_eq!(event.data["evidenceId"], id.as_str());

    // POST /api/rl/predict → rl.prediction.made: high for freeze, medium otherwise.
    let (status, body, events) = s
        .act(
            s.client
                .post(s.url("/api/rl/predict"))
                .bearer_auth(&analyst)
                .json(&json!({"wallet": WALLET, "evidenceId": id})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let prediction = &body["prediction"];
    assert_eq!(prediction["state"], "reported");
    assert_eq!(prediction["action"], "investigate");
    let event = only(
        events,
        EventType::RlPredictionMade,
        Priority::Medium,
        "analyst",
    );
    assert_eq!(event.data["predictionId"], prediction["predictionId"]);
    assert_eq!(event.data["wallet"], WALLET);
    assert_eq!(event.data["action"], "investigate");
    assert_eq!(event.data["score"], prediction["score"]);
    assert_eq!(event.data["evidenceId"], id.as_str());

    // POST /api/rl/feedback → rl.feedback.received, high (and the model's update).
    let (status, body, events) = s
        .act(
            s.client
                .post(s.url("/api/rl/feedback"))
                .bearer_auth(&analyst)
                .json(
                    &json!({"predictionId": prediction["predictionId"], "actualAction": "freeze"}),
                ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        events.iter().map(|e| e.event_type).collect::<Vec<_>>(),
        [EventType::RlFeedbackReceived, EventType::RlModelUpdated]
    );
    check(&events[0], Priority::High, "analyst");
    check(&events[1], Priority::Medium, "analyst");
    assert_eq!(events[0].data["predictedAction"], "investigate");
    assert_eq!(events[0].data["actualAction"], "freeze");
    assert_eq!(events[0].data["outcome"], "incorrect");
    assert_eq!(events[0].data["reward"], -1.0);

    // POST /api/cases/escalate → case.escalated, critical.
    let (status, body, events) = s
        .act(
            s.client
                .post(s.url("/api/cases/escalate"))
                .bearer_auth(&analyst)
                .json(
                    &json!({"caseId": case_id, "authority": "FBI IC3", "reason": "stolen funds"}),
                ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let event = only(
        events,
        EventType::CaseEscalated,
        Priority::Critical,
        "analyst",
    );
    assert_eq!(event.data["caseId"], case_id.as_str());

    // A prediction for a wallet in an escalated case: freeze, at high priority.
    let (_, body, events) = s
        .act(
            s.client
                .post(s.url("/api/rl/predict"))
                .bearer_auth(&analyst)
                .json(&json!({"wallet": WALLET})),
        )
        .await;
    assert_eq!(body["prediction"]["action"], "freeze");
    only(
        events,
        EventType::RlPredictionMade,
        Priority::High,
        "analyst",
    );

    // DELETE /api/evidence/:id → evidence.deleted, critical.
    let (status, body, events) = s
        .act(
            s.client
                .delete(s.url(&format!("/api/evidence/{id}")))
                .bearer_auth(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let event = only(
        events,
        EventType::EvidenceDeleted,
        Priority::Critical,
        "admin",
    );
    assert_eq!(event.data["evidenceId"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_request_with_its_idempotency_key_answers_the_same_and_queues_nothing() {
    let s = server().await;
    let token = s.token("investigator").await;
    let create = |key: &str, title: &str| {
        s.client
            .post(s.url("/api/cases"))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&json!({"title": title}))
    };

    let (status, first, events) = s.act(create("k-1", "Rug pull")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(events.len(), 1);

    let response = create("k-1", "Rug pull").send().await.expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let again: Value = response.json().await.expect("json");
    assert_eq!(again, first, "the first answer, byte for byte");
    let (status, body, events) = s.act(create("k-1", "Another case")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused"))
    );
    assert!(events.is_empty());
    let (status, body, _) = s
        .act(
            s.client
                .post(s.url("/api/rl/predict"))
                .bearer_auth(&token)
                .header("Idempotency-Key", "k-1")
                .json(&json!({"wallet": WALLET})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, cases, _) = s
        .act(s.client.get(s.url("/api/cases")).bearer_auth(&token))
        .await;
    assert_eq!(cases["cases"].as_array().map(Vec::len), Some(1));

    // A refused request changed nothing and frees its key.
    let (status, _, _) = s.act(create("k-2", "")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, events) = s.act(create("k-2", "Phishing")).await;
    assert_eq!((status, events.len()), (StatusCode::CREATED, 1));

    // Keys belong to their user: the same key from someone else is a new request.
    let other = s.token("analyst").await;
    let (status, _, events) = s
        .act(
            s.client
                .post(s.url("/api/cases"))
                .bearer_auth(&other)
                .header("Idempotency-Key", "k-1")
                .json(&json!({"title": "Rug pull"})),
        )
        .await;
    assert_eq!((status, events.len()), (StatusCode::CREATED, 1));

    // A malformed key is refused before anything runs.
    let (status, body, events) = s.act(create("two words", "Rug pull")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(events.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_upload_with_its_idempotency_key_is_stored_and_recorded_once() {
    let s = server().await;
    let token = s.token("investigator").await;
    let upload = || {
        s.client
            .post(s.url("/api/evidence/upload"))
            .bearer_auth(&token)
            .header("Idempotency-Key", "upload-1")
            .multipart(upload_form(b"bank statement".to_vec(), WALLET))
    };
    let (status, first, events) = s.act(upload()).await;
    assert_eq!(status, StatusCode::CREATED);
    let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [EventType::CaseCreated, EventType::EvidenceUploaded],
        "the upload and the case it opened"
    );

    let (status, again, events) = s.act(upload()).await;

    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        again["evidence"]["evidenceId"],
        first["evidence"]["evidenceId"]
    );
    assert!(events.is_empty());
    let (_, list, _) = s
        .act(s.client.get(s.url("/api/evidence")).bearer_auth(&token))
        .await;
    assert_eq!(list["evidence"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_mid_request_does_not_leave_its_key_in_progress() {
    use std::io::Write;

    let s = server().await;
    let token = s.token("investigator").await;
    // Half a request: the headers promise 100 bytes of body, 10 arrive, then the client is gone.
    let mut stream =
        std::net::TcpStream::connect(s.base.trim_start_matches("http://")).expect("connect");
    let head = format!(
        "POST /api/cases HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Idempotency-Key: gone-1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"title\":"
    );
    stream.write_all(head.as_bytes()).expect("write");
    let db = rusqlite::Connection::open(s.dir.path().join("outbox.db")).expect("open");
    let claimed = || -> bool {
        db.query_row(
            "SELECT EXISTS (SELECT 1 FROM idempotency_keys WHERE key = 'gone-1')",
            [],
            |r| r.get(0),
        )
        .unwrap_or(false)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !claimed() {
        assert!(
            std::time::Instant::now() < deadline,
            "the key was never claimed"
        );
        tokio::task::yield_now().await;
    }
    drop(stream);

    // The retry is answered (run, or told the first one's outcome is unknown), never left
    // waiting on a request that no longer exists.
    let retry = || {
        s.client
            .post(s.url("/api/cases"))
            .bearer_auth(&token)
            .header("Idempotency-Key", "gone-1")
            .json(&json!({"title": "Rug pull"}))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body, _) = s.act(retry()).await;
        match body["error"]["code"].as_str() {
            Some("idempotency_in_progress") => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the key stayed in progress"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Some("idempotency_outcome_unknown") => break,
            _ => {
                assert_eq!(status, StatusCode::CREATED, "{body}");
                break;
            }
        }
    }
}
