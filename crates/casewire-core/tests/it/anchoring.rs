//! Anchoring through the queue against a real EVM node (foundry's anvil on loopback): requests
//! committed with their events, the worker's batches followed from signing to the configured
//! depth, through a node that is down, automine off, a reorganisation, a stop between signing
//! and broadcasting, and a nonce taken by another transaction; and the heads of case timelines
//! anchored with the files, against which a timeline's check finds what the database alone
//! cannot.

use std::sync::Arc;
use std::time::Duration;

use casewire_chain::proof::{CaseHeadProof, Proof, verify_case_head, verify_proof};
use casewire_chain::rpc::{Endpoint, Rpc};
use casewire_chain::tx::AnchorKey;
use casewire_chain::{Address, B256};
use casewire_core::anchoring::{Progress, StepError, Worker};
use casewire_core::{
    AnchorState, Anchoring, Cases, ChainSettings, CoreError, Evidence, EvidenceStore, NewEvidence,
    OnChainState, ProblemKind, Role, User, confirm_anchored_head,
};
use casewire_events::{EventType, Priority};
use casewire_outbox::{Outbox, OutboxConfig};
use casewire_testkit::anvil::{Anvil, CHAIN_ID, DEV_KEY};
use serde_json::{Value, json};

use crate::support::{self, Domain};

struct Fixture {
    domain: Domain,
    store: EvidenceStore,
    anchoring: Arc<Anchoring>,
}

fn fixture() -> Fixture {
    let domain = Domain::new();
    let store = EvidenceStore::open(
        domain.outbox.clone(),
        domain.clock.clone(),
        domain.dir.path(),
        1024 * 1024,
    )
    .expect("store");
    let anchoring = Arc::new(Anchoring::new(domain.outbox.clone(), domain.clock.clone()));
    Fixture {
        domain,
        store,
        anchoring,
    }
}

fn investigator() -> User {
    support::user("investigator@fraud.com", Role::Analyst)
}

fn upload(fx: &Fixture, content: &str) -> Evidence {
    fx.store
        .upload(
            NewEvidence {
                case_id: "CASE-2024-001".into(),
                wallet: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into(),
                reporter: "test@fraud.com".into(),
                risk_level: None,
                filename: "statement.pdf".into(),
                content_type: "application/pdf".into(),
            },
            content.as_bytes(),
            &investigator(),
            &support::from("/api/evidence/upload"),
        )
        .expect("upload")
}

fn request(fx: &Fixture, evidence: &Evidence) {
    let (status, created) = fx
        .anchoring
        .request(
            &evidence.evidence_id,
            &investigator(),
            &support::from("/api/evidence/x/anchor"),
        )
        .expect("request");
    assert!(created);
    assert_eq!(status.state, AnchorState::Waiting);
}

fn chain(anvil: &Anvil, confirmations: u64) -> ChainSettings {
    ChainSettings {
        endpoint: Endpoint::parse(&anvil.url()).expect("url"),
        chain_id: CHAIN_ID,
        contract: None,
        confirmations,
        poll: Duration::from_millis(20),
        key_file: None,
    }
}

fn worker(fx: &Fixture, anvil: &Anvil, confirmations: u64) -> Worker {
    Worker::new(
        fx.anchoring.clone(),
        AnchorKey::from_hex(DEV_KEY).expect("dev key"),
        chain(anvil, confirmations),
    )
}

