//! The Casewire outbox: a durable queue of events on SQLite, written in the same transactions as
//! the records the events describe.
//!
//! # Design constraints
//! - **Durable before acknowledged.** A write is reported done only after its transaction has
//!   committed (`synchronous=FULL`, WAL; `fullfsync` on macOS). [`Durability::Normal`] trades
//!   this for speed: it survives an application crash, not a power loss.
//! - **Record and event together.** [`Outbox::write`] runs a caller's closure on a transaction;
//!   [`WriteTx::enqueue`] puts the event in that same transaction.
//! - **O(1) work per event.** Enqueue is one insert (plus two index entries and a counter update
//!   by trigger; and, when the quota is reached, deleting delivered rows to make room); an
//!   acknowledgement sets a bit; the queue is never rewritten. Stats read
//!   counters, not the queue.
//! - **Bounded.** Queued, dead-lettered and delivered-but-not-yet-deleted documents may take at
//!   most `quota_bytes`; delivered rows are deleted to make room first, and past it
//!   [`WriteTx::enqueue`] fails with [`Error::QueueFull`] and nothing queued is dropped.
//!
//! # Group commit
//! One writer thread owns the write connection. Callers send it closures; it takes every closure
//! waiting at that moment, runs each in its own savepoint of one transaction, and commits once.
//! A failing closure rolls back its savepoint alone. While one batch is being fsynced the next
//! one gathers, so under concurrency many writes share one fsync. See `writer.rs`.
//!
//! # Schema (see `schema.rs`)
//! - `outbox_events(seq PK, event_id UNIQUE, event_type, priority, partition_key, payload,
//!   added_at, attempts, next_attempt_at, first_error_at, last_error_at, last_error)`: the
//!   queue. `seq` is the commit order and the order key, never given twice: an enqueue takes the
//!   highest order key ever given plus one, from `outbox_counters`. Its only indexes are the
//!   primary key and the unique `event_id`: each index is paid for on every enqueue and
//!   acknowledgement.
//! - `dead_letters(seq PK, event_id UNIQUE, …, reason, dead_at)`: given-up events, keeping their
//!   original `seq` so a replay slots them back into their key's order.
//! - `outbox_counters(bucket, events, bytes)`: 4 priority buckets, one for dead letters, one for
//!   delivered rows awaiting deletion, and the highest order key given (row 6). Inserts are counted by trigger; deletes by the outbox,
//!   which alone knows whether the row was queued or delivered.
//! - `outbox_delivered(block, bits)`: delivered order keys, one 4,096-bit map per block; their
//!   rows wait for the writer to delete them (see `acked.rs`).
//! - `outbox_audit`: who cleared the queue or replayed or discarded dead letters.
//! - `legacy_imports`: ids imported from the guide's `pending_events.json`.
//!
//! # States of an event
//! ```text
//!  enqueue ──► queued ──claim──► in flight ──ack──► delivered ──idle sweep──► (deleted)
//!                ▲                  │
//!                │  fail(Unreachable: attempts unchanged, due now)
//!                ├──────────────────┤
//!                │  fail(Retriable: attempts+1, due after backoff)
//!                └──────────────────┤
//!                                   │ fail(Permanent) or attempts > max_retries
//!                                   ▼
//!            replay ◄──────── dead letter ──discard──► (deleted, audited)
//! ```
//! "Delivered" is durable (a bit in `outbox_delivered`, set in the acknowledgement's
//! transaction): a delivered row is never claimed again, and leaves the file when the writer has
//! nothing else to do or the quota needs its room.
//!
//! "In flight" lives in memory only: after a crash or restart every queued event is claimable
//! again, so an event Kafka received but whose acknowledgement was not yet committed is sent a
//! second time, with the same `eventId`. That is the only way a duplicate arises.
//!
//! # Claim order
//! [`Outbox::claim`] walks the queue in `seq` order and hands out due events such that, for every
//! partition key, the events in flight are a prefix of that key's queued events: an event is
//! claimable only when every earlier event of its key is already in flight. A failed event that
//! waits for its retry therefore holds back the later events of its key, and only those. The
//! caller keeps per-key order among in-flight events (Kafka's idempotent producer does, per
//! partition) and, when one fails, also fails the later in-flight events of the same key.
//!
//! # Why no acknowledged event is lost
//! 1. An event exists once its transaction commits, and the caller hears of success only then.
//! 2. Events leave the queue in three ways only: [`Outbox::ack`] (after the caller's transport
//!    confirmed delivery; the row is deleted later), a move to `dead_letters` in the same
//!    transaction as the delete, or [`Outbox::clear`], an explicit action written to
//!    `outbox_audit` and announced by a `system.alert` event in the same transaction. A sweep
//!    deletes only rows whose delivered bit is set.
//! 3. Rows leave `dead_letters` only by [`Outbox::replay`] (back into the queue, same
//!    transaction) or [`Outbox::discard`] (explicit, audited).
//! 4. A file that fails `PRAGMA quick_check` at open is never deleted: it is renamed aside and
//!    the fresh database's first event is a critical `system.alert` naming it.
#![deny(missing_docs)]

