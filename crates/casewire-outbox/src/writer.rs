//! The single writer: one thread owns the write connection and commits the work of every caller
//! that is waiting at the time in one transaction (group commit).
//!
//! Each caller's closure runs in a savepoint of the shared transaction, so a caller that fails
//! rolls back alone. The transaction commits (one fsync under `synchronous=FULL`), and only then
//! does each caller receive its result: nothing is reported done before it is durable. If the
//! commit itself fails every caller of the batch gets the error, and none of their work exists.

use std::cell::{Cell, RefCell};
use std::future::{Future, IntoFuture};
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use rusqlite::Connection;

use crate::{Error, Shared};

/// What a job hands back once its closure has run: whether its savepoint should be kept, and a
/// continuation that reports to the caller once the batch's commit has succeeded or failed.
pub(crate) type Completion = Box<dyn FnOnce(Result<(), Arc<rusqlite::Error>>) + Send>;
/// A job's work: run with the transaction, or with `None` when the batch failed before reaching
/// it.
type Work = Box<dyn FnOnce(Option<&WriteTx<'_>>) -> (bool, Completion) + Send>;

/// A caller's work and whether it needs a savepoint of its own.
pub(crate) struct Job {
    work: Work,
    /// `false` only for work that is one data-changing statement (or whose other changes keep
    /// savepoints of their own), which SQLite already applies all or nothing; sparing the
    /// savepoint saves two statements per event.
    savepoint: bool,
}

/// Most jobs committed together; a bound on how long one commit holds the write lock.
const MAX_BATCH: usize = 512;

/// Delivery outcomes recorded since the outbox was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryTotals {
    /// Events acknowledged as delivered (removed from the queue).
    pub published: u64,
    /// Counted failed attempts (retriable and permanent).
    pub failed: u64,
    /// Events moved to the dead letters.
    pub dead_lettered: u64,
    /// Attempts while no broker was reachable (not counted against `MAX_RETRIES`).
    pub unreachable: u64,
}

impl DeliveryTotals {
    pub(crate) fn add(&mut self, other: DeliveryTotals) {
        self.published += other.published;
        self.failed += other.failed;
        self.dead_lettered += other.dead_lettered;
        self.unreachable += other.unreachable;
    }
}

impl WriteTx<'_> {
    pub(crate) fn count(&self, f: impl FnOnce(&mut DeliveryTotals)) {
        let mut tally = self.tally.get();
        f(&mut tally);
        self.tally.set(tally);
    }
}

/// A caller's view of the shared transaction: run any SQL on it (it derefs to a
/// [`rusqlite::Connection`]) and enqueue events with [`WriteTx::enqueue`]. Everything done through
/// it commits together with the events, or not at all.
pub struct WriteTx<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) shared: &'a Shared,
    /// Events enqueued by this caller, to wake the relay once they are committed.
    pub(crate) enqueued: Cell<u64>,
    /// Order keys to take out of the in-flight set once this work is committed.
    pub(crate) released: RefCell<Release>,
    /// This work makes events claimable again that may lie behind the claim cursor.
    pub(crate) rewinds: Cell<bool>,
    /// Delivery outcomes this work records, counted once it is committed.
    pub(crate) tally: Cell<DeliveryTotals>,
    /// Delivered bitmaps this work changed: the claims' copy re-reads them after the commit.
    pub(crate) delivered_touched: RefCell<crate::acked::Touched>,
}

/// What a committed job takes out of the in-flight set.
#[derive(Default)]
pub(crate) enum Release {
    #[default]
    Nothing,
    Some(Vec<i64>),
    All,
}

impl Release {
    pub(crate) fn add(&mut self, seq: i64) {
        match self {
            Release::Nothing => *self = Release::Some(vec![seq]),
            Release::Some(seqs) => seqs.push(seq),
            Release::All => {}
        }
    }
}

impl<'a> WriteTx<'a> {
    fn new(conn: &'a Connection, shared: &'a Shared) -> WriteTx<'a> {
        WriteTx {
            conn,
            shared,
            enqueued: Cell::new(0),
            released: RefCell::new(Release::Nothing),
            rewinds: Cell::new(false),
            tally: Cell::new(DeliveryTotals::default()),
            delivered_touched: RefCell::new(crate::acked::Touched::Nothing),
        }
    }
}

