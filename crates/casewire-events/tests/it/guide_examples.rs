//! The guide's example documents, verbatim, through the event model.

use casewire_events::{Event, EventError, EventType, Limits, Priority, WalletError};
use serde_json::Value;

const SCHEMA_EXAMPLE: &str = r#"{
  "eventId": "evt_1704672000000_a3b5c7",
  "eventType": "evidence.uploaded",
  "timestamp": "2024-01-07T12:00:00.000Z",
  "priority": "medium",
  "data": {
    "evidenceId": "66d4a2b8c9e1234567890abc",
    "caseId": "CASE-2024-001",
    "wallet": "0x742d35Cc6634C0532925a3b844Bc9e7595f0bEb",
    "reporter": "investigator@fraud.com",
    "filename": "transaction.png",
    "fileSize": 245760,
    "storageHash": "a665a45920422f9d...",
    "riskLevel": "high"
  },
  "metadata": {
    "source": "fraud-evidence-backend",
    "version": "1.0.0",
    "environment": "production",
    "userId": "investigator@fraud.com",
    "ipAddress": "192.168.1.100"
  }
}"#;

const ANCHORED_EXAMPLE: &str = r#"{
  "eventId": "evt_1704672100000_b4c6d8",
  "eventType": "evidence.anchored",
  "timestamp": "2024-01-07T12:01:00.000Z",
  "priority": "high",
  "data": {
    "evidenceId": "66d4a2b8c9e1234567890abc",
    "caseId": "CASE-2024-001",
    "wallet": "0x742d35Cc6634C0532925a3b844Bc9e7595f0bEb",
    "fileHash": "a665a45920422f9d...",
    "txHash": "0x5d7e8f9a0b1c2d3e...",
    "blockNumber": 18542301,
    "contractAddress": "0x742d35Cc6634C0532925a3b844Bc9e7595f0bEb"
  },
  "metadata": {
    "userId": "investigator@fraud.com",
    "priority": "high"
  }
}"#;

const PREDICTION_EXAMPLE: &str = r#"{
  "eventId": "evt_1704672200000_c5d7e9",
  "eventType": "rl.prediction.made",
  "timestamp": "2024-01-07T12:03:00.000Z",
  "priority": "high",
  "data": {
    "predictionId": "66d4a2b8c9e1234567890xyz",
    "wallet": "0x742d35Cc6634C0532925a3b844Bc9e7595f0bEb",
    "action": "freeze",
    "score": 0.95,
    "state": "known_fraudster",
    "evidenceId": "66d4a2b8c9e1234567890abc",
    "caseId": "CASE-2024-001"
  },
  "metadata": {
    "userId": "analyst@fraud.com",
    "priority": "high"
  }
}"#;

const FEEDBACK_EXAMPLE: &str = r#"{
  "eventId": "evt_1704672300000_d6e8f0",
  "eventType": "rl.feedback.received",
  "timestamp": "2024-01-07T14:00:00.000Z",
  "priority": "high",
  "data": {
    "feedbackId": "66d4a2b8c9e1234567890xyz",
    "wallet": "0x742d35Cc6634C0532925a3b844Bc9e7595f0bEb",
    "predictedAction": "investigate",
    "actualAction": "investigate",
    "outcome": "correct",
    "reward": 1.0,
    "evidenceId": "66d4a2b8c9e1234567890abc"
  },
  "metadata": {
    "userId": "investigator@fraud.com",
    "priority": "high"
  }
}"#;

const EXAMPLES: [&str; 4] = [
    SCHEMA_EXAMPLE,
    ANCHORED_EXAMPLE,
    PREDICTION_EXAMPLE,
    FEEDBACK_EXAMPLE,
];

/// A 40-digit, correctly checksummed address to stand in for the guide's 39-digit one.
const VALID_WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

fn parse(doc: &str) -> Event {
    Event::from_json(doc.as_bytes()).expect("guide example parses")
}

