//! First run, user administration and one's own password, through the HTTP API.

use casewire_events::EventType;
use casewire_server::Setup;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{PASSWORD, server, server_with_users};

const NEW_PASSWORD: &str = "a much longer passphrase";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_superadmin_needs_the_setup_code_and_can_be_created_only_once() {
    let s = server_with_users(&[], |state| state.setup = Setup::Code("K7QF-M2XD".into())).await;
    let (status, body) = s.get("/api/setup", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["needsSetup"], true);
    assert_eq!(body["setupCodeRequired"], true);

    // Another local program that did not see the printed code gets nowhere, and leaves nothing.
    for code in [json!(null), json!("WRONG-CODE")] {
        let (status, body, events) = s
            .act(
                s.client
                    .post(s.url("/api/setup"))
                    .json(&json!({"username": "chief", "password": PASSWORD, "setupCode": code})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"]["code"], "setup_code_invalid");
        assert!(events.is_empty());
    }
    assert_eq!(s.get("/api/setup", None).await.1["needsSetup"], true);

    // The code as people type it: lower case, no dash.
    let (status, body, events) = s
        .act(
            s.client
                .post(s.url("/api/setup"))
                .json(&json!({"username": "Chief", "password": PASSWORD, "setupCode": "k7qfm2xd"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["username"], "chief");
    assert_eq!(body["user"]["role"], "superadmin");
    let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::UserCreated, EventType::UserLogin]);
    assert_eq!(events[0].data["role"], "superadmin");
    let token = body["token"].as_str().expect("token").to_owned();
    let (status, me) = s.get("/api/auth/me", Some(&token)).await;
    assert_eq!(
        (status, &me["user"]["username"]),
        (StatusCode::OK, &json!("chief"))
    );

    let (status, body) = s.get("/api/setup", None).await;
    assert_eq!(
        (status, &body["needsSetup"]),
        (StatusCode::OK, &json!(false))
    );
    let (status, body, events) = s
        .act(
            s.client.post(s.url("/api/setup")).json(
                &json!({"username": "second", "password": PASSWORD, "setupCode": "K7QF-M2XD"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "setup_done");
    assert!(events.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desktop_needs_no_setup_code_and_refuses_a_short_password() {
    let s = server_with_users(&[], |state| state.setup = Setup::Open).await;
    let (_, body) = s.get("/api/setup", None).await;
    assert_eq!(body["setupCodeRequired"], false);
    let (status, body) = s
        .post(
            "/api/setup",
            None,
            json!({"username": "chief", "password": "short"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_request");
    assert_eq!(s.get("/api/setup", None).await.1["needsSetup"], true);
    let (status, _) = s
        .post(
            "/api/setup",
            None,
            json!({"username": "chief", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superadmin_adds_promotes_disables_and_resets_users_and_each_change_is_announced() {
    let s = server().await;
    let root = s.token("root").await;
    let (status, body, events) = s
        .act(
            s.client
                .post(s.url("/api/users"))
                .bearer_auth(&root)
                .json(&json!({"username": "newbie", "role": "user", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["user"]["id"].as_i64().expect("id");
    assert_eq!(body["user"]["disabled"], false);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::UserCreated);
    assert_eq!(events[0].metadata.user_id.as_deref(), Some("root"));
    assert_eq!(events[0].data["username"], "newbie");

    // Everyone signed in may list users (the assignee picker needs them).
    let investigator = s.token("investigator").await;
    let (status, body) = s.get("/api/users", Some(&investigator)).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<_> = body["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["username"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        names,
        ["admin", "analyst", "investigator", "newbie", "root"]
    );

    let (status, body, events) = s
        .act(
            s.client
                .patch(s.url(&format!("/api/users/{id}")))
                .bearer_auth(&root)
                .json(&json!({"role": "analyst"})),
        )
        .await;
    assert_eq!(
        (status, &body["user"]["role"]),
        (StatusCode::OK, &json!("analyst"))
    );
    assert_eq!(events[0].event_type, EventType::UserUpdated);
    assert_eq!(events[0].data["change"], "role");
    assert_eq!(events[0].data["previousRole"], "user");

    let newbie = s.token("newbie").await;
    let (status, body) = s
        .send(
            Method::PATCH,
            &format!("/api/users/{id}"),
            Some(&root),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(
        (status, &body["user"]["disabled"]),
        (StatusCode::OK, &json!(true))
    );
    // A disabled account's sessions end at once, and it cannot sign in again.
    let (status, _) = s.get("/api/auth/me", Some(&newbie)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s
        .post(
            "/api/auth/login",
            None,
            json!({"username": "newbie", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _) = s
        .send(
            Method::PATCH,
            &format!("/api/users/{id}"),
            Some(&root),
            json!({"disabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let newbie = s.token("newbie").await;
    let (status, body, events) = s
        .act(
            s.client
                .post(s.url(&format!("/api/users/{id}/password")))
                .bearer_auth(&root)
                .json(&json!({"password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(events[0].data["change"], "password_reset");
    assert_eq!(
        s.get("/api/auth/me", Some(&newbie)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = s
        .post(
            "/api/auth/login",
            None,
            json!({"username": "newbie", "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = s
        .post(
            "/api/users",
            Some(&root),
            json!({"username": "newbie", "role": "user", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::CONFLICT, &json!("conflict"))
    );
    let (status, body) = s
        .post(
            "/api/users",
            Some(&root),
            json!({"username": "x", "role": "king", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_superadmin_can_be_neither_disabled_nor_demoted() {
    let s = server().await;
    let root = s.token("root").await;
    let (_, body) = s.get("/api/users", Some(&root)).await;
    let root_id = body["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["username"] == "root")
        .and_then(|u| u["id"].as_i64())
        .expect("root's id");
    for change in [json!({"disabled": true}), json!({"role": "admin"})] {
        let (status, body, events) = s
            .act(
                s.client
                    .patch(s.url(&format!("/api/users/{root_id}")))
                    .bearer_auth(&root)
                    .json(&change),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{change}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("last enabled superadmin")
        );
        assert!(events.is_empty());
    }
    assert_eq!(s.get("/api/auth/me", Some(&root)).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_changes_their_own_password_and_keeps_the_session_they_changed_it_from() {
    let s = server().await;
    let here = s.token("investigator").await;
    let elsewhere = s.token("investigator").await;
    let (status, body, events) = s
        .act(
            s.client
                .post(s.url("/api/auth/password"))
                .bearer_auth(&here)
                .json(&json!({"currentPassword": "not my password", "newPassword": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::UNAUTHORIZED, &json!("bad_credentials"))
    );
    assert!(events.is_empty());

    let (status, _, events) = s
        .act(
            s.client
                .post(s.url("/api/auth/password"))
                .bearer_auth(&here)
                .json(&json!({"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(events[0].event_type, EventType::UserUpdated);
    assert_eq!(events[0].data["change"], "password_changed");
    assert_eq!(s.get("/api/auth/me", Some(&here)).await.0, StatusCode::OK);
    assert_eq!(
        s.get("/api/auth/me", Some(&elsewhere)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = s
        .post(
            "/api/auth/login",
            None,
            json!({"username": "investigator", "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
