//! Outbox benchmark: `cargo bench -p casewire-outbox --bench outbox`.
//!
//! In one run it measures the machine's raw fsync rate (4 KiB append + fsync) as the reference,
//! then durable enqueue one event per transaction, group commit under 16 concurrent writers,
//! claim+ack throughput (and the idle sweep that deletes the delivered rows after), bytes on
//! disk per event, and open time and RSS with 1,000,000 queued
//! events. The last line printed is one JSON object with every figure.
//!
//! `OUTBOX_BENCH_EVENTS` overrides the 1,000,000 (for a quick run); `OUTBOX_BENCH_DIR` the
//! directory (default: the system temp dir, which must be on a real disk for fsync to mean
//! anything). `OUTBOX_BENCH_ENQUEUE_ONLY=1` stops after the enqueue phases, for profiling;
//! `OUTBOX_BENCH_DURABILITY=normal` commits without fsync, to see what the disk costs.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use casewire_outbox::{Error, Outbox, OutboxConfig, Page};
use casewire_testkit::{fresh_copy, guide_event};
use serde_json::json;

/// How long each throughput phase runs.
const PHASE: Duration = Duration::from_secs(3);
const WRITERS: usize = 16;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Child mode: open a database and report RSS, so each measurement has a fresh process.
    if let Some(pos) = args.iter().position(|a| a == "--rss-child") {
        rss_child(Path::new(&args[pos + 1]));
        return;
    }
    let big: u64 = std::env::var("OUTBOX_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let base = std::env::var_os("OUTBOX_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base).unwrap();
    println!("outbox benchmark in {}", dir.path().display());

    let fsync_per_s = raw_fsync_rate(&dir.path().join("fsync.bin"));
    println!("raw 4 KiB append+fsync: {fsync_per_s:.0}/s");

    let single = {
        let outbox = open(&dir.path().join("single.db"));
        let template = guide_event(0);
        rate(|| outbox.enqueue(&fresh_copy(&template)).wait().unwrap(), 1)
    };
    println!("durable enqueue, one event per transaction: {single:.0}/s");

    let group = group_phase(&dir.path().join("group.db"), WRITERS);
    let group64 = group_phase(&dir.path().join("group64.db"), 64);
    let group_tasks = {
        let outbox = Arc::new(open(&dir.path().join("group-tasks.db")));
        let commits = outbox.commit_count();
        let rate = group_task_rate(&outbox, WRITERS);
        let events = outbox.stats(Page::first(0)).unwrap().queue_size;
        println!(
            "durable enqueue, group commit, {WRITERS} async tasks on 2 runtime threads: {rate:.0}/s, {:.1} per commit",
            events as f64 / (outbox.commit_count() - commits) as f64
        );
        rate
    };
    if std::env::var_os("OUTBOX_BENCH_ENQUEUE_ONLY").is_some() {
        return;
    }

    let claim_ack = {
        let outbox = open(&dir.path().join("claim.db"));
        fill(&outbox, 300_000);
        let start = Instant::now();
        let (mut n, mut claiming) = (0, Duration::ZERO);
        loop {
            let t = Instant::now();
            let claim = outbox.claim(1_000).unwrap();
            claiming += t.elapsed();
            if claim.events.is_empty() {
                break;
            }
            n += claim.events.len();
            outbox
                .ack(claim.events.iter().map(|e| e.seq).collect())
                .wait()
                .unwrap();
        }
        let total = start.elapsed();
        println!(
            "claim+ack: {:.0}% of the time in claim, {:.0}% in ack",
            claiming.as_secs_f64() / total.as_secs_f64() * 100.0,
            (total - claiming).as_secs_f64() / total.as_secs_f64() * 100.0
        );
        // Acknowledged rows are deleted afterwards, while the writer is idle: timed apart.
        let start = Instant::now();
        while outbox.stats(Page::first(0)).unwrap().awaiting_deletion > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let sweep = n as f64 / start.elapsed().as_secs_f64();
        (n as f64 / total.as_secs_f64(), sweep)
    };
    let (claim_ack, sweep) = claim_ack;
    println!("claim+ack in windows of 1,000: {claim_ack:.0}/s");
    println!("delivered rows deleted afterwards (idle sweep): {sweep:.0}/s");

    let small_db = dir.path().join("small.db");
    fill(&open(&small_db), 10_000);
    let big_db = dir.path().join("big.db");
    {
        let outbox = open(&big_db);
        fill(&outbox, big);
        // Fold the WAL into the database so the size measured is the steady state.
        outbox
            .write(|tx| {
                tx.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                Ok::<_, Error>(())
            })
            .wait()
            .unwrap();
    }
    let bytes = std::fs::metadata(&big_db).unwrap().len();
    let bytes_per_event = bytes as f64 / big as f64;
    println!("{big} queued events: {bytes} bytes on disk, {bytes_per_event:.0} per event");

    let (open_small_ms, rss_small_mb) = measure_child(&small_db);
    let (open_big_ms, rss_big_mb) = measure_child(&big_db);
    println!("open with 10,000 queued: {open_small_ms:.0} ms, RSS {rss_small_mb:.1} MB");
    println!("open with {big} queued: {open_big_ms:.0} ms, RSS {rss_big_mb:.1} MB");

    let summary = json!({
        "fsync_per_s": fsync_per_s.round(),
        "enqueue_single_per_s": single.round(),
        "enqueue_group_per_s": group.round(),
        "enqueue_group64_per_s": group64.round(),
        "enqueue_group_tasks_per_s": group_tasks.round(),
        "claim_ack_per_s": claim_ack.round(),
        "sweep_per_s": sweep.round(),
        "bytes_per_event": bytes_per_event.round(),
        "open_1m_ms": open_big_ms.round(),
        "rss_1m_mb": (rss_big_mb * 10.0).round() / 10.0,
        "rss_10k_mb": (rss_small_mb * 10.0).round() / 10.0,
        "open_10k_ms": open_small_ms.round(),
        "queued_events": big,
        "single_vs_fsync": ((single / fsync_per_s) * 100.0).round() / 100.0,
        "group_vs_single": ((group / single) * 10.0).round() / 10.0,
    });
    println!("{summary}");
}

