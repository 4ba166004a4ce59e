//! The queue's operations: enqueue, claim, ack, fail, stats, dead letters, clear.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use casewire_events::{Event, EventType, Limits, Priority};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{ErrorCode, OptionalExtension, params};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::schema::{DEAD_BUCKET, DELIVERED_BUCKET, ORDER_KEY_ROW};
use crate::writer::WriteTx;
use crate::{Error, Outbox, Pending, lock};

/// An event validated and serialised, ready to insert.
#[derive(Debug, Clone)]
pub(crate) struct PreparedEvent {
    event_id: String,
    event_type: EventType,
    priority: Priority,
    partition_key: String,
    payload: Vec<u8>,
}

impl PreparedEvent {
    pub(crate) fn new(event: &Event, limits: &Limits) -> Result<PreparedEvent, Error> {
        event.validate_data()?;
        let prepared = PreparedEvent::unchecked(event);
        limits.check_size(prepared.payload.len())?;
        Ok(prepared)
    }

    /// Without schema validation: for events imported from the guide's queue file, which the old
    /// system already accepted and which must not be lost for a field it did not require.
    pub(crate) fn unchecked(event: &Event) -> PreparedEvent {
        PreparedEvent {
            event_id: event.event_id.to_string(),
            event_type: event.event_type,
            priority: event.priority,
            partition_key: event.partition_key(),
            payload: event.to_json(),
        }
    }
}

