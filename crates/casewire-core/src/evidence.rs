//! Evidence files: a content-addressed store on disk, records in the database, an event for
//! every action.
//!
//! - An upload is streamed to a temporary file while its SHA-256 is computed (never buffered
//!   whole), refused past the size limit or when empty, fsynced, and moved to
//!   `evidence/<first two hex digits>/<sha256>`. Identical contents are stored once.
//! - The record and its `evidence.uploaded` event then commit together. A file whose record
//!   failed to commit is left as an orphan, harmless: content is addressed by hash.
//! - Verify recomputes the hash: `evidence.verified`, and a critical `system.alert` on mismatch.
//! - Delete is soft: the record and its hash stay for the chain of custody, the file goes once
//!   no live record uses it; `evidence.deleted` is critical.
//! - A receipt of a transaction made elsewhere that wrote the file's hash on a chain, once
//!   checked on chain ([`crate::Anchoring::check_receipt`]), is recorded with its
//!   `evidence.anchored` event, high priority. Casewire's own anchoring, queued and batched,
//!   is [`crate::anchoring`]'s.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use casewire_events::{Event, EventType, Priority, parse_wallet, validate_evm_address};
use casewire_outbox::{Clock, Outbox};
use rand::RngCore;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::paging::{ListPage, Listed, Position};
use crate::sealed::{ContentKey, OpenReader, SealWriter};
use crate::{CoreError, RequestInfo, User};

/// What an uploader says about a file.
#[derive(Debug, Clone, Default)]
pub struct NewEvidence {
    /// The case it belongs to.
    pub case_id: String,
    /// The wallet it concerns.
    pub wallet: String,
    /// Who reported it.
    pub reporter: String,
    /// `low`, `medium`, `high` or `critical`, if given.
    pub risk_level: Option<String>,
    /// The original file name.
    pub filename: String,
    /// The declared content type.
    pub content_type: String,
}

/// Which evidence records a list holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvidenceFilter {
    /// Only this case's.
    pub case_id: Option<String>,
    /// Only those about this wallet (any spelling of it: hex and bech32 ignore case).
    pub wallet: Option<String>,
}

/// A stored evidence record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// 24 hex digits.
    pub evidence_id: String,
    /// The case it belongs to.
    pub case_id: String,
    /// The wallet it concerns.
    pub wallet: String,
    /// The chain its address belongs to: `evm`, `bitcoin`, `tron` or `solana`.
    #[schema(value_type = casewire_events::Chain)]
    pub wallet_chain: String,
    /// Who reported it.
    pub reporter: String,
    /// The declared risk level.
    pub risk_level: Option<String>,
    /// The original file name.
    pub filename: String,
    /// The declared content type.
    pub content_type: String,
    /// Size in bytes.
    pub file_size: u64,
    /// SHA-256 of the content, hex.
    pub storage_hash: String,
    /// The uploading user.
    pub uploaded_by: String,
    /// Upload time, Unix ms.
    pub uploaded_at: i64,
    /// Deletion time, Unix ms, if deleted.
    pub deleted_at: Option<i64>,
}

/// The result of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Whether the stored content still has its recorded hash.
    pub verified: bool,
    /// The recorded hash.
    pub expected_hash: String,
    /// The hash of the content now, if the file could be read.
    pub actual_hash: Option<String>,
}

/// What an anchoring transaction's receipt says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAnchor {
    /// The transaction's hash: `0x` and 64 hex digits.
    pub tx_hash: String,
    /// The block that holds it.
    pub block_number: u64,
    /// The anchoring contract: `0x` and 40 hex digits (EIP-55 checked when mixed case).
    pub contract_address: String,
}

/// A recorded anchor of an evidence file's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Anchor {
    /// The anchored evidence.
    pub evidence_id: String,
    /// The hash written on chain: the file's SHA-256.
    pub file_hash: String,
    /// The transaction's hash.
    pub tx_hash: String,
    /// The block that holds it.
    pub block_number: u64,
    /// The anchoring contract; `None` when the root went in a transaction from Casewire's
    /// anchoring key to itself.
    pub contract_address: Option<String>,
    /// Who recorded it.
    pub anchored_by: String,
    /// When it was recorded, Unix ms.
    pub anchored_at: i64,
}

/// Content stored by [`EvidenceStore::store_content`], not yet recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// SHA-256, hex.
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
}

