//! Bodies over their limit: refused with 413 before they are read when they say their length,
//! and read to their end (within a bound) before the 413 is sent, so that a client still
//! sending its body sees the answer instead of a connection reset under its feet.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, EXPECT};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as _, Frame};

use crate::{ApiError, ErrorCode};

/// The most of a refused body read and thrown away before the answer is sent. Past it the
/// connection is closed, as it would be without draining.
const DRAIN_BYTES: u64 = 256 * 1024 * 1024;

/// The longest a refused body is read for.
const DRAIN_TIME: Duration = Duration::from_secs(30);

/// A request body shared between the handler and this middleware, which reads what the handler
/// left once the handler has answered.
#[derive(Clone)]
struct Shared {
    body: Arc<Mutex<Body>>,
    polled: Arc<AtomicBool>,
}

impl Shared {
    fn new(body: Body) -> Shared {
        Shared {
            body: Arc::new(Mutex::new(body)),
            polled: Arc::new(AtomicBool::new(false)),
        }
    }

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.polled.store(true, Ordering::Relaxed);
        let mut body = self
            .body
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Pin::new(&mut *body).poll_frame(cx)
    }

    /// Reads and drops the rest of the body, within [`DRAIN_BYTES`] and [`DRAIN_TIME`].
    async fn drain(&self) {
        let reading = async {
            let mut read = 0u64;
            while read < DRAIN_BYTES {
                match std::future::poll_fn(|cx| self.poll_next(cx)).await {
                    Some(Ok(frame)) => {
                        read += frame.data_ref().map_or(0, |data| data.len() as u64);
                    }
                    Some(Err(_)) | None => return,
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, reading).await;
    }
}

impl http_body::Body for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.poll_next(cx)
    }
}

/// Whether the client waits for `100 Continue` before it sends its body.
fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// The middleware for every route: a 413 is sent once the refused body has been read.
pub(crate) async fn drain_refused(request: Request, next: Next) -> Response {
    let waits = expects_continue(request.headers());
    let (parts, body) = request.into_parts();
    let shared = Shared::new(body);
    let response = next
        .run(Request::from_parts(parts, Body::new(shared.clone())))
        .await;
    // A client waiting for `100 Continue` whose body was never asked for has sent nothing.
    let unsent = waits && !shared.polled.load(Ordering::Relaxed);
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !unsent {
        shared.drain().await;
    }
    response
}

/// The middleware for the upload route: a body that says it is over `limit` is refused before
/// any of it is read.
pub(crate) async fn refuse_declared(
    State(limit): State<u64>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit => too_large().into_response(),
        _ => next.run(request).await,
    }
}

/// The upload route's 413.
pub(crate) fn too_large() -> ApiError {
    ApiError::with_code(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::TooLarge,
        "the upload is larger than the evidence limit (CASEWIRE_MAX_EVIDENCE_BYTES); nothing was stored",
    )
}
