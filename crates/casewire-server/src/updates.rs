//! The desktop app's updates (`system-config`): what is on offer, looking for one now, and
//! installing the version the admin was shown. The update channel and the install's order
//! (verify, close the outbox, install, restart) are `casewire_core::updates`'.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use casewire_core::Permission;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::routes::{Ctx, require};
use crate::schema::UpdatesResponse;
use crate::users::app;
use crate::{ApiError, ServerState};

type St = State<Arc<ServerState>>;

/// The running version, whether looking for updates is allowed, and any update on offer
/// (`system-config`).
#[utoipa::path(get, path = "/api/updates", tag = "settings",
    responses((status = 200, body = UpdatesResponse)))]
pub(crate) async fn updates(State(state): St, ctx: Ctx) -> Result<Json<UpdatesResponse>, ApiError> {
    require(&state, &ctx, Permission::SystemConfig).await?;
    let app = app(&state)?;
    Ok(UpdatesResponse::new(app.updates.view(&app.settings())))
}

/// Asks the update channel for a newer version now (`system-config`; only while looking for
/// updates is allowed).
#[utoipa::path(post, path = "/api/updates/check", tag = "settings",
    responses((status = 200, body = UpdatesResponse)))]
pub(crate) async fn check(State(state): St, ctx: Ctx) -> Result<Json<UpdatesResponse>, ApiError> {
    require(&state, &ctx, Permission::SystemConfig).await?;
    let app = app(&state)?;
    let settings = app.settings();
    app.updates.check(&settings, app.clock.now_ms()).await?;
    Ok(UpdatesResponse::new(app.updates.view(&settings)))
}

/// Which update to install.
#[derive(Deserialize, ToSchema)]
pub(crate) struct InstallUpdate {
    /// The version on offer, as the admin was shown it: anything else is refused.
    version: String,
}

/// Downloads the version on offer, verifies its signature, closes the outbox (every write
/// committed, the rest refused), installs it and restarts Casewire (`system-config`). A
/// package that fails its check is refused and nothing stops.
#[utoipa::path(post, path = "/api/updates/install", tag = "settings", request_body = InstallUpdate,
    responses((status = 202, body = UpdatesResponse)))]
pub(crate) async fn install(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<InstallUpdate>, JsonRejection>,
) -> Result<(axum::http::StatusCode, Json<UpdatesResponse>), ApiError> {
    let user = require(&state, &ctx, Permission::SystemConfig).await?;
    let Json(asked) = body?;
    let app = app(&state)?.clone();
    tracing::info!(user = %user.username, version = %asked.version, "update asked for");
    app.updates.install(&app, &asked.version).await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        UpdatesResponse::new(app.updates.view(&app.settings())),
    ))
}
