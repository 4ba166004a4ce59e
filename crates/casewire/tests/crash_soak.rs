//! The crash soak (`scripts/crash-soak`; not in CI's time, figures in BENCHMARKS.md): `casewire
//! serve` SIGKILLed at random moments, `CRASH_SOAK_KILLS` times (default 200), while clients
//! create and change cases, the relay drains and the outbox sweeps delivered rows, against a
//! tansu broker whose SQLite storage survives its own restarts (it is SIGKILLed too, and kept
//! down for a few rounds now and then, so backlogs build and drain across crashes).
//!
//! Then, on the consumer's side of the topic:
//! - every change the API acknowledged is there (0 missing);
//! - a change that appears twice appears with the same `eventId` (a resend after a crash), never
//!   as a second event;
//! - each case's changes are in the order they were made.
//!
//! A change is a new case or a file of evidence added to one. Every change is told apart by a
//! number no other change has (`op`), carried in the case's title or the file's name, so a
//! change in flight at a kill (made or not, unknown to the client) can never be mistaken for a
//! later one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use casewire_testkit::secure_kafka::DurableKafka;
use rand::Rng;
use serde_json::{Value, json};

mod support;
use support::{add_user, casewire, login, queue_size, serve, stop, topic_events};

const CLIENTS: usize = 4;

/// The client loops' shared memory across rounds: the cases each owns, and the changes the API
/// acknowledged, as (case, op).
#[derive(Default)]
struct Ledger {
    cases: Vec<Vec<String>>,
    acknowledged: Vec<(String, u64)>,
}

