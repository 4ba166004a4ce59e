//! `cargo run --release -p casewire-testkit --example fill_queue -- DATA_DIR N`: queues N
//! guide-shaped events in `DATA_DIR/outbox.db`, the outbox of an app started with
//! `CASEWIRE_DATA_DIR=DATA_DIR`, so that a benchmark can open the app on a backlog (the queue
//! screen with 1,000,000 events, BENCHMARKS.md). Prints the count and the time it took.
#![allow(clippy::print_stdout)] // A tool for benchmarks reports on stdout.

use std::path::PathBuf;
use std::time::Instant;

use casewire_outbox::{Outbox, OutboxConfig, Page};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), Some(n)) = (args.next(), args.next()) else {
        return Err("usage: fill_queue DATA_DIR N".into());
    };
    let dir = PathBuf::from(dir);
    let n: usize = n.to_string_lossy().parse()?;
    std::fs::create_dir_all(&dir)?;
    let start = Instant::now();
    let outbox = Outbox::open(OutboxConfig {
        quota_bytes: u64::MAX,
        ..OutboxConfig::file(dir.join("outbox.db"))
    })?;
    casewire_testkit::fill_guide(&outbox, n);
    let queued = outbox.stats(Page::first(0))?.queue_size;
    println!(
        "{queued} events queued in {} in {:.1} s",
        dir.join("outbox.db").display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
