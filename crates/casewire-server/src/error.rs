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
        if code == "internal" {
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
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
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
        ApiError::new(status, code, readable(&rejection.body_text()))
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
    fn a_failure_inside_the_server_names_no_file_and_a_full_disk_says_so() {
        let io = casewire_outbox::Error::Io {
            path: "/home/ivy/.local/share/casewire/outbox.db".into(),
            source: std::io::Error::other("Input/output error"),
        };
        let answer = ApiError::from(&io);
        assert_eq!(
            (answer.status, answer.code),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
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