fn open(path: &Path) -> Outbox {
    Outbox::open(OutboxConfig {
        quota_bytes: u64::MAX,
        // `normal` takes the fsync out of every commit: what is left is the cost of the
        // hand-offs between callers and the writer, the ceiling of group commit on this machine.
        durability: match std::env::var("OUTBOX_BENCH_DURABILITY").as_deref() {
            Ok("normal") => casewire_outbox::Durability::Normal,
            _ => casewire_outbox::Durability::Full,
        },
        ..OutboxConfig::file(path)
    })
    .unwrap()
}

/// CPU time used by this process so far, user and system, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}

fn raw_fsync_rate(path: &Path) -> f64 {
    let mut file = std::fs::File::create(path).unwrap();
    let block = [0x42u8; 4096];
    rate(
        || {
            file.write_all(&block).unwrap();
            file.sync_data().unwrap();
        },
        1,
    )
}

/// Runs `op` (which does `per_op` units of work) for [`PHASE`] and returns units per second.
fn rate(mut op: impl FnMut(), per_op: u64) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < PHASE {
        op();
        n += per_op;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Durable enqueues per second from `writers` threads sharing one outbox; prints how many
/// events shared each commit and how much CPU the process used.
fn group_phase(db: &Path, writers: usize) -> f64 {
    let cpu_before = cpu_seconds();
    let wall = Instant::now();
    let outbox = Arc::new(open(db));
    let commits = outbox.commit_count();
    let rate = group_rate(&outbox, writers);
    let events = outbox.stats(Page::first(0)).unwrap().queue_size;
    let per_commit = events as f64 / (outbox.commit_count() - commits) as f64;
    let cores = (cpu_seconds() - cpu_before) / wall.elapsed().as_secs_f64();
    println!(
        "durable enqueue, group commit, {writers} writers: {rate:.0}/s, {per_commit:.1} per commit, using {cores:.2} cores"
    );
    rate
}

fn group_rate(outbox: &Arc<Outbox>, writers: usize) -> f64 {
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let outbox = outbox.clone();
            std::thread::spawn(move || {
                let template = guide_event(w);
                let mut n = 0u64;
                while start.elapsed() < PHASE {
                    outbox.enqueue(&fresh_copy(&template)).wait().unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

/// Durable enqueues per second from `writers` async tasks (as the HTTP handlers and the relay
/// write) on a two-thread runtime: a commit wakes tasks, not threads.
fn group_task_rate(outbox: &Arc<Outbox>, writers: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let start = Instant::now();
    let total: u64 = rt.block_on(async {
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let outbox = outbox.clone();
                tokio::spawn(async move {
                    let template = guide_event(w);
                    let mut n = 0u64;
                    while start.elapsed() < PHASE {
                        outbox.enqueue(&fresh_copy(&template)).await.unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        total
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn fill(outbox: &Outbox, n: u64) {
    casewire_testkit::fill_guide(outbox, n as usize);
}

fn measure_child(db: &Path) -> (f64, f64) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--rss-child")
        .arg(db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().unwrap());
    (fields.next().unwrap(), fields.next().unwrap())
}

/// Opens the database, claims a window and reads the stats, as a relay and an admin screen
/// would, then prints the open time in ms and the resident set size in MB.
fn rss_child(db: &Path) {
    let start = Instant::now();
    let outbox = open(db);
    let open_ms = start.elapsed().as_secs_f64() * 1e3;
    let claim = outbox.claim(1_000).unwrap();
    assert!(!claim.events.is_empty());
    outbox.stats(Page::first(100)).unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let rss_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    println!("{open_ms} {}", rss_kb / 1024.0);
}
