//! Encryption at rest against none, in the same run: `cargo bench -p casewire-core --bench
//! encryption`.
//!
//! Each figure alternates the unencrypted and the encrypted case over `ENCRYPTION_BENCH_ROUNDS`
//! rounds (default 6), in the order ABBA with the disk flushed before each, so drift on a
//! shared machine and the cost of running second fall on both, and reports the median of the
//! rounds' ratios (encrypted / unencrypted):
//! - one event per durable transaction (the outbox on SQLite, then on SQLCipher);
//! - group commit under 16 concurrent writers;
//! - evidence upload of a 64 MiB file (stored as it is, then sealed with AES-256-GCM).
//!
//! The relay's drain from an encrypted database is in the relay's benchmark. The last line
//! printed is one JSON object with every figure. `ENCRYPTION_BENCH_ONLY=<figure>` (say
//! `single_commit_per_s`) measures one alone.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use casewire_core::{ContentKey, EvidenceStore, NewEvidence, RequestInfo, Role, User};
use casewire_outbox::{DatabaseKey, Outbox, OutboxConfig, SystemClock};
use casewire_testkit::{fresh_copy, guide_event};
use serde_json::json;

const PHASE: Duration = Duration::from_secs(2);
const WRITERS: usize = 16;
const FILE: usize = 64 * 1024 * 1024;

