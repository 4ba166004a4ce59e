//! The desktop's transport and file routes, without a window: requests of the custom scheme
//! answered by the router in process (`scheme::respond`), CORS for the page's origin, and
//! evidence added from, and saved to, files behind the shell's handles.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::http::{Method, Request, StatusCode};
use casewire_core::{App, JsonFileStore, Settings};
use casewire_server::{LocalFiles, ServerState, router, scheme};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{PASSWORD, WALLET};

/// The shell's handle registry, as a test keeps it: files "picked" by the test.
#[derive(Default)]
struct Picked {
    sources: HashMap<String, PathBuf>,
    targets: HashMap<String, PathBuf>,
    progress: Mutex<Vec<(u64, u64)>>,
}

impl LocalFiles for Picked {
    fn source(&self, handle: &str) -> Option<(PathBuf, String)> {
        self.sources.get(handle).map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            (p.clone(), name.unwrap_or_default())
        })
    }
    fn target(&self, handle: &str) -> Option<PathBuf> {
        self.targets.get(handle).cloned()
    }
    fn progress(&self, _: &str, bytes: u64, total: u64) {
        self.progress.lock().expect("lock").push((bytes, total));
    }
}

struct Desktop {
    router: axum::Router,
    files: Arc<Picked>,
    dir: tempfile::TempDir,
}

fn desktop(files: Picked) -> Desktop {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings =
        Settings::load(casewire_testkit::test_env(&[]), None, dir.path()).expect("settings");
    let app = Arc::new(
        App::open(
            dir.path(),
            settings,
            Arc::new(JsonFileStore::in_dir(dir.path())),
        )
        .expect("app"),
    );
    let files = Arc::new(files);
    let router = router(Arc::new(ServerState::desktop(app, files.clone())));
    Desktop { router, files, dir }
}

impl Desktop {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, axum::http::HeaderMap) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("origin", "tauri://localhost");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let bytes = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                body.to_string().into_bytes()
            }
            None => Vec::new(),
        };
        let response =
            scheme::respond(self.router.clone(), request.body(bytes).expect("request")).await;
        let status = response.status();
        let headers = response.headers().clone();
        let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        (status, body, headers)
    }

    async fn first_user(&self) -> String {
        let (status, body, _) = self
            .call(
                Method::POST,
                "casewire://localhost/api/setup",
                None,
                Some(json!({"username": "chief", "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_custom_scheme_answers_with_the_same_api_and_the_page_origin_may_call_it() {
    let d = desktop(Picked::default());
    let (status, body, headers) = d
        .call(Method::GET, "casewire://localhost/api/setup", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"success": true, "needsSetup": true, "setupCodeRequired": false, "timestamp": body["timestamp"]})
    );
    assert_eq!(headers["access-control-allow-origin"], "tauri://localhost");

    // Windows' form of the scheme's address works the same.
    let token = d.first_user().await;
    let (status, body, _) = d
        .call(
            Method::GET,
            "http://casewire.localhost/api/auth/me",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, &body["user"]["username"]),
        (StatusCode::OK, &json!("chief"))
    );
    let (status, body, _) = d
        .call(
            Method::GET,
            "casewire://localhost/api/openapi.json",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["paths"]["/api/evidence/local"].is_object());

    // The preflight names what the UI sends.
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri("casewire://localhost/api/cases")
        .header("origin", "tauri://localhost")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, idempotency-key",
        )
        .body(Vec::new())
        .expect("request");
    let response = scheme::respond(d.router.clone(), preflight).await;
    let allowed = response.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_lowercase();
    for header in ["authorization", "content-type", "idempotency-key"] {
        assert!(allowed.contains(header), "{allowed}");
    }

    // Another origin, or another host name, gets nothing.
    let foreign = Request::builder()
        .uri("casewire://localhost/api/setup")
        .header("origin", "https://evil.example")
        .body(Vec::new())
        .expect("request");
    let response = scheme::respond(d.router.clone(), foreign).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let (status, _, _) = d
        .call(Method::GET, "casewire://evil.example/api/setup", None, None)
        .await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_is_read_from_a_picked_file_by_handle_and_saved_to_a_chosen_path() {
    let source_dir = tempfile::tempdir().expect("temp dir");
    let source = source_dir.path().join("ledger export.csv");
    let content: Vec<u8> = (0..9_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&source, &content).expect("write");
    let target = source_dir.path().join("copy.csv");
    let mut files = Picked::default();
    files.sources.insert("h-1".into(), source.clone());
    files.targets.insert("s-1".into(), target.clone());
    let d = desktop(files);
    let token = d.first_user().await;
    let (_, case, _) = d
        .call(
            Method::POST,
            "casewire://localhost/api/cases",
            Some(&token),
            Some(json!({"title": "Exchange"})),
        )
        .await;
    let case_id = case["case"]["caseId"].as_str().expect("id").to_owned();

    let form = json!({"handle": "h-1", "caseId": case_id, "wallet": WALLET, "reporter": "desk"});
    let (status, body, _) = d
        .call(
            Method::POST,
            "casewire://localhost/api/evidence/local",
            Some(&token),
            Some(form),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let evidence = &body["evidence"];
    assert_eq!(evidence["filename"], "ledger export.csv");
    assert_eq!(evidence["fileSize"], content.len());
    assert_eq!(
        evidence["storageHash"],
        hex::encode(Sha256::digest(&content))
    );
    assert_eq!(evidence["contentType"], "text/csv");
    let progress = d.files.progress.lock().expect("lock").clone();
    assert!(progress.len() >= 2, "{progress:?}");
    assert_eq!(
        progress.last(),
        Some(&(content.len() as u64, content.len() as u64))
    );

    let id = evidence["evidenceId"].as_str().expect("id");
    let (status, body, _) = d
        .call(
            Method::POST,
            &format!("casewire://localhost/api/evidence/{id}/save"),
            Some(&token),
            Some(json!({"handle": "s-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(std::fs::read(&target).expect("saved"), content);
    let (_, timeline, _) = d
        .call(
            Method::GET,
            &format!("casewire://localhost/api/cases/{case_id}/timeline"),
            Some(&token),
            None,
        )
        .await;
    let types: Vec<_> = timeline["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| e["eventType"].as_str().unwrap_or("?").to_owned())
        .collect();
    assert_eq!(
        types,
        ["case.created", "evidence.uploaded", "evidence.downloaded"]
    );

    // A handle the shell never gave names nothing, and nothing is recorded.
    let form = json!({"handle": "../../etc/passwd", "caseId": case_id, "wallet": WALLET, "reporter": "desk"});
    let (status, body, _) = d
        .call(
            Method::POST,
            "casewire://localhost/api/evidence/local",
            Some(&token),
            Some(form),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("unknown_file_handle"))
    );
    // A bad form is refused before the file is read.
    let before = d.files.progress.lock().expect("lock").len();
    let form = json!({"handle": "h-1", "caseId": case_id, "wallet": "0x12", "reporter": "desk"});
    let (status, _, _) = d
        .call(
            Method::POST,
            "casewire://localhost/api/evidence/local",
            Some(&token),
            Some(form),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(d.files.progress.lock().expect("lock").len(), before);
    drop(d.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headless_server_has_no_files_by_handle() {
    let s = crate::support::server().await;
    let token = s.token("investigator").await;
    let (status, body) = s
        .post(
            "/api/evidence/local",
            Some(&token),
            json!({"handle": "h-1", "caseId": "CASE-2024-001", "wallet": WALLET, "reporter": "r"}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("local_files_unavailable"))
    );
}
