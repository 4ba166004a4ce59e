//! The outbox's tables, their migrations, and how a database file is opened and checked.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use rusqlite_migration::{M, Migrations};

use crate::{DatabaseKey, Durability, Error};

/// Counter rows of `outbox_counters`: 0–3 hold queued events by priority rank, 4 dead letters,
/// 5 delivered events whose rows are not yet deleted.
pub(crate) const DEAD_BUCKET: i64 = 4;
/// See [`DEAD_BUCKET`].
pub(crate) const DELIVERED_BUCKET: i64 = 5;
/// Not a count: the row whose `events` is the highest order key ever given, so that no order
/// key is given twice (see migration 5). Kept in `outbox_counters` because every enqueue
/// already writes that table's one page.
pub(crate) const ORDER_KEY_ROW: i64 = 6;

static MIGRATIONS: LazyLock<Migrations<'static>> = LazyLock::new(|| {
    Migrations::new(vec![
        M::up(
            r#"
        -- The queue, in commit order. `seq` is the order key; AUTOINCREMENT keeps a replayed
        -- dead letter's old seq from ever being reused by a new event.
        CREATE TABLE outbox_events (
            seq             INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id        TEXT    NOT NULL UNIQUE,
            event_type      TEXT    NOT NULL,
            priority        INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 3),
            partition_key   TEXT    NOT NULL,
            payload         BLOB    NOT NULL,
            added_at        INTEGER NOT NULL,
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            first_error_at  INTEGER,
            last_error_at   INTEGER,
            last_error      TEXT
        );
        CREATE INDEX outbox_events_added_at ON outbox_events (added_at);

        -- Events that will not be retried, with why. Only an explicit replay or discard
        -- removes a row. `seq` is the event's original order key, kept for replay.
        CREATE TABLE dead_letters (
            seq            INTEGER PRIMARY KEY,
            event_id       TEXT    NOT NULL UNIQUE,
            event_type     TEXT    NOT NULL,
            priority       INTEGER NOT NULL,
            partition_key  TEXT    NOT NULL,
            payload        BLOB    NOT NULL,
            added_at       INTEGER NOT NULL,
            attempts       INTEGER NOT NULL,
            reason         TEXT    NOT NULL,
            first_error_at INTEGER,
            last_error_at  INTEGER,
            dead_at        INTEGER NOT NULL
        );

        -- Event counts and document bytes, kept by triggers in the same transactions as the
        -- rows, so stats and the quota never scan the queue.
        CREATE TABLE outbox_counters (
            bucket INTEGER PRIMARY KEY,
            events INTEGER NOT NULL,
            bytes  INTEGER NOT NULL
        );
        INSERT INTO outbox_counters (bucket, events, bytes)
            VALUES (0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0), (4, 0, 0);

        CREATE TRIGGER outbox_events_counted_in AFTER INSERT ON outbox_events BEGIN
            UPDATE outbox_counters SET events = events + 1, bytes = bytes + length(NEW.payload)
                WHERE bucket = NEW.priority;
        END;
        CREATE TRIGGER outbox_events_counted_out AFTER DELETE ON outbox_events BEGIN
            UPDATE outbox_counters SET events = events - 1, bytes = bytes - length(OLD.payload)
                WHERE bucket = OLD.priority;
        END;
        CREATE TRIGGER dead_letters_counted_in AFTER INSERT ON dead_letters BEGIN
            UPDATE outbox_counters SET events = events + 1, bytes = bytes + length(NEW.payload)
                WHERE bucket = 4;
        END;
        CREATE TRIGGER dead_letters_counted_out AFTER DELETE ON dead_letters BEGIN
            UPDATE outbox_counters SET events = events - 1, bytes = bytes - length(OLD.payload)
                WHERE bucket = 4;
        END;
        -- An event id is unique across the queue and the dead letters.
        CREATE TRIGGER outbox_events_unique_id BEFORE INSERT ON outbox_events
            WHEN EXISTS (SELECT 1 FROM dead_letters WHERE event_id = NEW.event_id)
        BEGIN
            SELECT RAISE(ABORT, 'UNIQUE constraint failed: dead_letters.event_id');
        END;

        -- Who cleared the queue, discarded or replayed dead letters, and when.
        CREATE TABLE outbox_audit (
            id      INTEGER PRIMARY KEY,
            at      INTEGER NOT NULL,
            actor   TEXT    NOT NULL,
            action  TEXT    NOT NULL,
            count   INTEGER NOT NULL,
            detail  TEXT
        );

        -- Event ids taken from the guide's pending_events.json, so no file is imported twice.
        CREATE TABLE legacy_imports (
            event_id    TEXT PRIMARY KEY,
            imported_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        "#,
        ),
        // Every insert and every acknowledgement paid for an index only the stats used: the
        // oldest queued event is now the queue's head (see `Outbox::stats`).
        M::up("DROP INDEX outbox_events_added_at;"),
        // Acknowledging deleted each delivered row at once, and a delete is the dearest thing
        // the queue does (a B-tree rebalance and a page of WAL per few rows): the relay drained
        // at about half the rate of a bare producer. Now an acknowledgement sets the delivered
        // order keys' bits in `outbox_delivered` (one bitmap per 4,096 order keys) and moves
        // the events' counts to bucket 5; the writer deletes the rows later (`acked.rs`), and
        // counts each deleted row itself, knowing whether it was queued or delivered.
        M::up(
            r#"
        CREATE TABLE outbox_delivered (
            block INTEGER PRIMARY KEY,
            bits  BLOB    NOT NULL
        );
        INSERT INTO outbox_counters (bucket, events, bytes) VALUES (5, 0, 0);
        DROP TRIGGER outbox_events_counted_out;
        "#,
        ),
        // At every start the refusal events already queued are counted against their share of
        // the quota; without an index that read every row of a large queue. A partial index
        // holds only refusals, so other events' inserts do not pay for it.
        M::up(
            "CREATE INDEX outbox_events_refusals ON outbox_events (event_type)
               WHERE event_type = 'user.unauthorized_access';",
        ),
        // AUTOINCREMENT kept its high-water mark in `sqlite_sequence`, a page of its own that
        // every enqueue wrote (and, encrypted, paid a fifth of its cipher's cost for). The
        // mark now lives in `outbox_counters` (row `ORDER_KEY_ROW`), on the page every enqueue
        // writes already: an enqueue gives `seq` the mark plus one, and the insert trigger
        // raises the mark. SQLite cannot drop AUTOINCREMENT from a table, so the queue is
        // copied into one without it, in this migration's transaction.
        M::up(
            r#"
        CREATE TABLE outbox_events_rebuilt (
            seq             INTEGER PRIMARY KEY,
            event_id        TEXT    NOT NULL UNIQUE,
            event_type      TEXT    NOT NULL,
            priority        INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 3),
            partition_key   TEXT    NOT NULL,
            payload         BLOB    NOT NULL,
            added_at        INTEGER NOT NULL,
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            first_error_at  INTEGER,
            last_error_at   INTEGER,
            last_error      TEXT
        );
        INSERT INTO outbox_events_rebuilt (seq, event_id, event_type, priority, partition_key,
                payload, added_at, attempts, next_attempt_at, first_error_at, last_error_at,
                last_error)
            SELECT seq, event_id, event_type, priority, partition_key, payload, added_at,
                   attempts, next_attempt_at, first_error_at, last_error_at, last_error
              FROM outbox_events;
        INSERT INTO outbox_counters (bucket, events, bytes) VALUES (6, max(
            coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox_events'), 0),
            coalesce((SELECT max(seq) FROM outbox_events), 0),
            coalesce((SELECT max(seq) FROM dead_letters), 0)), 0);
        DROP TABLE outbox_events;
        DELETE FROM sqlite_sequence WHERE name = 'outbox_events';
        ALTER TABLE outbox_events_rebuilt RENAME TO outbox_events;
        CREATE INDEX outbox_events_refusals ON outbox_events (event_type)
            WHERE event_type = 'user.unauthorized_access';
        CREATE TRIGGER outbox_events_counted_in AFTER INSERT ON outbox_events BEGIN
            UPDATE outbox_counters SET events = events + 1, bytes = bytes + length(NEW.payload)
                WHERE bucket = NEW.priority;
            UPDATE outbox_counters SET events = NEW.seq WHERE bucket = 6 AND events < NEW.seq;
        END;
        CREATE TRIGGER outbox_events_unique_id BEFORE INSERT ON outbox_events
            WHEN EXISTS (SELECT 1 FROM dead_letters WHERE event_id = NEW.event_id)
        BEGIN
            SELECT RAISE(ABORT, 'UNIQUE constraint failed: dead_letters.event_id');
        END;
        "#,
        ),
    ])
});

