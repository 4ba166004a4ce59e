//! Cases: open, update, assign, escalate to the authorities, close, each with its event, and a
//! timeline of everything that happened to a case.
//!
//! Case ids keep the guide's shape, `CASE-<year>-<NNN>`, numbered per year from a counter in
//! the same transaction as the case. Every case event is also written to `case_events`, which
//! is the case's timeline: the outbox forgets an event once Kafka has it, the timeline does not.

use std::sync::Arc;

use casewire_events::{Event, EventType};
use casewire_outbox::{Clock, DeliveryState, Outbox, WriteTx};
use chrono::Datelike;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::{Value, json};

use crate::paging::{ListPage, Listed, Position};
use crate::rfc3339;
use crate::{CoreError, RequestInfo, User};

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    /// Being worked on.
    Open,
    /// Handed to the authorities; still worked on.
    Escalated,
    /// Finished: no further changes.
    Closed,
}

impl CaseStatus {
    fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Escalated => "escalated",
            CaseStatus::Closed => "closed",
        }
    }

    fn parse(s: &str) -> CaseStatus {
        match s {
            "escalated" => CaseStatus::Escalated,
            "closed" => CaseStatus::Closed,
            _ => CaseStatus::Open,
        }
    }
}

/// A case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Case {
    /// `CASE-<year>-<NNN>`.
    pub case_id: String,
    /// A short title.
    pub title: String,
    /// Free text.
    pub description: String,
    /// Where it stands.
    pub status: CaseStatus,
    /// The investigator assigned, if any.
    pub assignee: Option<String>,
    /// Who opened it.
    pub created_by: String,
    /// When it was opened, Unix ms.
    pub created_at: i64,
    /// When it last changed, Unix ms.
    pub updated_at: i64,
}

/// Which cases a list holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    /// Only cases in this state.
    pub status: Option<CaseStatus>,
    /// Only cases whose id, title, description, creator or assignee contain this text
    /// (ignoring case).
    pub search: Option<String>,
}

/// One entry of a case's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Who did it.
    pub actor: String,
    /// When, Unix ms.
    pub at: i64,
    /// The event's data.
    #[schema(value_type = Object)]
    pub data: Value,
    /// Where the event is on its way to headquarters (Kafka).
    pub delivery: Delivery,
}

/// Where a timeline event is on its way to Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStage {
    /// Waiting on this machine: no broker reachable, or waiting out a retry delay.
    Waiting,
    /// Handed to Kafka, awaiting its acknowledgement.
    Sending,
    /// Acknowledged by Kafka.
    Delivered,
    /// Given up on after its retries; an admin can replay it.
    DeadLettered,
    /// Dropped from the queue by an admin's clear before it was known to be delivered.
    Cleared,
}

/// A timeline event's delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The stage.
    pub state: DeliveryStage,
    /// Counted failed attempts so far.
    pub attempts: u32,
    /// The last delivery error, while it is not delivered.
    pub last_error: Option<String>,
    /// When it is next tried, while waiting; RFC 3339.
    pub next_attempt_at: Option<String>,
    /// When Kafka acknowledged it, if that was recorded; RFC 3339.
    pub delivered_at: Option<String>,
    /// Why it was dead-lettered.
    pub reason: Option<String>,
}

impl Delivery {
    fn at(state: DeliveryStage) -> Delivery {
        Delivery {
            state,
            attempts: 0,
            last_error: None,
            next_attempt_at: None,
            delivered_at: None,
            reason: None,
        }
    }
}

/// Cases in the outbox's database.
pub struct Cases {
    outbox: Arc<Outbox>,
    clock: Arc<dyn Clock>,
}

