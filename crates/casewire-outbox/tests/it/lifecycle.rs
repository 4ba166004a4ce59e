//! The life of an event: enqueue, claim, ack, fail, retry, dead letter, replay, discard, clear.

use std::time::Duration;

use casewire_events::{EventType, Priority};
use casewire_outbox::{
    BrokerStatus, DEFAULT_SWEEP_AFTER_IDLE, Error, FailKind, FailOutcome, Failure, Outbox,
    OutboxConfig, Page,
};
use serde_json::json;

use crate::support::{Fixture, data, dead_ids, queued_ids};

fn fail(outbox: &Outbox, seq: i64, kind: FailKind) -> FailOutcome {
    outbox
        .fail(vec![Failure {
            seq,
            kind,
            reason: format!("{kind:?} in test"),
        }])
        .wait()
        .expect("fail recorded")
        .remove(0)
}

#[test]
fn queued_events_survive_restart_and_are_claimed_in_commit_order() {
    let fx = Fixture::new();
    let ids: Vec<String> = {
        let outbox = fx.open();
        (0..5)
            .map(|i| {
                let event = fx.event(&format!("CASE-2024-{i:03}"), Priority::Medium);
                outbox.enqueue(&event).wait().expect("durable");
                event.event_id.to_string()
            })
            .collect()
    };
    let outbox = fx.open();
    assert_eq!(outbox.open_report().loaded, 5);
    let claim = outbox.claim(10).expect("claim");
    let claimed: Vec<_> = claim.events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(claimed, ids);
    assert_eq!(
        claim.events[0].event().expect("parses").event_id.as_str(),
        ids[0]
    );
}

#[test]
fn acknowledged_events_leave_the_queue_for_good() {
    let fx = Fixture::new();
    let outbox = fx.open();
    fx.queue(&outbox, 3, Priority::Low);
    let claim = outbox.claim(2).expect("claim");
    let removed = outbox
        .ack(claim.events.iter().map(|e| e.seq).collect())
        .wait()
        .expect("ack");
    assert_eq!(removed, 2);
    // Acking again is harmless.
    assert_eq!(
        outbox.ack(vec![claim.events[0].seq]).wait().expect("ack"),
        0
    );
    drop(outbox);
    let outbox = fx.open();
    assert_eq!(outbox.stats(Page::first(10)).expect("stats").queue_size, 1);
}

#[test]
fn in_flight_events_are_not_claimed_twice_but_reappear_after_restart() {
    let fx = Fixture::new();
    let outbox = fx.open();
    outbox
        .enqueue(&fx.event("A", Priority::Medium))
        .wait()
        .expect("durable");
    assert_eq!(outbox.claim(10).expect("claim").events.len(), 1);
    assert!(outbox.claim(10).expect("claim").events.is_empty());
    drop(outbox);
    let outbox = fx.open();
    assert_eq!(outbox.claim(10).expect("claim").events.len(), 1);
}

#[test]
fn a_failed_event_holds_back_its_key_only() {
    let fx = Fixture::new();
    let outbox = fx.open();
    let a1 = fx.event("A", Priority::Medium);
    let a2 = fx.event("A", Priority::Medium);
    let b1 = fx.event("B", Priority::Medium);
    for e in [&a1, &a2, &b1] {
        outbox.enqueue(e).wait().expect("durable");
    }
    // The whole queue can be in flight at once: per-key prefixes.
    let claim = outbox.claim(10).expect("claim");
    assert_eq!(claim.events.len(), 3);
    let (sa1, sa2, sb1) = (
        claim.events[0].seq,
        claim.events[1].seq,
        claim.events[2].seq,
    );
    // a1 fails; the relay holds a2 back behind it; b1 is delivered.
    assert!(matches!(
        fail(&outbox, sa1, FailKind::Retriable),
        FailOutcome::Retrying { attempts: 1, .. }
    ));
    assert_eq!(
        fail(&outbox, sa2, FailKind::Unreachable),
        FailOutcome::Requeued
    );
    outbox.ack(vec![sb1]).wait().expect("ack");
    let b2 = fx.event("B", Priority::Medium);
    outbox.enqueue(&b2).wait().expect("durable");
    // a2 is due but waits for a1; b2 flows.
    let claim = outbox.claim(10).expect("claim");
    assert_eq!(
        claim
            .events
            .iter()
            .map(|e| e.event_id.as_str())
            .collect::<Vec<_>>(),
        [b2.event_id.as_str()]
    );
    assert_eq!(claim.next_due_in, Some(Duration::from_secs(10)));
    fx.clock.advance(Duration::from_secs(10));
    let claim = outbox.claim(10).expect("claim");
    assert_eq!(
        claim
            .events
            .iter()
            .map(|e| e.event_id.as_str())
            .collect::<Vec<_>>(),
        [a1.event_id.as_str(), a2.event_id.as_str()]
    );
}