fn main() {
    let rounds: usize = std::env::var("ENCRYPTION_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
        .max(1);
    let dir = tempfile::tempdir().unwrap();
    let key = || Some(DatabaseKey::new([7; 32]));
    let mut figures = serde_json::Map::new();
    // `ENCRYPTION_BENCH_ONLY=<figure>` measures that figure alone (to profile it).
    let only = std::env::var("ENCRYPTION_BENCH_ONLY").ok();
    let mut run = |name: &str, unit: &str, measure: &mut dyn FnMut(usize) -> (f64, f64)| {
        if only.as_deref().is_some_and(|only| only != name) {
            return;
        }
        let (mut plain, mut sealed, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (a, b) = measure(round);
            println!(
                "{name}, round {}: unencrypted {a:.0}{unit}, encrypted {b:.0}{unit} ({:.2})",
                round + 1,
                b / a
            );
            plain.push(a);
            sealed.push(b);
            ratios.push(b / a);
        }
        let ratio = median(&ratios);
        println!(
            "{name}: unencrypted {:.0}{unit}, encrypted {:.0}{unit}, ratio {ratio:.2} (median of {rounds})",
            median(&plain),
            median(&sealed)
        );
        figures.insert(format!("{name}_plain"), median(&plain).round().into());
        figures.insert(format!("{name}_encrypted"), median(&sealed).round().into());
        figures.insert(
            format!("{name}_ratio"),
            ((ratio * 100.0).round() / 100.0).into(),
        );
        figures.insert(
            format!("{name}_ratios"),
            ratios
                .iter()
                .map(|r| (r * 100.0).round() / 100.0)
                .collect::<Vec<_>>()
                .into(),
        );
    };

    run("single_commit_per_s", "/s", &mut |round| {
        phases(round, &mut |encrypted, round| {
            let outbox = open(
                &dir.path().join(format!("single-{encrypted}-{round}.db")),
                encrypted.then(key).flatten(),
            );
            let template = guide_event(0);
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < PHASE {
                outbox.enqueue(&fresh_copy(&template)).wait().unwrap();
                n += 1;
            }
            n as f64 / start.elapsed().as_secs_f64()
        })
    });
    // The same commit, timed pairwise: one event to the unencrypted outbox, then one to the
    // encrypted one, and so on, so each encrypted commit is measured beside an unencrypted one
    // on the same disk at the same moment, and drift between phases cannot fall on one side.
    run("single_commit_paired", "/s", &mut |round| {
        let outboxes = [false, true].map(|encrypted| {
            open(
                &dir.path().join(format!("paired-{encrypted}-{round}.db")),
                encrypted.then(key).flatten(),
            )
        });
        let template = guide_event(0);
        let mut spent = [Duration::ZERO; 2];
        let mut n = 0u32;
        let start = Instant::now();
        while start.elapsed() < 2 * PHASE {
            for (outbox, spent) in outboxes.iter().zip(&mut spent) {
                let at = Instant::now();
                outbox.enqueue(&fresh_copy(&template)).wait().unwrap();
                *spent += at.elapsed();
            }
            n += 1;
        }
        let [plain, sealed] = spent.map(|d| f64::from(n) / d.as_secs_f64());
        (plain, sealed)
    });
    run("group_commit_per_s", "/s", &mut |round| {
        phases(round, &mut |encrypted, round| {
            let outbox = Arc::new(open(
                &dir.path().join(format!("group-{encrypted}-{round}.db")),
                encrypted.then(key).flatten(),
            ));
            let start = Instant::now();
            let counts: Vec<u64> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..WRITERS)
                    .map(|_| {
                        let outbox = outbox.clone();
                        scope.spawn(move || {
                            let template = guide_event(0);
                            let mut n = 0u64;
                            while start.elapsed() < PHASE {
                                outbox.enqueue(&fresh_copy(&template)).wait().unwrap();
                                n += 1;
                            }
                            n
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            counts.iter().sum::<u64>() as f64 / start.elapsed().as_secs_f64()
        })
    });
    let content: Vec<u8> = (0..FILE).map(|i| (i % 251) as u8).collect();
    run("upload_mib_per_s", " MiB/s", &mut |round| {
        phases(round, &mut |encrypted, round| {
            let data = dir.path().join(format!("evidence-{encrypted}-{round}"));
            std::fs::create_dir_all(&data).unwrap();
            let outbox = Arc::new(open(&data.join("outbox.db"), encrypted.then(key).flatten()));
            casewire_core::migrate(&outbox).unwrap();
            let store = EvidenceStore::open(outbox, Arc::new(SystemClock), &data, FILE as u64 * 2)
                .unwrap()
                .with_key(encrypted.then(|| ContentKey::new([9; 32])));
            // A different byte each time, so no upload finds its content stored already.
            let mut file = content.clone();
            file[0] = round as u8;
            file[1] = u8::from(encrypted);
            let start = Instant::now();
            store
                .upload(meta(), file.as_slice(), &user(), &RequestInfo::default())
                .unwrap();
            FILE as f64 / (1024.0 * 1024.0) / start.elapsed().as_secs_f64()
        })
    });
    println!("{}", json!(figures));
}

fn open(path: &std::path::Path, key: Option<DatabaseKey>) -> Outbox {
    Outbox::open(OutboxConfig {
        quota_bytes: u64::MAX,
        key,
        ..OutboxConfig::file(path)
    })
    .unwrap()
}

fn user() -> User {
    User {
        id: 1,
        username: "bench".into(),
        role: Role::Analyst,
    }
}

fn meta() -> NewEvidence {
    NewEvidence {
        case_id: "CASE-2024-001".into(),
        wallet: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into(),
        reporter: "bench".into(),
        risk_level: None,
        filename: "statement.bin".into(),
        content_type: "application/octet-stream".into(),
    }
}

/// One round of a figure measured in two phases, unencrypted and encrypted, in turns: the order
/// alternates (ABBA), so whichever case runs second (on a disk still writing back the first
/// one's pages) is each case in turn, and the disk is flushed before each phase.
fn phases(round: usize, measure: &mut dyn FnMut(bool, usize) -> f64) -> (f64, f64) {
    if round.is_multiple_of(2) {
        let plain = settled(|| measure(false, round));
        (plain, settled(|| measure(true, round)))
    } else {
        let sealed = settled(|| measure(true, round));
        (settled(|| measure(false, round)), sealed)
    }
}

/// Runs `phase` after the filesystems have written back what earlier phases left dirty.
fn settled(phase: impl FnOnce() -> f64) -> f64 {
    let _ = std::process::Command::new("sync").status();
    phase()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}
