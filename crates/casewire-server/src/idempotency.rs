//! `Idempotency-Key` on POST: a repeat returns the first answer and does nothing again.
//!
//! Keys belong to the authenticated user; a request without a valid token is passed on
//! untouched (it gets its 401, or logs in normally: a login is never replayed). The key is
//! claimed durably before the handler runs, a JSON body is hashed as the handler reads it (to
//! tell a true repeat from a reused key; a multipart upload, whose boundary changes on every
//! send, is not compared and never buffered), and a successful answer is stored. A failed request frees its
//! key, since it changed nothing. A repeat with another body, a repeat while the first still
//! runs and a repeat of a request whose process died before answering all get 409, with codes
//! saying which.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use casewire_core::{Begin, StoredResponse, User};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::{ApiError, ErrorCode, ServerState};

/// The request header.
pub(crate) const HEADER: &str = "idempotency-key";

/// The response header that marks a replayed answer.
pub(crate) const REPLAYED: &str = "idempotent-replayed";

/// The largest answer stored (answers are small JSON documents).
const MAX_STORED_BYTES: usize = 1024 * 1024;

/// The SHA-256 of a body, taken as it streams past.
#[derive(Default)]
struct BodyHash {
    hasher: Sha256,
    done: Option<String>,
}

/// `body`, hashed into `hash` as it is read; the digest is set once the end is reached.
fn hashing(body: Body, hash: Arc<Mutex<BodyHash>>) -> Body {
    let stream = futures_util::stream::unfold(
        (body.into_data_stream(), hash),
        |(mut stream, hash)| async move {
            let next = stream.next().await;
            let mut state = hash.lock().unwrap_or_else(|e| e.into_inner());
            match next {
                Some(Ok(chunk)) => {
                    state.hasher.update(&chunk);
                    drop(state);
                    Some((Ok(chunk), (stream, hash)))
                }
                Some(Err(e)) => {
                    drop(state);
                    Some((Err(e), (stream, hash)))
                }
                None => {
                    let hasher = std::mem::take(&mut state.hasher);
                    state.done = Some(hex::encode(hasher.finalize()));
                    None
                }
            }
        },
    );
    Body::from_stream(stream)
}

/// The SHA-256 of a whole JSON body (at most [`crate::MAX_JSON_BYTES`]), read and dropped
/// chunk by chunk.
async fn digest(body: Body) -> Result<String, ApiError> {
    let mut stream = body.into_data_stream();
    let mut hasher = Sha256::new();
    let mut size = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid(format!("reading the body: {e}")))?;
        size += chunk.len();
        if size > crate::MAX_JSON_BYTES {
            return Err(ApiError::with_code(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::TooLarge,
                format!("JSON bodies are limited to {} bytes", crate::MAX_JSON_BYTES),
            ));
        }
        hasher.update(&chunk);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Marks a claimed key abandoned if the request ends without an answer to store or a decision
/// to free it: the client went away mid-request (the request's future is dropped) or the
/// handler panicked. The work it started may still commit, so the key then answers that its
/// outcome is unknown, rather than "in progress" until a restart, or free to run it twice.
struct Claim {
    state: Arc<ServerState>,
    user_id: i64,
    key: Option<String>,
}

impl Claim {
    /// The key, now settled by its caller.
    fn settle(mut self) -> String {
        self.key.take().unwrap_or_default()
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let (keys, user_id) = (self.state.idempotency.clone(), self.user_id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(move || {
                if let Err(e) = keys.abandon(user_id, &key) {
                    tracing::error!(error = %e, "could not mark an abandoned Idempotency-Key");
                }
            });
        }
    }
}

fn conflict(code: ErrorCode, message: impl Into<String>) -> Response {
    ApiError::with_code(StatusCode::CONFLICT, code, message).into_response()
}

