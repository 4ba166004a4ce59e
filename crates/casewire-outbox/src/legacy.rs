//! Import of the guide's queue file, `backend/queue/pending_events.json`:
//!
//! ```json
//! [ { "event": { "eventId": …, "eventType": …, "timestamp": …, "data": { … } },
//!     "addedAt": "2024-01-07T12:00:05.000Z", "retryCount": 2, "maxRetries": 10 } ]
//! ```
//!
//! The whole file is parsed and checked before anything is written; one bad entry rejects the
//! file, names the entry, and leaves the file untouched. Entries go in, in file order, in one
//! transaction. Their ids are recorded in `legacy_imports`, so importing the same file again
//! (say, after a crash between the commit and the rename) adds nothing. On success the file is
//! renamed `<name>.imported`.
//!
//! The old `retryCount` is not carried over: the guide counted every timer tick while Kafka was
//! down, and carrying those counts would dead-letter events that never saw a broker.

use std::path::{Path, PathBuf};

use casewire_events::Event;
use chrono::DateTime;
use rusqlite::params;
use serde::Deserialize;
use serde_json::Value;

use crate::queue::PreparedEvent;
use crate::{Error, Outbox};

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Entries in the file.
    pub entries: usize,
    /// Events added to the queue.
    pub imported: usize,
    /// Entries whose event id had been imported before or is already queued.
    pub duplicates: usize,
    /// Where the file was moved.
    pub renamed_to: PathBuf,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyEntry {
    event: Value,
    added_at: Option<String>,
}

impl Outbox {
    /// Imports the guide's queue file; see the module documentation.
    pub fn import_legacy(&self, path: &Path) -> Result<ImportReport, Error> {
        let bad = |detail: String| Error::LegacyImport {
            path: path.to_owned(),
            detail,
        };
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let entries: Vec<Value> = serde_json::from_slice(&bytes).map_err(|e| {
            bad(format!(
                "not a JSON array of queue entries (line {}, column {}: {e})",
                e.line(),
                e.column()
            ))
        })?;
        let mut events = Vec::with_capacity(entries.len());
        for (index, entry) in entries.into_iter().enumerate() {
            let label = entry
                .pointer("/event/eventId")
                .and_then(Value::as_str)
                .map_or_else(
                    || format!("entry {index}"),
                    |id| format!("entry {index} ({id})"),
                );
            let entry: LegacyEntry = serde_json::from_value(entry)
                .map_err(|e| bad(format!("{label}: not a queue entry: {e}")))?;
            let event: Event =
                serde_json::from_value(entry.event).map_err(|e| bad(format!("{label}: {e}")))?;
            let added_at = match entry.added_at {
                Some(at) => DateTime::parse_from_rfc3339(&at)
                    .map_err(|_| bad(format!("{label}: addedAt {at:?} is not an RFC 3339 time")))?
                    .timestamp_millis(),
                None => event.timestamp.timestamp_millis(),
            };
            events.push((PreparedEvent::unchecked(&event), event.event_id, added_at));
        }
        let total = events.len();
        let imported = self
            .write(move |tx| {
                let now = tx.shared.clock.now_ms();
                let mut imported = 0;
                for (prepared, id, added_at) in &events {
                    let known: bool = tx
                        .prepare_cached(
                            "SELECT EXISTS (SELECT 1 FROM legacy_imports WHERE event_id = ?1)
                                 OR EXISTS (SELECT 1 FROM outbox_events WHERE event_id = ?1)
                                 OR EXISTS (SELECT 1 FROM dead_letters WHERE event_id = ?1)",
                        )?
                        .query_row([id.as_str()], |r| r.get(0))?;
                    if known {
                        continue;
                    }
                    tx.insert(prepared, *added_at)?;
                    tx.prepare_cached(
                        "INSERT INTO legacy_imports (event_id, imported_at) VALUES (?1, ?2)",
                    )?
                    .execute(params![id.as_str(), now])?;
                    imported += 1;
                }
                Ok::<_, Error>(imported)
            })
            .wait()?;
        let renamed_to = PathBuf::from(format!("{}.imported", path.display()));
        std::fs::rename(path, &renamed_to).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        tracing::info!(
            imported,
            duplicates = total - imported,
            file = %path.display(),
            "Loaded {imported} queued events from the guide's queue file"
        );
        Ok(ImportReport {
            entries: total,
            imported,
            duplicates: total - imported,
            renamed_to,
        })
    }
}
