//! The desktop's file routes: evidence added from a file the person picked or dropped, and a
//! download written to the path they chose in a save dialog. The page names an opaque handle
//! the shell gave it, never a path ([`crate::LocalFiles`]); the file is read (or written) by
//! Rust, streamed, so it never passes through the webview whose scheme bodies are whole. A
//! headless server has no such files: 404 `local_files_unavailable`.

use std::io::Read;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use casewire_core::{CoreError, NewEvidence, Permission};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::routes::{Ctx, blocking, require};
use crate::schema::*;
use crate::{ApiError, ErrorCode, LocalFiles, ServerState};

type St = State<Arc<ServerState>>;

fn local_files(state: &ServerState) -> Result<Arc<dyn LocalFiles>, ApiError> {
    state.local_files.clone().ok_or_else(|| {
        ApiError::with_code(
            StatusCode::NOT_FOUND,
            ErrorCode::LocalFilesUnavailable,
            "files by handle exist only in the desktop app; upload the file instead",
        )
    })
}

fn unknown_handle() -> ApiError {
    ApiError::with_code(
        StatusCode::BAD_REQUEST,
        ErrorCode::UnknownFileHandle,
        "that file was not picked or dropped in this window; choose it again",
    )
}

/// Evidence from a file the person picked or dropped.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LocalEvidence {
    /// The handle the shell gave for the file.
    #[schema(min_length = 1, max_length = 128)]
    handle: String,
    /// The case it belongs to.
    #[schema(min_length = 1)]
    case_id: String,
    /// The wallet it concerns.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    wallet: String,
    /// Who reported it.
    #[schema(min_length = 1)]
    reporter: String,
    /// `low`, `medium`, `high` or `critical`.
    #[serde(default)]
    #[schema(pattern = "^(low|medium|high|critical)$")]
    risk_level: Option<String>,
}

/// Counts what is read, for the progress the window shows.
struct Progress<R> {
    inner: R,
    read: u64,
    total: u64,
    reported: u64,
    handle: String,
    files: Arc<dyn LocalFiles>,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        self.read += n as u64;
        // Every 4 MiB and at the end: enough for a smooth bar, few messages to the page.
        if self.read - self.reported >= 4 << 20 || (n == 0 && self.read != self.reported) {
            self.reported = self.read;
            self.files.progress(&self.handle, self.read, self.total);
        }
        Ok(n)
    }
}

/// Adds evidence from a file picked in the open dialog or dropped on the window, read by the
/// app from disk and streamed into the store like an upload (`evidence.uploaded`; desktop only).
#[utoipa::path(post, path = "/api/evidence/local", tag = "evidence", request_body = LocalEvidence,
    responses((status = 201, body = EvidenceResponse)))]
pub(crate) async fn add_local_evidence(
    State(state): St,
    ctx: Ctx,
    body: Result<Json<LocalEvidence>, JsonRejection>,
) -> Result<(StatusCode, Json<EvidenceResponse>), ApiError> {
    let user = require(&state, &ctx, Permission::Investigate).await?;
    let Json(request) = body?;
    let files = local_files(&state)?;
    let (path, filename) = files.source(&request.handle).ok_or_else(unknown_handle)?;
    let meta = NewEvidence {
        case_id: request.case_id,
        wallet: request.wallet,
        reporter: request.reporter,
        risk_level: request.risk_level.filter(|r| !r.is_empty()),
        content_type: mime_guess::from_path(&path)
            .first_or_octet_stream()
            .essence_str()
            .to_owned(),
        filename,
    };
    // The form is checked before a byte is read: a bad wallet costs no hashing of a large file.
    casewire_core::EvidenceStore::check(&meta)?;
    let (store, info, handle) = (state.evidence.clone(), ctx.info().clone(), request.handle);
    let evidence = blocking(move || {
        let file = std::fs::File::open(&path).map_err(|e| {
            CoreError::Storage(format!("cannot read the file {}: {e}", path.display()))
        })?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        let stored = store.store_content(Progress {
            inner: std::io::BufReader::with_capacity(1 << 20, file),
            read: 0,
            total,
            reported: 0,
            handle,
            files,
        })?;
        match store.record(meta, stored.clone(), &user, &info) {
            Ok(evidence) => Ok(evidence),
            Err(e) => {
                store.forget(&stored)?;
                Err(e)
            }
        }
    })
    .await?;
    Ok((StatusCode::CREATED, EvidenceResponse::new(evidence)))
}

/// Where to save a download.
#[derive(Deserialize, ToSchema)]
pub(crate) struct SaveTarget {
    /// The handle the shell gave for the path chosen in the save dialog.
    #[schema(min_length = 1, max_length = 128)]
    handle: String,
}

/// Writes the evidence file to the path chosen in the save dialog (`evidence.downloaded`;
/// desktop only). Written to a temporary file beside it, then renamed: a half-written copy
/// never carries the chosen name.
#[utoipa::path(post, path = "/api/evidence/{id}/save", tag = "evidence", request_body = SaveTarget,
    params(("id" = String, Path, description = "24 hex digits")),
    responses((status = 200, body = DoneResponse)))]
pub(crate) async fn save_evidence(
    State(state): St,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<Json<SaveTarget>, JsonRejection>,
) -> Result<Json<DoneResponse>, ApiError> {
    let user = require(&state, &ctx, Permission::Investigate).await?;
    let Json(target) = body?;
    crate::routes::visible_evidence(&state, &user, ctx.info(), id.clone()).await?;
    let files = local_files(&state)?;
    let path = files.target(&target.handle).ok_or_else(unknown_handle)?;
    let (store, info) = (state.evidence.clone(), ctx.info().clone());
    let written = path.clone();
    blocking(move || {
        let (evidence, file) = store.open_download(&id, &user, &info)?;
        let io = |e: std::io::Error| {
            CoreError::Storage(format!("cannot write {}: {e}", written.display()))
        };
        let dir = written.parent().unwrap_or(std::path::Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        let mut hashing = Hashing::new(file);
        if let Err(e) = std::io::copy(&mut hashing, &mut tmp) {
            // Sealed content that fails its authentication was changed: the alarm, no copy.
            if e.kind() == std::io::ErrorKind::InvalidData {
                store.check_served(&evidence, "", &user, &info)?;
            }
            return Err(io(e));
        }
        // A file changed on disk is not saved under the chosen name (the copy is removed).
        store.check_served(&evidence, &hashing.finish(), &user, &info)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&written).map_err(|e| io(e.error))?;
        Ok(())
    })
    .await?;
    Ok(DoneResponse::new(format!("Saved to {}", path.display())))
}

/// A reader that hashes (SHA-256) what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: std::io::Read> Hashing<R> {
    fn new(inner: R) -> Hashing<R> {
        use sha2::Digest;
        Hashing {
            inner,
            hasher: sha2::Sha256::new(),
        }
    }

    fn finish(self) -> String {
        use sha2::Digest;
        hex::encode(self.hasher.finalize())
    }
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
