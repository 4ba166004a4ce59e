//! What every domain test starts from: a real outbox file in a temporary directory, migrated,
//! on a manual clock at the guide's example time.

use std::sync::Arc;

use casewire_core::{RequestInfo, Role, User};
use casewire_events::Event;
use casewire_outbox::{ManualClock, Outbox, OutboxConfig};
use chrono::DateTime;

pub(crate) struct Domain {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) outbox: Arc<Outbox>,
}

impl Domain {
    pub(crate) fn new() -> Domain {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::new(
            DateTime::from_timestamp_millis(1_704_672_000_000).expect("time"),
        ));
        let outbox = Arc::new(
            Outbox::open(OutboxConfig {
                clock: clock.clone(),
                ..OutboxConfig::file(dir.path().join("outbox.db"))
            })
            .expect("outbox"),
        );
        casewire_core::migrate(&outbox).expect("migrate");
        Domain { dir, clock, outbox }
    }

    /// Every event queued so far, in order (reading claims nothing).
    pub(crate) fn events(&self) -> Vec<Event> {
        casewire_testkit::queued_events(&self.dir.path().join("outbox.db"))
    }
}

pub(crate) fn user(username: &str, role: Role) -> User {
    User {
        id: 1,
        username: username.into(),
        role,
    }
}

/// A request from the guide's example address.
pub(crate) fn from(path: &str) -> RequestInfo {
    RequestInfo {
        ip_address: Some("192.168.1.100".into()),
        method: "POST".into(),
        path: path.into(),
        role_header_sent: false,
    }
}
