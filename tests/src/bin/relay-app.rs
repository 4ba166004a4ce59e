//! Helper for the relay end-to-end tests: an application process with an outbox and a relay,
//! that the tests kill with SIGKILL and start again.
//!
//! Usage: `relay-app <outbox.db> <brokers> [--enqueue N] [--exit-when-drained]`
//! - `--enqueue N` commits N events (prints `durable <eventId>` after each commit).
//! - `--exit-when-drained` exits once the queue is empty; otherwise runs until killed.

// Its standard output is its protocol with the tests.
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use casewire_outbox::{Outbox, OutboxConfig, Page, RetryPolicy};
use casewire_relay::{Relay, RelayConfig};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,librdkafka=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let db = args
        .get(1)
        .context("usage: relay-app <outbox.db> <brokers> [...]")?;
    let brokers = args
        .get(2)
        .context("usage: relay-app <outbox.db> <brokers> [...]")?;
    let enqueue: usize = match args.iter().position(|a| a == "--enqueue") {
        Some(i) => args.get(i + 1).context("--enqueue N")?.parse()?,
        None => 0,
    };
    let exit_when_drained = args.iter().any(|a| a == "--exit-when-drained");

    let outbox = Arc::new(Outbox::open(OutboxConfig {
        retry: RetryPolicy::from_interval(Duration::from_millis(50), 1_000),
        ..OutboxConfig::file(db)
    })?);
    let relay = Relay::start(
        outbox.clone(),
        RelayConfig {
            probe_interval: Duration::from_millis(50),
            linger: Duration::from_millis(2),
            message_timeout: Duration::from_secs(2),
            ..RelayConfig::new(brokers.as_str())
        },
    )?;
    for n in 0..enqueue {
        let event = casewire_testkit::case_event(&format!("CASE-{}", n % 9), n, "relay-app");
        outbox.enqueue(&event).await?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "durable {}", event.event_id)?;
        out.flush()?;
    }
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if exit_when_drained && outbox.stats(Page::first(0))?.queue_size == 0 {
            break;
        }
    }
    relay.shutdown().await;
    println!("drained");
    Ok(())
}
