//! The tamper-evident timeline: every event of a case is chained to the case's event before it
//! ([`casewire_events::chain`]) as it is committed, the chained document is kept beside the
//! timeline's row, and the case keeps its chain's head. [`check`] recomputes the chain from the
//! rows and names every event edited, deleted, inserted or moved in the database file, and
//! compares it with the head last anchored on chain ([`crate::anchoring`]), which sees the
//! one edit a chain alone cannot: its last events deleted and its head rewritten.
//! [`confirm_anchored_head`] then asks the chain whether that anchored head is really there.

use std::collections::{BTreeMap, BTreeSet};

use casewire_events::Event;
use casewire_events::chain::{self, GENESIS, Link};
use casewire_outbox::WriteTx;
use rusqlite::OptionalExtension;
use serde::Serialize;
use serde_json::Value;

use crate::CoreError;

/// Chains `event` after the case's last chained event and records the case's new head, in the
/// caller's transaction. Returns the link, and leaves it in `event.metadata.caseChain`.
pub(crate) fn append(
    tx: &WriteTx<'_>,
    case_id: &str,
    event: &mut Event,
) -> Result<Link, CoreError> {
    let (length, head): (i64, Option<String>) = tx
        .prepare_cached("SELECT chain_length, chain_head FROM cases WHERE case_id = ?1")?
        .query_row([case_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let previous = head.unwrap_or_else(|| GENESIS.to_owned());
    let link = chain::link(event, length.max(0) as u64 + 1, &previous);
    tx.prepare_cached("UPDATE cases SET chain_length = ?2, chain_head = ?3 WHERE case_id = ?1")?
        .execute(rusqlite::params![case_id, link.sequence as i64, link.hash])?;
    Ok(link)
}

/// What a check of a case's timeline found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineCheck {
    /// The case.
    pub case_id: String,
    /// True when every chained event is present, in order, and unchanged.
    pub intact: bool,
    /// The chained events found.
    pub events: u64,
    /// Events recorded before this Casewire chained timelines, which no hash covers.
    pub unchained: u64,
    /// The hash of the case's last event, as the case records it.
    pub head: Option<String>,
    /// How many events the case records in its chain.
    pub length: u64,
    /// The case's head as last anchored on chain, if it was.
    pub anchored_head: Option<AnchoredHead>,
    /// Each thing found wrong, in the timeline's order.
    pub problems: Vec<TimelineProblem>,
}

/// A case's head as anchored on chain, and whether the chain was asked about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnchoredHead {
    /// The place in the chain of the event anchored.
    pub sequence: u64,
    /// Its hash.
    pub head: String,
    /// The transaction that carries it.
    pub tx_hash: String,
    /// The block the transaction is in.
    pub block_number: u64,
    /// The chain (EIP-155 id).
    pub chain_id: u64,
    /// When it reached the configured depth, Unix ms.
    pub anchored_at: i64,
    /// What the chain said of it.
    pub on_chain: OnChainCheck,
    /// Its proof as stored.
    #[serde(skip)]
    proof: Option<String>,
}

/// What the chain said of an anchored head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnChainCheck {
    /// Verified, refused, or not checked.
    pub state: OnChainState,
    /// The block's depth, when verified.
    pub confirmations: Option<u64>,
    /// What was found, for a person.
    pub message: String,
}

/// Whether the chain holds an anchored head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnChainState {
    /// The chain carries it: the check's comparison stands on the chain.
    Verified,
    /// The chain does not carry it: the record of it was forged or altered.
    Refused,
    /// The chain was not asked (none is set up, or it cannot be reached): the comparison
    /// stands on this database's record of it.
    NotChecked,
}

/// What is wrong with one place of a timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineProblem {
    /// The kind of tampering.
    pub kind: ProblemKind,
    /// The event concerned, when there is one to name.
    pub event_id: Option<String>,
    /// Its place in the chain, when known.
    pub sequence: Option<u64>,
    /// What was found, for a person.
    pub message: String,
}

/// Kinds of tampering a check tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// An event's content differs from what was chained.
    Edited,
    /// Events of the chain are not in the timeline.
    Deleted,
    /// An event that belongs to no place in the chain.
    Inserted,
    /// An event out of its place.
    Reordered,
}

struct Row {
    event_id: String,
    event_type: String,
    at: i64,
    data: String,
    sequence: Option<i64>,
    hash: Option<String>,
    document: Option<String>,
}

