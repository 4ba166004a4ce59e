//! Evidence files: streamed and hashed, stored by content, each action with its event.

use std::io::Read;

use casewire_core::{
    CoreError, Evidence, EvidenceFilter, EvidenceStore, ListPage, NewAnchor, NewEvidence,
    RequestInfo, Role, User,
};
use casewire_events::{Event, EventType, Priority};

use crate::support::{self, Domain};
use sha2::{Digest, Sha256};

struct Fixture {
    domain: Domain,
    store: EvidenceStore,
}

const LIMIT: u64 = 1024 * 1024;

fn fixture() -> Fixture {
    let domain = Domain::new();
    let store = EvidenceStore::open(
        domain.outbox.clone(),
        domain.clock.clone(),
        domain.dir.path(),
        LIMIT,
    )
    .expect("store");
    Fixture { domain, store }
}

fn investigator() -> User {
    support::user("investigator@fraud.com", Role::User)
}

/// Every record `filter` matches, as an analyst (who sees every case) lists them.
fn listed(fx: &Fixture, case_id: Option<&str>, wallet: Option<&str>) -> Vec<Evidence> {
    let filter = EvidenceFilter {
        case_id: case_id.map(str::to_owned),
        wallet: wallet.map(str::to_owned),
    };
    let analyst = support::user("analyst", Role::Analyst);
    fx.store
        .list(&filter, &analyst, &ListPage::first(1_000))
        .expect("list")
        .items
}

fn from() -> RequestInfo {
    support::from("/api/evidence/upload")
}

fn meta() -> NewEvidence {
    NewEvidence {
        case_id: "CASE-2024-001".into(),
        wallet: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into(),
        reporter: "test@fraud.com".into(),
        risk_level: Some("high".into()),
        filename: "transaction.png".into(),
        content_type: "image/png".into(),
    }
}

#[test]
fn an_upload_is_hashed_stored_by_content_and_recorded_with_its_event() {
    let fx = fixture();
    let content = b"screenshot of the drained wallet".repeat(1_000);
    let evidence = fx
        .store
        .upload(meta(), &content[..], &investigator(), &from())
        .expect("stored");
    let expected = hex::encode(Sha256::digest(&content));
    assert_eq!(evidence.storage_hash, expected);
    assert_eq!(evidence.file_size, content.len() as u64);
    assert_eq!(evidence.evidence_id.len(), 24);
    let stored = fx
        .domain
        .dir
        .path()
        .join("evidence")
        .join(&expected[..2])
        .join(&expected);
    assert_eq!(std::fs::read(stored).expect("file"), content);
    assert_eq!(
        fx.store.get(&evidence.evidence_id).expect("record"),
        evidence
    );

    let event = fx.domain.events().pop().expect("event");
    assert_eq!(event.event_type, EventType::EvidenceUploaded);
    assert_eq!(event.priority, Priority::Medium);
    event
        .validate(&Default::default())
        .expect("the event passes its schema");
    assert_eq!(event.data["evidenceId"], evidence.evidence_id.as_str());
    assert_eq!(event.data["storageHash"], expected.as_str());
    assert_eq!(event.data["fileSize"], content.len() as u64);
    assert_eq!(event.data["riskLevel"], "high");
    assert_eq!(
        event.metadata.user_id.as_deref(),
        Some("investigator@fraud.com")
    );
    assert_eq!(event.metadata.ip_address.as_deref(), Some("192.168.1.100"));
}

#[test]
fn oversized_empty_and_malformed_uploads_are_refused_and_leave_nothing() {
    let fx = fixture();
    let big = vec![7u8; LIMIT as usize + 1];
    assert!(matches!(
        fx.store.upload(meta(), &big[..], &investigator(), &from()),
        Err(CoreError::TooLarge { limit: LIMIT })
    ));
    let empty = fx
        .store
        .upload(meta(), &b""[..], &investigator(), &from())
        .expect_err("empty")
        .to_string();
    assert_eq!(empty, "the file is empty");
    let wallet = NewEvidence {
        wallet: "0x742d35Cc6634C0532925a3b844Bc9e7595f0bEb".into(),
        ..meta()
    };
    let err = fx
        .store
        .upload(wallet, &b"x"[..], &investigator(), &from())
        .expect_err("short wallet")
        .to_string();
    assert!(err.contains("wallet is not a valid address"), "{err}");
    let risk = NewEvidence {
        risk_level: Some("extreme".into()),
        ..meta()
    };
    assert!(
        fx.store
            .upload(risk, &b"x"[..], &investigator(), &from())
            .is_err()
    );
    assert!(listed(&fx, None, None).is_empty());
    assert!(fx.domain.events().is_empty());
    // No temporary file is left behind either.
    assert_eq!(
        std::fs::read_dir(fx.domain.dir.path().join("evidence/tmp"))
            .expect("tmp")
            .count(),
        0
    );
}

