//! The HTTP API of the guide: health, readiness and metrics, login and logout, the admin
//! routes of the event queue, cases, evidence (with anchors) and the RL routes, each described
//! in the OpenAPI document at `/api/openapi.json`, and `Idempotency-Key` on every POST.
//!
//! # Defences of a loopback server
//! - `Host` must name an allowed host (loopback names by default): a DNS-rebound name gets 421.
//! - A request with an `Origin` that is not an allowed origin gets 403, and so does one without
//!   an `Origin` whose `Sec-Fetch-Site` says another site sent it: no cross-site requests, not
//!   even the GETs browsers send without an `Origin` (which would each record a refusal).
//! - JSON bodies must say `application/json` (415) and stay under 1 MiB (413).
//! - Roles come from bearer tokens only. The guide's `x-user-role` header is never trusted; a
//!   request that relies on it gets 401 like any other without a token, and the refusal is
//!   recorded as a `user.unauthorized_access` event saying the header was sent.
//!
//! Responses keep the guide's `success`/`timestamp` envelope; errors are
//! `{"success": false, "error": {"code", "message"}}` with stable codes.
#![deny(missing_docs)]

mod error;
mod idempotency;
mod local;
mod metrics;
mod openapi;
mod oversize;
mod routes;
mod schema;
pub mod scheme;
mod ui;
mod updates;
mod users;

use std::sync::Arc;
use std::time::Duration;

pub use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::http::header::{HOST, ORIGIN};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use casewire_core::{Anchoring, App, Auth, Cases, CoreError, EvidenceStore, Idempotency, Policy};
use casewire_outbox::{Clock, Outbox};

pub use error::{ApiError, ErrorCode};
pub use metrics::RequestMetrics;
pub use ui::CONTENT_SECURITY_POLICY;

/// Largest JSON body accepted.
pub const MAX_JSON_BYTES: usize = 1024 * 1024;

/// What the handlers share.
pub struct ServerState {
    /// The outbox (and the database behind it).
    pub outbox: Arc<Outbox>,
    /// Users and tokens.
    pub auth: Arc<Auth>,
    /// Cases.
    pub cases: Arc<Cases>,
    /// Evidence files.
    pub evidence: Arc<EvidenceStore>,
    /// Anchor requests: the app's, so a request wakes its worker.
    pub anchoring: Arc<Anchoring>,
    /// The fraud-response policy of the RL routes.
    pub policy: Arc<Policy>,
    /// `Idempotency-Key` records.
    pub idempotency: Arc<Idempotency>,
    /// Request counts and latencies for `/metrics`.
    pub requests: RequestMetrics,
    /// Host names (without port) a request may address.
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host:port`) allowed to make requests from a browser.
    pub allowed_origins: Vec<String>,
    /// A relay was started: `/readyz` fails while it is not running. Servers with an `app`
    /// ask it instead, as its relay starts and stops with the settings.
    pub relay_configured: bool,
    /// The whole backend, when the server runs one (settings, the relay's status); `None` in
    /// tests that build the parts by hand.
    pub app: Option<Arc<App>>,
    /// Who may create the first user.
    pub setup: Setup,
    /// The desktop's files picked in a dialog or dropped on the window; `None` headless.
    pub local_files: Option<Arc<dyn LocalFiles>>,
    /// Origins of pages allowed to call the API across origins (CORS): the desktop's page,
    /// whose origin (`tauri://localhost`) differs from its API scheme's. Empty headless,
    /// where the UI is served from the API's own origin.
    pub cors_origins: Vec<String>,
}

/// Who may create the first user while there is none.
#[derive(Debug, Clone)]
pub enum Setup {
    /// Whoever reaches the API: the desktop's, which no other program can reach.
    Open,
    /// Only a client that sends this one-time code, printed by `casewire serve` at start, so
    /// no other local program can claim the first account of a server on a port.
    Code(String),
}

impl Setup {
    /// A fresh random code, eight letters and digits in two groups (`K7QF-M2XD`), without the
    /// ones people confuse (0/O, 1/I/L).
    pub fn random_code() -> Setup {
        use rand::Rng;
        const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
        let mut rng = rand::rng();
        let mut code: String = (0..8)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        code.insert(4, '-');
        Setup::Code(code)
    }
}

