//! The routes and their handlers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use casewire_core::{CaseStatus, CoreError, Permission, RequestInfo, User};
use casewire_events::{Event, EventType, Metadata};
use casewire_outbox::Page;
use chrono::SecondsFormat;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::schema::*;
use crate::{ApiError, ErrorCode, ServerState};

type St = State<Arc<ServerState>>;

/// Every route, with the OpenAPI document its annotations make.
pub(crate) fn routes(state: &ServerState) -> OpenApiRouter<Arc<ServerState>> {
    // Uploads may be as large as the evidence limit, plus room for the form's other fields.
    let upload_limit = usize::try_from(state.evidence.max_bytes())
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    let (schemas, paths, upload) = routes!(upload_evidence);
    let upload = (
        schemas,
        paths,
        upload
            .layer(axum::extract::DefaultBodyLimit::max(upload_limit))
            .layer(axum::middleware::from_fn_with_state(
                upload_limit as u64,
                crate::oversize::refuse_declared,
            )),
    );
    OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(upload)
        .routes(routes!(list_evidence))
        .routes(routes!(get_evidence, delete_evidence))
        .routes(routes!(download_evidence))
        .routes(routes!(verify_evidence))
        .routes(routes!(anchor_evidence, evidence_anchors))
        .routes(routes!(anchor_proof))
        .routes(routes!(rl_predict))
        .routes(routes!(rl_feedback))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(queue_stats))
        .routes(routes!(queue_clear))
        .routes(routes!(queue_retry))
        .routes(routes!(test_event))
        .routes(routes!(dead_letters))
        .routes(routes!(replay))
        .routes(routes!(discard))
        .routes(routes!(create_case, list_cases))
        .routes(routes!(escalate_by_body))
        .routes(routes!(get_case, update_case))
        .routes(routes!(assign_case))
        .routes(routes!(escalate_case))
        .routes(routes!(close_case))
        .routes(routes!(reopen_case))
        .routes(routes!(case_timeline))
        .routes(routes!(verify_case))
        .routes(routes!(anchoring))
        .routes(routes!(crate::users::setup_status, crate::users::set_up))
        .routes(routes!(crate::users::me))
        .routes(routes!(crate::users::change_password))
        .routes(routes!(crate::users::list_users, crate::users::create_user))
        .routes(routes!(crate::users::update_user))
        .routes(routes!(crate::users::reset_password))
        .routes(routes!(
            crate::users::get_settings,
            crate::users::put_settings
        ))
        .routes(routes!(crate::updates::updates))
        .routes(routes!(crate::updates::check))
        .routes(routes!(crate::updates::install))
        .routes(routes!(crate::users::sync))
        .routes(routes!(crate::users::queued_events))
        .routes(routes!(crate::users::event_document))
        .routes(routes!(crate::local::add_local_evidence))
        .routes(routes!(crate::local::save_evidence))
        .routes(routes!(crate::metrics::metrics))
        .routes(routes!(crate::openapi::document))
}

/// Now, as the envelope's `timestamp`.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Runs blocking domain work (password hashing, durable commits) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(error = %e, "a request's work panicked");
            Err(ApiError::with_code(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "the server failed; nothing is known to have changed",
            ))
        }
    }
}

/// The token of an `Authorization: Bearer …` header; the scheme's name is case-insensitive
/// (RFC 7235), the token is not.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim_start();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Who is asking and from where, taken from every request: the bearer token (the only source of
/// a role) and the details a refusal event records.
pub(crate) struct Ctx {
    info: RequestInfo,
    token: Option<String>,
    /// The token's user, when a middleware already looked it up for this request.
    known: Option<User>,
}

impl Ctx {
    /// Where the request came from.
    pub(crate) fn info(&self) -> &RequestInfo {
        &self.info
    }

    /// The bearer token sent, if any.
    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Ctx, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip().to_string());
        Ok(Ctx {
            info: RequestInfo {
                ip_address: peer,
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                role_header_sent: parts.headers.contains_key("x-user-role"),
            },
            token: bearer(&parts.headers),
            known: parts.extensions.get::<User>().cloned(),
        })
    }
}

/// The caller, if their token holds `permission`; otherwise 401 or 403, and the refusal is
/// recorded as a `user.unauthorized_access` event.
pub(crate) async fn require(
    state: &Arc<ServerState>,
    ctx: &Ctx,
    permission: Permission,
) -> Result<User, ApiError> {
    // Authenticated already (by the Idempotency-Key middleware) and permitted: no second look-up.
    if let Some(user) = ctx.known.as_ref().filter(|u| u.role.permits(permission)) {
        return Ok(user.clone());
    }
    let (token, info) = (ctx.token.clone(), ctx.info.clone());
    let auth = state.auth.clone();
    blocking(move || match auth.authorize(token.as_deref(), permission) {
        Ok(user) => Ok(user),
        Err(refusal @ (CoreError::Unauthenticated | CoreError::Forbidden { .. })) => {
            let user = match &refusal {
                CoreError::Forbidden { .. } => {
                    token.as_deref().and_then(|t| auth.authenticate(t).ok())
                }
                _ => None,
            };
            auth.record_refusal(&info, user.as_ref(), &refusal.to_string())?;
            Err(refusal)
        }
        Err(other) => Err(other),
    })
    .await
}

/// Alive.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        timestamp: now(),
    })
}

