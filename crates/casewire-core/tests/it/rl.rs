//! The fraud-response policy: predictions from what is known of a wallet, learning from
//! feedback, and an event for each.

use casewire_core::{
    Cases, CoreError, EvidenceStore, NewEvidence, Policy, PredictionRequest, RequestInfo, Role,
    User,
};
use casewire_events::{EventType, Priority};

use crate::support::{self, Domain};

const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

struct Fixture {
    domain: Domain,
    policy: Policy,
}

fn fixture() -> Fixture {
    let domain = Domain::new();
    let policy = Policy::new(domain.outbox.clone(), domain.clock.clone());
    Fixture { domain, policy }
}

fn analyst() -> User {
    support::user("analyst@fraud.com", Role::Analyst)
}

fn from() -> RequestInfo {
    support::from("/api/rl/predict")
}

fn ask(wallet: &str) -> PredictionRequest {
    PredictionRequest {
        wallet: wallet.into(),
        ..PredictionRequest::default()
    }
}

/// Records evidence on `WALLET` in a new case, rated `risk`, and escalates the case if asked.
fn evidence_on_wallet(fx: &Fixture, risk: &str, escalate: bool) -> (String, String) {
    evidence_on(fx, &WALLET.to_lowercase(), risk, escalate)
}

/// Records evidence on `wallet` in a new case, rated `risk`, and escalates the case if asked.
fn evidence_on(fx: &Fixture, wallet: &str, risk: &str, escalate: bool) -> (String, String) {
    let cases = Cases::new(fx.domain.outbox.clone(), fx.domain.clock.clone());
    let case = cases
        .create("Drained wallet", "", &analyst(), &from())
        .expect("case");
    let store = EvidenceStore::open(
        fx.domain.outbox.clone(),
        fx.domain.clock.clone(),
        fx.domain.dir.path(),
        1 << 20,
    )
    .expect("store");
    let evidence = store
        .upload(
            NewEvidence {
                case_id: case.case_id.clone(),
                wallet: wallet.into(),
                reporter: "victim@example.com".into(),
                risk_level: Some(risk.into()),
                filename: "tx.png".into(),
                content_type: "image/png".into(),
            },
            &b"png"[..],
            &analyst(),
            &from(),
        )
        .expect("evidence");
    if escalate {
        cases
            .escalate(
                &case.case_id,
                "FBI IC3",
                "stolen funds",
                &analyst(),
                &from(),
            )
            .expect("escalated");
    }
    (case.case_id, evidence.evidence_id)
}

#[test]
fn a_wallet_nobody_reported_is_monitored_with_a_medium_priority_event() {
    let fx = fixture();

    let prediction = fx
        .policy
        .predict(ask(WALLET), &analyst(), &from())
        .expect("made");

    assert_eq!(prediction.state, "unknown");
    assert_eq!(prediction.action, "monitor");
    assert!((prediction.score - 0.6).abs() < 1e-9);
    assert_eq!(prediction.prediction_id.len(), 24);
    let events = fx.domain.events();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.event_type, EventType::RlPredictionMade);
    assert_eq!(event.priority, Priority::Medium);
    event.validate(&Default::default()).expect("schema");
    assert_eq!(
        event.data["predictionId"],
        prediction.prediction_id.as_str()
    );
    assert_eq!(event.data["wallet"], WALLET);
    assert_eq!(event.data["action"], "monitor");
    assert_eq!(event.metadata.user_id.as_deref(), Some("analyst@fraud.com"));
    assert_eq!(event.metadata.ip_address.as_deref(), Some("192.168.1.100"));
}

#[test]
fn evidence_in_an_escalated_case_makes_a_known_fraudster_to_freeze_at_high_priority() {
    let fx = fixture();
    let (case_id, evidence_id) = evidence_on_wallet(&fx, "high", true);
    let request = PredictionRequest {
        evidence_id: Some(evidence_id.clone()),
        case_id: Some(case_id.clone()),
        ..ask(WALLET)
    };

    let prediction = fx
        .policy
        .predict(request, &analyst(), &from())
        .expect("made");

    assert_eq!(prediction.state, "known_fraudster");
    assert_eq!(prediction.action, "freeze");
    let event = fx.domain.events().pop().expect("event");
    assert_eq!(event.event_type, EventType::RlPredictionMade);
    assert_eq!(event.priority, Priority::High);
    assert_eq!(event.data["state"], "known_fraudster");
    assert_eq!(event.data["evidenceId"], evidence_id.as_str());
    assert_eq!(event.data["caseId"], case_id.as_str());

    // Closing the case after escalating it, the usual end, does not clear the wallet.
    Cases::new(fx.domain.outbox.clone(), fx.domain.clock.clone())
        .close(
            &case_id,
            "funds frozen by the exchange",
            &analyst(),
            &from(),
        )
        .expect("closed");
    let again = fx
        .policy
        .predict(ask(WALLET), &analyst(), &from())
        .expect("made");
    assert_eq!(again.state, "known_fraudster");
}

#[test]
fn high_risk_evidence_alone_calls_for_investigation() {
    let fx = fixture();
    evidence_on_wallet(&fx, "critical", false);

    let prediction = fx
        .policy
        .predict(ask(WALLET), &analyst(), &from())
        .expect("made");

    assert_eq!(
        (prediction.state.as_str(), prediction.action.as_str()),
        ("high_risk", "investigate")
    );
}

