//! The built web UI (`ui/dist`), embedded in the binary, served at `/` so the same app runs in
//! a browser against a headless server. In debug builds the files are read from `ui/dist` at
//! each request (rust-embed's behaviour), so `npm run build` shows at once.
//!
//! Every page carries a strict Content-Security-Policy: scripts, styles, images and requests
//! from this origin only, no inline script, no framing.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::{ApiError, ErrorCode};

#[derive(rust_embed::Embed)]
#[folder = "$CARGO_MANIFEST_DIR/../../ui/dist"]
#[allow_missing = true]
struct Assets;

/// The policy of the served pages. Inline style attributes are allowed (Svelte's templates
/// carry some); inline and remote scripts are not.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; \
     font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Serves a file of the UI, `index.html` for `/`; anything else unknown is a 404 (in the API's
/// error envelope under `/api/`).
pub(crate) async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") {
        return ApiError::with_code(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no route {}", uri.path()),
        )
        .into_response();
    }
    let path = if path.is_empty() { "index.html" } else { path };
    let Some(file) = Assets::get(path) else {
        if path == "index.html" {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "The web UI is not built into this binary. Build it with \
                 `npm --prefix ui ci && npm --prefix ui run build`, then rebuild casewire. \
                 The HTTP API works meanwhile under /api/.\n",
            )
                .into_response();
        }
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let mut response = Response::new(Body::from(file.data.into_owned()));
    let headers = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, mime);
    }
    // Vite names assets by their content hash: they never change. The page itself must be
    // fetched again so a new version shows.
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