/// Applies the connection settings every outbox connection uses.
pub(crate) fn configure(conn: &Connection, durability: Durability, wal: bool) -> Result<(), Error> {
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(Error::Sqlite)?;
    if wal {
        // `journal_mode` answers with the mode in force; WAL is refused only by odd filesystems.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(Error::Sqlite)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Unsupported(format!(
                "the filesystem refused WAL journaling (got {mode})"
            )));
        }
    }
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync};
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -8192;
         PRAGMA journal_size_limit = 67108864;"
    ))
    .map_err(Error::Sqlite)?;
    // `rarray()` lets one statement take a whole window of order keys.
    rusqlite::vtab::array::load_module(conn).map_err(Error::Sqlite)?;
    if cfg!(target_os = "macos") {
        // On macOS fsync() does not reach the platter; F_FULLFSYNC does.
        conn.execute_batch("PRAGMA fullfsync = ON; PRAGMA checkpoint_fullfsync = ON;")
            .map_err(Error::Sqlite)?;
    }
    Ok(())
}

/// Brings the schema up to date, or refuses a database from a newer Casewire.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), Error> {
    MIGRATIONS.to_latest(conn).map_err(|e| match e {
        rusqlite_migration::Error::MigrationDefinition(
            rusqlite_migration::MigrationDefinitionError::DatabaseTooFarAhead,
        ) => Error::NewerSchema,
        other => Error::Migration(other),
    })
}