/// Evidence files under a data directory, records in the outbox's database.
pub struct EvidenceStore {
    outbox: Arc<Outbox>,
    clock: Arc<dyn Clock>,
    dir: PathBuf,
    max_bytes: u64,
    /// Contents stored by an upload whose record is not written yet, with how many such
    /// uploads hold each. A file is only removed under this lock, when no live record uses it
    /// and no upload holds it: a delete racing an upload of the same content keeps the file.
    pins: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    /// The key files are sealed with; `None` stores them as they are.
    key: Option<ContentKey>,
}

const RISK_LEVELS: [&str; 4] = ["low", "medium", "high", "critical"];

fn invalid(message: impl Into<String>) -> CoreError {
    CoreError::Invalid(message.into())
}

fn io(path: &Path, e: std::io::Error) -> CoreError {
    CoreError::Storage(format!("{}: {e}", path.display()))
}

impl EvidenceStore {
    /// The largest file accepted, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// A store in `<data_dir>/evidence`, refusing files over `max_bytes`.
    pub fn open(
        outbox: Arc<Outbox>,
        clock: Arc<dyn Clock>,
        data_dir: &Path,
        max_bytes: u64,
    ) -> Result<EvidenceStore, CoreError> {
        let dir = data_dir.join("evidence");
        crate::private::create_dir(&dir.join("tmp")).map_err(|e| io(&dir, e))?;
        Ok(EvidenceStore {
            pins: Default::default(),
            outbox,
            clock,
            dir,
            max_bytes,
            key: None,
        })
    }

    /// The store with its files sealed (encrypted) with `key`, or stored as they are.
    pub fn with_key(mut self, key: Option<ContentKey>) -> EvidenceStore {
        self.key = key;
        self
    }

    /// The plaintext of the stored content `hash`, decrypted as it is read when sealed.
    fn open_content(&self, hash: &str) -> std::io::Result<Box<dyn Read + Send>> {
        let file = File::open(self.content_path(hash))?;
        let reader = std::io::BufReader::with_capacity(256 * 1024, file);
        match &self.key {
            None => Ok(Box::new(reader)),
            Some(key) => Ok(Box::new(OpenReader::new(key, reader)?)),
        }
    }

    /// The SHA-256 of the stored content's plaintext; `None` if it cannot be read whole (a
    /// missing file, or a sealed one that fails its authentication).
    fn hash_content(&self, hash: &str) -> Option<String> {
        let mut content = self.open_content(hash).ok()?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = content.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Some(hex::encode(hasher.finalize()))
    }

