//! `GET /api/openapi.json`: the OpenAPI 3.1 document, generated from the handlers'
//! annotations and the types they answer with, made once when the router is built.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder, tag::TagBuilder};

/// The serialised document, shared with its handler.
#[derive(Clone)]
pub(crate) struct Document(pub(crate) Arc<String>);

/// The document's frame: what the API is, and its tags.
pub(crate) fn base() -> OpenApi {
    let tag = |name: &str, description: &str| {
        TagBuilder::new()
            .name(name)
            .description(Some(description))
            .build()
    };
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Casewire")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Fraud investigation evidence and cases, with every action's event queued \
                     durably on this machine and published to Kafka when a broker is reachable. \
                     Bearer tokens from /api/auth/login; the x-user-role header is never trusted. \
                     POST requests accept an Idempotency-Key header.",
                ))
                .build(),
        )
        .tags(Some([
            tag("auth", "Login and logout"),
            tag("cases", "Cases and their timelines"),
            tag("evidence", "Evidence files, their integrity and anchors"),
            tag("rl", "The fraud-response policy"),
            tag("queue", "The event queue, for admins"),
            tag("health", "Liveness, readiness and metrics"),
        ]))
        .build()
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "health",
    responses((status = 200, content_type = "application/json", body = Object, description = "OpenAPI 3.1")))]
pub(crate) async fn document(Extension(Document(json)): Extension<Document>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json.as_str().to_owned(),
    )
}
