//! The Casewire domain and the backend's wiring ([`App`], with its [`settings`]): local users, Argon2id passwords, bearer tokens and the permission
//! table ([`auth`]), evidence files and their anchors ([`evidence`]), cases ([`cases`]) and the
//! fraud-response policy of the RL routes ([`rl`]), and `Idempotency-Key` records
//! ([`idempotency`]).
//!
//! The domain's tables live in the outbox's database and are written through its transactions
//! ([`casewire_outbox::Outbox::write`]), so every action commits with its event. Their schema
//! has its own version, in `core_schema`, beside the outbox's (which uses `user_version`).
#![deny(missing_docs)]

pub mod anchoring;
pub mod app;
pub mod auth;
pub mod cases;
pub mod custody;
pub mod evidence;
pub mod idempotency;
pub mod keys;
pub mod notices;
pub mod paging;
pub mod private;
pub mod refusals;
pub mod rl;
pub mod sealed;
pub mod settings;
pub mod updates;
pub mod users;

use casewire_outbox::Outbox;

pub use anchoring::{
    AnchorState, AnchorStatus, Anchoring, AnchoringView, BatchView, ChainSettings,
};
pub use app::{
    App, DefaultKeyStore, JsonFileStore, RelayStatus, SettingsStore, Unlock, rotate_key,
};
pub use auth::{Auth, AuthPolicy, Permission, RequestInfo, Role, Session, User};
pub use cases::{Case, CaseFilter, CaseStatus, Cases, Delivery, DeliveryStage, TimelineEntry};
pub use custody::{
    AnchoredHead, OnChainCheck, OnChainState, ProblemKind, TimelineCheck, TimelineProblem,
    confirm_anchored_head,
};
pub use evidence::{
    Anchor, Evidence, EvidenceFilter, EvidenceStore, NewAnchor, NewEvidence, Stored, Verification,
};
pub use idempotency::{Begin, Idempotency, StoredResponse};
pub use keys::KeyStore;
pub use notices::{Notice, NoticeWatch, QueueLook, SyncState};
pub use paging::{ListPage, Listed};
pub use rl::{Feedback, Policy, Prediction, PredictionRequest};
pub use sealed::ContentKey;
pub use settings::{Applies, SettingView, Settings, Source};
pub use updates::{Release, UpdateError, UpdatePhase, UpdateSource, UpdateView, Updates};
pub use users::{UserChange, UserRecord};

/// `metadata.source` of the events the domain creates.
pub const SOURCE: &str = "casewire";

/// The event of an action `user` took from `from`, now: `metadata` names them, `data` must be
/// a JSON object.
pub(crate) fn action_event(
    clock: &dyn casewire_outbox::Clock,
    event_type: casewire_events::EventType,
    data: serde_json::Value,
    user: &User,
    from: &RequestInfo,
) -> casewire_events::Event {
    casewire_events::Event::new(
        event_type,
        data.as_object().cloned().unwrap_or_default(),
        casewire_events::Metadata {
            source: Some(SOURCE.into()),
            user_id: Some(user.username.clone()),
            ip_address: from.ip_address.clone(),
            ..casewire_events::Metadata::default()
        },
        clock.now(),
        &mut rand::rng(),
    )
}