    /// Seals every stored file that is not sealed yet (written before encryption was on), one
    /// at a time and crash-safely: each is sealed into a temporary file, made durable and
    /// renamed over the original, so a crash leaves each file either as it was or sealed, and
    /// running this again finishes the work. A file is known to be unsealed when its content
    /// hashes to its name. Returns how many were sealed.
    pub fn seal_existing(&self) -> Result<u64, CoreError> {
        let Some(key) = &self.key else { return Ok(0) };
        // Uploads a crash cut short are unencrypted and belong to no record: removed.
        let tmp_dir = self.dir.join("tmp");
        for entry in std::fs::read_dir(&tmp_dir).map_err(|e| io(&tmp_dir, e))? {
            let path = entry.map_err(|e| io(&tmp_dir, e))?.path();
            std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
        }
        let mut sealed = 0;
        let shards = std::fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))?;
        for shard in shards {
            let shard = shard.map_err(|e| io(&self.dir, e))?.path();
            if !shard.is_dir() || shard.file_name().is_some_and(|n| n == "tmp") {
                continue;
            }
            for entry in std::fs::read_dir(&shard).map_err(|e| io(&shard, e))? {
                let path = entry.map_err(|e| io(&shard, e))?.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if name.len() != 64 {
                    continue;
                }
                // Unreadable is not "already sealed": the start stops rather than leave it.
                match hash_file(&path) {
                    Some(hash) if hash == name => {}
                    Some(_) => continue,
                    None => {
                        return Err(CoreError::Storage(format!(
                            "cannot read the evidence file {} to encrypt it",
                            path.display()
                        )));
                    }
                }
                let mut tmp_name = [0u8; 8];
                rand::rng().fill_bytes(&mut tmp_name);
                let tmp = self.dir.join("tmp").join(hex::encode(tmp_name));
                let done = (|| {
                    let mut source = File::open(&path).map_err(|e| io(&path, e))?;
                    let file = crate::private::create_file(&tmp).map_err(|e| io(&tmp, e))?;
                    let mut writer = SealWriter::new(key, std::io::BufWriter::new(file))
                        .map_err(|e| io(&tmp, e))?;
                    std::io::copy(&mut source, &mut writer).map_err(|e| io(&tmp, e))?;
                    let file = writer
                        .finish()
                        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
                        .map_err(|e| io(&tmp, e))?;
                    file.sync_all().map_err(|e| io(&tmp, e))?;
                    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
                    sync_dir(&shard)
                })();
                if done.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                done?;
                sealed += 1;
            }
        }
        Ok(sealed)
    }

    fn content_path(&self, hash: &str) -> PathBuf {
        self.dir.join(&hash[..2]).join(hash)
    }

    fn pins(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, usize>> {
        self.pins.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn unpin(&self, hash: &str) {
        let mut pins = self.pins();
        if let Some(n) = pins.get_mut(hash) {
            *n -= 1;
            if *n == 0 {
                pins.remove(hash);
            }
        }
    }

    /// Removes a content file if no live record uses it and no upload holds it.
    fn remove_if_unused(&self, hash: &str) -> Result<(), CoreError> {
        let pins = self.pins();
        if pins.contains_key(hash) {
            return Ok(());
        }
        let owned = hash.to_owned();
        let used: bool = self
            .outbox
            .write(move |tx| {
                Ok::<_, CoreError>(tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM evidence WHERE storage_hash = ?1 AND deleted_at IS NULL)",
                    [&owned],
                    |r| r.get(0),
                )?)
            })
            .wait()?;
        if !used {
            let path = self.content_path(hash);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path, e)),
            }
        }
        drop(pins);
        Ok(())
    }

    fn event(&self, event_type: EventType, data: Value, user: &User, from: &RequestInfo) -> Event {
        crate::action_event(&*self.clock, event_type, data, user, from)
    }

    /// The longest file name accepted, in bytes (what file systems allow).
    pub const MAX_NAME_BYTES: usize = 255;

    /// Checks what an uploader says about a file.
    pub fn check(meta: &NewEvidence) -> Result<(), CoreError> {
        if meta.case_id.trim().is_empty() {
            return Err(invalid("caseId is required"));
        }
        if meta.reporter.trim().is_empty() {
            return Err(invalid("reporter is required"));
        }
        check_file_name(&meta.filename)?;
        parse_wallet(&meta.wallet)
            .map_err(|e| invalid(format!("wallet is not a valid address: {e}")))?;
        if let Some(level) = &meta.risk_level
            && !RISK_LEVELS.contains(&level.as_str())
        {
            return Err(invalid(format!(
                "riskLevel {level:?} must be low, medium, high or critical"
            )));
        }
        Ok(())
    }

    /// Stores an uploaded file and records it with its `evidence.uploaded` event.
    pub fn upload(
        &self,
        meta: NewEvidence,
        content: impl Read,
        user: &User,
        from: &RequestInfo,
    ) -> Result<Evidence, CoreError> {
        EvidenceStore::check(&meta)?;
        // Refused before the file is read when the case refuses it already.
        let case_id = meta.case_id.clone();
        self.outbox
            .read(|conn| crate::cases::check_for_evidence(conn, &case_id, user))?;
        let stored = self.store_content(content)?;
        match self.record(meta, stored.clone(), user, from) {
            Ok(evidence) => Ok(evidence),
            Err(e) => {
                self.forget(&stored)?;
                Err(e)
            }
        }
    }

    /// Stores content by its hash, streaming it; for uploads whose description arrives after
    /// the file (a multipart form). The content is held until [`EvidenceStore::record`]
    /// succeeds or [`EvidenceStore::forget`] lets it go: call one of them.
    pub fn store_content(&self, content: impl Read) -> Result<Stored, CoreError> {
        let (hash, size) = self.store(content)?;
        Ok(Stored { hash, size })
    }

    /// Lets go of stored content whose record was refused or failed, removing the file if no
    /// record uses it.
    pub fn forget(&self, stored: &Stored) -> Result<(), CoreError> {
        self.unpin(&stored.hash);
        self.remove_if_unused(&stored.hash)
    }

    /// Records stored content with its `evidence.uploaded` event, in one transaction.
    pub fn record(
        &self,
        meta: NewEvidence,
        stored: Stored,
        user: &User,
        from: &RequestInfo,
    ) -> Result<Evidence, CoreError> {
        EvidenceStore::check(&meta)?;
        let wallet = parse_wallet(&meta.wallet)
            .map_err(|e| invalid(format!("wallet is not a valid address: {e}")))?;
        let Stored { hash, size } = stored;
        let mut id = [0u8; 12];
        rand::rng().fill_bytes(&mut id);
        let evidence = Evidence {
            evidence_id: hex::encode(id),
            case_id: meta.case_id,
            wallet: meta.wallet,
            wallet_chain: wallet.chain().as_str().to_owned(),
            reporter: meta.reporter,
            risk_level: meta.risk_level,
            filename: meta.filename,
            content_type: meta.content_type,
            file_size: size,
            storage_hash: hash,
            uploaded_by: user.username.clone(),
            uploaded_at: self.clock.now_ms(),
            deleted_at: None,
        };
        let mut data = serde_json::json!({
            "evidenceId": evidence.evidence_id,
            "caseId": evidence.case_id,
            "wallet": evidence.wallet,
            "walletChain": evidence.wallet_chain,
            "reporter": evidence.reporter,
            "filename": evidence.filename,
            "fileSize": evidence.file_size,
            "storageHash": evidence.storage_hash,
        });
        if let Some(level) = &evidence.risk_level {
            data["riskLevel"] = level.clone().into();
        }
        let event = self.event(EventType::EvidenceUploaded, data, user, from);
        let created = self.event(EventType::CaseCreated, serde_json::json!({}), user, from);
        let record = evidence.clone();
        let uploader = user.clone();
        self.outbox
            .write(move |tx| {
                crate::cases::open_for_evidence(tx, &record.case_id, &uploader, created)?;
                tx.execute(
                    "INSERT INTO evidence (evidence_id, case_id, wallet, reporter, risk_level, filename,
                        content_type, file_size, storage_hash, uploaded_by, uploaded_at,
                        wallet_chain, wallet_key)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    params![
                        record.evidence_id,
                        record.case_id,
                        record.wallet,
                        record.reporter,
                        record.risk_level,
                        record.filename,
                        record.content_type,
                        record.file_size as i64,
                        record.storage_hash,
                        record.uploaded_by,
                        record.uploaded_at,
                        record.wallet_chain,
                        wallet.key()
                    ],
                )?;
                crate::cases::enqueue_in_timeline(tx, &event)?;
                Ok::<_, CoreError>(())
            })
            .wait()?;
        self.unpin(&evidence.storage_hash);
        tracing::info!(evidence = %evidence.evidence_id, size, hash = %evidence.storage_hash, "evidence stored");
        Ok(evidence)
    }

    /// Streams `content` to a temporary file while hashing it, then moves it to its address.
    fn store(&self, mut content: impl Read) -> Result<(String, u64), CoreError> {
        let mut name = [0u8; 8];
        rand::rng().fill_bytes(&mut name);
        let tmp = self.dir.join("tmp").join(hex::encode(name));
        let result = (|| {
            let file = crate::private::create_file(&tmp).map_err(|e| io(&tmp, e))?;
            let mut file = match &self.key {
                None => Sink::Plain(file),
                Some(key) => Sink::Sealed(
                    SealWriter::new(key, file)
                        .and_then(Offloaded::new)
                        .map_err(|e| io(&tmp, e))?,
                ),
            };
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = content
                    .read(&mut buf)
                    .map_err(|e| CoreError::Invalid(format!("reading the upload failed: {e}")))?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                if size > self.max_bytes {
                    return Err(CoreError::TooLarge {
                        limit: self.max_bytes,
                    });
                }
                hasher.update(&buf[..n]);
                file.write_all(&buf[..n]).map_err(|e| io(&tmp, e))?;
            }
            if size == 0 {
                return Err(invalid("the file is empty"));
            }
            let file = file.finish().map_err(|e| io(&tmp, e))?;
            file.sync_all().map_err(|e| io(&tmp, e))?;
            let hash = hex::encode(hasher.finalize());
            let path = self.content_path(&hash);
            // Held from here until recorded or forgotten; the file is put in place under the
            // same lock as removals.
            let mut pins = self.pins();
            *pins.entry(hash.clone()).or_default() += 1;
            if !path.exists() {
                let placed = (|| {
                    let parent = path.parent().unwrap_or(&self.dir);
                    crate::private::create_dir(parent).map_err(|e| io(parent, e))?;
                    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
                    sync_dir(parent)
                })();
                if let Err(e) = placed {
                    drop(pins);
                    self.unpin(&hash);
                    return Err(e);
                }
            }
            Ok((hash, size))
        })();
        // Gone after a rename; after a refusal or a duplicate it is removed here.
        let _ = std::fs::remove_file(&tmp);
        result
    }

    /// A record, deleted or not.
    pub fn get(&self, evidence_id: &str) -> Result<Evidence, CoreError> {
        let id = evidence_id.to_owned();
        self.outbox.read(|tx| {
            tx.query_row(
                "SELECT evidence_id, case_id, wallet, reporter, risk_level, filename, content_type,
                            file_size, storage_hash, uploaded_by, uploaded_at, deleted_at, wallet_chain
                       FROM evidence WHERE evidence_id = ?1",
                [&id],
                row_to_evidence,
            )
            .optional()?
            .ok_or_else(|| CoreError::NotFound(format!("evidence {id}")))
        })
    }

    /// A page of the records that match `filter`, deleted ones included, newest first: every
    /// record for analysts and above, for an investigator those of the cases they opened or
    /// are assigned to.
    pub fn list(
        &self,
        filter: &EvidenceFilter,
        user: &User,
        page: &ListPage,
    ) -> Result<Listed<Evidence>, CoreError> {
        let size = page.size()?;
        let start = page.start()?;
        let own = (!crate::cases::sees_every_case(user)).then(|| user.username.clone());
        let wallet_key = filter
            .wallet
            .as_deref()
            .map(|address| {
                parse_wallet(address)
                    .map(|wallet| wallet.key().to_owned())
                    .map_err(|e| invalid(format!("wallet {address:?} {e}")))
            })
            .transpose()?;
        let rows = self.outbox.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT evidence_id, case_id, wallet, reporter, risk_level, filename, content_type,
                        file_size, storage_hash, uploaded_by, uploaded_at, deleted_at, wallet_chain
                   FROM evidence
                  WHERE (?1 IS NULL OR case_id = ?1) AND (?2 IS NULL OR wallet_key = ?2)
                    AND (?3 IS NULL OR case_id IN
                           (SELECT case_id FROM cases WHERE created_by = ?3 OR assignee = ?3))
                    AND (?4 IS NULL OR (uploaded_at, evidence_id) < (?4, ?5))
                  ORDER BY uploaded_at DESC, evidence_id DESC
                  LIMIT ?6",
            )?;
            let rows = stmt.query_map(
                params![
                    filter.case_id,
                    wallet_key,
                    own,
                    start.as_ref().map(|p| p.at),
                    start.as_ref().map(|p| p.id.as_str()),
                    size as i64 + 1,
                ],
                row_to_evidence,
            )?;
            Ok::<_, CoreError>(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        Ok(Listed::from_rows(rows, size, |evidence| Position {
            at: evidence.uploaded_at,
            id: evidence.evidence_id.clone(),
        }))
    }

    /// Recomputes the stored file's hash and records `evidence.verified`; a mismatch or a
    /// missing file also raises a critical `system.alert`.
    pub fn verify(
        &self,
        evidence_id: &str,
        user: &User,
        from: &RequestInfo,
    ) -> Result<Verification, CoreError> {
        let evidence = self.live(evidence_id)?;
        let actual = self.hash_content(&evidence.storage_hash);
        let verified = actual.as_deref() == Some(evidence.storage_hash.as_str());
        let result = Verification {
            verified,
            expected_hash: evidence.storage_hash.clone(),
            actual_hash: actual,
        };
        let mut events = vec![self.event(
            EventType::EvidenceVerified,
            serde_json::json!({
                "evidenceId": evidence.evidence_id,
                "caseId": evidence.case_id,
                "verified": verified,
                "storageHash": evidence.storage_hash,
            }),
            user,
            from,
        )];
        if !verified {
            tracing::error!(evidence = %evidence.evidence_id, "evidence failed its integrity check");
            events.push(self.integrity_alert(&evidence, result.actual_hash.as_deref(), user, from));
        }
        self.outbox
            .write(move |tx| {
                events
                    .iter()
                    .try_for_each(|e| crate::cases::enqueue_in_timeline(tx, e))?;
                Ok::<_, CoreError>(())
            })
            .wait()?;
        Ok(result)
    }

    /// The critical `system.alert` of a stored file whose hash is not its record's.
    fn integrity_alert(
        &self,
        evidence: &Evidence,
        actual_hash: Option<&str>,
        user: &User,
        from: &RequestInfo,
    ) -> Event {
        self.event(
            EventType::SystemAlert,
            serde_json::json!({
                "message": format!("evidence {} failed its integrity check", evidence.evidence_id),
                "evidenceId": evidence.evidence_id,
                "caseId": evidence.case_id,
                "expectedHash": evidence.storage_hash,
                "actualHash": actual_hash,
            }),
            user,
            from,
        )
        .with_priority(Priority::Critical)
    }

    /// Called when a download (or a save) has read the whole stored file: `actual_hash` is
    /// the SHA-256 of what it read. On a mismatch raises the same critical `system.alert` as
    /// [`EvidenceStore::verify`] and fails, so the download is ended rather than completed with
    /// altered evidence.
    pub fn check_served(
        &self,
        evidence: &Evidence,
        actual_hash: &str,
        user: &User,
        from: &RequestInfo,
    ) -> Result<(), CoreError> {
        if actual_hash == evidence.storage_hash {
            return Ok(());
        }
        tracing::error!(evidence = %evidence.evidence_id, "evidence changed on disk; its download was stopped");
        let alert = self.integrity_alert(evidence, Some(actual_hash), user, from);
        self.outbox
            .write(move |tx| crate::cases::enqueue_in_timeline(tx, &alert))
            .wait()?;
        Err(CoreError::Tampered(evidence.evidence_id.clone()))
    }

    /// Opens a live record's file for download and records `evidence.downloaded`.
    pub fn open_download(
        &self,
        evidence_id: &str,
        user: &User,
        from: &RequestInfo,
    ) -> Result<(Evidence, Box<dyn Read + Send>), CoreError> {
        let evidence = self.live(evidence_id)?;
        let file = match self.open_content(&evidence.storage_hash) {
            Ok(file) => file,
            // A sealed file whose header no longer reads was changed: the same alarm as a
            // hash that does not match.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                self.check_served(&evidence, "", user, from)?;
                return Err(CoreError::Tampered(evidence.evidence_id));
            }
            Err(e) => return Err(io(&self.content_path(&evidence.storage_hash), e)),
        };
        let event = self.event(
            EventType::EvidenceDownloaded,
            serde_json::json!({
                "evidenceId": evidence.evidence_id,
                "caseId": evidence.case_id,
                "filename": evidence.filename,
            }),
            user,
            from,
        );
        self.outbox
            .write(move |tx| crate::cases::enqueue_in_timeline(tx, &event))
            .wait()?;
        Ok((evidence, file))
    }

    /// Soft-deletes a record (it and its hash stay) with its critical `evidence.deleted` event;
    /// the file goes once no live record uses its content.
    pub fn delete(
        &self,
        evidence_id: &str,
        user: &User,
        from: &RequestInfo,
    ) -> Result<(), CoreError> {
        let evidence = self.live(evidence_id)?;
        let event = self.event(
            EventType::EvidenceDeleted,
            serde_json::json!({
                "evidenceId": evidence.evidence_id,
                "caseId": evidence.case_id,
                "storageHash": evidence.storage_hash,
            }),
            user,
            from,
        );
        let now = self.clock.now_ms();
        let id = evidence.evidence_id.clone();
        self.outbox
            .write(move |tx| {
                // Deleted meanwhile by someone else: one deletion, one event.
                if tx.execute(
                    "UPDATE evidence SET deleted_at = ?2 WHERE evidence_id = ?1 AND deleted_at IS NULL",
                    params![id, now],
                )? == 0
                {
                    return Err(CoreError::Gone(format!("evidence {id} was deleted")));
                }
                crate::cases::enqueue_in_timeline(tx, &event)?;
                Ok(())
            })
            .wait()?;
        self.remove_if_unused(&evidence.storage_hash)?;
        tracing::warn!(evidence = %evidence.evidence_id, by = %user.username, "evidence deleted");
        Ok(())
    }

    /// Records that `evidence_id`'s hash was anchored on chain by the transaction in `receipt`,
    /// with its high-priority `evidence.anchored` event. The same transaction twice is a
    /// conflict; deleted evidence cannot be anchored.
    pub fn anchor(
        &self,
        evidence_id: &str,
        receipt: NewAnchor,
        user: &User,
        from: &RequestInfo,
    ) -> Result<Anchor, CoreError> {
        EvidenceStore::check_receipt(&receipt)?;
        let tx_hash = receipt.tx_hash.trim().to_ascii_lowercase();
        let evidence = self.live(evidence_id)?;
        let anchor = Anchor {
            evidence_id: evidence.evidence_id.clone(),
            file_hash: evidence.storage_hash.clone(),
            tx_hash,
            block_number: receipt.block_number,
            contract_address: Some(receipt.contract_address),
            anchored_by: user.username.clone(),
            anchored_at: self.clock.now_ms(),
        };
        let event = self.event(
            EventType::EvidenceAnchored,
            serde_json::json!({
                "evidenceId": anchor.evidence_id,
                "caseId": evidence.case_id,
                "wallet": evidence.wallet,
                "walletChain": evidence.wallet_chain,
                "fileHash": anchor.file_hash,
                "txHash": anchor.tx_hash,
                "blockNumber": anchor.block_number,
                "contractAddress": anchor.contract_address,
            }),
            user,
            from,
        );
        let row = anchor.clone();
        self.outbox
            .write(move |tx| {
                let live: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM evidence WHERE evidence_id = ?1 AND deleted_at IS NULL)",
                    [&row.evidence_id],
                    |r| r.get(0),
                )?;
                if !live {
                    return Err(CoreError::Gone(format!(
                        "evidence {} was deleted",
                        row.evidence_id
                    )));
                }
                let inserted = tx.execute(
                    "INSERT INTO evidence_anchors
                         (tx_hash, evidence_id, block_number, contract_address, anchored_by, anchored_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tx_hash, evidence_id) DO NOTHING",
                    params![
                        row.tx_hash,
                        row.evidence_id,
                        row.block_number as i64,
                        row.contract_address,
                        row.anchored_by,
                        row.anchored_at
                    ],
                )?;
                if inserted == 0 {
                    return Err(CoreError::Conflict(format!(
                        "transaction {} is already recorded as an anchor of evidence {}",
                        row.tx_hash, row.evidence_id
                    )));
                }
                crate::cases::enqueue_in_timeline(tx, &event)?;
                Ok(())
            })
            .wait()?;
        tracing::info!(evidence = %anchor.evidence_id, tx = %anchor.tx_hash, "evidence anchored");
        Ok(anchor)
    }

    /// Checks the shape of a typed-in receipt: a transaction hash, a contract address and a
    /// block height.
    pub fn check_receipt(receipt: &NewAnchor) -> Result<(), CoreError> {
        let tx_hash = receipt.tx_hash.trim();
        let hex = tx_hash
            .strip_prefix("0x")
            .or_else(|| tx_hash.strip_prefix("0X"))
            .unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("txHash must be 0x followed by 64 hex digits"));
        }
        validate_evm_address(&receipt.contract_address)
            .map_err(|e| invalid(format!("contractAddress: {e}")))?;
        if receipt.block_number == 0 || i64::try_from(receipt.block_number).is_err() {
            return Err(invalid("blockNumber must be a positive block height"));
        }
        Ok(())
    }

    /// The anchors recorded for `evidence_id`, oldest first.
    pub fn anchors(&self, evidence_id: &str) -> Result<Vec<Anchor>, CoreError> {
        let evidence = self.get(evidence_id)?;
        let id = evidence.evidence_id.clone();
        let rows = self.outbox.read(|tx| {
            let rows = tx
                .prepare_cached(
                    "SELECT tx_hash, block_number, contract_address, anchored_by, anchored_at
                   FROM evidence_anchors WHERE evidence_id = ?1 ORDER BY anchored_at, tx_hash",
                )?
                .query_map([&id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok::<_, CoreError>(rows)
        })?;
        Ok(rows
            .into_iter()
            .map(|(tx_hash, block, contract, by, at)| Anchor {
                evidence_id: evidence.evidence_id.clone(),
                file_hash: evidence.storage_hash.clone(),
                tx_hash,
                block_number: block.max(0) as u64,
                contract_address: Some(contract).filter(|c| !c.is_empty()),
                anchored_by: by,
                anchored_at: at,
            })
            .collect())
    }

    fn live(&self, evidence_id: &str) -> Result<Evidence, CoreError> {
        let evidence = self.get(evidence_id)?;
        if evidence.deleted_at.is_some() {
            return Err(CoreError::Gone(format!(
                "evidence {evidence_id} was deleted"
            )));
        }
        Ok(evidence)
    }
}

fn row_to_evidence(r: &rusqlite::Row<'_>) -> rusqlite::Result<Evidence> {
    Ok(Evidence {
        evidence_id: r.get(0)?,
        case_id: r.get(1)?,
        wallet: r.get(2)?,
        reporter: r.get(3)?,
        risk_level: r.get(4)?,
        filename: r.get(5)?,
        content_type: r.get(6)?,
        file_size: r.get::<_, i64>(7)?.max(0) as u64,
        storage_hash: r.get(8)?,
        uploaded_by: r.get(9)?,
        uploaded_at: r.get(10)?,
        deleted_at: r.get(11)?,
        wallet_chain: r.get(12)?,
    })
}

/// Makes a rename in `dir` durable (the file's own data was synced before the rename).
fn sync_dir(dir: &Path) -> Result<(), CoreError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Where an upload is written: as it is, or sealed on a thread of its own, so that reading and
/// hashing the upload runs beside sealing and writing it rather than before each chunk.
enum Sink {
    Plain(File),
    Sealed(Offloaded<SealWriter<File>>),
}

impl Sink {
    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Plain(file) => file.write_all(data),
            Sink::Sealed(writer) => writer.write_all(data),
        }
    }

    /// The file, with the last sealed chunk written.
    fn finish(self) -> std::io::Result<File> {
        match self {
            Sink::Plain(file) => Ok(file),
            Sink::Sealed(writer) => writer.finish()?.finish(),
        }
    }
}