/// Ready: the database answers and, when a relay was configured, it is running. Without
/// `KAFKA_BROKERS` there is no relay and events wait in the queue: still ready.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, body = Readiness, description = "Ready"),
    (status = 503, body = Readiness, description = "The database cannot be read, or the relay stopped"),
))]
async fn readyz(State(state): St) -> Response {
    match state.outbox.stats(Page::first(0)) {
        Ok(stats) => {
            // The app's relay comes and goes with the settings: asked now, not copied at start.
            let status = state.app.as_ref().map(|app| app.relay_status());
            let configured = status
                .as_ref()
                .map_or(state.relay_configured, |status| status.running);
            let refused = status.and_then(|status| status.refused);
            let relay = match (configured, stats.kafka_available, refused) {
                (false, _, _) => "not configured".to_owned(),
                (true, true, Some(why)) => format!("refused: {why}"),
                (true, true, None) => "running".to_owned(),
                (true, false, _) => "not running".to_owned(),
            };
            // A relay the cluster refuses cannot deliver until an admin corrects the settings.
            let ready = relay == "running" || relay == "not configured";
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let body = Readiness {
                status: if ready { "ready" } else { "not ready" }.into(),
                database: "open".into(),
                relay: Some(relay),
                timestamp: now(),
            };
            (status, Json(body)).into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: "not ready".into(),
                database: e.to_string(),
                relay: None,
                timestamp: now(),
            }),
        )
            .into_response(),
    }
}

/// A login.
#[derive(Deserialize, ToSchema)]
struct Credentials {
    username: String,
    password: String,
}

/// Logs in: a bearer token for 12 hours (`user.login`).
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = Credentials,
    responses((status = 200, body = LoginResponse)))]
async fn login(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<Credentials>, JsonRejection>,
) -> Result<Json<LoginResponse>, ApiError> {
    let Json(credentials) = body?;
    let info = ctx.info;
    let auth = state.auth.clone();
    let session =
        blocking(move || auth.login(&credentials.username, &credentials.password, &info)).await?;
    Ok(LoginResponse::new(
        session.token,
        session
            .expires_at
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        session.user,
    ))
}

/// Logs out: the token stops working.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", responses((status = 200, body = DoneResponse)))]
async fn logout(State(state): St, ctx: Ctx) -> Result<Json<DoneResponse>, ApiError> {
    // Every role may log out; a missing or bad token is refused and recorded like anywhere.
    require(&state, &ctx, Permission::Investigate).await?;
    let token = ctx
        .token
        .ok_or_else(|| ApiError::from(CoreError::Unauthenticated))?;
    let auth = state.auth.clone();
    blocking(move || auth.logout(&token)).await?;
    Ok(DoneResponse::new("Logged out".into()))
}

/// A page of a list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// At most this many (default 50, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<usize>,
    /// After this order key (the previous page's `nextCursor`).
    after: Option<i64>,
}

impl PageQuery {
    fn page(&self) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if limit > 1_000 {
            return Err(ApiError::invalid("limit must be at most 1000"));
        }
        Ok(Page {
            after: self.after,
            limit,
        })
    }
}

/// The guide's queue statistics (`view-logs`).
#[utoipa::path(get, path = "/api/queue/stats", tag = "queue", params(PageQuery),
    responses((status = 200, body = StatsResponse)))]
async fn queue_stats(
    State(state): St,
    ctx: Ctx,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<StatsResponse>, ApiError> {
    require(&state, &ctx, Permission::ViewLogs).await?;
    let stats = state.outbox.stats(query?.page()?)?;
    Ok(StatsResponse::new(stats))
}

/// Drops every queued event (`system-config`); audited, with a critical `system.alert`.
#[utoipa::path(post, path = "/api/queue/clear", tag = "queue", responses((status = 200, body = ClearResponse)))]
async fn queue_clear(State(state): St, ctx: Ctx) -> Result<Json<ClearResponse>, ApiError> {
    let user = require(&state, &ctx, Permission::SystemConfig).await?;
    let (cases, ip) = (state.cases.clone(), ctx.info.ip_address.clone());
    let cleared = blocking(move || cases.clear_queue(user.username, ip)).await?;
    Ok(ClearResponse::new(
        "Queue cleared successfully".into(),
        cleared,
    ))
}

/// Makes every event waiting out a retry delay due now (`view-logs`).
#[utoipa::path(post, path = "/api/queue/retry", tag = "queue", responses((status = 200, body = RetryResponse)))]
async fn queue_retry(State(state): St, ctx: Ctx) -> Result<Json<RetryResponse>, ApiError> {
    let user = require(&state, &ctx, Permission::ViewLogs).await?;
    let retried = state.outbox.retry_now(user.username).await?;
    Ok(RetryResponse::new(
        "Queued events are due now; the relay retries them when a broker is reachable".into(),
        retried,
    ))
}

/// The guide's test event.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TestEvent {
    /// One of the 20 event types, e.g. `system.info`.
    #[schema(
        pattern = r"^(evidence\.(uploaded|verified|anchored|downloaded|deleted)|case\.(created|updated|assigned|escalated|closed)|rl\.(prediction\.made|feedback\.received|model\.updated)|user\.(login|unauthorized_access|created|updated)|system\.(alert|error|info))$"
    )]
    event_type: String,
    /// The event's data: must hold the type's required fields.
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    data: Map<String, Value>,
}

/// Queues a test event (`system-config`).
#[utoipa::path(post, path = "/api/queue/test-event", tag = "queue", request_body = TestEvent,
    responses((status = 202, body = TestEventResponse)))]
async fn test_event(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<TestEvent>, JsonRejection>,
) -> Result<(StatusCode, Json<TestEventResponse>), ApiError> {
    let user = require(&state, &ctx, Permission::SystemConfig).await?;
    let info = ctx.info;
    let Json(request) = body?;
    let event_type: EventType = request
        .event_type
        .parse()
        .map_err(|e: casewire_events::EventError| ApiError::invalid(e.to_string()))?;
    let event = Event::new(
        event_type,
        request.data,
        Metadata {
            source: Some(casewire_core::SOURCE.into()),
            user_id: Some(user.username),
            ip_address: info.ip_address,
            ..Metadata::default()
        },
        chrono::Utc::now(),
        &mut rand::rng(),
    );
    state.outbox.enqueue(&event).await?;
    tracing::info!(event_id = %event.event_id, "test event queued");
    Ok((
        StatusCode::ACCEPTED,
        TestEventResponse::new(
            "Test event queued; the relay publishes it when a broker is reachable".into(),
            event.event_id.to_string(),
        ),
    ))
}