#[test]
fn feedback_is_recorded_once_and_updates_the_model_with_two_events() {
    let fx = fixture();
    let prediction = fx
        .policy
        .predict(ask(WALLET), &analyst(), &from())
        .expect("made");
    let before = fx.domain.events().len();

    let feedback = fx
        .policy
        .feedback(&prediction.prediction_id, "monitor", &analyst(), &from())
        .expect("recorded");

    assert_eq!(feedback.outcome, "correct");
    assert_eq!(feedback.reward, 1.0);
    assert_eq!(feedback.model_version, 1);
    let events = fx.domain.events();
    let new: Vec<_> = events[before..].iter().collect();
    assert_eq!(new.len(), 2);
    assert_eq!(new[0].event_type, EventType::RlFeedbackReceived);
    assert_eq!(new[0].priority, Priority::High);
    assert_eq!(new[0].data["predictedAction"], "monitor");
    assert_eq!(new[0].data["actualAction"], "monitor");
    assert_eq!(new[0].data["outcome"], "correct");
    assert_eq!(new[0].data["reward"], 1.0);
    assert_eq!(new[1].event_type, EventType::RlModelUpdated);
    assert_eq!(new[1].data["modelVersion"], "1");
    for event in new {
        event.validate(&Default::default()).expect("schema");
    }

    let again = fx
        .policy
        .feedback(&prediction.prediction_id, "freeze", &analyst(), &from());
    assert!(matches!(again, Err(CoreError::Conflict(_))), "{again:?}");
    assert_eq!(fx.domain.events().len(), events.len(), "no second event");
}

#[test]
fn repeated_corrections_change_what_the_policy_recommends() {
    let fx = fixture();
    let mut actions = Vec::new();
    for _ in 0..3 {
        let prediction = fx
            .policy
            .predict(ask(WALLET), &analyst(), &from())
            .expect("made");
        actions.push(prediction.action.clone());
        let feedback = fx
            .policy
            .feedback(
                &prediction.prediction_id,
                "investigate",
                &analyst(),
                &from(),
            )
            .expect("recorded");
        assert_eq!(
            feedback.reward,
            if prediction.action == "investigate" {
                1.0
            } else {
                -1.0
            }
        );
    }
    // monitor 0.6 → 0.48 → 0.384; investigate 0.3 → 0.44 → 0.552: the third asks investigate.
    assert_eq!(actions, ["monitor", "monitor", "investigate"]);
}

#[test]
fn bad_wallets_actions_and_predictions_are_refused_and_change_nothing() {
    let fx = fixture();
    let short = fx
        .policy
        .predict(
            ask("0x742d35Cc6634C0532925a3b844Bc9e7595f0bEb"),
            &analyst(),
            &from(),
        )
        .expect_err("39 hex digits");
    assert!(short.to_string().starts_with("wallet:"), "{short}");
    let prediction = fx
        .policy
        .predict(ask(WALLET), &analyst(), &from())
        .expect("made");
    let events = fx.domain.events().len();

    let action = fx
        .policy
        .feedback(&prediction.prediction_id, "nuke", &analyst(), &from())
        .expect_err("unknown action");
    assert!(
        action.to_string().contains("must be one of freeze"),
        "{action}"
    );
    let unknown = fx
        .policy
        .feedback("000000000000000000000000", "freeze", &analyst(), &from());
    assert!(
        matches!(unknown, Err(CoreError::NotFound(_))),
        "{unknown:?}"
    );

    assert_eq!(fx.domain.events().len(), events);
    let after = fx
        .policy
        .feedback(&prediction.prediction_id, "monitor", &analyst(), &from())
        .expect("the refused feedback left the prediction open");
    assert_eq!(after.model_version, 1);
}

#[test]
fn wallets_of_bitcoin_tron_and_solana_have_states_of_their_own_and_name_their_chain() {
    let fx = fixture();
    let tron = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t";
    let bech32 = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
    let solana = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
    evidence_on(&fx, tron, "high", false);
    evidence_on(&fx, &bech32.to_uppercase(), "low", true);

    let state = |wallet: &str| {
        let prediction = fx
            .policy
            .predict(ask(wallet), &analyst(), &from())
            .expect("made");
        let event = fx.domain.events().pop().expect("event");
        event.validate(&Default::default()).expect("schema");
        (prediction.state, event.data["walletChain"].clone())
    };
    assert_eq!(state(tron), ("high_risk".into(), "tron".into()));
    // bech32 ignores case: the evidence was recorded in capitals.
    assert_eq!(state(bech32), ("known_fraudster".into(), "bitcoin".into()));
    assert_eq!(state(solana), ("unknown".into(), "solana".into()));
    assert_eq!(state(WALLET), ("unknown".into(), "evm".into()));
}

#[test]
fn an_address_that_looks_like_a_chains_but_fails_its_rules_keeps_its_precise_refusal() {
    let fx = fixture();
    for (address, reason) in [
        ("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6T", "base58check checksum"),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", "bech32"),
        (
            "0x742d35Cc6634C0532925a3b844Bc9e7595f0bEb",
            "40 hex digits after 0x, found 39",
        ),
        ("not-a-wallet", "Solana base58 of 32 bytes"),
    ] {
        let refused = fx
            .policy
            .predict(ask(address), &analyst(), &from())
            .expect_err(address);
        assert!(refused.to_string().contains(reason), "{address}: {refused}");
    }
    assert!(fx.domain.events().is_empty());
}
