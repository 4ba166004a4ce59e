//! The pipeline end to end: queue a few guide-shaped events durably, and deliver them to Kafka
//! with the relay; with no broker reachable they stay queued, and a later run delivers them.
//!
//! `KAFKA_BROKERS=host:port cargo run -p casewire-relay --example pipeline -- [DATA_DIR]`
//! Honours the guide's `KAFKA_*` settings (see `RelayConfig::from_settings`), `RETRY_INTERVAL`
//! and `MAX_RETRIES`.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use casewire_events::{Event, EventType, Metadata};
use casewire_outbox::{Outbox, OutboxConfig, Page, RetryPolicy};
use casewire_relay::{Relay, RelayConfig};
use serde_json::json;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,librdkafka=warn".into()),
        )
        .init();
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "casewire-data".into()),
    );
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let number = |name: &str, default: u64| -> anyhow::Result<u64> {
        std::env::var(name).map_or(Ok(default), |v| {
            v.parse()
                .with_context(|| format!("{name}={v:?} is not a number"))
        })
    };
    let retry = RetryPolicy::from_interval(
        Duration::from_millis(number("RETRY_INTERVAL", 10_000)?),
        u32::try_from(number("MAX_RETRIES", 10)?).context("MAX_RETRIES is too large")?,
    );
    let relay_config = RelayConfig::from_settings(|k| std::env::var(k).ok(), Default::default())?;
    let outbox = Arc::new(Outbox::open(OutboxConfig {
        retry,
        legacy_queue_file: Some(dir.join("pending_events.json")),
        ..OutboxConfig::file(dir.join("outbox.db"))
    })?);
    let relay = Relay::start(outbox.clone(), relay_config)?;

    let mut rng = rand::rng();
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
                "storageHash": "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3"
            }),
        ),
        (
            EventType::CaseEscalated,
            json!({"caseId": "CASE-2024-001", "authority": "national cybercrime unit"}),
        ),
    ];
    for (event_type, data) in events {
        let event = Event::new(
            event_type,
            data.as_object().cloned().unwrap_or_default(),
            Metadata {
                source: Some("casewire-pipeline-demo".into()),
                user_id: Some("investigator@fraud.com".into()),
                ..Metadata::default()
            },
            chrono::Utc::now(),
            &mut rng,
        );
        outbox.enqueue(&event).await?;
        println!("committed {} {}", event.event_type, event.event_id);
    }

    // Give the relay a few seconds to deliver, then report what is left.
    let deadline = Instant::now() + Duration::from_secs(5);
    while outbox.stats(Page::first(0))?.queue_size > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    relay.shutdown().await;
    let stats = outbox.stats(Page::first(5))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({"success": true, "queue": stats}))?
    );
    if stats.queue_size > 0 {
        println!(
            "{} events wait in {} for a broker; run again once one is reachable.",
            stats.queue_size,
            dir.join("outbox.db").display()
        );
    }
    Ok(())
}
