//! Cases and their timelines.

use casewire_core::{
    Auth, AuthPolicy, CaseFilter, CaseStatus, Cases, CoreError, ListPage, RequestInfo, Role, User,
};
use casewire_events::{EventType, Priority};

use crate::support::{self, Domain};

struct Fixture {
    domain: Domain,
    cases: Cases,
    auth: Auth,
}

fn fixture() -> Fixture {
    let domain = Domain::new();
    let cases = Cases::new(domain.outbox.clone(), domain.clock.clone());
    let auth = Auth::new(
        domain.outbox.clone(),
        domain.clock.clone(),
        AuthPolicy::default(),
    );
    Fixture {
        domain,
        cases,
        auth,
    }
}

fn analyst() -> User {
    support::user("analyst@fraud.com", Role::Analyst)
}

fn from() -> RequestInfo {
    support::from("/api/cases")
}

#[test]
fn case_ids_follow_the_guides_shape_per_year() {
    let fx = fixture();
    let first = fx
        .cases
        .create("Phishing wallet drain", "", &analyst(), &from())
        .expect("created");
    let second = fx
        .cases
        .create("Rug pull", "token XYZ", &analyst(), &from())
        .expect("created");
    assert_eq!(first.case_id, "CASE-2024-001");
    assert_eq!(second.case_id, "CASE-2024-002");
    assert_eq!(first.status, CaseStatus::Open);
}

