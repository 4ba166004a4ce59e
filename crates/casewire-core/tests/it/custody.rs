//! Tamper-evident timelines: every case event is chained to the one before, and whatever is
//! edited, deleted, inserted or moved directly in the SQLite file is found and named.

use casewire_core::{Cases, ProblemKind, RequestInfo, Role, TimelineCheck, User};
use casewire_events::chain::{self, GENESIS};
use casewire_events::{EventType, Priority};
use rusqlite::Connection;

use crate::support::{self, Domain};

struct Fixture {
    domain: Domain,
    cases: Cases,
    case_id: String,
}

fn analyst() -> User {
    support::user("analyst@fraud.com", Role::Analyst)
}

fn from() -> RequestInfo {
    support::from("/api/cases")
}

/// A case with four events: created, updated twice, escalated.
fn fixture() -> Fixture {
    let domain = Domain::new();
    let cases = Cases::new(domain.outbox.clone(), domain.clock.clone());
    let case = cases
        .create("Drained wallet", "victim lost 4 ETH", &analyst(), &from())
        .expect("created");
    for description in ["victim lost 4.2 ETH", "second victim found"] {
        cases
            .update(&case.case_id, None, Some(description), &analyst(), &from())
            .expect("updated");
    }
    cases
        .escalate(
            &case.case_id,
            "FBI IC3",
            "stolen funds",
            &analyst(),
            &from(),
        )
        .expect("escalated");
    Fixture {
        domain,
        cases,
        case_id: case.case_id,
    }
}

impl Fixture {
    /// A second connection to the database file, as someone with the disk would open it.
    fn sqlite(&self) -> Connection {
        Connection::open(self.domain.dir.path().join("outbox.db")).expect("open")
    }