impl Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// The result of a write that is not known until its batch commits. Wait for it with
/// [`Pending::wait`] from a thread, or `.await` it from async code.
#[must_use = "a write's result says whether it is durable"]
pub struct Pending<T, E = Error> {
    rx: oneshot::Receiver<Result<T, E>>,
}

impl<T, E: From<Error>> Pending<T, E> {
    pub(crate) fn from_receiver(rx: oneshot::Receiver<Result<T, E>>) -> Pending<T, E> {
        Pending { rx }
    }

    /// Blocks the current thread until the write is durable or has failed.
    /// Works anywhere, including on an async runtime's thread (where it holds that thread for
    /// the length of one commit); async code should prefer `.await`.
    pub fn wait(self) -> Result<T, E> {
        block_on(self.into_future())
    }
}

/// Wakes a parked thread.
struct ThreadWaker(std::thread::Thread);

impl std::task::Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on the current thread by parking between polls. Unlike tokio's
/// `blocking_recv`, it does not refuse to run inside a runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = std::task::Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

impl<T, E: From<Error>> IntoFuture for Pending<T, E> {
    type Output = Result<T, E>;
    type IntoFuture = PendingFuture<T, E>;

    fn into_future(self) -> Self::IntoFuture {
        PendingFuture { rx: self.rx }
    }
}

/// The future of a [`Pending`] write.
pub struct PendingFuture<T, E> {
    rx: oneshot::Receiver<Result<T, E>>,
}

impl<T, E: From<Error>> Future for PendingFuture<T, E> {
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(Error::WriterStopped.into())))
    }
}

/// Wraps a caller's closure as a job and sends it to the writer.
pub(crate) fn submit<T, E, F>(jobs: &Sender<Job>, f: F) -> Pending<T, E>
where
    T: Send + 'static,
    E: From<Error> + Send + 'static,
    F: FnOnce(&WriteTx<'_>) -> Result<T, E> + Send + 'static,
{
    submit_job(jobs, f, true)
}

/// Like [`submit`], for work whose only change is a single statement (see [`Job::savepoint`]).
pub(crate) fn submit_single_statement<T, E, F>(jobs: &Sender<Job>, f: F) -> Pending<T, E>
where
    T: Send + 'static,
    E: From<Error> + Send + 'static,
    F: FnOnce(&WriteTx<'_>) -> Result<T, E> + Send + 'static,
{
    submit_job(jobs, f, false)
}

fn submit_job<T, E, F>(jobs: &Sender<Job>, f: F, savepoint: bool) -> Pending<T, E>
where
    T: Send + 'static,
    E: From<Error> + Send + 'static,
    F: FnOnce(&WriteTx<'_>) -> Result<T, E> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let work: Work = Box::new(move |wtx| {
        let result = wtx.map(|wtx| match catch_unwind(AssertUnwindSafe(|| f(wtx))) {
            Ok(result) => result,
            Err(_) => Err(Error::CallerPanicked.into()),
        });
        let keep = matches!(result, Some(Ok(_)));
        let completion: Completion = Box::new(move |commit| {
            let outcome = match (commit, result) {
                (Ok(()), Some(result)) => result,
                (Err(e), _) => Err(Error::Commit(e).into()),
                (Ok(()), None) => Err(Error::WriterStopped.into()),
            };
            // The caller may have stopped waiting; its work is committed either way.
            let _ = tx.send(outcome);
        });
        (keep, completion)
    });
    if let Err(returned) = jobs.send(Job { work, savepoint }) {
        drop(returned);
    }
    Pending { rx }
}

/// The writer's own work: deleting up to a chunk of delivered rows (see `acked.rs`). `failed`
/// learns whether it failed.
fn sweep_job(failed: Arc<AtomicBool>) -> Job {
    let work: Work = Box::new(move |wtx| {
        let keep = match wtx.map(|wtx| wtx.sweep(crate::acked::SWEEP_CHUNK)) {
            Some(Ok(_)) => true,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "could not delete delivered events' rows; will try again");
                failed.store(true, Ordering::Relaxed);
                false
            }
            None => false,
        };
        let completion: Completion = Box::new(|_| {});
        (keep, completion)
    });
    Job {
        work,
        savepoint: true,
    }
}

