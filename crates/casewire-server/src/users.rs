//! The routes the desktop's screens need beyond the guide's: first run, the signed-in user and
//! their password, user administration, settings, the sync badge, and the queue's events.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use casewire_core::{CoreError, Permission, QueueLook, Role, UserChange};
use casewire_events::Priority;
use casewire_outbox::{Page, QueueFilter};
use chrono::SecondsFormat;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::routes::{Ctx, blocking, require};
use crate::schema::*;
use crate::{ApiError, ErrorCode, ServerState, Setup};

type St = State<Arc<ServerState>>;

/// Whether the first user is still to be created (no authentication).
#[utoipa::path(get, path = "/api/setup", tag = "auth",
    responses((status = 200, body = SetupStatusResponse)))]
pub(crate) async fn setup_status(State(state): St) -> Result<Json<SetupStatusResponse>, ApiError> {
    let auth = state.auth.clone();
    let needs = blocking(move || auth.needs_setup()).await?;
    Ok(SetupStatusResponse::new(
        needs,
        needs && matches!(state.setup, Setup::Code(_)),
    ))
}

/// The first user.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FirstUser {
    /// 1 to 64 letters, digits or `. _ @ - +`.
    #[schema(min_length = 1, max_length = 64)]
    username: String,
    /// At least 12 characters.
    #[schema(min_length = 12, max_length = 1024)]
    password: String,
    /// The code `casewire serve` printed at start (not needed in the desktop).
    #[serde(default)]
    #[schema(max_length = 64)]
    setup_code: Option<String>,
}

/// Creates the first user, a superadmin, and signs them in; only while no user exists
/// (`user.created`, then `user.login`).
#[utoipa::path(post, path = "/api/setup", tag = "auth", request_body = FirstUser,
    responses((status = 201, body = LoginResponse)))]
pub(crate) async fn set_up(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<FirstUser>, JsonRejection>,
) -> Result<(StatusCode, Json<LoginResponse>), ApiError> {
    let Json(first) = body?;
    if let Setup::Code(code) = &state.setup {
        let given = first.setup_code.as_deref().unwrap_or("").trim();
        // Compared without regard to case or the dash, as people type it.
        let normal = |c: &str| c.replace('-', "").to_ascii_uppercase();
        if normal(given) != normal(code) {
            return Err(CoreError::SetupCodeInvalid.into());
        }
    }
    let (auth, info) = (state.auth.clone(), ctx.info().clone());
    let session = blocking(move || auth.set_up(&first.username, &first.password, &info)).await?;
    Ok((
        StatusCode::CREATED,
        LoginResponse::new(
            session.token,
            session
                .expires_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            session.user,
        ),
    ))
}

/// Who the bearer token belongs to.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", responses((status = 200, body = MeResponse)))]
pub(crate) async fn me(State(state): St, ctx: Ctx) -> Result<Json<MeResponse>, ApiError> {
    let user = require(&state, &ctx, Permission::Investigate).await?;
    let settings = state.app.as_ref().map(|a| a.settings()).unwrap_or_default();
    let preferences = Preferences {
        theme: Theme::named(settings.get("CASEWIRE_THEME").as_deref()),
        idle_lock_minutes: settings
            .number("CASEWIRE_IDLE_LOCK_MINUTES", 15)
            .unwrap_or(15),
    };
    Ok(MeResponse::new(user, preferences))
}

/// A change of one's own password.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PasswordChange {
    /// The password now.
    #[schema(max_length = 1024)]
    current_password: String,
    /// The new one: at least 12 characters.
    #[schema(min_length = 12, max_length = 1024)]
    new_password: String,
}

/// Changes the caller's own password; their other sessions end (`user.updated`).
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 200, body = DoneResponse)))]
pub(crate) async fn change_password(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<PasswordChange>, JsonRejection>,
) -> Result<Json<DoneResponse>, ApiError> {
    let user = require(&state, &ctx, Permission::Investigate).await?;
    let Json(change) = body?;
    let token = ctx.token().unwrap_or_default().to_owned();
    let (auth, info) = (state.auth.clone(), ctx.info().clone());
    blocking(move || {
        auth.change_password(
            &user,
            &token,
            &info,
            &change.current_password,
            &change.new_password,
        )
    })
    .await?;
    Ok(DoneResponse::new(
        "Password changed; your other sessions have ended".into(),
    ))
}

/// Every user (any signed-in user: assigning a case needs the names).
#[utoipa::path(get, path = "/api/users", tag = "users", responses((status = 200, body = UsersResponse)))]
pub(crate) async fn list_users(
    State(state): St,
    ctx: Ctx,
) -> Result<Json<UsersResponse>, ApiError> {
    require(&state, &ctx, Permission::Investigate).await?;
    let auth = state.auth.clone();
    Ok(UsersResponse::new(
        blocking(move || auth.list_users()).await?,
    ))
}

