//! `cargo bench -p casewire-chain --bench anchor`: a batch of `ANCHOR_BENCH_FILES` (default
//! 10,000) files anchored on a real anvil node, and their proofs checked.
//!
//! Prints, for the batch: the time to build its salted Merkle tree and every file's path, to
//! prepare, sign and broadcast its one transaction and have it mined (anvil mines at once),
//! and the transactions it took; for the proofs: the time to check one against the node
//! (`verify_proof`: five JSON-RPC calls over loopback HTTP) as the median and p99 of
//! `ANCHOR_BENCH_PROOFS` (default 1,000) checks, and the Merkle part alone. Then one JSON line.
#![allow(clippy::print_stdout, clippy::unwrap_used)] // A benchmark reports on stdout.

use std::time::{Duration, Instant};

use casewire_chain::merkle::{Tree, leaf, root_from};
use casewire_chain::proof::{OnChain, Proof, sha256, verify_proof};
use casewire_chain::rpc::{Endpoint, Rpc};
use casewire_chain::tx::AnchorKey;
use casewire_chain::{B256, prepare};
use casewire_testkit::anvil::{Anvil, CHAIN_ID, DEV_KEY};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let files = setting("ANCHOR_BENCH_FILES", 10_000);
    let checks = setting("ANCHOR_BENCH_PROOFS", 1_000).min(files);
    let anvil = Anvil::started();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rpc = Rpc::new(Endpoint::parse(&anvil.url()).unwrap());
    let key = AnchorKey::from_hex(DEV_KEY).unwrap();
    let hashes: Vec<B256> = (0..files)
        .map(|i| sha256(format!("evidence file {i}").as_bytes()))
        .collect();

    let started = Instant::now();
    let salts: Vec<B256> = (0..files)
        .map(|_| B256::from(rand::random::<[u8; 32]>()))
        .collect();
    let tree = Tree::new(hashes.iter().zip(&salts).map(|(h, s)| leaf(s, h)).collect()).unwrap();
    let paths: Vec<_> = (0..files).map(|i| tree.path(i).unwrap()).collect();
    let tree_time = started.elapsed();

    let started = Instant::now();
    let receipt = rt.block_on(async {
        let tx = prepare(&rpc, &key, CHAIN_ID, None, tree.root())
            .await
            .unwrap();
        let signed = key.sign(&tx);
        rpc.send_raw(&signed.raw).await.unwrap();
        rpc.receipt_within(signed.hash, Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap()
    });
    let chain_time = started.elapsed();
    let transactions = rt.block_on(rpc.mined_nonce(key.address())).unwrap();

    let mut check_times = Vec::with_capacity(checks);
    let mut merkle_times = Vec::with_capacity(checks);
    for i in (0..files).step_by(files / checks.max(1)).take(checks) {
        let proof = Proof::new(
            format!("evidence-{i}"),
            hashes[i],
            salts[i],
            paths[i].clone(),
            OnChain::from_receipt(tree.root(), CHAIN_ID, &receipt, None, key.address()),
        );
        let started = Instant::now();
        assert_eq!(
            root_from(leaf(&proof.salt, &proof.file_hash), &proof.path),
            proof.on_chain.root
        );
        merkle_times.push(started.elapsed());
        let started = Instant::now();
        rt.block_on(verify_proof(&rpc, &proof, Some(hashes[i])))
            .unwrap();
        check_times.push(started.elapsed());
    }
    check_times.sort();
    merkle_times.sort();
    let at = |v: &[Duration], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];

    println!("anchoring {files} files on anvil (chain {CHAIN_ID}), one batch");
    println!(
        "  Merkle tree and every path: {:.1} ms (depth {})",
        ms(tree_time),
        paths[0].len()
    );
    println!(
        "  prepare, sign, broadcast, mined: {:.1} ms, {transactions} transaction(s)",
        ms(chain_time)
    );
    println!(
        "verifying one proof ({} checks): p50 {:.2} ms, p99 {:.2} ms; its Merkle path alone p50 {:.1} µs",
        check_times.len(),
        ms(at(&check_times, 0.5)),
        ms(at(&check_times, 0.99)),
        at(&merkle_times, 0.5).as_secs_f64() * 1e6
    );
    println!(
        "{}",
        serde_json::json!({
            "files": files,
            "transactions": transactions,
            "tree_ms": ms(tree_time),
            "anchor_ms": ms(chain_time),
            "verify_proof_p50_ms": ms(at(&check_times, 0.5)),
            "verify_proof_p99_ms": ms(at(&check_times, 0.99)),
            "merkle_path_p50_us": at(&merkle_times, 0.5).as_secs_f64() * 1e6,
        })
    );
}