/// Everything the domain can refuse or fail at. The HTTP layer maps each variant to a status
/// and a stable code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// Input that breaks a rule; the message says which.
    #[error("{0}")]
    Invalid(String),
    /// The thing exists already.
    #[error("{0}")]
    Conflict(String),
    /// Wrong username or password (deliberately not saying which).
    #[error("invalid username or password")]
    BadCredentials,
    /// Too many failed logins lately from this client (at this account, or at any), or from
    /// everyone: this client must wait.
    #[error("too many failed logins from here; try again in {} s", retry_after.as_secs().max(1))]
    LoginThrottled {
        /// How long until the next try is allowed.
        retry_after: std::time::Duration,
    },
    /// No valid bearer token.
    #[error("authentication required: a valid bearer token")]
    Unauthenticated,
    /// A valid token whose role lacks the permission.
    #[error("role {role} lacks the {} permission", permission.as_str())]
    Forbidden {
        /// The caller's role.
        role: Role,
        /// What was needed.
        permission: Permission,
    },
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Crypto(String),
    /// An upload over the size limit; nothing was stored.
    #[error("file is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// No such thing.
    #[error("{0} not found")]
    NotFound(String),
    /// It exists, but the caller may not see it; said to them exactly as [`CoreError::NotFound`]
    /// is, and recorded as a refusal.
    #[error("{0} not found")]
    Hidden(String),
    /// It existed and was deleted.
    #[error("{0}")]
    Gone(String),
    /// A stored evidence file no longer matches its record's hash: it was changed on disk.
    #[error(
        "evidence {0} was changed on disk since it was stored (its hash no longer matches), so it was not served; an alert was raised"
    )]
    Tampered(String),
    /// A file operation failed (full or failing disk, permissions).
    #[error("file storage error: {0}")]
    Storage(String),
    /// The outbox (and with it the database) failed.
    #[error(transparent)]
    Outbox(#[from] casewire_outbox::Error),
    /// A query failed.
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A setting or the configuration file is wrong; the message names which and why.
    #[error("{0}")]
    Config(String),
    /// The first user exists already: setting up is over.
    #[error("Casewire is set up already: sign in instead")]
    SetupDone,
    /// The one-time setup code was missing or wrong.
    #[error(
        "the setup code is missing or wrong: use the code casewire serve printed when it started"
    )]
    SetupCodeInvalid,
    /// The relay could not start.
    #[error(transparent)]
    Relay(#[from] casewire_relay::RelayError),
    /// Looking for or installing an update did not happen.
    #[error(transparent)]
    Update(updates::UpdateError),
    /// No chain is configured, so nothing can be checked or anchored on one.
    #[error(
        "no chain is configured: set CASEWIRE_CHAIN_RPC_URL and CASEWIRE_CHAIN_ID to check receipts and anchor evidence"
    )]
    ChainNotConfigured,
    /// The chain's node could not be asked; nothing was decided.
    #[error("{0}; nothing was recorded, try again once the chain's node can be reached")]
    ChainUnreachable(String),
    /// A typed-in receipt does not hold on chain; `code` is the refusal's stable code.
    #[error("the receipt does not hold on chain: {message}")]
    ReceiptRefused {
        /// [`casewire_chain::proof::Refusal::code`].
        code: &'static str,
        /// What the chain says.
        message: String,
    },
}

