//! The error envelope: a status and a stable, machine-readable code the UI can act on.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use casewire_core::CoreError;

/// An API error: `{"success": false, "error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable code, e.g. `unauthenticated`, `forbidden`, `invalid_request`.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// Seconds before a retry may succeed (`Retry-After`), for a throttled request.
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// An error with its own status and code.
    pub(crate) fn with_code(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError::new(status, code, message)
    }

    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 421 for a request addressed to a host name this server does not answer to.
    pub(crate) fn misdirected(host: &str) -> ApiError {
        ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "bad_host",
            format!("this server does not answer to host {host:?}"),
        )
    }

    /// 403 for a request from another site.
    pub(crate) fn cross_origin(origin: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            format!("requests from origin {origin:?} are not allowed"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = crate::schema::ErrorResponse {
            success: false,
            error: crate::schema::ErrorBody {
                code: self.code.to_owned(),
                message: self.message,
            },
            timestamp: crate::routes::now(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> ApiError {
        use StatusCode as S;
        let (status, code) = match &e {
            CoreError::Invalid(_) => (S::BAD_REQUEST, "invalid_request"),
            CoreError::Conflict(_) => (S::CONFLICT, "conflict"),
            CoreError::BadCredentials => (S::UNAUTHORIZED, "bad_credentials"),
            CoreError::LoginThrottled { retry_after } => {
                let mut throttled =
                    ApiError::new(S::TOO_MANY_REQUESTS, "login_throttled", e.to_string());
                // Whole seconds, rounded up: a client that waits that long is let through.
                throttled.retry_after = Some(retry_after.as_millis().div_ceil(1000).max(1) as u64);
                return throttled;
            }
            CoreError::Unauthenticated => (S::UNAUTHORIZED, "unauthenticated"),
            CoreError::Forbidden { .. } => (S::FORBIDDEN, "forbidden"),
            CoreError::TooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "too_large"),
            CoreError::NotFound(_) | CoreError::Hidden(_) => (S::NOT_FOUND, "not_found"),
            CoreError::Gone(_) => (S::GONE, "gone"),
            CoreError::SetupDone => (S::CONFLICT, "setup_done"),
            CoreError::SetupCodeInvalid => (S::FORBIDDEN, "setup_code_invalid"),
            CoreError::Config(_) => (S::BAD_REQUEST, "invalid_setting"),
            CoreError::Tampered(_) => (S::INTERNAL_SERVER_ERROR, "evidence_tampered"),
            CoreError::Outbox(o) => return ApiError::from(o),
            CoreError::Update(u) => return ApiError::from(u.clone()),
            _ => (S::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        ApiError::new(status, code, e.to_string())
    }
}

impl From<&casewire_outbox::Error> for ApiError {
    fn from(e: &casewire_outbox::Error) -> ApiError {
        use casewire_outbox::Error as E;
        match e {
            E::InvalidEvent(_) => ApiError::invalid(e.to_string()),
            E::DuplicateEventId(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            E::QueueFull { .. } => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "queue_full",
                e.to_string(),
            ),
            E::WriterStopped => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "closed", e.to_string())
            }
            _ => {
                tracing::error!(error = %e, "request failed in the outbox");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

impl From<casewire_core::UpdateError> for ApiError {
    fn from(e: casewire_core::UpdateError) -> ApiError {
        use StatusCode as S;
        use casewire_core::UpdateError as U;
        let (status, code) = match &e {
            U::Off => (S::CONFLICT, "updates_off"),
            U::NoChannel => (S::NOT_FOUND, "updates_unavailable"),
            U::Busy => (S::CONFLICT, "update_in_progress"),
            U::NotOffered { .. } => (S::CONFLICT, "update_not_offered"),
            U::Unreachable(_) => (S::BAD_GATEWAY, "update_channel_unreachable"),
            U::BadSignature(_) => (S::BAD_GATEWAY, "update_signature_invalid"),
            U::Install(_) => (S::INTERNAL_SERVER_ERROR, "update_install_failed"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<casewire_outbox::Error> for ApiError {
    fn from(e: casewire_outbox::Error) -> ApiError {
        ApiError::from(&e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        // A body of the wrong shape (axum's 422) is bad input like any other: 400.
        let (status, code) = match rejection.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            StatusCode::PAYLOAD_TOO_LARGE => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            _ => (StatusCode::BAD_REQUEST, "invalid_request"),
        };
        ApiError::new(status, code, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::invalid(rejection.body_text())
    }
}