/// A new user.
#[derive(Deserialize, ToSchema)]
pub(crate) struct NewUser {
    /// 1 to 64 letters, digits or `. _ @ - +`.
    #[schema(min_length = 1, max_length = 64)]
    username: String,
    /// `user`, `analyst`, `admin` or `superadmin`.
    #[schema(pattern = "^(user|analyst|admin|superadmin)$")]
    role: String,
    /// At least 12 characters.
    #[schema(min_length = 12, max_length = 1024)]
    password: String,
}

/// Adds a user (`system-config`; `user.created`).
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = UserResponse)))]
pub(crate) async fn create_user(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<UserResponse>), ApiError> {
    let by = require(&state, &ctx, Permission::SystemConfig).await?;
    let Json(new) = body?;
    let role: Role = new.role.parse()?;
    let (auth, info) = (state.auth.clone(), ctx.info().clone());
    let user =
        blocking(move || auth.create_user(&by, &info, &new.username, role, &new.password)).await?;
    Ok((StatusCode::CREATED, UserResponse::new(user)))
}

/// A user id in a path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct UserId {
    /// The user's id.
    #[param(minimum = 1, maximum = 9007199254740991_i64)]
    id: i64,
}

/// A user id from the path, refused in the error envelope when it is not a whole number.
fn user_id(path: Result<Path<i64>, PathRejection>) -> Result<i64, ApiError> {
    path.map(|Path(id)| id).map_err(|e| {
        ApiError::invalid(format!(
            "the user id must be a whole number: {}",
            e.body_text()
        ))
    })
}

/// A change to an account.
#[derive(Deserialize, ToSchema)]
pub(crate) struct AccountChange {
    /// A new role.
    #[serde(default)]
    #[schema(pattern = "^(user|analyst|admin|superadmin)$")]
    role: Option<String>,
    /// Disable (`true`: their sessions end) or enable (`false`).
    #[serde(default)]
    disabled: Option<bool>,
}

/// Changes a user's role, or disables or enables them (`system-config`; `user.updated`).
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", params(UserId), request_body = AccountChange,
    responses((status = 200, body = UserResponse)))]
pub(crate) async fn update_user(
    State(state): St,
    ctx: Ctx,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<AccountChange>, JsonRejection>,
) -> Result<Json<UserResponse>, ApiError> {
    let by = require(&state, &ctx, Permission::SystemConfig).await?;
    let id = user_id(id)?;
    let Json(change) = body?;
    let change = UserChange {
        role: change.role.as_deref().map(str::parse).transpose()?,
        disabled: change.disabled,
    };
    let (auth, info) = (state.auth.clone(), ctx.info().clone());
    Ok(UserResponse::new(
        blocking(move || auth.update_user(&by, &info, id, change)).await?,
    ))
}

/// A new password set by a superadmin.
#[derive(Deserialize, ToSchema)]
pub(crate) struct PasswordReset {
    /// At least 12 characters.
    #[schema(min_length = 12, max_length = 1024)]
    password: String,
}

/// Sets a user's password (`system-config`; `user.updated`); their sessions end.
#[utoipa::path(post, path = "/api/users/{id}/password", tag = "users", params(UserId), request_body = PasswordReset,
    responses((status = 200, body = DoneResponse)))]
pub(crate) async fn reset_password(
    State(state): St,
    ctx: Ctx,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<PasswordReset>, JsonRejection>,
) -> Result<Json<DoneResponse>, ApiError> {
    let by = require(&state, &ctx, Permission::SystemConfig).await?;
    let id = user_id(id)?;
    let Json(reset) = body?;
    let (auth, info) = (state.auth.clone(), ctx.info().clone());
    blocking(move || auth.reset_password(&by, &info, id, &reset.password)).await?;
    Ok(DoneResponse::new(
        "Password reset; the user's sessions have ended".into(),
    ))
}

pub(crate) fn app(state: &ServerState) -> Result<&Arc<casewire_core::App>, ApiError> {
    state.app.as_ref().ok_or_else(|| {
        ApiError::with_code(
            StatusCode::NOT_FOUND,
            ErrorCode::SettingsUnavailable,
            "this server was started without settings to change",
        )
    })
}

/// The settings, with where each value comes from (`view-logs`). Secrets are never shown.
#[utoipa::path(get, path = "/api/settings", tag = "settings",
    responses((status = 200, body = SettingsResponse)))]
pub(crate) async fn get_settings(
    State(state): St,
    ctx: Ctx,
) -> Result<Json<SettingsResponse>, ApiError> {
    require(&state, &ctx, Permission::ViewLogs).await?;
    Ok(SettingsResponse::new(app(&state)?.describe_settings()))
}