impl WriteTx<'_> {
    /// Puts `event` into the outbox as part of this transaction, after validating it.
    pub fn enqueue(&self, event: &Event) -> Result<(), Error> {
        self.enqueue_prepared(&PreparedEvent::new(event, &self.shared.limits)?)
    }

    /// [`WriteTx::enqueue`], returning the event's order key, the key the relay's delivery
    /// reports name it by.
    pub fn enqueue_returning_seq(&self, event: &Event) -> Result<i64, Error> {
        self.enqueue(event)?;
        // The event's row is the last one this connection inserted: the counters' triggers
        // only update, and a sweep to make room runs before the insert.
        Ok(self.last_insert_rowid())
    }

    pub(crate) fn enqueue_prepared(&self, event: &PreparedEvent) -> Result<(), Error> {
        self.insert(event, self.shared.clock.now_ms())
    }

    pub(crate) fn insert(&self, event: &PreparedEvent, added_at: i64) -> Result<(), Error> {
        let needed = event.payload.len() as u64;
        let mut used = self.quota_used()?;
        // Delivered rows awaiting deletion make room before anything is refused.
        while used + needed > self.shared.quota_bytes && self.delivered_bytes()? > 0 {
            if self.sweep(crate::acked::SWEEP_CHUNK)? == 0 {
                break;
            }
            used = self.quota_used()?;
        }
        if used + needed > self.shared.quota_bytes {
            if self.shared.rejected_full.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::error!(
                    used,
                    quota = self.shared.quota_bytes,
                    "event queue is full: new events are refused until events are delivered or discarded"
                );
            }
            return Err(Error::QueueFull {
                used_bytes: used,
                quota_bytes: self.shared.quota_bytes,
                needed_bytes: needed,
            });
        }
        let now = self.shared.clock.now_ms();
        let inserted = self
            .prepare_cached(
                "INSERT INTO outbox_events
                   (seq, event_id, event_type, priority, partition_key, payload, added_at,
                    next_attempt_at)
                 VALUES ((SELECT events + 1 FROM outbox_counters WHERE bucket = ?8),
                         ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                event.event_id,
                event.event_type.as_str(),
                event.priority.rank(),
                event.partition_key,
                event.payload,
                added_at,
                now,
                ORDER_KEY_ROW,
            ]);
        match inserted {
            Ok(_) => {
                self.enqueued.set(self.enqueued.get() + 1);
                tracing::debug!(event_id = %event.event_id, "Event queued locally");
                Ok(())
            }
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                Err(Error::DuplicateEventId(event.event_id.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Bytes the quota counts now: every counter bucket.
    fn quota_used(&self) -> Result<u64, Error> {
        let used: i64 = self
            .prepare_cached("SELECT SUM(bytes) FROM outbox_counters")?
            .query_row([], |r| r.get(0))?;
        Ok(u64::try_from(used).unwrap_or(0))
    }

    /// [`Outbox::clear`] inside this transaction, so a caller can record in its own tables,
    /// in the same commit, which events the clear drops.
    pub fn clear_queue(&self, actor: &str, ip_address: Option<String>) -> Result<u64, Error> {
        // Delivered rows awaiting deletion go too, but were not queued.
        let cleared: i64 = self
            .prepare_cached("SELECT SUM(events) FROM outbox_counters WHERE bucket < ?1")?
            .query_row([DEAD_BUCKET], |r| r.get(0))?;
        let cleared = usize::try_from(cleared).unwrap_or(0);
        self.note_removal();
        self.execute("DELETE FROM outbox_events", [])?;
        self.forget_delivered()?;
        self.execute(
            "UPDATE outbox_counters SET events = 0, bytes = 0 WHERE bucket NOT IN (?1, ?2)",
            [DEAD_BUCKET, ORDER_KEY_ROW],
        )?;
        *self.released.borrow_mut() = crate::writer::Release::All;
        self.rewinds.set(true);
        self.audit(actor, "clear", cleared, "")?;
        let mut data = Map::new();
        data.insert(
            "message".into(),
            format!("event queue cleared by {actor}: {cleared} events dropped").into(),
        );
        data.insert("clearedCount".into(), Value::from(cleared));
        data.insert("clearedBy".into(), actor.into());
        let mut alert = self
            .shared
            .system_event(EventType::SystemAlert, Priority::Critical, data);
        alert.metadata.user_id = Some(actor.to_owned());
        alert.metadata.ip_address = ip_address;
        self.enqueue(&alert)?;
        tracing::warn!(cleared, %actor, "event queue cleared");
        Ok(cleared as u64)
    }

    /// Whether the event with order key `seq` is acknowledged (its row awaits deletion).
    pub fn is_acknowledged(&self, seq: i64) -> Result<bool, Error> {
        self.is_delivered(seq)
    }

    fn audit(&self, actor: &str, action: &str, count: usize, detail: &str) -> Result<(), Error> {
        self.execute(
            "INSERT INTO outbox_audit (at, actor, action, count, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![self.shared.clock.now_ms(), actor, action, count as i64, detail],
        )?;
        Ok(())
    }
}

/// An event handed to the relay for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedEvent {
    /// The order key: acknowledge and fail by it.
    pub seq: i64,
    /// The event's id.
    pub event_id: String,
    /// The Kafka message key.
    pub partition_key: String,
    /// The event document, the Kafka message value.
    pub payload: Vec<u8>,
    /// The event's priority.
    pub priority: Priority,
    /// Counted failed attempts so far.
    pub attempts: u32,
}

impl ClaimedEvent {
    /// The event document parsed.
    pub fn event(&self) -> Result<Event, Error> {
        Event::from_json(&self.payload).map_err(|source| Error::StoredEvent {
            seq: self.seq,
            source,
        })
    }
}

/// The result of [`Outbox::claim`].
#[derive(Debug, Default)]
pub struct Claim {
    /// Events to deliver, in commit order.
    pub events: Vec<ClaimedEvent>,
    /// When the claim found nothing more to hand out: how long until the earliest waiting
    /// event falls due, if any is waiting.
    pub next_due_in: Option<Duration>,
}

/// How a delivery attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// No broker was reachable, or the event was held back behind a failed earlier event of
    /// its key: the attempt does not count toward `MAX_RETRIES` and the event is due again now.
    Unreachable,
    /// A broker refused for a passing reason: counts, and waits out the backoff.
    Retriable,
    /// The broker will never accept this event: dead-letter it now.
    Permanent,
}

/// One failed delivery, for [`Outbox::fail`].
#[derive(Debug, Clone)]
pub struct Failure {
    /// The event's order key.
    pub seq: i64,
    /// How it failed.
    pub kind: FailKind,
    /// The error, as the transport reported it.
    pub reason: String,
}

/// What [`Outbox::fail`] did with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailOutcome {
    /// Due again at once; attempts unchanged.
    Requeued,
    /// Will be retried at `next_attempt_at` (Unix ms) after `attempts` counted failures.
    Retrying {
        /// Counted failures so far.
        attempts: u32,
        /// When it is due again, Unix ms.
        next_attempt_at: i64,
    },
    /// Moved to the dead letters.
    DeadLettered,
    /// The event was no longer queued (acknowledged or cleared meanwhile).
    Gone,
}