/// What the writer may sweep.
enum Sweep {
    /// No delivered rows (or sweeping is off, or paused after an error): wait for jobs only.
    Nothing,
    /// Delivered rows wait, but a backlog is being drained: look again after a while.
    Later(Duration),
    /// Delivered rows wait and nothing is draining: sweep after this long idle.
    After(Duration),
}

fn sweep_due(shared: &Shared, paused_until: Instant) -> Sweep {
    let Some(idle) = shared.sweep_after_idle else {
        return Sweep::Nothing;
    };
    let in_flight = shared.in_flight();
    if in_flight.delivered.is_empty() {
        Sweep::Nothing
    } else if Instant::now() < paused_until || (in_flight.draining && !in_flight.events.is_empty())
    {
        Sweep::Later(idle)
    } else {
        Sweep::After(idle)
    }
}

/// Under a steady load the writer is never idle for long: it then sweeps a chunk this often,
/// so delivered rows do not pile up to the quota.
const SWEEP_UNDER_LOAD: Duration = Duration::from_millis(100);

/// After a sweep fails, the writer waits this long before the next.
const SWEEP_PAUSE: Duration = Duration::from_secs(1);

/// The writer thread's loop: take every waiting job, run them in one transaction, commit, report.
/// With nothing to do, or every [`SWEEP_UNDER_LOAD`] when not draining, it deletes delivered
/// rows.
pub(crate) fn run(mut conn: Connection, shared: Arc<Shared>, jobs: Receiver<Job>) {
    // How many callers shared the last commit: the writer expects as many again.
    let mut expected = 1;
    let mut last_sweep = Instant::now();
    let mut paused_until = Instant::now();
    let sweep_failed = Arc::new(AtomicBool::new(false));
    loop {
        let sweep = || Ok(sweep_job(sweep_failed.clone()));
        // A drain's end shows only in the claims, which write nothing: while delivered rows
        // wait, the writer looks again every idle period rather than only when a job comes.
        let next = match sweep_due(&shared, paused_until) {
            Sweep::Nothing => jobs.recv().map_err(|_| ()),
            Sweep::Later(idle) => match jobs.recv_timeout(idle) {
                Err(RecvTimeoutError::Timeout) => continue,
                other => other.map_err(|_| ()),
            },
            Sweep::After(_) if last_sweep.elapsed() >= SWEEP_UNDER_LOAD => {
                last_sweep = Instant::now();
                sweep()
            }
            Sweep::After(idle) => match jobs.recv_timeout(idle) {
                Err(RecvTimeoutError::Timeout) => {
                    last_sweep = Instant::now();
                    sweep()
                }
                other => other.map_err(|_| ()),
            },
        };
        let Ok(first) = next else { break };
        let (completions, enqueued, result) =
            commit_batch(&mut conn, &shared, first, &jobs, expected);
        if sweep_failed.swap(false, Ordering::Relaxed) {
            paused_until = Instant::now() + SWEEP_PAUSE;
        }
        expected = completions.len();
        let result = result.map_err(Arc::new);
        if let Err(e) = &result {
            tracing::error!(error = %e, "outbox commit failed; the batch's callers were told");
        } else {
            shared
                .commits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if enqueued > 0 {
                shared.committed.send_modify(|n| *n += enqueued);
            }
        }
        for completion in completions {
            completion(result.clone());
        }
        if shared.closing.load(Ordering::SeqCst) {
            break;
        }
    }
    // Whoever opens the file next (this app updated, a copy of the file) finds everything in
    // the database itself, with no WAL to replay.
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!(error = %e, "the outbox's WAL was not checkpointed as the writer stopped");
    }
}

type BatchOutcome = (Vec<Completion>, u64, Result<(), rusqlite::Error>);

/// How long the writer waits for the callers of the previous commit to come back before it
/// commits without them. Short next to an fsync; only spent when the last commit was shared.
const GATHER: Duration = Duration::from_micros(200);