fn with_valid_wallets(doc: &str) -> Event {
    parse(&doc.replace("0x742d35Cc6634C0532925a3b844Bc9e7595f0bEb", VALID_WALLET))
}

#[test]
fn guide_examples_round_trip_to_the_same_document() {
    for doc in EXAMPLES {
        let event = parse(doc);
        let back: Value = serde_json::from_slice(&event.to_json()).expect("output is JSON");
        let original: Value = serde_json::from_str(doc).expect("example is JSON");
        assert_eq!(back, original);
    }
}

#[test]
fn serialisation_keeps_the_guides_key_order() {
    let event = parse(SCHEMA_EXAMPLE);
    let compact: Value = serde_json::from_str(SCHEMA_EXAMPLE).expect("example is JSON");
    assert_eq!(
        String::from_utf8(event.to_json()).expect("utf-8"),
        compact.to_string()
    );
}

#[test]
fn guide_examples_fail_validation_only_on_their_short_wallet() {
    for doc in EXAMPLES {
        let err = parse(doc)
            .validate(&Limits::default())
            .expect_err("short wallet");
        assert!(
            matches!(
                err,
                EventError::BadWallet {
                    source: WalletError::WrongLength(39),
                    ..
                }
            ),
            "{err}"
        );
        with_valid_wallets(doc)
            .validate(&Limits::default())
            .expect("valid once the wallet has 40 digits");
    }
}

#[test]
fn queue_file_events_without_priority_take_the_types_default() {
    let doc = r#"{"eventId":"evt_1704672000000_a3b5c7","eventType":"evidence.deleted",
        "timestamp":"2024-01-07T12:00:00.000Z","data":{"evidenceId":"e1"}}"#;
    let event = parse(doc);
    assert_eq!(event.priority, Priority::Critical);
    assert_eq!(event.event_type, EventType::EvidenceDeleted);
}

#[test]
fn parse_errors_name_the_problem() {
    let base: Value = serde_json::from_str(SCHEMA_EXAMPLE).expect("example is JSON");
    let with = |key: &str, value: Value| {
        let mut doc = base.clone();
        doc[key] = value;
        Event::from_json(doc.to_string().as_bytes()).expect_err("rejected")
    };
    assert!(
        matches!(with("eventType", "evidence.shredded".into()), EventError::UnknownType(t) if t == "evidence.shredded")
    );
    assert!(
        matches!(with("priority", "urgent".into()), EventError::UnknownPriority(p) if p == "urgent")
    );
    assert!(matches!(
        with("eventId", "evt_12_XYZ".into()),
        EventError::BadEventId(_)
    ));
    assert!(matches!(
        with("timestamp", "yesterday".into()),
        EventError::BadTimestamp(_)
    ));
    assert!(matches!(
        with("data", Value::Array(vec![])),
        EventError::DataNotObject
    ));
    assert!(matches!(
        Event::from_json(b"{\"eventId\": 1"),
        Err(EventError::Json(_))
    ));
}

#[test]
fn missing_and_mistyped_fields_are_reported_by_name() {
    let mut event = with_valid_wallets(SCHEMA_EXAMPLE);
    event.data.remove("storageHash");
    let err = event.validate(&Limits::default()).expect_err("missing");
    assert_eq!(
        err.to_string(),
        "evidence.uploaded event is missing data.storageHash"
    );

    let mut event = with_valid_wallets(SCHEMA_EXAMPLE);
    event.data.insert("fileSize".into(), "big".into());
    let err = event.validate(&Limits::default()).expect_err("mistyped");
    assert_eq!(
        err.to_string(),
        "evidence.uploaded event: data.fileSize must be a non-negative integer"
    );

    let mut event = with_valid_wallets(ANCHORED_EXAMPLE);
    event.data.insert("caseId".into(), "".into());
    assert!(matches!(
        event.validate(&Limits::default()),
        Err(EventError::WrongFieldType {
            field: "caseId",
            ..
        })
    ));
}