/// Buffers in flight between an [`Offloaded`] writer and its thread.
const OFFLOADED_DEPTH: usize = 4;

/// A writer whose writes run on a thread of its own: `write_all` hands over a copy and returns.
/// An error of the inner writer is returned by the next `write_all` or by `finish`. Dropped
/// unfinished, it waits for its thread, so the inner writer is closed when it is gone.
struct Offloaded<W: Write + Send + 'static> {
    to_worker: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    /// Buffers the thread is done with, to be used again.
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    worker: Option<std::thread::JoinHandle<std::io::Result<W>>>,
}

impl<W: Write + Send + 'static> Offloaded<W> {
    fn new(mut inner: W) -> std::io::Result<Offloaded<W>> {
        let (to_worker, chunks) = std::sync::mpsc::sync_channel::<Vec<u8>>(OFFLOADED_DEPTH);
        let (give_back, spare) = std::sync::mpsc::channel();
        let worker = std::thread::Builder::new()
            .name("evidence-writer".into())
            .spawn(move || {
                for chunk in chunks {
                    inner.write_all(&chunk)?;
                    let _ = give_back.send(chunk);
                }
                Ok(inner)
            })?;
        Ok(Offloaded {
            to_worker: Some(to_worker),
            spare,
            worker: Some(worker),
        })
    }

    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        let mut chunk = self.spare.try_recv().unwrap_or_default();
        chunk.clear();
        chunk.extend_from_slice(data);
        let sent = self.to_worker.as_ref().map(|to| to.send(chunk).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The thread stopped at an error: that error is the answer.
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(std::io::Error::other("the evidence writer stopped")),
        }
    }

    /// Waits for every write; the inner writer, or the first error.
    fn finish(mut self) -> std::io::Result<W> {
        self.join()
    }

    fn join(&mut self) -> std::io::Result<W> {
        self.to_worker = None;
        match self.worker.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the evidence writer panicked")),
            None => Err(std::io::Error::other(
                "the evidence writer has already stopped",
            )),
        }
    }
}