mod acked;
mod cipher;
mod clock;
mod legacy;
mod queue;
mod retry;
mod schema;
mod writer;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use casewire_events::{Event, EventError, EventType, Limits, Metadata, Priority};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use rusqlite::Connection;
use serde_json::{Map, Value};
use tokio::sync::watch;

pub use acked::{DEFAULT_SWEEP_AFTER_IDLE, Delivered};
pub use cipher::{DatabaseKey, encrypt_in_place, is_plaintext};
pub use clock::{Clock, ManualClock, SystemClock};
pub use legacy::ImportReport;
pub use queue::{
    BrokerStatus, Claim, ClaimedEvent, DeadLetter, DeliveryState, FailKind, FailOutcome, Failure,
    Page, PriorityCounts, QueueFilter, QueueStats, QueuedEvent,
};
pub use retry::{DEFAULT_MAX_RETRIES, DEFAULT_RETRY_INTERVAL, RetryPolicy};
pub use writer::{DeliveryTotals, Pending, PendingFuture, WriteTx};

/// The default quota on the event documents in the file (queued, dead-lettered, and delivered
/// but not yet deleted): 1 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 1 << 30;

/// Everything that can go wrong in the outbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The event failed validation; nothing was written.
    #[error("invalid event: {0}")]
    InvalidEvent(#[from] EventError),
    /// An event with this id is already queued or dead-lettered.
    #[error("event {0} is already in the outbox")]
    DuplicateEventId(String),
    /// The quota is reached; the write was refused and nothing queued was dropped.
    #[error(
        "event queue is full: {used_bytes} of {quota_bytes} bytes used, {needed_bytes} more needed; deliver or discard events first"
    )]
    QueueFull {
        /// Bytes of documents counted by the quota now.
        used_bytes: u64,
        /// The configured quota.
        quota_bytes: u64,
        /// The size of the refused event.
        needed_bytes: u64,
    },
    /// The database file could not be opened (permissions, missing directory, failing disk).
    #[error("cannot open outbox database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database file is damaged. [`Outbox::open`] handles this by quarantining the file.
    #[error("outbox database {path} is corrupt: {detail}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What `quick_check` or SQLite reported.
        detail: String,
    },
    /// The file cannot be read with the key given (or without one, when it is encrypted).
    /// Nothing is changed on disk: a wrong key must never look like a corrupt file.
    #[error(
        "outbox database {path} cannot be read with the key given: the key is wrong, or the file is not a Casewire database encrypted with it; nothing was changed"
    )]
    WrongKey {
        /// The database file.
        path: PathBuf,
    },
    /// The database was written by a newer Casewire whose schema this one does not know.
    #[error("outbox database was written by a newer version of Casewire; upgrade to open it")]
    NewerSchema,
    /// Another process has the outbox open.
    #[error("outbox database {0} is in use by another Casewire process")]
    Locked(PathBuf),
    /// A schema migration failed.
    #[error("outbox schema migration failed: {0}")]
    Migration(#[source] rusqlite_migration::Error),
    /// The platform or filesystem lacks something the outbox needs.
    #[error("unsupported storage: {0}")]
    Unsupported(String),
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The guide's queue file could not be imported; it was left untouched and nothing imported.
    #[error("cannot import {path}: {detail}")]
    LegacyImport {
        /// The queue file.
        path: PathBuf,
        /// What is wrong, naming the line or entry.
        detail: String,
    },
    /// The batch's commit failed (disk full, I/O error); none of its writes happened.
    #[error("outbox commit failed, nothing was written: {0}")]
    Commit(#[source] Arc<rusqlite::Error>),
    /// A SQLite operation failed.
    #[error("outbox storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored event document could not be read back.
    #[error("stored event {seq} is unreadable: {source}")]
    StoredEvent {
        /// The event's order key.
        seq: i64,
        /// The parse error.
        #[source]
        source: EventError,
    },
    /// A caller's closure panicked; its savepoint was rolled back.
    #[error("a write closure panicked; its work was rolled back")]
    CallerPanicked,
    /// The writer thread is gone: the outbox is shutting down or was closed
    /// ([`Outbox::close`]). Nothing of the refused write exists.
    #[error(
        "the outbox is closed (Casewire is stopping or installing an update); nothing was written"
    )]
    WriterStopped,
}

