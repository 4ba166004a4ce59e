//! The routes and their handlers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use casewire_core::{CaseStatus, CoreError, Permission, RequestInfo, User};
use casewire_events::{Event, EventType, Metadata};
use casewire_outbox::Page;
use chrono::SecondsFormat;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{ApiError, ServerState};

type St = State<Arc<ServerState>>;

pub(crate) fn routes(state: &ServerState) -> Router<Arc<ServerState>> {
    // Uploads may be as large as the evidence limit, plus room for the form's other fields.
    let upload_limit = usize::try_from(state.evidence.max_bytes())
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    Router::new()
        .route(
            "/api/evidence/upload",
            post(upload_evidence).layer(axum::extract::DefaultBodyLimit::max(upload_limit)),
        )
        .route("/api/evidence", get(list_evidence))
        .route(
            "/api/evidence/{id}",
            get(get_evidence).delete(delete_evidence),
        )
        .route("/api/evidence/{id}/download", get(download_evidence))
        .route("/api/evidence/{id}/verify", post(verify_evidence))
        .route(
            "/api/evidence/{id}/anchor",
            post(anchor_evidence).get(evidence_anchors),
        )
        .route("/api/rl/predict", post(rl_predict))
        .route("/api/rl/feedback", post(rl_feedback))
        .route("/api/queue/retry", post(queue_retry))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
        .route("/api/queue/stats", get(queue_stats))
        .route("/api/queue/clear", post(queue_clear))
        .route("/api/queue/test-event", post(test_event))
        .route("/api/queue/dead-letters", get(dead_letters))
        .route("/api/queue/dead-letters/replay", post(replay))
        .route("/api/queue/dead-letters/discard", post(discard))
        .route("/api/cases", post(create_case).get(list_cases))
        .route("/api/cases/escalate", post(escalate_by_body))
        .route("/api/cases/{id}", get(get_case).patch(update_case))
        .route("/api/cases/{id}/assign", post(assign_case))
        .route("/api/cases/{id}/escalate", post(escalate_case))
        .route("/api/cases/{id}/close", post(close_case))
        .route("/api/cases/{id}/timeline", get(case_timeline))
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
        Err(e) => Err(ApiError::from(CoreError::Invalid(format!(
            "request aborted: {e}"
        )))),
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
}

/// Who is asking and from where, taken from every request: the bearer token (the only source of
/// a role) and the details a refusal event records.
pub(crate) struct Ctx {
    info: RequestInfo,
    token: Option<String>,
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
        })
    }
}

/// The caller, if their token holds `permission`; otherwise 401 or 403, and the refusal is
/// recorded as a `user.unauthorized_access` event.
async fn require(
    state: &Arc<ServerState>,
    ctx: &Ctx,
    permission: Permission,
) -> Result<User, ApiError> {
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

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok", "timestamp": now()}))
}

async fn readyz(State(state): St) -> Response {
    match state.outbox.stats(Page::first(0)) {
        Ok(stats) => Json(json!({
            "status": "ready",
            "database": "open",
            "relay": if stats.kafka_available { "running" } else { "not running" },
            "timestamp": now(),
        }))
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "database": e.to_string(), "timestamp": now()})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

async fn login(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<Credentials>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(credentials) = body?;
    let info = ctx.info;
    let auth = state.auth.clone();
    let session =
        blocking(move || auth.login(&credentials.username, &credentials.password, &info)).await?;
    Ok(Json(json!({
        "success": true,
        "token": session.token,
        "expiresAt": session.expires_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "user": session.user,
        "timestamp": now(),
    })))
}

