//! The Casewire relay: drains the outbox to the Kafka topic whenever a broker is reachable.
//!
//! # Design
//! - **The backlog stays in SQLite.** The relay claims at most `window` events from the outbox,
//!   hands them to librdkafka (idempotent, `acks=all`, lz4), and claims more only as delivery
//!   reports come back. librdkafka never holds more than a window.
//! - **Reading overlaps sending.** A slice (at most 1,000 events) is read from the outbox on a
//!   blocking thread; while the loop hands one full slice to librdkafka, the next is read. The
//!   loop's own thread, which every event and every report goes through, does no SQLite reads
//!   (and, with an encrypted database, no page decryption). A slice whose sending became
//!   impossible while it was read (queue full, producer being replaced, an earlier event of
//!   its slice refused, shutdown) goes back to the outbox unsent and uncounted.
//! - **Acknowledged only when Kafka has it.** An event is acknowledged in the outbox only after
//!   its delivery report succeeded; acknowledgements are batched (one outbox write per burst of
//!   reports). A crash between Kafka's acknowledgement and the outbox's resends the event after
//!   restart with the same `eventId`: the only way a duplicate arises.
//! - **Wakes on commit.** The relay waits on the outbox's commit counter, so with a healthy broker
//!   an event is on its way within a millisecond of its commit, not on a timer tick.
//! - **Reachability from librdkafka's own signals.** `AllBrokersDown` errors, broker states in
//!   librdkafka's statistics (every 500 ms), successful deliveries and metadata probes. While no
//!   broker is reachable the relay claims nothing, probes every `probe_interval` with a metadata
//!   request, and reports failures as `Unreachable` so they do not count toward `MAX_RETRIES`.
//! - **Errors classified.** Permanent refusals (message too large, authorisation, unknown topic)
//!   dead-letter at once; passing trouble backs off per priority (see `classify.rs`). The outbox's
//!   claim order keeps a failed event's later events of the same key behind it, and only those.
//! - **Graceful shutdown.** Stop claiming, wait (bounded) for the reports of what is in flight,
//!   commit their acknowledgements; anything unreported stays queued for the next start.
#![deny(missing_docs)]

mod classify;
mod config;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use casewire_outbox::{BrokerStatus, Claim, ClaimedEvent, FailKind, FailOutcome, Failure, Outbox};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinHandle, JoinSet};

pub use config::{
    DEFAULT_CLIENT_ID, DEFAULT_TOPIC, RelayConfig, SETTINGS, SaslMechanism, Secret, Security,
    SecurityProtocol,
};

/// Everything that can go wrong starting or running the relay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The configuration is invalid; the message says which setting and why.
    #[error("invalid Kafka configuration: {0}")]
    Config(String),
    /// librdkafka refused to create the producer (often an unknown property).
    #[error("cannot create the Kafka producer: {0}")]
    Client(#[source] KafkaError),
    /// The outbox failed.
    #[error(transparent)]
    Outbox(#[from] casewire_outbox::Error),
}

impl RelayError {
    /// Whether trying again later may succeed: storage trouble may pass, a bad configuration
    /// will not.
    pub fn is_retriable(&self) -> bool {
        matches!(self, RelayError::Outbox(e) if !e.is_caller_error())
    }
}

/// Counters of what the relay has done since it started, for stats and metrics.
#[derive(Debug, Default)]
pub struct RelayCounters {
    /// Events Kafka acknowledged.
    pub published: AtomicU64,
    /// Failed deliveries that will be retried (counted or not).
    pub failed: AtomicU64,
    /// Events moved to the dead letters.
    pub dead_lettered: AtomicU64,
    /// Whether a broker is reachable now.
    pub reachable: AtomicBool,
    /// When Kafka last acknowledged an event, Unix ms (0: not since the start).
    pub last_delivery_ms: AtomicI64,
    /// The last error librdkafka or a delivery reported (authentication refused, a topic not
    /// authorised, …), cleared when a delivery succeeds. Never holds a secret: librdkafka's
    /// reasons name brokers and mechanisms, not passwords.
    pub last_error: std::sync::Mutex<Option<String>>,
    /// Why the cluster refuses this client, while it does (cleared by a delivery); watched by
    /// whoever raises the alert.
    pub refused: watch::Sender<Option<Refusal>>,
}

/// The cluster refuses this client, whatever the event: what an admin must fix in the settings
/// or the cluster. Nothing is dead-lettered for it and no attempt is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The SASL credentials were refused (a wrong password, an unknown user).
    Authentication,
    /// The broker's TLS certificate did not verify against the configured CA (or TLS failed).
    Certificate,
    /// The credentials were accepted but the cluster's ACLs do not let this client write.
    Authorization,
}

