//! Every protected route refuses what it must, the same way: 401 without a token, 403 for a
//! role without the permission (both recorded), 415 for a JSON body not declared as JSON, 413
//! past the body limit and 400 for malformed JSON. Nothing refused queues anything else.

use casewire_events::EventType;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::server;

/// The routes with JSON bodies: method, path, the least role allowed, the role just below
/// it (if any) and a valid body.
fn json_routes() -> Vec<(
    Method,
    &'static str,
    &'static str,
    Option<&'static str>,
    Value,
)> {
    let escalation = json!({"caseId": "CASE-2024-001", "authority": "FBI", "reason": "fraud"});
    vec![
        (
            Method::POST,
            "/api/cases",
            "investigator",
            None,
            json!({"title": "t"}),
        ),
        (
            Method::PATCH,
            "/api/cases/CASE-2024-001",
            "investigator",
            None,
            json!({"title": "t"}),
        ),
        (
            Method::POST,
            "/api/cases/CASE-2024-001/assign",
            "analyst",
            Some("investigator"),
            json!({"assignee": "a"}),
        ),
        (
            Method::POST,
            "/api/cases/CASE-2024-001/escalate",
            "analyst",
            Some("investigator"),
            escalation.clone(),
        ),
        (
            Method::POST,
            "/api/cases/escalate",
            "analyst",
            Some("investigator"),
            escalation,
        ),
        (
            Method::POST,
            "/api/cases/CASE-2024-001/close",
            "analyst",
            Some("investigator"),
            json!({"resolution": "r"}),
        ),
        (
            Method::POST,
            "/api/evidence/0123/anchor",
            "analyst",
            Some("investigator"),
            json!({"txHash": "0x", "blockNumber": 1, "contractAddress": "0x"}),
        ),
        (
            Method::POST,
            "/api/rl/predict",
            "analyst",
            Some("investigator"),
            json!({"wallet": "0x"}),
        ),
        (
            Method::POST,
            "/api/rl/feedback",
            "analyst",
            Some("investigator"),
            json!({"predictionId": "p", "actualAction": "freeze"}),
        ),
        (
            Method::POST,
            "/api/queue/test-event",
            "root",
            Some("admin"),
            json!({"eventType": "system.info"}),
        ),
        (
            Method::POST,
            "/api/queue/dead-letters/replay",
            "admin",
            Some("analyst"),
            json!({"eventIds": ["e"]}),
        ),
        (
            Method::POST,
            "/api/queue/dead-letters/discard",
            "root",
            Some("admin"),
            json!({"eventIds": ["e"]}),
        ),
        (
            Method::POST,
            "/api/auth/password",
            "investigator",
            None,
            json!({"currentPassword": "a", "newPassword": "b"}),
        ),
        (
            Method::POST,
            "/api/updates/install",
            "root",
            Some("admin"),
            json!({"version": "9.0.0"}),
        ),
        (
            Method::POST,
            "/api/users",
            "root",
            Some("admin"),
            json!({"username": "u", "role": "user", "password": "p"}),
        ),
        (
            Method::PATCH,
            "/api/users/1",
            "root",
            Some("admin"),
            json!({"disabled": true}),
        ),
        (
            Method::POST,
            "/api/users/1/password",
            "root",
            Some("admin"),
            json!({"password": "p"}),
        ),
        (
            Method::POST,
            "/api/evidence/local",
            "investigator",
            None,
            json!({"handle": "h", "caseId": "c", "wallet": "0x", "reporter": "r"}),
        ),
        (
            Method::POST,
            "/api/evidence/0123/save",
            "investigator",
            None,
            json!({"handle": "h"}),
        ),
        (
            Method::PUT,
            "/api/settings",
            "root",
            Some("admin"),
            json!({"values": {}}),
        ),
    ]
}

