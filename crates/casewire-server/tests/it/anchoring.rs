//! Anchoring over the API against a real EVM node (anvil on loopback): asked for with no body
//! and done by the app's worker, its proof served and holding on chain; a typed-in receipt
//! recorded only when the chain holds it, and refused for the precise reason otherwise.

use std::time::Duration;

use casewire_chain::proof::{Proof, sha256, verify_proof};
use casewire_chain::rpc::{Endpoint, Rpc};
use casewire_chain::tx::{AnchorKey, anchor_contract_creation, anchor_selector};
use casewire_chain::{Address, B256, Bytes};
use casewire_events::{EventType, Priority};
use casewire_testkit::anvil::{Anvil, DEV_KEY, dev_key_file};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Server, WALLET, app_server, server, upload_form};

async fn chain_server(
    anvil: &Anvil,
    keys: &tempfile::TempDir,
) -> (Server, std::sync::Arc<casewire_core::App>) {
    let url = anvil.url();
    let key = dev_key_file(keys.path()).display().to_string();
    app_server(&[
        ("CASEWIRE_CHAIN_RPC_URL", &url),
        ("CASEWIRE_CHAIN_ID", "31337"),
        ("CASEWIRE_ANCHOR_CONFIRMATIONS", "1"),
        ("CASEWIRE_ANCHOR_POLL_MS", "20"),
        ("CASEWIRE_ANCHOR_KEY_FILE", &key),
    ])
    .await
}

async fn upload(s: &Server, token: &str, content: &[u8]) -> Value {
    let response = s
        .client
        .post(s.url("/api/evidence/upload"))
        .bearer_auth(token)
        .multipart(upload_form(content.to_vec(), WALLET))
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    body["evidence"].clone()
}

