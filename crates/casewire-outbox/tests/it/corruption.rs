//! Damaged database files are quarantined, never reset silently and never a crash loop.

use std::io::{Seek, SeekFrom, Write};

use casewire_events::{EventType, Priority};
use casewire_outbox::{Error, Outbox};

use crate::support::{Fixture, queued_ids};

fn fill(fx: &Fixture, n: usize) {
    let outbox = fx.open();
    for i in 0..n {
        outbox
            .enqueue(&fx.event(&format!("K{i}"), Priority::Medium))
            .wait()
            .expect("durable");
    }
}

fn assert_quarantined(fx: &Fixture) {
    let outbox = Outbox::open(fx.config()).expect("opens a fresh database");
    let aside = outbox
        .open_report()
        .quarantined
        .clone()
        .expect("quarantined");
    assert!(
        aside.exists(),
        "the damaged file is kept at {}",
        aside.display()
    );
    assert!(
        aside
            .file_name()
            .expect("name")
            .to_string_lossy()
            .starts_with("outbox.db.corrupt-20240108T")
    );
    let claim = outbox.claim(10).expect("claim");
    assert_eq!(
        claim.events.len(),
        1,
        "the fresh queue holds only the alert"
    );
    let alert = claim.events[0].event().expect("parses");
    assert_eq!(alert.event_type, EventType::SystemAlert);
    assert_eq!(alert.priority, Priority::Critical);
    assert_eq!(alert.data["quarantinedFile"], aside.display().to_string());
    drop(outbox);
    // The next start finds a healthy database: no crash loop, no second quarantine.
    let outbox = fx.open();
    assert!(outbox.open_report().quarantined.is_none());
    assert_eq!(queued_ids(&outbox).len(), 1);
}

#[test]
fn garbage_over_the_header_is_quarantined_with_an_alert() {
    let fx = Fixture::new();
    fill(&fx, 10);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(fx.db_path())
        .expect("open");
    file.write_all(&[0xA5; 4096]).expect("garbage");
    drop(file);
    assert_quarantined(&fx);
}

#[test]
fn garbage_inside_the_btree_is_quarantined_with_an_alert() {
    let fx = Fixture::new();
    fill(&fx, 400);
    let size = std::fs::metadata(fx.db_path()).expect("size").len();
    assert!(size > 8 * 4096, "enough pages to damage one in the middle");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(fx.db_path())
        .expect("open");
    file.seek(SeekFrom::Start(size / 2 / 4096 * 4096))
        .expect("seek");
    file.write_all(&[0x5A; 4096]).expect("garbage");
    drop(file);
    assert_quarantined(&fx);
}

#[test]
fn a_file_that_is_not_a_database_at_all_is_quarantined() {
    let fx = Fixture::new();
    std::fs::write(
        fx.db_path(),
        "these are my case notes, not a database\n".repeat(200),
    )
    .expect("write");
    assert_quarantined(&fx);
}

#[test]
fn an_unreachable_directory_is_an_error_not_a_reset() {
    let fx = Fixture::new();
    let config = casewire_outbox::OutboxConfig::file(fx.dir.path().join("missing/dir/outbox.db"));
    let err = Outbox::open(config).expect_err("cannot open");
    assert!(
        matches!(err, Error::Io { .. } | Error::Open { .. }),
        "{err}"
    );
}

/// Every file in the fixture's directory with its bytes.
fn snapshot(fx: &Fixture) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(fx.dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read");
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                bytes,
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn an_encrypted_file_opened_with_the_wrong_key_is_refused_and_left_as_it_is() {
    let fx = Fixture::new();
    let keyed = |byte: u8| casewire_outbox::OutboxConfig {
        key: Some(casewire_outbox::DatabaseKey::new([byte; 32])),
        ..fx.config()
    };
    let outbox = Outbox::open(keyed(1)).expect("encrypted");
    fx.queue(&outbox, 10, Priority::Medium);
    drop(outbox);
    let path = fx.dir.path().join("outbox.db");
    assert!(!casewire_outbox::is_plaintext(&path).expect("header"));
    let before = snapshot(&fx);

    let refused = Outbox::open(keyed(2)).expect_err("a wrong key");
    assert!(matches!(refused, Error::WrongKey { .. }), "{refused}");
    assert!(
        refused.to_string().contains("nothing was changed"),
        "{refused}"
    );
    assert_eq!(
        snapshot(&fx),
        before,
        "no quarantine, no new file, nothing rewritten"
    );

    let outbox = Outbox::open(keyed(1)).expect("the right key");
    assert_eq!(queued_ids(&outbox).len(), 10);
}

#[test]
fn an_unencrypted_file_is_encrypted_in_place_and_then_needs_its_key() {
    let fx = Fixture::new();
    fill(&fx, 10);
    let path = fx.dir.path().join("outbox.db");
    assert!(casewire_outbox::is_plaintext(&path).expect("header"));
    let key = casewire_outbox::DatabaseKey::new([7; 32]);
    casewire_outbox::encrypt_in_place(&path, &key).expect("encrypted");
    assert!(!casewire_outbox::is_plaintext(&path).expect("header"));
    // A second run finds nothing to do.
    casewire_outbox::encrypt_in_place(&path, &key).expect("again");
    let outbox = Outbox::open(casewire_outbox::OutboxConfig {
        key: Some(key),
        ..fx.config()
    })
    .expect("opens with its key");
    assert_eq!(queued_ids(&outbox).len(), 10);
    assert!(
        !fx.dir.path().join("outbox.db.encrypting").exists(),
        "no copy left beside it"
    );
}