#[test]
fn retries_back_off_per_priority_and_double() {
    let fx = Fixture::new();
    let outbox = fx.open();
    let start = casewire_outbox::Clock::now_ms(&*fx.clock);
    let mut delays = Vec::new();
    for priority in [
        Priority::Critical,
        Priority::High,
        Priority::Medium,
        Priority::Low,
    ] {
        outbox
            .enqueue(&fx.event(priority.as_str(), priority))
            .wait()
            .expect("durable");
    }
    for event in outbox.claim(10).expect("claim").events {
        match fail(&outbox, event.seq, FailKind::Retriable) {
            FailOutcome::Retrying {
                next_attempt_at, ..
            } => delays.push(next_attempt_at - start),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(delays, [100, 5_000, 10_000, 30_000]);
    // The second failure of the medium event waits twice as long.
    fx.clock.advance(Duration::from_secs(10));
    let medium = outbox
        .claim(10)
        .expect("claim")
        .events
        .into_iter()
        .find(|e| e.priority == Priority::Medium)
        .expect("medium due again");
    assert_eq!(
        fail(&outbox, medium.seq, FailKind::Retriable),
        FailOutcome::Retrying {
            attempts: 2,
            next_attempt_at: start + 10_000 + 20_000
        }
    );
}

#[test]
fn retry_now_makes_waiting_events_due_and_keeps_their_attempts() {
    let fx = Fixture::new();
    let outbox = fx.open();
    for key in ["A", "B"] {
        outbox
            .enqueue(&fx.event(key, Priority::Low))
            .wait()
            .expect("durable");
    }
    for event in outbox.claim(10).expect("claim").events {
        fail(&outbox, event.seq, FailKind::Retriable);
    }
    assert!(outbox.claim(10).expect("claim").events.is_empty());

    let woken = outbox.retry_now("admin".into()).wait().expect("retried");

    assert_eq!(woken, 2);
    let claimed = outbox.claim(10).expect("claim").events;
    assert_eq!(claimed.len(), 2, "both due without waiting 30 s");
    assert!(claimed.iter().all(|e| e.attempts == 1));
    assert_eq!(
        outbox.retry_now("admin".into()).wait().expect("retried"),
        0,
        "nothing left waiting"
    );
    drop(outbox);
    let conn = rusqlite::Connection::open(fx.db_path()).expect("open");
    let audited: Vec<(String, String, i64)> = conn
        .prepare("SELECT actor, action, count FROM outbox_audit ORDER BY id")
        .expect("query")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("audit rows");
    assert_eq!(
        audited,
        [
            ("admin".to_owned(), "retry".to_owned(), 2),
            ("admin".to_owned(), "retry".to_owned(), 0)
        ]
    );
}

#[test]
fn attempts_while_no_broker_is_reachable_do_not_count() {
    let fx = Fixture::new();
    let outbox = fx.open();
    outbox
        .enqueue(&fx.event("A", Priority::Medium))
        .wait()
        .expect("durable");
    // A week offline: thousands of probes, nothing dead-lettered, retryCount still 0.
    for _ in 0..2_000 {
        let seq = outbox.claim(1).expect("claim").events[0].seq;
        assert_eq!(
            fail(&outbox, seq, FailKind::Unreachable),
            FailOutcome::Requeued
        );
        fx.clock.advance(Duration::from_secs(300));
    }
    let stats = outbox.stats(Page::first(10)).expect("stats");
    assert_eq!(stats.queue_size, 1);
    assert_eq!(stats.dead_letter_count, 0);
    assert_eq!(stats.events[0].retry_count, 0);
    assert!(
        stats.events[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("Unreachable"))
    );
}

#[test]
fn events_past_max_retries_become_dead_letters_with_their_reason() {
    let fx = Fixture::new();
    let outbox = fx.open();
    let event = fx.event("A", Priority::Critical);
    outbox.enqueue(&event).wait().expect("durable");
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        fx.clock.advance(Duration::from_secs(300));
        let seq = outbox.claim(1).expect("claim").events[0].seq;
        outcomes.push(fail(&outbox, seq, FailKind::Retriable));
    }
    // MAX_RETRIES is 3 in the fixture: the fourth counted failure gives up.
    assert_eq!(outcomes[3], FailOutcome::DeadLettered);
    assert!(queued_ids(&outbox).is_empty());
    let dead = outbox.dead_letters(Page::first(10)).expect("list");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event_id, event.event_id.as_str());
    assert_eq!(dead[0].attempts, 4);
    assert_eq!(
        dead[0].reason,
        "gave up after 4 attempts: Retriable in test"
    );
    assert!(dead[0].first_error_at < dead[0].last_error_at);
}

