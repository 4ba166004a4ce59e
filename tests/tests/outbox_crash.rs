//! Crash safety of the outbox: SIGKILL a writer at random moments, at least 50 times, and check
//! after each restart that every event the writer reported durable is there exactly once, with
//! its record, and that the file is intact.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use casewire_outbox::{Outbox, OutboxConfig};
use rand::Rng;
use rusqlite::Connection;

const KILLS: usize = 50;

#[test]
fn every_event_reported_durable_survives_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("outbox.db");
    let mut rng = rand::rng();
    let mut durable: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    for round in 0..KILLS {
        assert!(
            Instant::now() < deadline,
            "crash test ran past its time bound"
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
            .arg(&db)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn crash-writer");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        // Let it commit a random number of events, then kill it while it is mid-write.
        let target = rng.random_range(1..150);
        for _ in 0..target {
            match lines.next() {
                Some(Ok(line)) => durable.push(durable_id(&line, round)),
                other => panic!("round {round}: writer stopped early: {other:?}"),
            }
        }
        let spin = Duration::from_micros(rng.random_range(0..3_000));
        let start = Instant::now();
        while start.elapsed() < spin {
            std::hint::spin_loop();
        }
        child.kill().expect("SIGKILL");
        // Ids printed before the kill landed are durable too.
        durable.extend(
            lines
                .map_while(Result::ok)
                .map(|line| durable_id(&line, round)),
        );
        child.wait().expect("reaped");

        // Reopening runs quick_check and must find the file healthy.
        let outbox = Outbox::open(OutboxConfig::file(&db)).expect("reopens after SIGKILL");
        assert!(
            outbox.open_report().quarantined.is_none(),
            "round {round}: file was damaged"
        );
        drop(outbox);
        check(&db, &durable, round);
    }
    assert!(durable.len() >= KILLS);
}

fn durable_id(line: &str, round: usize) -> String {
    match line.strip_prefix("durable ") {
        Some(id) => id.to_owned(),
        None => panic!("round {round}: a commit failed without a fault injected: {line}"),
    }
}

fn check(db: &std::path::Path, durable: &[String], round: usize) {
    let conn = Connection::open(db).expect("open");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(integrity, "ok", "round {round}");
    let mut stmt = conn
        .prepare("SELECT event_id FROM outbox_events")
        .expect("prepare");
    let stored: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(
        unique.len(),
        stored.len(),
        "round {round}: an event is stored twice"
    );
    let missing: Vec<&String> = durable.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "round {round}: lost events reported durable: {missing:?}"
    );
    let records: i64 = conn
        .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
        .expect("count");
    assert_eq!(
        records as usize,
        stored.len(),
        "round {round}: records and events diverge"
    );
    let orphans: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM records r LEFT JOIN outbox_events e USING (event_id) WHERE e.event_id IS NULL",
            [],
            |r| r.get(0),
        )
        .expect("join");
    assert_eq!(orphans, 0, "round {round}: a record without its event");
}
