//! A real server on a loopback socket over a real SQLite outbox, and a client for it.

use std::sync::Arc;

use casewire_core::{App, Auth, AuthPolicy, JsonFileStore, Role, Settings};
use casewire_events::{Event, EventType};
use casewire_outbox::{Outbox, OutboxConfig, Page, SystemClock};
use casewire_server::ServerState;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub(crate) const PASSWORD: &str = "correct horse battery";

pub(crate) struct Server {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) base: String,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) client: reqwest::Client,
}

pub(crate) async fn server() -> Server {
    server_with(|_| {}).await
}

/// The users every test server starts with, all with [`PASSWORD`].
pub(crate) const USERS: &[(&str, Role)] = &[
    ("investigator", Role::User),
    ("analyst", Role::Analyst),
    ("admin", Role::Admin),
    ("root", Role::Superadmin),
];

/// A server whose state `configure` adjusts before it starts.
pub(crate) async fn server_with(configure: impl FnOnce(&mut ServerState)) -> Server {
    server_with_users(USERS, configure).await
}

/// A server with the users of [`USERS`] whose logins and refusals follow `policy`.
pub(crate) async fn server_with_policy(policy: AuthPolicy) -> Server {
    server_with_users_and_policy(
        USERS,
        |_| {},
        policy,
        casewire_server::ServeLimits::default(),
    )
    .await
}

/// A server with only `users`, whose state `configure` adjusts before it starts.
pub(crate) async fn server_with_users(
    users: &[(&str, Role)],
    configure: impl FnOnce(&mut ServerState),
) -> Server {
    server_with_users_and_policy(
        users,
        configure,
        AuthPolicy::default(),
        casewire_server::ServeLimits::default(),
    )
    .await
}

async fn server_with_users_and_policy(
    users: &[(&str, Role)],
    configure: impl FnOnce(&mut ServerState),
    policy: AuthPolicy,
    limits: casewire_server::ServeLimits,
) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let outbox =
        Arc::new(Outbox::open(OutboxConfig::file(dir.path().join("outbox.db"))).expect("outbox"));
    casewire_core::migrate(&outbox).expect("migrate");
    let auth = Arc::new(Auth::new(outbox.clone(), Arc::new(SystemClock), policy));
    for (name, role) in users {
        auth.add_user(name, *role, PASSWORD).expect("user");
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let evidence = Arc::new(
        casewire_core::EvidenceStore::open(
            outbox.clone(),
            Arc::new(SystemClock),
            dir.path(),
            64 * 1024,
        )
        .expect("evidence store"),
    );
    let mut state =
        ServerState::loopback(outbox.clone(), auth, Arc::new(SystemClock), evidence, port);
    configure(&mut state);
    start_with(dir, listener, state, limits).await
}

/// A server running a whole [`App`] in a fresh data directory, with `environment` as the
/// environment's settings and the users of [`USERS`].
pub(crate) async fn app_server(environment: &[(&str, &str)]) -> (Server, Arc<App>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings::load(casewire_testkit::test_env(environment), None, dir.path())
        .expect("settings");
    let app = Arc::new(
        App::open(
            dir.path(),
            settings,
            Arc::new(JsonFileStore::in_dir(dir.path())),
        )
        .expect("app"),
    );
    app.start_relay().await.expect("relay");
    tokio::spawn(app.housekeeping());
    for (name, role) in USERS {
        app.auth.add_user(name, *role, PASSWORD).expect("user");
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let state = ServerState::for_app(app.clone(), port);
    (start(dir, listener, state).await, app)
}

async fn start(
    dir: tempfile::TempDir,
    listener: tokio::net::TcpListener,
    state: ServerState,
) -> Server {
    start_with(
        dir,
        listener,
        state,
        casewire_server::ServeLimits::default(),
    )
    .await
}

/// A server with the users of [`USERS`] whose listener keeps `limits`.
pub(crate) async fn server_with_limits(limits: casewire_server::ServeLimits) -> Server {
    server_with_users_and_policy(USERS, |_| {}, AuthPolicy::default(), limits).await
}

async fn start_with(
    dir: tempfile::TempDir,
    listener: tokio::net::TcpListener,
    state: ServerState,
    limits: casewire_server::ServeLimits,
) -> Server {
    let port = listener.local_addr().expect("addr").port();
    let outbox = state.outbox.clone();
    tokio::spawn(casewire_server::serve_with(
        listener,
        Arc::new(state),
        std::future::pending(),
        limits,
    ));
    Server {
        dir,
        base: format!("http://127.0.0.1:{port}"),
        outbox,
        client: reqwest::Client::new(),
    }
}

impl Server {
    pub(crate) async fn token(&self, username: &str) -> String {
        let response = self
            .client
            .post(format!("{}/api/auth/login", self.base))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        body["token"].as_str().expect("token").to_owned()
    }

    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        (response.status(), response.json().await.expect("json body"))
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        (response.status(), response.json().await.expect("json body"))
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        (response.status(), response.json().await.expect("json body"))
    }

    pub(crate) fn queued_types(&self) -> Vec<EventType> {
        self.outbox
            .list_queued(Page::first(1_000))
            .expect("list")
            .iter()
            .map(|e| e.event_type.parse().expect("known type"))
            .collect()
    }
}

pub(crate) fn upload_form(content: Vec<u8>, wallet: &str) -> reqwest::multipart::Form {
    upload_form_for("CASE-2024-001", content, wallet)
}

pub(crate) fn upload_form_for(
    case_id: &str,
    content: Vec<u8>,
    wallet: &str,
) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("caseId", case_id.to_owned())
        .text("wallet", wallet.to_owned())
        .text("reporter", "test@fraud.com")
        .part(
            "evidenceFile",
            reqwest::multipart::Part::bytes(content)
                .file_name("test.txt")
                .mime_str("text/plain")
                .expect("mime"),
        )
}

pub(crate) const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

impl Server {
    /// Every event queued so far, in order (reading claims nothing), read through the
    /// outbox's own reader, which holds the key when the file is encrypted.
    pub(crate) fn events(&self) -> Vec<Event> {
        self.outbox
            .read(|db| Ok::<_, casewire_outbox::Error>(casewire_testkit::queued_events_in(db)))
            .expect("read")
    }

    /// Sends `request` and returns the status, the JSON body and the events it queued.
    pub(crate) async fn act(
        &self,
        request: reqwest::RequestBuilder,
    ) -> (StatusCode, Value, Vec<Event>) {
        let before = self.events().len();
        let response = request.send().await.expect("request");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        let mut events = self.events();
        (status, body, events.split_off(before))
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}