#[test]
fn permanent_errors_dead_letter_at_once_and_free_the_key() {
    let fx = Fixture::new();
    let outbox = fx.open();
    let a1 = fx.event("A", Priority::Medium);
    let a2 = fx.event("A", Priority::Medium);
    outbox.enqueue(&a1).wait().expect("durable");
    outbox.enqueue(&a2).wait().expect("durable");
    let seq = outbox.claim(1).expect("claim").events[0].seq;
    assert_eq!(
        fail(&outbox, seq, FailKind::Permanent),
        FailOutcome::DeadLettered
    );
    assert_eq!(dead_ids(&outbox), [a1.event_id.to_string()]);
    assert_eq!(
        outbox.claim(10).expect("claim").events[0].event_id,
        a2.event_id.as_str()
    );
}

#[test]
fn replayed_dead_letters_regain_their_place_in_their_keys_order() {
    let fx = Fixture::new();
    let outbox = fx.open();
    let a1 = fx.event("A", Priority::Medium);
    let a2 = fx.event("A", Priority::Medium);
    outbox.enqueue(&a1).wait().expect("durable");
    let seq = outbox.claim(1).expect("claim").events[0].seq;
    fail(&outbox, seq, FailKind::Permanent);
    outbox.enqueue(&a2).wait().expect("durable");
    let replayed = outbox
        .replay(
            vec![a1.event_id.to_string(), "evt_1_abcdef".into()],
            "admin".into(),
        )
        .wait()
        .expect("replay");
    assert_eq!(replayed, [a1.event_id.to_string()]);
    assert_eq!(
        queued_ids(&outbox),
        [a1.event_id.to_string(), a2.event_id.to_string()]
    );
    let claim = outbox.claim(10).expect("claim");
    assert_eq!(claim.events[0].seq, seq, "the original order key is kept");
    assert_eq!(claim.events[0].attempts, 0);
    assert!(dead_ids(&outbox).is_empty());
}

#[test]
fn an_order_key_is_never_given_twice_across_dead_letters_restarts_and_clears() {
    let fx = Fixture::new();
    let newest_dead = {
        let outbox = fx.open();
        fx.queue(&outbox, 2, Priority::Medium);
        let claim = outbox.claim(2).expect("claim");
        let newest = claim.events[1].seq;
        fail(&outbox, newest, FailKind::Permanent);
        newest
    };
    let outbox = fx.open();
    let enqueue = |event: casewire_events::Event| {
        outbox
            .write(move |tx| tx.enqueue_returning_seq(&event))
            .wait()
            .expect("queued")
    };
    let after_restart = enqueue(fx.event("B", Priority::Medium));
    assert!(
        after_restart > newest_dead,
        "order key {after_restart} after the dead letter's {newest_dead}"
    );
    outbox.clear("admin".into(), None).wait().expect("clear");
    let after_clear = enqueue(fx.event("C", Priority::Medium));
    // The clear's own alert took the next order key.
    assert_eq!(after_clear, after_restart + 2);
    let dead = dead_ids(&outbox);
    let replayed = outbox
        .replay(dead.clone(), "admin".into())
        .wait()
        .expect("replay");
    assert_eq!(replayed, dead, "the dead letter's order key was still free");
}