impl<W: Write + Send + 'static> Drop for Offloaded<W> {
    fn drop(&mut self) {
        if self.worker.is_some() {
            let _ = self.join();
        }
    }
}

/// The SHA-256 of a file as it is on disk, streamed; `None` if it cannot be read.
fn hash_file(path: &Path) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Some(hex::encode(hasher.finalize()))
}

/// A file name is kept as given, so it must be one a person can read for what it is: not empty,
/// at most [`EvidenceStore::MAX_NAME_BYTES`] bytes, and free of control characters and of the
/// bidirectional controls that can disguise its type (`invoice`, U+202E, `fdp.exe` shows as
/// `invoiceexe.pdf`).
fn check_file_name(name: &str) -> Result<(), CoreError> {
    if name.trim().is_empty() {
        return Err(invalid("the file needs a name"));
    }
    if name.len() > EvidenceStore::MAX_NAME_BYTES {
        return Err(invalid(format!(
            "the file name is {} bytes long; at most {} are accepted: rename the file and add it again",
            name.len(),
            EvidenceStore::MAX_NAME_BYTES
        )));
    }
    let bidi = |c: char| matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if let Some(c) = name.chars().find(|&c| c.is_control() || bidi(c)) {
        return Err(invalid(format!(
            "the file name contains the invisible character U+{:04X}, which can disguise what the file is: rename the file and add it again",
            u32::from(c)
        )));
    }
    Ok(())
}