#[test]
fn each_action_commits_its_event_and_the_timeline_keeps_them_all() {
    let fx = fixture();
    fx.auth
        .add_user(
            "investigator@fraud.com",
            Role::User,
            "correct horse battery",
        )
        .expect("user");
    let case = fx
        .cases
        .create(
            "Phishing wallet drain",
            "victim report",
            &analyst(),
            &from(),
        )
        .expect("created");
    let id = case.case_id.clone();
    fx.cases
        .update(
            &id,
            None,
            Some("victim report, two wallets"),
            &analyst(),
            &from(),
        )
        .expect("updated");
    let assigned = fx
        .cases
        .assign(&id, "Investigator@Fraud.com", &analyst(), &from())
        .expect("assigned");
    assert_eq!(assigned.assignee.as_deref(), Some("investigator@fraud.com"));
    let escalated = fx
        .cases
        .escalate(
            &id,
            "national cybercrime unit",
            "funds moved abroad",
            &analyst(),
            &from(),
        )
        .expect("escalated");
    assert_eq!(escalated.status, CaseStatus::Escalated);
    let closed = fx
        .cases
        .close(&id, "funds frozen", &analyst(), &from())
        .expect("closed");
    assert_eq!(closed.status, CaseStatus::Closed);

    let queued: Vec<_> = fx
        .domain
        .outbox
        .claim(100)
        .expect("claim")
        .events
        .iter()
        .map(|e| e.event().expect("parses"))
        .collect();
    let kinds: Vec<(EventType, Priority)> =
        queued.iter().map(|e| (e.event_type, e.priority)).collect();
    assert_eq!(
        kinds,
        [
            (EventType::CaseCreated, Priority::Medium),
            (EventType::CaseUpdated, Priority::Medium),
            (EventType::CaseAssigned, Priority::Medium),
            (EventType::CaseEscalated, Priority::Critical),
            (EventType::CaseClosed, Priority::Medium),
        ]
    );
    for event in &queued {
        event
            .validate(&Default::default())
            .expect("every event passes its schema");
        assert_eq!(event.data["caseId"], id.as_str());
        assert_eq!(
            event.partition_key(),
            id,
            "a case's events share its partition key"
        );
        assert_eq!(event.metadata.user_id.as_deref(), Some("analyst@fraud.com"));
    }
    let timeline = fx.cases.timeline(&id).expect("timeline");
    let types: Vec<&str> = timeline.iter().map(|t| t.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "case.created",
            "case.updated",
            "case.assigned",
            "case.escalated",
            "case.closed"
        ]
    );
    assert_eq!(timeline[3].data["authority"], "national cybercrime unit");
    assert_eq!(
        timeline
            .iter()
            .map(|t| t.event_id.clone())
            .collect::<Vec<_>>(),
        queued
            .iter()
            .map(|e| e.event_id.to_string())
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_closed_case_refuses_changes_and_nothing_is_recorded() {
    let fx = fixture();
    let case = fx
        .cases
        .create("Rug pull", "", &analyst(), &from())
        .expect("created");
    fx.cases
        .close(&case.case_id, "no loss", &analyst(), &from())
        .expect("closed");
    let err = fx
        .cases
        .escalate(&case.case_id, "police", "late report", &analyst(), &from())
        .expect_err("closed");
    assert!(matches!(err, CoreError::Conflict(_)), "{err}");
    assert_eq!(fx.cases.timeline(&case.case_id).expect("timeline").len(), 2);
    assert_eq!(fx.domain.outbox.claim(100).expect("claim").events.len(), 2);
}

#[test]
fn bad_input_is_refused_with_what_is_wrong() {
    let fx = fixture();
    assert_eq!(
        fx.cases
            .create("  ", "", &analyst(), &from())
            .expect_err("no title")
            .to_string(),
        "title is required"
    );
    let case = fx
        .cases
        .create("Case", "", &analyst(), &from())
        .expect("created");
    let err = fx
        .cases
        .assign(&case.case_id, "ghost", &analyst(), &from())
        .expect_err("no such user")
        .to_string();
    assert_eq!(err, "no active user ghost to assign");
    assert!(matches!(
        fx.cases.get("CASE-2024-999"),
        Err(CoreError::NotFound(_))
    ));
    assert!(
        fx.cases
            .update(&case.case_id, None, None, &analyst(), &from())
            .is_err()
    );
    assert_eq!(
        fx.cases
            .list(
                &CaseFilter {
                    status: Some(CaseStatus::Open),
                    search: None,
                },
                &analyst(),
                &ListPage::default(),
            )
            .expect("list")
            .items
            .len(),
        1
    );
    assert!(
        fx.cases
            .list(
                &CaseFilter {
                    status: Some(CaseStatus::Closed),
                    search: None,
                },
                &analyst(),
                &ListPage::default(),
            )
            .expect("list")
            .items
            .is_empty()
    );
    // Only the creation was recorded.
    assert_eq!(fx.cases.timeline(&case.case_id).expect("timeline").len(), 1);
}

fn investigator(name: &str) -> User {
    support::user(name, Role::User)
}

#[test]
fn an_investigator_sees_the_cases_they_opened_or_are_assigned_and_no_other() {
    let fx = fixture();
    let ivy = investigator("ivy");
    let bob = investigator("bob");
    let auth = Auth::new(
        fx.domain.outbox.clone(),
        fx.domain.clock.clone(),
        AuthPolicy::default(),
    );
    auth.add_user("bob", Role::User, "correct horse battery")
        .expect("bob");
    let ivys = fx.cases.create("Ivy's", "", &ivy, &from()).expect("case");
    let assigned = fx
        .cases
        .create("Given to Bob", "", &analyst(), &from())
        .expect("case");
    fx.cases
        .assign(&assigned.case_id, "bob", &analyst(), &from())
        .expect("assigned");
    let ids = |user: &User| -> Vec<String> {
        fx.cases
            .list(&CaseFilter::default(), user, &ListPage::first(1_000))
            .expect("list")
            .items
            .into_iter()
            .map(|c| c.case_id)
            .collect()
    };
    assert_eq!(ids(&ivy), std::slice::from_ref(&ivys.case_id));
    assert_eq!(ids(&bob), std::slice::from_ref(&assigned.case_id));
    assert_eq!(ids(&analyst()).len(), 2, "analysts see every case");
    fx.cases.visible(&ivys.case_id, &ivy).expect("her own");
    let hidden = fx.cases.visible(&ivys.case_id, &bob).expect_err("not his");
    assert!(matches!(hidden, CoreError::Hidden(_)));
    // Said to him exactly as a case that does not exist.
    let missing = fx
        .cases
        .visible("CASE-2024-999", &bob)
        .expect_err("missing");
    assert!(matches!(missing, CoreError::NotFound(_)));
    assert_eq!(
        hidden.to_string().replace(&ivys.case_id, "X"),
        missing.to_string().replace("CASE-2024-999", "X")
    );
    for bad in [
        "../../x",
        "CASE-9999",
        "case-2024-001",
        "CASE-2024-1",
        "CASE-20245-001",
    ] {
        let err = fx
            .cases
            .visible(bad, &analyst())
            .expect_err(bad)
            .to_string();
        assert!(err.contains("looks like CASE-2024-001"), "{bad}: {err}");
    }
}

#[test]
fn a_closed_case_reopens_with_its_event_and_only_once() {
    let fx = fixture();
    let case = fx
        .cases
        .create("Rug pull", "", &analyst(), &from())
        .expect("case");
    assert!(matches!(
        fx.cases.reopen(&case.case_id, &analyst(), &from()),
        Err(CoreError::Conflict(_))
    ));
    fx.cases
        .close(&case.case_id, "Funds recovered", &analyst(), &from())
        .expect("closed");
    let reopened = fx
        .cases
        .reopen(&case.case_id, &analyst(), &from())
        .expect("reopened");
    assert_eq!(reopened.status, CaseStatus::Open);
    let last = fx.domain.events().pop().expect("event");
    assert_eq!(last.event_type, EventType::CaseUpdated);
    assert_eq!(last.data["reopened"], true);
    assert_eq!(fx.cases.timeline(&case.case_id).expect("timeline").len(), 3);
}

#[test]
fn cases_are_paged_newest_first_without_gaps_or_repeats_while_new_ones_arrive() {
    let fx = fixture();
    let analyst = analyst();
    for n in 0..120 {
        fx.cases
            .create(&format!("Case {n}"), "", &analyst, &from())
            .expect("case");
    }
    let everything = |filter: &CaseFilter| -> Vec<String> {
        fx.cases
            .list(filter, &analyst, &ListPage::first(1_000))
            .expect("list")
            .items
            .into_iter()
            .map(|c| c.case_id)
            .collect()
    };
    let before = everything(&CaseFilter::default());
    let (mut seen, mut page, mut pages) = (Vec::new(), ListPage::first(50), 0);
    loop {
        let listed = fx
            .cases
            .list(&CaseFilter::default(), &analyst, &page)
            .expect("page");
        pages += 1;
        if pages == 1 {
            // A case opened between two pages is in front of them, not in them.
            fx.cases
                .create("Opened while paging", "", &analyst, &from())
                .expect("case");
        }
        seen.extend(listed.items.into_iter().map(|c| c.case_id));
        let Some(cursor) = listed.next_cursor else {
            break;
        };
        page = ListPage {
            after: Some(cursor),
            limit: Some(50),
        };
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, before, "every case once, newest first");
    let found = everything(&CaseFilter {
        search: Some("  CASE 11 ".into()),
        status: None,
    });
    assert_eq!(found.len(), 11, "Case 11 and Case 110 to 119: {found:?}");
    let made_up = ListPage {
        after: Some("yesterday".into()),
        limit: None,
    };
    assert!(matches!(
        fx.cases.list(&CaseFilter::default(), &analyst, &made_up),
        Err(CoreError::Invalid(_))
    ));
}
