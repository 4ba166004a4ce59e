//! The guide's queue routes, login, cases, evidence, metrics and the loopback defences.

use casewire_events::EventType;
use casewire_outbox::{BrokerStatus, FailKind, Failure, Page};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{PASSWORD, WALLET, server, server_with, upload_form, upload_form_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer() {
    let s = server().await;
    let (status, body) = s.get("/healthz", None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = s.get("/readyz", None).await;
    assert_eq!(
        (status, body["database"].as_str(), body["relay"].as_str()),
        (StatusCode::OK, Some("open"), Some("not configured"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_a_configured_relay_is_not_running() {
    let s = server_with(|state| state.relay_configured = true).await;
    let (status, body) = s.get("/readyz", None).await;
    assert_eq!(
        (status, body["relay"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("not running"))
    );
    s.outbox.set_broker_status(BrokerStatus {
        kafka_connected: false,
        kafka_available: true,
    });
    let (status, body) = s.get("/readyz", None).await;
    assert_eq!(
        (status, body["relay"].as_str()),
        (StatusCode::OK, Some("running")),
        "a relay waiting for its broker is running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_returns_a_token_and_bad_credentials_get_401() {
    let s = server().await;
    let (status, body) = s
        .post(
            "/api/auth/login",
            None,
            json!({"username": "admin", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], true);
    assert_eq!(body["user"]["role"], "admin");
    assert_eq!(body["token"].as_str().expect("token").len(), 64);
    let (status, body) = s
        .post(
            "/api/auth/login",
            None,
            json!({"username": "admin", "password": "wrong"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["success"], false);
    assert_eq!(body["error"]["code"], "bad_credentials");
    assert!(s.queued_types().contains(&EventType::UserLogin));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_stats_need_view_logs_and_never_trust_the_role_header() {
    let s = server().await;
    // The guide's way: a role header and no token. Refused, and recorded.
    let response = s
        .client
        .get(format!("{}/api/queue/stats", s.base))
        .header("x-user-role", "admin")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthenticated");
    let refusal = s
        .outbox
        .list_queued(Page::first(100))
        .expect("list")
        .pop()
        .expect("event");
    assert_eq!(refusal.event_type, "user.unauthorized_access");

    let investigator = s.token("investigator").await;
    let (status, body) = s.get("/api/queue/stats", Some(&investigator)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");

    let admin = s.token("admin").await;
    let (status, body) = s.get("/api/queue/stats?limit=5", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], true);
    for key in [
        "queueSize",
        "oldestEvent",
        "kafkaConnected",
        "kafkaAvailable",
        "retryInterval",
        "events",
    ] {
        assert!(body["queue"].get(key).is_some(), "queue.{key} present");
    }
    assert!(body["timestamp"].is_string());
    let refusals = s
        .queued_types()
        .iter()
        .filter(|t| **t == EventType::UserUnauthorizedAccess)
        .count();
    assert_eq!(refusals, 2, "the 401 and the 403 were both recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_and_test_events_need_a_superadmin() {
    let s = server().await;
    let admin = s.token("admin").await;
    let (status, _) = s.post("/api/queue/clear", Some(&admin), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let root = s.token("root").await;
    let (status, body) = s
        .post("/api/queue/test-event", Some(&root), json!({"eventType": "system.alert", "data": {"test": true, "message": "Test event from API"}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body["eventId"].as_str().expect("id").starts_with("evt_"));
    let (status, body) = s
        .post(
            "/api/queue/test-event",
            Some(&root),
            json!({"eventType": "system.alert", "data": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("missing data.message")
    );
    let (status, body) = s
        .post(
            "/api/queue/test-event",
            Some(&root),
            json!({"eventType": "nope"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    let queued = s.outbox.stats(Page::first(0)).expect("stats").queue_size;
    let (status, body) = s.post("/api/queue/clear", Some(&root), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Queue cleared successfully");
    assert_eq!(body["clearedCount"], queued);
    assert_eq!(
        s.queued_types(),
        [EventType::SystemAlert],
        "only the clear's own alert remains"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebound_host_and_a_foreign_origin_are_refused() {
    let s = server().await;
    let response = s
        .client
        .get(format!("{}/healthz", s.base))
        .header(reqwest::header::HOST, "attacker.example")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "bad_host");
    let response = s
        .client
        .post(format!("{}/api/auth/login", s.base))
        .header(reqwest::header::ORIGIN, "https://attacker.example")
        .json(&json!({"username": "root", "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        !s.queued_types().contains(&EventType::UserLogin),
        "the cross-site login never ran"
    );
    // A cross-site GET carries no Origin; its Sec-Fetch-Site gives it away, and it is refused
    // before it could record a refusal event.
    let before = s.queued_types().len();
    for site in ["cross-site", "same-site"] {
        let response = s
            .client
            .get(format!("{}/api/queue/stats", s.base))
            .header("sec-fetch-site", site)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{site}");
    }
    assert_eq!(s.queued_types().len(), before, "nothing recorded");
    // The app's own page and a typed address are served.
    for site in ["same-origin", "none"] {
        let response = s
            .client
            .get(format!("{}/healthz", s.base))
            .header("sec-fetch-site", site)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{site}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_must_say_so_and_stay_small() {
    let s = server().await;
    let response = s
        .client
        .post(format!("{}/api/auth/login", s.base))
        .header(reqwest::header::CONTENT_TYPE, "text/plain")
        .body(r#"{"username":"root","password":"x"}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    let huge = json!({"username": "root", "password": "x".repeat(2 * 1024 * 1024)});
    let (status, body) = s.post("/api/auth/login", None, huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_goes_from_open_to_closed_over_http_with_its_events() {
    let s = server().await;
    let investigator = s.token("investigator").await;
    let (status, body) = s
        .post(
            "/api/cases",
            Some(&investigator),
            json!({"title": "Phishing wallet drain", "description": "victim report"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = body["case"]["caseId"].as_str().expect("case id").to_owned();
    assert!(id.starts_with("CASE-20"), "{id}");

    // An investigator may not escalate; an admin (who holds analyse) may.
    let escalation = json!({"caseId": id, "authority": "national cybercrime unit", "reason": "funds moved abroad"});
    let (status, body) = s
        .post(
            "/api/cases/escalate",
            Some(&investigator),
            escalation.clone(),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let admin = s.token("admin").await;
    let (status, body) = s
        .post(
            &format!("/api/cases/{id}/assign"),
            Some(&admin),
            json!({"assignee": "investigator"}),
        )
        .await;
    assert_eq!(
        (status, body["case"]["assignee"].as_str()),
        (StatusCode::OK, Some("investigator"))
    );
    let (status, body) = s
        .post("/api/cases/escalate", Some(&admin), escalation)
        .await;
    assert_eq!(
        (status, body["case"]["status"].as_str()),
        (StatusCode::OK, Some("escalated"))
    );
    let (status, _) = s
        .post(
            &format!("/api/cases/{id}/close"),
            Some(&admin),
            json!({"resolution": "funds frozen"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s
        .post(
            &format!("/api/cases/{id}/close"),
            Some(&admin),
            json!({"resolution": "again"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );

    let (status, body) = s
        .get(&format!("/api/cases/{id}/timeline"), Some(&investigator))
        .await;
    assert_eq!(status, StatusCode::OK);
    let types: Vec<&str> = body["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|t| t["eventType"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "case.created",
            "case.assigned",
            "case.escalated",
            "case.closed"
        ]
    );
    let queued = s.queued_types();
    for t in [
        EventType::CaseCreated,
        EventType::CaseAssigned,
        EventType::CaseEscalated,
        EventType::CaseClosed,
    ] {
        assert_eq!(queued.iter().filter(|q| **q == t).count(), 1, "{t}");
    }
    // The investigator assigned checks the timeline: four events, chained, intact.
    let (status, body) = s
        .post(
            &format!("/api/cases/{id}/verify"),
            Some(&investigator),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["check"]["intact"], &body["check"]["events"]),
        (&json!(true), &json!(4))
    );
    assert_eq!(
        s.queued_types().len(),
        queued.len(),
        "an intact check sends nothing"
    );
    let (status, body) = s.get("/api/cases?status=closed", Some(&investigator)).await;
    assert_eq!(
        (status, body["cases"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );
    let (status, _) = s.get("/api/cases?status=lost", Some(&investigator)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = s.get("/api/cases/CASE-1999-001", Some(&investigator)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_is_uploaded_downloaded_verified_and_deleted_over_http() {
    let s = server().await;
    let investigator = s.token("investigator").await;
    let content = b"transaction screenshot bytes".repeat(100);
    let response = s
        .client
        .post(format!("{}/api/evidence/upload", s.base))
        .bearer_auth(&investigator)
        .multipart(upload_form(content.clone(), WALLET))
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    let id = body["evidence"]["evidenceId"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(body["evidence"]["fileSize"], content.len());
    assert_eq!(body["evidence"]["filename"], "test.txt");

    let response = s
        .client
        .get(format!("{}/api/evidence/{id}/download", s.base))
        .bearer_auth(&investigator)
        .send()
        .await
        .expect("download");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"test.txt\"; filename*=UTF-8''test.txt"
    );
    assert_eq!(response.bytes().await.expect("body").to_vec(), content);

    let (status, body) = s
        .post(
            &format!("/api/evidence/{id}/verify"),
            Some(&investigator),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["verification"]["verified"].as_bool()),
        (StatusCode::OK, Some(true))
    );

    let delete = |token: String| {
        let url = format!("{}/api/evidence/{id}", s.base);
        let client = s.client.clone();
        async move {
            client
                .delete(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("delete")
                .status()
        }
    };
    assert_eq!(delete(investigator.clone()).await, StatusCode::FORBIDDEN);
    let admin = s.token("admin").await;
    assert_eq!(delete(admin.clone()).await, StatusCode::OK);
    let (status, body) = s
        .get(&format!("/api/evidence/{id}"), Some(&investigator))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["evidence"]["deletedAt"].is_i64(),
        "the record stays, marked deleted"
    );
    assert_eq!(delete(admin).await, StatusCode::GONE);

    let queued = s.queued_types();
    for t in [
        EventType::EvidenceUploaded,
        EventType::EvidenceDownloaded,
        EventType::EvidenceVerified,
        EventType::EvidenceDeleted,
    ] {
        assert_eq!(queued.iter().filter(|q| **q == t).count(), 1, "{t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_and_leave_nothing() {
    let s = server().await;
    let investigator = s.token("investigator").await;
    let send = |form: reqwest::multipart::Form| {
        let (client, url, token) = (
            s.client.clone(),
            format!("{}/api/evidence/upload", s.base),
            investigator.clone(),
        );
        async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .multipart(form)
                .send()
                .await
                .expect("upload");
            let status = response.status();
            (status, response.json::<Value>().await.expect("json"))
        }
    };
    // Over the test server's 64 KiB limit: refused by the store, or cut off with the body
    // past the form's room, 413 either way.
    // (The second is cut by the body limit, 64 KiB past the evidence limit.)
    for size in [100 * 1024, 160 * 1024] {
        let (status, body) = send(upload_form(vec![1u8; size], WALLET)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large")),
            "{size} bytes: {body}"
        );
    }
    let (status, body) = send(upload_form(
        b"x".to_vec(),
        "0x742d35Cc6634C0532925a3b844Bc9e7595f0bEb",
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("wallet")
    );
    let (status, body) =
        send(reqwest::multipart::Form::new().text("caseId", "CASE-2024-001")).await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("evidenceFile is required"))
    );
    let (status, body) = s.get("/api/evidence", Some(&investigator)).await;
    assert_eq!(
        (status, body["evidence"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    assert!(!s.queued_types().contains(&EventType::EvidenceUploaded));
    let stored: usize = walk(&s.dir.path().join("evidence"));
    assert_eq!(stored, 0, "no file stored for a refused upload");
}

/// Files under `dir`, recursively.
fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_the_queue_and_the_requests_in_prometheus_text() {
    let s = server().await;
    // A login (2xx) and a refusal (4xx), both with their events queued.
    s.token("root").await;
    let (status, _) = s.get("/api/queue/stats", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The relay's outcomes: one delivered, one retriable failure, one permanent, one while no
    // broker was reachable.
    let claimed = s.outbox.claim(10).expect("claim").events;
    assert!(claimed.len() >= 2);
    s.outbox.ack(vec![claimed[0].seq]).await.expect("ack");
    let failure = |kind| Failure {
        seq: claimed[1].seq,
        kind,
        reason: "test".into(),
    };
    for kind in [
        FailKind::Unreachable,
        FailKind::Retriable,
        FailKind::Permanent,
    ] {
        s.outbox.fail(vec![failure(kind)]).await.expect("fail");
    }
    let response = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.expect("text");
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
            .parse()
            .expect("number")
    };
    // The login and the refusal were queued; one was delivered, one dead-lettered.
    assert_eq!(
        value("casewire_queue_events"),
        s.outbox.stats(Page::first(0)).expect("stats").queue_size as f64
    );
    assert_eq!(value("casewire_kafka_connected"), 0.0);
    assert_eq!(value("casewire_dead_letters"), 1.0);
    assert_eq!(value("casewire_events_published_total"), 1.0);
    // The delivered event's row is deleted once the writer is idle: it may be either way here.
    assert!(value("casewire_queue_awaiting_deletion") <= 1.0);
    assert_eq!(value("casewire_events_failed_total"), 2.0);
    assert_eq!(value("casewire_events_dead_lettered_total"), 1.0);
    assert_eq!(value("casewire_events_unreachable_total"), 1.0);
    assert!(
        value("casewire_http_requests_total{status=\"2xx\"}") >= 1.0,
        "the login"
    );
    assert!(
        value("casewire_http_requests_total{status=\"4xx\"}") >= 1.0,
        "the refusal"
    );
    assert!(value("casewire_http_request_duration_seconds_count") >= 2.0);
    assert_eq!(
        value("casewire_http_request_duration_seconds_bucket{le=\"+Inf\"}"),
        value("casewire_http_request_duration_seconds_count")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_covers_every_route() {
    let s = server().await;
    let (status, document) = s.get("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    let mut operations: Vec<String> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    operations.sort();
    let mut expected = vec![
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "GET /api/openapi.json",
        "POST /api/auth/login",
        "POST /api/auth/logout",
        "GET /api/queue/stats",
        "POST /api/queue/clear",
        "POST /api/queue/retry",
        "POST /api/queue/test-event",
        "GET /api/queue/dead-letters",
        "POST /api/queue/dead-letters/replay",
        "POST /api/queue/dead-letters/discard",
        "POST /api/cases",
        "GET /api/cases",
        "POST /api/cases/escalate",
        "GET /api/cases/{id}",
        "PATCH /api/cases/{id}",
        "POST /api/cases/{id}/assign",
        "POST /api/cases/{id}/escalate",
        "POST /api/cases/{id}/close",
        "POST /api/cases/{id}/reopen",
        "POST /api/cases/{id}/verify",
        "GET /api/cases/{id}/timeline",
        "POST /api/evidence/upload",
        "GET /api/evidence",
        "GET /api/evidence/{id}",
        "DELETE /api/evidence/{id}",
        "GET /api/evidence/{id}/download",
        "POST /api/evidence/{id}/verify",
        "POST /api/evidence/{id}/anchor",
        "GET /api/evidence/{id}/anchor",
        "GET /api/evidence/{id}/anchor/proof",
        "GET /api/anchoring",
        "POST /api/rl/predict",
        "POST /api/rl/feedback",
        "GET /api/setup",
        "POST /api/setup",
        "GET /api/auth/me",
        "POST /api/auth/password",
        "GET /api/users",
        "POST /api/users",
        "PATCH /api/users/{id}",
        "POST /api/users/{id}/password",
        "GET /api/settings",
        "PUT /api/settings",
        "GET /api/sync",
        "GET /api/updates",
        "POST /api/updates/check",
        "POST /api/updates/install",
        "GET /api/queue/events",
        "GET /api/queue/events/{event_id}",
        "POST /api/evidence/local",
        "POST /api/evidence/{id}/save",
    ];
    expected.sort_unstable();
    assert_eq!(operations, expected);
    // Protected operations say so, and every operation documents the error envelope.
    let stats = &document["paths"]["/api/queue/stats"]["get"];
    assert_eq!(stats["security"][0]["bearer"], json!([]));
    assert_eq!(
        stats["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorResponse"
    );
    assert!(document["paths"]["/healthz"]["get"]["security"].is_null());
    // Every code an error may carry is listed, and an error's code is one of the list.
    let listed: Vec<&str> = document["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("the codes are listed")
        .iter()
        .map(|code| code.as_str().expect("a code"))
        .collect();
    let codes: Vec<&str> = casewire_server::ErrorCode::ALL
        .iter()
        .map(|code| code.as_str())
        .collect();
    assert_eq!(listed, codes);
    assert_eq!(
        document["components"]["schemas"]["ErrorBody"]["properties"]["code"]["$ref"],
        "#/components/schemas/ErrorCode"
    );
    for schema in [
        "ErrorResponse",
        "Case",
        "Evidence",
        "QueueStats",
        "Prediction",
    ] {
        assert!(
            document["components"]["schemas"][schema].is_object(),
            "{schema} is described"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_now_makes_waiting_events_due_and_logout_ends_the_token() {
    let s = server().await;
    let admin = s.token("admin").await;
    // The relay's side: the login's event failed once and now waits out its delay.
    let claimed = s.outbox.claim(10).expect("claim").events;
    let failures = claimed
        .iter()
        .map(|e| Failure {
            seq: e.seq,
            kind: FailKind::Retriable,
            reason: "broker said no".into(),
        })
        .collect();
    s.outbox.fail(failures).await.expect("failed");
    assert!(s.outbox.claim(10).expect("claim").events.is_empty());

    let (status, body) = s.post("/api/queue/retry", Some(&admin), json!({})).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["retriedCount"], claimed.len() as u64);
    assert_eq!(
        s.outbox.claim(10).expect("claim").events.len(),
        claimed.len()
    );

    let (status, _) = s.post("/api/auth/logout", Some(&admin), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s.get("/api/queue/stats", Some(&admin)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_is_updated_read_listed_and_escalated_by_its_path() {
    let s = server().await;
    let investigator = s.token("investigator").await;
    let (_, body) = s
        .post(
            "/api/cases",
            Some(&investigator),
            json!({"title": "Rug pull"}),
        )
        .await;
    let id = body["case"]["caseId"].as_str().expect("id").to_owned();

    let (status, body, events) = s
        .act(
            s.client
                .patch(s.url(&format!("/api/cases/{id}")))
                .bearer_auth(&investigator)
                .json(&json!({"description": "token XYZ, 40 victims"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["case"]["title"], "Rug pull", "absent fields stay");
    assert_eq!(body["case"]["description"], "token XYZ, 40 victims");
    assert_eq!(
        events.iter().map(|e| e.event_type).collect::<Vec<_>>(),
        [EventType::CaseUpdated]
    );
    let (status, body) = s
        .get(&format!("/api/cases/{id}"), Some(&investigator))
        .await;
    assert_eq!(
        (status, body["case"]["description"].as_str()),
        (StatusCode::OK, Some("token XYZ, 40 victims"))
    );
    let (status, body) = s.get("/api/cases?status=open", Some(&investigator)).await;
    assert_eq!(
        (status, body["cases"][0]["caseId"].as_str()),
        (StatusCode::OK, Some(id.as_str()))
    );

    let analyst = s.token("analyst").await;
    let (status, body, events) = s
        .act(
            s.client
                .post(s.url(&format!("/api/cases/{id}/escalate")))
                .bearer_auth(&analyst)
                .json(&json!({"authority": "FBI IC3", "reason": "cross-border"})),
        )
        .await;
    assert_eq!(
        (status, body["case"]["status"].as_str()),
        (StatusCode::OK, Some("escalated"))
    );
    assert_eq!(
        events.iter().map(|e| e.event_type).collect::<Vec<_>>(),
        [EventType::CaseEscalated]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_replayed_and_discarded_over_http() {
    let s = server().await;
    let admin = s.token("admin").await;
    let root = s.token("root").await;
    // The relay gave up on the first queued event (a login) for good.
    let kill = |seq| Failure {
        seq,
        kind: FailKind::Permanent,
        reason: "MSG_SIZE_TOO_LARGE".into(),
    };
    let first = s.outbox.claim(1).expect("claim").events.remove(0);
    s.outbox.fail(vec![kill(first.seq)]).await.expect("failed");

    let (status, body) = s.get("/api/queue/dead-letters", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["deadLetters"][0]["eventId"], first.event_id.as_str());
    assert_eq!(body["deadLetters"][0]["reason"], "MSG_SIZE_TOO_LARGE");

    let ids = json!({"eventIds": [first.event_id]});
    let (status, body) = s
        .post("/api/queue/dead-letters/replay", Some(&admin), ids.clone())
        .await;
    assert_eq!(
        (status, body["replayed"][0].as_str()),
        (StatusCode::OK, Some(first.event_id.as_str()))
    );
    let (_, body) = s.get("/api/queue/dead-letters", Some(&admin)).await;
    assert_eq!(body["deadLetters"].as_array().map(Vec::len), Some(0));

    let again = s.outbox.claim(10).expect("claim").events;
    let replayed = again
        .iter()
        .find(|e| e.event_id == first.event_id)
        .expect("queued again");
    s.outbox
        .fail(vec![kill(replayed.seq)])
        .await
        .expect("failed");
    let (status, body) = s
        .post("/api/queue/dead-letters/discard", Some(&root), ids)
        .await;
    assert_eq!(
        (status, body["discarded"][0].as_str()),
        (StatusCode::OK, Some(first.event_id.as_str()))
    );
    let (_, body) = s.get("/api/queue/dead-letters", Some(&admin)).await;
    assert_eq!(body["deadLetters"].as_array().map(Vec::len), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_is_listed_by_case_and_wallet_and_read_by_id() {
    let s = server().await;
    let token = s.token("investigator").await;
    let other_wallet = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
    let mut ids = Vec::new();
    for (case, wallet) in [
        ("CASE-2024-001", WALLET),
        ("CASE-2024-001", other_wallet),
        ("CASE-2024-002", WALLET),
    ] {
        let (status, body, _) = s
            .act(
                s.client
                    .post(s.url("/api/evidence/upload"))
                    .bearer_auth(&token)
                    .multipart(crate::support::upload_form_for(
                        case,
                        format!("{case} {wallet}").into_bytes(),
                        wallet,
                    )),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(
            body["evidence"]["evidenceId"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let listed = |query: &str| {
        let query = query.to_owned();
        let s = &s;
        let token = &token;
        async move {
            let (status, body) = s.get(&format!("/api/evidence{query}"), Some(token)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let mut found: Vec<String> = body["evidence"]
                .as_array()
                .expect("list")
                .iter()
                .map(|e| e["evidenceId"].as_str().expect("id").to_owned())
                .collect();
            found.sort();
            found
        }
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(listed("").await, sorted(ids.clone()));
    assert_eq!(
        listed("?caseId=CASE-2024-001").await,
        sorted(vec![ids[0].clone(), ids[1].clone()])
    );
    assert_eq!(
        listed(&format!("?wallet={WALLET}")).await,
        sorted(vec![ids[0].clone(), ids[2].clone()])
    );
    assert_eq!(
        listed(&format!("?caseId=CASE-2024-002&wallet={WALLET}")).await,
        vec![ids[2].clone()]
    );
    let (status, body) = s
        .get(&format!("/api/evidence/{}", ids[1]), Some(&token))
        .await;
    assert_eq!(
        (status, body["evidence"]["wallet"].as_str()),
        (StatusCode::OK, Some(other_wallet))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_file_changed_on_disk_is_not_served_whole_and_raises_the_alert() {
    use sha2::Digest;
    let (s, _app) = crate::support::app_server(&[]).await;
    let investigator = s.token("investigator").await;
    // Larger than one chunk of the stream, so most of it is sent before the end is reached.
    let content = b"wire transfer record; ".repeat(10_000);
    let response = s
        .client
        .post(s.url("/api/evidence/upload"))
        .bearer_auth(&investigator)
        .multipart(upload_form(content.clone(), WALLET))
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    let id = body["evidence"]["evidenceId"]
        .as_str()
        .expect("id")
        .to_owned();
    let hash = hex::encode(sha2::Sha256::digest(&content));
    // Another program rewrites the stored file: same length, one byte different.
    let stored = s.dir.path().join("evidence").join(&hash[..2]).join(&hash);
    // (Sealed or not, one byte of the last part of the file: its header still reads.)
    let original = std::fs::read(&stored).expect("stored");
    let mut altered = original.clone();
    let at = altered.len() - 3;
    altered[at] ^= 0x20;
    std::fs::write(&stored, &altered).expect("tamper");

    let response = s
        .client
        .get(s.url(&format!("/api/evidence/{id}/download")))
        .bearer_auth(&investigator)
        .send()
        .await
        .expect("download starts");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the check can only come at the end"
    );
    let received = response.bytes().await;
    assert!(
        received.as_ref().map_or(true, |b| b.len() < altered.len()),
        "the altered file was served whole"
    );
    let alerts: Vec<casewire_events::Event> = s
        .events()
        .into_iter()
        .filter(|e| e.event_type == EventType::SystemAlert)
        .collect();
    assert_eq!(alerts.len(), 1, "one alert");
    assert_eq!(alerts[0].data["evidenceId"], id.as_str());
    assert_eq!(alerts[0].data["expectedHash"], hash.as_str());
    assert_eq!(alerts[0].priority, casewire_events::Priority::Critical);

    // Put back, it is served whole again, with no new alert.
    std::fs::write(&stored, &original).expect("restore");
    let response = s
        .client
        .get(s.url(&format!("/api/evidence/{id}/download")))
        .bearer_auth(&investigator)
        .send()
        .await
        .expect("download");
    let whole = response.bytes().await.expect("whole").to_vec();
    assert!(
        whole == content,
        "served whole again ({} bytes)",
        whole.len()
    );
    let alerts = s
        .events()
        .into_iter()
        .filter(|e| e.event_type == EventType::SystemAlert)
        .count();
    assert_eq!(alerts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_the_security_headers_and_a_download_runs_nothing() {
    let s = server().await;
    let investigator = s.token("investigator").await;
    let form = reqwest::multipart::Form::new()
        .text("caseId", "CASE-2024-001")
        .text("wallet", WALLET)
        .text("reporter", "test@fraud.com")
        .part(
            "evidenceFile",
            reqwest::multipart::Part::bytes(b"<script>alert(1)</script>".to_vec())
                .file_name("page.html")
                .mime_str("text/html")
                .expect("mime"),
        );
    let response = s
        .client
        .post(s.url("/api/evidence/upload"))
        .bearer_auth(&investigator)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.expect("json");
    let id = body["evidence"]["evidenceId"].as_str().expect("id");
    // The scheme's name in any case (RFC 7235).
    let download = s
        .client
        .get(s.url(&format!("/api/evidence/{id}/download")))
        .header("authorization", format!("bearer {investigator}"))
        .send()
        .await
        .expect("download");
    assert_eq!(download.status(), StatusCode::OK);
    let headers = download.headers();
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["content-security-policy"], "sandbox");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    for path in [
        "/api/auth/me",
        "/api/cases",
        "/metrics",
        "/api/no/such/route",
    ] {
        let answer = s
            .client
            .get(s.url(path))
            .bearer_auth(&investigator)
            .send()
            .await
            .expect("answer");
        let headers = answer.headers();
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_and_evidence_are_listed_a_page_at_a_time() {
    let s = server().await;
    let analyst = s.token("analyst").await;
    for n in 0..3 {
        let (status, created) = s
            .post(
                "/api/cases",
                Some(&analyst),
                json!({"title": format!("Paged {n}"), "description": ""}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let case_id = created["case"]["caseId"].as_str().expect("case id");
        let form = upload_form_for(case_id, vec![n as u8 + 1], WALLET);
        let response = s
            .client
            .post(s.url("/api/evidence/upload"))
            .bearer_auth(&analyst)
            .multipart(form)
            .send()
            .await
            .expect("upload");
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    for list in ["cases", "evidence"] {
        let (status, first) = s.get(&format!("/api/{list}?limit=2"), Some(&analyst)).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        let cursor = first["nextCursor"]
            .as_str()
            .expect("a next page")
            .to_owned();
        let (_, second) = s
            .get(
                &format!("/api/{list}?limit=2&after={cursor}"),
                Some(&analyst),
            )
            .await;
        let ids = |page: &Value| -> Vec<String> {
            page[list]
                .as_array()
                .expect("items")
                .iter()
                .map(|item| item.to_string())
                .collect()
        };
        assert_eq!((ids(&first).len(), ids(&second).len()), (2, 1), "{list}");
        assert!(second.get("nextCursor").is_none(), "{list}: the last page");
        assert!(ids(&second).iter().all(|id| !ids(&first).contains(id)));
        for bad in ["limit=0", "limit=1001", "after=yesterday"] {
            let (status, body) = s.get(&format!("/api/{list}?{bad}"), Some(&analyst)).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_request")),
                "{list}?{bad}: {body}"
            );
        }
    }
    let (_, found) = s.get("/api/cases?search=paged%201", Some(&analyst)).await;
    assert_eq!(found["cases"].as_array().map(Vec::len), Some(1), "{found}");
}
