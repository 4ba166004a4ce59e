//! Group commit: concurrent callers share commits, and fail alone.

use std::sync::{Arc, Barrier};

use casewire_events::Priority;
use casewire_outbox::{Error, Outbox, Page, WriteTx};

use crate::support::{Fixture, queued_ids};

fn create_records(tx: &WriteTx<'_>) -> Result<(), Error> {
    tx.execute_batch("CREATE TABLE IF NOT EXISTS records (case_id TEXT PRIMARY KEY)")?;
    Ok(())
}

#[test]
fn a_failing_caller_rolls_back_alone_and_the_others_commit() {
    let fx = Fixture::new();
    let outbox = Arc::new(fx.open());
    outbox.write(create_records).wait().expect("table");
    let fx = Arc::new(fx);
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let (outbox, fx, barrier) = (outbox.clone(), fx.clone(), barrier.clone());
            std::thread::spawn(move || {
                let event = fx.event(&format!("CASE-{i}"), Priority::Medium);
                let id = event.event_id.to_string();
                barrier.wait();
                let result = outbox
                    .write(move |tx| {
                        tx.execute(
                            "INSERT INTO records (case_id) VALUES (?1)",
                            [format!("CASE-{i}")],
                        )?;
                        tx.enqueue(&event)?;
                        if i % 4 == 0 {
                            // The record and the event above must vanish with this failure.
                            return Err(Error::WriterStopped);
                        }
                        Ok(())
                    })
                    .wait();
                (i, id, result.is_ok())
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    for (i, _, ok) in &results {
        assert_eq!(*ok, i % 4 != 0, "caller {i}");
    }
    let queued = queued_ids(&outbox);
    let expected: std::collections::HashSet<_> = results
        .iter()
        .filter(|r| r.2)
        .map(|r| r.1.clone())
        .collect();
    assert_eq!(
        queued
            .iter()
            .cloned()
            .collect::<std::collections::HashSet<_>>(),
        expected
    );
    let records: i64 = outbox
        .write(|tx| Ok::<_, Error>(tx.query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))?))
        .wait()
        .expect("count");
    assert_eq!(records, 12, "records and events committed together");
}

#[test]
fn a_panicking_caller_is_rolled_back_and_the_writer_lives_on() {
    let fx = Fixture::new();
    let outbox = fx.open();
    let event = fx.event("A", Priority::Medium);
    let err = outbox
        .write::<(), Error, _>(move |tx| {
            tx.enqueue(&event)?;
            panic!("caller bug");
        })
        .wait()
        .expect_err("panicked");
    assert!(matches!(err, Error::CallerPanicked));
    assert!(queued_ids(&outbox).is_empty());
    outbox
        .enqueue(&fx.event("B", Priority::Medium))
        .wait()
        .expect("writer still works");
}

#[test]
fn concurrent_writers_all_land_exactly_once() {
    let fx = Arc::new(Fixture::new());
    let outbox = Arc::new(fx.open());
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let (outbox, fx) = (outbox.clone(), fx.clone());
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| {
                        let event = fx.event(&format!("T{t}"), Priority::Medium);
                        outbox.enqueue(&event).wait().expect("durable");
                        assert!(i >= 0);
                        event.event_id.to_string()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let per_thread: Vec<Vec<String>> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let queued = queued_ids(&outbox);
    assert_eq!(queued.len(), 800);
    // Each writer's events are in its own commit order.
    for ids in per_thread {
        let positions: Vec<_> = ids
            .iter()
            .map(|id| queued.iter().position(|q| q == id).expect("queued"))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
    }
    assert_eq!(outbox.stats(Page::first(0)).expect("stats").queue_size, 800);
}

#[tokio::test]
async fn writes_can_be_awaited_from_async_code() {
    let fx = Fixture::new();
    let outbox = fx.open();
    outbox
        .enqueue(&fx.event("A", Priority::Medium))
        .await
        .expect("durable");
    let n = outbox
        .write(|tx| {
            Ok::<i64, Error>(tx.query_row("SELECT COUNT(*) FROM outbox_events", [], |r| r.get(0))?)
        })
        .await
        .expect("read in write");
    assert_eq!(n, 1);
}

#[test]
fn an_outbox_dropped_with_writes_pending_commits_them_first() {
    let fx = Fixture::new();
    let outbox = fx.open();
    let pending: Vec<_> = (0..100)
        .map(|i| outbox.enqueue(&fx.event(&format!("K{i}"), Priority::Low)))
        .collect();
    drop(outbox);
    for p in pending {
        p.wait().expect("committed before the writer stopped");
    }
    assert_eq!(queued_ids(&fx.open()).len(), 100);
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Outbox>();
}
