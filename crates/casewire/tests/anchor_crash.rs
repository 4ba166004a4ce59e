//! `casewire serve` SIGKILLed after it saved a signed anchoring transaction and before any node
//! received it: the next start sends the saved transaction, so the anchor is neither lost nor
//! signed twice for its nonce. The node is real (anvil); between it and the first server stands
//! a relay of JSON-RPC calls that never answers `eth_sendRawTransaction`, which holds the
//! server at exactly that point until it is killed.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use casewire_chain::B256;
use casewire_chain::proof::{Proof, sha256, verify_proof};
use casewire_chain::rpc::{Endpoint, Rpc};
use casewire_chain::tx::AnchorKey;
use casewire_testkit::anvil::{Anvil, DEV_KEY, dev_key_file};
use serde_json::Value;
use support::{add_user, casewire, login, serve};

const PATIENCE: Duration = Duration::from_secs(60);

/// Relays JSON-RPC calls to `node`, except broadcasts, which it keeps unanswered and reports.
async fn holding_relay(node: String) -> (String, Arc<tokio::sync::Notify>) {
    let held = Arc::new(tokio::sync::Notify::new());
    let client = reqwest::Client::new();
    let notify = held.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: String| {
            let (client, node, notify) = (client.clone(), node.clone(), notify.clone());
            async move {
                if body.contains("eth_sendRawTransaction") {
                    notify.notify_one();
                    std::future::pending::<()>().await;
                }
                let answer = client
                    .post(&node)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("the node answers")
                    .text()
                    .await
                    .expect("its answer");
                ([("content-type", "application/json")], answer)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, held)
}

fn chain_serve(
    data: &std::path::Path,
    rpc_url: &str,
    key: &std::path::Path,
) -> (std::process::Child, String) {
    serve(
        casewire(data, None)
            .env("CASEWIRE_CHAIN_RPC_URL", rpc_url)
            .env("CASEWIRE_CHAIN_ID", "31337")
            .env("CASEWIRE_ANCHOR_CONFIRMATIONS", "1")
            .env("CASEWIRE_ANCHOR_POLL_MS", "20")
            .env("CASEWIRE_ANCHOR_KEY_FILE", key),
    )
}

async fn anchor_request(client: &reqwest::Client, base: &str, token: &str, id: &str) -> Value {
    let body: Value = client
        .get(format!("{base}/api/evidence/{id}/anchor"))
        .bearer_auth(token)
        .send()
        .await
        .expect("anchor status")
        .json()
        .await
        .expect("json");
    body["request"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_between_signing_and_broadcasting_neither_loses_the_anchor_nor_signs_a_second_transaction()
 {
    let anvil = Anvil::started();
    let node = Rpc::new(Endpoint::parse(&anvil.url()).expect("url"));
    let sender = AnchorKey::from_hex(DEV_KEY).expect("key").address();
    let (relay, held) = holding_relay(anvil.url()).await;
    let dir = tempfile::tempdir().expect("dir");
    let keys = tempfile::tempdir().expect("dir");
    let key = dev_key_file(keys.path());
    assert!(add_user(dir.path(), "ana", "analyst").status.success());

    let (mut server, base) = chain_serve(dir.path(), &relay, &key);
    let client = reqwest::Client::new();
    let token = login(&client, &base, "ana").await;
    let content = b"seized laptop image, part 1".to_vec();
    let form = reqwest::multipart::Form::new()
        .text("caseId", "CASE-2026-001")
        .text("wallet", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
        .text("reporter", "ana")
        .part(
            "evidenceFile",
            reqwest::multipart::Part::bytes(content.clone()).file_name("image.bin"),
        );
    let uploaded: Value = client
        .post(format!("{base}/api/evidence/upload"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let id = uploaded["evidence"]["evidenceId"]
        .as_str()
        .expect("id")
        .to_owned();
    let asked = client
        .post(format!("{base}/api/evidence/{id}/anchor"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("ask");
    assert_eq!(asked.status(), reqwest::StatusCode::ACCEPTED);

    // The worker has saved its transaction and is sending it: kill the process there.
    tokio::time::timeout(PATIENCE, held.notified())
        .await
        .expect("the server broadcasts within a minute");
    let signed = anchor_request(&client, &base, &token, &id).await;
    assert_eq!(signed["state"], "signed", "{signed}");
    let tx: B256 = signed["txHash"]
        .as_str()
        .expect("saved")
        .parse()
        .expect("hash");
    server.kill().expect("SIGKILL");
    server.wait().expect("reaped");
    assert!(
        node.transaction(tx).await.expect("ask").is_none(),
        "no node has it"
    );
    assert_eq!(node.pending_nonce(sender).await.expect("nonce"), 0);

    // Started again, straight to the node: the saved transaction goes out, and only it.
    let (server, base) = chain_serve(dir.path(), &anvil.url(), &key);
    let token = login(&client, &base, "ana").await;
    let deadline = Instant::now() + PATIENCE;
    let done = loop {
        let request = anchor_request(&client, &base, &token, &id).await;
        if request["state"] == "anchored" {
            break request;
        }
        assert!(
            Instant::now() < deadline,
            "not anchored after the restart: {request}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        done["txHash"], signed["txHash"],
        "the saved transaction, not a new one"
    );
    assert_eq!(
        node.mined_nonce(sender).await.expect("nonce"),
        1,
        "one transaction in all"
    );
    let proof: Proof = client
        .get(format!("{base}/api/evidence/{id}/anchor/proof"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("proof")
        .json()
        .await
        .expect("a proof");
    verify_proof(&node, &proof, Some(sha256(&content)))
        .await
        .expect("the proof holds");
    support::stop(server);
}