#[test]
fn a_file_name_that_is_too_long_or_hides_its_type_is_refused_and_leaves_nothing() {
    let fx = fixture();
    for (name, words) in [
        ("a".repeat(200_000), "200000 bytes long"),
        (format!("{}.pdf", "é".repeat(127)), "at most 255"),
        ("invoice\u{202E}fdp.exe".to_owned(), "U+202E"),
        ("report\u{2066}.pdf".to_owned(), "U+2066"),
        ("line\nbreak.txt".to_owned(), "U+000A"),
        ("   ".to_owned(), "needs a name"),
    ] {
        let named = NewEvidence {
            filename: name.clone(),
            ..meta()
        };
        let err = fx
            .store
            .upload(named, &b"x"[..], &investigator(), &from())
            .expect_err("refused")
            .to_string();
        assert!(err.contains(words), "{name:?}: {err}");
    }
    // 255 bytes exactly, in any script, is a name like any other.
    let longest = NewEvidence {
        filename: format!("{}.pdf", "é".repeat(125)),
        ..meta()
    };
    assert_eq!(longest.filename.len(), 254);
    fx.store
        .upload(longest, &b"x"[..], &investigator(), &from())
        .expect("accepted");
    let types: Vec<EventType> = fx.domain.events().iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [EventType::CaseCreated, EventType::EvidenceUploaded],
        "only the accepted upload is recorded (with the case it opened)"
    );
}

#[test]
fn verification_catches_a_tampered_file_and_raises_an_alert() {
    let fx = fixture();
    let evidence = fx
        .store
        .upload(meta(), &b"original bytes"[..], &investigator(), &from())
        .expect("stored");
    let ok = fx
        .store
        .verify(&evidence.evidence_id, &investigator(), &from())
        .expect("verified");
    assert!(ok.verified);
    let path = fx
        .domain
        .dir
        .path()
        .join("evidence")
        .join(&evidence.storage_hash[..2])
        .join(&evidence.storage_hash);
    std::fs::write(&path, b"tampered bytes").expect("tamper");
    let bad = fx
        .store
        .verify(&evidence.evidence_id, &investigator(), &from())
        .expect("checked");
    assert!(!bad.verified);
    assert_ne!(
        bad.actual_hash.as_deref(),
        Some(evidence.storage_hash.as_str())
    );
    let events = fx.domain.events();
    let kinds: Vec<(EventType, Priority)> =
        events.iter().map(|e| (e.event_type, e.priority)).collect();
    assert_eq!(
        kinds,
        [
            (EventType::CaseCreated, Priority::Medium),
            (EventType::EvidenceUploaded, Priority::Medium),
            (EventType::EvidenceVerified, Priority::Medium),
            (EventType::EvidenceVerified, Priority::Medium),
            (EventType::SystemAlert, Priority::Critical),
        ]
    );
    assert_eq!(events[3].data["verified"], false);
}

#[test]
fn a_download_streams_the_original_and_is_recorded() {
    let fx = fixture();
    let evidence = fx
        .store
        .upload(meta(), &b"the evidence"[..], &investigator(), &from())
        .expect("stored");
    let (record, mut file) = fx
        .store
        .open_download(&evidence.evidence_id, &investigator(), &from())
        .expect("opened");
    let mut content = Vec::new();
    file.read_to_end(&mut content).expect("read");
    assert_eq!(content, b"the evidence");
    assert_eq!(record.filename, "transaction.png");
    assert_eq!(record.content_type, "image/png");
    assert_eq!(
        fx.domain.events().pop().expect("event").event_type,
        EventType::EvidenceDownloaded
    );
}

#[test]
fn deletion_keeps_the_record_and_hash_but_removes_the_file() {
    let fx = fixture();
    let first = fx
        .store
        .upload(meta(), &b"same content"[..], &investigator(), &from())
        .expect("stored");
    let second = fx
        .store
        .upload(meta(), &b"same content"[..], &investigator(), &from())
        .expect("stored");
    assert_eq!(
        first.storage_hash, second.storage_hash,
        "identical contents are stored once"
    );
    let path = fx
        .domain
        .dir
        .path()
        .join("evidence")
        .join(&first.storage_hash[..2])
        .join(&first.storage_hash);
    fx.store
        .delete(&first.evidence_id, &investigator(), &from())
        .expect("deleted");
    assert!(path.exists(), "still used by the second record");
    fx.store
        .delete(&second.evidence_id, &investigator(), &from())
        .expect("deleted");
    assert!(!path.exists(), "the file goes with its last live record");
    let record = fx.store.get(&first.evidence_id).expect("record kept");
    assert!(record.deleted_at.is_some());
    assert_eq!(record.storage_hash, first.storage_hash);
    assert!(matches!(
        fx.store
            .verify(&first.evidence_id, &investigator(), &from()),
        Err(CoreError::Gone(_))
    ));
    let deleted: Vec<Event> = fx
        .domain
        .events()
        .into_iter()
        .filter(|e| e.event_type == EventType::EvidenceDeleted)
        .collect();
    assert_eq!(deleted.len(), 2);
    assert!(deleted.iter().all(|e| e.priority == Priority::Critical));
    assert!(matches!(
        fx.store.get("000000000000000000000000"),
        Err(CoreError::NotFound(_))
    ));
}

