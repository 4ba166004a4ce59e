//! Model-based test: random operations on a real outbox file and on a plain in-memory model,
//! compared after every step. Includes crash/reopen, where the in-flight set is lost.
//!
//! Invariants: nothing is lost (every event is queued, dead-lettered, acknowledged, or explicitly
//! cleared or discarded), per-key order (an event is only ever in flight when every earlier event
//! of its key is), attempts only grow (except by replay), and the dead-letter rule. A replayed
//! dead letter regains its place before the queued events of its key, but events of its key
//! delivered while it was dead stay delivered: it is exempt from the order check against them.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use casewire_events::Priority;
use casewire_outbox::{
    Clock, Durability, FailKind, FailOutcome, Failure, Outbox, OutboxConfig, Page, RetryPolicy,
};
use proptest::prelude::*;

use crate::support::{Fixture, dead_ids};

const MAX_RETRIES: u32 = 3;

#[derive(Debug, Clone)]
enum Op {
    Enqueue { key: u8, priority: u8 },
    Claim { window: u8 },
    AckOldest { n: u8 },
    Fail { pick: u8, kind: u8 },
    Replay { pick: u8 },
    Discard { pick: u8 },
    Clear,
    Sweep { rows: u8 },
    Advance { ms: u32 },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..4, 0u8..4).prop_map(|(key, priority)| Op::Enqueue { key, priority }),
        4 => (1u8..6).prop_map(|window| Op::Claim { window }),
        3 => (1u8..4).prop_map(|n| Op::AckOldest { n }),
        4 => (any::<u8>(), 0u8..3).prop_map(|(pick, kind)| Op::Fail { pick, kind }),
        1 => any::<u8>().prop_map(|pick| Op::Replay { pick }),
        1 => any::<u8>().prop_map(|pick| Op::Discard { pick }),
        1 => Just(Op::Clear),
        2 => (1u8..5).prop_map(|rows| Op::Sweep { rows }),
        3 => (0u32..400_000).prop_map(|ms| Op::Advance { ms }),
        2 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone)]
struct Entry {
    seq: i64,
    id: String,
    key: String,
    priority: Priority,
    attempts: u32,
    due_at: i64,
    in_flight: bool,
    /// Replayed from the dead letters: later events of its key may already have been delivered,
    /// so it is exempt from the order check against them (it cannot be otherwise).
    replayed: bool,
}

#[derive(Default)]
struct Model {
    queue: Vec<Entry>,
    dead: Vec<Entry>,
    next_seq: i64,
    /// Where every event ever enqueued ended up, for the no-loss check.
    acked: HashSet<String>,
    dropped: HashSet<String>,
    all: HashSet<String>,
    /// Delivered events whose rows the outbox has not deleted yet.
    awaiting_deletion: u64,
}

impl Model {
    fn claim(&mut self, window: usize, now: i64) -> Vec<String> {
        let mut blocked = HashSet::new();
        let mut out = Vec::new();
        for e in &mut self.queue {
            if out.len() == window {
                break;
            }
            if e.in_flight || blocked.contains(&e.key) {
                continue;
            }
            if e.due_at > now {
                blocked.insert(e.key.clone());
                continue;
            }
            e.in_flight = true;
            out.push(e.id.clone());
        }
        out
    }

    fn position(&self, id: &str) -> usize {
        self.queue
            .iter()
            .position(|e| e.id == id)
            .expect("in model queue")
    }
}