/// Runs `first` and every job that arrives while the transaction is open (up to [`MAX_BATCH`]),
/// then commits. Taking jobs as they arrive, rather than only those waiting at the start, lets
/// callers woken by the previous commit join this one; while fewer than `expected` (the size of
/// the previous batch) have joined, the writer waits up to [`GATHER`] for each of them.
fn commit_batch(
    conn: &mut Connection,
    shared: &Shared,
    first: Job,
    incoming: &Receiver<Job>,
    expected: usize,
) -> BatchOutcome {
    let mut completions = Vec::new();
    let mut released = Vec::new();
    let mut rewinds = false;
    let mut tally = DeliveryTotals::default();
    let mut touched = crate::acked::Touched::Nothing;
    let removals_before = shared.removals.load(Ordering::SeqCst);
    let mut next = Some(first);
    let mut enqueued = 0;
    let result = (|| {
        let tx = conn.transaction()?;
        while let Some(job) = next.take() {
            // Savepoints by cached statements: rusqlite's `Savepoint` parses its SQL every time.
            if job.savepoint {
                tx.prepare_cached("SAVEPOINT job")?.execute([])?;
            }
            let wtx = WriteTx::new(&tx, shared);
            let (keep, completion) = (job.work)(Some(&wtx));
            let count = wtx.enqueued.get();
            let release = wtx.released.take();
            let rewind = wtx.rewinds.get();
            let counted = wtx.tally.get();
            // Even work rolled back may have changed them (a job without a savepoint that
            // failed part way); reloading after the commit reads what is true either way.
            touched.merge(wtx.delivered_touched.take());
            drop(wtx);
            completions.push(completion);
            // SQLite rolls the whole transaction back by itself on some errors (a full disk,
            // an I/O error): then nothing of this batch exists, and running on would commit
            // the next jobs one statement at a time.
            if tx.is_autocommit() {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                    Some("SQLite rolled the transaction back after an error".into()),
                ));
            }
            if keep {
                enqueued += count;
                released.push(release);
                rewinds |= rewind;
                tally.add(counted);
            } else if job.savepoint {
                tx.prepare_cached("ROLLBACK TO job")?.execute([])?;
            }
            if job.savepoint {
                tx.prepare_cached("RELEASE job")?.execute([])?;
            }
            if completions.len() < MAX_BATCH {
                next = incoming.try_recv().ok();
                if next.is_none() && completions.len() < expected {
                    next = incoming.recv_timeout(GATHER).ok();
                }
            }
        }
        let removed = shared.removals.load(Ordering::SeqCst) != removals_before;
        let releasing = rewinds
            || removed
            || !touched.is_nothing()
            || released.iter().any(|r| !matches!(r, Release::Nothing));
        if !releasing {
            return tx.commit();
        }
        // Commit and release under the in-flight lock, so no claim sees the committed outcome
        // (a failed event due again, a cleared queue) while its event still looks in flight,
        // and a delivered event is always either in flight or in the delivered ranges.
        let mut in_flight = shared.in_flight();
        tx.commit()?;
        // Claims made from now on see this commit's deletions.
        in_flight.removals_committed = shared.removals.load(Ordering::SeqCst);
        if let Err(e) = in_flight.delivered.reload(conn, &touched) {
            // The releases below still happen: an event acknowledged now might be claimed and
            // sent again (with its eventId, as after a crash), but none is held back for good.
            // The next sweep that finds its copy wrong re-reads every mark.
            tracing::error!(error = %e, "could not read the delivered marks back");
        }
        if rewinds {
            in_flight.cursor = None;
        }
        for release in released.drain(..) {
            match release {
                Release::Nothing => {}
                Release::Some(seqs) => seqs.iter().for_each(|seq| {
                    in_flight.events.remove(seq);
                }),
                Release::All => in_flight.events.clear(),
            }
        }
        Ok(())
    })();
    // A job the batch took but never ran learns of the failure too.
    completions.extend(next.map(|job| (job.work)(None).1));
    if result.is_err() {
        enqueued = 0;
    } else {
        crate::lock(&shared.totals).add(tally);
    }
    (completions, enqueued, result)
}