/// A page of dead letters (`view-logs`).
#[utoipa::path(get, path = "/api/queue/dead-letters", tag = "queue", params(PageQuery),
    responses((status = 200, body = DeadLettersResponse)))]
async fn dead_letters(
    State(state): St,
    ctx: Ctx,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<DeadLettersResponse>, ApiError> {
    require(&state, &ctx, Permission::ViewLogs).await?;
    let letters = state.outbox.dead_letters(query?.page()?)?;
    Ok(DeadLettersResponse::new(letters))
}

/// Dead letters to act on.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EventIds {
    /// 1 to 1000 event ids.
    event_ids: Vec<String>,
}

impl EventIds {
    fn checked(self) -> Result<Vec<String>, ApiError> {
        if self.event_ids.is_empty() || self.event_ids.len() > 1_000 {
            return Err(ApiError::invalid("eventIds must list 1 to 1000 event ids"));
        }
        Ok(self.event_ids)
    }
}

/// Puts dead letters back in the queue, in their original order (`view-logs`).
#[utoipa::path(post, path = "/api/queue/dead-letters/replay", tag = "queue", request_body = EventIds,
    responses((status = 200, body = ReplayResponse)))]
async fn replay(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<EventIds>, JsonRejection>,
) -> Result<Json<ReplayResponse>, ApiError> {
    let user = require(&state, &ctx, Permission::ViewLogs).await?;
    let ids = body?.0.checked()?;
    let replayed = state.outbox.replay(ids, user.username).await?;
    Ok(ReplayResponse::new(replayed))
}

/// Deletes dead letters for good, audited (`system-config`).
#[utoipa::path(post, path = "/api/queue/dead-letters/discard", tag = "queue", request_body = EventIds,
    responses((status = 200, body = DiscardResponse)))]
async fn discard(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<EventIds>, JsonRejection>,
) -> Result<Json<DiscardResponse>, ApiError> {
    let user = require(&state, &ctx, Permission::SystemConfig).await?;
    let ids = body?.0.checked()?;
    let discarded = state.outbox.discard(ids, user.username).await?;
    Ok(DiscardResponse::new(discarded))
}

/// Who is asking, and whether they may: the common prologue of the case handlers.
struct Caller {
    user: User,
    info: RequestInfo,
}

async fn caller(
    state: &Arc<ServerState>,
    ctx: Ctx,
    permission: Permission,
) -> Result<Caller, ApiError> {
    let user = require(state, &ctx, permission).await?;
    Ok(Caller {
        user,
        info: ctx.info,
    })
}

/// The case `c` may see, or the 404 of a missing case; one that exists but is not theirs is
/// also recorded as a refusal (`user.unauthorized_access`).
async fn case_for(
    state: &Arc<ServerState>,
    c: &Caller,
    case_id: String,
) -> Result<casewire_core::Case, ApiError> {
    let (cases, auth) = (state.cases.clone(), state.auth.clone());
    let (user, info) = (c.user.clone(), c.info.clone());
    blocking(move || match cases.visible(&case_id, &user) {
        Err(CoreError::Hidden(what)) => {
            auth.record_refusal(
                &info,
                Some(&user),
                &format!("{what} is not this investigator's"),
            )?;
            Err(CoreError::Hidden(what))
        }
        other => other,
    })
    .await
}

/// The evidence record `c` may see: that of a case they may see ([`case_for`]).
async fn evidence_for(
    state: &Arc<ServerState>,
    c: &Caller,
    evidence_id: String,
) -> Result<casewire_core::Evidence, ApiError> {
    let store = state.evidence.clone();
    let evidence = blocking(move || store.get(&evidence_id)).await?;
    if !casewire_core::cases::sees_every_case(&c.user) {
        case_for(state, c, evidence.case_id.clone()).await?;
    }
    Ok(evidence)
}

/// [`evidence_for`], for routes outside this file.
pub(crate) async fn visible_evidence(
    state: &Arc<ServerState>,
    user: &User,
    info: &RequestInfo,
    evidence_id: String,
) -> Result<casewire_core::Evidence, ApiError> {
    let c = Caller {
        user: user.clone(),
        info: info.clone(),
    };
    evidence_for(state, &c, evidence_id).await
}

/// A case id in a path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct CaseId {
    /// `CASE-YYYY-NNN`.
    id: String,
}

/// An evidence id in a path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct EvidenceId {
    /// 24 hex digits.
    id: String,
}

/// A new case.
#[derive(Deserialize, ToSchema)]
struct NewCase {
    /// What it is about.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    title: String,
    /// More detail.
    #[serde(default)]
    description: String,
}

/// Opens a case (`case.created`).
#[utoipa::path(post, path = "/api/cases", tag = "cases", request_body = NewCase,
    responses((status = 201, body = CaseResponse)))]
async fn create_case(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<NewCase>, JsonRejection>,
) -> Result<(StatusCode, Json<CaseResponse>), ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    let Json(new) = body?;
    let cases = state.cases.clone();
    let case =
        blocking(move || cases.create(&new.title, &new.description, &c.user, &c.info)).await?;
    Ok((StatusCode::CREATED, CaseResponse::new(case)))
}

/// Which cases.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CaseQuery {
    /// Only cases in this state.
    status: Option<CaseStatus>,
    /// Only cases whose id, title, description, creator or assignee contain this text.
    search: Option<String>,
    /// At most this many (default 50, 1 to 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// After this position (the previous page's `nextCursor`).
    after: Option<String>,
}

/// Lists cases, newest first, a page at a time.
#[utoipa::path(get, path = "/api/cases", tag = "cases", params(CaseQuery),
    responses((status = 200, body = CasesResponse)))]