impl TimelineProblem {
    fn new(
        kind: ProblemKind,
        event_id: Option<&str>,
        sequence: Option<u64>,
        message: String,
    ) -> Self {
        TimelineProblem {
            kind,
            event_id: event_id.map(str::to_owned),
            sequence,
            message,
        }
    }
}

/// Recomputes the chain of `case_id`'s timeline from its rows.
pub(crate) fn check(tx: &rusqlite::Connection, case_id: &str) -> Result<TimelineCheck, CoreError> {
    let (length, head): (i64, Option<String>) = tx
        .query_row(
            "SELECT chain_length, chain_head FROM cases WHERE case_id = ?1",
            [case_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| CoreError::NotFound(format!("case {case_id}")))?;
    let mut stmt = tx.prepare(
        "SELECT event_id, event_type, at, data, chain_sequence, chain_hash, document
           FROM case_events WHERE case_id = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([case_id], |r| {
            Ok(Row {
                event_id: r.get(0)?,
                event_type: r.get(1)?,
                at: r.get(2)?,
                data: r.get(3)?,
                sequence: r.get(4)?,
                hash: r.get(5)?,
                document: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;

    let mut problems = Vec::new();
    let mut unchained = 0;
    // The links found, in the timeline's order.
    let mut links: Vec<(String, Link)> = Vec::new();
    for row in &rows {
        let Some(document) = &row.document else {
            if links.is_empty() {
                unchained += 1;
            } else {
                problems.push(TimelineProblem::new(
                    ProblemKind::Inserted,
                    Some(&row.event_id),
                    None,
                    format!(
                        "{} ({}) carries no link, yet it comes after the chain began: it was added outside Casewire",
                        row.event_id, row.event_type
                    ),
                ));
            }
            continue;
        };
        match checked(row, document) {
            Ok(link) => links.push((row.event_id.clone(), link)),
            Err((link, message)) => {
                let sequence = link.as_ref().map(|l| l.sequence);
                problems.push(TimelineProblem::new(
                    ProblemKind::Edited,
                    Some(&row.event_id),
                    sequence,
                    format!(
                        "{} ({}) was edited: {message}",
                        row.event_id, row.event_type
                    ),
                ));
                // An edited event still holds its place, so the check goes on past it.
                if let Some(link) = link {
                    links.push((row.event_id.clone(), link));
                }
            }
        }
    }

    let by_sequence: BTreeMap<u64, &Link> = links.iter().map(|(_, l)| (l.sequence, l)).collect();
    let mut seen = BTreeSet::new();
    let mut highest = 0;
    for (event_id, link) in &links {
        if !seen.insert(link.sequence) {
            problems.push(TimelineProblem::new(
                ProblemKind::Inserted,
                Some(event_id),
                Some(link.sequence),
                format!(
                    "{event_id} claims place {} of the chain, which another event holds",
                    link.sequence
                ),
            ));
            continue;
        }
        if link.sequence < highest {
            problems.push(TimelineProblem::new(
                ProblemKind::Reordered,
                Some(event_id),
                Some(link.sequence),
                format!(
                    "{event_id} is event {} of the chain but comes after event {highest}: the timeline's order was changed",
                    link.sequence
                ),
            ));
        }
        highest = highest.max(link.sequence);
        let expected = if link.sequence == 1 {
            Some(GENESIS)
        } else {
            by_sequence
                .get(&(link.sequence - 1))
                .map(|l| l.hash.as_str())
        };
        if let Some(expected) = expected
            && expected != link.previous
        {
            problems.push(TimelineProblem::new(
                ProblemKind::Edited,
                Some(event_id),
                Some(link.sequence),
                format!(
                    "{event_id} (event {}) does not follow event {} of the chain: one of the two was replaced",
                    link.sequence,
                    link.sequence - 1
                ),
            ));
        }
    }
    let anchored_head = anchored_head(tx, case_id)?;
    let recorded = length.max(0) as u64;
    let missing: Vec<u64> = (1..=recorded.max(highest))
        .filter(|s| !by_sequence.contains_key(s))
        .collect();
    for (from, to) in ranges(&missing) {
        let (what, past) = if from == to {
            (format!("event {from} of the chain is"), "it was")
        } else {
            (
                format!("events {from} to {to} of the chain are"),
                "they were",
            )
        };
        problems.push(TimelineProblem::new(
            ProblemKind::Deleted,
            None,
            Some(from),
            format!("{what} missing from the timeline: {past} deleted"),
        ));
    }
    if let (Some(head), Some(last)) = (&head, by_sequence.get(&recorded))
        && *head != last.hash
    {
        problems.push(TimelineProblem::new(
            ProblemKind::Edited,
            None,
            Some(recorded),
            "the case's recorded head does not match its last event".to_owned(),
        ));
    }
    if let Some(anchored) = &anchored_head {
        let ends = recorded.max(highest);
        let at = format!(
            "block {} (transaction {})",
            anchored.block_number, anchored.tx_hash
        );
        match by_sequence.get(&anchored.sequence) {
            Some(link) if link.hash != anchored.head => problems.push(TimelineProblem::new(
                ProblemKind::Edited,
                None,
                Some(anchored.sequence),
                format!(
                    "event {} of the chain is not the one anchored on chain in {at}: the timeline up to it was rewritten",
                    anchored.sequence
                ),
            )),
            None if anchored.sequence > ends => problems.push(TimelineProblem::new(
                ProblemKind::Deleted,
                None,
                Some(ends + 1),
                format!(
                    "the case's head anchored on chain in {at} is event {}, and the timeline and its recorded head end at event {ends}: {} deleted and the head rewritten",
                    anchored.sequence,
                    if ends + 1 == anchored.sequence {
                        format!("event {} was", anchored.sequence)
                    } else {
                        format!("events {} to {} were", ends + 1, anchored.sequence)
                    }
                ),
            )),
            _ => {}
        }
    }
    // The timeline itself tells of its anchors (`anchor.case_head`, chained like every event):
    // an anchor it tells of that the records no longer hold was removed from them.
    let announced = rows
        .iter()
        .filter(|r| r.document.is_some() && r.event_type == "system.info")
        .filter_map(|r| {
            let data: Value = serde_json::from_str(&r.data).ok()?;
            (data["action"] == "anchor.case_head").then_some(())?;
            Some((
                data["sequence"].as_u64()?,
                data["txHash"].as_str()?.to_owned(),
            ))
        })
        .max_by_key(|(sequence, _)| *sequence);
    if let Some((sequence, tx_hash)) = announced
        && anchored_head.as_ref().is_none_or(|a| a.sequence < sequence)
    {
        problems.push(TimelineProblem::new(
            ProblemKind::Deleted,
            None,
            Some(sequence),
            format!(
                "the timeline records that its head at event {sequence} was anchored on chain in transaction {tx_hash}, and the record of that anchor is gone from the database: it was deleted"
            ),
        ));
    }
    Ok(TimelineCheck {
        case_id: case_id.to_owned(),
        intact: problems.is_empty(),
        events: links.len() as u64,
        unchained,
        head,
        length: recorded,
        anchored_head,
        problems,
    })
}

/// The case's head last anchored (at the configured depth), if any.
fn anchored_head(
    conn: &rusqlite::Connection,
    case_id: &str,
) -> Result<Option<AnchoredHead>, CoreError> {
    conn.query_row(
        "SELECT h.sequence, h.head, b.tx_hash, b.block_number, b.chain_id, b.updated_at, h.proof
           FROM case_head_anchors h JOIN anchor_batches b ON b.batch_id = h.batch_id
          WHERE h.case_id = ?1 AND b.state = 'anchored'
          ORDER BY h.sequence DESC LIMIT 1",
        [case_id],
        |r| {
            Ok(AnchoredHead {
                sequence: r.get::<_, i64>(0)?.max(0) as u64,
                head: r.get(1)?,
                tx_hash: r.get(2)?,
                block_number: r.get::<_, Option<i64>>(3)?.unwrap_or(0).max(0) as u64,
                chain_id: r.get::<_, i64>(4)?.max(0) as u64,
                anchored_at: r.get(5)?,
                on_chain: OnChainCheck {
                    state: OnChainState::NotChecked,
                    confirmations: None,
                    message: "the chain was not asked".into(),
                },
                proof: r.get(6)?,
            })
        },
    )
    .optional()
    .map_err(CoreError::from)
}

/// Asks `chain` whether the check's anchored head is there: its proof, as stored, must name
/// the head the check compared with and lead to a root that a transaction of the anchoring key
/// carries in a canonical block. A head the chain refutes is a problem of the check (its record
/// was forged or altered); with no chain, or none that answers, the check says the head was
/// taken from this database.
pub async fn confirm_anchored_head(
    check: &mut TimelineCheck,
    chain: Option<&crate::ChainSettings>,
) {
    let Some(anchored) = check.anchored_head.as_mut() else {
        return;
    };
    let not_checked = |message: String| OnChainCheck {
        state: OnChainState::NotChecked,
        confirmations: None,
        message,
    };
    let proof = anchored
        .proof
        .as_deref()
        .map(serde_json::from_str::<casewire_chain::proof::CaseHeadProof>);
    let refusal = match proof {
        Some(Ok(proof))
            if proof.case_id == check.case_id
                && proof.sequence == anchored.sequence
                && proof.head == anchored.head
                && proof.on_chain.tx_hash.to_string() == anchored.tx_hash =>
        {
            let Some(chain) = chain else {
                anchored.on_chain = not_checked(
                    "no chain is set up here (CASEWIRE_CHAIN_RPC_URL): the anchored head was taken from this database".into(),
                );
                return;
            };
            if chain.chain_id != proof.on_chain.chain_id {
                anchored.on_chain = not_checked(format!(
                    "the head was anchored on chain {}, and this machine is set up for chain {}: the anchored head was taken from this database",
                    proof.on_chain.chain_id, chain.chain_id
                ));
                return;
            }
            let rpc = casewire_chain::rpc::Rpc::new(chain.endpoint.clone());
            match casewire_chain::proof::verify_case_head(&rpc, &proof).await {
                Ok(found) => {
                    anchored.on_chain = OnChainCheck {
                        state: OnChainState::Verified,
                        confirmations: Some(found.confirmations),
                        message: format!(
                            "the chain carries it in block {}, {} confirmation{}",
                            found.block_number,
                            found.confirmations,
                            if found.confirmations == 1 { "" } else { "s" }
                        ),
                    };
                    return;
                }
                Err(casewire_chain::proof::VerifyError::Refused(refusal)) => refusal.to_string(),
                Err(e) => {
                    anchored.on_chain = not_checked(format!(
                        "the chain's node could not be asked ({e}): the anchored head was taken from this database; check again when it is reachable"
                    ));
                    return;
                }
            }
        }
        Some(Ok(_)) => "its proof is for another head than the one recorded".to_owned(),
        Some(Err(e)) => format!("its proof does not read ({e})"),
        None => "it has no proof".to_owned(),
    };
    anchored.on_chain = OnChainCheck {
        state: OnChainState::Refused,
        confirmations: None,
        message: refusal.clone(),
    };
    let sequence = anchored.sequence;
    check.problems.push(TimelineProblem::new(
        ProblemKind::Edited,
        None,
        Some(sequence),
        format!(
            "the record of the head anchored at event {sequence} does not hold on chain: {refusal}; the anchoring records in the database were altered"
        ),
    ));
    check.intact = false;
}

/// The link of a chained row when its document checks and its row agrees with it; otherwise
/// the link it claims, if any, and what is wrong.
fn checked(row: &Row, document: &str) -> Result<Link, (Option<Link>, String)> {
    let event = Event::from_json(document.as_bytes())
        .map_err(|e| (None, format!("its chained document no longer reads ({e})")))?;
    let link = chain::check(&event).map_err(|e| (chain::claimed(&event), e.to_string()))?;
    let data: Value = serde_json::from_str(&row.data).unwrap_or(Value::Null);
    let differs = if event.event_id.as_str() != row.event_id {
        Some("its id")
    } else if event.event_type.as_str() != row.event_type {
        Some("its type")
    } else if event.timestamp.timestamp_millis() != row.at {
        Some("its time")
    } else if Value::Object(event.data.clone()) != data {
        Some("its data")
    } else if row.sequence != Some(link.sequence as i64) || row.hash.as_deref() != Some(&link.hash)
    {
        Some("its place in the chain")
    } else {
        None
    };
    match differs {
        Some(what) => Err((
            Some(link),
            format!("{what} in the timeline differs from what was chained"),
        )),
        None => Ok(link),
    }
}

/// Consecutive runs of sorted numbers, as (first, last).
fn ranges(sorted: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &n in sorted {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == n => *last = n,
            _ => out.push((n, n)),
        }
    }
    out
}