impl Refusal {
    /// The refusal a librdkafka error code means, if it means one.
    pub fn of(code: RDKafkaErrorCode) -> Option<Refusal> {
        use RDKafkaErrorCode as C;
        match code {
            C::Authentication | C::SaslAuthenticationFailed => Some(Refusal::Authentication),
            C::SSL => Some(Refusal::Certificate),
            C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed => Some(Refusal::Authorization),
            _ => None,
        }
    }

    /// Its name in stats, metrics and readiness: `authentication`, `certificate`,
    /// `authorization`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Authentication => "authentication",
            Refusal::Certificate => "certificate",
            Refusal::Authorization => "authorization",
        }
    }
}

impl RelayCounters {
    /// Why the cluster refuses this client, if it does now.
    pub fn refused(&self) -> Option<Refusal> {
        *self.refused.borrow()
    }

    fn set_refused(&self, refusal: Option<Refusal>) {
        self.refused.send_if_modified(|refused| {
            if *refused == refusal {
                return false;
            }
            match refusal {
                Some(r) => tracing::error!(
                    refusal = r.as_str(),
                    "Kafka refuses this client ({}): events wait here, no attempt is counted; correct the Kafka settings",
                    r.as_str()
                ),
                None => tracing::info!("Kafka accepts this client again"),
            }
            *refused = refusal;
            true
        });
    }

    /// The last error reported, if no delivery succeeded since.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    fn set_last_error(&self, reason: Option<String>) {
        *lock(&self.last_error) = reason;
    }
}

/// Most events claimed and handed to librdkafka between two looks at the delivery reports.
const CLAIM_SLICE: usize = 1_000;

/// One delivery report: the event's order key and how it went.
type Report = (i64, Result<(), KafkaError>);

/// librdkafka's callbacks: delivery reports go to the relay loop; errors and statistics update
/// reachability.
#[derive(Clone)]
struct RelayContext {
    reports: mpsc::UnboundedSender<Report>,
    counters: Arc<RelayCounters>,
    /// Wakes the relay loop when reachability changes.
    wake: watch::Sender<()>,
}

impl RelayContext {
    fn set_reachable(&self, up: bool) {
        if self.counters.reachable.swap(up, Ordering::SeqCst) != up {
            self.wake.send_replace(());
        }
    }
}

impl ClientContext for RelayContext {
    /// librdkafka's own log lines, one level down: a refused connection during an outage is
    /// expected (the relay reports the outage itself), not something an operator must act on.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical => {
                tracing::error!(target: "librdkafka", "{fac} {message}")
            }
            L::Error => tracing::warn!(target: "librdkafka", "{fac} {message}"),
            L::Warning => tracing::info!(target: "librdkafka", "{fac} {message}"),
            L::Notice | L::Info => tracing::debug!(target: "librdkafka", "{fac} {message}"),
            L::Debug => tracing::trace!(target: "librdkafka", "{fac} {message}"),
        }
    }

    fn stats(&self, statistics: Statistics) {
        let up = statistics
            .brokers
            .values()
            .any(|b| b.nodeid >= 0 && b.state == "UP");
        self.set_reachable(up);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        use RDKafkaErrorCode as C;
        let code = classify::code_of(&error);
        let outage = matches!(
            code,
            Some(
                C::AllBrokersDown
                    | C::BrokerTransportFailure
                    | C::Resolve
                    | C::MessageTimedOut
                    | C::OperationTimedOut
                    | C::RequestTimedOut
            )
        );
        if !outage {
            // An outage (nothing listening, no network) is told by reachability; anything else
            // (a refused authentication, a bad certificate) is what an admin needs to read.
            self.counters
                .set_last_error(Some(format!("{error}: {reason}")));
        }
        if let Some(refusal) = code.and_then(Refusal::of) {
            self.counters.set_refused(Some(refusal));
        }
        if code == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.set_reachable(false);
            tracing::warn!("Kafka unreachable: {reason}");
        } else {
            tracing::debug!(%error, "librdkafka: {reason}");
        }
    }
}

impl ProducerContext for RelayContext {
    type DeliveryOpaque = Box<i64>;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: Box<i64>) {
        let outcome = match result {
            Ok(_) => {
                self.set_reachable(true);
                Ok(())
            }
            Err((error, _)) => Err(error.clone()),
        };
        // The loop owns the receiver for as long as the producer lives.
        let _ = self.reports.send((*seq, outcome));
    }
}

