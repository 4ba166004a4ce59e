//! Helper for the crash tests: writes a record and its event in one transaction, in a loop from
//! several threads, and prints each event id only after its commit returned. The test kills this
//! process with SIGKILL at random moments and checks that every printed id survived.
//!
//! Usage: `crash-writer <outbox.db> [--count N]`
//!
//! Prints `durable <eventId>` after each successful commit and `failed <eventId> <error>` after
//! each failed one (a failed commit is reported, not fatal). With `--count N` each writer thread
//! stops after N attempts and the process exits 0.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use casewire_outbox::{Error, Outbox, OutboxConfig};

const WRITERS: usize = 4;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .context("usage: crash-writer <outbox.db> [--count N]")?
        .clone();
    let count: u64 = match args.iter().position(|a| a == "--count") {
        Some(i) => args.get(i + 1).context("--count N")?.parse()?,
        None => u64::MAX,
    };
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
                for n in 0..count {
                    let case = format!("CASE-{w}-{}", n % 7);
                    let event = casewire_testkit::case_event(&case, n as usize, "crash-writer");
                    let id = event.event_id.to_string();
                    let result = outbox
                        .write(move |tx| {
                            tx.execute(
                                "INSERT INTO records (event_id, case_id) VALUES (?1, ?2)",
                                [event.event_id.as_str(), case.as_str()],
                            )?;
                            tx.enqueue(&event)
                        })
                        .wait();
                    // Only now is the outcome known: a durable id is printed as such.
                    let mut out = std::io::stdout().lock();
                    match result {
                        Ok(()) => writeln!(out, "durable {id}")?,
                        Err(e) => writeln!(out, "failed {id} {e}")?,
                    }
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