/// A time in milliseconds since the epoch as RFC 3339, to the millisecond, in UTC.
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The domain's migrations, in order; `core_schema` records how many have run.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        username      TEXT    NOT NULL UNIQUE,
        role          TEXT    NOT NULL CHECK (role IN ('user', 'analyst', 'admin', 'superadmin')),
        password_hash TEXT    NOT NULL,
        created_at    INTEGER NOT NULL,
        disabled      INTEGER NOT NULL DEFAULT 0
    );
    -- Only the SHA-256 of a token is kept: a stolen database yields no usable token.
    CREATE TABLE tokens (
        token_hash TEXT    PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users (id),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE login_failures (
        username TEXT    NOT NULL,
        at       INTEGER NOT NULL
    );
    CREATE INDEX login_failures_by_user ON login_failures (username, at);
"#,
    r#"
    -- Deleted evidence keeps its record and hash (chain of custody): deleted_at marks it.
    CREATE TABLE evidence (
        evidence_id  TEXT    PRIMARY KEY,
        case_id      TEXT    NOT NULL,
        wallet       TEXT    NOT NULL,
        reporter     TEXT    NOT NULL,
        risk_level   TEXT,
        filename     TEXT    NOT NULL,
        content_type TEXT    NOT NULL,
        file_size    INTEGER NOT NULL,
        storage_hash TEXT    NOT NULL,
        uploaded_by  TEXT    NOT NULL,
        uploaded_at  INTEGER NOT NULL,
        deleted_at   INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX evidence_by_case ON evidence (case_id);
    CREATE INDEX evidence_by_hash ON evidence (storage_hash);
"#,
    r#"
    CREATE TABLE case_counters (
        year INTEGER PRIMARY KEY,
        last INTEGER NOT NULL
    );
    CREATE TABLE cases (
        case_id     TEXT    PRIMARY KEY,
        title       TEXT    NOT NULL,
        description TEXT    NOT NULL,
        status      TEXT    NOT NULL CHECK (status IN ('open', 'escalated', 'closed')),
        assignee    TEXT,
        created_by  TEXT    NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    -- A case's timeline: its events, kept after Kafka has them.
    CREATE TABLE case_events (
        id         INTEGER PRIMARY KEY,
        case_id    TEXT    NOT NULL REFERENCES cases (case_id),
        event_id   TEXT    NOT NULL,
        event_type TEXT    NOT NULL,
        actor      TEXT    NOT NULL,
        at         INTEGER NOT NULL,
        data       TEXT    NOT NULL
    );
    CREATE INDEX case_events_by_case ON case_events (case_id, id);
"#,
    r#"
    -- Receipts of transactions that wrote an evidence file's hash on a chain.
    -- One transaction may anchor several files (a batch, a Merkle root).
    CREATE TABLE evidence_anchors (
        tx_hash          TEXT    NOT NULL,
        evidence_id      TEXT    NOT NULL REFERENCES evidence (evidence_id),
        block_number     INTEGER NOT NULL,
        contract_address TEXT    NOT NULL,
        anchored_by      TEXT    NOT NULL,
        anchored_at      INTEGER NOT NULL,
        PRIMARY KEY (tx_hash, evidence_id)
    ) WITHOUT ROWID;
    CREATE INDEX evidence_anchors_by_evidence ON evidence_anchors (evidence_id);
    -- The fraud-response policy: one value per (state, action), learnt from feedback.
    CREATE TABLE rl_values (
        state   TEXT    NOT NULL,
        action  TEXT    NOT NULL,
        value   REAL    NOT NULL,
        updates INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (state, action)
    ) WITHOUT ROWID;
    CREATE TABLE rl_predictions (
        prediction_id TEXT    PRIMARY KEY,
        wallet        TEXT    NOT NULL,
        state         TEXT    NOT NULL,
        action        TEXT    NOT NULL,
        score         REAL    NOT NULL,
        evidence_id   TEXT,
        case_id       TEXT,
        made_by       TEXT    NOT NULL,
        made_at       INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE rl_feedback (
        feedback_id   TEXT    PRIMARY KEY,
        prediction_id TEXT    NOT NULL UNIQUE REFERENCES rl_predictions (prediction_id),
        actual_action TEXT    NOT NULL,
        outcome       TEXT    NOT NULL,
        reward        REAL    NOT NULL,
        given_by      TEXT    NOT NULL,
        given_at      INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE rl_model (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    );
    INSERT INTO rl_model (id, version) VALUES (1, 0);
"#,
    r#"
    -- Idempotency-Key claims and answers; status is NULL while the first request runs.
    CREATE TABLE idempotency_keys (
        user_id      INTEGER NOT NULL,
        key          TEXT    NOT NULL,
        request      TEXT    NOT NULL,
        boot         TEXT    NOT NULL,
        created_at   INTEGER NOT NULL,
        status       INTEGER,
        content_type TEXT,
        body         BLOB,
        fingerprint  TEXT,
        PRIMARY KEY (user_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
"#,
    r#"
    -- When Kafka acknowledged a timeline's event, recorded as the relay reports deliveries, so
    -- the timeline can say "delivered at" after the outbox has deleted the row.
    -- seq is the event's order key in the outbox, the key delivery reports name it by.
    ALTER TABLE case_events ADD COLUMN seq INTEGER;
    ALTER TABLE case_events ADD COLUMN delivered_at INTEGER;
    -- When an admin's clear dropped the event from the queue before Kafka had it.
    ALTER TABLE case_events ADD COLUMN cleared_at INTEGER;
    CREATE INDEX case_events_by_seq ON case_events (seq) WHERE seq IS NOT NULL;
"#,
    // Failed logins are counted per client too, so a lock on an account from one address does
    // not refuse the right password from another, and one address spraying many accounts slows.
    r#"
    ALTER TABLE login_failures ADD COLUMN client TEXT NOT NULL DEFAULT '';
    CREATE INDEX login_failures_by_client ON login_failures (client, at);
    CREATE INDEX login_failures_by_time ON login_failures (at);
"#,
    // Every piece of evidence belongs to a real case: evidence added for a case that did not
    // exist (the guide's scenario does) gets its case, opened by its first uploader, and the
    // year's counter moves past it.
    r#"
    INSERT INTO cases (case_id, title, description, status, created_by, created_at, updated_at)
    SELECT e.case_id, e.case_id, 'Opened by the first evidence added to it.', 'open',
           (SELECT f.uploaded_by FROM evidence f WHERE f.case_id = e.case_id ORDER BY f.uploaded_at LIMIT 1),
           MIN(e.uploaded_at), MIN(e.uploaded_at)
      FROM evidence e
     WHERE e.case_id NOT IN (SELECT case_id FROM cases)
     GROUP BY e.case_id;
    INSERT INTO case_counters (year, last)
    SELECT CAST(substr(case_id, 6, 4) AS INTEGER), MAX(CAST(substr(case_id, 11) AS INTEGER))
      FROM cases
     WHERE case_id GLOB 'CASE-[0-9][0-9][0-9][0-9]-[0-9]*'
     GROUP BY substr(case_id, 6, 4)
     ON CONFLICT (year) DO UPDATE SET last = MAX(last, excluded.last);
"#,
    // Wallets of other chains than EVM ones: each record keeps the chain its address was
    // detected as, and the key its spellings share (lowercase for hex and bech32, the address
    // itself for base58, which is case-sensitive). Every wallet before was an EVM one.
    r#"
    ALTER TABLE evidence ADD COLUMN wallet_chain TEXT NOT NULL DEFAULT 'evm';
    ALTER TABLE evidence ADD COLUMN wallet_key TEXT;
    UPDATE evidence SET wallet_key = lower(wallet);
    CREATE INDEX evidence_by_wallet ON evidence (wallet_key);
"#,
    // Tamper-evident timelines: each case event's place in its case's hash chain and the
    // chained document, and each case's chain head. Events recorded before stay unchained.
    r#"
    ALTER TABLE case_events ADD COLUMN chain_sequence INTEGER;
    ALTER TABLE case_events ADD COLUMN chain_hash TEXT;
    ALTER TABLE case_events ADD COLUMN document TEXT;
    ALTER TABLE cases ADD COLUMN chain_length INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE cases ADD COLUMN chain_head TEXT;
"#,
    // Anchoring done by Casewire itself: each request waits (batch_id NULL) until the worker
    // puts it in a batch, one signed transaction saved before it is broadcast. Anchors made by
    // the worker keep their proof; receipts typed in by a person have none.
    r#"
    CREATE TABLE anchor_batches (
        batch_id               INTEGER PRIMARY KEY,
        chain_id               INTEGER NOT NULL,
        sender                 TEXT    NOT NULL,
        nonce                  INTEGER NOT NULL,
        contract               TEXT,
        root                   TEXT    NOT NULL,
        tx_hash                TEXT    NOT NULL,
        raw_tx                 BLOB    NOT NULL,
        state                  TEXT    NOT NULL
            CHECK (state IN ('signed', 'pending', 'included', 'anchored', 'failed')),
        block_number           INTEGER,
        block_hash             TEXT,
        confirmations          INTEGER NOT NULL DEFAULT 0,
        required_confirmations INTEGER NOT NULL,
        attempts               INTEGER NOT NULL DEFAULT 0,
        last_error             TEXT,
        created_at             INTEGER NOT NULL,
        updated_at             INTEGER NOT NULL
    );
    -- One transaction in flight per key.
    CREATE UNIQUE INDEX anchor_batches_in_flight ON anchor_batches (sender)
        WHERE state IN ('signed', 'pending', 'included');
    CREATE TABLE anchor_requests (
        evidence_id  TEXT    PRIMARY KEY REFERENCES evidence (evidence_id),
        file_hash    TEXT    NOT NULL,
        salt         TEXT    NOT NULL,
        requested_by TEXT    NOT NULL,
        requested_at INTEGER NOT NULL,
        batch_id     INTEGER REFERENCES anchor_batches (batch_id),
        leaf_index   INTEGER,
        last_error   TEXT
    ) WITHOUT ROWID;
    CREATE INDEX anchor_requests_waiting ON anchor_requests (requested_at, evidence_id)
        WHERE batch_id IS NULL;
    CREATE INDEX anchor_requests_by_batch ON anchor_requests (batch_id, leaf_index)
        WHERE batch_id IS NOT NULL;
    ALTER TABLE evidence_anchors ADD COLUMN proof TEXT;
"#,
    // 12: the heads of case timelines, anchored in the evidence batches (a leaf per case
    // whose head moved since it was last anchored), each with its proof once anchored and the
    // place in the case's chain of the event that announced it: the anchoring's own events
    // up to there do not count as a move, or every batch would anchor every case again.
    r#"
    CREATE TABLE case_head_anchors (
        batch_id   INTEGER NOT NULL REFERENCES anchor_batches (batch_id),
        case_id    TEXT    NOT NULL REFERENCES cases (case_id),
        sequence   INTEGER NOT NULL,
        head       TEXT    NOT NULL,
        salt       TEXT    NOT NULL,
        leaf_index INTEGER NOT NULL,
        proof      TEXT,
        announced  INTEGER,
        PRIMARY KEY (batch_id, case_id)
    ) WITHOUT ROWID;
    CREATE INDEX case_head_anchors_by_case ON case_head_anchors (case_id, sequence);
"#,
];

/// Brings the domain's tables up to date inside the outbox's database, in one transaction.
pub fn migrate(outbox: &Outbox) -> Result<(), CoreError> {
    outbox
        .write(|tx| {
            tx.execute_batch("CREATE TABLE IF NOT EXISTS core_schema (version INTEGER NOT NULL)")?;
            let version: Option<i64> =
                tx.query_row("SELECT MAX(version) FROM core_schema", [], |r| r.get(0))?;
            let version = usize::try_from(version.unwrap_or(0)).unwrap_or(0);
            if version > MIGRATIONS.len() {
                return Err(CoreError::Invalid(format!(
                    "the database's domain schema is version {version}, newer than this Casewire's {}; upgrade to open it",
                    MIGRATIONS.len()
                )));
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
                tx.execute_batch(sql)?;
                tx.execute("INSERT INTO core_schema (version) VALUES (?1)", [i as i64 + 1])?;
            }
            Ok(())
        })
        .wait()
}