/// The fields of an event document that its Kafka headers need, read without parsing `data`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeaderView<'a> {
    event_type: &'a str,
    timestamp: &'a str,
    #[serde(default, borrow)]
    metadata: Option<SourceView<'a>>,
}

#[derive(Deserialize)]
struct SourceView<'a> {
    #[serde(default, borrow)]
    source: Option<&'a str>,
}

fn headers(event: &ClaimedEvent) -> OwnedHeaders {
    let view: Option<HeaderView<'_>> = serde_json::from_slice(&event.payload).ok();
    let (event_type, time, source) = match &view {
        Some(v) => (
            v.event_type,
            v.timestamp,
            v.metadata
                .as_ref()
                .and_then(|m| m.source)
                .unwrap_or(casewire_events::DEFAULT_SOURCE),
        ),
        None => ("", "", casewire_events::DEFAULT_SOURCE),
    };
    let fields = [
        ("ce_specversion", "1.0"),
        ("ce_id", event.event_id.as_str()),
        ("ce_type", event_type),
        ("ce_source", source),
        ("ce_time", time),
        ("priority", event.priority.as_str()),
        ("content-type", "application/json"),
    ];
    fields
        .into_iter()
        .fold(OwnedHeaders::new_with_capacity(7), |h, (key, value)| {
            h.insert(Header {
                key,
                value: Some(value),
            })
        })
}

/// A running relay. Dropping it without [`Relay::shutdown`] stops the loop abruptly; events in
/// flight then stay queued and are sent again on the next start.
pub struct Relay {
    deliveries: tokio::sync::broadcast::Sender<Arc<[i64]>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<RelayCounters>,
}

impl Relay {
    /// Validates `config`, creates the producer and starts draining `outbox`. Must be called from
    /// inside a tokio runtime.
    pub fn start(outbox: Arc<Outbox>, config: RelayConfig) -> Result<Relay, RelayError> {
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let (wake, woken) = watch::channel(());
        let counters = Arc::new(RelayCounters::default());
        let context = RelayContext {
            reports: reports_tx,
            counters: counters.clone(),
            wake,
        };
        let producer = create_producer(&config, context.clone())?;
        outbox.set_broker_status(BrokerStatus {
            kafka_connected: false,
            kafka_available: true,
        });
        let (stop, stopped) = watch::channel(false);
        let (deliveries, _) = tokio::sync::broadcast::channel(1_024);
        let state = Loop {
            deliveries: deliveries.clone(),
            context,
            resetting: false,
            replace_at: Instant::now(),
            queue_full: false,
            sent: VecDeque::new(),
            outstanding: HashMap::new(),
            outbox,
            producer: Arc::new(producer),
            config,
            counters: counters.clone(),
            reports,
            woken,
            stopped,
            in_flight: 0,
            claiming: None,
            claim_wanted: true,
            next_due: None,
            refusals: 0,
            failing: Arc::default(),
            writes: JoinSet::new(),
            written: Arc::new(tokio::sync::Notify::new()),
            unwritten: Arc::default(),
            retry_writes_at: None,
            was_reachable: false,
            recovering: 0,
        };
        let task = tokio::spawn(state.run());
        Ok(Relay {
            deliveries,
            stop,
            task,
            counters,
        })
    }

    /// The order keys of events whose delivery Kafka has just acknowledged, one message per burst
    /// of reports, sent as the reports arrive (before the outbox acknowledgement commits). For
    /// latency measurement and monitoring; a slow subscriber misses bursts, never the relay.
    pub fn subscribe_deliveries(&self) -> tokio::sync::broadcast::Receiver<Arc<[i64]>> {
        self.deliveries.subscribe()
    }

    /// What the relay has done so far.
    pub fn counters(&self) -> &RelayCounters {
        &self.counters
    }

    /// The same counters, to keep reading after the relay is moved (into a lock, say).
    pub fn shared_counters(&self) -> Arc<RelayCounters> {
        self.counters.clone()
    }

    /// Stops claiming, waits (up to the configured shutdown timeout) for the delivery reports of
    /// events in flight, and commits their outcomes. Undelivered events stay queued.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "relay task failed");
        }
    }
}

