//! The `casewire` command end to end: add a user, serve, log in over HTTP, stop on SIGTERM,
//! read the queue, import the guide's queue file.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

fn casewire(data: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_casewire"));
    command
        .env("CASEWIRE_DATA_DIR", data)
        .env_remove("KAFKA_BROKERS")
        .env("RUST_LOG", "info");
    command
}

fn add_user(data: &std::path::Path, username: &str, role: &str) -> std::process::Output {
    let mut child = casewire(data)
        .args([
            "user",
            "add",
            "--username",
            username,
            "--role",
            role,
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("password");
    child.wait_with_output().expect("run")
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

    let mut server = casewire(dir.path())
        .arg("serve")
        .env("CASEWIRE_LISTEN", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(server.stderr.take().expect("stderr")).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let base = loop {
        assert!(
            Instant::now() < deadline,
            "serve never said where it listens"
        );
        let line = lines.next().expect("a log line").expect("utf-8");
        if let Some((_, url)) = line.split_once("casewire listening on ") {
            break url.trim().to_owned();
        }
    };
    // Keep reading the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let stats: Value = rt.block_on(async {
        let client = reqwest::Client::new();
        let login: Value = client
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"username": "root", "password": PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        let token = login["token"].as_str().expect("token").to_owned();
        client
            .get(format!("{base}/api/queue/stats"))
            .bearer_auth(token)
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json")
    });
    assert_eq!(stats["success"], true);
    assert_eq!(
        stats["queue"]["kafkaAvailable"], false,
        "no relay without KAFKA_BROKERS"
    );

    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = server.wait().expect("stops");
    assert!(exit.success(), "a graceful stop exits 0: {exit:?}");

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