async fn list_cases(
    State(state): St,
    ctx: Ctx,
    query: Result<Query<CaseQuery>, QueryRejection>,
) -> Result<Json<CasesResponse>, ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    let Query(CaseQuery {
        status,
        search,
        limit,
        after,
    }) = query?;
    let cases = state.cases.clone();
    let filter = casewire_core::CaseFilter { status, search };
    let page = casewire_core::ListPage { after, limit };
    let listed = blocking(move || cases.list(&filter, &c.user, &page)).await?;
    Ok(CasesResponse::new(listed.items, listed.next_cursor))
}

/// One case.
#[utoipa::path(get, path = "/api/cases/{id}", tag = "cases", params(CaseId),
    responses((status = 200, body = CaseResponse)))]
async fn get_case(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<CaseResponse>, ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    Ok(CaseResponse::new(case_for(&state, &c, id).await?))
}

/// Changes to a case; absent fields stay.
#[derive(Deserialize, ToSchema)]
struct CaseChanges {
    /// A new title.
    title: Option<String>,
    /// A new description.
    description: Option<String>,
}

/// Updates a case (`case.updated`).
#[utoipa::path(patch, path = "/api/cases/{id}", tag = "cases", params(CaseId), request_body = CaseChanges,
    responses((status = 200, body = CaseResponse)))]
async fn update_case(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<Json<CaseChanges>, JsonRejection>,
) -> Result<Json<CaseResponse>, ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    let Json(changes) = body?;
    case_for(&state, &c, id.clone()).await?;
    let cases = state.cases.clone();
    let case = blocking(move || {
        cases.update(
            &id,
            changes.title.as_deref(),
            changes.description.as_deref(),
            &c.user,
            &c.info,
        )
    })
    .await?;
    Ok(CaseResponse::new(case))
}

/// Who takes a case.
#[derive(Deserialize, ToSchema)]
struct Assignment {
    /// The investigator's username.
    #[schema(min_length = 1, pattern = r"\S")]
    assignee: String,
}

/// Assigns a case to an investigator (`case.assigned`).
#[utoipa::path(post, path = "/api/cases/{id}/assign", tag = "cases", params(CaseId), request_body = Assignment,
    responses((status = 200, body = CaseResponse)))]
async fn assign_case(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<Json<Assignment>, JsonRejection>,
) -> Result<Json<CaseResponse>, ApiError> {
    let c = caller(&state, ctx, Permission::Analyse).await?;
    let Json(assignment) = body?;
    let cases = state.cases.clone();
    let case = blocking(move || cases.assign(&id, &assignment.assignee, &c.user, &c.info)).await?;
    Ok(CaseResponse::new(case))
}

/// An escalation to the authorities.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Escalation {
    /// The case (required by `POST /api/cases/escalate`, ignored when the path names it).
    case_id: Option<String>,
    /// To whom.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    authority: String,
    /// Why.
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    reason: String,
}

async fn escalate(
    state: Arc<ServerState>,
    c: Caller,
    id: String,
    escalation: Escalation,
) -> Result<Json<CaseResponse>, ApiError> {
    let cases = state.cases.clone();
    let case = blocking(move || {
        cases.escalate(
            &id,
            &escalation.authority,
            &escalation.reason,
            &c.user,
            &c.info,
        )
    })
    .await?;
    Ok(CaseResponse::new(case))
}

/// Escalates a case to the authorities (`case.escalated`, critical).
#[utoipa::path(post, path = "/api/cases/{id}/escalate", tag = "cases", params(CaseId), request_body = Escalation,
    responses((status = 200, body = CaseResponse)))]
async fn escalate_case(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<Json<Escalation>, JsonRejection>,
) -> Result<Json<CaseResponse>, ApiError> {
    let c = caller(&state, ctx, Permission::Analyse).await?;
    let Json(escalation) = body?;
    escalate(state, c, id, escalation).await
}

/// The guide's escalation, with the case in the body (`case.escalated`, critical).
#[utoipa::path(post, path = "/api/cases/escalate", tag = "cases", request_body = Escalation,
    responses((status = 200, body = CaseResponse)))]
async fn escalate_by_body(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<Escalation>, JsonRejection>,
) -> Result<Json<CaseResponse>, ApiError> {
    let c = caller(&state, ctx, Permission::Analyse).await?;
    let Json(escalation) = body?;
    let id = escalation
        .case_id
        .clone()
        .ok_or_else(|| ApiError::invalid("caseId is required"))?;
    escalate(state, c, id, escalation).await
}

/// How a case ended.
#[derive(Deserialize, ToSchema)]
struct Closing {
    /// The resolution.
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    resolution: String,
}

/// Closes a case (`case.closed`).
#[utoipa::path(post, path = "/api/cases/{id}/close", tag = "cases", params(CaseId), request_body = Closing,
    responses((status = 200, body = CaseResponse)))]
async fn close_case(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<Json<Closing>, JsonRejection>,
) -> Result<Json<CaseResponse>, ApiError> {
    let c = caller(&state, ctx, Permission::Analyse).await?;
    let Json(closing) = body?;
    let cases = state.cases.clone();
    let case = blocking(move || cases.close(&id, &closing.resolution, &c.user, &c.info)).await?;
    Ok(CaseResponse::new(case))
}

/// Opens a closed case again (`case.updated`), so evidence and changes can be added to it.
#[utoipa::path(post, path = "/api/cases/{id}/reopen", tag = "cases", params(CaseId),
    responses((status = 200, body = CaseResponse)))]
async fn reopen_case(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<CaseResponse>, ApiError> {
    let c = caller(&state, ctx, Permission::Analyse).await?;
    let cases = state.cases.clone();
    let case = blocking(move || cases.reopen(&id, &c.user, &c.info)).await?;
    Ok(CaseResponse::new(case))
}

/// A case's events, kept after Kafka has them.
#[utoipa::path(get, path = "/api/cases/{id}/timeline", tag = "cases", params(CaseId),
    responses((status = 200, body = TimelineResponse)))]
