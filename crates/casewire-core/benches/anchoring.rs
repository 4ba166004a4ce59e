//! `cargo bench -p casewire-core --bench anchoring`: `ANCHOR_BENCH_FILES` (default 10,000)
//! evidence files waiting to be anchored, taken through the queue by the anchoring worker on a
//! real anvil node, against the same files anchored directly with `casewire-chain` (tree,
//! prepare, sign, broadcast, receipt) in the same run.
//!
//! The files belong to `ANCHOR_BENCH_CASES` (default 50) cases, whose timelines' heads ride in
//! the same batch. Prints how many transactions the files took, the time to commit their requests (16
//! writers), and the worker's time from the first step to the last proof committed, split into
//! signing the batch (read the waiting requests, build the tree, ask the node for nonce, gas
//! and fees, sign, save) and following it to `anchored` (broadcast, receipt, each file's proof,
//! anchor row and `evidence.anchored` event committed). Then one JSON line.
#![allow(clippy::print_stdout, clippy::unwrap_used)] // A benchmark reports on stdout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use casewire_chain::merkle::{Tree, leaf};
use casewire_chain::rpc::{Endpoint, Rpc};
use casewire_chain::tx::AnchorKey;
use casewire_chain::{B256, prepare};
use casewire_core::anchoring::{Progress, Worker};
use casewire_core::{
    Anchoring, ChainSettings, EvidenceStore, NewEvidence, RequestInfo, Role, User,
};
use casewire_outbox::{Outbox, OutboxConfig, SystemClock};
use casewire_testkit::anvil::{Anvil, CHAIN_ID, DEV_KEY, DEV_KEY_2};
use serde_json::json;

const WRITERS: usize = 16;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let files: usize = std::env::var("ANCHOR_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // The files are spread over this many cases, whose timelines' heads ride in the batch.
    let cases: usize = std::env::var("ANCHOR_BENCH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
        .clamp(1, files.max(1));
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(SystemClock);
    let outbox = Arc::new(Outbox::open(OutboxConfig::file(dir.path().join("outbox.db"))).unwrap());
    casewire_core::migrate(&outbox).unwrap();
    let store =
        Arc::new(EvidenceStore::open(outbox.clone(), clock.clone(), dir.path(), 1 << 20).unwrap());
    let anchoring = Arc::new(Anchoring::new(outbox.clone(), clock.clone()));
    let user = User {
        id: 1,
        username: "investigator".into(),
        role: Role::Analyst,
    };
    let from = RequestInfo::default();

    let recorded = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (store, user, from) = (store.clone(), user.clone(), from.clone());
                scope.spawn(move || {
                    (w..files)
                        .step_by(WRITERS)
                        .map(|i| {
                            let meta = NewEvidence {
                                case_id: format!("CASE-2026-{:03}", 1 + i % cases),
                                wallet: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into(),
                                reporter: "bench".into(),
                                risk_level: None,
                                filename: format!("file-{i}.txt"),
                                content_type: "text/plain".into(),
                            };
                            let content = format!("evidence file {i}");
                            store
                                .upload(meta, content.as_bytes(), &user, &from)
                                .unwrap()
                                .evidence_id
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let (anchoring, user, from, ids) =
                (anchoring.clone(), user.clone(), from.clone(), &recorded);
            scope.spawn(move || {
                for id in ids.iter().skip(w).step_by(WRITERS) {
                    anchoring.request(id, &user, &from).unwrap();
                }
            });
        }
    });
    let requesting = started.elapsed();
    println!(
        "{files} anchor requests committed in {:.0} ms ({:.0}/s, {WRITERS} writers)",
        ms(requesting),
        files as f64 / requesting.as_secs_f64()
    );

    let anvil = Anvil::started();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rpc = Rpc::new(Endpoint::parse(&anvil.url()).unwrap());
    let worker = Worker::new(
        anchoring.clone(),
        AnchorKey::from_hex(DEV_KEY).unwrap(),
        ChainSettings {
            endpoint: Endpoint::parse(&anvil.url()).unwrap(),
            chain_id: CHAIN_ID,
            contract: None,
            confirmations: 1,
            poll: Duration::from_millis(10),
            key_file: None,
        },
    );
    let (signing, following, transactions) = rt.block_on(async {
        let started = Instant::now();
        assert_eq!(worker.sign_next().await.unwrap(), Progress::Moved);
        let signing = started.elapsed();
        let started = Instant::now();
        loop {
            match worker.step().await.unwrap() {
                Progress::Moved => {}
                Progress::InFlight => tokio::time::sleep(Duration::from_millis(10)).await,
                Progress::Idle => break,
            }
        }
        let following = started.elapsed();
        let key = AnchorKey::from_hex(DEV_KEY).unwrap();
        (
            signing,
            following,
            rpc.mined_nonce(key.address()).await.unwrap(),
        )
    });
    assert_eq!(anchoring.waiting().unwrap(), 0);
    for id in recorded.iter().step_by((files / 100).max(1)) {
        assert!(anchoring.proof(id).unwrap().is_some(), "{id} has its proof");
    }
    let through_queue = signing + following;
    println!(
        "through the queue: {transactions} transaction(s) for {files} files and {cases} case heads; signing {:.0} ms, to anchored {:.0} ms, in all {:.0} ms",
        ms(signing),
        ms(following),
        ms(through_queue)
    );

    // The reference: the same number of files anchored with the chain crate alone.
    let direct = rt.block_on(async {
        let key = AnchorKey::from_hex(DEV_KEY_2).unwrap();
        let started = Instant::now();
        // As many leaves as the batch: the files and the case heads.
        let leaves = (0..files + cases)
            .map(|i| {
                let file = casewire_chain::proof::sha256(format!("evidence file {i}").as_bytes());
                leaf(&B256::from(rand::random::<[u8; 32]>()), &file)
            })
            .collect();
        let tree = Tree::new(leaves).unwrap();
        for i in 0..files + cases {
            std::hint::black_box(tree.path(i));
        }
        let tx = prepare(&rpc, &key, CHAIN_ID, None, tree.root())
            .await
            .unwrap();
        let signed = key.sign(&tx);
        rpc.send_raw(&signed.raw).await.unwrap();
        rpc.receipt_within(signed.hash, Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        started.elapsed()
    });
    let ratio = through_queue.as_secs_f64() / direct.as_secs_f64();
    println!(
        "directly with casewire-chain: {:.0} ms; through the queue / directly: {ratio:.1}",
        ms(direct)
    );
    println!(
        "{}",
        json!({
            "files": files,
            "cases": cases,
            "transactions": transactions,
            "requests_ms": ms(requesting).round(),
            "signing_ms": ms(signing).round(),
            "to_anchored_ms": ms(following).round(),
            "through_queue_ms": ms(through_queue).round(),
            "direct_ms": ms(direct).round(),
            "ratio": (ratio * 10.0).round() / 10.0,
        })
    );
}
