//! Import of the guide's `pending_events.json`.

use std::path::{Path, PathBuf};

use casewire_outbox::{Error, Outbox, OutboxConfig};
use serde_json::json;

use crate::support::{Fixture, queued_ids};

fn entry(id: &str, event_type: &str, retry: u32) -> serde_json::Value {
    json!({
        "event": {
            "eventId": id,
            "eventType": event_type,
            "timestamp": "2024-01-07T12:00:00.000Z",
            "data": {"evidenceId": "66d4a2b8c9e1234567890abc", "caseId": "CASE-2024-001",
                     "wallet": "0x742d35Cc6634C0532925a3b844Bc9e7595f0bEb"}
        },
        "addedAt": "2024-01-07T12:00:05.000Z",
        "retryCount": retry,
        "maxRetries": 10
    })
}

fn write_queue_file(fx: &Fixture, entries: serde_json::Value) -> PathBuf {
    let path = fx.dir.path().join("pending_events.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&entries).expect("json")).expect("write");
    path
}

fn config_with(fx: &Fixture, file: &Path) -> OutboxConfig {
    OutboxConfig {
        legacy_queue_file: Some(file.to_owned()),
        ..fx.config()
    }
}

#[test]
fn the_guides_queue_file_is_imported_once_at_first_start() {
    let fx = Fixture::new();
    let file = write_queue_file(
        &fx,
        json!([
            entry("evt_1704672000000_a3b5c7", "evidence.uploaded", 2),
            entry("evt_1704672000001_b3b5c7", "evidence.deleted", 10),
        ]),
    );
    let outbox = Outbox::open(config_with(&fx, &file)).expect("opens");
    let report = outbox.open_report().imported.clone().expect("imported");
    assert_eq!(
        (report.entries, report.imported, report.duplicates),
        (2, 2, 0)
    );
    assert!(!file.exists());
    assert!(report.renamed_to.ends_with("pending_events.json.imported"));
    assert_eq!(outbox.open_report().loaded, 2);
    let queued = outbox
        .list_queued(casewire_outbox::Page::first(10))
        .expect("list");
    assert_eq!(queued[0].event_id, "evt_1704672000000_a3b5c7");
    assert_eq!(queued[0].added_at, "2024-01-07T12:00:05.000Z");
    assert_eq!(
        queued[0].retry_count, 0,
        "the guide's tick counts are not carried over"
    );
    assert_eq!(queued[1].priority, casewire_events::Priority::Critical);
    drop(outbox);
    // Restarting finds no file and imports nothing more.
    let outbox = Outbox::open(config_with(&fx, &file)).expect("opens");
    assert!(outbox.open_report().imported.is_none());
    assert_eq!(queued_ids(&outbox).len(), 2);
}

#[test]
fn importing_the_same_file_twice_adds_nothing_the_second_time() {
    let fx = Fixture::new();
    let entries = json!([entry("evt_1704672000000_a3b5c7", "evidence.uploaded", 0)]);
    let file = write_queue_file(&fx, entries.clone());
    let outbox = fx.open();
    assert_eq!(outbox.import_legacy(&file).expect("import").imported, 1);
    // The event is delivered, then the same file reappears (restored from a backup, say).
    let seq = outbox.claim(1).expect("claim").events[0].seq;
    outbox.ack(vec![seq]).wait().expect("ack");
    let file = write_queue_file(&fx, entries);
    let report = outbox.import_legacy(&file).expect("import");
    assert_eq!((report.imported, report.duplicates), (0, 1));
    assert!(queued_ids(&outbox).is_empty());
}

#[test]
fn a_malformed_entry_is_named_and_the_file_left_untouched() {
    let fx = Fixture::new();
    let file = write_queue_file(
        &fx,
        json!([
            entry("evt_1704672000000_a3b5c7", "evidence.uploaded", 0),
            entry("evt_1704672000001_b3b5c7", "evidence.shredded", 0),
        ]),
    );
    let before = std::fs::read(&file).expect("read");
    let err = Outbox::open(config_with(&fx, &file)).expect_err("rejected");
    let message = err.to_string();
    assert!(matches!(err, Error::LegacyImport { .. }));
    assert!(
        message.contains("entry 1 (evt_1704672000001_b3b5c7)"),
        "{message}"
    );
    assert!(
        message.contains("unknown event type \"evidence.shredded\""),
        "{message}"
    );
    assert_eq!(std::fs::read(&file).expect("read"), before);
    // Nothing of the good entry was imported either.
    assert!(queued_ids(&fx.open()).is_empty());
}

#[test]
fn a_file_that_is_not_json_names_the_line() {
    let fx = Fixture::new();
    let file = fx.dir.path().join("pending_events.json");
    std::fs::write(&file, "[\n  {\"event\": \n  oops\n]").expect("write");
    let outbox = fx.open();
    let message = outbox
        .import_legacy(&file)
        .expect_err("rejected")
        .to_string();
    assert!(message.contains("line 3"), "{message}");
    assert!(file.exists());
}