/// One client: creates a case now and then, otherwise adds evidence to one of its own, one
/// request at a time, until the server dies under it. Returns what it owns and what was
/// acknowledged.
async fn client_loop(
    client: reqwest::Client,
    base: String,
    token: String,
    mut cases: Vec<String>,
    ops: Arc<AtomicU64>,
) -> (Vec<String>, Vec<(String, u64)>) {
    let mut acknowledged = Vec::new();
    loop {
        let op = ops.fetch_add(1, Ordering::Relaxed);
        let create = cases.is_empty() || rand::rng().random_ratio(1, 8);
        let request = if create {
            client
                .post(format!("{base}/api/cases"))
                .json(&json!({"title": format!("Soak op {op}")}))
        } else {
            let case = &cases[rand::rng().random_range(0..cases.len())];
            let form = reqwest::multipart::Form::new()
                .text("caseId", case.clone())
                .text("wallet", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
                .text("reporter", "soak@fraud.example")
                .part(
                    "evidenceFile",
                    reqwest::multipart::Part::bytes(format!("evidence of op {op}").into_bytes())
                        .file_name(format!("op-{op}.txt")),
                );
            client
                .post(format!("{base}/api/evidence/upload"))
                .multipart(form)
        };
        let Ok(response) = request.bearer_auth(&token).send().await else {
            return (cases, acknowledged);
        };
        let status = response.status();
        let Ok(body) = response.json::<Value>().await else {
            return (cases, acknowledged);
        };
        assert!(status.is_success(), "{status}: {body}");
        let case = body["case"]["caseId"]
            .as_str()
            .or_else(|| body["evidence"]["caseId"].as_str())
            .expect("caseId")
            .to_owned();
        if create {
            cases.push(case.clone());
        }
        acknowledged.push((case, op));
    }
}

/// The op a `case.created` or `evidence.uploaded` event carries, with its case.
fn op_of(event: &Value) -> Option<(String, u64)> {
    let data = &event["data"];
    let case = data["caseId"].as_str()?.to_owned();
    let text = match event["eventType"].as_str()? {
        "case.created" => data["title"].as_str()?.strip_prefix("Soak op ")?,
        "evidence.uploaded" => data["filename"]
            .as_str()?
            .strip_prefix("op-")?
            .strip_suffix(".txt")?,
        _ => return None,
    };
    Some((case, text.parse().ok()?))
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak of many minutes: scripts/crash-soak"]
#[allow(clippy::print_stdout)] // The soak reports its figures on stdout.
async fn sigkilled_again_and_again_it_loses_nothing_acknowledged_and_keeps_each_cases_order() {
    let kills = setting("CRASH_SOAK_KILLS", 200);
    let mut kafka = tokio::task::spawn_blocking(DurableKafka::start)
        .await
        .expect("broker");
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(add_user(dir.path(), "hq", "admin").status.success());
    let client = reqwest::Client::new();
    let ops = Arc::new(AtomicU64::new(0));
    let mut ledger = Ledger {
        cases: vec![Vec::new(); CLIENTS],
        ..Ledger::default()
    };
    let started = Instant::now();
    let mut broker_kills = 0;
    for round in 0..kills {
        // Every 25 rounds the broker dies and stays down for 5: a backlog builds across crashes.
        match round % 25 {
            20 => {
                kafka.kill();
                broker_kills += 1;
            }
            0 if round > 0 => kafka.restart(),
            _ => {}
        }
        let (mut server, base) = serve(&mut casewire(dir.path(), Some(&kafka.brokers())));
        let token = login(&client, &base, "hq").await;
        let loops: Vec<_> = std::mem::take(&mut ledger.cases)
            .into_iter()
            .map(|cases| {
                tokio::spawn(client_loop(
                    client.clone(),
                    base.clone(),
                    token.clone(),
                    cases,
                    ops.clone(),
                ))
            })
            .collect();
        let alive = Duration::from_millis(rand::rng().random_range(50..1500));
        tokio::time::sleep(alive).await;
        server.kill().expect("SIGKILL");
        server.wait().expect("reaped");
        for task in loops {
            let (cases, acknowledged) = task.await.expect("client loop");
            ledger.cases.push(cases);
            ledger.acknowledged.extend(acknowledged);
        }
    }
    kafka.restart();
    let soak = started.elapsed();

    // The last start drains what every crash left behind.
    let (server, base) = serve(&mut casewire(dir.path(), Some(&kafka.brokers())));
    let token = login(&client, &base, "hq").await;
    let deadline = Instant::now() + Duration::from_secs(300);
    while queue_size(&client, &base, &token).await > 0 {
        assert!(Instant::now() < deadline, "the backlog never drained");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop(server);

    let want: HashSet<(String, u64)> = ledger.acknowledged.iter().cloned().collect();
    let brokers = kafka.brokers();
    let events = {
        let want = want.clone();
        tokio::task::spawn_blocking(move || {
            topic_events(
                &[("bootstrap.servers", &brokers)],
                |events| {
                    let seen: HashSet<(String, u64)> = events.iter().filter_map(op_of).collect();
                    want.is_subset(&seen)
                },
                Duration::from_secs(300),
            )
        })
        .await
        .expect("consumer")
    };

    // First sight of each event id, in topic order per partition (a case is one partition).
    let mut ids_of_op: HashMap<(String, u64), HashSet<String>> = HashMap::new();
    let mut seen_ids = HashSet::new();
    let mut resent = 0u64;
    let mut order: HashMap<String, Vec<u64>> = HashMap::new();
    for event in &events {
        let id = event["eventId"].as_str().expect("eventId").to_owned();
        let first = seen_ids.insert(id.clone());
        if !first {
            resent += 1;
        }
        if let Some((case, op)) = op_of(event) {
            ids_of_op.entry((case.clone(), op)).or_default().insert(id);
            if first {
                order.entry(case).or_default().push(op);
            }
        }
    }
    let missing = want.iter().filter(|k| !ids_of_op.contains_key(*k)).count();
    let twice_made = ids_of_op.values().filter(|ids| ids.len() > 1).count();
    let out_of_order = order
        .values()
        .filter(|ops| ops.windows(2).any(|w| w[0] >= w[1]))
        .count();
    let figures = json!({
        "kills": kills,
        "broker_kills": broker_kills,
        "soak_seconds": soak.as_secs(),
        "acknowledged": want.len(),
        "events_on_topic": events.len(),
        "cases": order.len(),
        "missing": missing,
        "resent_same_event_id": resent,
        "duplicates_with_a_new_event_id": twice_made,
        "cases_out_of_order": out_of_order,
    });
    println!("{figures}");
    if missing > 0 {
        eprintln!(
            "the broker's storage and log are kept in {}",
            kafka.keep().display()
        );
    }
    assert_eq!(missing, 0, "{figures}");
    assert_eq!(twice_made, 0, "{figures}");
    assert_eq!(out_of_order, 0, "{figures}");
}