async fn logout(State(state): St, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let token = bearer(&headers).ok_or_else(|| ApiError::from(CoreError::Unauthenticated))?;
    let auth = state.auth.clone();
    blocking(move || auth.logout(&token)).await?;
    Ok(Json(json!({"success": true, "timestamp": now()})))
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<usize>,
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

async fn queue_stats(
    State(state): St,
    ctx: Ctx,
    query: Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    require(&state, &ctx, Permission::ViewLogs).await?;
    let stats = state.outbox.stats(query.page()?)?;
    Ok(Json(
        json!({"success": true, "queue": stats, "timestamp": now()}),
    ))
}

async fn queue_clear(State(state): St, ctx: Ctx) -> Result<Json<Value>, ApiError> {
    let user = require(&state, &ctx, Permission::SystemConfig).await?;
    let cleared = state.outbox.clear(user.username).await?;
    Ok(Json(json!({
        "success": true,
        "message": "Queue cleared successfully",
        "clearedCount": cleared,
        "timestamp": now(),
    })))
}

async fn queue_retry(State(state): St, ctx: Ctx) -> Result<Json<Value>, ApiError> {
    let user = require(&state, &ctx, Permission::ViewLogs).await?;
    let retried = state.outbox.retry_now(user.username).await?;
    Ok(Json(json!({
        "success": true,
        "message": "Queued events are due now; the relay retries them when a broker is reachable",
        "retriedCount": retried,
        "timestamp": now(),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestEvent {
    event_type: String,
    #[serde(default)]
    data: Map<String, Value>,
}

async fn test_event(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<TestEvent>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
        Json(json!({
            "success": true,
            "message": "Test event queued; the relay publishes it when a broker is reachable",
            "eventId": event.event_id,
            "timestamp": now(),
        })),
    ))
}

async fn dead_letters(
    State(state): St,
    ctx: Ctx,
    query: Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    require(&state, &ctx, Permission::ViewLogs).await?;
    let letters = state.outbox.dead_letters(query.page()?)?;
    Ok(Json(
        json!({"success": true, "deadLetters": letters, "timestamp": now()}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventIds {
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

async fn replay(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<EventIds>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let user = require(&state, &ctx, Permission::ViewLogs).await?;
    let ids = body?.0.checked()?;
    let replayed = state.outbox.replay(ids, user.username).await?;
    Ok(Json(
        json!({"success": true, "replayed": replayed, "timestamp": now()}),
    ))
}

async fn discard(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<EventIds>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let user = require(&state, &ctx, Permission::SystemConfig).await?;
    let ids = body?.0.checked()?;
    let discarded = state.outbox.discard(ids, user.username).await?;
    Ok(Json(
        json!({"success": true, "discarded": discarded, "timestamp": now()}),
    ))
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

fn case_response(status: StatusCode, case: &casewire_core::Case) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(json!({"success": true, "case": case, "timestamp": now()})),
    )
}

#[derive(Deserialize)]
struct NewCase {
    title: String,
    #[serde(default)]
    description: String,
}

async fn create_case(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<NewCase>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    let Json(new) = body?;
    let cases = state.cases.clone();
    let case =
        blocking(move || cases.create(&new.title, &new.description, &c.user, &c.info)).await?;
    Ok(case_response(StatusCode::CREATED, &case))
}

#[derive(Deserialize)]
struct CaseQuery {
    status: Option<String>,
}

async fn list_cases(
    State(state): St,
    ctx: Ctx,
    query: Query<CaseQuery>,
) -> Result<Json<Value>, ApiError> {
    caller(&state, ctx, Permission::Investigate).await?;
    let status = match query.status.as_deref() {
        None => None,
        Some("open") => Some(CaseStatus::Open),
        Some("escalated") => Some(CaseStatus::Escalated),
        Some("closed") => Some(CaseStatus::Closed),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "status {other:?} must be open, escalated or closed"
            )));
        }
    };
    let cases = state.cases.clone();
    let list = blocking(move || cases.list(status)).await?;
    Ok(Json(
        json!({"success": true, "cases": list, "timestamp": now()}),
    ))
}

async fn get_case(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller(&state, ctx, Permission::Investigate).await?;
    let cases = state.cases.clone();
    let case = blocking(move || cases.get(&id)).await?;
    Ok(case_response(StatusCode::OK, &case))
}

#[derive(Deserialize)]
struct CaseChanges {
    title: Option<String>,
    description: Option<String>,
}

async fn update_case(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<Json<CaseChanges>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    let Json(changes) = body?;
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
    Ok(case_response(StatusCode::OK, &case))
}

#[derive(Deserialize)]
struct Assignment {
    assignee: String,
}

async fn assign_case(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<Json<Assignment>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = caller(&state, ctx, Permission::Analyse).await?;
    let Json(assignment) = body?;
    let cases = state.cases.clone();
    let case = blocking(move || cases.assign(&id, &assignment.assignee, &c.user, &c.info)).await?;
    Ok(case_response(StatusCode::OK, &case))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Escalation {
    case_id: Option<String>,
    authority: String,
    reason: String,
}

async fn escalate(
    state: Arc<ServerState>,
    c: Caller,
    id: String,
    escalation: Escalation,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    Ok(case_response(StatusCode::OK, &case))
}

async fn escalate_case(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<Json<Escalation>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = caller(&state, ctx, Permission::Analyse).await?;
    let Json(escalation) = body?;
    escalate(state, c, id, escalation).await
}

/// The guide's `POST /api/cases/escalate`, with the case in the body.
async fn escalate_by_body(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<Escalation>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = caller(&state, ctx, Permission::Analyse).await?;
    let Json(escalation) = body?;
    let id = escalation
        .case_id
        .clone()
        .ok_or_else(|| ApiError::invalid("caseId is required"))?;
    escalate(state, c, id, escalation).await
}

#[derive(Deserialize)]
struct Closing {
    resolution: String,
}

async fn close_case(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<Json<Closing>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = caller(&state, ctx, Permission::Analyse).await?;
    let Json(closing) = body?;
    let cases = state.cases.clone();
    let case = blocking(move || cases.close(&id, &closing.resolution, &c.user, &c.info)).await?;
    Ok(case_response(StatusCode::OK, &case))
}

async fn case_timeline(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller(&state, ctx, Permission::Investigate).await?;
    let cases = state.cases.clone();
    let timeline = blocking(move || cases.timeline(&id)).await?;
    Ok(Json(
        json!({"success": true, "timeline": timeline, "timestamp": now()}),
    ))
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
    ApiError::invalid(format!(
        "the upload is not a valid multipart form: {}",
        e.body_text()
    ))
}

async fn upload_evidence(
    State(state): St,
    ctx: Ctx,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    let mut multipart = multipart.map_err(|e| {
        ApiError::invalid(format!(
            "expected a multipart/form-data upload: {}",
            e.body_text()
        ))
    })?;
    let mut meta = casewire_core::NewEvidence::default();
    let mut stored = None;
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
                stored = Some(content);
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
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "evidence": evidence, "timestamp": now()})),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EvidenceQuery {
    case_id: Option<String>,
    wallet: Option<String>,
}

async fn list_evidence(
    State(state): St,
    ctx: Ctx,
    query: Query<EvidenceQuery>,
) -> Result<Json<Value>, ApiError> {
    caller(&state, ctx, Permission::Investigate).await?;
    let Query(EvidenceQuery { case_id, wallet }) = query;
    let store = state.evidence.clone();
    let list = blocking(move || store.list(case_id, wallet)).await?;
    Ok(Json(
        json!({"success": true, "evidence": list, "timestamp": now()}),
    ))
}

async fn get_evidence(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller(&state, ctx, Permission::Investigate).await?;
    let store = state.evidence.clone();
    let evidence = blocking(move || store.get(&id)).await?;
    Ok(Json(
        json!({"success": true, "evidence": evidence, "timestamp": now()}),
    ))
}

/// A file name safe inside a quoted `Content-Disposition` value.
fn disposition_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

async fn download_evidence(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    let store = state.evidence.clone();
    let (evidence, file) = blocking(move || store.open_download(&id, &c.user, &c.info)).await?;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(
        tokio::fs::File::from_std(file),
    ));
    let response_headers = [
        (header::CONTENT_TYPE, evidence.content_type.clone()),
        (
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}\"",
                disposition_name(&evidence.filename)
            ),
        ),
        (header::CONTENT_LENGTH, evidence.file_size.to_string()),
    ];
    Ok((response_headers, body).into_response())
}