/// Now, Unix ms, from the system clock: a delivery time shown to people, not a schedule.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Locks a mutex, recovering it from a panicked holder: the lists behind it stay valid.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Creates a producer, turning librdkafka's configuration complaints into clear errors.
fn create_producer(
    config: &RelayConfig,
    context: RelayContext,
) -> Result<ThreadedProducer<RelayContext>, RelayError> {
    config
        .client_config()?
        .create_with_context(context)
        .map_err(|e| match e {
            KafkaError::ClientConfig(_, ref description, ref key, _) => {
                RelayError::Config(format!("librdkafka property {key}: {description}"))
            }
            other => RelayError::Client(other),
        })
}

/// Delivery outcomes not yet recorded in the outbox.
#[derive(Default)]
struct Unwritten {
    acks: Vec<i64>,
    failures: Vec<Failure>,
}

impl Unwritten {
    fn is_empty(&self) -> bool {
        self.acks.is_empty() && self.failures.is_empty()
    }
}

/// How long the relay waits before writing outcomes again after an outbox write failed.
const REWRITE_AFTER: Duration = Duration::from_secs(1);

/// A slice being read from the outbox on a blocking thread. The relay loop reads the next slice
/// this way while it hands the previous one to librdkafka, so that reading (and, encrypted,
/// decrypting) the queue's pages is not on the thread every event goes through.
struct Claiming {
    /// How many events it may hand out.
    room: usize,
    /// [`Loop::refusals`] when it started: a refusal since may have held back a key this slice
    /// has later events of, and then the slice goes back unsent.
    refusals: u64,
    task: JoinHandle<Result<Claim, casewire_outbox::Error>>,
}

/// The claim's outcome, once it has one; never, when no claim is running.
async fn claimed(
    claiming: &mut Option<Claiming>,
) -> Result<Result<Claim, casewire_outbox::Error>, JoinError> {
    match claiming {
        Some(claiming) => (&mut claiming.task).await,
        None => std::future::pending().await,
    }
}

/// The relay loop's state.
struct Loop {
    deliveries: tokio::sync::broadcast::Sender<Arc<[i64]>>,
    /// A copy of the producer's context, for a replacement producer.
    context: RelayContext,
    /// The producer hit a fatal error: nothing is sent until its purged messages have reported
    /// and a new producer has replaced it.
    resetting: bool,
    /// Not before this is a new producer created (a failed creation waits a second).
    replace_at: Instant,
    /// librdkafka refused a message for a full queue: claim nothing until a report arrives.
    queue_full: bool,
    /// Events handed to librdkafka, oldest first, with when; reported ones are skipped lazily.
    sent: VecDeque<(Instant, i64)>,
    /// Events handed to librdkafka and not yet reported: order key → event id.
    outstanding: HashMap<i64, String>,
    outbox: Arc<Outbox>,
    producer: Arc<ThreadedProducer<RelayContext>>,
    config: RelayConfig,
    counters: Arc<RelayCounters>,
    reports: mpsc::UnboundedReceiver<Report>,
    woken: watch::Receiver<()>,
    stopped: watch::Receiver<bool>,
    /// Events handed to librdkafka whose report has not arrived.
    in_flight: usize,
    /// The slice being read from the outbox, if one is.
    claiming: Option<Claiming>,
    /// Something happened since the last claim that found the queue exhausted (a commit, a
    /// report, a wake-up): claim again.
    claim_wanted: bool,
    /// When the earliest event held back by its retry schedule is due, as the last claim found.
    next_due: Option<Instant>,
    /// How many times librdkafka refused an event and its key was held back.
    refusals: u64,
    /// Failure writes not yet committed. Until a failed event is back in the queue the outbox
    /// counts it in flight, and would hand out later events of its key ahead of it: nothing is
    /// claimed meanwhile.
    failing: Arc<AtomicUsize>,
    /// Outbox writes (acks, fails) not yet known to be committed.
    writes: JoinSet<()>,
    /// Signalled when an outbox write commits: failed events may be claimable again.
    written: Arc<tokio::sync::Notify>,
    /// Outcomes whose outbox write failed (a full or failing disk), to write again: until then
    /// their events stay in flight, neither lost nor sent twice.
    unwritten: Arc<std::sync::Mutex<Unwritten>>,
    /// When to try the unwritten outcomes again.
    retry_writes_at: Option<Instant>,
    was_reachable: bool,
    /// Events delivered since the broker came back, for the guide's recovery log line.
    recovering: u64,
}