/// Files on the desktop's disk that the person chose, behind opaque handles: the page names a
/// handle, never a path, and only files picked in a dialog or dropped on the window have one.
pub trait LocalFiles: Send + Sync {
    /// The path and file name behind a handle given for reading.
    fn source(&self, handle: &str) -> Option<(std::path::PathBuf, String)>;
    /// The path behind a handle given by a save dialog.
    fn target(&self, handle: &str) -> Option<std::path::PathBuf>;
    /// Reports how much of the file behind `handle` has been read.
    fn progress(&self, handle: &str, bytes: u64, total: u64);
}

impl ServerState {
    /// State for a server on loopback: hosts `127.0.0.1`, `localhost` and `[::1]`, and the
    /// origins of those hosts on `port`.
    pub fn loopback(
        outbox: Arc<Outbox>,
        auth: Arc<Auth>,
        clock: Arc<dyn Clock>,
        evidence: Arc<EvidenceStore>,
        port: u16,
    ) -> ServerState {
        let hosts = ["127.0.0.1", "localhost", "[::1]"];
        ServerState {
            cases: Arc::new(Cases::new(outbox.clone(), clock.clone())),
            policy: Arc::new(Policy::new(outbox.clone(), clock.clone())),
            anchoring: Arc::new(Anchoring::new(outbox.clone(), clock.clone())),
            idempotency: Arc::new(Idempotency::new(outbox.clone(), clock)),
            evidence,
            requests: RequestMetrics::default(),
            outbox,
            auth,
            allowed_hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            allowed_origins: hosts.iter().map(|h| format!("http://{h}:{port}")).collect(),
            relay_configured: false,
            app: None,
            setup: Setup::random_code(),
            local_files: None,
            cors_origins: Vec::new(),
        }
    }

    /// State for `app` in the desktop: the API is reached only through the window's custom
    /// scheme (hosts `localhost` and `casewire.localhost`), from the page's origins
    /// (`tauri://localhost`, and `http://tauri.localhost` on Windows), which CORS lets through.
    /// No other program can reach it, so the first user needs no setup code.
    pub fn desktop(app: Arc<App>, local_files: Arc<dyn LocalFiles>) -> ServerState {
        let mut state = ServerState::for_app(app, 0);
        let origins = vec![
            "tauri://localhost".to_owned(),
            "http://tauri.localhost".to_owned(),
        ];
        state.allowed_hosts = vec!["localhost".into(), "casewire.localhost".into()];
        state.allowed_origins = origins.clone();
        state.cors_origins = origins;
        state.setup = Setup::Open;
        state.local_files = Some(local_files);
        state
    }

    /// State for `app` served on loopback `port` (see [`ServerState::loopback`]).
    pub fn for_app(app: Arc<App>, port: u16) -> ServerState {
        let mut state = ServerState::loopback(
            app.outbox.clone(),
            app.auth.clone(),
            app.clock.clone(),
            app.evidence.clone(),
            port,
        );
        state.cases = app.cases.clone();
        state.policy = app.policy.clone();
        state.idempotency = app.idempotency.clone();
        state.anchoring = app.anchoring.clone();
        state.app = Some(app);
        state
    }
}

/// The API's OpenAPI 3.1 document.
pub fn openapi(state: &ServerState) -> utoipa::openapi::OpenApi {
    let (_, mut document) = routes::routes(state).split_for_parts();
    utoipa::Modify::modify(&schema::Common, &mut document);
    document
}

/// The API's router.
pub fn router(state: Arc<ServerState>) -> Router {
    let (router, mut document) = routes::routes(&state).split_for_parts();
    utoipa::Modify::modify(&schema::Common, &mut document);
    let document = openapi::Document(Arc::new(
        serde_json::to_string(&document).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")),
    ));
    let cors = cors(&state.cors_origins);
    router
        .fallback(ui::serve)
        .layer(axum::Extension(document))
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotent,
        ))
        .layer(middleware::from_fn(oversize::drain_refused))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(middleware::from_fn(security_headers))
        .layer(cors)
        .with_state(state)
}

/// The headers every answer carries: no type sniffing, no framing, no referrer; and the API's
/// answers, which hold tokens and case data, are never stored by a cache.
async fn security_headers(request: Request, next: Next) -> Response {
    use axum::http::HeaderValue;
    use axum::http::header::{
        CACHE_CONTROL, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
    };
    let api = request.uri().path().starts_with("/api/") || request.uri().path() == "/metrics";
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if api {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// CORS for `origins`: the headers the UI sends, listed (a `*` would not cover
/// `Authorization`). With no origins, no cross-origin request is allowed.
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, Method};
    let origins: Vec<axum::http::HeaderValue> =
        origins.iter().filter_map(|o| o.parse().ok()).collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            axum::http::header::CONTENT_DISPOSITION,
            HeaderName::from_static("idempotent-replayed"),
        ])
}

