//! The error envelope: a status and a stable, machine-readable code the UI can act on.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use casewire_core::CoreError;

/// Every code an error may carry: stable, for clients to act on, and listed in the OpenAPI
/// document (the `code` of `ErrorBody` is this enum), so a client can handle each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Input breaks a rule; the message says which.
    InvalidRequest,
    /// The username or password is wrong.
    BadCredentials,
    /// Too many failed logins from this client or for this account; see `Retry-After`.
    LoginThrottled,
    /// No valid bearer token.
    Unauthenticated,
    /// The caller's role lacks the permission.
    Forbidden,
    /// No such thing, or not one the caller may see.
    NotFound,
    /// It existed and was removed.
    Gone,
    /// The request contradicts the current state.
    Conflict,
    /// The body is over its limit.
    TooLarge,
    /// A JSON body not sent as `application/json`.
    UnsupportedMediaType,
    /// The request took longer than the server allows.
    RequestTimeout,
    /// The outbox is at its quota; nothing was written.
    QueueFull,
    /// Addressed to a host name this server does not answer to.
    BadHost,
    /// Sent from another site.
    CrossOrigin,
    /// The Idempotency-Key was used for a different request.
    IdempotencyKeyReused,
    /// The request with this Idempotency-Key is still running.
    IdempotencyInProgress,
    /// The request with this Idempotency-Key ended without an answer.
    IdempotencyOutcomeUnknown,
    /// The first superadmin exists already.
    SetupDone,
    /// The set-up code is wrong.
    SetupCodeInvalid,
    /// A setting's value is refused; the message says why.
    InvalidSetting,
    /// This server was started without settings to change.
    SettingsUnavailable,
    /// Files by handle exist only in the desktop app.
    LocalFilesUnavailable,
    /// A file handle this window did not pick.
    UnknownFileHandle,
    /// An answer too large for the desktop window's scheme.
    AnswerTooLarge,
    /// The app is starting or quitting.
    Starting,
    /// A stored evidence file no longer matches its hash.
    EvidenceTampered,
    /// The outbox is closed for an update or a shutdown.
    Closed,
    /// Looking for updates is turned off.
    UpdatesOff,
    /// This copy has no update channel.
    UpdatesUnavailable,
    /// An update is being checked or installed.
    UpdateInProgress,
    /// The version asked for is not the one offered.
    UpdateNotOffered,
    /// The update channel cannot be reached.
    UpdateChannelUnreachable,
    /// An update's signature does not hold.
    UpdateSignatureInvalid,
    /// An update could not be installed.
    UpdateInstallFailed,
    /// No chain is configured to check a receipt against.
    ChainNotConfigured,
    /// The chain's node cannot be reached; nothing was recorded.
    ChainUnreachable,
    /// A typed-in receipt does not hold on chain; the message says why.
    ReceiptRefused,
    /// The server failed; the log has the details.
    Internal,
}

impl ErrorCode {
    /// Every code, in the document's order.
    pub const ALL: [ErrorCode; 38] = [
        ErrorCode::InvalidRequest,
        ErrorCode::BadCredentials,
        ErrorCode::LoginThrottled,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Gone,
        ErrorCode::Conflict,
        ErrorCode::TooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::RequestTimeout,
        ErrorCode::QueueFull,
        ErrorCode::BadHost,
        ErrorCode::CrossOrigin,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::IdempotencyInProgress,
        ErrorCode::IdempotencyOutcomeUnknown,
        ErrorCode::SetupDone,
        ErrorCode::SetupCodeInvalid,
        ErrorCode::InvalidSetting,
        ErrorCode::SettingsUnavailable,
        ErrorCode::LocalFilesUnavailable,
        ErrorCode::UnknownFileHandle,
        ErrorCode::AnswerTooLarge,
        ErrorCode::Starting,
        ErrorCode::EvidenceTampered,
        ErrorCode::Closed,
        ErrorCode::UpdatesOff,
        ErrorCode::UpdatesUnavailable,
        ErrorCode::UpdateInProgress,
        ErrorCode::UpdateNotOffered,
        ErrorCode::UpdateChannelUnreachable,
        ErrorCode::UpdateSignatureInvalid,
        ErrorCode::UpdateInstallFailed,
        ErrorCode::ChainNotConfigured,
        ErrorCode::ChainUnreachable,
        ErrorCode::ReceiptRefused,
        ErrorCode::Internal,
    ];