#[test]
fn discarding_dead_letters_is_explicit_and_audited() {
    let fx = Fixture::new();
    let outbox = fx.open();
    let event = fx.event("A", Priority::Medium);
    outbox.enqueue(&event).wait().expect("durable");
    let seq = outbox.claim(1).expect("claim").events[0].seq;
    fail(&outbox, seq, FailKind::Permanent);
    let discarded = outbox
        .discard(vec![event.event_id.to_string()], "root".into())
        .wait()
        .expect("discard");
    assert_eq!(discarded, [event.event_id.to_string()]);
    assert!(dead_ids(&outbox).is_empty());
    drop(outbox);
    let conn = rusqlite::Connection::open(fx.db_path()).expect("open");
    let (actor, action, count): (String, String, i64) = conn
        .query_row("SELECT actor, action, count FROM outbox_audit", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("audit row");
    assert_eq!(
        (actor.as_str(), action.as_str(), count),
        ("root", "discard", 1)
    );
}

#[test]
fn clearing_the_queue_reports_the_count_and_leaves_an_alert() {
    let fx = Fixture::new();
    let outbox = fx.open();
    fx.queue(&outbox, 5, Priority::Medium);
    outbox.claim(2).expect("claim");
    assert_eq!(
        outbox
            .clear("superadmin@fraud.com".into(), Some("10.0.0.7".into()))
            .wait()
            .expect("clear"),
        5
    );
    let claim = outbox.claim(10).expect("claim");
    assert_eq!(
        claim.events.len(),
        1,
        "only the alert about the clear remains"
    );
    let alert = claim.events[0].event().expect("parses");
    assert_eq!(alert.event_type, EventType::SystemAlert);
    assert_eq!(alert.priority, Priority::Critical);
    assert_eq!(alert.data["clearedCount"], json!(5));
    assert_eq!(alert.data["clearedBy"], json!("superadmin@fraud.com"));
    assert_eq!(
        alert.metadata.user_id.as_deref(),
        Some("superadmin@fraud.com")
    );
    assert_eq!(alert.metadata.ip_address.as_deref(), Some("10.0.0.7"));
    assert_eq!(outbox.stats(Page::first(0)).expect("stats").in_flight, 1);
}

#[test]
fn invalid_and_duplicate_events_are_refused_and_change_nothing() {
    let fx = Fixture::new();
    let outbox = fx.open();
    let event = fx.event("A", Priority::Medium);
    outbox.enqueue(&event).wait().expect("durable");
    let err = outbox.enqueue(&event).wait().expect_err("duplicate");
    assert!(
        matches!(&err, Error::DuplicateEventId(id) if id == event.event_id.as_str()),
        "{err}"
    );
    let mut bad = fx.event("B", Priority::Medium);
    bad.data.remove("caseId");
    let err = outbox.enqueue(&bad).wait().expect_err("invalid");
    assert_eq!(
        err.to_string(),
        "invalid event: case.updated event is missing data.caseId"
    );
    assert_eq!(queued_ids(&outbox), [event.event_id.to_string()]);
}

#[test]
fn stats_follow_the_guides_shape_and_page_through_the_queue() {
    let fx = Fixture::new();
    let outbox = fx.open();
    for (i, priority) in [
        Priority::Critical,
        Priority::High,
        Priority::High,
        Priority::Low,
    ]
    .into_iter()
    .enumerate()
    {
        outbox
            .enqueue(&fx.event(&format!("K{i}"), priority))
            .wait()
            .expect("durable");
        fx.clock.advance(Duration::from_secs(1));
    }
    outbox.set_broker_status(BrokerStatus {
        kafka_connected: false,
        kafka_available: true,
    });
    let stats = outbox.stats(Page::first(3)).expect("stats");
    let doc = serde_json::to_value(&stats).expect("serialises");
    assert_eq!(doc["queueSize"], 4);
    assert_eq!(doc["oldestEvent"], "2024-01-08T00:00:00.000Z");
    assert_eq!(doc["kafkaConnected"], false);
    assert_eq!(doc["kafkaAvailable"], true);
    assert_eq!(doc["retryInterval"], 10_000);
    assert_eq!(
        doc["byPriority"],
        json!({"critical": 1, "high": 2, "medium": 0, "low": 1})
    );
    assert_eq!(doc["oldestAgeMs"], 4_000);
    assert_eq!(doc["deadLetterCount"], 0);
    assert!(doc["bytes"].as_u64().expect("bytes") > 4 * 100);
    let first = &doc["events"][0];
    assert_eq!(first["retryCount"], 0);
    assert_eq!(first["eventType"], "case.updated");
    assert_eq!(first["addedAt"], "2024-01-08T00:00:00.000Z");
    assert_eq!(stats.events.len(), 3);
    let rest = outbox
        .stats(Page {
            after: stats.next_cursor,
            limit: 3,
        })
        .expect("stats");
    assert_eq!(rest.events.len(), 1);
    assert_eq!(rest.next_cursor, None);
}

#[test]
fn a_full_quota_refuses_new_events_and_keeps_old_ones() {
    let fx = Fixture::new();
    let outbox = Outbox::open(OutboxConfig {
        quota_bytes: 1_000,
        // Delivered rows are deleted only when the quota needs their room.
        sweep_after_idle: None,
        ..fx.config()
    })
    .expect("opens");
    let mut kept = Vec::new();
    let err = loop {
        let event = fx.event("A", Priority::Medium);
        match outbox.enqueue(&event).wait() {
            Ok(()) => kept.push(event.event_id.to_string()),
            Err(e) => break e,
        }
        assert!(kept.len() < 100, "quota never reached");
    };
    assert!(
        matches!(
            err,
            Error::QueueFull {
                quota_bytes: 1_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().starts_with("event queue is full"));
    assert_eq!(queued_ids(&outbox), kept);
    let stats = outbox.stats(Page::first(0)).expect("stats");
    assert!(stats.bytes <= 1_000);
    assert_eq!(stats.rejected_full, 1);
    let full_bytes = stats.bytes;
    // Delivering frees room again.
    let seqs = outbox
        .claim(100)
        .expect("claim")
        .events
        .iter()
        .map(|e| e.seq)
        .collect();
    outbox.ack(seqs).wait().expect("ack");
    let stats = outbox.stats(Page::first(0)).expect("stats");
    assert_eq!(
        (stats.queue_size, stats.awaiting_deletion),
        (0, kept.len() as u64)
    );
    // The delivered rows still take their room until deleted, and are deleted to make room.
    assert_eq!(stats.bytes, full_bytes);
    outbox
        .enqueue(&fx.event("A", Priority::Medium))
        .wait()
        .expect("room again");
    let stats = outbox.stats(Page::first(0)).expect("stats");
    assert_eq!((stats.queue_size, stats.awaiting_deletion), (1, 0));
    assert_eq!(stats.rejected_full, 1);
}

#[test]
fn delivered_rows_are_deleted_once_the_writer_is_idle() {
    let fx = Fixture::new();
    let outbox = fx.open();
    let events: Vec<_> = (0..2_500)
        .map(|i| fx.event(&format!("K{}", i % 7), Priority::High))
        .collect();
    outbox
        .write(move |tx| {
            for event in &events {
                tx.enqueue(event)?;
            }
            Ok::<_, Error>(())
        })
        .wait()
        .expect("durable");
    // Acknowledged out of order and in pieces, as delivery reports come.
    let mut seqs: Vec<i64> = outbox
        .claim(3_000)
        .expect("claim")
        .events
        .iter()
        .map(|e| e.seq)
        .collect();
    seqs.reverse();
    for chunk in seqs.chunks(300) {
        outbox.ack(chunk.to_vec()).wait().expect("ack");
    }
    let stats = outbox.stats(Page::first(10)).expect("stats");
    assert_eq!(stats.queue_size, 0);
    assert!(stats.events.is_empty());
    assert_eq!(stats.oldest_event, None);
    await_swept(&outbox);
    let rows: i64 = rusqlite::Connection::open(fx.db_path())
        .expect("open")
        .query_row("SELECT COUNT(*) FROM outbox_events", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows, 0);
    assert_eq!(outbox.stats(Page::first(0)).expect("stats").bytes, 0);
}

/// Polls the stats until delivered rows are all deleted (bounded).
fn await_swept(outbox: &Outbox) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while outbox
        .stats(Page::first(0))
        .expect("stats")
        .awaiting_deletion
        > 0
    {
        assert!(std::time::Instant::now() < deadline, "rows never deleted");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn delivered_rows_wait_while_a_backlog_drains() {
    let fx = Fixture::new();
    let outbox = fx.open();
    fx.queue(&outbox, 10, Priority::Medium);
    // A full window: a backlog is draining.
    let first = outbox.claim(5).expect("claim");
    let seqs: Vec<i64> = first.events.iter().map(|e| e.seq).collect();
    outbox.ack(seqs[..4].to_vec()).wait().expect("ack");
    // Twenty-five idle periods later, nothing has been deleted behind the drain's back.
    std::thread::sleep(DEFAULT_SWEEP_AFTER_IDLE * 25);
    assert_eq!(
        outbox
            .stats(Page::first(0))
            .expect("stats")
            .awaiting_deletion,
        4
    );
    // The window not filled: the backlog is drained, and the writer sweeps.
    let rest = outbox.claim(20).expect("claim");
    assert_eq!(rest.events.len(), 5);
    let mut last: Vec<i64> = rest.events.iter().map(|e| e.seq).collect();
    last.push(seqs[4]);
    outbox.ack(last).wait().expect("ack");
    await_swept(&outbox);
}

/// An outbox whose delivered rows are deleted only on demand or for the quota, so their count
/// is known, with `n` events of keys K0, K1… queued.
fn without_idle_sweep(fx: &Fixture, n: usize, priority: Priority) -> Outbox {
    let outbox = Outbox::open(OutboxConfig {
        sweep_after_idle: None,
        ..fx.config()
    })
    .expect("opens");
    fx.queue(&outbox, n, priority);
    outbox
}

#[test]
fn an_ack_behind_a_clear_in_the_same_commit_counts_nothing() {
    let fx = Fixture::new();
    let outbox = without_idle_sweep(&fx, 4, Priority::High);
    let seqs: Vec<i64> = outbox
        .claim(4)
        .expect("claim")
        .events
        .iter()
        .map(|e| e.seq)
        .collect();
    // Submitted together, the two usually share one transaction: the ack runs after the clear
    // has deleted the rows its claim saw.
    let cleared = outbox.clear("admin".into(), None);
    let acked = outbox.ack(seqs);
    assert_eq!(cleared.wait().expect("clear"), 4);
    assert_eq!(acked.wait().expect("ack"), 0);
    let stats = outbox.stats(Page::first(0)).expect("stats");
    // Only the clear's own alert is queued; nothing is counted as delivered.
    assert_eq!((stats.queue_size, stats.awaiting_deletion), (1, 0));
    assert_eq!(stats.by_priority.high, 0);
}

#[test]
fn delivered_rows_are_deleted_under_a_steady_load_too() {
    let fx = Fixture::new();
    // The writer is never idle long enough: only the sweep under load can delete.
    let outbox = Outbox::open(OutboxConfig {
        sweep_after_idle: Some(Duration::from_secs(3_600)),
        ..fx.config()
    })
    .expect("opens");
    fx.queue(&outbox, 50, Priority::Low);
    let seqs = outbox
        .claim(100)
        .expect("claim")
        .events
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(outbox.ack(seqs).wait().expect("ack"), 50);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut load = 0;
    while outbox
        .stats(Page::first(0))
        .expect("stats")
        .awaiting_deletion
        > 0
    {
        assert!(std::time::Instant::now() < deadline, "rows never deleted");
        outbox
            .enqueue(&fx.event("load", Priority::Low))
            .wait()
            .expect("durable");
        load += 1;
    }
    assert_eq!(
        outbox.stats(Page::first(0)).expect("stats").queue_size,
        load
    );
}

/// Submits a write that signals when it runs and then holds the writer until released.
fn hold_writer(outbox: &Outbox) -> (std::sync::mpsc::Receiver<()>, std::sync::mpsc::Sender<()>) {
    let (started_tx, started) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let _held = outbox.write(move |_tx| {
        let _ = started_tx.send(());
        let _ = release_rx.recv();
        Ok::<_, Error>(())
    });
    (started, release)
}

#[test]
fn a_claim_made_while_a_clear_is_uncommitted_is_not_trusted_by_its_ack() {
    let fx = Fixture::new();
    let outbox = without_idle_sweep(&fx, 3, Priority::High);
    // One batch, held open twice: [hold 1, clear, hold 2, …].
    let (started_1, release_1) = hold_writer(&outbox);
    started_1.recv().expect("first hold runs");
    let cleared = outbox.clear("admin".into(), None);
    let (started_2, release_2) = hold_writer(&outbox);
    release_1.send(()).expect("release");
    started_2.recv().expect("second hold runs, after the clear");
    // The clear has deleted every row but not committed: a claim still sees them.
    let seqs: Vec<i64> = outbox
        .claim(10)
        .expect("claim")
        .events
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs.len(), 3);
    // Its ack joins the same batch, after the clear.
    let acked = outbox.ack(seqs);
    release_2.send(()).expect("release");
    assert_eq!(cleared.wait().expect("clear"), 3);
    assert_eq!(acked.wait().expect("ack"), 0);
    let stats = outbox.stats(Page::first(0)).expect("stats");
    assert_eq!((stats.queue_size, stats.awaiting_deletion), (1, 0));
    assert_eq!(stats.by_priority.high, 0);
}

#[test]
fn delivered_events_are_not_claimed_again_after_a_restart() {
    let fx = Fixture::new();
    let outbox = without_idle_sweep(&fx, 6, Priority::Low);
    let claim = outbox.claim(6).expect("claim");
    // Two runs with gaps: 1–2 and 4–5 delivered, 3 and 6 not.
    let seqs: Vec<i64> = claim.events.iter().map(|e| e.seq).collect();
    let delivered = vec![seqs[0], seqs[1], seqs[3], seqs[4]];
    assert_eq!(outbox.ack(delivered).wait().expect("ack"), 4);
    drop(outbox);
    let outbox = without_idle_sweep(&fx, 0, Priority::Low);
    let again: Vec<i64> = outbox
        .claim(10)
        .expect("claim")
        .events
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(again, vec![seqs[2], seqs[5]]);
    let stats = outbox.stats(Page::first(10)).expect("stats");
    assert_eq!((stats.queue_size, stats.awaiting_deletion), (2, 4));
    let listed: Vec<i64> = stats.events.iter().map(|e| e.seq).collect();
    assert_eq!(listed, vec![seqs[2], seqs[5]]);
    // A connection of its own (the testkit's) tells the same queued rows apart.
    let outside: Vec<String> = casewire_testkit::queued_events(&fx.db_path())
        .iter()
        .map(|e| e.event_id.to_string())
        .collect();
    assert_eq!(
        outside,
        vec![
            claim.events[2].event_id.clone(),
            claim.events[5].event_id.clone()
        ]
    );
}

#[test]
fn an_in_memory_outbox_works_without_a_file() {
    let fx = Fixture::new();
    let outbox = Outbox::open(OutboxConfig {
        clock: fx.clock.clone(),
        ..OutboxConfig::memory()
    })
    .expect("opens");
    let event = fx.event("A", Priority::High);
    outbox.enqueue(&event).wait().expect("committed");
    let claim = outbox.claim(10).expect("claim");
    assert_eq!(claim.events[0].event_id, event.event_id.as_str());
    outbox.ack(vec![claim.events[0].seq]).wait().expect("ack");
    assert_eq!(outbox.stats(Page::first(0)).expect("stats").queue_size, 0);
    assert_eq!(std::fs::read_dir(fx.dir.path()).expect("dir").count(), 0);
}

#[test]
fn a_second_process_cannot_open_the_same_outbox() {
    let fx = Fixture::new();
    let _first = fx.open();
    let err = Outbox::open(fx.config()).expect_err("locked");
    assert!(matches!(err, Error::Locked(_)), "{err}");
}

#[test]
fn a_database_from_a_newer_version_is_refused_not_reset() {
    let fx = Fixture::new();
    drop(fx.open());
    let conn = rusqlite::Connection::open(fx.db_path()).expect("open");
    conn.pragma_update(None, "user_version", 99).expect("bump");
    drop(conn);
    let err = Outbox::open(fx.config()).expect_err("refused");
    assert!(matches!(err, Error::NewerSchema), "{err}");
    assert!(fx.db_path().exists());
}

#[test]
fn writes_wake_subscribers_only_once_committed() {
    let fx = Fixture::new();
    let outbox = fx.open();
    let mut rx = outbox.subscribe();
    let before = *rx.borrow_and_update();
    let mut bad = fx.event("B", Priority::Medium);
    bad.data.insert("caseId".into(), json!(7));
    let _ = outbox.enqueue(&bad).wait();
    assert!(!rx.has_changed().expect("open"));
    outbox
        .enqueue(&fx.event("A", Priority::Medium))
        .wait()
        .expect("durable");
    assert!(rx.has_changed().expect("open"));
    assert_eq!(*rx.borrow_and_update(), before + 1);
}

#[test]
fn events_carry_the_data_given() {
    let fx = Fixture::new();
    let outbox = fx.open();
    let event = casewire_events::Event::new(
        EventType::EvidenceUploaded,
        data(json!({
            "evidenceId": "e1", "caseId": "CASE-2024-001",
            "wallet": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "filename": "t.png", "storageHash": "ab", "fileSize": 10
        })),
        Default::default(),
        casewire_outbox::Clock::now(&*fx.clock),
        &mut rand::rng(),
    );
    outbox.enqueue(&event).wait().expect("durable");
    let claimed = &outbox.claim(1).expect("claim").events[0];
    assert_eq!(claimed.payload, event.to_json());
    assert_eq!(claimed.partition_key, "CASE-2024-001");
}

#[test]
fn closing_commits_every_earlier_write_empties_the_wal_and_refuses_later_ones() {
    let fx = Fixture::new();
    let outbox = std::sync::Arc::new(fx.open());
    // Writes submitted from other threads before the close, not yet waited for.
    let pending: Vec<_> = (0..64)
        .map(|i| outbox.enqueue(&fx.event(&format!("K{i}"), Priority::High)))
        .collect();
    outbox.close();
    for write in pending {
        write
            .wait()
            .expect("a write submitted before the close is committed");
    }
    let wal = std::path::PathBuf::from(format!("{}-wal", fx.db_path().display()));
    assert_eq!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0),
        0,
        "the WAL is checkpointed into the database"
    );
    let refused = outbox
        .enqueue(&fx.event("late", Priority::High))
        .wait()
        .expect_err("a write after the close is refused");
    assert!(matches!(refused, Error::WriterStopped), "{refused}");
    // Reads still answer, and closing twice is harmless.
    assert_eq!(outbox.stats(Page::first(0)).expect("stats").queue_size, 64);
    outbox.close();
    drop(outbox);
    let reopened = fx.open();
    assert_eq!(
        reopened.open_report().loaded,
        64,
        "nothing refused was written"
    );
}