async fn case_timeline(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<TimelineResponse>, ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    case_for(&state, &c, id.clone()).await?;
    let cases = state.cases.clone();
    let timeline = blocking(move || cases.timeline(&id)).await?;
    Ok(TimelineResponse::new(timeline))
}

/// Recomputes the hash chain of a case's timeline and names anything edited, deleted, inserted
/// or moved in the database outside Casewire, compares it with the head last anchored on
/// chain and asks the chain whether that head is there; a tampered timeline raises a critical
/// `system.alert`.
#[utoipa::path(post, path = "/api/cases/{id}/verify", tag = "cases", params(CaseId),
    responses((status = 200, body = TimelineCheckResponse)))]
async fn verify_case(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<TimelineCheckResponse>, ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    case_for(&state, &c, id.clone()).await?;
    let cases = state.cases.clone();
    let mut check = blocking(move || cases.check_timeline(&id)).await?;
    let chain = match &state.app {
        Some(app) => app.chain()?,
        None => None,
    };
    casewire_core::confirm_anchored_head(&mut check, chain.as_ref()).await;
    let cases = state.cases.clone();
    let check =
        blocking(move || cases.record_check(&check, &c.user, &c.info).map(|()| check)).await?;
    Ok(TimelineCheckResponse::new(check))
}

/// A `Read` over chunks arriving on a channel: lets the blocking evidence store consume an
/// upload while the async side receives it, without holding the whole file.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<axum::body::Bytes>,
    current: axum::body::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    // A body cut at the upload limit is a file too large, wherever in the form it was cut.
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return crate::oversize::too_large();
    }
    ApiError::invalid(format!(
        "the upload is not a valid multipart form: {}",
        e.body_text()
    ))
}

/// Reads the upload form: the file into the store (`stored`), the other fields into `meta`.
async fn read_upload(
    state: &Arc<ServerState>,
    multipart: &mut axum::extract::Multipart,
    meta: &mut casewire_core::NewEvidence,
    stored: &mut Option<casewire_core::Stored>,
) -> Result<(), ApiError> {
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name().unwrap_or("") {
            "evidenceFile" => {
                if stored.is_some() {
                    return Err(ApiError::invalid("one evidenceFile per upload"));
                }
                meta.filename = field.file_name().unwrap_or("").to_owned();
                meta.content_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_owned();
                let (tx, rx) = tokio::sync::mpsc::channel(16);
                let store = state.evidence.clone();
                let writer = tokio::task::spawn_blocking(move || {
                    store.store_content(ChannelReader {
                        rx,
                        current: axum::body::Bytes::new(),
                    })
                });
                let mut received = Ok(());
                loop {
                    match field.chunk().await {
                        Ok(Some(chunk)) => {
                            // The store stops reading when the file is too large.
                            if tx.send(chunk).await.is_err() {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            received = Err(multipart_error(e));
                            break;
                        }
                    }
                }
                drop(tx);
                let result = writer
                    .await
                    .map_err(|e| ApiError::invalid(format!("upload aborted: {e}")))?;
                let content = result.map_err(ApiError::from)?;
                if let Err(e) = received {
                    let store = state.evidence.clone();
                    let _ = blocking(move || store.forget(&content)).await;
                    return Err(e);
                }
                *stored = Some(content);
            }
            name @ ("caseId" | "wallet" | "reporter" | "riskLevel") => {
                let name = name.to_owned();
                let text = field.text().await.map_err(multipart_error)?;
                match name.as_str() {
                    "caseId" => meta.case_id = text,
                    "wallet" => meta.wallet = text,
                    "reporter" => meta.reporter = text,
                    _ => meta.risk_level = Some(text).filter(|t| !t.is_empty()),
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The guide's upload form.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
struct UploadForm {
    /// The file, streamed and hashed; not empty, not over the limit.
    #[schema(value_type = String, format = Binary)]
    evidence_file: Vec<u8>,
    /// The case it belongs to.
    #[schema(min_length = 1, pattern = r"\S")]
    case_id: String,
    /// The wallet it concerns: `0x` and 40 hex digits (EIP-55 checked when mixed case).
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    wallet: String,
    /// Who reported it.
    #[schema(min_length = 1, pattern = r"\S")]
    reporter: String,
    /// `low`, `medium`, `high` or `critical`.
    #[schema(pattern = "^(low|medium|high|critical)$")]
    risk_level: Option<String>,
}

/// Uploads evidence (`evidence.uploaded`).
#[utoipa::path(post, path = "/api/evidence/upload", tag = "evidence",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = EvidenceResponse)))]
async fn upload_evidence(
    State(state): St,
    ctx: Ctx,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<EvidenceResponse>), ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    let mut multipart = multipart.map_err(|e| {
        ApiError::invalid(format!(
            "expected a multipart/form-data upload: {}",
            e.body_text()
        ))
    })?;
    let mut meta = casewire_core::NewEvidence::default();
    let mut stored = None;
    let read = read_upload(&state, &mut multipart, &mut meta, &mut stored).await;
    if let Err(e) = read {
        // Content stored before the form turned out bad is let go.
        if let Some(content) = stored {
            let store = state.evidence.clone();
            let _ = blocking(move || store.forget(&content)).await;
        }
        return Err(e);
    }
    let stored = stored.ok_or_else(|| ApiError::invalid("evidenceFile is required"))?;
    let store = state.evidence.clone();
    let evidence = blocking(
        move || match store.record(meta, stored.clone(), &c.user, &c.info) {
            Ok(evidence) => Ok(evidence),
            Err(e) => {
                store.forget(&stored)?;
                Err(e)
            }
        },
    )
    .await?;
    Ok((StatusCode::CREATED, EvidenceResponse::new(evidence)))
}

/// Which evidence.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
struct EvidenceQuery {
    /// Of this case.
    case_id: Option<String>,
    /// About this wallet.
    wallet: Option<String>,
    /// At most this many (default 50, 1 to 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// After this position (the previous page's `nextCursor`).
    after: Option<String>,
}

/// Lists evidence records, deleted ones included (their hash stays), newest first, a page at
/// a time.
#[utoipa::path(get, path = "/api/evidence", tag = "evidence", params(EvidenceQuery),
    responses((status = 200, body = EvidenceListResponse)))]
async fn list_evidence(
    State(state): St,
    ctx: Ctx,
    query: Result<Query<EvidenceQuery>, QueryRejection>,
) -> Result<Json<EvidenceListResponse>, ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    let Query(EvidenceQuery {
        case_id,
        wallet,
        limit,
        after,
    }) = query?;
    let store = state.evidence.clone();
    let filter = casewire_core::EvidenceFilter { case_id, wallet };
    let page = casewire_core::ListPage { after, limit };
    let listed = blocking(move || store.list(&filter, &c.user, &page)).await?;
    Ok(EvidenceListResponse::new(listed.items, listed.next_cursor))
}

/// One evidence record.
#[utoipa::path(get, path = "/api/evidence/{id}", tag = "evidence", params(EvidenceId),
    responses((status = 200, body = EvidenceResponse)))]