#[test]
fn oversized_events_are_refused_with_their_size() {
    let mut event = with_valid_wallets(SCHEMA_EXAMPLE);
    event
        .data
        .insert("notes".into(), "x".repeat(300 * 1024).into());
    match event.validate(&Limits::default()) {
        Err(EventError::TooLarge { size, limit }) => {
            assert_eq!(limit, 256 * 1024);
            assert!(size > 300 * 1024);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let small = Limits {
        max_event_bytes: 100,
    };
    assert!(matches!(
        with_valid_wallets(FEEDBACK_EXAMPLE).validate(&small),
        Err(EventError::TooLarge { limit: 100, .. })
    ));
}

#[test]
fn partition_key_prefers_case_then_evidence_then_wallet_then_id() {
    let mut event = parse(SCHEMA_EXAMPLE);
    assert_eq!(event.partition_key(), "CASE-2024-001");
    event.data.remove("caseId");
    assert_eq!(event.partition_key(), "66d4a2b8c9e1234567890abc");
    event.data.remove("evidenceId");
    assert_eq!(
        event.partition_key(),
        "0x742d35cc6634c0532925a3b844bc9e7595f0beb"
    );
    event.data.remove("wallet");
    assert_eq!(event.partition_key(), "evt_1704672000000_a3b5c7");
}

#[test]
fn headers_follow_cloudevents_names() {
    let event = parse(ANCHORED_EXAMPLE);
    let headers = event.headers();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .expect("header present")
    };
    assert_eq!(get("ce_specversion"), "1.0");
    assert_eq!(get("ce_id"), "evt_1704672100000_b4c6d8");
    assert_eq!(get("ce_type"), "evidence.anchored");
    assert_eq!(get("ce_source"), "casewire");
    assert_eq!(get("ce_time"), "2024-01-07T12:01:00.000Z");
    assert_eq!(get("priority"), "high");
    assert_eq!(get("content-type"), "application/json");
    assert_eq!(
        parse(SCHEMA_EXAMPLE).headers()[3].1,
        "fraud-evidence-backend"
    );
}

#[test]
fn publishing_points_carry_the_guides_priorities() {
    let table = [
        ("evidence.uploaded", Priority::Medium),
        ("evidence.anchored", Priority::High),
        ("evidence.downloaded", Priority::Medium),
        ("evidence.deleted", Priority::Critical),
        ("rl.prediction.made", Priority::Medium),
        ("rl.feedback.received", Priority::High),
        ("case.escalated", Priority::Critical),
        ("user.unauthorized_access", Priority::Critical),
        ("user.login", Priority::Low),
    ];
    for (name, priority) in table {
        let event_type: EventType = name.parse().expect("known type");
        assert_eq!(event_type.default_priority(), priority, "{name}");
    }
}

#[test]
fn all_twenty_types_have_distinct_round_tripping_names() {
    // The guide's 18, and Casewire's user.created and user.updated.
    assert_eq!(EventType::ALL.len(), 20);
    let mut names: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 20);
    for &t in EventType::ALL {
        assert_eq!(t.as_str().parse::<EventType>().expect("round trip"), t);
    }
}

#[test]
fn a_wallet_chain_that_is_not_the_wallets_is_refused() {
    let mut event = with_valid_wallets(EXAMPLES[0]);
    event.data.insert("walletChain".into(), "evm".into());
    event.validate(&Limits::default()).expect("an EVM wallet");
    event.data.insert("walletChain".into(), "tron".into());
    let refused = event
        .validate(&Limits::default())
        .expect_err("not a Tron address");
    assert!(
        matches!(
            &refused,
            EventError::WalletChainMismatch { named, detected: Some("evm") } if named == "tron"
        ),
        "{refused}"
    );
    assert_eq!(
        refused.to_string(),
        "data.walletChain is \"tron\" but data.wallet is an address of the evm chain"
    );
}