/// What the relay last knew of the brokers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStatus {
    /// A broker answered recently.
    pub kafka_connected: bool,
    /// A relay is configured and running, so delivery is possible at all.
    pub kafka_available: bool,
}

/// A page of a listing: items after `after` (an order key), at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Start after this order key; `None` starts at the beginning.
    pub after: Option<i64>,
    /// Most items returned.
    pub limit: usize,
}

impl Page {
    /// The first `limit` items.
    pub fn first(limit: usize) -> Page {
        Page { after: None, limit }
    }
}

/// One queued event as listed in the stats, in the guide's shape plus a few fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuedEvent {
    /// The order key (the paging cursor).
    pub seq: i64,
    /// The event's id.
    pub event_id: String,
    /// Its type, e.g. `evidence.uploaded`.
    pub event_type: String,
    /// Its priority.
    pub priority: Priority,
    /// Counted failed attempts (the guide's `retryCount`).
    pub retry_count: u32,
    /// When it entered the queue, RFC 3339.
    pub added_at: String,
    /// When it is next due, RFC 3339.
    pub next_attempt_at: String,
    /// Its partition key.
    pub partition_key: String,
    /// The last delivery error, if any.
    pub last_error: Option<String>,
}

/// Which queued events a listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFilter {
    /// Only this type, e.g. `evidence.uploaded`.
    pub event_type: Option<String>,
    /// Only this priority.
    pub priority: Option<Priority>,
}

/// Where an event the outbox holds is on its way to Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting on this machine for a broker, or for its next attempt.
    Waiting {
        /// Counted failed attempts.
        attempts: u32,
        /// When it is next due, RFC 3339.
        #[serde(rename = "nextAttemptAt")]
        next_attempt_at: String,
        /// The last delivery error, if any.
        #[serde(rename = "lastError")]
        last_error: Option<String>,
    },
    /// Handed to Kafka, awaiting its acknowledgement.
    Sending {
        /// Counted failed attempts.
        attempts: u32,
        /// The last delivery error, if any.
        #[serde(rename = "lastError")]
        last_error: Option<String>,
    },
    /// Acknowledged by Kafka.
    Delivered,
    /// Given up on: in the dead letters.
    DeadLettered {
        /// Why.
        reason: String,
        /// Counted failed attempts.
        attempts: u32,
        /// When, RFC 3339.
        #[serde(rename = "deadAt")]
        dead_at: String,
    },
}

/// Queued events by priority.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PriorityCounts {
    /// Critical events queued.
    pub critical: u64,
    /// High events queued.
    pub high: u64,
    /// Medium events queued.
    pub medium: u64,
    /// Low events queued.
    pub low: u64,
}

/// The guide's `queue` object, plus dead letters, bytes, counts by priority and age.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueStats {
    /// Events queued (including in flight).
    pub queue_size: u64,
    /// When the oldest queued event was added, RFC 3339.
    pub oldest_event: Option<String>,
    /// A broker answered recently.
    pub kafka_connected: bool,
    /// A relay is configured and running.
    pub kafka_available: bool,
    /// The medium retry base (`RETRY_INTERVAL`), ms.
    pub retry_interval: u64,
    /// A page of queued events, in order.
    pub events: Vec<QueuedEvent>,
    /// Cursor for the next page of `events`, if there is more.
    pub next_cursor: Option<i64>,
    /// Events in the dead-letter table.
    pub dead_letter_count: u64,
    /// Bytes of queued, dead-lettered, and delivered-but-not-yet-deleted event documents (what
    /// the quota counts).
    pub bytes: u64,
    /// The quota on `bytes`.
    pub quota_bytes: u64,
    /// Queued events by priority.
    pub by_priority: PriorityCounts,
    /// Age of the oldest queued event, ms.
    pub oldest_age_ms: Option<u64>,
    /// Events claimed by the relay and awaiting their outcome.
    pub in_flight: u64,
    /// Enqueues refused for want of space since open.
    pub rejected_full: u64,
    /// Delivered events whose rows are not yet deleted (counted in `bytes` until they are).
    pub awaiting_deletion: u64,
}