async fn get_evidence(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<EvidenceResponse>, ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    Ok(EvidenceResponse::new(evidence_for(&state, &c, id).await?))
}

/// A `Content-Disposition` that keeps the original file name: an ASCII fallback for old
/// clients, and the exact name in UTF-8 (RFC 6266 / RFC 5987).
fn disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// The type a download is served as: the uploader's claim, except for types a browser would
/// run (HTML, SVG, XML, scripts), served as plain bytes.
fn served_type(claimed: &str) -> &str {
    let essence = claimed
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let active = matches!(
        essence.as_str(),
        "text/html"
            | "application/xhtml+xml"
            | "image/svg+xml"
            | "text/xml"
            | "application/xml"
            | "text/javascript"
            | "application/javascript"
            | "application/ecmascript"
            | "text/ecmascript"
    ) || essence.ends_with("+xml");
    if active || essence.is_empty() {
        "application/octet-stream"
    } else {
        claimed
    }
}

/// The stored file's bytes, hashed as they go; the last chunk is held back until the whole
/// file's hash has been checked (`check`), so a file changed on disk is never served whole:
/// on a mismatch the body ends with an error instead (the connection is cut).
fn verified_stream(
    content: Box<dyn std::io::Read + Send>,
    check: impl FnOnce(String) -> Result<(), CoreError> + Send + 'static,
) -> impl futures_util::Stream<Item = std::io::Result<axum::body::Bytes>> + Send + 'static {
    use futures_util::StreamExt;
    use sha2::{Digest, Sha256};
    type Chunks = std::pin::Pin<
        Box<dyn futures_util::Stream<Item = std::io::Result<axum::body::Bytes>> + Send>,
    >;
    struct Held<C> {
        chunks: Chunks,
        hasher: Sha256,
        last: Option<axum::body::Bytes>,
        check: Option<C>,
    }
    let held = Held {
        chunks: Box::pin(read_chunks(content)),
        hasher: Sha256::new(),
        last: None,
        check: Some(check),
    };
    futures_util::stream::unfold(Some(held), |state| async move {
        let mut held = state?;
        loop {
            match held.chunks.next().await {
                Some(Ok(chunk)) => {
                    held.hasher.update(&chunk);
                    if let Some(previous) = held.last.replace(chunk) {
                        return Some((Ok(previous), Some(held)));
                    }
                }
                Some(Err(e)) => {
                    // Sealed content that fails its authentication was changed: raise the
                    // alarm as a hash mismatch does.
                    if e.kind() == std::io::ErrorKind::InvalidData
                        && let Some(check) = held.check.take()
                    {
                        let _ = tokio::task::spawn_blocking(move || check(String::new())).await;
                    }
                    return Some((Err(e), None));
                }
                None => {
                    let actual = hex::encode(held.hasher.clone().finalize());
                    let check = held.check.take()?;
                    let checked = tokio::task::spawn_blocking(move || check(actual)).await;
                    return match (checked, held.last.take()) {
                        (Ok(Ok(())), Some(last)) => Some((Ok(last), None)),
                        (Ok(Ok(())), None) => None,
                        (Ok(Err(e)), _) => Some((Err(std::io::Error::other(e.to_string())), None)),
                        (Err(e), _) => Some((Err(std::io::Error::other(e)), None)),
                    };
                }
            }
        }
    })
}

/// A blocking reader's bytes (a stored file, decrypted when sealed) as a stream, each read on
/// the blocking pool.
fn read_chunks(
    reader: Box<dyn std::io::Read + Send>,
) -> impl futures_util::Stream<Item = std::io::Result<axum::body::Bytes>> + Send + 'static {
    futures_util::stream::unfold(Some(reader), |state| async move {
        let mut reader = state?;
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let n = reader.read(&mut buf);
            (reader, buf, n)
        })
        .await;
        match read {
            Ok((reader, mut buf, Ok(n))) if n > 0 => {
                buf.truncate(n);
                Some((Ok(axum::body::Bytes::from(buf)), Some(reader)))
            }
            Ok((_, _, Ok(_))) => None,
            Ok((_, _, Err(e))) => Some((Err(e), None)),
            Err(e) => Some((Err(std::io::Error::other(e)), None)),
        }
    })
}

/// Streams the file with its original name and type (`evidence.downloaded`), checking its
/// hash as it goes.
#[utoipa::path(get, path = "/api/evidence/{id}/download", tag = "evidence", params(EvidenceId),
    responses((status = 200, content_type = "*/*", body = Vec<u8>, description = "The file")))]
