//! A small tour of the outbox: queue a few guide-shaped events durably, print the guide's queue
//! statistics, and find them again after a restart (run it twice).
//!
//! `cargo run -p casewire-outbox --example demo -- [DATA_DIR]` (default `./casewire-data`).
//! Honours the guide's `RETRY_INTERVAL` (ms), `MAX_RETRIES` and `QUEUE_PERSIST`.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use casewire_events::{Event, EventType, Metadata, Priority};
use casewire_outbox::{Outbox, OutboxConfig, Page, RetryPolicy};
use serde_json::json;

fn env_number<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a number")),
        Err(_) => Ok(None),
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "casewire-data".into()),
    );
    let persist = match std::env::var("QUEUE_PERSIST").as_deref() {
        Ok("false") => false,
        Ok("true") | Err(_) => true,
        Ok(other) => anyhow::bail!("QUEUE_PERSIST={other:?} must be true or false"),
    };
    let interval = env_number::<u64>("RETRY_INTERVAL")?.unwrap_or(10_000);
    let max_retries = env_number::<u32>("MAX_RETRIES")?.unwrap_or(10);
    let mut config = if persist {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        OutboxConfig::file(dir.join("outbox.db"))
    } else {
        OutboxConfig::memory()
    };
    config.retry = RetryPolicy::from_interval(Duration::from_millis(interval), max_retries);
    config.legacy_queue_file = Some(dir.join("pending_events.json"));

    let outbox = Outbox::open(config)?;
    println!(
        "opened the outbox: {} events were already queued",
        outbox.open_report().loaded
    );

    let investigator = Metadata {
        source: Some("casewire-demo".into()),
        user_id: Some("investigator@fraud.com".into()),
        ip_address: Some("127.0.0.1".into()),
        ..Metadata::default()
    };
    let events = [
        (
            EventType::CaseCreated,
            json!({"caseId": "CASE-2024-001", "title": "Phishing wallet drain"}),
        ),
        (
            EventType::EvidenceUploaded,
            json!({
                "evidenceId": "66d4a2b8c9e1234567890abc",
                "caseId": "CASE-2024-001",
                "wallet": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
                "filename": "transaction.png",
                "fileSize": 245760,
                "storageHash": "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3"
            }),
        ),
        (
            EventType::CaseEscalated,
            json!({"caseId": "CASE-2024-001", "authority": "national cybercrime unit"}),
        ),
    ];
    let mut rng = rand::rng();
    for (event_type, data) in events {
        let data = data.as_object().cloned().unwrap_or_default();
        let event = Event::new(
            event_type,
            data,
            investigator.clone(),
            chrono::Utc::now(),
            &mut rng,
        );
        outbox.enqueue(&event).wait()?;
        println!(
            "queued {} {} ({})",
            event.event_type, event.event_id, event.priority
        );
    }
    // A login, raised to high priority by its publisher.
    let mut login = serde_json::Map::new();
    login.insert("userId".into(), "investigator@fraud.com".into());
    let login = Event::new(
        EventType::UserLogin,
        login,
        investigator,
        chrono::Utc::now(),
        &mut rng,
    )
    .with_priority(Priority::High);
    outbox.enqueue(&login).wait()?;

    let stats = outbox.stats(Page::first(5))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({"success": true, "queue": stats}))?
    );
    println!(
        "No relay runs in this demo, so the events stay queued in {}: run it again to see them \
         loaded after the restart.",
        dir.join("outbox.db").display()
    );
    Ok(())
}
