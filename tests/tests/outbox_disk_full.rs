//! A full disk is a normal operating condition: writes fail with a clear error, nothing that
//! was reported durable is lost, nothing panics, and writing resumes once space is freed.
//!
//! Runs on a 3 MiB tmpfs mounted for the test (the tests run as root, as `scripts/bootstrap`
//! requires).

mod support;

use std::path::PathBuf;

use casewire_events::{Event, EventType, Metadata};
use casewire_outbox::{Error, Outbox, OutboxConfig, Page};
use serde_json::json;

fn event(n: usize) -> Event {
    let data = json!({"caseId": format!("CASE-{}", n % 5), "notes": "x".repeat(2_000)});
    Event::new(
        EventType::CaseUpdated,
        data.as_object().cloned().unwrap_or_default(),
        Metadata::default(),
        chrono::Utc::now(),
        &mut rand::rng(),
    )
}

#[test]
fn a_full_disk_refuses_writes_cleanly_and_recovers_when_space_returns() {
    let fs = support::Tmpfs::mount("3m");
    let ballast: PathBuf = fs.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 512 * 1024]).expect("ballast");
    let db = fs.path().join("outbox.db");
    let outbox = Outbox::open(OutboxConfig::file(&db)).expect("opens");
    let mut durable = Vec::new();
    let err = loop {
        let e = event(durable.len());
        match outbox.enqueue(&e).wait() {
            Ok(()) => durable.push(e.event_id.to_string()),
            Err(err) => break err,
        }
        assert!(durable.len() < 10_000, "the disk never filled");
    };
    assert!(
        matches!(err, Error::Commit(_) | Error::Sqlite(_)),
        "a full disk is a storage error: {err}"
    );
    assert!(
        err.to_string().contains("full"),
        "the error says the disk is full: {err}"
    );
    // Reads still work, and say what is queued.
    let stats = outbox.stats(Page::first(0)).expect("stats on a full disk");
    assert_eq!(stats.queue_size as usize, durable.len());

    // Free space: writing resumes without a restart.
    std::fs::remove_file(&ballast).expect("free space");
    let e = event(0);
    outbox
        .enqueue(&e)
        .wait()
        .expect("writes resume once space is free");
    durable.push(e.event_id.to_string());
    drop(outbox);

    let outbox = Outbox::open(OutboxConfig::file(&db)).expect("reopens");
    assert!(outbox.open_report().quarantined.is_none());
    let queued: Vec<String> = outbox
        .list_queued(Page::first(100_000))
        .expect("list")
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        queued, durable,
        "every event reported durable is there, in order"
    );
}