/// An event that will not be retried unless an admin replays it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// The original order key (the paging cursor).
    pub seq: i64,
    /// The event's id.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// Its priority.
    pub priority: Priority,
    /// Why it was given up.
    pub reason: String,
    /// Counted failed attempts.
    pub attempts: u32,
    /// When it entered the queue, RFC 3339.
    pub added_at: String,
    /// The first failure, RFC 3339.
    pub first_error_at: Option<String>,
    /// The last failure, RFC 3339.
    pub last_error_at: Option<String>,
    /// When it was dead-lettered, RFC 3339.
    pub dead_at: String,
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn priority_of(rank: u8) -> Priority {
    Priority::from_rank(rank).unwrap_or(Priority::Low)
}

impl Outbox {
    /// Hands out up to `window` due events for delivery, in commit order, keeping per-key order:
    /// an event is handed out only when every earlier event of its key is already in flight.
    pub fn claim(&self, window: usize) -> Result<Claim, Error> {
        let mut in_flight = self.shared.in_flight();
        let reader = lock(&self.reader);
        let now = self.shared.clock.now_ms();
        let mut stmt = reader.prepare_cached(
            "SELECT seq, partition_key, next_attempt_at, event_id, priority, attempts, payload
               FROM outbox_events WHERE seq > ?1 ORDER BY seq",
        )?;
        let mut from = in_flight.cursor.unwrap_or(i64::MIN);
        let mut blocked: HashSet<String> = HashSet::new();
        let mut claim = Claim::default();
        let mut next_due: Option<i64> = None;
        // While every row so far is in flight (or claimed now, or delivered), the cursor may
        // advance.
        let mut contiguous = true;
        let mut cursor = None;
        'scan: while claim.events.len() < window {
            let mut rows = stmt.query([from])?;
            while claim.events.len() < window {
                let Some(row) = rows.next()? else {
                    break 'scan;
                };
                let seq: i64 = row.get(0)?;
                if in_flight.events.contains_key(&seq) {
                    if contiguous {
                        cursor = Some(seq);
                    }
                    continue;
                }
                if in_flight.delivered.contains(seq) {
                    // Delivered, awaiting deletion: jump over the run of them.
                    let last = in_flight.delivered.next_undelivered(seq) - 1;
                    if contiguous {
                        cursor = Some(last);
                    }
                    if last - seq > JUMP {
                        from = last;
                        continue 'scan;
                    }
                    continue;
                }
                let key: String = row.get(1)?;
                if blocked.contains(&key) {
                    contiguous = false;
                    continue;
                }
                let due_at: i64 = row.get(2)?;
                if due_at > now {
                    next_due = Some(next_due.map_or(due_at, |d| d.min(due_at)));
                    blocked.insert(key);
                    contiguous = false;
                    continue;
                }
                if contiguous {
                    cursor = Some(seq);
                }
                claim.events.push(ClaimedEvent {
                    seq,
                    event_id: row.get(3)?,
                    partition_key: key,
                    priority: priority_of(row.get(4)?),
                    attempts: row.get(5)?,
                    payload: row.get(6)?,
                });
            }
        }
        // Only a claim read without error marks its events in flight.
        let removals = in_flight.removals_committed;
        for event in &claim.events {
            in_flight.events.insert(
                event.seq,
                crate::Claimed {
                    priority: event.priority.rank(),
                    size: event.payload.len() as i64,
                    removals,
                },
            );
        }
        if cursor.is_some() {
            in_flight.cursor = cursor;
        }
        in_flight.draining = claim.events.len() == window;
        if claim.events.len() < window {
            claim.next_due_in =
                next_due.map(|d| Duration::from_millis(u64::try_from(d - now).unwrap_or(0)));
        }
        Ok(claim)
    }

    /// Takes delivered events out of the queue. Order keys no longer queued are ignored.
    /// Returns how many events left the queue. Their rows are deleted later (see `acked.rs`).
    pub fn ack(&self, seqs: Vec<i64>) -> Pending<usize> {
        self.write(move |tx| {
            let removed = tx.mark_delivered(&seqs)?;
            let mut released = tx.released.borrow_mut();
            seqs.iter().for_each(|&seq| released.add(seq));
            tx.count(|t| t.published += removed as u64);
            Ok(removed)
        })
    }

    /// Deletes up to `max_rows` rows of delivered events now instead of when the writer is
    /// idle. Returns how many it deleted.
    pub fn sweep_delivered(&self, max_rows: usize) -> Pending<usize> {
        self.write(move |tx| tx.sweep(max_rows))
    }

    /// Records failed deliveries: requeues, schedules a retry, or dead-letters each one
    /// according to its kind and the retry policy.
    pub fn fail(&self, failures: Vec<Failure>) -> Pending<Vec<FailOutcome>> {
        self.write(move |tx| {
            failures
                .iter()
                .map(|failure| {
                    tx.released.borrow_mut().add(failure.seq);
                    tx.rewinds.set(true);
                    let outcome = fail_one(tx, failure)?;
                    tx.count(|t| match outcome {
                        FailOutcome::Requeued => t.unreachable += 1,
                        FailOutcome::Retrying { .. } => t.failed += 1,
                        FailOutcome::DeadLettered => {
                            t.failed += 1;
                            t.dead_lettered += 1;
                        }
                        FailOutcome::Gone => {}
                    });
                    Ok(outcome)
                })
                .collect()
        })
    }

    /// The guide's queue statistics with a page of queued events.
    pub fn stats(&self, page: Page) -> Result<QueueStats, Error> {
        let in_flight = self.shared.in_flight().events.len() as u64;
        let broker = *lock(&self.shared.broker);
        let events = self.list_queued(page)?;
        // The in-flight lock before the reader's, as in claims.
        let marks = self.shared.in_flight();
        let reader = lock(&self.reader);
        let mut by_priority = PriorityCounts::default();
        let (mut queue_size, mut bytes, mut dead_letter_count) = (0u64, 0u64, 0u64);
        let mut awaiting_deletion = 0;
        let mut stmt =
            reader.prepare_cached("SELECT bucket, events, bytes FROM outbox_counters")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (bucket, count, size): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
            let (count, size) = (count.max(0) as u64, size.max(0) as u64);
            bytes += size;
            match bucket {
                0 => by_priority.critical = count,
                1 => by_priority.high = count,
                2 => by_priority.medium = count,
                3 => by_priority.low = count,
                DEAD_BUCKET => dead_letter_count = count,
                DELIVERED_BUCKET => awaiting_deletion = count,
                _ => {}
            }
            if (0..DEAD_BUCKET).contains(&bucket) {
                queue_size += count;
            }
        }
        drop(rows);
        drop(stmt);
        // The head of the queue: events enter in commit order, so it is the oldest but for an
        // import of the guide's queue file into a non-empty queue.
        let mut oldest: Option<i64> = None;
        scan_queued(&reader, &marks.delivered, None, "added_at", |row| {
            oldest = Some(row.get(1)?);
            Ok(false)
        })?;
        let now = self.shared.clock.now_ms();
        let next_cursor = if events.len() == page.limit && page.limit > 0 {
            events.last().map(|e| e.seq)
        } else {
            None
        };
        Ok(QueueStats {
            queue_size,
            oldest_event: oldest.map(rfc3339),
            kafka_connected: broker.kafka_connected,
            kafka_available: broker.kafka_available,
            retry_interval: self.shared.retry.retry_interval().as_millis() as u64,
            events,
            next_cursor,
            dead_letter_count,
            bytes,
            quota_bytes: self.shared.quota_bytes,
            by_priority,
            oldest_age_ms: oldest.map(|t| u64::try_from(now - t).unwrap_or(0)),
            in_flight,
            rejected_full: self.shared.rejected_full.load(Ordering::Relaxed),
            awaiting_deletion,
        })
    }

    /// A page of queued events in order.
    pub fn list_queued(&self, page: Page) -> Result<Vec<QueuedEvent>, Error> {
        self.list_queued_matching(page, &QueueFilter::default())
    }

    /// A page of queued events in order, only those of `filter`'s type and priority when it
    /// names them. The filter is applied while scanning, so a page always holds `page.limit`
    /// matching events when there are that many.
    pub fn list_queued_matching(
        &self,
        page: Page,
        filter: &QueueFilter,
    ) -> Result<Vec<QueuedEvent>, Error> {
        let marks = self.shared.in_flight();
        let reader = lock(&self.reader);
        let mut events = Vec::with_capacity(page.limit.min(1_000));
        if page.limit == 0 {
            return Ok(events);
        }
        scan_queued(
            &reader,
            &marks.delivered,
            page.after,
            "event_id, event_type, priority, attempts, added_at, next_attempt_at, partition_key,
             last_error",
            |r| {
                let event_type: String = r.get(2)?;
                let priority = priority_of(r.get(3)?);
                if filter
                    .event_type
                    .as_deref()
                    .is_some_and(|t| t != event_type)
                    || filter.priority.is_some_and(|p| p != priority)
                {
                    return Ok(true);
                }
                events.push(QueuedEvent {
                    seq: r.get(0)?,
                    event_id: r.get(1)?,
                    event_type,
                    priority,
                    retry_count: r.get(4)?,
                    added_at: rfc3339(r.get(5)?),
                    next_attempt_at: rfc3339(r.get(6)?),
                    partition_key: r.get(7)?,
                    last_error: r.get(8)?,
                });
                Ok(events.len() < page.limit)
            },
        )?;
        Ok(events)
    }

    /// The JSON document of a queued or dead-lettered event, as it will be (or would have
    /// been) sent; `None` once it is delivered or gone.
    pub fn event_document(&self, event_id: &str) -> Result<Option<Value>, Error> {
        let reader = lock(&self.reader);
        let payload: Option<Vec<u8>> = reader
            .prepare_cached(
                "SELECT payload FROM outbox_events WHERE event_id = ?1
                 UNION ALL SELECT payload FROM dead_letters WHERE event_id = ?1 LIMIT 1",
            )?
            .query_row([event_id], |r| r.get(0))
            .optional()?;
        Ok(payload.and_then(|p| serde_json::from_slice(&p).ok()))
    }

    /// Where each of `event_ids` is on its way to Kafka, for those the outbox still holds (a
    /// queued, in-flight or delivered-but-not-deleted row, or a dead letter). An id left out
    /// was delivered and its row deleted, or was dropped by a clear (which a caller that must
    /// tell the two apart records itself, through [`WriteTx::clear_queue`]).
    pub fn delivery_states(
        &self,
        event_ids: &[String],
    ) -> Result<std::collections::HashMap<String, DeliveryState>, Error> {
        let marks = self.shared.in_flight();
        let reader = lock(&self.reader);
        let mut states = std::collections::HashMap::with_capacity(event_ids.len());
        let mut queued = reader.prepare_cached(
            "SELECT seq, attempts, next_attempt_at, last_error FROM outbox_events WHERE event_id = ?1",
        )?;
        let mut dead = reader.prepare_cached(
            "SELECT reason, attempts, dead_at FROM dead_letters WHERE event_id = ?1",
        )?;
        for id in event_ids {
            let row: Option<(i64, u32, i64, Option<String>)> = queued
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()?;
            let state = match row {
                Some((seq, _, _, _)) if marks.delivered.contains(seq) => DeliveryState::Delivered,
                Some((seq, attempts, _, last_error)) if marks.events.contains_key(&seq) => {
                    DeliveryState::Sending {
                        attempts,
                        last_error,
                    }
                }
                Some((_, attempts, next, last_error)) => DeliveryState::Waiting {
                    attempts,
                    next_attempt_at: rfc3339(next),
                    last_error,
                },
                None => match dead
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?)))
                    .optional()?
                {
                    Some((reason, attempts, at)) => DeliveryState::DeadLettered {
                        reason,
                        attempts,
                        dead_at: rfc3339(at),
                    },
                    None => continue,
                },
            };
            states.insert(id.clone(), state);
        }
        Ok(states)
    }

    /// A page of dead letters in original order.
    pub fn dead_letters(&self, page: Page) -> Result<Vec<DeadLetter>, Error> {
        let reader = lock(&self.reader);
        let mut stmt = reader.prepare_cached(
            "SELECT seq, event_id, event_type, priority, reason, attempts, added_at,
                    first_error_at, last_error_at, dead_at
               FROM dead_letters WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![page.after.unwrap_or(i64::MIN), page.limit as i64],
            |r| {
                Ok(DeadLetter {
                    seq: r.get(0)?,
                    event_id: r.get(1)?,
                    event_type: r.get(2)?,
                    priority: priority_of(r.get(3)?),
                    reason: r.get(4)?,
                    attempts: r.get(5)?,
                    added_at: rfc3339(r.get(6)?),
                    first_error_at: r.get::<_, Option<i64>>(7)?.map(rfc3339),
                    last_error_at: r.get::<_, Option<i64>>(8)?.map(rfc3339),
                    dead_at: rfc3339(r.get(9)?),
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Puts dead letters back into the queue with their original order key and no counted
    /// attempts. Returns the ids replayed; unknown ids are ignored.
    pub fn replay(&self, event_ids: Vec<String>, actor: String) -> Pending<Vec<String>> {
        self.write(move |tx| {
            let now = tx.shared.clock.now_ms();
            let mut replayed = Vec::new();
            for id in &event_ids {
                let row = tx
                    .prepare_cached(
                        "DELETE FROM dead_letters WHERE event_id = ?1
                         RETURNING seq, event_id, event_type, priority, partition_key, payload,
                                   added_at, first_error_at, last_error_at, reason",
                    )?
                    .query_row([id], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, Vec<u8>>(5)?,
                            r.get::<_, i64>(6)?,
                            r.get::<_, Option<i64>>(7)?,
                            r.get::<_, Option<i64>>(8)?,
                            r.get::<_, String>(9)?,
                        ))
                    })
                    .optional()?;
                let Some((
                    seq,
                    event_id,
                    event_type,
                    priority,
                    key,
                    payload,
                    added,
                    first,
                    last,
                    reason,
                )) = row
                else {
                    continue;
                };
                tx.prepare_cached(
                    "INSERT INTO outbox_events (seq, event_id, event_type, priority, partition_key,
                        payload, added_at, attempts, next_attempt_at, first_error_at,
                        last_error_at, last_error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9, ?10, ?11)",
                )?
                .execute(params![
                    seq, event_id, event_type, priority, key, payload, added, now, first, last,
                    reason
                ])?;
                let payload_len = payload.len() as i64;
                // A dead letter was never delivered; should its bit be set all the same, the
                // event would be invisible in the queue and swept unsent.
                tx.unmark_delivered(seq, priority, payload_len)?;
                tx.enqueued.set(tx.enqueued.get() + 1);
                tx.rewinds.set(true);
                replayed.push(event_id);
            }
            if !replayed.is_empty() {
                tx.audit(&actor, "replay", replayed.len(), &replayed.join(","))?;
                tracing::info!(count = replayed.len(), %actor, "dead letters replayed");
            }
            Ok(replayed)
        })
    }

    /// Deletes dead letters for good, recording who did it. Returns the ids discarded.
    pub fn discard(&self, event_ids: Vec<String>, actor: String) -> Pending<Vec<String>> {
        self.write(move |tx| {
            let mut discarded = Vec::new();
            for id in &event_ids {
                if tx
                    .prepare_cached("DELETE FROM dead_letters WHERE event_id = ?1")?
                    .execute([id])?
                    > 0
                {
                    discarded.push(id.clone());
                }
            }
            if !discarded.is_empty() {
                tx.audit(&actor, "discard", discarded.len(), &discarded.join(","))?;
                tracing::warn!(count = discarded.len(), %actor, ids = %discarded.join(","), "dead letters discarded");
            }
            Ok(discarded)
        })
    }

    /// Deletes every queued event (not the dead letters), records who did it, and enqueues a
    /// critical `system.alert` saying so in the same transaction, its metadata naming `actor`
    /// and the address they asked from. Returns the guide's `clearedCount`.
    pub fn clear(&self, actor: String, ip_address: Option<String>) -> Pending<u64> {
        self.write(move |tx| tx.clear_queue(&actor, ip_address))
    }

    /// Makes every queued event that is waiting out a retry delay due now (the guide's
    /// "retry now"), records who did it, and returns how many were waiting. Attempt counts are
    /// kept: retrying early does not reset the road to the dead letters.
    pub fn retry_now(&self, actor: String) -> Pending<u64> {
        self.write(move |tx| {
            let now = tx.shared.clock.now_ms();
            let woken = tx
                .prepare_cached(
                    // A delivered row was due when it was claimed, so this seldom touches one
                    // (only one acknowledged while it waited out a retry), and changes nothing
                    // that matters if it does.
                    "UPDATE outbox_events SET next_attempt_at = ?1 WHERE next_attempt_at > ?1",
                )?
                .execute([now])?;
            tx.rewinds.set(true);
            tx.audit(&actor, "retry", woken, "")?;
            tracing::info!(woken, %actor, "queued events retried now");
            Ok(woken as u64)
        })
    }
}

