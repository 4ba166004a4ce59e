//! Anchoring against a real EVM node: foundry's anvil on loopback.

use std::time::Duration;

use casewire_chain::merkle::{Tree, leaf};
use casewire_chain::proof::{
    Inclusion, OnChain, Proof, ReceiptClaim, Refusal, VerifyError, sha256, verify_proof,
    verify_receipt,
};
use casewire_chain::rpc::{BlockTag, Endpoint, Rpc};
use casewire_chain::tx::{AnchorKey, AnchorTx, Fees, anchor_contract_creation};
use casewire_chain::{Address, B256, Bytes, prepare};
use casewire_testkit::anvil::{Anvil, CHAIN_ID, DEV_KEY, DEV_KEY_2};
use serde_json::{Value, json};

fn rpc(anvil: &Anvil) -> Rpc {
    Rpc::new(Endpoint::parse(&anvil.url()).expect("anvil's url"))
}

fn key() -> AnchorKey {
    AnchorKey::from_hex(DEV_KEY).expect("dev key")
}

/// Signs and broadcasts `tx`, then returns its receipt's block once mined (anvil mines each
/// transaction at once unless told not to).
async fn send(rpc: &Rpc, key: &AnchorKey, tx: &AnchorTx) -> (B256, u64, B256) {
    let signed = key.sign(tx);
    let hash = rpc.send_raw(&signed.raw).await.expect("broadcast");
    assert_eq!(hash, signed.hash, "the node hashes what we hashed");
    let receipt = rpc
        .receipt_within(hash, Duration::from_secs(10))
        .await
        .expect("receipt")
        .expect("mined");
    (hash, receipt.block_number.to(), receipt.block_hash)
}

/// Deploys `creation` from the dev key and returns the contract's address.
async fn deploy(rpc: &Rpc, creation: Vec<u8>) -> Address {
    let from = key().address();
    let tx: Value = json!({"from": from, "input": Bytes::from(creation), "gas": "0x100000"});
    let hash: B256 = rpc
        .call("eth_sendTransaction", json!([tx]))
        .await
        .expect("deploy");
    rpc.receipt_within(hash, Duration::from_secs(10))
        .await
        .expect("deploy receipt")
        .and_then(|receipt| receipt.contract_address)
        .expect("a contract created")
}

/// A batch of `n` made-up files: their hashes, salts and tree.
fn batch(n: usize) -> (Vec<B256>, Vec<B256>, Tree) {
    let files: Vec<B256> = (0..n)
        .map(|i| sha256(format!("file {i}").as_bytes()))
        .collect();
    let salts: Vec<B256> = (0..n)
        .map(|_| B256::from(rand::random::<[u8; 32]>()))
        .collect();
    let leaves = files.iter().zip(&salts).map(|(f, s)| leaf(s, f)).collect();
    (files, salts, Tree::new(leaves).expect("non-empty"))
}

#[allow(clippy::too_many_arguments)]
fn proof_of(
    i: usize,
    files: &[B256],
    salts: &[B256],
    tree: &Tree,
    tx: (B256, u64, B256),
    contract: Option<Address>,
    sender: Address,
) -> Proof {
    Proof::new(
        format!("evidence-{i}"),
        files[i],
        salts[i],
        tree.path(i).expect("in the batch"),
        OnChain {
            root: tree.root(),
            chain_id: CHAIN_ID,
            tx_hash: tx.0,
            block_number: tx.1,
            block_hash: tx.2,
            contract_address: contract,
            sender,
        },
    )
}

fn refusal(result: Result<Inclusion, VerifyError>) -> Refusal {
    match result {
        Err(VerifyError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn within<F: std::future::Future>(seconds: u64, f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(seconds), f)
                .await
                .expect("bounded in time")
        })
}

