//! `Idempotency-Key` records: a repeated request returns the first response and does nothing
//! again.
//!
//! A key belongs to the user who sent it (never to an anonymous caller: replaying a login
//! would hand out its token). Its life:
//! 1. [`Idempotency::begin`] claims the key durably before the action runs. A key already
//!    answered returns that answer; a key whose request is still running, or whose process
//!    died (or was abandoned, see [`Idempotency::abandon`]) before answering, is refused: the
//!    outcome of that first request is unknown, and running it again could record the action
//!    twice.
//! 2. [`Idempotency::complete`] stores a successful answer; [`Idempotency::release`] frees the
//!    key of a request that failed (a refused request changed nothing, so it may be retried).
//!
//! Keys are kept for 24 hours.

use std::sync::Arc;

use casewire_outbox::{Clock, Outbox};
use rand::RngCore;
use rusqlite::{OptionalExtension, params};

use crate::CoreError;

/// How long a key is remembered.
pub const RETENTION_MS: i64 = 24 * 3600 * 1000;

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// A stored answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
    /// SHA-256 of the first request's body, hex, when it was read to its end.
    pub fingerprint: Option<String>,
}

/// What [`Idempotency::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// A new key, now claimed: run the request.
    New,
    /// The key was answered before: return this.
    Answered(StoredResponse),
    /// The first request with this key is still running.
    InProgress,
    /// The first request's process stopped before it answered: its outcome is unknown.
    Unknown,
}

/// The keys, in the outbox's database.
pub struct Idempotency {
    outbox: Arc<Outbox>,
    clock: Arc<dyn Clock>,
    /// Tells this process's claims from those of a process that died.
    boot: String,
}

/// Checks a key's shape: 1 to 255 visible ASCII characters.
pub fn check_key(key: &str) -> Result<(), CoreError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CoreError::Invalid(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(())
}

impl Idempotency {
    /// The keys in the outbox's database (the domain's migrations must have run).
    pub fn new(outbox: Arc<Outbox>, clock: Arc<dyn Clock>) -> Idempotency {
        let mut boot = [0u8; 8];
        rand::rng().fill_bytes(&mut boot);
        Idempotency {
            outbox,
            clock,
            boot: hex::encode(boot),
        }
    }

    /// Claims `key` for `user_id`'s request to `method path`, or says why not.
    pub fn begin(
        &self,
        user_id: i64,
        key: &str,
        method: &str,
        path: &str,
    ) -> Result<Begin, CoreError> {
        check_key(key)?;
        let now = self.clock.now_ms();
        let (key, request, boot) = (
            key.to_owned(),
            format!("{method} {path}"),
            self.boot.clone(),
        );
        self.outbox
            .write(move |tx| {
                tx.prepare_cached("DELETE FROM idempotency_keys WHERE created_at < ?1")?
                    .execute([now - RETENTION_MS])?;
                type Row = (String, String, Option<u16>, Option<String>, Option<Vec<u8>>, Option<String>);
                let found: Option<Row> = tx
                    .prepare_cached(
                        "SELECT request, boot, status, content_type, body, fingerprint
                           FROM idempotency_keys WHERE user_id = ?1 AND key = ?2",
                    )?
                    .query_row(params![user_id, key], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                    })
                    .optional()?;
                let Some((first, first_boot, status, content_type, body, fingerprint)) = found
                else {
                    tx.prepare_cached(
                        "INSERT INTO idempotency_keys (user_id, key, request, boot, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![user_id, key, request, boot, now])?;
                    return Ok(Begin::New);
                };
                if first != request {
                    return Err(CoreError::Conflict(format!(
                        "Idempotency-Key {key:?} was used for {first}; use a new key for another request"
                    )));
                }
                Ok(match (status, content_type, body) {
                    (Some(status), Some(content_type), Some(body)) => {
                        Begin::Answered(StoredResponse {
                            status,
                            content_type,
                            body,
                            fingerprint,
                        })
                    }
                    _ if first_boot == boot => Begin::InProgress,
                    _ => Begin::Unknown,
                })
            })
            .wait()
    }

    /// Stores the answer to a claimed key.
    pub fn complete(
        &self,
        user_id: i64,
        key: &str,
        response: StoredResponse,
    ) -> Result<(), CoreError> {
        let key = key.to_owned();
        self.outbox
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE idempotency_keys SET status = ?3, content_type = ?4, body = ?5,
                            fingerprint = ?6
                      WHERE user_id = ?1 AND key = ?2",
                )?
                .execute(params![
                    user_id,
                    key,
                    response.status,
                    response.content_type,
                    response.body,
                    response.fingerprint
                ])?;
                Ok(())
            })
            .wait()
    }

    /// Marks a claimed key whose request was abandoned before it answered (the client went
    /// away, the handler panicked): work it started may still complete, so the key is neither
    /// freed nor left "in progress", but answers that its outcome is unknown.
    pub fn abandon(&self, user_id: i64, key: &str) -> Result<(), CoreError> {
        let key = key.to_owned();
        self.outbox
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE idempotency_keys SET boot = 'abandoned'
                      WHERE user_id = ?1 AND key = ?2 AND status IS NULL",
                )?
                .execute(params![user_id, key])?;
                Ok(())
            })
            .wait()
    }

    /// Frees a claimed key whose request failed without changing anything.
    pub fn release(&self, user_id: i64, key: &str) -> Result<(), CoreError> {
        let key = key.to_owned();
        self.outbox
            .write(move |tx| {
                tx.prepare_cached(
                    "DELETE FROM idempotency_keys WHERE user_id = ?1 AND key = ?2 AND status IS NULL",
                )?
                .execute(params![user_id, key])?;
                Ok(())
            })
            .wait()
    }
}
