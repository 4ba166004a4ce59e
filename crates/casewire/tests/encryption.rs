//! Encryption at rest through the real binary: a data directory written unencrypted is
//! encrypted at the next start, and a SIGKILL at any point of that leaves it whole (the next
//! start finishes); a passphrase given on standard input guards the data key.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use casewire_core::{App, EvidenceFilter, JsonFileStore, ListPage, NewEvidence, Role, Settings};

mod support;

const EVENTS: usize = 10_000;
const FILES: usize = 20;
const MARKER: &[u8] = b"known plaintext of an evidence file";

fn settings(data: &Path, env: &[(&str, &str)]) -> Settings {
    Settings::load(casewire_testkit::test_env(env), None, data).expect("settings")
}

fn user() -> casewire_core::User {
    casewire_core::User {
        id: 1,
        username: "root".into(),
        role: Role::Superadmin,
    }
}

fn info() -> casewire_core::RequestInfo {
    casewire_core::RequestInfo::default()
}

/// An unencrypted data directory: EVENTS queued events and FILES evidence files of 256 KiB.
fn unencrypted(dir: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let app = App::open(
        dir,
        settings(dir, &[("CASEWIRE_ENCRYPTION", "off")]),
        Arc::new(JsonFileStore::in_dir(dir)),
    )
    .expect("app");
    casewire_testkit::fill_guide(&app.outbox, EVENTS);
    let mut hashes = BTreeSet::new();
    for n in 0..FILES {
        let mut content = MARKER.to_vec();
        content.extend(std::iter::repeat_n(n as u8, 256 * 1024));
        let evidence = app
            .evidence
            .upload(
                NewEvidence {
                    case_id: "CASE-2024-001".into(),
                    wallet: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into(),
                    reporter: "root".into(),
                    risk_level: None,
                    filename: format!("file-{n}.bin"),
                    content_type: "application/octet-stream".into(),
                },
                content.as_slice(),
                &user(),
                &info(),
            )
            .expect("upload");
        hashes.insert(evidence.storage_hash);
    }
    (queued_ids(&app), hashes)
}

fn queued_ids(app: &App) -> BTreeSet<String> {
    app.outbox
        .list_queued(casewire_outbox::Page::first(100_000))
        .expect("queued")
        .into_iter()
        .map(|e| e.event_id)
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// `casewire queue stats` on `data` with `key_file`: opens the app (encrypting what is not
/// encrypted yet) and prints the stats.
fn stats(data: &Path, key_file: &Path) -> Command {
    let mut command = support::casewire(data, None);
    command
        .env("CASEWIRE_KEY_FILE", key_file)
        .args(["queue", "stats"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Whether any file under `dir` holds `needle`.
fn holds(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).expect("read") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            if let Some(found) = holds(&path, needle) {
                return Some(found);
            }
        } else if std::fs::read(&path)
            .expect("read")
            .windows(needle.len())
            .any(|w| w == needle)
        {
            return Some(path);
        }
    }
    None
}

#[test]
fn a_sigkill_anywhere_in_the_encryption_of_older_data_loses_nothing_and_the_next_start_finishes() {
    let root = tempfile::tempdir().expect("temp dir");
    let template = root.path().join("template");
    std::fs::create_dir(&template).expect("template");
    let (events, hashes) = unencrypted(&template);
    // The events, the uploads' and the case their first upload opened.
    assert_eq!(events.len(), EVENTS + FILES + 1);

    // How long a whole encryption takes, to spread the kills over it.
    let measured = root.path().join("measured");
    copy_dir(&template, &measured);
    let started = Instant::now();
    let output = stats(&measured, &root.path().join("measured.key"))
        .output()
        .expect("run");
    let whole = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    eprintln!("a whole encryption took {whole:?}");
    // Twenty kills spread over the run, each at random within its twentieth.
    // The machine is shared, so a run can be quicker than the one measured:
    // a kill that lands after the end is tried again at a point scaled down.
    let mut scale = 1.0;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut landed = 0;
    let mut attempt = 0;
    while landed < 20 && attempt < 40 {
        let run = attempt;
        attempt += 1;
        let data = root.path().join(format!("run-{run}"));
        let key_file = root.path().join(format!("run-{run}.key"));
        copy_dir(&template, &data);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = whole.mul_f64(scale * (landed as f64 + (seed % 1000) as f64 / 1000.0) / 20.0);
        let mut child = stats(&data, &key_file).spawn().expect("spawn");
        std::thread::sleep(at);
        if child.try_wait().expect("wait").is_none() {
            landed += 1;
        } else {
            scale *= 0.85;
        }
        let _ = child.kill();
        let _ = child.wait();

        let restarted = Instant::now();
        let output = stats(&data, &key_file).output().expect("restart");
        eprintln!(
            "run {run}: killed after {at:?}; the next start took {:?}",
            restarted.elapsed()
        );
        assert!(
            output.status.success(),
            "run {run}, killed after {at:?}: the next start failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let app = App::open(
            &data,
            settings(
                &data,
                &[("CASEWIRE_KEY_FILE", &key_file.display().to_string())],
            ),
            Arc::new(JsonFileStore::in_dir(&data)),
        )
        .expect("opens");
        assert_eq!(queued_ids(&app), events, "run {run}: every event kept");
        let evidence = app
            .evidence
            .list(&EvidenceFilter::default(), &user(), &ListPage::first(1_000))
            .expect("list")
            .items;
        assert_eq!(evidence.len(), FILES);
        for item in &evidence {
            assert!(hashes.contains(&item.storage_hash));
            let verified = app
                .evidence
                .verify(&item.evidence_id, &user(), &info())
                .expect("verify");
            assert!(
                verified.verified,
                "run {run}: {} reads whole",
                item.filename
            );
        }
        drop(app);
        assert_eq!(holds(&data, MARKER), None, "run {run}: plaintext left");
        assert_eq!(holds(&data, b"SQLite format 3"), None, "run {run}");
    }
    assert_eq!(
        landed, 20,
        "only {landed} of {attempt} kills landed before the encryption ended (a whole one took {whole:?})"
    );
}

#[test]
fn a_passphrase_on_standard_input_guards_the_data_key() {
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    let run = |passphrase: Option<&str>, password: &str| {
        let mut command = support::casewire(&data, None);
        command
            .env("CASEWIRE_KEY_STORE", "passphrase")
            .args(["user", "add", "--username", "ivy", "--role", "analyst"])
            .arg("--password-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if passphrase.is_some() {
            command.arg("--passphrase-stdin");
        }
        let mut child = command.spawn().expect("spawn");
        let mut input = String::new();
        if let Some(passphrase) = passphrase {
            input.push_str(passphrase);
            input.push('\n');
        }
        input.push_str(password);
        input.push('\n');
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        child.wait_with_output().expect("run")
    };
    let made = run(
        Some("a long passphrase for the data"),
        "correct horse battery",
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let without = run(None, "correct horse battery");
    assert!(!without.status.success());
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("--passphrase-stdin"),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
    let wrong = run(Some("another passphrase"), "correct horse battery");
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("cannot be unwrapped"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
}