#[test]
fn a_batch_of_1000_files_is_anchored_by_one_transaction_to_itself_and_every_proof_verifies() {
    let anvil = Anvil::started();
    within(120, async {
        let rpc = rpc(&anvil);
        let key = key();
        let (files, salts, tree) = batch(1000);
        let tx = prepare(&rpc, &key, CHAIN_ID, None, tree.root())
            .await
            .expect("prepare");
        let sent = send(&rpc, &key, &tx).await;
        let on_chain = rpc.transaction(sent.0).await.expect("tx").expect("known");
        assert_eq!(
            on_chain.input.as_ref(),
            tree.root().as_slice(),
            "only the root is public"
        );
        assert_eq!(on_chain.to, Some(key.address()));
        for i in 0..files.len() {
            let proof = proof_of(i, &files, &salts, &tree, sent, None, key.address());
            let inclusion = verify_proof(&rpc, &proof, Some(files[i]))
                .await
                .unwrap_or_else(|e| panic!("proof {i}: {e}"));
            assert_eq!(inclusion.block_number, sent.1);
            assert_eq!(inclusion.confirmations, 1);
        }
    });
}

#[test]
fn a_root_sent_to_the_contract_is_found_in_its_anchored_log() {
    let anvil = Anvil::started();
    within(60, async {
        let rpc = rpc(&anvil);
        let key = key();
        let contract = deploy(&rpc, anchor_contract_creation()).await;
        let (files, salts, tree) = batch(5);
        let tx = prepare(&rpc, &key, CHAIN_ID, Some(contract), tree.root())
            .await
            .expect("prepare");
        let sent = send(&rpc, &key, &tx).await;
        let receipt = rpc.receipt(sent.0).await.expect("receipt").expect("mined");
        assert_eq!(receipt.logs.len(), 1, "one Anchored log");
        let proof = proof_of(
            3,
            &files,
            &salts,
            &tree,
            sent,
            Some(contract),
            key.address(),
        );
        verify_proof(&rpc, &proof, Some(files[3]))
            .await
            .expect("the log carries the root");

        // The same transaction read as if no contract had been used carries no root in its
        // calldata alone: the proof must say how the root went on chain.
        let mut without = proof.clone();
        without.on_chain.contract_address = None;
        assert!(matches!(
            refusal(verify_proof(&rpc, &without, None).await),
            Refusal::HashNotInTransaction { .. }
        ));
    });
}

#[test]
fn confirmations_are_counted_as_blocks_are_mined_on_top() {
    let anvil = Anvil::started();
    within(60, async {
        let rpc = rpc(&anvil);
        let key = key();
        let (files, salts, tree) = batch(2);
        let tx = prepare(&rpc, &key, CHAIN_ID, None, tree.root())
            .await
            .expect("prepare");
        let sent = send(&rpc, &key, &tx).await;
        let proof = proof_of(0, &files, &salts, &tree, sent, None, key.address());
        let () = rpc
            .call("anvil_mine", json!(["0x5"]))
            .await
            .expect("mine 5");
        let inclusion = verify_proof(&rpc, &proof, None).await.expect("verified");
        assert_eq!(inclusion.confirmations, 6);
    });
}

#[test]
fn with_automine_off_the_anchor_is_known_but_not_mined_until_a_block_comes() {
    let anvil = Anvil::started();
    within(60, async {
        let rpc = rpc(&anvil);
        let key = key();
        let () = rpc
            .call("evm_setAutomine", json!([false]))
            .await
            .expect("automine off");
        let (files, salts, tree) = batch(3);
        let tx = prepare(&rpc, &key, CHAIN_ID, None, tree.root())
            .await
            .expect("prepare");
        let signed = key.sign(&tx);
        rpc.send_raw(&signed.raw).await.expect("broadcast");
        assert!(rpc.receipt(signed.hash).await.expect("asked").is_none());
        let pending = (signed.hash, 0, B256::ZERO);
        let proof = proof_of(1, &files, &salts, &tree, pending, None, key.address());
        assert_eq!(
            refusal(verify_proof(&rpc, &proof, None).await),
            Refusal::NotMined(signed.hash)
        );
        // Broadcasting the same bytes again is refused as known: a cue, not a failure.
        let again = rpc.send_raw(&signed.raw).await.expect_err("already known");
        assert!(again.is_already_known(), "{again}");

        let () = rpc.call("anvil_mine", json!(["0x1"])).await.expect("mine");
        let receipt = rpc
            .receipt_within(signed.hash, Duration::from_secs(10))
            .await
            .expect("asked")
            .expect("mined");
        let mined = (signed.hash, receipt.block_number.to(), receipt.block_hash);
        let proof = proof_of(1, &files, &salts, &tree, mined, None, key.address());
        verify_proof(&rpc, &proof, None)
            .await
            .expect("verified once mined");
    });
}