/// Whether an error means the file's contents are damaged, as opposed to the file being
/// unreachable (permissions, a full or failing disk), which must not trigger a reset.
fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// The outcome of opening a database file.
pub(crate) struct Opened {
    pub(crate) conn: Connection,
    /// Where a corrupt predecessor was moved, if there was one.
    pub(crate) quarantined: Option<PathBuf>,
}

/// Opens `path`, checks it with `PRAGMA quick_check`, and moves a corrupt file aside.
pub(crate) fn open_file(
    path: &Path,
    durability: Durability,
    now: DateTime<Utc>,
    key: Option<&DatabaseKey>,
) -> Result<Opened, Error> {
    match open_checked(path, durability, key) {
        Ok(conn) => Ok(Opened {
            conn,
            quarantined: None,
        }),
        Err(Error::Corrupt { detail, .. }) => {
            let aside = quarantine(path, now)?;
            tracing::error!(
                quarantined = %aside.display(),
                %detail,
                "outbox database is corrupt: moved it aside and started a fresh one"
            );
            let conn = open_checked(path, durability, key)?;
            Ok(Opened {
                conn,
                quarantined: Some(aside),
            })
        }
        Err(e) => Err(e),
    }
}

fn open_checked(
    path: &Path,
    durability: Durability,
    key: Option<&DatabaseKey>,
) -> Result<Connection, Error> {
    let corrupt = |detail: String| Error::Corrupt {
        path: path.to_owned(),
        detail,
    };
    let classify = |e: rusqlite::Error| {
        // An encrypted file read with the wrong key looks exactly like a damaged first page:
        // with a key it is a wrong key, never a corrupt file to move aside.
        if key.is_some() && e.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
            Error::WrongKey {
                path: path.to_owned(),
            }
        } else if is_corruption(&e) {
            corrupt(e.to_string())
        } else {
            Error::Open {
                path: path.to_owned(),
                source: e,
            }
        }
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(classify)?;
    crate::cipher::apply_key(&conn, key)?;
    configure(&conn, durability, true).map_err(|e| match e {
        Error::Sqlite(e) => classify(e),
        other => other,
    })?;
    let verdict: Vec<String> = conn
        .prepare("PRAGMA quick_check")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(classify)?;
    if verdict != ["ok"] {
        return Err(corrupt(verdict.join("; ")));
    }
    migrate(&mut conn)?;
    Ok(conn)
}

/// Renames a damaged database and its WAL files to `<name>.corrupt-<UTC time>`.
fn quarantine(path: &Path, now: DateTime<Utc>) -> Result<PathBuf, Error> {
    let stamp = now.format("%Y%m%dT%H%M%S%.3fZ");
    let aside = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    std::fs::rename(path, &aside).map_err(io)?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            std::fs::rename(&side, format!("{}{suffix}", aside.display())).map_err(io)?;
        }
    }
    Ok(aside)
}