#[test]
fn evidence_is_listed_by_case_and_wallet() {
    let fx = fixture();
    fx.store
        .upload(meta(), &b"a"[..], &investigator(), &from())
        .expect("stored");
    fx.store
        .upload(
            NewEvidence {
                case_id: "CASE-2024-002".into(),
                ..meta()
            },
            &b"b"[..],
            &investigator(),
            &from(),
        )
        .expect("stored");
    assert_eq!(listed(&fx, Some("CASE-2024-002"), None).len(), 1);
    let lower = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
    assert_eq!(listed(&fx, None, Some(lower)).len(), 2);
    assert_eq!(listed(&fx, None, None).len(), 2);
}

#[test]
fn evidence_about_a_tron_wallet_is_found_by_that_exact_address_only() {
    let fx = fixture();
    let tron = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t";
    let stored = fx
        .store
        .upload(
            NewEvidence {
                wallet: tron.into(),
                ..meta()
            },
            &b"usdt transfer"[..],
            &investigator(),
            &from(),
        )
        .expect("stored");
    assert_eq!(stored.wallet_chain, "tron");
    let event = fx.domain.events().pop().expect("event");
    assert_eq!(event.data["walletChain"], "tron");
    event.validate(&Default::default()).expect("schema");

    assert_eq!(listed(&fx, None, Some(tron)).len(), 1);
    // base58 is case-sensitive: another case is another string, refused as no address.
    let other = EvidenceFilter {
        wallet: Some(tron.to_lowercase()),
        ..EvidenceFilter::default()
    };
    let refused = fx
        .store
        .list(
            &other,
            &support::user("analyst", Role::Analyst),
            &ListPage::first(10),
        )
        .expect_err("not an address");
    assert!(refused.to_string().contains("wallet"), "{refused}");
}

fn receipt() -> NewAnchor {
    NewAnchor {
        tx_hash: format!("0x{}", "5d7e8f9a".repeat(8)),
        block_number: 18_542_301,
        contract_address: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into(),
    }
}

#[test]
fn an_anchor_is_recorded_once_with_its_high_priority_event() {
    let fx = fixture();
    let evidence = fx
        .store
        .upload(meta(), &b"ledger export"[..], &investigator(), &from())
        .expect("stored");

    let anchor = fx
        .store
        .anchor(&evidence.evidence_id, receipt(), &investigator(), &from())
        .expect("anchored");

    assert_eq!(anchor.file_hash, evidence.storage_hash);
    assert_eq!(
        fx.store.anchors(&evidence.evidence_id).expect("anchors"),
        std::slice::from_ref(&anchor)
    );
    let events = fx.domain.events();
    let event = events.last().expect("event");
    assert_eq!(event.event_type, EventType::EvidenceAnchored);
    assert_eq!(event.priority, Priority::High);
    event.validate(&Default::default()).expect("schema");
    assert_eq!(event.data["fileHash"], evidence.storage_hash.as_str());
    assert_eq!(event.data["txHash"], anchor.tx_hash.as_str());
    assert_eq!(event.data["blockNumber"], 18_542_301);
    assert_eq!(event.data["caseId"], "CASE-2024-001");

    let again = fx
        .store
        .anchor(&evidence.evidence_id, receipt(), &investigator(), &from());
    assert!(matches!(again, Err(CoreError::Conflict(_))), "{again:?}");
    assert_eq!(fx.domain.events().len(), events.len(), "no second event");
}

