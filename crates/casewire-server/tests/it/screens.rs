//! The routes behind the desktop's screens: the sync badge, the queue's events, each timeline
//! event's delivery, the settings, and the web UI itself.

use casewire_outbox::{FailKind, Failure};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{app_server, server};

fn states(timeline: &Value) -> Vec<String> {
    timeline["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| e["delivery"]["state"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_timeline_event_tells_whether_headquarters_has_it() {
    let s = server().await;
    let root = s.token("root").await;
    let (status, body) = s
        .post("/api/cases", Some(&root), json!({"title": "Rug pull"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let case_id = body["case"]["caseId"].as_str().expect("id").to_owned();
    let path = format!("/api/cases/{case_id}/timeline");
    let (_, timeline) = s.get(&path, Some(&root)).await;
    assert_eq!(states(&timeline), ["waiting"]);
    assert!(timeline["timeline"][0]["delivery"]["nextAttemptAt"].is_string());

    // The relay's side, by hand: claimed is "being sent", acknowledged is "delivered".
    s.outbox.retry_now("test".into()).wait().expect("due");
    let claim = s.outbox.claim(100).expect("claim");
    let seqs: Vec<i64> = claim.events.iter().map(|e| e.seq).collect();
    assert!(!seqs.is_empty());
    assert_eq!(states(&s.get(&path, Some(&root)).await.1), ["sending"]);
    s.outbox.ack(seqs).wait().expect("ack");
    assert_eq!(states(&s.get(&path, Some(&root)).await.1), ["delivered"]);
    // Still delivered once the row is deleted.
    s.outbox.sweep_delivered(1_000).wait().expect("sweep");
    assert_eq!(states(&s.get(&path, Some(&root)).await.1), ["delivered"]);

    // A change the broker refuses for good is dead-lettered, with the reason shown.
    let (status, _) = s
        .send(
            Method::PATCH,
            &format!("/api/cases/{case_id}"),
            Some(&root),
            json!({"title": "Rug pull (2)"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let claim = s.outbox.claim(100).expect("claim");
    let failures = claim
        .events
        .iter()
        .map(|e| Failure {
            seq: e.seq,
            kind: FailKind::Permanent,
            reason: "MessageSizeTooLarge".into(),
        })
        .collect();
    s.outbox.fail(failures).wait().expect("fail");
    let (_, timeline) = s.get(&path, Some(&root)).await;
    assert_eq!(states(&timeline), ["delivered", "dead_lettered"]);
    assert_eq!(
        timeline["timeline"][1]["delivery"]["reason"],
        "MessageSizeTooLarge"
    );

    // What a clear drops is not claimed to have been delivered.
    s.post(
        &format!("/api/cases/{case_id}/close"),
        Some(&root),
        json!({"resolution": "done"}),
    )
    .await;
    let (status, _) = s.post("/api/queue/clear", Some(&root), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, timeline) = s.get(&path, Some(&root)).await;
    assert_eq!(states(&timeline), ["delivered", "dead_lettered", "cleared"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_added_to_a_case_shows_in_its_timeline() {
    let s = server().await;
    let token = s.token("investigator").await;
    let (_, body) = s
        .post("/api/cases", Some(&token), json!({"title": "Phishing"}))
        .await;
    let case_id = body["case"]["caseId"].as_str().expect("id").to_owned();
    let response = s
        .client
        .post(s.url("/api/evidence/upload"))
        .bearer_auth(&token)
        .multipart(crate::support::upload_form_for(
            &case_id,
            b"log".to_vec(),
            crate::support::WALLET,
        ))
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), StatusCode::CREATED);
    let (_, timeline) = s
        .get(&format!("/api/cases/{case_id}/timeline"), Some(&token))
        .await;
    let types: Vec<_> = timeline["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| e["eventType"].as_str().unwrap_or("?").to_owned())
        .collect();
    assert_eq!(types, ["case.created", "evidence.uploaded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_badge_counts_what_waits_and_says_no_broker_is_configured() {
    let s = server().await;
    let token = s.token("investigator").await;
    let (status, body) = s.get("/api/sync", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    // The login's own event waits.
    assert_eq!(body["sync"]["waiting"], 1);
    assert_eq!(body["sync"]["state"], "not_configured");
    assert_eq!(body["sync"]["brokerConnected"], false);
    assert!(body["sync"]["lastDeliveryAt"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_events_are_paged_filtered_by_type_and_priority_and_readable_whole() {
    let s = server().await;
    let root = s.token("root").await;
    for title in ["a", "b", "c"] {
        s.post("/api/cases", Some(&root), json!({"title": title}))
            .await;
    }
    let (status, body) = s
        .get(
            "/api/queue/events?eventType=case.created&limit=2",
            Some(&root),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let events = body["events"].as_array().expect("events");
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["eventType"] == "case.created"));
    let cursor = body["nextCursor"].as_i64().expect("more");
    let (_, rest) = s
        .get(
            &format!("/api/queue/events?eventType=case.created&limit=2&after={cursor}"),
            Some(&root),
        )
        .await;
    assert_eq!(rest["events"].as_array().expect("events").len(), 1);
    assert!(rest["nextCursor"].is_null());

    let (_, low) = s.get("/api/queue/events?priority=low", Some(&root)).await;
    let low = low["events"].as_array().expect("events");
    assert_eq!(low.len(), 1, "the login");
    assert_eq!(low[0]["eventType"], "user.login");
    let (status, body) = s
        .get("/api/queue/events?priority=urgent", Some(&root))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );

    let id = events[0]["eventId"].as_str().expect("id");
    let (status, doc) = s.get(&format!("/api/queue/events/{id}"), Some(&root)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["event"]["eventId"], id);
    assert_eq!(doc["event"]["data"]["title"], "a");
    let (status, _) = s.get("/api/queue/events/evt_0_0000", Some(&root)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn setting<'a>(body: &'a Value, key: &str) -> &'a Value {
    body["settings"]
        .as_array()
        .expect("settings")
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("{key} listed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_say_where_each_value_comes_from_and_refuse_what_they_cannot_change() {
    let (s, app) = app_server(&[("KAFKA_TOPIC", "fraud.events.test")]).await;
    let admin = s.token("admin").await;
    let root = s.token("root").await;
    let (status, body) = s.get("/api/settings", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    let topic = setting(&body, "KAFKA_TOPIC");
    assert_eq!(topic["source"], "environment");
    assert_eq!(topic["value"], "fraud.events.test");
    assert_eq!(topic["editable"], false);
    let retry = setting(&body, "RETRY_INTERVAL");
    assert_eq!(
        (&retry["source"], &retry["value"]),
        (&json!("default"), &json!("10000"))
    );
    assert_eq!(retry["applies"], "next_start");
    let password = setting(&body, "KAFKA_SASL_PASSWORD");
    assert!(password["value"].is_null());
    // A headless server keeps no secret in its settings file.
    assert_eq!(password["editable"], false);

    let store = s.dir.path().join("settings.json");
    for (change, words) in [
        (json!({"KAFKA_TOPIC": "other"}), "environment"),
        (json!({"RETRY_INTERVAL": "soon"}), "whole number"),
        (json!({"KAFKA_BROKERS": "no port here"}), "KAFKA_BROKERS"),
        (
            json!({"KAFKA_SASL_PASSWORD": "hunter2hunter2"}),
            "environment or the configuration file",
        ),
        (json!({"NOT_A_SETTING": "1"}), "no setting"),
        // One bad value refuses the whole change.
        (
            json!({"CASEWIRE_THEME": "dark", "MAX_RETRIES": "0"}),
            "MAX_RETRIES",
        ),
    ] {
        let (status, body) = s
            .send(
                Method::PUT,
                "/api/settings",
                Some(&root),
                json!({"values": change}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{change}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{change}: {message}");
        assert!(!store.exists(), "{change} wrote the store");
    }
    let (status, _) = s
        .send(
            Method::PUT,
            "/api/settings",
            Some(&admin),
            json!({"values": {"CASEWIRE_THEME": "dark"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = s
        .send(
            Method::PUT,
            "/api/settings",
            Some(&root),
            json!({"values": {"CASEWIRE_THEME": "dark", "RETRY_INTERVAL": "5000"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(setting(&body, "CASEWIRE_THEME")["source"], "desktop");
    assert_eq!(setting(&body, "RETRY_INTERVAL")["value"], "5000");
    let saved: Value =
        serde_json::from_slice(&std::fs::read(&store).expect("store")).expect("json");
    assert_eq!(
        saved,
        json!({"CASEWIRE_THEME": "dark", "RETRY_INTERVAL": "5000"})
    );
    assert_eq!(
        app.settings().get("CASEWIRE_THEME").as_deref(),
        Some("dark")
    );

    // Back to the default.
    let (_, body) = s
        .send(
            Method::PUT,
            "/api/settings",
            Some(&root),
            json!({"values": {"CASEWIRE_THEME": null}}),
        )
        .await;
    assert_eq!(setting(&body, "CASEWIRE_THEME")["source"], "default");
    assert_eq!(setting(&body, "CASEWIRE_THEME")["value"], "system");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_is_served_at_the_root_under_a_strict_content_security_policy() {
    let s = server().await;
    let response = s.client.get(s.url("/")).send().await.expect("request");
    let built = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../ui/dist/index.html")
        .exists();
    if built {
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-eval"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            response
                .text()
                .await
                .expect("page")
                .contains("<div id=\"app\"")
        );
    } else {
        // Without a built UI the server says how to build it and keeps serving the API.
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            response
                .text()
                .await
                .expect("text")
                .contains("npm --prefix ui")
        );
    }
    let (status, body) = s.get("/api/no/such/route", None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_a_superadmins_and_a_server_without_an_update_channel_says_so() {
    let (s, _app) = app_server(&[]).await;
    let admin = s.token("admin").await;
    let root = s.token("root").await;
    let (status, _) = s.get("/api/updates", Some(&admin)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s.get("/api/updates", Some(&root)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let updates = &body["updates"];
    assert_eq!(updates["currentVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        (&updates["channel"], &updates["allowed"], &updates["phase"]),
        (&json!(false), &json!(false), &json!("idle"))
    );
    // Allowing it is a setting like any other, and only true or false.
    let (status, body) = s
        .send(
            Method::PUT,
            "/api/settings",
            Some(&root),
            json!({"values": {"CASEWIRE_UPDATE_CHECK": "yes please"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("true or false")),
        "{body}"
    );
    let (status, _) = s
        .send(
            Method::PUT,
            "/api/settings",
            Some(&root),
            json!({"values": {"CASEWIRE_UPDATE_CHECK": "true"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = s.get("/api/updates", Some(&root)).await;
    assert_eq!(body["updates"]["allowed"], true);
    for (path, body) in [
        ("/api/updates/check", json!({})),
        ("/api/updates/install", json!({"version": "9.0.0"})),
    ] {
        let (status, answer) = s.post(path, Some(&root), body).await;
        assert_eq!(
            (status, &answer["error"]["code"]),
            (StatusCode::NOT_FOUND, &json!("updates_unavailable")),
            "{path}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("package manager")),
            "{answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_outbox_refuses_work_with_a_service_unavailable_that_says_why() {
    let (s, app) = app_server(&[]).await;
    let root = s.token("root").await;
    app.close().await;
    let (status, body) = s
        .post("/api/cases", Some(&root), json!({"title": "Rug pull"}))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("closed")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nothing was written")),
        "{body}"
    );
}