#[test]
fn a_reorg_that_drops_the_block_fails_the_proof_and_the_saved_transaction_lands_again() {
    let anvil = Anvil::started();
    within(60, async {
        let rpc = rpc(&anvil);
        let key = key();
        let (files, salts, tree) = batch(4);
        let tx = prepare(&rpc, &key, CHAIN_ID, None, tree.root())
            .await
            .expect("prepare");
        let signed = key.sign(&tx);
        let sent = send(&rpc, &key, &tx).await;
        let proof = proof_of(2, &files, &salts, &tree, sent, None, key.address());
        verify_proof(&rpc, &proof, None)
            .await
            .expect("before the reorg");

        // Replace the last block with an empty one of another hash.
        let () = rpc
            .call("anvil_reorg", json!([1, []]))
            .await
            .expect("reorg");
        let after = verify_proof(&rpc, &proof, None).await;
        assert!(
            matches!(
                refusal(after),
                Refusal::UnknownTransaction(_)
                    | Refusal::NotMined(_)
                    | Refusal::BlockMismatch { .. }
            ),
            "the dropped block no longer proves anything"
        );

        // The signed bytes, saved before broadcasting, are simply sent again.
        match rpc.send_raw(&signed.raw).await {
            Ok(hash) => assert_eq!(hash, signed.hash),
            Err(e) => assert!(e.is_already_known(), "{e}"),
        }
        if rpc.receipt(signed.hash).await.expect("asked").is_none() {
            let () = rpc.call("anvil_mine", json!(["0x1"])).await.expect("mine");
        }
        let receipt = rpc
            .receipt_within(signed.hash, Duration::from_secs(10))
            .await
            .expect("asked")
            .expect("mined");
        assert_ne!(receipt.block_hash, sent.2, "in another block now");
        let proof = proof_of(
            2,
            &files,
            &salts,
            &tree,
            (signed.hash, receipt.block_number.to(), receipt.block_hash),
            None,
            key.address(),
        );
        verify_proof(&rpc, &proof, None)
            .await
            .expect("anchored again");
    });
}

#[test]
fn a_proof_that_does_not_hold_is_refused_for_its_precise_reason() {
    let anvil = Anvil::started();
    within(60, async {
        let rpc = rpc(&anvil);
        let key = key();
        let (files, salts, tree) = batch(8);
        let tx = prepare(&rpc, &key, CHAIN_ID, None, tree.root())
            .await
            .expect("prepare");
        let sent = send(&rpc, &key, &tx).await;
        let good = proof_of(5, &files, &salts, &tree, sent, None, key.address());
        verify_proof(&rpc, &good, Some(files[5]))
            .await
            .expect("good");

        let other_file = sha256(b"another file");
        assert_eq!(
            refusal(verify_proof(&rpc, &good, Some(other_file)).await).code(),
            "file_hash_mismatch"
        );
        let mut p = good.clone();
        p.salt = B256::ZERO;
        assert_eq!(
            refusal(verify_proof(&rpc, &p, None).await).code(),
            "merkle_path_mismatch"
        );
        let mut p = good.clone();
        p.on_chain.chain_id = 1;
        assert_eq!(
            refusal(verify_proof(&rpc, &p, None).await),
            Refusal::ChainIdMismatch {
                claimed: 1,
                node: CHAIN_ID
            }
        );
        let mut p = good.clone();
        p.on_chain.tx_hash = B256::repeat_byte(0x42);
        assert_eq!(
            refusal(verify_proof(&rpc, &p, None).await),
            Refusal::UnknownTransaction(p.on_chain.tx_hash)
        );
        let mut p = good.clone();
        p.on_chain.sender = AnchorKey::from_hex(DEV_KEY_2).expect("key").address();
        assert_eq!(
            refusal(verify_proof(&rpc, &p, None).await).code(),
            "sender_mismatch"
        );
        let mut p = good.clone();
        p.on_chain.block_number += 1;
        assert_eq!(
            refusal(verify_proof(&rpc, &p, None).await).code(),
            "block_mismatch"
        );
        let mut p = good.clone();
        p.format = "something/2".into();
        assert_eq!(
            refusal(verify_proof(&rpc, &p, None).await).code(),
            "proof_format_unknown"
        );
    });
}