fn rpc(anvil: &Anvil) -> Rpc {
    Rpc::new(Endpoint::parse(&anvil.url()).expect("url"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `f` on a runtime of its own, bounded in time.
fn within<F: std::future::Future>(seconds: u64, f: F) -> F::Output {
    runtime().block_on(async {
        tokio::time::timeout(Duration::from_secs(seconds), f)
            .await
            .expect("bounded in time")
    })
}

/// Steps until nothing moves any more, returning the last progress.
async fn settle(worker: &Worker) -> Progress {
    for _ in 0..50 {
        match worker.step().await.expect("a step") {
            Progress::Moved => continue,
            other => return other,
        }
    }
    panic!("the worker kept moving for 50 steps");
}

async fn mine(anvil: &Anvil, blocks: u64) {
    let () = rpc(anvil)
        .call("anvil_mine", json!([format!("0x{blocks:x}")]))
        .await
        .expect("mine");
}

fn state(fx: &Fixture, evidence: &Evidence) -> AnchorState {
    fx.anchoring
        .status(&evidence.evidence_id)
        .expect("status")
        .expect("requested")
        .state
}

fn proof(fx: &Fixture, evidence: &Evidence) -> Proof {
    fx.anchoring
        .proof(&evidence.evidence_id)
        .expect("proof")
        .expect("anchored")
}

fn file_hash(evidence: &Evidence) -> B256 {
    evidence.storage_hash.parse().expect("a hash")
}

#[test]
fn anchoring_asked_offline_waits_spending_no_attempt_and_is_done_once_the_node_starts() {
    let fx = fixture();
    let files: Vec<Evidence> = (0..3).map(|i| upload(&fx, &format!("file {i}"))).collect();
    for file in &files {
        request(&fx, file);
    }
    let queued = fx.domain.events();
    let asked = queued
        .iter()
        .filter(|e| e.data.get("action") == Some(&json!("anchor.requested")))
        .count();
    assert_eq!(asked, 3, "each request commits with its event");

    let mut anvil = Anvil::stopped();
    let worker = worker(&fx, &anvil, 1);
    within(30, async {
        assert!(matches!(
            worker.step().await,
            Err(StepError::Unreachable(_))
        ));
    });
    let status = fx
        .anchoring
        .status(&files[0].evidence_id)
        .expect("status")
        .expect("requested");
    assert_eq!(status.state, AnchorState::Waiting);
    assert_eq!(status.last_error, None, "an unreachable node is no failure");

    anvil.start();
    within(30, async {
        assert_eq!(settle(&worker).await, Progress::Idle);
    });
    let proofs: Vec<Proof> = files.iter().map(|f| proof(&fx, f)).collect();
    assert!(
        proofs
            .windows(2)
            .all(|p| p[0].on_chain.tx_hash == p[1].on_chain.tx_hash),
        "one transaction for the batch"
    );
    within(30, async {
        for (file, proof) in files.iter().zip(&proofs) {
            assert_eq!(state(&fx, file), AnchorState::Anchored);
            verify_proof(&rpc(&anvil), proof, Some(file_hash(file)))
                .await
                .expect("the proof holds on chain");
        }
    });
    let anchored: Vec<_> = fx
        .domain
        .events()
        .into_iter()
        .filter(|e| e.event_type == EventType::EvidenceAnchored)
        .collect();
    assert_eq!(anchored.len(), 3);
    let event = &anchored[0];
    assert_eq!(event.priority, Priority::High);
    assert_eq!(
        event.data["merkleRoot"],
        json!(proofs[0].on_chain.root.to_string())
    );
    assert_eq!(event.data["chainId"], json!(CHAIN_ID));
    assert_eq!(
        event.data["txHash"],
        json!(proofs[0].on_chain.tx_hash.to_string())
    );
    assert_eq!(event.data["caseId"], json!("CASE-2024-001"));
    assert_eq!(
        event.metadata.user_id.as_deref(),
        Some("investigator@fraud.com")
    );
    assert!(
        !String::from_utf8_lossy(&event.to_json()).contains(&proofs[0].salt.to_string()),
        "no salt leaves in an event"
    );
}

#[test]
fn a_second_request_answers_where_the_first_stands_and_an_anchored_file_is_a_conflict() {
    let fx = fixture();
    let file = upload(&fx, "twice");
    request(&fx, &file);
    let (_, created) = fx
        .anchoring
        .request(&file.evidence_id, &investigator(), &support::from("/"))
        .expect("asked again");
    assert!(!created, "one request per file");
    let anvil = Anvil::started();
    let worker = worker(&fx, &anvil, 1);
    within(30, async { settle(&worker).await });
    assert!(matches!(
        fx.anchoring
            .request(&file.evidence_id, &investigator(), &support::from("/")),
        Err(CoreError::Conflict(_))
    ));
    assert!(matches!(
        fx.anchoring.request(
            "0123456789abcdef01234567",
            &investigator(),
            &support::from("/")
        ),
        Err(CoreError::NotFound(_))
    ));
}

#[test]
fn a_batch_of_1000_files_is_anchored_by_one_transaction_and_every_proof_verifies() {
    let fx = fixture();
    let files: Vec<Evidence> = (0..1000)
        .map(|i| upload(&fx, &format!("bulk file {i}")))
        .collect();
    for file in &files {
        request(&fx, file);
    }
    let anvil = Anvil::started();
    let worker = worker(&fx, &anvil, 1);
    within(120, async {
        assert_eq!(settle(&worker).await, Progress::Idle);
        let rpc = rpc(&anvil);
        let first = proof(&fx, &files[0]);
        for file in &files {
            let proof = proof(&fx, file);
            assert_eq!(
                proof.on_chain.tx_hash, first.on_chain.tx_hash,
                "one transaction"
            );
            verify_proof(&rpc, &proof, Some(file_hash(file)))
                .await
                .expect("every proof holds");
        }
        let key = AnchorKey::from_hex(DEV_KEY).expect("key");
        assert_eq!(rpc.mined_nonce(key.address()).await.expect("nonce"), 1);
    });
    let status = fx
        .anchoring
        .status(&files[0].evidence_id)
        .expect("status")
        .expect("requested");
    assert_eq!(status.batch_size, Some(1000));
}

#[test]
fn confirmations_are_counted_and_the_file_is_anchored_at_the_configured_depth() {
    let fx = fixture();
    let file = upload(&fx, "deep");
    request(&fx, &file);
    let anvil = Anvil::started();
    let worker = worker(&fx, &anvil, 3);
    within(30, async {
        assert_eq!(settle(&worker).await, Progress::InFlight);
        let status = fx
            .anchoring
            .status(&file.evidence_id)
            .expect("status")
            .expect("requested");
        assert_eq!(status.state, AnchorState::Included);
        assert_eq!(status.confirmations, 1);
        assert_eq!(status.confirmations_required, Some(3));
        mine(&anvil, 1).await;
        assert_eq!(settle(&worker).await, Progress::InFlight);
        assert_eq!(
            fx.anchoring
                .status(&file.evidence_id)
                .expect("status")
                .expect("requested")
                .confirmations,
            2
        );
        mine(&anvil, 1).await;
        assert_eq!(settle(&worker).await, Progress::Idle);
    });
    assert_eq!(state(&fx, &file), AnchorState::Anchored);
}

#[test]
fn with_automine_off_the_anchor_stays_pending_until_a_block_is_mined() {
    let fx = fixture();
    let file = upload(&fx, "slow chain");
    request(&fx, &file);
    let anvil = Anvil::started();
    let worker = worker(&fx, &anvil, 1);
    within(30, async {
        let () = rpc(&anvil)
            .call("evm_setAutomine", json!([false]))
            .await
            .expect("automine off");
        assert_eq!(settle(&worker).await, Progress::InFlight);
        assert_eq!(state(&fx, &file), AnchorState::Pending);
        assert_eq!(settle(&worker).await, Progress::InFlight);
        assert_eq!(state(&fx, &file), AnchorState::Pending, "still unmined");
        mine(&anvil, 1).await;
        assert_eq!(settle(&worker).await, Progress::Idle);
    });
    assert_eq!(state(&fx, &file), AnchorState::Anchored);
}

#[test]
fn a_reorg_that_drops_the_block_sends_the_anchor_back_to_pending_and_it_is_anchored_again() {
    let fx = fixture();
    let file = upload(&fx, "reorganised");
    request(&fx, &file);
    let anvil = Anvil::started();
    let worker = worker(&fx, &anvil, 2);
    within(30, async {
        assert_eq!(settle(&worker).await, Progress::InFlight);
        let first = fx
            .anchoring
            .status(&file.evidence_id)
            .expect("status")
            .expect("requested");
        assert_eq!(first.state, AnchorState::Included);
        let rpc = rpc(&anvil);
        let () = rpc
            .call("evm_setAutomine", json!([false]))
            .await
            .expect("automine off");
        let () = rpc
            .call("anvil_reorg", json!([1, []]))
            .await
            .expect("reorg");
        assert_eq!(worker.step().await.expect("step"), Progress::Moved);
        assert_eq!(state(&fx, &file), AnchorState::Pending, "back to pending");
        // The saved transaction is broadcast again and lands in a new block.
        assert_eq!(worker.step().await.expect("step"), Progress::InFlight);
        mine(&anvil, 2).await;
        assert_eq!(settle(&worker).await, Progress::Idle);
        let proof = proof(&fx, &file);
        assert_eq!(
            proof.on_chain.tx_hash.to_string(),
            first.tx_hash.expect("signed")
        );
        verify_proof(&rpc, &proof, Some(file_hash(&file)))
            .await
            .expect("the proof names the new block");
        let key = AnchorKey::from_hex(DEV_KEY).expect("key");
        assert_eq!(rpc.mined_nonce(key.address()).await.expect("nonce"), 1);
    });
    let timeline_moves: Vec<Value> = fx
        .domain
        .events()
        .into_iter()
        .filter_map(|e| e.data.get("action").cloned())
        .collect();
    assert!(timeline_moves.contains(&json!("anchor.reorganised")));
}

#[test]
fn a_stop_between_signing_and_broadcasting_neither_loses_the_anchor_nor_signs_again() {
    let fx = fixture();
    let file = upload(&fx, "interrupted");
    request(&fx, &file);
    let anvil = Anvil::started();
    let signed = within(30, async {
        let worker = worker(&fx, &anvil, 1);
        assert_eq!(worker.sign_next().await.expect("signed"), Progress::Moved);
        let status = fx
            .anchoring
            .status(&file.evidence_id)
            .expect("status")
            .expect("requested");
        assert_eq!(status.state, AnchorState::Signed);
        let tx_hash: B256 = status.tx_hash.expect("saved").parse().expect("hash");
        assert!(
            rpc(&anvil)
                .transaction(tx_hash)
                .await
                .expect("ask")
                .is_none(),
            "nothing was broadcast"
        );
        tx_hash
    });
    // The process stops here: everything in memory is gone, the database is closed.
    let Fixture {
        domain,
        anchoring,
        store,
    } = fx;
    drop((anchoring, store));
    let path = domain.dir.path().join("outbox.db");
    domain.outbox.close();
    drop(domain.outbox);
    let outbox = Arc::new(
        Outbox::open(OutboxConfig {
            clock: domain.clock.clone(),
            ..OutboxConfig::file(&path)
        })
        .expect("reopened"),
    );
    let anchoring = Arc::new(Anchoring::new(outbox, domain.clock.clone()));
    let worker = Worker::new(
        anchoring.clone(),
        AnchorKey::from_hex(DEV_KEY).expect("dev key"),
        chain(&anvil, 1),
    );
    within(30, async {
        assert_eq!(settle(&worker).await, Progress::Idle);
        let proof = anchoring
            .proof(&file.evidence_id)
            .expect("proof")
            .expect("anchored");
        assert_eq!(
            proof.on_chain.tx_hash, signed,
            "the saved transaction, not a new one"
        );
        let key = AnchorKey::from_hex(DEV_KEY).expect("key");
        assert_eq!(
            rpc(&anvil).mined_nonce(key.address()).await.expect("nonce"),
            1,
            "one transaction for the nonce"
        );
    });
}

#[test]
fn a_nonce_taken_by_another_transaction_fails_the_batch_and_its_files_go_in_the_next() {
    let fx = fixture();
    let file = upload(&fx, "displaced");
    request(&fx, &file);
    let anvil = Anvil::started();
    let worker = worker(&fx, &anvil, 1);
    within(30, async {
        assert_eq!(worker.sign_next().await.expect("signed"), Progress::Moved);
        let first: String = fx
            .anchoring
            .status(&file.evidence_id)
            .expect("status")
            .expect("requested")
            .tx_hash
            .expect("signed");
        // Someone else uses the key (anvil holds the dev account unlocked) for nonce 0.
        let from: Address = AnchorKey::from_hex(DEV_KEY).expect("key").address();
        let _: B256 = rpc(&anvil)
            .call(
                "eth_sendTransaction",
                json!([{"from": from, "to": from, "value": "0x0"}]),
            )
            .await
            .expect("another transaction");
        assert_eq!(settle(&worker).await, Progress::Idle);
        let proof = proof(&fx, &file);
        assert_ne!(
            proof.on_chain.tx_hash.to_string(),
            first,
            "anchored by a new transaction"
        );
        verify_proof(&rpc(&anvil), &proof, Some(file_hash(&file)))
            .await
            .expect("the proof holds");
    });
    let failed = fx
        .domain
        .events()
        .into_iter()
        .filter(|e| e.data.get("action") == Some(&json!("anchor.failed")))
        .count();
    assert_eq!(failed, 1, "the failure is on the case's timeline");
}

#[test]
fn a_node_on_another_chain_is_refused_and_nothing_is_signed() {
    let fx = fixture();
    let file = upload(&fx, "wrong chain");
    request(&fx, &file);
    let anvil = Anvil::started();
    let mut settings = chain(&anvil, 1);
    settings.chain_id = 1;
    let worker = Worker::new(
        fx.anchoring.clone(),
        AnchorKey::from_hex(DEV_KEY).expect("dev key"),
        settings,
    );
    within(30, async {
        match worker.step().await {
            Err(StepError::Failed(message)) => {
                assert!(message.contains("CASEWIRE_CHAIN_ID"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    });
    assert_eq!(state(&fx, &file), AnchorState::Waiting);
}

#[test]
fn the_anchoring_key_file_is_made_its_owners_alone_and_refused_when_others_can_read_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("keys").join("anchor.key");
    let made = casewire_core::anchoring::anchoring_key(Some(&path), dir.path()).expect("made");
    let mode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "readable by its owner only");
    let again = casewire_core::anchoring::anchoring_key(Some(&path), dir.path()).expect("read");
    assert_eq!(
        again.address(),
        made.address(),
        "the same key at the next start"
    );

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    match casewire_core::anchoring::anchoring_key(Some(&path), dir.path()) {
        Err(CoreError::Config(message)) => {
            assert!(message.contains("chmod 600"), "{message}");
            assert!(
                !message.contains(made.to_hex().as_str()),
                "no key in the message"
            );
        }
        other => panic!("expected a refusal, got {:?}", other.map(|k| k.address())),
    }

    let garbage = dir.path().join("garbage.key");
    std::fs::write(&garbage, "not a key\n").expect("write");
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    match casewire_core::anchoring::anchoring_key(Some(&garbage), dir.path()) {
        Err(CoreError::Config(message)) => {
            assert!(
                message.contains("does not hold an anchoring key"),
                "{message}"
            );
        }
        other => panic!("expected a refusal, got {:?}", other.map(|k| k.address())),
    }
}

fn cases(fx: &Fixture) -> Cases {
    Cases::new(fx.domain.outbox.clone(), fx.domain.clock.clone())
}

/// The case-head proofs announced downstream so far, in order.
fn head_proofs(fx: &Fixture) -> Vec<CaseHeadProof> {
    fx.domain
        .events()
        .into_iter()
        .filter(|e| e.data.get("action") == Some(&json!("anchor.case_head")))
        .map(|e| serde_json::from_value(e.data["proof"].clone()).expect("a case-head proof"))
        .collect()
}

/// Anchors one new file of CASE-2024-001 with anvil, which carries the moved heads with it.
fn anchor_a_file(fx: &Fixture, anvil: &Anvil, content: &str) -> Evidence {
    let file = upload(fx, content);
    request(fx, &file);
    let worker = worker(fx, anvil, 1);
    within(30, async {
        assert_eq!(settle(&worker).await, Progress::Idle);
    });
    assert_eq!(state(fx, &file), AnchorState::Anchored);
    file
}

/// CASE-2024-001's head as last anchored.
fn anchored_head(cases: &Cases) -> casewire_core::AnchoredHead {
    cases
        .check_timeline("CASE-2024-001")
        .expect("check")
        .anchored_head
        .expect("anchored")
}

/// Someone with the disk deletes a case's events from place `from` on and rewrites its
/// recorded head to the event before.
fn truncate_timeline(fx: &Fixture, case_id: &str, from: u64) -> (u64, String) {
    let db = rusqlite::Connection::open(fx.domain.dir.path().join("outbox.db")).expect("open");
    db.execute(
        "DELETE FROM case_events WHERE case_id = ?1 AND chain_sequence >= ?2",
        rusqlite::params![case_id, from as i64],
    )
    .expect("delete");
    let head: String = db
        .query_row(
            "SELECT chain_hash FROM case_events WHERE case_id = ?1 AND chain_sequence = ?2",
            rusqlite::params![case_id, from as i64 - 1],
            |r| r.get(0),
        )
        .expect("the event before");
    db.execute(
        "UPDATE cases SET chain_length = ?2, chain_head = ?3 WHERE case_id = ?1",
        rusqlite::params![case_id, from as i64 - 1, head],
    )
    .expect("rewrite the head");
    (from - 1, head)
}

#[test]
fn the_heads_of_moved_timelines_ride_with_a_batch_and_each_head_proof_holds_on_chain() {
    let fx = fixture();
    let cases = cases(&fx);
    let file = upload(&fx, "statement");
    request(&fx, &file);
    // Opened after the upload opened CASE-2024-001.
    let quiet = cases
        .create(
            "Romance scam",
            "no evidence yet",
            &investigator(),
            &support::from("/api/cases"),
        )
        .expect("a case with no evidence");
    let signed_at = cases.check_timeline("CASE-2024-001").expect("check");
    let anvil = Anvil::started();
    let first = worker(&fx, &anvil, 1);
    within(30, async {
        assert_eq!(settle(&first).await, Progress::Idle);
    });

    let proofs = head_proofs(&fx);
    let mut named: Vec<&str> = proofs.iter().map(|p| p.case_id.as_str()).collect();
    named.sort_unstable();
    let mut expected = vec!["CASE-2024-001", quiet.case_id.as_str()];
    expected.sort_unstable();
    assert_eq!(
        named, expected,
        "every case whose head moved, with or without files"
    );
    let file_proof = proof(&fx, &file);
    within(30, async {
        for head in &proofs {
            assert_eq!(
                head.on_chain, file_proof.on_chain,
                "in the files' transaction"
            );
            verify_case_head(&rpc(&anvil), head)
                .await
                .expect("the head proof holds on chain");
        }
    });
    let evidence_case = proofs
        .iter()
        .find(|p| p.case_id == "CASE-2024-001")
        .expect("announced");
    assert_eq!(
        (evidence_case.sequence, Some(evidence_case.head.clone())),
        (signed_at.length, signed_at.head.clone()),
        "the head as it was when the batch was signed"
    );
    let check = cases.check_timeline("CASE-2024-001").expect("check");
    assert!(check.intact, "{check:?}");
    let anchored = check.anchored_head.expect("an anchored head");
    assert_eq!(anchored.sequence, signed_at.length);
    assert_eq!(anchored.tx_hash, file_proof.on_chain.tx_hash.to_string());
    assert!(
        check.length > anchored.sequence,
        "the anchoring's own events came after"
    );

    // Only a timeline that moved since (a new file's upload) goes into the next batch: the
    // anchoring's own events are no move, or every batch would carry every case again.
    anchor_a_file(&fx, &anvil, "a second statement");
    let again = head_proofs(&fx);
    assert_eq!(again.len(), 3, "{again:?}");
    assert_eq!(again[2].case_id, "CASE-2024-001");
    let idle = worker(&fx, &anvil, 1);
    within(30, async {
        assert_eq!(
            settle(&idle).await,
            Progress::Idle,
            "no head alone makes a batch"
        );
    });
    assert_eq!(head_proofs(&fx).len(), 3);
}

#[test]
fn the_last_events_deleted_with_the_head_rewritten_are_found_against_the_anchored_head() {
    let fx = fixture();
    let cases = cases(&fx);
    let anvil = Anvil::started();
    anchor_a_file(&fx, &anvil, "statement");
    let anchored = anchored_head(&cases);

    truncate_timeline(&fx, "CASE-2024-001", anchored.sequence - 1);
    let mut check = cases.check_timeline("CASE-2024-001").expect("check");
    assert!(!check.intact);
    let deleted = check
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Deleted)
        .expect("named as deleted");
    assert_eq!(deleted.sequence, Some(anchored.sequence - 1));
    assert!(
        deleted.message.contains("anchored on chain")
            && deleted.message.contains(&anchored.tx_hash),
        "{}",
        deleted.message
    );
    // The chain carries the head the check compared with.
    within(
        30,
        confirm_anchored_head(&mut check, Some(&chain(&anvil, 1))),
    );
    let on_chain = check.anchored_head.expect("anchored").on_chain;
    assert_eq!(
        on_chain.state,
        OnChainState::Verified,
        "{}",
        on_chain.message
    );
    assert_eq!(on_chain.confirmations, Some(1));
}

#[test]
fn an_anchoring_record_rewritten_to_match_a_shortened_timeline_is_refuted_by_the_chain() {
    let fx = fixture();
    let cases = cases(&fx);
    let anvil = Anvil::started();
    anchor_a_file(&fx, &anvil, "statement");
    let anchored = anchored_head(&cases);

    // Events from the file's upload on are deleted, and the anchoring record made to claim
    // the head left: the database alone is consistent again.
    let (sequence, head) = truncate_timeline(&fx, "CASE-2024-001", anchored.sequence - 1);
    let db = rusqlite::Connection::open(fx.domain.dir.path().join("outbox.db")).expect("open");
    let proof: String = db
        .query_row(
            "SELECT proof FROM case_head_anchors WHERE case_id = 'CASE-2024-001'",
            [],
            |r| r.get(0),
        )
        .expect("the head's proof");
    let mut forged: CaseHeadProof = serde_json::from_str(&proof).expect("proof");
    (forged.sequence, forged.head) = (sequence, head.clone());
    db.execute(
        "UPDATE case_head_anchors SET sequence = ?1, head = ?2, proof = ?3
          WHERE case_id = 'CASE-2024-001'",
        rusqlite::params![
            sequence as i64,
            head,
            serde_json::to_string(&forged).expect("json")
        ],
    )
    .expect("forge the record");
    let mut check = cases.check_timeline("CASE-2024-001").expect("check");
    assert!(check.intact, "the database alone cannot tell: {check:?}");

    let mut offline = check.clone();
    within(10, confirm_anchored_head(&mut offline, None));
    let not_checked = offline.anchored_head.expect("anchored").on_chain;
    assert_eq!(not_checked.state, OnChainState::NotChecked);
    assert!(not_checked.message.contains("taken from this database"));

    within(
        30,
        confirm_anchored_head(&mut check, Some(&chain(&anvil, 1))),
    );
    assert!(!check.intact);
    let refuted = check.anchored_head.as_ref().expect("anchored");
    assert_eq!(refuted.on_chain.state, OnChainState::Refused);
    assert!(
        refuted.on_chain.message.contains("Merkle path"),
        "{}",
        refuted.on_chain.message
    );
    assert_eq!(check.problems.len(), 1);
    assert_eq!(check.problems[0].kind, ProblemKind::Edited);
    assert!(check.problems[0].message.contains("does not hold on chain"));
}

#[test]
fn the_record_of_an_anchor_deleted_from_the_database_is_missed_by_the_timeline_that_tells_of_it() {
    let fx = fixture();
    let cases = cases(&fx);
    let anvil = Anvil::started();
    anchor_a_file(&fx, &anvil, "statement");
    let anchored = anchored_head(&cases);
    let db = rusqlite::Connection::open(fx.domain.dir.path().join("outbox.db")).expect("open");
    db.execute("DELETE FROM case_head_anchors", [])
        .expect("delete the anchoring records");

    let check = cases.check_timeline("CASE-2024-001").expect("check");
    assert!(!check.intact);
    assert_eq!(check.anchored_head, None);
    assert_eq!(check.problems.len(), 1, "{:?}", check.problems);
    let problem = &check.problems[0];
    assert_eq!(problem.kind, ProblemKind::Deleted);
    assert_eq!(problem.sequence, Some(anchored.sequence));
    assert!(
        problem.message.contains(&anchored.tx_hash)
            && problem.message.contains("record of that anchor is gone"),
        "{}",
        problem.message
    );
}
