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
        (Method::POST, "/api/queue/clear", "root", Some("admin")),
        (Method::POST, "/api/auth/logout", "investigator", None),
        (Method::GET, "/api/auth/me", "investigator", None),
        (Method::GET, "/api/users", "investigator", None),
        (Method::GET, "/api/sync", "investigator", None),
        (Method::GET, "/api/settings", "admin", Some("analyst")),
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
    let s = server().await;
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