#[test]
fn a_typed_in_receipt_is_checked_on_chain_and_refused_for_each_wrong_reason() {
    let anvil = Anvil::started();
    within(60, async {
        let rpc = rpc(&anvil);
        let key = key();
        let contract = deploy(&rpc, anchor_contract_creation()).await;
        // A contract whose every call reverts: PUSH1 0 PUSH1 0 REVERT.
        let reverting = deploy(
            &rpc,
            vec![
                0x60, 0x05, 0x80, 0x60, 0x0b, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3, 0x60, 0x00, 0x60,
                0x00, 0xfd,
            ],
        )
        .await;
        // Anchored elsewhere by hand: the file's own hash, through the contract.
        let file = sha256(b"a screenshot of the transfer");
        let tx = prepare(&rpc, &key, CHAIN_ID, Some(contract), file)
            .await
            .expect("prepare");
        let sent = send(&rpc, &key, &tx).await;
        let claim = ReceiptClaim {
            chain_id: CHAIN_ID,
            tx_hash: sent.0,
            block_number: sent.1,
            contract_address: contract,
            file_hash: file,
        };
        verify_receipt(&rpc, &claim)
            .await
            .expect("a true receipt holds");

        let rpc = &rpc;
        let code = |c: ReceiptClaim| async move { refusal(verify_receipt(rpc, &c).await).code() };
        let c = ReceiptClaim {
            tx_hash: B256::repeat_byte(9),
            ..claim
        };
        assert_eq!(code(c).await, "transaction_unknown");
        let c = ReceiptClaim {
            contract_address: Address::repeat_byte(0x77),
            ..claim
        };
        assert_eq!(code(c).await, "wrong_contract");
        let c = ReceiptClaim {
            file_hash: sha256(b"another file"),
            ..claim
        };
        assert_eq!(code(c).await, "hash_not_in_transaction");
        let c = ReceiptClaim {
            chain_id: 5,
            ..claim
        };
        assert_eq!(code(c).await, "chain_id_mismatch");
        let c = ReceiptClaim {
            block_number: sent.1 - 1,
            ..claim
        };
        assert_eq!(code(c).await, "block_mismatch");

        // A transaction that reverted proves nothing.
        let reverted = AnchorTx {
            contract: Some(reverting),
            fees: Fees {
                gas_limit: 100_000,
                ..tx.fees
            },
            nonce: tx.nonce + 1,
            ..tx
        };
        let signed = key.sign(&reverted);
        rpc.send_raw(&signed.raw).await.expect("broadcast");
        let receipt = rpc
            .receipt_within(signed.hash, Duration::from_secs(10))
            .await
            .expect("asked")
            .expect("mined");
        assert!(receipt.status.is_zero(), "it reverted");
        let c = ReceiptClaim {
            tx_hash: signed.hash,
            block_number: receipt.block_number.to(),
            contract_address: reverting,
            ..claim
        };
        assert_eq!(code(c).await, "transaction_reverted");
    });
}

#[test]
fn a_node_that_is_down_is_unreachable_not_a_refusal() {
    let anvil = Anvil::stopped();
    within(30, async {
        let rpc = rpc(&anvil);
        let error = rpc.chain_id().await.expect_err("nothing listens");
        assert!(error.is_unreachable(), "{error}");
        assert!(error.to_string().contains(&anvil.url()), "{error}");
        let head = rpc.block(BlockTag::Latest).await;
        assert!(head.is_err());
    });
}