fn config(fx: &Fixture) -> OutboxConfig {
    OutboxConfig {
        durability: Durability::Normal,
        retry: RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::from_interval(Duration::from_secs(10), MAX_RETRIES)
        },
        // Delivered rows are deleted by the model's sweeps only, so their count is known.
        sweep_after_idle: None,
        ..fx.config()
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let fx = Fixture::new();
    let policy = config(&fx).retry;
    let mut outbox = Some(Outbox::open(config(&fx)).expect("opens"));
    let mut model = Model {
        next_seq: 1,
        ..Model::default()
    };
    for op in ops {
        let ob = outbox.as_ref().expect("open");
        let now = fx.clock.now_ms();
        match op {
            Op::Enqueue { key, priority } => {
                let priority = Priority::from_rank(priority).expect("rank");
                let event = fx.event(&format!("CASE-{key}"), priority);
                ob.enqueue(&event).wait().expect("durable");
                model.all.insert(event.event_id.to_string());
                model.queue.push(Entry {
                    seq: model.next_seq,
                    id: event.event_id.to_string(),
                    key: event.partition_key(),
                    priority,
                    attempts: 0,
                    due_at: now,
                    in_flight: false,
                    replayed: false,
                });
                model.next_seq += 1;
            }
            Op::Claim { window } => {
                let got: Vec<String> = ob
                    .claim(usize::from(window))
                    .expect("claim")
                    .events
                    .into_iter()
                    .map(|e| e.event_id)
                    .collect();
                let want = model.claim(usize::from(window), now);
                prop_assert_eq!(&got, &want);
                // Per-key order: everything earlier of the same key is already in flight.
                for id in &got {
                    let pos = model.position(id);
                    let key = &model.queue[pos].key;
                    prop_assert!(
                        model.queue[..pos]
                            .iter()
                            .filter(|e| &e.key == key)
                            .all(|e| e.in_flight)
                    );
                }
            }
            Op::AckOldest { n } => {
                let ids: Vec<Entry> = model
                    .queue
                    .iter()
                    .filter(|e| e.in_flight)
                    .take(usize::from(n))
                    .cloned()
                    .collect();
                let removed = ob
                    .ack(ids.iter().map(|e| e.seq).collect())
                    .wait()
                    .expect("ack");
                prop_assert_eq!(removed, ids.len());
                model.awaiting_deletion += ids.len() as u64;
                // Delivered is final: a second ack removes nothing, a failure finds nothing.
                let seqs: Vec<i64> = ids.iter().map(|e| e.seq).collect();
                prop_assert_eq!(ob.ack(seqs.clone()).wait().expect("ack again"), 0);
                if let Some(&seq) = seqs.first() {
                    let failed = ob
                        .fail(vec![Failure {
                            seq,
                            kind: FailKind::Permanent,
                            reason: "late".into(),
                        }])
                        .wait()
                        .expect("fail");
                    prop_assert_eq!(failed, vec![FailOutcome::Gone]);
                }
                for e in ids {
                    let pos = model.position(&e.id);
                    prop_assert!(
                        model.queue[..pos]
                            .iter()
                            .all(|o| o.key != e.key || o.replayed),
                        "acked ahead of an earlier event of its key"
                    );
                    model.queue.remove(pos);
                    model.acked.insert(e.id);
                }
            }
            Op::Fail { pick, kind } => {
                // The transport fails an in-flight event that is the first in flight of its key…
                let heads: Vec<Entry> = {
                    let mut seen = HashSet::new();
                    model
                        .queue
                        .iter()
                        .filter(|e| e.in_flight && seen.insert(e.key.clone()))
                        .cloned()
                        .collect()
                };
                if heads.is_empty() {
                    continue;
                }
                let head = heads[usize::from(pick) % heads.len()].clone();
                let kind = [
                    FailKind::Unreachable,
                    FailKind::Retriable,
                    FailKind::Permanent,
                ][usize::from(kind)];
                // …and holds back the later in-flight events of that key, as the relay does.
                let held: Vec<Entry> = model
                    .queue
                    .iter()
                    .filter(|e| e.in_flight && e.key == head.key && e.seq != head.seq)
                    .cloned()
                    .collect();
                let mut failures = vec![Failure {
                    seq: head.seq,
                    kind,
                    reason: "model".into(),
                }];
                failures.extend(held.iter().map(|e| Failure {
                    seq: e.seq,
                    kind: FailKind::Unreachable,
                    reason: "held back".into(),
                }));
                let outcomes = ob.fail(failures).wait().expect("fail");
                let pos = model.position(&head.id);
                let entry = &mut model.queue[pos];
                entry.in_flight = false;
                let expected = match kind {
                    FailKind::Unreachable => {
                        entry.due_at = now;
                        FailOutcome::Requeued
                    }
                    FailKind::Retriable if entry.attempts < MAX_RETRIES => {
                        entry.attempts += 1;
                        entry.due_at = now
                            + policy
                                .delay(entry.priority, entry.attempts, 0.0)
                                .as_millis() as i64;
                        FailOutcome::Retrying {
                            attempts: entry.attempts,
                            next_attempt_at: entry.due_at,
                        }
                    }
                    _ => {
                        let mut dead = model.queue.remove(pos);
                        dead.attempts += 1;
                        let at = model.dead.partition_point(|d| d.seq < dead.seq);
                        model.dead.insert(at, dead);
                        FailOutcome::DeadLettered
                    }
                };
                prop_assert_eq!(&outcomes[0], &expected);
                for e in held {
                    let pos = model.position(&e.id);
                    model.queue[pos].in_flight = false;
                    model.queue[pos].due_at = now;
                }
                prop_assert!(outcomes[1..].iter().all(|o| *o == FailOutcome::Requeued));
            }
            Op::Replay { pick } => {
                if model.dead.is_empty() {
                    continue;
                }
                let mut entry = model.dead.remove(usize::from(pick) % model.dead.len());
                let replayed = ob
                    .replay(vec![entry.id.clone()], "model".into())
                    .wait()
                    .expect("replay");
                prop_assert_eq!(&replayed, &vec![entry.id.clone()]);
                entry.attempts = 0;
                entry.due_at = now;
                entry.replayed = true;
                let at = model.queue.partition_point(|e| e.seq < entry.seq);
                model.queue.insert(at, entry);
            }
            Op::Discard { pick } => {
                if model.dead.is_empty() {
                    continue;
                }
                let entry = model.dead.remove(usize::from(pick) % model.dead.len());
                ob.discard(vec![entry.id.clone()], "model".into())
                    .wait()
                    .expect("discard");
                model.dropped.insert(entry.id);
            }
            Op::Clear => {
                let cleared = ob.clear("model".into(), None).wait().expect("clear");
                prop_assert_eq!(cleared, model.queue.len() as u64);
                model.awaiting_deletion = 0;
                model.dropped.extend(model.queue.drain(..).map(|e| e.id));
                let alert = ob.list_queued(Page::first(10)).expect("list").remove(0);
                model.all.insert(alert.event_id.clone());
                model.queue.push(Entry {
                    seq: model.next_seq,
                    key: alert.partition_key,
                    id: alert.event_id,
                    priority: Priority::Critical,
                    attempts: 0,
                    due_at: now,
                    in_flight: false,
                    replayed: false,
                });
                model.next_seq += 1;
            }
            Op::Sweep { rows } => {
                let swept = ob.sweep_delivered(usize::from(rows)).wait().expect("sweep");
                let want = model.awaiting_deletion.min(u64::from(rows));
                prop_assert_eq!(swept as u64, want);
                model.awaiting_deletion -= want;
            }
            Op::Advance { ms } => fx.clock.advance(Duration::from_millis(u64::from(ms))),
            Op::Reopen => {
                drop(outbox.take());
                outbox = Some(Outbox::open(config(&fx)).expect("reopens"));
                model.queue.iter_mut().for_each(|e| e.in_flight = false);
            }
        }
        // The real queue and dead letters match the model, attempts included.
        let ob = outbox.as_ref().expect("open");
        let queued = ob.list_queued(Page::first(10_000)).expect("list");
        let got: Vec<(&str, u32)> = queued
            .iter()
            .map(|e| (e.event_id.as_str(), e.retry_count))
            .collect();
        let want: Vec<(&str, u32)> = model
            .queue
            .iter()
            .map(|e| (e.id.as_str(), e.attempts))
            .collect();
        prop_assert_eq!(got, want);
        let want_dead: Vec<String> = model.dead.iter().map(|e| e.id.clone()).collect();
        prop_assert_eq!(dead_ids(ob), want_dead);
        // The counters the stats and the quota read agree with the rows.
        let stats = ob.stats(Page::first(0)).expect("stats");
        let count = |p: Priority| model.queue.iter().filter(|e| e.priority == p).count() as u64;
        prop_assert_eq!(stats.queue_size, model.queue.len() as u64);
        prop_assert_eq!(stats.dead_letter_count, model.dead.len() as u64);
        prop_assert_eq!(stats.awaiting_deletion, model.awaiting_deletion);
        prop_assert_eq!(
            [
                stats.by_priority.critical,
                stats.by_priority.high,
                stats.by_priority.medium,
                stats.by_priority.low
            ],
            [
                count(Priority::Critical),
                count(Priority::High),
                count(Priority::Medium),
                count(Priority::Low)
            ]
        );
        // No loss: every event is accounted for exactly once.
        let mut places: HashMap<&str, u8> = HashMap::new();
        for id in model
            .queue
            .iter()
            .map(|e| &e.id)
            .chain(model.dead.iter().map(|e| &e.id))
            .chain(&model.acked)
            .chain(&model.dropped)
        {
            *places.entry(id.as_str()).or_default() += 1;
        }
        prop_assert_eq!(places.len(), model.all.len());
        prop_assert!(places.values().all(|&n| n == 1));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn outbox_matches_its_model_through_crashes(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