impl Error {
    /// Whether the error is about the caller's input rather than the outbox's health.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            Error::InvalidEvent(_) | Error::DuplicateEventId(_) | Error::QueueFull { .. }
        )
    }
}

/// How hard a commit works to survive failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: every commit is fsynced; survives power loss. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives application crashes, not power loss or OS crashes.
    Normal,
}

/// Where the outbox keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// A SQLite database file (created if missing). `QUEUE_PERSIST=true`.
    File(PathBuf),
    /// A private in-memory database, gone when the outbox is dropped. `QUEUE_PERSIST=false`.
    Memory,
}

/// How to open an outbox.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Where the data lives.
    pub storage: Storage,
    /// Commit durability.
    pub durability: Durability,
    /// Most bytes of event documents in the file: queued, dead-lettered, and delivered but not
    /// yet deleted (those are deleted first when room is needed).
    pub quota_bytes: u64,
    /// Retry schedule and `MAX_RETRIES`.
    pub retry: RetryPolicy,
    /// Event validation limits.
    pub limits: Limits,
    /// The guide's `pending_events.json`, imported at open if it exists.
    pub legacy_queue_file: Option<PathBuf>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Seed for jitter and for the ids of events the outbox creates; `None` seeds from the OS.
    pub rng_seed: Option<u64>,
    /// How long the writer waits with nothing to do before it deletes the rows of delivered
    /// events; `None` leaves them to [`Outbox::sweep_delivered`] and to the quota.
    pub sweep_after_idle: Option<Duration>,
    /// The key the database file is encrypted with (SQLCipher); `None` for an unencrypted file.
    pub key: Option<DatabaseKey>,
}

impl OutboxConfig {
    /// Defaults for a database file at `path`.
    pub fn file(path: impl Into<PathBuf>) -> OutboxConfig {
        OutboxConfig {
            storage: Storage::File(path.into()),
            ..OutboxConfig::memory()
        }
    }

    /// Defaults for an in-memory outbox.
    pub fn memory() -> OutboxConfig {
        OutboxConfig {
            storage: Storage::Memory,
            durability: Durability::Full,
            quota_bytes: DEFAULT_QUOTA_BYTES,
            retry: RetryPolicy::default(),
            limits: Limits::default(),
            legacy_queue_file: None,
            clock: Arc::new(SystemClock),
            rng_seed: None,
            sweep_after_idle: Some(DEFAULT_SWEEP_AFTER_IDLE),
            key: None,
        }
    }
}