impl Loop {
    async fn run(mut self) {
        let mut committed = self.outbox.subscribe();
        let mut next_probe = Instant::now();
        loop {
            if *self.stopped.borrow() {
                break;
            }
            let reachable = self.counters.reachable.load(Ordering::SeqCst);
            self.note_reachability(reachable);
            if !reachable && Instant::now() >= next_probe {
                self.probe();
                next_probe = Instant::now() + self.config.probe_interval;
            }
            // librdkafka promises a report for every message within message.timeout.ms. A
            // message unreported for twice that means a stuck producer (seen with an idempotent
            // producer retrying forever against a broker that lost its producer state): treat
            // it as a fatal error.
            let stall = self.config.message_timeout * 2;
            let oldest = self.oldest_outstanding();
            if !self.resetting && oldest.is_some_and(|at| at.elapsed() > stall) {
                self.begin_reset(format!(
                    "an event has had no delivery report for {} ms ({} outstanding)",
                    stall.as_millis(),
                    self.outstanding.len()
                ));
            }
            if self.resetting && self.in_flight == 0 && Instant::now() >= self.replace_at {
                self.replace_producer();
            }
            // Reports first: the sooner Kafka's acknowledgements are committed, the fewer
            // events a crash would send twice.
            if let Ok(report) = self.reports.try_recv() {
                self.handle_reports(report);
                self.claim_wanted = true;
            }
            if self.claim_wanted && self.claiming.is_none() && self.may_claim(0) {
                self.start_claim(0);
            }
            let mut wake_at = match (reachable, self.next_due) {
                (false, _) => next_probe,
                (true, Some(due)) => due,
                (true, None) => Instant::now() + Duration::from_secs(60),
            };
            if let Some(at) = oldest.filter(|_| !self.resetting) {
                wake_at = wake_at.min(at + stall + Duration::from_millis(1));
            }
            if self.resetting && self.in_flight == 0 {
                wake_at = wake_at.min(self.replace_at);
            }
            self.rewrite_outcomes();
            if let Some(at) = self.retry_writes_at {
                wake_at = wake_at.min(at);
            }
            let written = self.written.clone();
            let mut woken = true;
            tokio::select! {
                biased;
                // A dropped `Relay` closes the channel: stop as on shutdown.
                changed = self.stopped.changed() => if changed.is_err() { break },
                outcome = claimed(&mut self.claiming) => {
                    woken = false;
                    self.take_claim(outcome);
                }
                Some(report) = self.reports.recv() => self.handle_reports(report),
                _ = self.woken.changed() => {}
                _ = committed.changed() => {}
                _ = written.notified() => {}
                _ = tokio::time::sleep_until(wake_at.into()) => {}
            }
            if woken {
                self.claim_wanted = true;
            }
            while self.writes.try_join_next().is_some() {}
        }
        self.drain().await;
    }

    /// Logs reachability transitions in the guide's words and tells the outbox.
    fn note_reachability(&mut self, reachable: bool) {
        if reachable == self.was_reachable {
            return;
        }
        self.was_reachable = reachable;
        self.outbox.set_broker_status(BrokerStatus {
            kafka_connected: reachable,
            kafka_available: true,
        });
        if reachable {
            tracing::info!("Kafka reconnected successfully");
            self.recovering = 0;
        } else {
            tracing::warn!("Kafka unreachable: events are queued locally until a broker returns");
        }
    }

    /// Asks the brokers for the topic's metadata off the async threads; success means reachable.
    /// It also refreshes librdkafka's view of the topic, which it caches after a topic-level
    /// refusal (authorisation, unknown topic) and would otherwise apply to every later message.
    fn probe(&self) {
        let producer = self.producer.clone();
        let topic = self.config.topic.clone();
        let timeout = self.config.probe_interval.max(Duration::from_millis(100));
        tokio::task::spawn_blocking(move || {
            match producer.client().fetch_metadata(Some(&topic), timeout) {
                Ok(_) => producer.context().set_reachable(true),
                Err(e) => tracing::trace!(error = %e, "probe: no broker answered"),
            }
        });
    }

    /// Whether another slice may be claimed, with `unsent` events claimed and not yet handed
    /// to librdkafka.
    fn may_claim(&self, unsent: usize) -> bool {
        self.counters.reachable.load(Ordering::SeqCst)
            && !self.resetting
            && !self.queue_full
            && !*self.stopped.borrow()
            && self.in_flight + unsent < self.config.window
            && self.failing.load(Ordering::SeqCst) == 0
            && lock(&self.unwritten).failures.is_empty()
    }

