//! Helper for the crash tests: writes a record and its event in one transaction, in a loop from
//! several threads, and prints each event id only after its commit returned. The test kills this
//! process with SIGKILL at random moments and checks that every printed id survived.
//!
//! Usage: `crash-writer <outbox.db>`

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use casewire_events::{Event, EventType, Metadata};
use casewire_outbox::{Error, Outbox, OutboxConfig};
use serde_json::json;

const WRITERS: usize = 4;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: crash-writer <outbox.db>")?;
    let outbox = Arc::new(Outbox::open(OutboxConfig::file(path))?);
    outbox
        .write(|tx| {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS records (event_id TEXT PRIMARY KEY, case_id TEXT NOT NULL)",
            )?;
            Ok::<_, Error>(())
        })
        .wait()?;
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let outbox = outbox.clone();
            std::thread::spawn(move || -> anyhow::Result<()> {
                let mut rng = rand::rng();
                for n in 0u64.. {
                    let case = format!("CASE-{w}-{}", n % 7);
                    let event = Event::new(
                        EventType::CaseUpdated,
                        json!({"caseId": case, "n": n})
                            .as_object()
                            .cloned()
                            .unwrap_or_default(),
                        Metadata::default(),
                        chrono::Utc::now(),
                        &mut rng,
                    );
                    let id = event.event_id.to_string();
                    outbox
                        .write(move |tx| {
                            tx.execute(
                                "INSERT INTO records (event_id, case_id) VALUES (?1, ?2)",
                                [event.event_id.as_str(), case.as_str()],
                            )?;
                            tx.enqueue(&event)
                        })
                        .wait()?;
                    // Only now is the id durable: print it.
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{id}")?;
                    out.flush()?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
    }
    Ok(())
}