/// The middleware.
pub(crate) async fn idempotent(
    State(state): State<Arc<ServerState>>,
    request: Request,
    next: Next,
) -> Response {
    // A login or logout is never replayed: its answer holds a token.
    if request.method() != Method::POST
        || !request.headers().contains_key(HEADER)
        || request.uri().path().starts_with("/api/auth/")
    {
        return next.run(request).await;
    }
    // Who is asking comes first: without a valid token the handler answers 401 (and records
    // the refusal), whatever the key.
    let Some(token) = crate::routes::bearer(request.headers()) else {
        return next.run(request).await;
    };
    let auth = state.auth.clone();
    let user: User = match tokio::task::spawn_blocking(move || auth.authenticate(&token)).await {
        Ok(Ok(user)) => user,
        _ => return next.run(request).await,
    };
    let key = request.headers().get(HEADER).cloned();
    let key = match key
        .as_ref()
        .ok_or(())
        .and_then(|k| k.to_str().map_err(|_| ()))
        .and_then(|k| {
            casewire_core::idempotency::check_key(k)
                .map(|()| k.to_owned())
                .map_err(|_| ())
        }) {
        Ok(key) => key,
        Err(()) => {
            return ApiError::invalid(format!(
                "Idempotency-Key must be 1 to {} visible ASCII characters",
                casewire_core::idempotency::MAX_KEY_LEN
            ))
            .into_response();
        }
    };
    let mut request = request;
    // The handler's permission check uses this user instead of looking the token up again.
    request.extensions_mut().insert(user.clone());
    let path = request.uri().path().to_owned();
    let keys = state.idempotency.clone();
    let claim_key = key.clone();
    let begun =
        crate::routes::blocking(move || keys.begin(user.id, &claim_key, "POST", &path)).await;
    match begun {
        Err(e) => e.into_response(),
        Ok(Begin::InProgress) => conflict(
            ErrorCode::IdempotencyInProgress,
            "the first request with this Idempotency-Key is still running; retry shortly",
        ),
        Ok(Begin::Unknown) => conflict(
            ErrorCode::IdempotencyOutcomeUnknown,
            "the first request with this Idempotency-Key was interrupted (a restart, or the client went away) before it answered; check whether it took effect, then retry with a new key",
        ),
        Ok(Begin::Answered(stored)) => replay(request, stored).await,
        Ok(Begin::New) => first(state, request, next, user.id, key).await,
    }
}

/// Answers a repeat with the stored answer, if its body is the first one's.
async fn replay(request: Request, stored: StoredResponse) -> Response {
    if let Some(fingerprint) = &stored.fingerprint {
        let digest = match digest(request.into_body()).await {
            Ok(digest) => digest,
            Err(e) => return e.into_response(),
        };
        if *fingerprint != digest {
            return conflict(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used with a different body; use a new key for a new request",
            );
        }
    }
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, Bytes::from(stored.body)).into_response();
    let headers = response.headers_mut();
    if let Ok(content_type) = HeaderValue::from_str(&stored.content_type) {
        headers.insert(header::CONTENT_TYPE, content_type);
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// Runs the first request with a key and stores its answer if it succeeded.
async fn first(
    state: Arc<ServerState>,
    request: Request,
    next: Next,
    user_id: i64,
    key: String,
) -> Response {
    // From here until settled, dropping this future marks the key abandoned.
    let claim = Claim {
        state: state.clone(),
        user_id,
        key: Some(key),
    };
    let hash = Arc::new(Mutex::new(BodyHash::default()));
    let (parts, body) = request.into_parts();
    // A multipart body differs on every send (its boundary is random): only JSON bodies are
    // compared.
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let body = if json {
        hashing(body, hash.clone())
    } else {
        body
    };
    let request = Request::from_parts(parts, body);
    let response = next.run(request).await;
    let key = claim.settle();
    let keys = state.idempotency.clone();
    if !response.status().is_success() {
        if let Err(e) = crate::routes::blocking(move || keys.release(user_id, &key)).await {
            tracing::error!(error = %e.message, "could not free an Idempotency-Key");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, MAX_STORED_BYTES).await {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "an answer could not be read to be stored");
            return ApiError::with_code(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "the answer could not be stored for its Idempotency-Key",
            )
            .into_response();
        }
    };
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned(),
        body: body.to_vec(),
        fingerprint: hash.lock().unwrap_or_else(|e| e.into_inner()).done.take(),
    };
    if let Err(e) = crate::routes::blocking(move || keys.complete(user_id, &key, stored)).await {
        // The action happened; the key stays claimed, so a repeat is refused, never re-run.
        tracing::error!(error = %e.message, "an answer could not be stored for its Idempotency-Key");
    }
    Response::from_parts(parts, Body::from(body))
}
