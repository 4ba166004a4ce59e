//! The desktop's transport: one request of its custom URI scheme (`casewire://localhost/…`)
//! answered by the API's router in the app's own process, so the desktop has exactly the HTTP
//! API (same routes, same authentication, same document) and opens no TCP port.
//!
//! The scheme hands requests and answers over whole, in memory (wry reads a request body in
//! the GTK main thread's callback): evidence files do not travel this way but by handle
//! ([`crate::LocalFiles`]), and an answer larger than [`MAX_ANSWER_BYTES`] is refused with a
//! clear error instead of being held in memory.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use tower::ServiceExt;

use crate::{ApiError, ErrorCode};

/// Largest answer the scheme carries; a download past it goes through the save dialog.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// Answers `request` with `router`. The scheme's requests carry no `Host` header: the URI's
/// authority (`localhost`, or `casewire.localhost` on Windows) stands in for it, so the
/// router's host check applies as over HTTP.
pub async fn respond(router: Router, request: Request<Vec<u8>>) -> Response<Vec<u8>> {
    let (mut parts, body) = request.into_parts();
    if !parts.headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, host);
    }
    let request = Request::from_parts(parts, Body::from(body));
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    };
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, MAX_ANSWER_BYTES).await {
        Ok(bytes) => Response::from_parts(parts, bytes.to_vec()),
        Err(e) => {
            tracing::warn!(error = %e, "an answer too large for the window's scheme");
            let refusal = ApiError::with_code(
                StatusCode::INSUFFICIENT_STORAGE,
                ErrorCode::AnswerTooLarge,
                "this answer is too large to show in the window; save the file instead",
            )
            .into_response();
            let (parts, body) = refusal.into_parts();
            let bytes = axum::body::to_bytes(body, MAX_ANSWER_BYTES)
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            Response::from_parts(parts, bytes)
        }
    }
}

/// The answer while no backend is there to answer (the app is starting or quitting).
pub fn unavailable() -> Response<Vec<u8>> {
    let body = crate::schema::ErrorResponse {
        success: false,
        error: crate::schema::ErrorBody {
            code: ErrorCode::Starting,
            message: "Casewire is starting or quitting; try again in a moment".to_owned(),
        },
        timestamp: crate::routes::now(),
    };
    let mut response = Response::new(serde_json::to_vec(&body).unwrap_or_default());
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