async fn download_evidence(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    evidence_for(&state, &c, id.clone()).await?;
    let store = state.evidence.clone();
    let (evidence, file) = {
        let (user, info) = (c.user.clone(), c.info.clone());
        blocking(move || store.open_download(&id, &user, &info)).await?
    };
    let store = state.evidence.clone();
    let served = evidence.clone();
    let check = move |actual: String| store.check_served(&served, &actual, &c.user, &c.info);
    let body = axum::body::Body::from_stream(verified_stream(file, check));
    let response_headers = [
        (
            header::CONTENT_TYPE,
            served_type(&evidence.content_type).to_owned(),
        ),
        (header::CONTENT_DISPOSITION, disposition(&evidence.filename)),
        (header::CONTENT_LENGTH, evidence.file_size.to_string()),
        // Whatever the file holds, a browser that opens it runs nothing of it.
        (header::CONTENT_SECURITY_POLICY, "sandbox".to_owned()),
    ];
    Ok((response_headers, body).into_response())
}

/// Recomputes the file's hash (`evidence.verified`; a critical `system.alert` on mismatch).
#[utoipa::path(post, path = "/api/evidence/{id}/verify", tag = "evidence", params(EvidenceId),
    responses((status = 200, body = VerificationResponse)))]
async fn verify_evidence(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<VerificationResponse>, ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    evidence_for(&state, &c, id.clone()).await?;
    let store = state.evidence.clone();
    let verification = blocking(move || store.verify(&id, &c.user, &c.info)).await?;
    Ok(VerificationResponse::new(verification))
}

/// Deletes the file; the record and hash stay (`evidence.deleted`, critical; `delete-evidence`).
#[utoipa::path(delete, path = "/api/evidence/{id}", tag = "evidence", params(EvidenceId),
    responses((status = 200, body = DoneResponse)))]
async fn delete_evidence(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<DoneResponse>, ApiError> {
    let c = caller(&state, ctx, Permission::DeleteEvidence).await?;
    let store = state.evidence.clone();
    blocking(move || store.delete(&id, &c.user, &c.info)).await?;
    Ok(DoneResponse::new(
        "Evidence deleted; its record and hash are kept".into(),
    ))
}

/// The receipt of the transaction that wrote the file's hash on chain.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AnchorReceipt {
    /// `0x` and 64 hex digits.
    #[schema(pattern = "^0x[0-9a-fA-F]{64}$")]
    tx_hash: String,
    /// The block that holds it.
    #[schema(minimum = 1)]
    block_number: u64,
    /// The anchoring contract: `0x` and 40 hex digits (EIP-55 checked when mixed case).
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    contract_address: String,
}

/// Anchors the file on chain. With no body (or `{}`), asks Casewire to anchor it itself: the
/// request commits with its event and waits for the chain (202, `AnchorRequestResponse`); asked
/// again, it answers where the first stands (200). With a receipt, the transaction is checked
/// on the configured chain (it exists, is mined in that block, did not revert, went to that
/// contract and carries the file's hash) and only then recorded (`evidence.anchored`, high; 201).
#[utoipa::path(post, path = "/api/evidence/{id}/anchor", tag = "evidence", params(EvidenceId),
    request_body(content = Option<AnchorReceipt>, description = "A receipt to check and record; none to have Casewire anchor the file"),
    responses(
        (status = 201, body = AnchorResponse, description = "The receipt holds and is recorded"),
        (status = 202, body = AnchorRequestResponse, description = "Anchoring asked for; it waits for the chain"),
        (status = 200, body = AnchorRequestResponse, description = "Asked for already: where it stands"),
    ))]
async fn anchor_evidence(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let c = caller(&state, ctx, Permission::Analyse).await?;
    let body = body?;
    let receipt: Option<AnchorReceipt> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim().to_ascii_lowercase();
                v == "application/json" || v.ends_with("+json")
            });
        if !json {
            return Err(ApiError::with_code(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "a receipt must be sent as application/json (or send no body to have Casewire anchor the file)",
            ));
        }
        match std::str::from_utf8(&body).map(str::trim) {
            Ok("{}" | "null") => None,
            _ => Some(Json::<AnchorReceipt>::from_bytes(&body)?.0),
        }
    };
    let evidence = evidence_for(&state, &c, id.clone()).await?;
    let Some(receipt) = receipt else {
        let anchoring = state.anchoring.clone();
        let (status, created) = blocking(move || anchoring.request(&id, &c.user, &c.info)).await?;
        let code = if created {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        return Ok((code, AnchorRequestResponse::new(status)).into_response());
    };
    let receipt = casewire_core::NewAnchor {
        tx_hash: receipt.tx_hash,
        block_number: receipt.block_number,
        contract_address: receipt.contract_address,
    };
    casewire_core::EvidenceStore::check_receipt(&receipt)?;
    let chain = match &state.app {
        Some(app) => app.chain()?,
        None => None,
    };
    casewire_core::Anchoring::check_receipt(chain.as_ref(), &evidence.storage_hash, &receipt)
        .await?;
    let store = state.evidence.clone();
    let anchor = blocking(move || store.anchor(&id, receipt, &c.user, &c.info)).await?;
    Ok((StatusCode::CREATED, AnchorResponse::new(anchor)).into_response())
}

/// How anchoring on chain stands (`view-logs`): the chain set up, the address that pays the
/// anchoring transactions' gas and its balance, what waits and what is in flight.
#[utoipa::path(get, path = "/api/anchoring", tag = "evidence",
    responses((status = 200, body = AnchoringResponse)))]
async fn anchoring(State(state): St, ctx: Ctx) -> Result<Json<AnchoringResponse>, ApiError> {
    require(&state, &ctx, Permission::ViewLogs).await?;
    let view = match &state.app {
        Some(app) => app.anchoring_view().await?,
        None => state.anchoring.view(None, None).await?,
    };
    Ok(AnchoringResponse::new(view))
}

