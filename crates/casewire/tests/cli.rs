//! The `casewire` command end to end: add a user, serve, log in over HTTP, stop on SIGTERM,
//! read the queue, import the guide's queue file.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

mod support;

use support::{add_user, login, queue_stats, serve, stop};

/// The binary without a relay.
fn casewire(data: &std::path::Path) -> Command {
    support::casewire(data, None)
}

#[test]
fn serve_answers_the_guides_stats_route_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let added = add_user(dir.path(), "root", "superadmin");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let user: Value = serde_json::from_slice(&added.stdout).expect("json");
    assert_eq!(user["role"], "superadmin");

    let (server, base) = serve(&mut casewire(dir.path()));

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let stats: Value = rt.block_on(async {
        let client = reqwest::Client::new();
        let token = login(&client, &base, "root").await;
        queue_stats(&client, &base, &token).await
    });
    assert_eq!(stats["success"], true);
    assert_eq!(
        stats["queue"]["kafkaAvailable"], false,
        "no relay without KAFKA_BROKERS"
    );

    // A graceful stop exits 0.
    stop(server);

    // The login's event is queued (no relay): the CLI reads the same database.
    let out = casewire(dir.path())
        .args(["queue", "stats"])
        .output()
        .expect("queue stats");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: Value = serde_json::from_slice(&out.stdout).expect("json");
    let types: Vec<&str> = stats["queue"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["eventType"].as_str())
        .collect();
    assert!(types.contains(&"user.login"), "{types:?}");
}

#[test]
fn the_guides_queue_file_is_imported_by_the_cli() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("old-queue.json");
    let entries = json!([{
        "event": {"eventId": "evt_1704672000000_a3b5c7", "eventType": "evidence.uploaded",
                  "timestamp": "2024-01-07T12:00:00.000Z", "data": {"evidenceId": "e1", "caseId": "CASE-2024-001"}},
        "addedAt": "2024-01-07T12:00:05.000Z", "retryCount": 2, "maxRetries": 10
    }]);
    std::fs::write(&file, entries.to_string()).expect("write");
    let out = casewire(dir.path())
        .arg("import")
        .arg(&file)
        .output()
        .expect("import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["imported"], 1);
    assert!(!file.exists(), "renamed after import");
    let out = casewire(dir.path())
        .args(["queue", "dead-letters", "list"])
        .output()
        .expect("list");
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).expect("json"),
        json!([])
    );
}

#[test]
fn bad_input_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = add_user(dir.path(), "someone", "root");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("must be user, analyst, admin or superadmin"),
        "{stderr}"
    );
    let out = casewire(dir.path())
        .env("RETRY_INTERVAL", "soon")
        .args(["queue", "stats"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RETRY_INTERVAL=\"soon\""));
}

#[test]
fn a_configuration_file_sets_what_the_environment_leaves_unset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("casewire.toml");
    std::fs::write(
        &file,
        "[settings]\nRETRY_INTERVAL = 2500\nMAX_RETRIES = 3\n\n[librdkafka]\n\"batch.num.messages\" = 500\n",
    )
    .expect("write");
    let stats = |command: &mut Command| -> Value {
        let out = command.args(["queue", "stats"]).output().expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    };
    // casewire.toml in the data directory is read by default.
    let mut command = casewire(dir.path());
    command.env_remove("RETRY_INTERVAL");
    assert_eq!(stats(&mut command)["queue"]["retryInterval"], 2500);
    // The environment wins over the file.
    assert_eq!(
        stats(casewire(dir.path()).env("RETRY_INTERVAL", "700"))["queue"]["retryInterval"],
        700
    );
}