fn required(field: &str, value: &str, max: usize) -> Result<String, CoreError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(CoreError::Invalid(format!("{field} is required")));
    }
    if value.chars().count() > max {
        return Err(CoreError::Invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(value.to_owned())
}

impl Cases {
    /// Cases in `outbox`'s database; the tables are created by [`crate::migrate`].
    pub fn new(outbox: Arc<Outbox>, clock: Arc<dyn Clock>) -> Cases {
        Cases { outbox, clock }
    }

    fn event(&self, event_type: EventType, data: Value, user: &User, from: &RequestInfo) -> Event {
        crate::action_event(&*self.clock, event_type, data, user, from)
    }

    /// Opens a case: `case.created`.
    pub fn create(
        &self,
        title: &str,
        description: &str,
        user: &User,
        from: &RequestInfo,
    ) -> Result<Case, CoreError> {
        let title = required("title", title, 200)?;
        let description = description.trim().to_owned();
        let now = self.clock.now();
        let year = now.year();
        let at = now.timestamp_millis();
        let creator = user.username.clone();
        // The id is only known inside the transaction, so the event is built there too.
        let template = self.event(EventType::CaseCreated, json!({}), user, from);
        self.outbox
            .write(move |tx| {
                let n: i64 = tx.query_row(
                    "INSERT INTO case_counters (year, last) VALUES (?1, 1)
                     ON CONFLICT (year) DO UPDATE SET last = last + 1 RETURNING last",
                    [year],
                    |r| r.get(0),
                )?;
                let case = Case {
                    case_id: format!("CASE-{year}-{n:03}"),
                    title,
                    description,
                    status: CaseStatus::Open,
                    assignee: None,
                    created_by: creator,
                    created_at: at,
                    updated_at: at,
                };
                tx.execute(
                    "INSERT INTO cases (case_id, title, description, status, created_by, created_at, updated_at)
                     VALUES (?1, ?2, ?3, 'open', ?4, ?5, ?5)",
                    params![case.case_id, case.title, case.description, case.created_by, at],
                )?;
                let mut event = template;
                event.data = json!({"caseId": case.case_id, "title": case.title, "createdBy": case.created_by})
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                record(tx, &case.case_id, &event)?;
                Ok(case)
            })
            .wait()
    }

    /// Changes a case's title or description: `case.updated`. A closed case cannot change.
    pub fn update(
        &self,
        case_id: &str,
        title: Option<&str>,
        description: Option<&str>,
        user: &User,
        from: &RequestInfo,
    ) -> Result<Case, CoreError> {
        let title = title.map(|t| required("title", t, 200)).transpose()?;
        let description = description.map(|d| d.trim().to_owned());
        if title.is_none() && description.is_none() {
            return Err(CoreError::Invalid(
                "nothing to update: give a title or a description".into(),
            ));
        }
        let mut changes = Vec::new();
        if title.is_some() {
            changes.push("title");
        }
        if description.is_some() {
            changes.push("description");
        }
        let event = self.event(
            EventType::CaseUpdated,
            json!({"caseId": case_id, "changes": changes}),
            user,
            from,
        );
        self.change(case_id, event, move |tx, case_id, now| {
            tx.execute(
                "UPDATE cases SET title = COALESCE(?2, title), description = COALESCE(?3, description),
                        updated_at = ?4 WHERE case_id = ?1",
                params![case_id, title, description, now],
            )?;
            Ok(())
        })
    }

    /// Assigns a case to an existing user: `case.assigned`.
    pub fn assign(
        &self,
        case_id: &str,
        assignee: &str,
        user: &User,
        from: &RequestInfo,
    ) -> Result<Case, CoreError> {
        let assignee = assignee.trim().to_lowercase();
        let event = self.event(
            EventType::CaseAssigned,
            json!({"caseId": case_id, "assignee": assignee}),
            user,
            from,
        );
        self.change(case_id, event, move |tx, case_id, now| {
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1 AND disabled = 0)",
                [&assignee],
                |r| r.get(0),
            )?;
            if !exists {
                return Err(CoreError::Invalid(format!(
                    "no active user {assignee} to assign"
                )));
            }
            tx.execute(
                "UPDATE cases SET assignee = ?2, updated_at = ?3 WHERE case_id = ?1",
                params![case_id, assignee, now],
            )?;
            Ok(())
        })
    }

    /// Escalates a case to an authority: `case.escalated`, critical.
    pub fn escalate(
        &self,
        case_id: &str,
        authority: &str,
        reason: &str,
        user: &User,
        from: &RequestInfo,
    ) -> Result<Case, CoreError> {
        let authority = required("authority", authority, 200)?;
        let reason = required("reason", reason, 2_000)?;
        let event = self.event(
            EventType::CaseEscalated,
            json!({"caseId": case_id, "authority": authority, "reason": reason}),
            user,
            from,
        );
        self.change(case_id, event, move |tx, case_id, now| {
            tx.execute(
                "UPDATE cases SET status = 'escalated', updated_at = ?2 WHERE case_id = ?1",
                params![case_id, now],
            )?;
            Ok(())
        })
    }

    /// Closes a case with its resolution: `case.closed`.
    pub fn close(
        &self,
        case_id: &str,
        resolution: &str,
        user: &User,
        from: &RequestInfo,
    ) -> Result<Case, CoreError> {
        let resolution = required("resolution", resolution, 2_000)?;
        let event = self.event(
            EventType::CaseClosed,
            json!({"caseId": case_id, "resolution": resolution}),
            user,
            from,
        );
        self.change(case_id, event, move |tx, case_id, now| {
            tx.execute(
                "UPDATE cases SET status = 'closed', updated_at = ?2 WHERE case_id = ?1",
                params![case_id, now],
            )?;
            Ok(())
        })
    }

    /// Opens a closed case again (`case.updated`, status back to open), so evidence and
    /// changes can be added to it; an audited action like any other.
    pub fn reopen(
        &self,
        case_id: &str,
        user: &User,
        from: &RequestInfo,
    ) -> Result<Case, CoreError> {
        check_case_id(case_id)?;
        let event = self.event(
            EventType::CaseUpdated,
            json!({"caseId": case_id, "changes": ["status"], "status": "open", "reopened": true}),
            user,
            from,
        );
        let case_id = case_id.to_owned();
        let now = self.clock.now_ms();
        self.outbox
            .write(move |tx| {
                let case = load(tx, &case_id)?;
                if case.status != CaseStatus::Closed {
                    return Err(CoreError::Conflict(format!(
                        "case {case_id} is not closed ({})",
                        case.status.as_str()
                    )));
                }
                tx.execute(
                    "UPDATE cases SET status = 'open', updated_at = ?2 WHERE case_id = ?1",
                    params![case_id, now],
                )?;
                record(tx, &case_id, &event)?;
                load(tx, &case_id)
            })
            .wait()
    }

    /// Runs `apply` on an open or escalated case and records `event`, in one transaction.
    fn change(
        &self,
        case_id: &str,
        event: Event,
        apply: impl FnOnce(&WriteTx<'_>, &str, i64) -> Result<(), CoreError> + Send + 'static,
    ) -> Result<Case, CoreError> {
        let case_id = case_id.to_owned();
        let now = self.clock.now_ms();
        self.outbox
            .write(move |tx| {
                let case = load(tx, &case_id)?;
                if case.status == CaseStatus::Closed {
                    return Err(CoreError::Conflict(format!("case {case_id} is closed")));
                }
                apply(tx, &case_id, now)?;
                record(tx, &case_id, &event)?;
                load(tx, &case_id)
            })
            .wait()
    }

    /// A case.
    pub fn get(&self, case_id: &str) -> Result<Case, CoreError> {
        let case_id = case_id.to_owned();
        self.outbox.read(|tx| load(tx, &case_id))
    }

    /// A case `user` may see ([`may_see`]): one that does not exist is `NotFound`, one they
    /// may not see is `Hidden`, which says the same to them (no existence leak) and which the
    /// caller records as a refusal. A malformed id is refused first.
    pub fn visible(&self, case_id: &str, user: &User) -> Result<Case, CoreError> {
        check_case_id(case_id)?;
        let case = self.get(case_id)?;
        if may_see(user, &case) {
            Ok(case)
        } else {
            Err(CoreError::Hidden(format!("case {case_id}")))
        }
    }

    /// A page of the cases that match `filter`, newest first: every case for analysts and
    /// above, for an investigator those they opened or are assigned to.
    pub fn list(
        &self,
        filter: &CaseFilter,
        user: &User,
        page: &ListPage,
    ) -> Result<Listed<Case>, CoreError> {
        let size = page.size()?;
        let start = page.start()?;
        let own = (!sees_every_case(user)).then(|| user.username.clone());
        let search = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);
        let rows = self.outbox.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT case_id, title, description, status, assignee, created_by, created_at, updated_at
                   FROM cases WHERE (?1 IS NULL OR status = ?1)
                    AND (?2 IS NULL OR created_by = ?2 OR assignee = ?2)
                    AND (?3 IS NULL OR instr(lower(case_id || ' ' || title || ' ' || description
                             || ' ' || created_by || ' ' || coalesce(assignee, '')), ?3) > 0)
                    AND (?4 IS NULL OR (created_at, case_id) < (?4, ?5))
                  ORDER BY created_at DESC, case_id DESC
                  LIMIT ?6",
            )?;
            let rows = stmt.query_map(
                params![
                    filter.status.map(CaseStatus::as_str),
                    own,
                    search,
                    start.as_ref().map(|p| p.at),
                    start.as_ref().map(|p| p.id.as_str()),
                    size as i64 + 1,
                ],
                row_to_case,
            )?;
            Ok::<_, CoreError>(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        Ok(Listed::from_rows(rows, size, |case| Position {
            at: case.created_at,
            id: case.case_id.clone(),
        }))
    }

    /// Recomputes the hash chain of a case's timeline from the database and names whatever
    /// was edited, deleted, inserted or moved there outside Casewire.
    pub fn check_timeline(&self, case_id: &str) -> Result<crate::TimelineCheck, CoreError> {
        let case_id = case_id.to_owned();
        self.outbox.read(|tx| crate::custody::check(tx, &case_id))
    }

    /// Records what a person's check of a case's timeline found ([`Cases::check_timeline`],
    /// then [`crate::confirm_anchored_head`]): when it was tampered with, a critical
    /// `system.alert` that names what was found, in the case's timeline too, so the finding
    /// itself is chained.
    pub fn record_check(
        &self,
        check: &crate::TimelineCheck,
        user: &User,
        from: &RequestInfo,
    ) -> Result<(), CoreError> {
        let case_id = &check.case_id;
        if !check.intact {
            let found: Vec<&str> = check.problems.iter().map(|p| p.message.as_str()).collect();
            let event = self
                .event(
                    EventType::SystemAlert,
                    json!({
                        "message": format!(
                            "the timeline of {case_id} was changed outside Casewire: {}",
                            found.join("; ")
                        ),
                        "caseId": case_id,
                        "problems": check.problems.len(),
                    }),
                    user,
                    from,
                )
                .with_priority(casewire_events::Priority::Critical);
            self.outbox
                .write(move |tx| enqueue_in_timeline(tx, &event))
                .wait()?;
            tracing::warn!(case = %case_id, problems = check.problems.len(), "a case's timeline failed its check");
        }
        Ok(())
    }

    /// Everything that happened to a case, in order, each event with its delivery.
    pub fn timeline(&self, case_id: &str) -> Result<Vec<TimelineEntry>, CoreError> {
        let case_id = case_id.to_owned();
        let rows = self.outbox.read(|tx| {
            load(tx, &case_id)?;
            let mut stmt = tx.prepare(
                "SELECT event_id, event_type, actor, at, data, delivered_at, cleared_at
                   FROM case_events WHERE case_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([&case_id], |r| {
                Ok((
                    TimelineEntry {
                        event_id: r.get(0)?,
                        event_type: r.get(1)?,
                        actor: r.get(2)?,
                        at: r.get(3)?,
                        data: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or(Value::Null),
                        delivery: Delivery::at(DeliveryStage::Delivered),
                    },
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, Option<i64>>(6)?.is_some(),
                ))
            })?;
            Ok::<_, CoreError>(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        let ids: Vec<String> = rows.iter().map(|(e, _, _)| e.event_id.clone()).collect();
        let states = self.outbox.delivery_states(&ids)?;
        Ok(rows
            .into_iter()
            .map(|(mut entry, delivered_at, cleared)| {
                entry.delivery = match states.get(&entry.event_id) {
                    Some(DeliveryState::Waiting {
                        attempts,
                        next_attempt_at,
                        last_error,
                    }) => Delivery {
                        attempts: *attempts,
                        next_attempt_at: Some(next_attempt_at.clone()),
                        last_error: last_error.clone(),
                        ..Delivery::at(DeliveryStage::Waiting)
                    },
                    Some(DeliveryState::Sending {
                        attempts,
                        last_error,
                    }) => Delivery {
                        attempts: *attempts,
                        last_error: last_error.clone(),
                        ..Delivery::at(DeliveryStage::Sending)
                    },
                    Some(DeliveryState::DeadLettered {
                        reason, attempts, ..
                    }) => Delivery {
                        attempts: *attempts,
                        reason: Some(reason.clone()),
                        ..Delivery::at(DeliveryStage::DeadLettered)
                    },
                    None if cleared => Delivery::at(DeliveryStage::Cleared),
                    // Marked delivered, or its row deleted after delivery.
                    Some(DeliveryState::Delivered) | None => Delivery {
                        delivered_at: delivered_at.map(rfc3339),
                        ..Delivery::at(DeliveryStage::Delivered)
                    },
                };
                entry
            })
            .collect())
    }

    /// Clears the event queue ([`casewire_outbox::Outbox::clear`]) and, in the same commit,
    /// marks the timeline events it drops before Kafka had them, so no timeline claims they
    /// were delivered.
    pub fn clear_queue(&self, actor: String, ip_address: Option<String>) -> Result<u64, CoreError> {
        let now = self.clock.now_ms();
        self.outbox
            .write(move |tx| {
                let dropped: Vec<(i64, String)> = {
                    let mut stmt = tx.prepare(
                        "SELECT o.seq, o.event_id FROM outbox_events o
                           JOIN case_events c ON c.seq = o.seq",
                    )?;
                    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    rows.collect::<Result<_, _>>()?
                };
                let mut mark =
                    tx.prepare("UPDATE case_events SET cleared_at = ?2 WHERE event_id = ?1")?;
                for (seq, event_id) in dropped {
                    if !tx.is_acknowledged(seq)? {
                        mark.execute(params![event_id, now])?;
                    }
                }
                drop(mark);
                Ok::<_, CoreError>(tx.clear_queue(&actor, ip_address)?)
            })
            .wait()
    }

    /// Records that Kafka acknowledged the events with order keys `seqs` at `at_ms`, for the
    /// timelines that hold them. Called as the relay reports deliveries, before the outbox
    /// deletes the rows; a timeline event it misses still shows as delivered, without a time.
    pub fn record_deliveries(&self, seqs: Vec<i64>, at_ms: i64) -> Result<usize, CoreError> {
        self.outbox
            .write(move |tx| {
                // rarray() takes an Rc, which cannot cross into the writer: built here.
                let seqs = std::rc::Rc::new(
                    seqs.into_iter()
                        .map(rusqlite::types::Value::Integer)
                        .collect::<Vec<_>>(),
                );
                Ok::<_, CoreError>(tx.execute(
                    "UPDATE case_events SET delivered_at = ?1
                      WHERE seq IN rarray(?2) AND delivered_at IS NULL",
                    params![at_ms, seqs],
                )?)
            })
            .wait()
    }
}

/// Enqueues `event` and, when its data names a case that exists (`caseId`), adds it to that
/// case's timeline too: evidence added to a case shows in the case's history.
pub(crate) fn enqueue_in_timeline(tx: &WriteTx<'_>, event: &Event) -> Result<(), CoreError> {
    let case_id = event.data.get("caseId").and_then(Value::as_str);
    let exists = match case_id {
        Some(id) => tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM cases WHERE case_id = ?1)")?
            .query_row([id], |r| r.get::<_, bool>(0))?,
        None => false,
    };
    match case_id {
        Some(id) if exists => record(tx, id, event),
        _ => Ok(tx.enqueue(event)?),
    }
}

/// Enqueues a case's event, chained to the case's event before it, and adds it to the case's
/// timeline with the chained document.
fn record(tx: &WriteTx<'_>, case_id: &str, event: &Event) -> Result<(), CoreError> {
    let mut event = event.clone();
    let link = crate::custody::append(tx, case_id, &mut event)?;
    let seq = tx.enqueue_returning_seq(&event)?;
    tx.prepare_cached(
        "INSERT INTO case_events (case_id, event_id, event_type, actor, at, data, seq,
             chain_sequence, chain_hash, document)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        case_id,
        event.event_id.as_str(),
        event.event_type.as_str(),
        event.metadata.user_id.clone().unwrap_or_default(),
        event.timestamp.timestamp_millis(),
        Value::Object(event.data.clone()).to_string(),
        seq,
        link.sequence as i64,
        link.hash,
        String::from_utf8_lossy(&event.to_json()),
    ])?;
    Ok(())
}