/// What happened while opening the outbox.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// Events queued at open ("Loaded N queued events from disk").
    pub loaded: u64,
    /// Where a corrupt database was moved, if one was found.
    pub quarantined: Option<PathBuf>,
    /// What was imported from the guide's queue file, if one was found.
    pub imported: Option<ImportReport>,
}

/// Claimed events awaiting their outcome.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    /// Order key → what an acknowledgement needs to know of the event.
    pub(crate) events: HashMap<i64, Claimed>,
    /// Every queued event with an order key up to this one is in flight, so a claim may start
    /// after it instead of stepping over the whole window again. Reset whenever an event at or
    /// below it may become claimable again (a failure, a replay, a clear).
    pub(crate) cursor: Option<i64>,
    /// The committed delivered marks (rows not yet deleted), which claims skip.
    pub(crate) delivered: acked::Delivered,
    /// The last claim filled its window: a backlog is being drained, and delivered rows are
    /// not deleted meanwhile.
    pub(crate) draining: bool,
    /// [`Shared::removals`] as of the last commit, set under this lock with the commit: what
    /// a claim's snapshot of the queue has seen.
    pub(crate) removals_committed: u64,
}

/// An event in flight, as its claim found it: an acknowledgement moves its counts without
/// reading its row again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Claimed {
    pub(crate) priority: u8,
    /// Bytes of its document.
    pub(crate) size: i64,
    /// [`InFlight::removals_committed`] when it was claimed, which its claim's snapshot
    /// reflects: if rows have been deleted since (committed or not), the acknowledgement reads
    /// the row instead.
    pub(crate) removals: u64,
}

/// State the writer thread and the readers share.
pub(crate) struct Shared {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) retry: RetryPolicy,
    pub(crate) limits: Limits,
    pub(crate) quota_bytes: u64,
    pub(crate) sweep_after_idle: Option<Duration>,
    pub(crate) rng: Mutex<StdRng>,
    /// Count of events committed since open; the relay waits on changes.
    pub(crate) committed: watch::Sender<u64>,
    /// Claimed events awaiting their outcome.
    pub(crate) in_flight: Mutex<InFlight>,
    pub(crate) broker: Mutex<BrokerStatus>,
    /// Enqueues refused for want of space since open.
    pub(crate) rejected_full: AtomicU64,
    /// Transactions committed by the writer since open.
    pub(crate) commits: AtomicU64,
    /// Bumped by the writer whenever a job deletes queue rows (a dead-letter move, a clear, a
    /// sweep), as the job runs, before its commit.
    pub(crate) removals: AtomicU64,
    /// Committed delivery outcomes since open.
    pub(crate) totals: Mutex<DeliveryTotals>,
    /// Set by [`Outbox::close`]'s job as it runs: the writer stops after that batch.
    pub(crate) closing: AtomicBool,
}