#[test]
fn a_bad_configuration_file_stops_the_start_with_the_key_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            "[settings]\nKAFKA_BROKER = \"x:9092\"\n",
            "no setting \"KAFKA_BROKER\"",
        ),
        (
            "[settings]\nRETRY_INTERVAL = \"soon\"\n",
            "RETRY_INTERVAL=\"soon\"",
        ),
        ("[setings]\n", "is not valid"),
        ("[settings]\nMAX_RETRIES = [1, 2]\n", "is not valid"),
        (
            "[settings]\nKAFKA_BROKERS = \"127.0.0.1:1\"\n[librdkafka]\n\"no.such.property\" = 1\n",
            "no.such.property",
        ),
        (
            "[settings]\nKAFKA_BROKERS = \"127.0.0.1:1\"\n[librdkafka]\n\"enable.idempotence\" = false\n",
            "enable.idempotence",
        ),
    ];
    for (text, expected) in cases {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, text).expect("write");
        let out = casewire(dir.path())
            .env_remove("RETRY_INTERVAL")
            .arg("--config")
            .arg(&file)
            .arg("serve")
            .env("CASEWIRE_LISTEN", "127.0.0.1:0")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text} was accepted");
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
}

#[test]
fn sigterm_stops_serve_within_its_grace_while_slow_clients_hold_connections() {
    use std::io::Write;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("temp dir");
    let grace = Duration::from_millis(1_000);
    let (mut server, base) = serve(
        casewire(dir.path())
            .env("CASEWIRE_SHUTDOWN_GRACE_MS", grace.as_millis().to_string())
            // Long enough that no client here is cut off by it before the stop.
            .env("CASEWIRE_HTTP_TIMEOUT_MS", "60000"),
    );
    let address = base.trim_start_matches("http://").to_owned();
    // Ten clients in the middle of a request whose body trickles in, and ten that sent nothing.
    let mut trickling: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut stream = TcpStream::connect(&address).expect("connect");
            stream
                .write_all(b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
                .expect("headers");
            stream
        })
        .collect();
    let _silent: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(&address).expect("connect"))
        .collect();
    let feeding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let feeder = {
        let feeding = feeding.clone();
        std::thread::spawn(move || {
            while feeding.load(std::sync::atomic::Ordering::Relaxed) {
                for stream in &mut trickling {
                    let _ = stream.write_all(b" ");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));

    let asked = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exited = loop {
        if let Some(status) = server.try_wait().expect("wait") {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(15),
            "serve still runs {:?} after SIGTERM with slow clients connected",
            asked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = asked.elapsed();
    feeding.store(false, std::sync::atomic::Ordering::Relaxed);
    feeder.join().expect("feeder");
    assert!(exited.success(), "a stop exits 0: {exited:?}");
    assert!(
        took >= grace,
        "requests in progress were given their grace ({took:?})"
    );
    assert!(
        took < grace + Duration::from_secs(5),
        "stopped {took:?} after SIGTERM"
    );
}

/// The binary started from a shell with `umask` set, as a service or a login shell might.
fn under_umask(umask: &str, data: &std::path::Path) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_casewire"))
        .env("CASEWIRE_DATA_DIR", data)
        .env("CASEWIRE_KEY_FILE", casewire_testkit::test_key_file())
        .env("RUST_LOG", "info,librdkafka=off")
        .env_remove("KAFKA_BROKERS");
    command
}

/// Every path under `dir` with its permission bits.
#[cfg(unix)]
fn modes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u32, bool)> {
    use std::os::unix::fs::PermissionsExt;
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("meta");
        found.push((
            path.clone(),
            meta.permissions().mode() & 0o777,
            meta.is_dir(),
        ));
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                pending.push(entry.expect("entry").path());
            }
        }
    }
    found
}