/// How the listener treats its connections: what a slow or silent client may hold, and how
/// long a shutdown waits.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// A request's headers must arrive within this; an idle keep-alive connection, or one
    /// that never sends a request, is closed after it; a request body that pauses longer is
    /// cut.
    pub timeout: Duration,
    /// The longest a request may take, body included, before it is answered 408.
    pub request: Duration,
    /// Connections served at once; past it new ones wait to be accepted.
    pub max_connections: usize,
    /// How long a shutdown lets requests in progress finish before closing their connections.
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> ServeLimits {
        ServeLimits {
            timeout: Duration::from_secs(10),
            request: Duration::from_secs(15 * 60),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl ServeLimits {
    /// The limits the settings set (`CASEWIRE_HTTP_TIMEOUT_MS`, `CASEWIRE_HTTP_MAX_CONNECTIONS`,
    /// `CASEWIRE_SHUTDOWN_GRACE_MS`), the defaults for the rest.
    pub fn from_settings(settings: &casewire_core::Settings) -> Result<ServeLimits, CoreError> {
        let defaults = ServeLimits::default();
        let ms = |key: &str, default: Duration| -> Result<Duration, CoreError> {
            Ok(Duration::from_millis(
                settings.number(key, default.as_millis() as u64)?,
            ))
        };
        Ok(ServeLimits {
            timeout: ms("CASEWIRE_HTTP_TIMEOUT_MS", defaults.timeout)?,
            max_connections: usize::try_from(settings.number(
                "CASEWIRE_HTTP_MAX_CONNECTIONS",
                defaults.max_connections as u64,
            )?)
            .unwrap_or(usize::MAX)
            .max(1),
            shutdown_grace: ms("CASEWIRE_SHUTDOWN_GRACE_MS", defaults.shutdown_grace)?,
            ..defaults
        })
    }
}

/// Serves the API on `listener` with the default [`ServeLimits`] until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ServerState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, shutdown, ServeLimits::default()).await
}

/// Serves the API on `listener` until `shutdown` completes, within `limits`: then stops
/// accepting, closes idle connections, lets requests in progress finish for
/// `limits.shutdown_grace`, and returns (the connections still open are dropped).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: Arc<ServerState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    limits: ServeLimits,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let app = router(state)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            limits.timeout,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request,
        ))
        .layer(middleware::map_response(timeout_in_envelope));
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.map_err(std::io::Error::other)?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin or stop serving.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service =
            app.clone()
                .map_request(move |request: hyper::Request<hyper::body::Incoming>| {
                    let mut request = request.map(axum::body::Body::new);
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    request
                });
        let connection = graceful
            .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    let open = limits.max_connections - slots.available_permits();
    tracing::info!(
        open,
        "stopped accepting connections; letting requests in progress finish"
    );
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            let open = limits.max_connections - slots.available_permits();
            tracing::warn!(
                open,
                "requests still in progress after {:?}; their connections are closed",
                limits.shutdown_grace
            );
        }
    }
    Ok(())
}

/// The timeout's bare 408, in the error envelope like every other error.
async fn timeout_in_envelope(response: Response) -> Response {
    if response.status() != StatusCode::REQUEST_TIMEOUT
        || response
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE)
    {
        return response;
    }
    ApiError::with_code(
        StatusCode::REQUEST_TIMEOUT,
        ErrorCode::RequestTimeout,
        "the request took longer than this server allows and was stopped; it may or may not \
         have taken effect: check, then try again",
    )
    .into_response()
}

/// Refuses requests addressed to a foreign host name (DNS rebinding) or sent from a foreign
/// origin (cross-site), before any handler runs.
async fn guard(State(state): State<Arc<ServerState>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    if !state
        .allowed_hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
    {
        return ApiError::misdirected(host).into_response();
    }
    if let Some(origin) = request.headers().get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !state.allowed_origins.iter().any(|o| o == origin) {
            return ApiError::cross_origin(origin).into_response();
        }
    } else if let Some(site) = request.headers().get("sec-fetch-site") {
        // Browsers send no Origin on a cross-site GET (an image, a link) but do say where it
        // comes from: only the page's own origin, or the user typing the address, may ask.
        let site = site.to_str().unwrap_or("");
        if !matches!(site, "same-origin" | "none") {
            return ApiError::cross_origin(&format!("a {site} page")).into_response();
        }
    }
    next.run(request).await
}