fn fail_one(tx: &WriteTx<'_>, failure: &Failure) -> Result<FailOutcome, Error> {
    let now = tx.shared.clock.now_ms();
    let row: Option<(u32, u8, i64)> = tx
        .prepare_cached(
            "SELECT attempts, priority, length(payload) FROM outbox_events WHERE seq = ?1",
        )?
        .query_row([failure.seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((attempts, rank, size)) = row else {
        return Ok(FailOutcome::Gone);
    };
    if tx.is_delivered(failure.seq)? {
        return Ok(FailOutcome::Gone);
    }
    let policy = &tx.shared.retry;
    let (attempts, dead_reason) = match failure.kind {
        FailKind::Unreachable => (attempts, None),
        FailKind::Retriable if attempts + 1 > policy.max_retries => (
            attempts + 1,
            Some(format!(
                "gave up after {} attempts: {}",
                attempts + 1,
                failure.reason
            )),
        ),
        FailKind::Retriable => (attempts + 1, None),
        FailKind::Permanent => (attempts + 1, Some(failure.reason.clone())),
    };
    if let Some(reason) = dead_reason {
        tx.prepare_cached(
            "INSERT INTO dead_letters (seq, event_id, event_type, priority, partition_key, payload,
                 added_at, attempts, reason, first_error_at, last_error_at, dead_at)
             SELECT seq, event_id, event_type, priority, partition_key, payload, added_at, ?2, ?3,
                    COALESCE(first_error_at, ?4), ?4, ?4
               FROM outbox_events WHERE seq = ?1",
        )?
        .execute(params![failure.seq, attempts, reason, now])?;
        tx.note_removal();
        tx.prepare_cached("DELETE FROM outbox_events WHERE seq = ?1")?
            .execute([failure.seq])?;
        tx.add_to_counter(i64::from(rank), -1, -size)?;
        tracing::warn!(seq = failure.seq, %reason, "event moved to the dead letters");
        return Ok(FailOutcome::DeadLettered);
    }
    let next_attempt_at = match failure.kind {
        FailKind::Unreachable => now,
        _ => {
            let delay = policy.delay(priority_of(rank), attempts, tx.shared.jitter_unit());
            now + delay.as_millis() as i64
        }
    };
    tx.prepare_cached(
        "UPDATE outbox_events
            SET attempts = ?2, next_attempt_at = ?3, last_error = ?4,
                first_error_at = COALESCE(first_error_at, ?5), last_error_at = ?5
          WHERE seq = ?1",
    )?
    .execute(params![
        failure.seq,
        attempts,
        next_attempt_at,
        failure.reason,
        now
    ])?;
    Ok(match failure.kind {
        FailKind::Unreachable => FailOutcome::Requeued,
        _ => FailOutcome::Retrying {
            attempts,
            next_attempt_at,
        },
    })
}

/// Runs of delivered rows longer than this are jumped over by a new query rather than stepped
/// through.
const JUMP: i64 = 64;

/// Calls `f` with each queued row after `after` (`seq` then `columns`), in order, until it
/// returns `false`, skipping the rows marked delivered.
fn scan_queued(
    conn: &rusqlite::Connection,
    delivered: &crate::acked::Delivered,
    after: Option<i64>,
    columns: &str,
    mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<bool, Error>,
) -> Result<(), Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT seq, {columns} FROM outbox_events WHERE seq > ?1 ORDER BY seq"
    ))?;
    let mut from = after.unwrap_or(i64::MIN);
    'scan: loop {
        let mut rows = stmt.query([from])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            if delivered.contains(seq) {
                let last = delivered.next_undelivered(seq) - 1;
                if last - seq > JUMP {
                    from = last;
                    continue 'scan;
                }
                continue;
            }
            if !f(row)? {
                break 'scan;
            }
        }
        break;
    }
    Ok(())
}