/// The anchors recorded for an evidence file, and where Casewire's own anchoring of it stands.
#[utoipa::path(get, path = "/api/evidence/{id}/anchor", tag = "evidence", params(EvidenceId),
    responses((status = 200, body = AnchorsResponse)))]
async fn evidence_anchors(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<AnchorsResponse>, ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    evidence_for(&state, &c, id.clone()).await?;
    let store = state.evidence.clone();
    let anchoring = state.anchoring.clone();
    let (anchors, request) =
        blocking(move || Ok::<_, CoreError>((store.anchors(&id)?, anchoring.status(&id)?))).await?;
    let chain_configured = match &state.app {
        Some(app) => app.chain()?.is_some(),
        None => false,
    };
    Ok(AnchorsResponse::new(anchors, request, chain_configured))
}

/// The file's anchor proof (`casewire-anchor-proof/1`), once Casewire anchored it: the leaf
/// salt, the Merkle path, the root, and where the root is on chain. Anyone can check it with
/// `casewire verify-proof` and a JSON-RPC endpoint.
#[utoipa::path(get, path = "/api/evidence/{id}/anchor/proof", tag = "evidence", params(EvidenceId),
    responses((status = 200, body = Object, description = "The proof document")))]
async fn anchor_proof(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    evidence_for(&state, &c, id.clone()).await?;
    let anchoring = state.anchoring.clone();
    let (proof, status) =
        blocking(move || Ok::<_, CoreError>((anchoring.proof(&id)?, anchoring.status(&id)?)))
            .await?;
    match (proof, status) {
        (Some(proof), _) => {
            let name = format!("anchor-proof-{}.json", proof.evidence_id);
            Ok((
                [(
                    axum::http::header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                )],
                Json(proof),
            )
                .into_response())
        }
        (None, Some(status)) => Err(CoreError::NotFound(format!(
            "a proof: the anchoring is {:?} and a proof exists once it is anchored",
            status.state
        ))
        .into()),
        (None, None) => Err(CoreError::NotFound(
            "a proof: this file was not anchored by Casewire (ask for it with POST on its /anchor)"
                .into(),
        )
        .into()),
    }
}

/// What to predict for.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PredictRequest {
    /// The wallet: `0x` and 40 hex digits (EIP-55 checked when mixed case).
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    wallet: String,
    /// The evidence that prompted it.
    evidence_id: Option<String>,
    /// The case.
    case_id: Option<String>,
}

/// Recommends an action for a wallet (`rl.prediction.made`: high for freeze, else medium).
#[utoipa::path(post, path = "/api/rl/predict", tag = "rl", request_body = PredictRequest,
    responses((status = 201, body = PredictionResponse)))]
async fn rl_predict(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<PredictRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<PredictionResponse>), ApiError> {
    let c = caller(&state, ctx, Permission::Analyse).await?;
    let Json(request) = body?;
    let policy = state.policy.clone();
    let request = casewire_core::PredictionRequest {
        wallet: request.wallet,
        evidence_id: request.evidence_id,
        case_id: request.case_id,
    };
    let prediction = blocking(move || policy.predict(request, &c.user, &c.info)).await?;
    Ok((StatusCode::CREATED, PredictionResponse::new(prediction)))
}

/// An analyst's judgement of a prediction.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct FeedbackRequest {
    /// The prediction judged.
    prediction_id: String,
    /// What should have been done.
    #[schema(pattern = "^(freeze|investigate|monitor|dismiss)$")]
    actual_action: String,
}

/// Judges a prediction; the policy learns from it (`rl.feedback.received`, high, and
/// `rl.model.updated`).
#[utoipa::path(post, path = "/api/rl/feedback", tag = "rl", request_body = FeedbackRequest,
    responses((status = 201, body = FeedbackResponse)))]
async fn rl_feedback(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<FeedbackRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<FeedbackResponse>), ApiError> {
    let c = caller(&state, ctx, Permission::Analyse).await?;
    let Json(request) = body?;
    let policy = state.policy.clone();
    let feedback = blocking(move || {
        policy.feedback(
            &request.prediction_id,
            &request.actual_action,
            &c.user,
            &c.info,
        )
    })
    .await?;
    Ok((StatusCode::CREATED, FeedbackResponse::new(feedback)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_is_kept_as_sent() {
        let with = |value: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(
                axum::http::header::AUTHORIZATION,
                value.parse().expect("header"),
            );
            super::bearer(&headers)
        };
        for value in ["Bearer AbC", "bearer AbC", "BEARER  AbC ", "  beaRer AbC"] {
            assert_eq!(with(value).as_deref(), Some("AbC"), "{value:?}");
        }
        for value in ["Basic AbC", "Bearer", "Bearer   ", "BearerAbC"] {
            assert_eq!(with(value), None, "{value:?}");
        }
    }

    #[test]
    fn a_download_is_served_as_its_type_unless_a_browser_would_run_it() {
        for (claimed, served) in [
            ("image/png", "image/png"),
            ("application/pdf", "application/pdf"),
            ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
            ("text/html", "application/octet-stream"),
            ("TEXT/HTML; charset=utf-8", "application/octet-stream"),
            ("image/svg+xml", "application/octet-stream"),
            ("application/xhtml+xml", "application/octet-stream"),
            ("application/rss+xml", "application/octet-stream"),
            ("text/javascript", "application/octet-stream"),
            ("", "application/octet-stream"),
        ] {
            assert_eq!(super::served_type(claimed), served, "{claimed:?}");
        }
    }

    #[test]
    fn a_download_keeps_a_non_ascii_file_name_in_utf_8() {
        assert_eq!(
            super::disposition("réçu \"1\".pdf"),
            "attachment; filename=\"r__u _1_.pdf\"; filename*=UTF-8''r%C3%A9%C3%A7u%20%221%22.pdf"
        );
    }
}