    /// The timeline's row ids and event ids, in order.
    fn rows(&self) -> Vec<(i64, String)> {
        let db = self.sqlite();
        let mut stmt = db
            .prepare("SELECT id, event_id FROM case_events WHERE case_id = ?1 ORDER BY id")
            .expect("prepare");
        stmt.query_map([&self.case_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    fn check(&self) -> TimelineCheck {
        self.cases.check_timeline(&self.case_id).expect("check")
    }
}

fn kinds(check: &TimelineCheck) -> Vec<(ProblemKind, Option<String>, Option<u64>)> {
    check
        .problems
        .iter()
        .map(|p| (p.kind, p.event_id.clone(), p.sequence))
        .collect()
}

#[test]
fn every_event_of_a_case_carries_a_link_a_consumer_can_check_with_the_event_alone() {
    let fx = fixture();
    let events: Vec<_> = fx
        .domain
        .events()
        .into_iter()
        .filter(|e| e.data.get("caseId").and_then(|v| v.as_str()) == Some(fx.case_id.as_str()))
        .collect();
    assert_eq!(events.len(), 4);
    let mut previous = GENESIS.to_owned();
    for (i, event) in events.iter().enumerate() {
        event.validate(&Default::default()).expect("schema");
        let link = chain::check(event).expect("the link holds");
        assert_eq!(link.sequence, i as u64 + 1);
        assert_eq!(link.previous, previous);
        previous = link.hash;
    }
    let check = fx.check();
    assert!(check.intact, "{check:?}");
    assert_eq!((check.events, check.unchained, check.length), (4, 0, 4));
    assert_eq!(check.head.as_deref(), Some(previous.as_str()));
}

#[test]
fn an_edited_row_is_named_as_edited() {
    let fx = fixture();
    let rows = fx.rows();
    fx.sqlite()
        .execute(
            "UPDATE case_events SET data = json_set(data, '$.description', 'nothing lost') WHERE id = ?1",
            [rows[1].0],
        )
        .expect("edit");

    let check = fx.check();
    assert!(!check.intact);
    assert_eq!(
        kinds(&check),
        [(ProblemKind::Edited, Some(rows[1].1.clone()), Some(2))]
    );
    assert!(
        check.problems[0].message.contains("its data"),
        "{}",
        check.problems[0].message
    );
}

#[test]
fn an_edit_of_the_chained_document_too_fails_its_hash() {
    let fx = fixture();
    let rows = fx.rows();
    fx.sqlite()
        .execute(
            "UPDATE case_events
                SET data = json_set(data, '$.description', 'nothing lost'),
                    document = json_set(document, '$.data.description', 'nothing lost')
              WHERE id = ?1",
            [rows[2].0],
        )
        .expect("edit");

    let check = fx.check();
    assert_eq!(
        kinds(&check),
        [(ProblemKind::Edited, Some(rows[2].1.clone()), Some(3))]
    );
    assert!(
        check.problems[0].message.contains("hash does not match"),
        "{}",
        check.problems[0].message
    );
}

#[test]
fn a_deleted_row_is_named_by_its_place_in_the_chain() {
    let fx = fixture();
    let rows = fx.rows();
    fx.sqlite()
        .execute("DELETE FROM case_events WHERE id = ?1", [rows[1].0])
        .expect("delete");

    let check = fx.check();
    assert_eq!(kinds(&check), [(ProblemKind::Deleted, None, Some(2))]);
    assert!(
        check.problems[0]
            .message
            .contains("event 2 of the chain is missing")
    );
}

#[test]
fn the_last_row_deleted_is_missed_by_the_case_that_counts_its_chain() {
    let fx = fixture();
    let rows = fx.rows();
    fx.sqlite()
        .execute("DELETE FROM case_events WHERE id = ?1", [rows[3].0])
        .expect("delete");

    let check = fx.check();
    assert_eq!(kinds(&check), [(ProblemKind::Deleted, None, Some(4))]);
}

#[test]
fn rows_put_in_another_order_are_named_as_moved() {
    let fx = fixture();
    let rows = fx.rows();
    let db = fx.sqlite();
    // Swap the second and third events' places in the timeline.
    db.execute_batch(&format!(
        "UPDATE case_events SET id = -1 WHERE id = {b};
         UPDATE case_events SET id = {b} WHERE id = {c};
         UPDATE case_events SET id = {c} WHERE id = -1;",
        b = rows[1].0,
        c = rows[2].0
    ))
    .expect("swap");

    let check = fx.check();
    assert_eq!(
        kinds(&check),
        [(ProblemKind::Reordered, Some(rows[1].1.clone()), Some(2))]
    );
}

#[test]
fn a_row_added_outside_casewire_is_named_as_inserted() {
    let fx = fixture();
    fx.sqlite()
        .execute(
            "INSERT INTO case_events (case_id, event_id, event_type, actor, at, data)
             VALUES (?1, 'evt_1704672000000_00000000deadbeef', 'case.closed', 'analyst@fraud.com',
                     1704672000000, '{}')",
            [&fx.case_id],
        )
        .expect("insert");

    let check = fx.check();
    assert_eq!(
        kinds(&check),
        [(
            ProblemKind::Inserted,
            Some("evt_1704672000000_00000000deadbeef".to_owned()),
            None
        )]
    );
}

#[test]
fn a_tampered_timeline_checked_by_a_person_raises_a_critical_alert_in_the_case() {
    let fx = fixture();
    let rows = fx.rows();
    fx.sqlite()
        .execute("DELETE FROM case_events WHERE id = ?1", [rows[2].0])
        .expect("delete");

    let check = fx.check();
    assert!(!check.intact);
    fx.cases
        .record_check(&check, &analyst(), &from())
        .expect("recorded");
    let alert = fx.domain.events().pop().expect("alert");
    assert_eq!(alert.event_type, EventType::SystemAlert);
    assert_eq!(alert.priority, Priority::Critical);
    assert_eq!(alert.data["caseId"], fx.case_id.as_str());
    let message = alert.data["message"].as_str().expect("message");
    assert!(
        message.contains("event 3 of the chain is missing"),
        "{message}"
    );
    // The alert itself is chained after the case's last event, and the next check still
    // names the deletion, and only it.
    assert_eq!(chain::check(&alert).expect("chained").sequence, 5);
    assert_eq!(kinds(&fx.check()), [(ProblemKind::Deleted, None, Some(3))]);

    // An intact timeline raises nothing.
    let other = fixture();
    let before = other.domain.events().len();
    let intact = other.check();
    assert!(intact.intact);
    other
        .cases
        .record_check(&intact, &analyst(), &from())
        .expect("recorded");
    assert_eq!(other.domain.events().len(), before);
}