    /// The code as it is sent.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::BadCredentials => "bad_credentials",
            ErrorCode::LoginThrottled => "login_throttled",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Gone => "gone",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::BadHost => "bad_host",
            ErrorCode::CrossOrigin => "cross_origin",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::IdempotencyInProgress => "idempotency_in_progress",
            ErrorCode::IdempotencyOutcomeUnknown => "idempotency_outcome_unknown",
            ErrorCode::SetupDone => "setup_done",
            ErrorCode::SetupCodeInvalid => "setup_code_invalid",
            ErrorCode::InvalidSetting => "invalid_setting",
            ErrorCode::SettingsUnavailable => "settings_unavailable",
            ErrorCode::LocalFilesUnavailable => "local_files_unavailable",
            ErrorCode::UnknownFileHandle => "unknown_file_handle",
            ErrorCode::AnswerTooLarge => "answer_too_large",
            ErrorCode::Starting => "starting",
            ErrorCode::EvidenceTampered => "evidence_tampered",
            ErrorCode::Closed => "closed",
            ErrorCode::UpdatesOff => "updates_off",
            ErrorCode::UpdatesUnavailable => "updates_unavailable",
            ErrorCode::UpdateInProgress => "update_in_progress",
            ErrorCode::UpdateNotOffered => "update_not_offered",
            ErrorCode::UpdateChannelUnreachable => "update_channel_unreachable",
            ErrorCode::UpdateSignatureInvalid => "update_signature_invalid",
            ErrorCode::UpdateInstallFailed => "update_install_failed",
            ErrorCode::ChainNotConfigured => "chain_not_configured",
            ErrorCode::ChainUnreachable => "chain_unreachable",
            ErrorCode::ReceiptRefused => "receipt_refused",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API error: `{"success": false, "error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable code for clients to act on.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// Seconds before a retry may succeed (`Retry-After`), for a throttled request.
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
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
        code: ErrorCode,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError::new(status, code, message)
    }

    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message)
    }

    /// 421 for a request addressed to a host name this server does not answer to.
    pub(crate) fn misdirected(host: &str) -> ApiError {
        ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            ErrorCode::BadHost,
            format!("this server does not answer to host {host:?}"),
        )
    }

    /// 403 for a request from another site.
    pub(crate) fn cross_origin(origin: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::CrossOrigin,
            format!("requests from origin {origin:?} are not allowed"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = crate::schema::ErrorResponse {
            success: false,
            error: crate::schema::ErrorBody {
                code: self.code,
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
            CoreError::Invalid(_) => (S::BAD_REQUEST, ErrorCode::InvalidRequest),
            CoreError::Conflict(_) => (S::CONFLICT, ErrorCode::Conflict),
            CoreError::BadCredentials => (S::UNAUTHORIZED, ErrorCode::BadCredentials),
            CoreError::LoginThrottled { retry_after } => {
                let mut throttled = ApiError::new(
                    S::TOO_MANY_REQUESTS,
                    ErrorCode::LoginThrottled,
                    e.to_string(),
                );
                // Whole seconds, rounded up: a client that waits that long is let through.
                throttled.retry_after = Some(retry_after.as_millis().div_ceil(1000).max(1) as u64);
                return throttled;
            }
            CoreError::Unauthenticated => (S::UNAUTHORIZED, ErrorCode::Unauthenticated),
            CoreError::Forbidden { .. } => (S::FORBIDDEN, ErrorCode::Forbidden),
            CoreError::TooLarge { .. } => (S::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge),
            CoreError::NotFound(_) | CoreError::Hidden(_) => (S::NOT_FOUND, ErrorCode::NotFound),
            CoreError::Gone(_) => (S::GONE, ErrorCode::Gone),
            CoreError::SetupDone => (S::CONFLICT, ErrorCode::SetupDone),
            CoreError::SetupCodeInvalid => (S::FORBIDDEN, ErrorCode::SetupCodeInvalid),
            CoreError::Config(_) => (S::BAD_REQUEST, ErrorCode::InvalidSetting),
            CoreError::Tampered(_) => (S::INTERNAL_SERVER_ERROR, ErrorCode::EvidenceTampered),
            CoreError::ChainNotConfigured => (S::CONFLICT, ErrorCode::ChainNotConfigured),
            CoreError::ChainUnreachable(_) => (S::SERVICE_UNAVAILABLE, ErrorCode::ChainUnreachable),
            CoreError::ReceiptRefused { .. } => {
                (S::UNPROCESSABLE_ENTITY, ErrorCode::ReceiptRefused)
            }
            CoreError::Outbox(o) => return ApiError::from(o),
            CoreError::Update(u) => return ApiError::from(u.clone()),
            _ => (S::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        };
        if code == ErrorCode::Internal {
            tracing::error!(error = %e, "request failed");
            return ApiError::new(status, code, internal_message(&e));
        }
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        ApiError::new(status, code, e.to_string())
    }
}

/// What a client is told of a failure inside the server: what happened and what to do, never
/// the files, queries or types involved (those are in the log, beside the request).
fn internal_message(e: &dyn std::fmt::Display) -> String {
    let detail = e.to_string();
    if detail.contains("No space left on device") || detail.contains("database or disk is full") {
        "The server's disk is full: nothing was saved. Free some space on it, then try again."
            .to_owned()
    } else {
        "The server could not complete this; nothing is known to have changed. Try again; the server's log has the details."
            .to_owned()
    }
}

/// A rejection's text for a client, with Rust's names for the expected types replaced by
/// what they mean in JSON.
fn readable(text: &str) -> String {
    let mut out = text.to_owned();
    for (rust, json) in [
        ("tuple struct ", "an array"),
        ("struct ", "an object"),
        ("enum ", "one of the allowed values"),
    ] {
        while let Some(at) = out.find(&format!("expected {rust}")) {
            let start = at + "expected ".len();
            let name_end = out[start + rust.len()..]
                .find(|c: char| !(c.is_alphanumeric() || "_:<>".contains(c)))
                .map_or(out.len(), |i| start + rust.len() + i);
            out.replace_range(start..name_end, json);
        }
    }
    for (rust, json) in [
        ("`u64`", "whole number"),
        ("`i64`", "whole number"),
        ("`u32`", "whole number"),
        ("`usize`", "whole number"),
        ("`f64`", "number"),
        ("`bool`", "boolean"),
    ] {
        out = out.replace(rust, json);
    }
    out
}

impl From<&casewire_outbox::Error> for ApiError {
    fn from(e: &casewire_outbox::Error) -> ApiError {
        use casewire_outbox::Error as E;
        match e {
            E::InvalidEvent(_) => ApiError::invalid(e.to_string()),
            E::DuplicateEventId(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, e.to_string())
            }
            E::QueueFull { .. } => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                ErrorCode::QueueFull,
                e.to_string(),
            ),
            E::WriterStopped => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Closed,
                e.to_string(),
            ),
            _ => {
                tracing::error!(error = %e, "request failed in the outbox");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    internal_message(e),
                )
            }
        }
    }
}

impl From<casewire_core::UpdateError> for ApiError {
    fn from(e: casewire_core::UpdateError) -> ApiError {
        use StatusCode as S;
        use casewire_core::UpdateError as U;
        let (status, code) = match &e {
            U::Off => (S::CONFLICT, ErrorCode::UpdatesOff),
            U::NoChannel => (S::NOT_FOUND, ErrorCode::UpdatesUnavailable),
            U::Busy => (S::CONFLICT, ErrorCode::UpdateInProgress),
            U::NotOffered { .. } => (S::CONFLICT, ErrorCode::UpdateNotOffered),
            U::Unreachable(_) => (S::BAD_GATEWAY, ErrorCode::UpdateChannelUnreachable),
            U::BadSignature(_) => (S::BAD_GATEWAY, ErrorCode::UpdateSignatureInvalid),
            U::Install(_) => (S::INTERNAL_SERVER_ERROR, ErrorCode::UpdateInstallFailed),
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
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge),
            _ => (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest),
        };
        ApiError::new(status, code, readable(&rejection.body_text()))
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
        let code = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::TooLarge,
            _ => ErrorCode::InvalidRequest,
        };
        ApiError::new(rejection.status(), code, readable(&rejection.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::invalid(readable(&rejection.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_sent_as_it_is_named() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).expect("json"),
                serde_json::Value::from(code.as_str())
            );
        }
    }

    #[test]
    fn a_failure_inside_the_server_names_no_file_and_a_full_disk_says_so() {
        let io = casewire_outbox::Error::Io {
            path: "/home/ivy/.local/share/casewire/outbox.db".into(),
            source: std::io::Error::other("Input/output error"),
        };
        let answer = ApiError::from(&io);
        assert_eq!(
            (answer.status, answer.code),
            (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal)
        );
        assert!(!answer.message.contains('/'), "{}", answer.message);
        let full = CoreError::Storage(
            "cannot write /var/lib/casewire/evidence/tmp/x: No space left on device (os error 28)"
                .into(),
        );
        let answer = ApiError::from(full);
        assert!(
            answer.message.contains("disk is full"),
            "{}",
            answer.message
        );
        assert!(!answer.message.contains("/var/lib"), "{}", answer.message);
    }

    #[test]
    fn a_rejection_names_json_types_not_rust_ones() {
        let text = "Failed to deserialize the JSON body into the target type: invalid type: string \"x\", expected struct NewCase at line 1 column 3";
        let shown = readable(text);
        assert!(!shown.contains("NewCase"), "{shown}");
        assert!(shown.contains("expected an object at line 1"), "{shown}");
        assert_eq!(
            readable("unknown variant `urgent`, expected enum Priority"),
            "unknown variant `urgent`, expected one of the allowed values"
        );
        assert_eq!(
            readable("Cannot parse `abc` to a `u64`"),
            "Cannot parse `abc` to a whole number"
        );
    }
}