/// Adds the superadmin, serves, signs in, opens a case and uploads evidence, then stops.
fn use_it(command: impl Fn() -> Command) {
    use std::io::Write;
    let mut add = command();
    let mut child = add
        .args([
            "user",
            "add",
            "--username",
            "root",
            "--role",
            "superadmin",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{}\n", support::PASSWORD).as_bytes())
        .expect("password");
    assert!(child.wait().expect("user add").success());
    let (server, base) = serve(&mut command());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let uploaded = rt.block_on(async {
        let client = reqwest::Client::new();
        let token = login(&client, &base, "root").await;
        let form = reqwest::multipart::Form::new()
            .text("caseId", "CASE-2024-001")
            .text("wallet", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
            .text("reporter", "test@fraud.com")
            .part(
                "evidenceFile",
                reqwest::multipart::Part::bytes(b"ledger".to_vec())
                    .file_name("ledger.txt")
                    .mime_str("text/plain")
                    .expect("mime"),
            );
        let response = client
            .post(format!("{base}/api/evidence/upload"))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .expect("upload");
        (response.status(), response.text().await.unwrap_or_default())
    });
    // Stopped first, so a failure below leaves no server behind.
    stop(server);
    assert_eq!(uploaded.0, reqwest::StatusCode::CREATED, "{}", uploaded.1);
}

#[cfg(unix)]
#[test]
fn the_data_directory_is_its_owners_alone_whatever_the_umask() {
    for umask in ["000", "022"] {
        let root = tempfile::tempdir().expect("temp dir");
        let data = root.path().join("data");
        use_it(|| under_umask(umask, &data));
        let found = modes(&data);
        assert!(found.len() > 5, "umask {umask}: {found:?}");
        assert!(
            found
                .iter()
                .any(|(p, _, _)| p.to_string_lossy().contains("evidence/"))
        );
        for (path, mode, is_dir) in found {
            let wanted = if is_dir { 0o700 } else { 0o600 };
            assert_eq!(
                mode,
                wanted,
                "umask {umask}: {} is {mode:04o}",
                path.display()
            );
        }
    }
}

#[cfg(unix)]
#[test]
fn a_data_directory_others_can_read_is_tightened_at_start_and_the_log_says_what_changed() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    use_it(|| under_umask("022", &data));
    // As an older Casewire left it: readable by every account.
    for (path, _, is_dir) in modes(&data) {
        let mode = if is_dir { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("loosen");
    }
    let (server, _, log) = support::serve_logged(&mut under_umask("022", &data));
    stop(server);
    let said = log.join("\n");
    assert!(
        said.contains("readable or writable by other accounts"),
        "{said}"
    );
    assert!(said.contains("outbox.db: 0644 → 0600"), "{said}");
    for (path, mode, is_dir) in modes(&data) {
        let wanted = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode, wanted, "{} is {mode:04o}", path.display());
    }
}

#[test]
fn verify_case_passes_an_intact_timeline_and_names_a_row_deleted_in_the_database_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path();
    let settings = casewire_core::Settings::load(
        casewire_testkit::test_env(&[("CASEWIRE_ENCRYPTION", "off")]),
        None,
        data,
    )
    .expect("settings");
    let app = casewire_core::App::open(
        data,
        settings,
        std::sync::Arc::new(casewire_core::JsonFileStore::in_dir(data)),
    )
    .expect("app");
    let who = casewire_core::User {
        id: 1,
        username: "analyst@fraud.com".into(),
        role: casewire_core::Role::Analyst,
    };
    let from = casewire_core::RequestInfo::default();
    let case = app
        .cases
        .create("Drained wallet", "", &who, &from)
        .expect("case");
    for description in ["one victim", "second victim"] {
        app.cases
            .update(&case.case_id, None, Some(description), &who, &from)
            .expect("updated");
    }
    app.cases
        .close(&case.case_id, "funds frozen", &who, &from)
        .expect("closed");
    drop(app);
    let verify = || {
        casewire(data)
            .env("CASEWIRE_ENCRYPTION", "off")
            .args(["verify-case", &case.case_id])
            .output()
            .expect("run")
    };

    let intact = verify();
    assert!(
        intact.status.success(),
        "{}",
        String::from_utf8_lossy(&intact.stderr)
    );
    let report: Value = serde_json::from_slice(&intact.stdout).expect("json");
    assert_eq!(report["intact"], true);
    assert!(String::from_utf8_lossy(&intact.stderr).contains("the timeline is intact"));

    let db = rusqlite::Connection::open(data.join("outbox.db")).expect("open");
    let second: i64 = db
        .query_row(
            "SELECT id FROM case_events WHERE case_id = ?1 ORDER BY id LIMIT 1 OFFSET 1",
            [&case.case_id],
            |r| r.get(0),
        )
        .expect("row");
    db.execute("DELETE FROM case_events WHERE id = ?1", [second])
        .expect("delete");
    drop(db);

    let tampered = verify();
    assert_eq!(tampered.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&tampered.stderr);
    assert!(
        stderr.contains("event 2 of the chain is missing from the timeline: it was deleted"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&tampered.stdout).expect("json");
    assert_eq!(report["intact"], false);
    assert_eq!(report["problems"][0]["kind"], "deleted");
}

#[test]
fn verify_case_compares_with_the_head_anchored_on_chain_and_asks_the_chain_about_it() {
    use casewire_testkit::anvil::{Anvil, CHAIN_ID, dev_key_file};

    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let anvil = Anvil::started();
    let key_file = dev_key_file(dir.path());
    let chain_env = [
        ("CASEWIRE_ENCRYPTION", "off".to_owned()),
        ("CASEWIRE_CHAIN_RPC_URL", anvil.url()),
        ("CASEWIRE_CHAIN_ID", CHAIN_ID.to_string()),
        ("CASEWIRE_ANCHOR_CONFIRMATIONS", "1".to_owned()),
        ("CASEWIRE_ANCHOR_POLL_MS", "20".to_owned()),
        ("CASEWIRE_ANCHOR_KEY_FILE", key_file.display().to_string()),
    ];
    let env: Vec<(&str, &str)> = chain_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let settings = casewire_core::Settings::load(casewire_testkit::test_env(&env), None, &data)
        .expect("settings");
    let app = std::sync::Arc::new(
        casewire_core::App::open(
            &data,
            settings,
            std::sync::Arc::new(casewire_core::JsonFileStore::in_dir(&data)),
        )
        .expect("app"),
    );
    let who = casewire_core::User {
        id: 1,
        username: "analyst@fraud.com".into(),
        role: casewire_core::Role::Analyst,
    };
    let from = casewire_core::RequestInfo::default();
    let evidence = app
        .evidence
        .upload(
            casewire_core::NewEvidence {
                case_id: "CASE-2024-001".into(),
                wallet: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into(),
                reporter: "test@fraud.com".into(),
                risk_level: None,
                filename: "statement.pdf".into(),
                content_type: "application/pdf".into(),
            },
            &b"a bank statement"[..],
            &who,
            &from,
        )
        .expect("upload");
    app.anchoring
        .request(&evidence.evidence_id, &who, &from)
        .expect("request");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (_, worker) = app
        .anchoring_worker()
        .expect("worker")
        .expect("a chain is set up");
    let running = runtime.spawn(worker);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while app
        .anchoring
        .status(&evidence.evidence_id)
        .expect("status")
        .is_none_or(|s| s.state != casewire_core::AnchorState::Anchored)
    {
        assert!(std::time::Instant::now() < deadline, "anchored in 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    running.abort();
    let anchored = app
        .cases
        .check_timeline("CASE-2024-001")
        .expect("check")
        .anchored_head
        .expect("its head anchored with the file");
    runtime.block_on(app.shutdown());
    drop(app);
    drop(runtime);
    let verify = || {
        let mut command = casewire(&data);
        command.envs(chain_env.iter().map(|(k, v)| (*k, v.as_str())));
        command
            .args(["verify-case", "CASE-2024-001"])
            .output()
            .expect("run")
    };

    let intact = verify();
    let stderr = String::from_utf8_lossy(&intact.stderr);
    assert!(intact.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "compared with its head anchored on chain at event {}",
            anchored.sequence
        )) && stderr.contains("the chain carries it"),
        "{stderr}"
    );

    // The head's proof, as it went downstream, holds for `verify-proof` with nothing else.
    let db = rusqlite::Connection::open(data.join("outbox.db")).expect("open");
    let proof: String = db
        .query_row(
            "SELECT proof FROM case_head_anchors WHERE case_id = 'CASE-2024-001'",
            [],
            |r| r.get(0),
        )
        .expect("the head's proof");
    let proof_file = dir.path().join("case-head.json");
    std::fs::write(&proof_file, proof).expect("write the proof");
    let checked = casewire(dir.path())
        .args(["verify-proof"])
        .arg(&proof_file)
        .args(["--rpc", &anvil.url()])
        .output()
        .expect("run");
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "{said}");
    let line: Value = serde_json::from_slice(&checked.stdout).expect("json");
    assert_eq!(line["holds"], true);
    assert_eq!(line["caseId"], "CASE-2024-001");
    assert_eq!(line["sequence"], anchored.sequence);
    assert!(
        said.contains("the timeline of CASE-2024-001 up to event"),
        "{said}"
    );

    // Everything from the upload on deleted, and the head pointed at the case's first event.
    db.execute_batch(
        "DELETE FROM case_events WHERE case_id = 'CASE-2024-001' AND chain_sequence >= 2;
         UPDATE cases SET chain_length = 1, chain_head = (SELECT chain_hash FROM case_events
             WHERE case_id = 'CASE-2024-001' AND chain_sequence = 1)
          WHERE case_id = 'CASE-2024-001';",
    )
    .expect("tamper");
    drop(db);
    let tampered = verify();
    assert_eq!(tampered.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&tampered.stderr);
    assert!(
        stderr.contains(&format!(
            "is event {}, and the timeline and its recorded head end at event 1: events 2 to {} were deleted and the head rewritten",
            anchored.sequence, anchored.sequence
        )),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&tampered.stdout).expect("json");
    assert_eq!(report["anchoredHead"]["onChain"]["state"], "verified");
}

/// Anchors `files` in one transaction to the dev key's own address on `anvil` and writes each
/// file and its proof into `dir` as `file-<i>` and `proof-<i>.json`.
fn anchor_on(anvil: &casewire_testkit::anvil::Anvil, dir: &std::path::Path, files: usize) {
    use casewire_chain::merkle::{Tree, leaf};
    use casewire_chain::proof::{OnChain, Proof, sha256};
    use casewire_chain::rpc::{Endpoint, Rpc};
    use casewire_chain::tx::AnchorKey;
    use casewire_testkit::anvil::{CHAIN_ID, DEV_KEY};

    let contents: Vec<Vec<u8>> = (0..files)
        .map(|i| format!("evidence file {i}").into_bytes())
        .collect();
    let hashes: Vec<_> = contents.iter().map(|c| sha256(c)).collect();
    let salts: Vec<_> = (0..files)
        .map(|_| casewire_chain::B256::from(rand::random::<[u8; 32]>()))
        .collect();
    let tree =
        Tree::new(hashes.iter().zip(&salts).map(|(h, s)| leaf(s, h)).collect()).expect("a batch");
    let key = AnchorKey::from_hex(DEV_KEY).expect("dev key");
    let rpc = Rpc::new(Endpoint::parse(&anvil.url()).expect("url"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let receipt = rt.block_on(async {
        let tx = casewire_chain::prepare(&rpc, &key, CHAIN_ID, None, tree.root())
            .await
            .expect("prepare");
        let signed = key.sign(&tx);
        rpc.send_raw(&signed.raw).await.expect("broadcast");
        rpc.receipt_within(signed.hash, Duration::from_secs(10))
            .await
            .expect("receipt")
            .expect("mined")
    });
    for i in 0..files {
        let proof = Proof::new(
            format!("evidence-{i}"),
            hashes[i],
            salts[i],
            tree.path(i).expect("in the batch"),
            OnChain::from_receipt(tree.root(), CHAIN_ID, &receipt, None, key.address()),
        );
        std::fs::write(dir.join(format!("file-{i}")), &contents[i]).expect("file");
        std::fs::write(
            dir.join(format!("proof-{i}.json")),
            serde_json::to_vec_pretty(&proof).expect("json"),
        )
        .expect("proof");
    }
}

fn verify_proof(
    dir: &std::path::Path,
    proofs: &[usize],
    url: &str,
    args: &[&str],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_casewire"))
        .arg("verify-proof")
        .args(proofs.iter().map(|i| dir.join(format!("proof-{i}.json"))))
        .args(["--rpc", url])
        .args(args)
        // No data directory, no key: the proofs and an endpoint are all it needs.
        .env_remove("CASEWIRE_DATA_DIR")
        .current_dir(dir)
        .output()
        .expect("casewire verify-proof")
}

/// The JSON lines `casewire verify-proof` printed.
fn lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

#[test]
fn verify_proof_checks_each_of_a_1000_file_batch_with_nothing_but_an_endpoint() {
    let anvil = casewire_testkit::anvil::Anvil::started();
    let dir = tempfile::tempdir().expect("temp dir");
    anchor_on(&anvil, dir.path(), 1000);
    let all: Vec<usize> = (0..1000).collect();
    let files: Vec<String> = all
        .iter()
        .flat_map(|i| ["--evidence".to_owned(), format!("file-{i}")])
        .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let out = verify_proof(dir.path(), &all, &anvil.url(), &files);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = lines(&out);
    assert_eq!(found.len(), 1000);
    for (i, line) in found.iter().enumerate() {
        assert_eq!(line["holds"], true, "proof {i}: {line}");
        assert_eq!(line["evidenceId"], format!("evidence-{i}"));
        assert_eq!(line["fileChecked"], true);
        assert_eq!(line["confirmations"], 1);
        assert_eq!(
            line["sender"], found[0]["sender"],
            "one sender for the batch"
        );
    }
    assert!(
        !dir.path().join("casewire-data").exists(),
        "verify-proof creates no data directory"
    );
}

#[test]
fn verify_proof_refutes_another_file_and_too_few_confirmations_and_cannot_check_without_a_node() {
    let mut anvil = casewire_testkit::anvil::Anvil::started();
    let dir = tempfile::tempdir().expect("temp dir");
    anchor_on(&anvil, dir.path(), 3);

    // Proof 0 with file 0 holds; proof 1 with file 2 does not: one refuted, status 1.
    let out = verify_proof(
        dir.path(),
        &[0, 1],
        &anvil.url(),
        &["--evidence", "file-0", "--evidence", "file-2"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = lines(&out);
    assert_eq!(found[0]["holds"], true);
    assert_eq!(found[1]["holds"], false);
    assert_eq!(found[1]["code"], "file_hash_mismatch");
    assert!(String::from_utf8_lossy(&out.stderr).contains("the proof does not hold"));

    let out = verify_proof(dir.path(), &[1], &anvil.url(), &["--confirmations", "6"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines(&out)[0]["code"], "not_enough_confirmations");

    let out = verify_proof(dir.path(), &[0, 1], &anvil.url(), &["--evidence", "file-0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one --evidence per proof"));
    assert!(out.stdout.is_empty(), "nothing checked");

    let url = anvil.url();
    anvil.kill();
    let out = verify_proof(dir.path(), &[1], &url, &[]);
    assert_eq!(out.status.code(), Some(2), "not checked is not refuted");
    assert_eq!(lines(&out)[0]["code"], "not_checked");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("not checked") && said.contains("cannot be reached"),
        "{said}"
    );

    let out = verify_proof(dir.path(), &[1], "ftp://127.0.0.1:1/k3y", &[]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("only http and https") && !said.contains("k3y"),
        "{said}"
    );

    // An API key in the endpoint's path is not repeated in what is printed.
    let out = verify_proof(dir.path(), &[1], &format!("{url}/v3/k3y"), &[]);
    assert_eq!(out.status.code(), Some(2));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("k3y"), "{all}");

    // A proof that cannot be read is not checked, and the others still are.
    std::fs::write(dir.path().join("proof-9.json"), "not a proof").expect("write");
    let out = verify_proof(dir.path(), &[9, 1], &url, &[]);
    assert_eq!(out.status.code(), Some(2));
    let found = lines(&out);
    assert_eq!(found.len(), 2, "both reported");
    assert_eq!(found[0]["code"], "unreadable");
    assert_eq!(found[1]["code"], "not_checked");
}