impl Shared {
    pub(crate) fn in_flight(&self) -> MutexGuard<'_, InFlight> {
        lock(&self.in_flight)
    }

    /// A system event created by the outbox itself.
    pub(crate) fn system_event(
        &self,
        event_type: EventType,
        priority: Priority,
        data: Map<String, Value>,
    ) -> Event {
        let mut rng = lock(&self.rng);
        Event::new(
            event_type,
            data,
            Metadata {
                source: Some(casewire_events::DEFAULT_SOURCE.to_owned()),
                ..Metadata::default()
            },
            self.clock.now(),
            &mut *rng,
        )
        .with_priority(priority)
    }

    /// A uniform random number in [-1, 1] for jitter.
    pub(crate) fn jitter_unit(&self) -> f64 {
        let x = lock(&self.rng).next_u64();
        (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// Locks a mutex, recovering it if a panicking thread poisoned it: every structure behind these
/// mutexes is valid between statements, so a panic cannot leave one half-updated.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A durable event queue. Share it with an `Arc`; dropping the last one stops the writer after
/// it has committed every write already submitted.
pub struct Outbox {
    shared: Arc<Shared>,
    jobs: Option<Sender<writer::Job>>,
    /// Taken by whichever of [`Outbox::close`] and `drop` comes first.
    writer: Mutex<Option<JoinHandle<()>>>,
    reader: Mutex<Connection>,
    report: OpenReport,
    /// Held for the outbox's lifetime so a second process cannot open the same file.
    _lock: Option<File>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Opens (creating if needed) the outbox, checks the file, applies migrations, imports the
    /// guide's queue file if configured and present, and starts the writer.
    pub fn open(config: OutboxConfig) -> Result<Outbox, Error> {
        let (committed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            clock: config.clock.clone(),
            retry: config.retry.clone(),
            limits: config.limits,
            quota_bytes: config.quota_bytes,
            sweep_after_idle: config.sweep_after_idle,
            rng: Mutex::new(match config.rng_seed {
                Some(seed) => StdRng::seed_from_u64(seed),
                None => StdRng::from_os_rng(),
            }),
            committed,
            in_flight: Mutex::new(InFlight::default()),
            broker: Mutex::new(BrokerStatus::default()),
            rejected_full: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            removals: AtomicU64::new(0),
            totals: Mutex::new(DeliveryTotals::default()),
            closing: AtomicBool::new(false),
        });
        let mut report = OpenReport::default();
        let (write_conn, reader, lock_file) = match &config.storage {
            Storage::File(path) => {
                let lock_file = lock_database(path)?;
                create_private(path)?;
                let key = config.key.as_ref();
                let opened = schema::open_file(path, config.durability, shared.clock.now(), key)?;
                report.quarantined = opened.quarantined;
                let reader = Connection::open(path).map_err(|source| Error::Open {
                    path: path.clone(),
                    source,
                })?;
                cipher::apply_key(&reader, key)?;
                schema::configure(&reader, config.durability, true)?;
                (opened.conn, reader, Some(lock_file))
            }
            Storage::Memory => {
                let name = format!("casewire-outbox-{:016x}", lock(&shared.rng).next_u64());
                let mut conn = schema::open_memory(&name)?;
                schema::migrate(&mut conn)?;
                let reader = schema::open_memory(&name)?;
                (conn, reader, None)
            }
        };
        // The reader only ever reads: claims, stats, and the domain's queries (`Outbox::read`).
        reader
            .execute_batch("PRAGMA query_only = ON")
            .map_err(Error::Sqlite)?;
        shared.in_flight().delivered = acked::Delivered::load(&write_conn)?;
        let (jobs, receiver) = mpsc::channel();
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("outbox-writer".into())
            .spawn(move || writer::run(write_conn, writer_shared, receiver))
            .map_err(|source| Error::Io {
                path: PathBuf::from("outbox-writer thread"),
                source,
            })?;
        let mut outbox = Outbox {
            shared,
            jobs: Some(jobs),
            writer: Mutex::new(Some(writer)),
            reader: Mutex::new(reader),
            report: OpenReport::default(),
            _lock: lock_file,
        };
        if let Some(aside) = &report.quarantined {
            outbox.raise_quarantine_alert(aside)?;
        }
        if let Some(file) = config.legacy_queue_file.as_deref().filter(|f| f.exists()) {
            report.imported = Some(outbox.import_legacy(file)?);
        }
        report.loaded = outbox.stats(Page::first(0))?.queue_size;
        tracing::info!("Loaded {} queued events from disk", report.loaded);
        outbox.report = report;
        Ok(outbox)
    }

    /// What happened at open.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// Runs `f` on the shared transaction and reports its result once it is durable.
    /// Whatever `f` writes, records and events alike, commits together or not at all.
    pub fn write<T, E, F>(&self, f: F) -> Pending<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&WriteTx<'_>) -> Result<T, E> + Send + 'static,
    {
        match &self.jobs {
            Some(jobs) => writer::submit(jobs, f),
            // Only `drop` takes the sender, and nothing can call `write` after that.
            None => writer::submit(&mpsc::channel().0, f),
        }
    }

    /// Runs `f` on the read connection: queries see everything committed, never wait behind a
    /// commit, and cannot write (the connection is `query_only`). For lookups that change
    /// nothing; anything that writes goes through [`Outbox::write`].
    pub fn read<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        f(&lock(&self.reader))
    }

    /// Enqueues one event on its own (the convenience form of [`WriteTx::enqueue`]).
    /// The event is validated and serialised on the calling thread.
    pub fn enqueue(&self, event: &Event) -> Pending<()> {
        match queue::PreparedEvent::new(event, &self.shared.limits) {
            // One INSERT (its triggers included) is all or nothing by itself: no savepoint. (A
            // sweep that makes room first has a savepoint of its own.)
            Ok(prepared) => match &self.jobs {
                Some(jobs) => {
                    writer::submit_single_statement(jobs, move |tx| tx.enqueue_prepared(&prepared))
                }
                None => self.write(move |tx| tx.enqueue_prepared(&prepared)),
            },
            Err(e) => {
                let (tx, rx) = futures_channel::oneshot::channel();
                let _ = tx.send(Err(e));
                writer::Pending::from_receiver(rx)
            }
        }
    }

    /// A receiver whose value changes whenever a commit added events: the relay waits on it.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.committed.subscribe()
    }

    /// Records what the relay knows of the brokers, for [`Outbox::stats`].
    pub fn set_broker_status(&self, status: BrokerStatus) {
        *lock(&self.shared.broker) = status;
    }

    /// Delivery outcomes committed since open: published, failed, dead-lettered, and attempts
    /// while no broker was reachable (for `/metrics`).
    pub fn delivery_totals(&self) -> DeliveryTotals {
        *lock(&self.shared.totals)
    }

    /// Transactions the writer has committed since open; writes per commit shows how well group
    /// commit is sharing fsyncs.
    pub fn commit_count(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    /// The retry policy in force.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.shared.retry
    }

    /// Closes the outbox for good while it is still shared: every write submitted before the
    /// call is committed (and reported to its caller), the WAL is checkpointed into the
    /// database file, and every later write is refused with [`Error::WriterStopped`]. Returns
    /// once the writer has stopped. Reads still work. For what must not run while events are
    /// being written, such as an update's installer replacing the app.
    pub fn close(&self) {
        let Some(writer) = lock(&self.writer).take() else {
            return;
        };
        // A job like any other, so the channel's order puts every earlier write before it.
        let shared = self.shared.clone();
        let _ = self.write(move |_| -> Result<(), Error> {
            shared.closing.store(true, Ordering::SeqCst);
            Ok(())
        });
        let _ = writer.join();
        tracing::info!("outbox closed: every write committed, the WAL checkpointed");
    }

    fn raise_quarantine_alert(&self, aside: &Path) -> Result<(), Error> {
        let mut data = Map::new();
        data.insert(
            "message".into(),
            format!(
                "outbox database was corrupt; it was moved to {} and a fresh one started",
                aside.display()
            )
            .into(),
        );
        data.insert("quarantinedFile".into(), aside.display().to_string().into());
        let event = self
            .shared
            .system_event(EventType::SystemAlert, Priority::Critical, data);
        self.enqueue(&event).wait()
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish the jobs already sent, then exit.
        self.jobs.take();
        if let Some(writer) = lock(&self.writer).take() {
            let _ = writer.join();
        }
    }
}

/// Creates the database file empty and readable by its owner alone if it does not exist, so
/// SQLite opens it rather than creating it with the umask's mode (its WAL and shared-memory
/// files then take the same mode).
pub(crate) fn create_private(path: &Path) -> Result<(), Error> {
    let mut options = File::options();
    options.create_new(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(Error::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Takes an exclusive lock on `<database>.lock`, so two processes never share one outbox.
pub(crate) fn lock_database(path: &Path) -> Result<File, Error> {
    let lock_path = PathBuf::from(format!("{}.lock", path.display()));
    let mut options = File::options();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&lock_path).map_err(|source| Error::Io {
        path: lock_path.clone(),
        source,
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(path.to_owned())),
        Err(std::fs::TryLockError::Error(source)) => Err(Error::Io {
            path: lock_path,
            source,
        }),
    }
}