async fn verify_evidence(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = caller(&state, ctx, Permission::Investigate).await?;
    let store = state.evidence.clone();
    let verification = blocking(move || store.verify(&id, &c.user, &c.info)).await?;
    Ok(Json(
        json!({"success": true, "verification": verification, "timestamp": now()}),
    ))
}

async fn delete_evidence(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = caller(&state, ctx, Permission::DeleteEvidence).await?;
    let store = state.evidence.clone();
    blocking(move || store.delete(&id, &c.user, &c.info)).await?;
    Ok(Json(
        json!({"success": true, "message": "Evidence deleted; its record and hash are kept", "timestamp": now()}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnchorReceipt {
    tx_hash: String,
    block_number: u64,
    contract_address: String,
}

async fn anchor_evidence(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<Json<AnchorReceipt>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = caller(&state, ctx, Permission::Analyse).await?;
    let Json(receipt) = body?;
    let store = state.evidence.clone();
    let receipt = casewire_core::NewAnchor {
        tx_hash: receipt.tx_hash,
        block_number: receipt.block_number,
        contract_address: receipt.contract_address,
    };
    let anchor = blocking(move || store.anchor(&id, receipt, &c.user, &c.info)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "anchor": anchor, "timestamp": now()})),
    ))
}

async fn evidence_anchors(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller(&state, ctx, Permission::Investigate).await?;
    let store = state.evidence.clone();
    let anchors = blocking(move || store.anchors(&id)).await?;
    Ok(Json(
        json!({"success": true, "anchors": anchors, "timestamp": now()}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PredictRequest {
    wallet: String,
    evidence_id: Option<String>,
    case_id: Option<String>,
}

async fn rl_predict(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<PredictRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = caller(&state, ctx, Permission::Analyse).await?;
    let Json(request) = body?;
    let policy = state.policy.clone();
    let request = casewire_core::PredictionRequest {
        wallet: request.wallet,
        evidence_id: request.evidence_id,
        case_id: request.case_id,
    };
    let prediction = blocking(move || policy.predict(request, &c.user, &c.info)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "prediction": prediction, "timestamp": now()})),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FeedbackRequest {
    prediction_id: String,
    actual_action: String,
}

async fn rl_feedback(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<FeedbackRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "feedback": feedback, "timestamp": now()})),
    ))
}