/// The routes without a body.
fn bodiless_routes() -> Vec<(Method, &'static str, &'static str, Option<&'static str>)> {
    vec![
        (Method::GET, "/api/cases", "investigator", None),
        (
            Method::GET,
            "/api/cases/CASE-2024-001",
            "investigator",
            None,
        ),
        (
            Method::GET,
            "/api/cases/CASE-2024-001/timeline",
            "investigator",
            None,
        ),
        (Method::GET, "/api/evidence", "investigator", None),
        (Method::GET, "/api/evidence/0123", "investigator", None),
        (
            Method::GET,
            "/api/evidence/0123/download",
            "investigator",
            None,
        ),
        (
            Method::GET,
            "/api/evidence/0123/anchor",
            "investigator",
            None,
        ),
        (
            Method::POST,
            "/api/evidence/0123/verify",
            "investigator",
            None,
        ),
        (
            Method::DELETE,
            "/api/evidence/0123",
            "admin",
            Some("analyst"),
        ),
        (Method::POST, "/api/evidence/upload", "investigator", None),
        (Method::GET, "/api/queue/stats", "admin", Some("analyst")),
        (
            Method::GET,
            "/api/queue/dead-letters",
            "admin",
            Some("analyst"),
        ),
        (Method::POST, "/api/queue/retry", "admin", Some("analyst")),
        (
            Method::POST,
            "/api/cases/CASE-2024-001/reopen",
            "analyst",
            Some("investigator"),
        ),
        (Method::POST, "/api/queue/clear", "root", Some("admin")),
        (Method::POST, "/api/auth/logout", "investigator", None),
        (Method::GET, "/api/auth/me", "investigator", None),
        (Method::GET, "/api/users", "investigator", None),
        (Method::GET, "/api/sync", "investigator", None),
        (Method::GET, "/api/settings", "admin", Some("analyst")),
        (Method::GET, "/api/updates", "root", Some("admin")),
        (Method::POST, "/api/updates/check", "root", Some("admin")),
        (Method::GET, "/api/queue/events", "admin", Some("analyst")),
        (
            Method::GET,
            "/api/queue/events/evt_1_00",
            "admin",
            Some("analyst"),
        ),
    ]
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protected_route_refuses_the_unauthenticated_and_the_unpermitted() {
    // Every refusal recorded on its own: the rates that bound a flood (tested below) would
    // fold this many from one client.
    let s = crate::support::server_with_policy(casewire_core::AuthPolicy {
        refusals: casewire_core::refusals::RefusalLimits {
            per_client: 10_000,
            global: 10_000,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let mut tokens = std::collections::HashMap::new();
    for name in ["investigator", "analyst", "admin", "root"] {
        tokens.insert(name, s.token(name).await);
    }
    let routes = json_routes()
        .into_iter()
        .map(|(m, p, least, below, _)| (m, p, least, below))
        .chain(bodiless_routes());
    for (method, path, _, below) in routes {
        let (status, body, events) = s.act(s.client.request(method.clone(), s.url(path))).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{method} {path}"
        );
        assert_eq!(
            events.iter().map(|e| e.event_type).collect::<Vec<_>>(),
            [EventType::UserUnauthorizedAccess],
            "{method} {path}"
        );
        assert_eq!(events[0].data["path"], path);
        assert_eq!(events[0].data["method"], method.as_str());
        if let Some(below) = below {
            let (status, body, events) = s
                .act(
                    s.client
                        .request(method.clone(), s.url(path))
                        .bearer_auth(&tokens[below]),
                )
                .await;
            assert_eq!(
                (status, code(&body)),
                (StatusCode::FORBIDDEN, "forbidden"),
                "{method} {path} as {below}"
            );
            assert_eq!(
                events.iter().map(|e| e.event_type).collect::<Vec<_>>(),
                [EventType::UserUnauthorizedAccess],
                "{method} {path} as {below}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_route_refuses_undeclared_oversized_and_malformed_bodies() {
    let s = server().await;
    let mut tokens = std::collections::HashMap::new();
    for name in ["investigator", "analyst", "admin", "root"] {
        tokens.insert(name, s.token(name).await);
    }
    // Just past the limit: small enough to sit whole in loopback's socket buffers, so the early
    // 413 is read rather than the write failing.
    let huge = json!({"padding": "x".repeat(1024 * 1024 + 4096)}).to_string();
    for (method, path, least, _, valid) in json_routes() {
        let request = || {
            s.client
                .request(method.clone(), s.url(path))
                .bearer_auth(&tokens[least])
        };
        let refusals = [
            (
                request()
                    .header(reqwest::header::CONTENT_TYPE, "text/plain")
                    .body(valid.to_string()),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
            (
                request()
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(huge.clone()),
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
            ),
            (
                request()
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body("{\"title\": "),
                StatusCode::BAD_REQUEST,
                "invalid_request",
            ),
        ];
        for (request, status, expected) in refusals {
            let (got, body, events) = s.act(request).await;
            assert_eq!((got, code(&body)), (status, expected), "{method} {path}");
            assert!(events.is_empty(), "{method} {path} queued {events:?}");
        }
    }
}

/// The value of a `/metrics` line (`name` with its labels, if any).
async fn metric(s: &crate::support::Server, name: &str) -> f64 {
    let text = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refusals_from_many_clients_cannot_crowd_out_an_upload_or_its_delivery() {
    // Headquarters is down while the flood comes: nothing leaves the queue.
    let mut tansu = casewire_testkit::Tansu::stopped();
    let quota = 2 * 1024 * 1024;
    let (s, app) = crate::support::app_server(&[
        ("KAFKA_BROKERS", &tansu.brokers()),
        ("CASEWIRE_QUEUE_QUOTA_BYTES", &quota.to_string()),
    ])
    .await;
    let investigator = s.token("investigator").await;
    let (status, body) = s
        .post(
            "/api/cases",
            Some(&investigator),
            json!({"title": "Mule accounts"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let case_id = body["case"]["caseId"].as_str().expect("id").to_owned();
    let before = app
        .outbox
        .stats(casewire_outbox::Page::first(0))
        .expect("stats")
        .bytes;

    // 40 clients (their own loopback addresses), 100 refusals each, every path different and
    // 4,000 bytes long: unbounded, 16 MB of events, eight times the quota.
    let mut clients = Vec::new();
    for c in 0..40u8 {
        let address = std::net::IpAddr::from([127, 0, 0, 2 + c]);
        let client = reqwest::Client::builder()
            .local_address(address)
            .build()
            .expect("client");
        let base = s.url("");
        clients.push(tokio::spawn(async move {
            for i in 0..100 {
                let path = format!("{base}/api/cases/{}{c}-{i}", "b".repeat(4_000));
                let status = client.get(&path).send().await.expect("refused").status();
                assert_eq!(status, StatusCode::UNAUTHORIZED);
            }
        }));
    }
    for client in clients {
        client.await.expect("client ran");
    }

    let share = app.auth.refusals.limits().share_bytes;
    let grew = app
        .outbox
        .stats(casewire_outbox::Page::first(0))
        .expect("stats")
        .bytes
        - before;
    assert!(
        grew <= share,
        "the refusals took {grew} bytes of the queue, more than their share of {share}"
    );
    let counted = metric(&s, "casewire_refusals_total{outcome=\"recorded\"}").await
        + metric(&s, "casewire_refusals_total{outcome=\"coalesced\"}").await
        + metric(&s, "casewire_refusals_total{outcome=\"rate_limited\"}").await
        + metric(&s, "casewire_refusals_total{outcome=\"dropped\"}").await;
    assert_eq!(counted, 4_000.0, "every refusal is counted");
    let recorded = s
        .events()
        .into_iter()
        .filter(|e| e.event_type == EventType::UserUnauthorizedAccess)
        .collect::<Vec<_>>();
    assert!(
        !recorded.is_empty() && recorded.len() <= 200,
        "{} recorded",
        recorded.len()
    );
    for event in &recorded {
        let path = event.data["path"].as_str().unwrap_or_default();
        assert!(
            path.len() <= 256 + '…'.len_utf8(),
            "a path of {} bytes recorded",
            path.len()
        );
        assert!(
            event.data["pathLength"].as_u64().is_some_and(|n| n > 4_000),
            "the event says how long the path was: {:?}",
            event.data
        );
    }

    // The investigator's work is still accepted, and reaches headquarters once it is back.
    let response = s
        .client
        .post(s.url("/api/evidence/upload"))
        .bearer_auth(&investigator)
        .multipart(crate::support::upload_form_for(
            &case_id,
            b"bank statement".to_vec(),
            crate::support::WALLET,
        ))
        .send()
        .await
        .expect("upload");
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{:?}",
        response.text().await
    );
    tansu.start();
    let timeline = format!("/api/cases/{case_id}/timeline");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, body) = s.get(&timeline, Some(&investigator)).await;
        let uploaded = body["timeline"]
            .as_array()
            .and_then(|t| t.iter().find(|e| e["eventType"] == "evidence.uploaded"))
            .map(|e| e["delivery"]["state"].clone());
        if uploaded == Some(json!("delivered")) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the upload's event was not delivered: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_login_says_when_to_retry_and_another_client_signs_in() {
    let s = server().await;
    let from = |last: u8| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, last]))
            .build()
            .expect("client")
    };
    let (attacker, owner) = (from(66), from(7));
    let login = |client: reqwest::Client, password: &'static str| {
        let url = s.url("/api/auth/login");
        async move {
            client
                .post(url)
                .json(&json!({"username": "ROOT ", "password": password}))
                .send()
                .await
                .expect("login")
        }
    };
    for _ in 0..5 {
        let response = login(attacker.clone(), "not the password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = login(attacker.clone(), crate::support::PASSWORD).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("30")
    );
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], "login_throttled");
    let signed_in = login(owner, crate::support::PASSWORD).await;
    assert_eq!(
        signed_in.status(),
        StatusCode::OK,
        "the owner's own client is not locked out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_investigator_cannot_see_or_touch_another_investigators_case_or_its_evidence() {
    let s = crate::support::server_with_users(
        &[
            ("ivy", casewire_core::Role::User),
            ("bob", casewire_core::Role::User),
            ("ana", casewire_core::Role::Analyst),
        ],
        |_| {},
    )
    .await;
    let (ivy, bob, ana) = (
        s.token("ivy").await,
        s.token("bob").await,
        s.token("ana").await,
    );
    let (status, body) = s
        .post("/api/cases", Some(&ivy), json!({"title": "Ivy's ring"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let case_id = body["case"]["caseId"].as_str().expect("id").to_owned();
    let response = s
        .client
        .post(s.url("/api/evidence/upload"))
        .bearer_auth(&ivy)
        .multipart(crate::support::upload_form_for(
            &case_id,
            b"ledger".to_vec(),
            crate::support::WALLET,
        ))
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), StatusCode::CREATED);
    let evidence: Value = response.json().await.expect("json");
    let evidence_id = evidence["evidence"]["evidenceId"]
        .as_str()
        .expect("id")
        .to_owned();

    // Bob: her case and its evidence do not exist for him, and each try is recorded.
    let before = s.events().len();
    for (method, path, body) in [
        (Method::GET, format!("/api/cases/{case_id}"), None),
        (
            Method::PATCH,
            format!("/api/cases/{case_id}"),
            Some(json!({"title": "mine now"})),
        ),
        (Method::GET, format!("/api/cases/{case_id}/timeline"), None),
        (Method::GET, format!("/api/evidence/{evidence_id}"), None),
        (
            Method::GET,
            format!("/api/evidence/{evidence_id}/download"),
            None,
        ),
        (
            Method::POST,
            format!("/api/evidence/{evidence_id}/verify"),
            Some(json!({})),
        ),
    ] {
        let mut request = s
            .client
            .request(method.clone(), s.url(&path))
            .bearer_auth(&bob);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("answer");
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let body: Value = answer.json().await.expect("json");
        assert_eq!(code(&body), "not_found", "{method} {path}");
    }
    let refusals = s.events()[before..]
        .iter()
        .filter(|e| e.event_type == EventType::UserUnauthorizedAccess)
        .count();
    assert_eq!(refusals, 6, "every refused access is recorded");
    assert_eq!(s.events().len(), before + 6, "and nothing else happened");
    let (_, listed) = s.get("/api/cases", Some(&bob)).await;
    assert_eq!(listed["cases"], json!([]), "his list does not show it");
    let (_, listed) = s.get("/api/evidence", Some(&bob)).await;
    assert_eq!(listed["evidence"], json!([]));
    // A bad case id is refused for its shape, not looked up.
    let (status, body) = s.get("/api/cases/..%2F..%2Fx", Some(&bob)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );

    // Once assigned to him, he sees it; an analyst sees every case.
    let (status, _) = s
        .post(
            &format!("/api/cases/{case_id}/assign"),
            Some(&ana),
            json!({"assignee": "bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.get(&format!("/api/cases/{case_id}"), Some(&bob)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = s.get("/api/cases", Some(&ana)).await;
    assert_eq!(listed["cases"].as_array().map(Vec::len), Some(1));
}