/// Whether `user` sees every case: analysts, admins and superadmins do.
pub fn sees_every_case(user: &User) -> bool {
    user.role.permits(crate::Permission::Analyse)
}

/// Whether `user` may see and change `case`: analysts and above any case; an investigator
/// (role `user`) the cases they opened or are assigned to.
pub fn may_see(user: &User, case: &Case) -> bool {
    sees_every_case(user)
        || case.created_by == user.username
        || case.assignee.as_deref() == Some(user.username.as_str())
}

/// Whether evidence may be added to `case_id` by `user`: a case that exists must be one they
/// may see and not closed. `Ok(false)`: it does not exist yet (the upload opens it).
pub(crate) fn check_for_evidence(
    conn: &rusqlite::Connection,
    case_id: &str,
    user: &User,
) -> Result<bool, CoreError> {
    check_case_id(case_id)?;
    match load(conn, case_id) {
        Ok(case) if !may_see(user, &case) => Err(CoreError::Hidden(format!("case {case_id}"))),
        Ok(case) if case.status == CaseStatus::Closed => Err(CoreError::Conflict(format!(
            "case {case_id} is closed: an analyst must reopen it before evidence is added"
        ))),
        Ok(_) => Ok(true),
        Err(CoreError::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// In the transaction that adds evidence to `case_id`: checks it ([`check_for_evidence`]),
/// and opens a case that does not exist yet, with `created` (a `case.created` event of the
/// uploader) first in its timeline, so every piece of evidence belongs to a real case. The
/// year's counter moves past the id, so no case opened later takes it.
pub(crate) fn open_for_evidence(
    tx: &WriteTx<'_>,
    case_id: &str,
    user: &User,
    mut created: Event,
) -> Result<(), CoreError> {
    if check_for_evidence(tx, case_id, user)? {
        return Ok(());
    }
    let (year, number) = case_id
        .strip_prefix("CASE-")
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(y, n)| Some((y.parse::<i64>().ok()?, n.parse::<i64>().ok()?)))
        .ok_or_else(|| CoreError::Invalid(format!("{case_id:?} is not a case id")))?;
    let at = created.timestamp.timestamp_millis();
    tx.execute(
        "INSERT INTO case_counters (year, last) VALUES (?1, ?2)
         ON CONFLICT (year) DO UPDATE SET last = MAX(last, ?2)",
        params![year, number],
    )?;
    tx.execute(
        "INSERT INTO cases (case_id, title, description, status, created_by, created_at, updated_at)
         VALUES (?1, ?1, 'Opened by the first evidence added to it.', 'open', ?2, ?3, ?3)",
        params![case_id, user.username, at],
    )?;
    created.data = json!({"caseId": case_id, "title": case_id, "createdBy": user.username, "openedBy": "evidence"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    record(tx, case_id, &created)
}

/// A case id has the shape `CASE-<year>-<number>`: `CASE-2024-001`.
pub fn check_case_id(case_id: &str) -> Result<(), CoreError> {
    let shaped = case_id
        .strip_prefix("CASE-")
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(year, n)| {
            year.len() == 4
                && year.bytes().all(|b| b.is_ascii_digit())
                && (3..=9).contains(&n.len())
                && n.bytes().all(|b| b.is_ascii_digit())
        });
    if shaped {
        Ok(())
    } else {
        let shown: String = case_id.chars().take(40).collect();
        Err(CoreError::Invalid(format!(
            "{shown:?} is not a case id: a case id looks like CASE-2024-001"
        )))
    }
}

fn load(tx: &rusqlite::Connection, case_id: &str) -> Result<Case, CoreError> {
    tx.query_row(
        "SELECT case_id, title, description, status, assignee, created_by, created_at, updated_at
           FROM cases WHERE case_id = ?1",
        [case_id],
        row_to_case,
    )
    .optional()?
    .ok_or_else(|| CoreError::NotFound(format!("case {case_id}")))
}

fn row_to_case(r: &rusqlite::Row<'_>) -> rusqlite::Result<Case> {
    Ok(Case {
        case_id: r.get(0)?,
        title: r.get(1)?,
        description: r.get(2)?,
        status: CaseStatus::parse(&r.get::<_, String>(3)?),
        assignee: r.get(4)?,
        created_by: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}