/// Opens a private in-memory database (`QUEUE_PERSIST=false`) that several connections of this
/// process can share through SQLite's `memdb` VFS.
pub(crate) fn open_memory(name: &str) -> Result<Connection, Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(format!("file:/{name}?vfs=memdb"), flags)
        .map_err(Error::Sqlite)?;
    configure(&conn, Durability::Normal, false)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        MIGRATIONS
            .validate()
            .expect("migrations apply to an empty database");
    }

    fn high_water(conn: &Connection) -> i64 {
        conn.query_row(
            "SELECT events FROM outbox_counters WHERE bucket = ?1",
            [ORDER_KEY_ROW],
            |r| r.get(0),
        )
        .expect("the order key row")
    }

    #[test]
    fn the_move_out_of_autoincrement_keeps_every_row_and_the_highest_order_key_given() {
        let mut conn = Connection::open_in_memory().expect("open");
        MIGRATIONS
            .to_version(&mut conn, 4)
            .expect("the schema before");
        conn.execute_batch(
            "INSERT INTO outbox_events (event_id, event_type, priority, partition_key, payload,
                                        added_at, next_attempt_at, attempts, last_error)
             VALUES ('evt_1_a', 'case.created', 2, 'CASE-1', x'7b7d', 1, 1, 0, NULL),
                    ('evt_2_b', 'case.updated', 1, 'CASE-1', x'7b207d', 2, 9, 3, 'timed out'),
                    ('evt_3_c', 'case.updated', 2, 'CASE-2', x'7b7d', 3, 3, 0, NULL);
             -- The newest order key leaves the queue (a dead letter, then discarded).
             DELETE FROM outbox_events WHERE seq = 3;",
        )
        .expect("rows before");
        type Row = (i64, String, i64, Vec<u8>, i64, Option<String>);
        let rows = |conn: &Connection| -> Vec<Row> {
            conn.prepare(
                "SELECT seq, event_id, priority, payload, attempts, last_error
                   FROM outbox_events ORDER BY seq",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?
                .collect()
            })
            .expect("rows")
        };
        let counters = |conn: &Connection| -> Vec<(i64, i64, i64)> {
            conn.prepare("SELECT bucket, events, bytes FROM outbox_counters WHERE bucket < 6")
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect()
                })
                .expect("counters")
        };
        let (before, counted) = (rows(&conn), counters(&conn));

        migrate(&mut conn).expect("migrated");

        assert_eq!(rows(&conn), before);
        assert_eq!(counters(&conn), counted);
        assert_eq!(high_water(&conn), 3, "order key 3 was given once");
        let table: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'outbox_events'",
                [],
                |r| r.get(0),
            )
            .expect("table");
        assert!(!table.contains("AUTOINCREMENT"), "{table}");
        let triggers: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE tbl_name = 'outbox_events'
                   AND name IN ('outbox_events_counted_in', 'outbox_events_unique_id',
                                'outbox_events_refusals')",
                [],
                |r| r.get(0),
            )
            .expect("schema");
        assert_eq!(triggers, 3, "the table's triggers and index are back");
    }

    #[test]
    fn an_insert_raises_the_mark_and_an_older_order_key_put_back_does_not_lower_it() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn).expect("migrated");
        let insert = |conn: &Connection, seq: Option<i64>, id: &str| {
            conn.execute(
                "INSERT INTO outbox_events (seq, event_id, event_type, priority, partition_key,
                                            payload, added_at, next_attempt_at)
                 VALUES (coalesce(?1, (SELECT events + 1 FROM outbox_counters WHERE bucket = 6)),
                         ?2, 'case.created', 2, 'CASE-1', x'7b7d', 1, 1)",
                rusqlite::params![seq, id],
            )
            .expect("insert");
            conn.last_insert_rowid()
        };
        assert_eq!(insert(&conn, None, "evt_1_a"), 1);
        assert_eq!(insert(&conn, None, "evt_2_b"), 2);
        conn.execute("DELETE FROM outbox_events", [])
            .expect("cleared");
        assert_eq!(insert(&conn, None, "evt_3_c"), 3, "not 1 again");
        assert_eq!(
            insert(&conn, Some(2), "evt_2_b"),
            2,
            "a replayed dead letter"
        );
        assert_eq!(high_water(&conn), 3);
        assert_eq!(insert(&conn, None, "evt_4_d"), 4);
    }
}