/// GETs `path` until `done` finds what it waits for in the answer (the worker runs on its own
/// task, and the API is how its progress is seen), at most 30 s.
async fn poll<T>(s: &Server, path: &str, token: &str, done: impl Fn(&Value) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = s.get(path, Some(token)).await;
        if let Some(found) = done(&body) {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} did not say so in 30 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn rpc(anvil: &Anvil) -> Rpc {
    Rpc::new(Endpoint::parse(&anvil.url()).expect("url"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_asked_for_over_the_api_is_anchored_by_the_worker_and_its_proof_holds_on_chain() {
    let anvil = Anvil::started();
    let keys = tempfile::tempdir().expect("dir");
    let (s, app) = chain_server(&anvil, &keys).await;
    let (address, work) = app
        .anchoring_worker()
        .expect("chain settings")
        .expect("a chain is configured");
    assert_eq!(
        address,
        AnchorKey::from_hex(DEV_KEY).expect("key").address()
    );
    tokio::spawn(work);
    let investigator = s.token("investigator").await;
    let analyst = s.token("analyst").await;
    let evidence = upload(&s, &investigator, b"ledger export").await;
    let id = evidence["evidenceId"].as_str().expect("id");

    let (status, body) = s
        .send(
            reqwest::Method::POST,
            &format!("/api/evidence/{id}/anchor"),
            Some(&analyst),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let path = format!("/api/evidence/{id}/anchor");
    let request = poll(&s, &path, &investigator, |body| {
        (body["request"]["state"] == "anchored").then(|| body["request"].clone())
    })
    .await;
    assert_eq!(request["chainId"], 31337);
    let (_, answer) = s.get(&path, Some(&investigator)).await;
    assert_eq!(answer["chainConfigured"], true);
    assert!(!answer.to_string().contains(DEV_KEY), "no key in the API");
    let admin = s.token("admin").await;
    let (status, settings) = s.get("/api/settings", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        settings.to_string().contains("\"CASEWIRE_CHAIN_RPC_URL\""),
        "{settings}"
    );
    let url = settings.to_string().contains(&anvil.url());
    assert!(!url, "the node's URL is a secret, never shown: {settings}");
    assert_eq!(request["confirmationsRequired"], 1);

    let response = s
        .client
        .get(s.url(&format!("/api/evidence/{id}/anchor/proof")))
        .bearer_auth(&investigator)
        .send()
        .await
        .expect("proof");
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        disposition.contains(&format!("anchor-proof-{id}.json")),
        "{disposition}"
    );
    let proof: Proof = response.json().await.expect("a proof document");
    assert_eq!(
        proof.on_chain.tx_hash.to_string(),
        request["txHash"].as_str().expect("tx")
    );
    verify_proof(&rpc(&anvil), &proof, Some(sha256(b"ledger export")))
        .await
        .expect("the served proof holds on chain");

    let anchored: Vec<_> = s
        .events()
        .into_iter()
        .filter(|e| e.event_type == EventType::EvidenceAnchored)
        .collect();
    assert_eq!(anchored.len(), 1);
    assert_eq!(anchored[0].priority, Priority::High);
    assert_eq!(anchored[0].metadata.user_id.as_deref(), Some("analyst"));
    assert_eq!(anchored[0].data["fileHash"], evidence["storageHash"]);
    assert_eq!(
        anchored[0].data["merkleRoot"],
        json!(proof.on_chain.root.to_string())
    );

    let (status, body) = s
        .send(
            reqwest::Method::POST,
            &format!("/api/evidence/{id}/anchor"),
            Some(&analyst),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "anchored already: {body}");
    app.shutdown().await;
}

/// Deploys the anchoring contract, then calls `anchor(hash)` on it from the dev account;
/// returns the contract, the transaction and its block.
async fn anchored_by_hand(anvil: &Anvil, hash: B256) -> (Address, B256, u64) {
    let rpc = rpc(anvil);
    let from = AnchorKey::from_hex(DEV_KEY).expect("key").address();
    let send = |tx: Value| {
        let rpc = rpc.clone();
        async move {
            let hash: B256 = rpc
                .call("eth_sendTransaction", json!([tx]))
                .await
                .expect("send");
            rpc.receipt_within(hash, Duration::from_secs(10))
                .await
                .expect("receipt")
                .expect("mined")
        }
    };
    let created = send(json!({
        "from": from, "input": Bytes::from(anchor_contract_creation()), "gas": "0x100000"
    }))
    .await;
    let contract = created.contract_address.expect("a contract");
    let input: Bytes = [&anchor_selector()[..], hash.as_slice()].concat().into();
    let call = send(json!({"from": from, "to": contract, "input": input})).await;
    (contract, call.transaction_hash, call.block_number.to())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_in_receipt_is_recorded_only_when_the_chain_holds_it_and_refused_for_the_precise_reason()
 {
    let anvil = Anvil::started();
    let keys = tempfile::tempdir().expect("dir");
    let (s, _app) = chain_server(&anvil, &keys).await;
    let investigator = s.token("investigator").await;
    let analyst = s.token("analyst").await;
    let evidence = upload(&s, &investigator, b"bank statement").await;
    let other = upload(&s, &investigator, b"another file").await;
    let id = evidence["evidenceId"].as_str().expect("id");
    let hash: B256 = evidence["storageHash"]
        .as_str()
        .expect("hash")
        .parse()
        .expect("hex");
    let (contract, tx, block) = anchored_by_hand(&anvil, hash).await;

    let refused = |target: &str, receipt: Value, reason: &'static str| {
        let s = &s;
        let analyst = &analyst;
        let path = format!("/api/evidence/{target}/anchor");
        async move {
            let before = s.events().len();
            let (status, body) = s.post(&path, Some(analyst), receipt).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reason}: {body}");
            assert_eq!(body["error"]["code"], "receipt_refused");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(reason), "{message} should say {reason:?}");
            assert_eq!(
                s.events().len(),
                before,
                "a refused receipt records nothing"
            );
        }
    };
    let receipt = |tx: B256, block: u64, contract: Address| json!({"txHash": tx, "blockNumber": block, "contractAddress": contract.to_checksum(None)});
    refused(
        id,
        receipt(B256::repeat_byte(0xab), block, contract),
        "knows no transaction",
    )
    .await;
    refused(
        id,
        receipt(tx, block, WALLET.parse().expect("address")),
        "not to the anchoring contract",
    )
    .await;
    refused(
        other["evidenceId"].as_str().expect("id"),
        receipt(tx, block, contract),
        "does not carry",
    )
    .await;
    refused(
        id,
        receipt(tx, block + 5, contract),
        "the anchor names block",
    )
    .await;

    let (status, body, events) = s
        .act(
            s.client
                .post(s.url(&format!("/api/evidence/{id}/anchor")))
                .bearer_auth(&analyst)
                .json(&receipt(tx, block, contract)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::EvidenceAnchored);
    assert_eq!(events[0].priority, Priority::High);
    assert_eq!(events[0].data["txHash"], json!(tx.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_in_receipt_with_no_chain_configured_or_the_node_down_is_refused_and_nothing_is_recorded()
 {
    let s = server().await;
    let investigator = s.token("investigator").await;
    let analyst = s.token("analyst").await;
    let evidence = upload(&s, &investigator, b"offline").await;
    let id = evidence["evidenceId"].as_str().expect("id");
    let receipt = json!({
        "txHash": B256::repeat_byte(1), "blockNumber": 1, "contractAddress": WALLET
    });
    let (status, body) = s
        .post(
            &format!("/api/evidence/{id}/anchor"),
            Some(&analyst),
            receipt.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "chain_not_configured");

    let down = Anvil::stopped();
    let keys = tempfile::tempdir().expect("dir");
    let (s, _app) = chain_server(&down, &keys).await;
    let investigator = s.token("investigator").await;
    let analyst = s.token("analyst").await;
    let evidence = upload(&s, &investigator, b"offline").await;
    let id = evidence["evidenceId"].as_str().expect("id");
    let before = s.events().len();
    let (status, body) = s
        .post(
            &format!("/api/evidence/{id}/anchor"),
            Some(&analyst),
            receipt,
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "chain_unreachable");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("try again"), "{message}");
    assert_eq!(s.events().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sees_the_address_to_fund_its_balance_and_what_waits_and_nobody_else_does() {
    let keys = tempfile::tempdir().expect("dir");
    let mut anvil = Anvil::stopped();
    let (s, app) = chain_server(&anvil, &keys).await;
    let (address, work) = app
        .anchoring_worker()
        .expect("chain settings")
        .expect("a chain is configured");
    let admin = s.token("admin").await;
    let investigator = s.token("investigator").await;
    let analyst = s.token("analyst").await;
    let (status, _) = s.get("/api/anchoring", Some(&investigator)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not an investigator's");

    // The node is down: the address is known, the balance says why it is not.
    let evidence = upload(&s, &investigator, b"kiosk receipt").await;
    let id = evidence["evidenceId"].as_str().expect("id").to_owned();
    let (status, _) = s
        .send(
            reqwest::Method::POST,
            &format!("/api/evidence/{id}/anchor"),
            Some(&analyst),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = s.get("/api/anchoring", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let view = &body["anchoring"];
    assert_eq!(view["configured"], true);
    assert_eq!(view["chainId"], 31337);
    assert_eq!(view["address"], json!(address.to_string()));
    assert_eq!(view["waiting"], 1);
    assert_eq!(view["balanceWei"], Value::Null);
    assert!(
        view["balanceError"]
            .as_str()
            .is_some_and(|e| e.contains("cannot be reached")),
        "{view}"
    );
    assert!(!body.to_string().contains(DEV_KEY), "no key in the API");

    // With the node up, the balance (anvil funds its dev accounts with 10,000 ETH) and the
    // batch anchored last, with its file and its case's head.
    anvil.start();
    tokio::spawn(work);
    let view = poll(&s, "/api/anchoring", &admin, |body| {
        body["anchoring"]["lastAnchored"]
            .is_object()
            .then(|| body["anchoring"].clone())
    })
    .await;
    assert_eq!(view["waiting"], 0);
    assert_eq!(view["inFlight"], Value::Null);
    let last = &view["lastAnchored"];
    assert_eq!(
        (last["files"].as_u64(), last["caseHeads"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(last["state"], "anchored");
    let wei: u128 = view["balanceWei"]
        .as_str()
        .expect("a balance")
        .parse()
        .expect("decimal wei");
    assert!(
        wei > 9_999 * 10u128.pow(18) && wei < 10_000 * 10u128.pow(18),
        "10,000 ETH less the gas paid: {wei}"
    );
}