#[test]
fn malformed_receipts_and_deleted_evidence_cannot_be_anchored() {
    let fx = fixture();
    let evidence = fx
        .store
        .upload(meta(), &b"ledger export"[..], &investigator(), &from())
        .expect("stored");
    let before = fx.domain.events().len();
    let cases = [
        (
            NewAnchor {
                tx_hash: "0x5d7e8f9a0b1c2d3e".into(),
                ..receipt()
            },
            "txHash must be 0x followed by 64 hex digits",
        ),
        (
            NewAnchor {
                block_number: 0,
                ..receipt()
            },
            "blockNumber must be a positive block height",
        ),
        (
            NewAnchor {
                contract_address: "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into(),
                ..receipt()
            },
            "contractAddress:",
        ),
    ];
    for (bad, message) in cases {
        let err = fx
            .store
            .anchor(&evidence.evidence_id, bad, &investigator(), &from())
            .expect_err("refused")
            .to_string();
        assert!(err.starts_with(message), "{err}");
    }
    assert_eq!(fx.domain.events().len(), before);

    fx.store
        .delete(&evidence.evidence_id, &investigator(), &from())
        .expect("deleted");
    let gone = fx
        .store
        .anchor(&evidence.evidence_id, receipt(), &investigator(), &from());
    assert!(matches!(gone, Err(CoreError::Gone(_))), "{gone:?}");
    assert!(
        fx.store
            .anchors(&evidence.evidence_id)
            .expect("anchors")
            .is_empty()
    );
}

#[test]
fn deleting_twice_records_one_deletion() {
    let fx = fixture();
    let evidence = fx
        .store
        .upload(meta(), &b"wire receipt"[..], &investigator(), &from())
        .expect("stored");
    fx.store
        .delete(&evidence.evidence_id, &investigator(), &from())
        .expect("deleted");
    let events = fx.domain.events().len();

    let again = fx
        .store
        .delete(&evidence.evidence_id, &investigator(), &from());

    assert!(matches!(again, Err(CoreError::Gone(_))), "{again:?}");
    assert_eq!(fx.domain.events().len(), events);
}

#[test]
fn content_held_by_an_unrecorded_upload_survives_the_deletion_of_its_twin() {
    let fx = fixture();
    let content = b"the same screenshot, sent twice";
    let first = fx
        .store
        .upload(meta(), &content[..], &investigator(), &from())
        .expect("stored");
    // A second upload of the same bytes has stored its file but not yet its record...
    let held = fx.store.store_content(&content[..]).expect("stored");
    // ...when the first record is deleted: the file must stay for the second.
    fx.store
        .delete(&first.evidence_id, &investigator(), &from())
        .expect("deleted");
    let second = fx
        .store
        .record(meta(), held, &investigator(), &from())
        .expect("recorded");

    let verification = fx
        .store
        .verify(&second.evidence_id, &investigator(), &from())
        .expect("verified");
    assert!(verification.verified, "{verification:?}");

    // Once nothing holds or uses it, deleting the last record removes the file.
    fx.store
        .delete(&second.evidence_id, &investigator(), &from())
        .expect("deleted");
    let path = fx
        .domain
        .dir
        .path()
        .join("evidence")
        .join(&second.storage_hash[..2])
        .join(&second.storage_hash);
    assert!(!path.exists());
}

#[test]
fn evidence_for_a_case_that_does_not_exist_opens_it_and_a_closed_case_refuses_evidence() {
    let fx = fixture();
    let cases = casewire_core::Cases::new(fx.domain.outbox.clone(), fx.domain.clock.clone());
    // The guide's scenario: evidence for CASE-2024-001 before anyone opened it.
    let evidence = fx
        .store
        .upload(meta(), &b"statement"[..], &investigator(), &from())
        .expect("stored");
    let case = cases
        .get(&evidence.case_id)
        .expect("the upload opened the case");
    assert_eq!(case.created_by, investigator().username);
    let types: Vec<EventType> = fx.domain.events().iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::CaseCreated, EventType::EvidenceUploaded]);
    // The year's counter has moved past it: the next case opened is not a duplicate.
    let next = cases
        .create("Next", "", &investigator(), &from())
        .expect("opened");
    assert_eq!(next.case_id, "CASE-2024-002");

    let analyst = support::user("analyst", Role::Analyst);
    cases
        .close(&case.case_id, "done", &analyst, &from())
        .expect("closed");
    let refused = fx
        .store
        .upload(meta(), &b"late"[..], &investigator(), &from())
        .expect_err("closed")
        .to_string();
    assert!(refused.contains("is closed"), "{refused}");
    // Someone else's case and a case id of the wrong shape are refused too, storing nothing.
    let other = NewEvidence {
        case_id: next.case_id.clone(),
        ..meta()
    };
    let stranger = support::user("stranger", Role::User);
    assert!(matches!(
        fx.store.upload(other, &b"x"[..], &stranger, &from()),
        Err(CoreError::Hidden(_))
    ));
    let shaped = NewEvidence {
        case_id: "../../x".into(),
        ..meta()
    };
    assert!(
        fx.store
            .upload(shaped, &b"x"[..], &investigator(), &from())
            .is_err()
    );
    assert_eq!(listed(&fx, None, None).len(), 1);
    cases
        .reopen(&case.case_id, &analyst, &from())
        .expect("reopened");
    fx.store
        .upload(meta(), &b"after reopening"[..], &investigator(), &from())
        .expect("accepted again");
}