/// Changes to the settings.
#[derive(Deserialize, ToSchema)]
pub(crate) struct SettingsChange {
    /// Setting name → new value, or `null` to return to the default.
    #[schema(value_type = std::collections::HashMap<String, Option<String>>)]
    values: BTreeMap<String, Option<String>>,
}

/// Changes settings (`system-config`): all are checked first, and a refused one changes
/// nothing. A change to the Kafka settings restarts the relay; nothing queued is lost.
#[utoipa::path(put, path = "/api/settings", tag = "settings", request_body = SettingsChange,
    responses((status = 200, body = SettingsResponse)))]
pub(crate) async fn put_settings(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<SettingsChange>, JsonRejection>,
) -> Result<Json<SettingsResponse>, ApiError> {
    let user = require(&state, &ctx, Permission::SystemConfig).await?;
    let Json(change) = body?;
    let app = app(&state)?.clone();
    let keys: Vec<&String> = change.values.keys().collect();
    tracing::info!(user = %user.username, settings = ?keys, "settings changed");
    let settings = app.change_settings(change.values).await?;
    Ok(SettingsResponse::new(settings))
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// How delivery to Kafka is going, for the sync badge (any signed-in user). Cheap: counters
/// only, no scan of the queue.
#[utoipa::path(get, path = "/api/sync", tag = "queue", responses((status = 200, body = SyncResponse)))]
pub(crate) async fn sync(State(state): St, ctx: Ctx) -> Result<Json<SyncResponse>, ApiError> {
    require(&state, &ctx, Permission::Investigate).await?;
    let stats = state.outbox.stats(Page::first(0))?;
    let relay = state.app.as_ref().map(|a| a.relay_status());
    let running = relay.as_ref().map_or(stats.kafka_available, |r| r.running);
    let last_error = relay.as_ref().and_then(|r| r.last_error.clone());
    let look = QueueLook {
        waiting: stats.queue_size,
        broker_connected: stats.kafka_connected,
        ..QueueLook::default()
    };
    let state_now = casewire_core::SyncState::of(look, running, last_error.is_some()).into();
    Ok(SyncResponse::new(SyncStatus {
        state: state_now,
        waiting: stats.queue_size,
        in_flight: stats.in_flight,
        dead_letters: stats.dead_letter_count,
        broker_connected: stats.kafka_connected,
        refused: relay.as_ref().and_then(|r| r.refused).map(str::to_owned),
        last_delivery_at: relay.and_then(|r| r.last_delivery_ms).map(rfc3339),
        last_error,
    }))
}

/// A page of queued events, filtered.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventsQuery {
    /// At most this many (default 50, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<usize>,
    /// After this order key (the previous page's `nextCursor`).
    after: Option<i64>,
    /// Only events of this type.
    #[param(max_length = 64)]
    event_type: Option<String>,
    /// Only events of this priority.
    #[param(pattern = "^(critical|high|medium|low)$")]
    priority: Option<String>,
}

/// Queued events, paged and filtered by type and priority (`view-logs`).
#[utoipa::path(get, path = "/api/queue/events", tag = "queue", params(EventsQuery),
    responses((status = 200, body = QueuedEventsResponse)))]
pub(crate) async fn queued_events(
    State(state): St,
    ctx: Ctx,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<QueuedEventsResponse>, ApiError> {
    require(&state, &ctx, Permission::ViewLogs).await?;
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(50);
    if limit > 1_000 {
        return Err(ApiError::invalid("limit must be at most 1000"));
    }
    let priority = query
        .priority
        .as_deref()
        .map(str::parse::<Priority>)
        .transpose()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let filter = QueueFilter {
        event_type: query.event_type.filter(|t| !t.is_empty()),
        priority,
    };
    let page = Page {
        after: query.after,
        limit,
    };
    let outbox = state.outbox.clone();
    let events = blocking(move || Ok(outbox.list_queued_matching(page, &filter)?)).await?;
    let next = (events.len() == limit && limit > 0)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(QueuedEventsResponse::new(events, next))
}

/// An event id in a path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct EventIdPath {
    /// `evt_<ms>_<hex>`.
    event_id: String,
}

/// The JSON document of a queued or dead-lettered event (`view-logs`).
#[utoipa::path(get, path = "/api/queue/events/{event_id}", tag = "queue", params(EventIdPath),
    responses((status = 200, body = EventDocumentResponse)))]
pub(crate) async fn event_document(
    State(state): St,
    ctx: Ctx,
    Path(event_id): Path<String>,
) -> Result<Json<EventDocumentResponse>, ApiError> {
    require(&state, &ctx, Permission::ViewLogs).await?;
    match state.outbox.event_document(&event_id)? {
        Some(event) => Ok(EventDocumentResponse::new(event)),
        None => Err(CoreError::NotFound(format!(
            "event {event_id} in the queue or the dead letters (it may have been delivered)"
        ))
        .into()),
    }
}