    /// Starts reading the next slice (in slices, so reports are taken between them).
    fn start_claim(&mut self, unsent: usize) {
        let room = (self.config.window - self.in_flight - unsent).min(CLAIM_SLICE);
        let outbox = self.outbox.clone();
        self.claim_wanted = false;
        self.next_due = None;
        self.claiming = Some(Claiming {
            room,
            refusals: self.refusals,
            task: tokio::task::spawn_blocking(move || outbox.claim(room)),
        });
    }

    /// Takes a slice read from the outbox: starts reading the next one if this one was full,
    /// then hands this one to librdkafka, unless sending stopped meanwhile.
    fn take_claim(&mut self, outcome: Result<Result<Claim, casewire_outbox::Error>, JoinError>) {
        let Some(Claiming { room, refusals, .. }) = self.claiming.take() else {
            return;
        };
        let claim = match outcome {
            Ok(Ok(claim)) => claim,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot claim events from the outbox");
                self.next_due = Some(Instant::now() + Duration::from_secs(1));
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "the thread claiming events from the outbox failed");
                self.next_due = Some(Instant::now() + Duration::from_secs(1));
                return;
            }
        };
        tracing::trace!(claimed = claim.events.len(), in_flight = self.in_flight, next_due = ?claim.next_due_in, "claimed");
        self.next_due = claim.next_due_in.map(|d| Instant::now() + d);
        let why = if self.refusals != refusals {
            Some("held back: an earlier event was refused")
        } else if self.resetting {
            Some("held back: producer being replaced")
        } else if self.queue_full {
            Some("held back: librdkafka queue full")
        } else if *self.stopped.borrow() {
            Some("relay stopped before sending")
        } else {
            None
        };
        if let Some(why) = why {
            self.hand_back(claim.events, why);
            return;
        }
        let unsent = claim.events.len();
        if unsent == room && self.may_claim(unsent) {
            self.start_claim(unsent);
        }
        self.send(claim.events);
    }

    /// Gives claimed events back to the outbox unsent, uncounted and due at once.
    fn hand_back(&mut self, events: Vec<ClaimedEvent>, why: &str) {
        if events.is_empty() {
            return;
        }
        let failures = events
            .into_iter()
            .map(|event| Failure {
                seq: event.seq,
                kind: FailKind::Unreachable,
                reason: why.to_owned(),
            })
            .collect();
        self.write_failures(failures);
    }

    /// Hands claimed events to librdkafka. If its queue is full the rest go back to the outbox
    /// uncounted.
    fn send(&mut self, events: Vec<ClaimedEvent>) {
        let mut refused = Vec::new();
        // Keys with a refused event: their later events in this slice are held back behind it.
        let mut held_keys: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut stop: Option<&'static str> = None;
        for event in events {
            if let Some(why) = stop {
                refused.push(Failure {
                    seq: event.seq,
                    kind: FailKind::Unreachable,
                    reason: why.to_owned(),
                });
                continue;
            }
            if held_keys.contains(&event.partition_key) {
                refused.push(Failure {
                    seq: event.seq,
                    kind: FailKind::Unreachable,
                    reason: "held back behind a refused event of its key".to_owned(),
                });
                continue;
            }
            let record = BaseRecord::with_opaque_to(&self.config.topic, Box::new(event.seq))
                .key(event.partition_key.as_bytes())
                .payload(&event.payload)
                .headers(headers(&event));
            match self.producer.send(record) {
                Ok(()) => {
                    self.in_flight += 1;
                    self.sent.push_back((Instant::now(), event.seq));
                    self.outstanding.insert(event.seq, event.event_id);
                }
                Err((error, _)) => {
                    let code = classify::code_of(&error);
                    let kind = match code {
                        Some(RDKafkaErrorCode::QueueFull) => {
                            // Wait for reports to make room before claiming again.
                            self.queue_full = true;
                            stop = Some("held back: librdkafka queue full");
                            FailKind::Unreachable
                        }
                        Some(RDKafkaErrorCode::Fatal) => {
                            if !self.resetting {
                                self.begin_reset(error.to_string());
                            }
                            stop = Some("held back: producer being replaced");
                            FailKind::Unreachable
                        }
                        _ => classify::classify(&error, true),
                    };
                    // A dead-lettered event frees its key; any other refusal holds it.
                    if kind != FailKind::Permanent {
                        held_keys.insert(event.partition_key.clone());
                        self.refusals += 1;
                    }
                    refused.push(Failure {
                        seq: event.seq,
                        kind,
                        reason: error.to_string(),
                    });
                }
            }
        }
        if !refused.is_empty() {
            self.record_failures(refused);
        }
    }

    /// Takes one report and every other report already waiting, then writes their outcomes to
    /// the outbox in one acknowledgement and one failure write.
    fn handle_reports(&mut self, first: Report) {
        let mut delivered = Vec::new();
        let mut failures = Vec::new();
        let reachable = self.counters.reachable.load(Ordering::SeqCst);
        self.queue_full = false;
        let mut next = Some(first);
        while let Some((seq, outcome)) = next.take() {
            self.in_flight = self.in_flight.saturating_sub(1);
            let event_id = self.outstanding.remove(&seq).unwrap_or_default();
            match outcome {
                Ok(()) => {
                    tracing::debug!("Event published to Kafka: {event_id}");
                    delivered.push(seq);
                }
                Err(error) => {
                    // librdkafka reports a fatal idempotence error on the message that caused it
                    // with the broker's code (UnknownProducerId…), and on the rest as Fatal.
                    if !self.resetting
                        && let Some((_, reason)) = self.producer.client().fatal_error()
                    {
                        self.begin_reset(reason);
                    }
                    let timed_out =
                        classify::code_of(&error) == Some(RDKafkaErrorCode::MessageTimedOut);
                    // A timeout says nothing against the event, so it never counts. One while a
                    // broker is up means the producer is stuck on some partition (a broker
                    // that forgot the producer id makes librdkafka retry forever): a fresh
                    // producer gets a fresh producer id.
                    if timed_out && reachable && !self.resetting {
                        self.begin_reset("messages time out while a broker is up".to_owned());
                    }
                    if let Some(refusal) = classify::code_of(&error).and_then(Refusal::of) {
                        self.counters.set_refused(Some(refusal));
                    }
                    let kind = if self.resetting {
                        FailKind::Unreachable
                    } else {
                        classify::classify(&error, reachable)
                    };
                    failures.push(Failure {
                        seq,
                        kind,
                        reason: error.to_string(),
                    });
                }
            }
            if delivered.len() + failures.len() < 10_000 {
                next = self.reports.try_recv().ok();
            }
        }
        if !delivered.is_empty() {
            let n = delivered.len() as u64;
            self.counters.published.fetch_add(n, Ordering::Relaxed);
            self.counters
                .last_delivery_ms
                .store(now_ms(), Ordering::Relaxed);
            self.counters.set_last_error(None);
            self.counters.set_refused(None);
            if self.was_reachable {
                self.recovering += n;
            }
            if self.deliveries.receiver_count() > 0 {
                let _ = self.deliveries.send(delivered.as_slice().into());
            }
            self.write_acks(delivered);
            if self.in_flight == 0 && self.recovering > 0 && self.outbox_is_empty() {
                tracing::info!("Successfully published {} queued events", self.recovering);
                self.recovering = 0;
            }
        }
        if !failures.is_empty() {
            self.record_failures(failures);
        }
    }

    fn outbox_is_empty(&self) -> bool {
        self.outbox
            .stats(casewire_outbox::Page::first(0))
            .map(|s| s.queue_size == s.in_flight)
            .unwrap_or(false)
    }

    fn record_failures(&mut self, failures: Vec<Failure>) {
        let counted = failures
            .iter()
            .filter(|f| f.kind != FailKind::Unreachable)
            .count() as u64;
        self.counters.failed.fetch_add(counted, Ordering::Relaxed);
        if let Some(f) = failures.iter().find(|f| f.kind != FailKind::Unreachable) {
            self.counters.set_last_error(Some(f.reason.clone()));
        }
        for f in failures.iter().filter(|f| f.kind != FailKind::Unreachable) {
            tracing::warn!(seq = f.seq, kind = ?f.kind, reason = %f.reason, "Kafka publish failed");
        }
        if failures.iter().any(|f| f.kind == FailKind::Permanent) {
            self.probe();
        }
        self.write_failures(failures);
    }

    /// Acknowledges delivered events in the outbox; on a failed write, keeps them to retry.
    fn write_acks(&mut self, seqs: Vec<i64>) {
        let pending = self.outbox.ack(seqs.clone());
        let (unwritten, written) = (self.unwritten.clone(), self.written.clone());
        self.writes.spawn(async move {
            if let Err(e) = pending.await {
                tracing::error!(error = %e, count = seqs.len(), "delivered events could not be acknowledged; retrying");
                lock(&unwritten).acks.extend(seqs);
            }
            written.notify_one();
        });
    }

    /// Records failed deliveries in the outbox; on a failed write, keeps them to retry.
    fn write_failures(&mut self, failures: Vec<Failure>) {
        let pending = self.outbox.fail(failures.clone());
        let (unwritten, written) = (self.unwritten.clone(), self.written.clone());
        let counters = self.counters.clone();
        let failing = self.failing.clone();
        failing.fetch_add(1, Ordering::SeqCst);
        self.writes.spawn(async move {
            match pending.await {
                Ok(outcomes) => {
                    let dead = outcomes
                        .iter()
                        .filter(|o| **o == FailOutcome::DeadLettered)
                        .count() as u64;
                    counters.dead_lettered.fetch_add(dead, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(error = %e, count = failures.len(), "failed deliveries could not be recorded; retrying");
                    lock(&unwritten).failures.extend(failures);
                }
            }
            failing.fetch_sub(1, Ordering::SeqCst);
            written.notify_one();
        });
    }

    /// Writes again, at most every [`REWRITE_AFTER`], the outcomes whose write failed.
    fn rewrite_outcomes(&mut self) {
        if lock(&self.unwritten).is_empty() {
            self.retry_writes_at = None;
            return;
        }
        let now = Instant::now();
        match self.retry_writes_at {
            None => self.retry_writes_at = Some(now + REWRITE_AFTER),
            Some(at) if now >= at => {
                let Unwritten { acks, failures } = std::mem::take(&mut *lock(&self.unwritten));
                if !acks.is_empty() {
                    self.write_acks(acks);
                }
                if !failures.is_empty() {
                    self.write_failures(failures);
                }
                self.retry_writes_at = None;
            }
            Some(_) => {}
        }
    }

    /// When the oldest event still awaiting its report was handed to librdkafka.
    fn oldest_outstanding(&mut self) -> Option<Instant> {
        while let Some(&(at, seq)) = self.sent.front() {
            if self.outstanding.contains_key(&seq) {
                return Some(at);
            }
            self.sent.pop_front();
        }
        None
    }

    /// The idempotent producer hit a fatal error (for example the broker forgot its producer id,
    /// as a restarted broker or an expired producer state does): purge what it holds, so every
    /// message reports back and goes back to the outbox uncounted, then replace the producer.
    fn begin_reset(&mut self, reason: String) {
        tracing::warn!(%reason, "Kafka producer hit a fatal error: starting a new one; undelivered events stay queued");
        self.resetting = true;
        self.producer
            .purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
    }

    fn replace_producer(&mut self) {
        match create_producer(&self.config, self.context.clone()) {
            Ok(producer) => {
                self.producer = Arc::new(producer);
                self.resetting = false;
                tracing::info!("new Kafka producer started");
            }
            // The configuration was accepted once, so this is resource trouble: retry shortly.
            Err(e) => {
                tracing::error!(error = %e, "cannot start a new Kafka producer; retrying in 1 s");
                self.replace_at = Instant::now() + Duration::from_secs(1);
            }
        }
    }

    /// Shutdown: wait for reports of what is in flight, then for the outbox writes.
    async fn drain(mut self) {
        if let Some(claiming) = self.claiming.take()
            && let Ok(Ok(claim)) = claiming.task.await
        {
            self.hand_back(claim.events, "relay stopped before sending");
        }
        let deadline = tokio::time::Instant::now() + self.config.shutdown_timeout;
        while self.in_flight > 0 {
            match tokio::time::timeout_at(deadline, self.reports.recv()).await {
                Ok(Some(report)) => self.handle_reports(report),
                _ => break,
            }
        }
        if self.in_flight > 0 {
            tracing::warn!(
                in_flight = self.in_flight,
                "shutting down with events unreported by Kafka; they stay queued and are sent again"
            );
            // Hand them back to the outbox, so a relay started later on it claims them again.
            let left: Vec<Failure> = self
                .outstanding
                .drain()
                .map(|(seq, _)| Failure {
                    seq,
                    kind: FailKind::Unreachable,
                    reason: "relay stopped before Kafka reported".to_owned(),
                })
                .collect();
            self.write_failures(left);
        }
        while self.writes.join_next().await.is_some() {}
        if !lock(&self.unwritten).is_empty() {
            tracing::error!(
                "shutting down with delivery outcomes unwritten: those events stay queued and are sent again on the next start"
            );
        }
        self.outbox.set_broker_status(BrokerStatus::default());
    }
}
