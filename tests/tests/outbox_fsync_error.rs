//! An fsync that fails (EIO, injected with strace) fails the commits of its batch with a clear
//! error: nothing is reported durable that is not, the writer carries on, and the file reopens
//! intact with every event reported durable.

use std::collections::HashSet;
use std::process::Command;

use casewire_outbox::{Outbox, OutboxConfig};
use rusqlite::Connection;

#[test]
fn an_fsync_error_fails_its_commits_cleanly_and_loses_nothing_reported_durable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("outbox.db");
    // The 40th and the 41st sync of the process fail with EIO: a commit in the middle of the run.
    let output = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null"])
        .args([
            "-e",
            "trace=fsync,fdatasync",
            "-e",
            "inject=fsync,fdatasync:error=EIO:when=40..41",
        ])
        .arg(env!("CARGO_BIN_EXE_crash-writer"))
        .arg(&db)
        .args(["--count", "50"])
        .output()
        .expect("run crash-writer under strace (scripts/bootstrap installs strace)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the writer survived the I/O error: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let durable: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("durable "))
        .collect();
    let failed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("failed "))
        .collect();
    assert!(
        !failed.is_empty(),
        "the injected EIO failed some commits:\n{stdout}"
    );
    assert!(
        failed
            .iter()
            .all(|l| l.contains("disk I/O error") || l.contains("I/O")),
        "failures say what went wrong: {failed:?}"
    );
    assert!(
        durable.len() + failed.len() == 4 * 50,
        "every attempt reported once"
    );
    assert!(
        durable.len() > failed.len(),
        "the writer carried on after the error"
    );

    let outbox = Outbox::open(OutboxConfig::file(&db)).expect("reopens");
    assert!(
        outbox.open_report().quarantined.is_none(),
        "the file is intact"
    );
    drop(outbox);
    let conn = Connection::open(&db).expect("open");
    let stored: HashSet<String> = conn
        .prepare("SELECT event_id FROM outbox_events")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let missing: Vec<&&str> = durable.iter().filter(|id| !stored.contains(**id)).collect();
    assert!(missing.is_empty(), "reported durable but lost: {missing:?}");
    let records: i64 = conn
        .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
        .expect("count");
    assert_eq!(
        records as usize,
        stored.len(),
        "records and events committed together"
    );
}
