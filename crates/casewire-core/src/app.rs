//! [`App`]: the whole backend of one Casewire, wired once for `casewire serve` and for the
//! desktop alike: the outbox (opened, checked, migrated), the domain on top of it, the relay
//! to Kafka, and the settings that shape them.
//!
//! The relay can be restarted with new settings while the app runs: the old relay stops
//! gracefully (the reports of events in flight are committed, the rest stay queued), then the
//! new one starts and carries on from the outbox. Nothing queued is lost or sent twice by a
//! restart, because the outbox, not the relay, holds the queue.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use casewire_outbox::{Clock, Outbox, OutboxConfig, RetryPolicy, SystemClock};
use casewire_relay::{Relay, RelayConfig, RelayCounters};

use crate::anchoring::{Anchoring, AnchoringView, ChainSettings, Worker, anchoring_key};
use crate::keys::{DataKeys, KeyStore, KeysFile};
use crate::settings::{SettingView, Settings, spec_of};
use crate::updates::Updates;
use crate::{Auth, AuthPolicy, Cases, CoreError, EvidenceStore, Idempotency, Policy};

/// Where the settings screen's values are kept between runs. The desktop keeps them in its
/// store (secrets in the OS keyring); `casewire serve` in a JSON file in the data directory.
pub trait SettingsStore: Send + Sync {
    /// The values saved so far, secrets included.
    fn load(&self) -> Result<BTreeMap<String, String>, CoreError>;
    /// Replaces the saved values with `values`.
    fn save(&self, values: &BTreeMap<String, String>) -> Result<(), CoreError>;
    /// Whether it can keep a secret (the SASL password) somewhere safer than a plain file.
    fn keeps_secrets(&self) -> bool;
}

/// `casewire serve`'s settings store: `settings.json` in the data directory, written
/// atomically (a temporary file renamed over it). It keeps no secrets: those belong in the
/// environment or the configuration file of a server.
pub struct JsonFileStore {
    path: PathBuf,
}

impl JsonFileStore {
    /// The store at `data_dir/settings.json`.
    pub fn in_dir(data_dir: &Path) -> JsonFileStore {
        JsonFileStore {
            path: data_dir.join("settings.json"),
        }
    }
}

impl SettingsStore for JsonFileStore {
    fn load(&self) -> Result<BTreeMap<String, String>, CoreError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                CoreError::Config(format!(
                    "the settings file {} is not valid ({e}); fix or remove it",
                    self.path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(CoreError::Storage(format!(
                "reading {}: {e}",
                self.path.display()
            ))),
        }
    }

    fn save(&self, values: &BTreeMap<String, String>) -> Result<(), CoreError> {
        let storage =
            |e: std::io::Error| CoreError::Storage(format!("writing {}: {e}", self.path.display()));
        let text = serde_json::to_vec_pretty(values)
            .map_err(|e| CoreError::Storage(format!("encoding settings: {e}")))?;
        let tmp = self.path.with_extension("json.tmp");
        crate::private::write_file(&tmp, &text).map_err(storage)?;
        std::fs::rename(&tmp, &self.path).map_err(storage)
    }

    fn keeps_secrets(&self) -> bool {
        false
    }
}

/// How the relay is doing, for the sync badge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayStatus {
    /// A relay is configured (brokers are set) and running.
    pub running: bool,
    /// When Kafka last acknowledged an event, Unix ms.
    pub last_delivery_ms: Option<i64>,
    /// The last error reported since the last delivery.
    pub last_error: Option<String>,
    /// Why the cluster refuses this client, while it does: `authentication`, `certificate`
    /// or `authorization`.
    pub refused: Option<&'static str>,
}

/// How often the backend's periodic work runs ([`App::start_housekeeping`]).
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(10);

struct RunningRelay {
    relay: Relay,
    counters: Arc<RelayCounters>,
}

/// How a start unlocks encrypted data (see [`crate::keys`]).
#[derive(Debug, Default)]
pub struct Unlock {
    /// Where the key is kept when neither `CASEWIRE_KEY_STORE` nor the data directory says:
    /// the desktop keeps it in the OS keyring, `casewire serve` in a key file.
    pub default_store: DefaultKeyStore,
    /// A passphrase read at start (`casewire serve --passphrase-stdin`).
    pub passphrase: Option<zeroize::Zeroizing<String>>,
}

/// The key store a start uses when nothing else says.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum DefaultKeyStore {
    /// A key file (`CASEWIRE_KEY_FILE`, or the OS configuration folder's).
    #[default]
    File,
    /// The OS keyring.
    Keyring,
}

/// Takes `<data dir>/start.lock` for as long as the value lives, or says that another
/// Casewire is starting or running on the directory.
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, CoreError> {
    let path = data_dir.join("start.lock");
    let file = crate::private::create_file_keep(&path)
        .map_err(|e| CoreError::Storage(format!("{}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(CoreError::Storage(format!(
            "another Casewire is starting or running on {}: stop it first",
            data_dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(CoreError::Storage(format!("{}: {e}", path.display())))
        }
    }
}

/// Refuses a database that is neither unencrypted nor empty when there is no key for it: it
/// is most likely encrypted with a `keys.json` that was lost, and must not be moved aside as
/// corrupt or encrypted again with a new key.
fn refuse_unreadable_database(data_dir: &Path) -> Result<(), CoreError> {
    let path = data_dir.join("outbox.db");
    let filled = std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
    if filled && !casewire_outbox::is_plaintext(&path)? {
        return Err(CoreError::Config(format!(
            "{} is not a database Casewire can read without a key: it is most likely encrypted, and {} (which holds its wrapped key) is missing. Restore {} from a backup; nothing was changed",
            path.display(),
            crate::keys::KEYS_FILE,
            crate::keys::KEYS_FILE
        )));
    }
    Ok(())
}

/// The data directory's keys, made at the first start with encryption on, or `None` when it
/// is off. A directory whose data is encrypted cannot be opened with encryption off.
fn unlock_data(
    data_dir: &Path,
    settings: &Settings,
    unlock: Unlock,
) -> Result<Option<(KeysFile, DataKeys)>, CoreError> {
    let existing = KeysFile::load(data_dir)?;
    match settings.get("CASEWIRE_ENCRYPTION").as_deref() {
        Some("on") | None => {}
        Some("off") if existing.is_some() => {
            return Err(CoreError::Config(format!(
                "CASEWIRE_ENCRYPTION=off, but the data in {} is encrypted ({}): remove the setting to open it",
                data_dir.display(),
                crate::keys::KEYS_FILE
            )));
        }
        Some("off") => {
            refuse_unreadable_database(data_dir)?;
            return Ok(None);
        }
        Some(other) => {
            return Err(CoreError::Config(format!(
                "CASEWIRE_ENCRYPTION={other:?} must be on or off"
            )));
        }
    }
    // The keyring by default only: a desktop without a Secret Service (no D-Bus session, a
    // minimal window manager) keeps the key in a key file instead, said in the log.
    let keyring_by_default = existing.is_none()
        && unlock.passphrase.is_none()
        && unlock.default_store == DefaultKeyStore::Keyring
        && settings.get("CASEWIRE_KEY_STORE").is_none();
    let store = key_store(data_dir, settings, existing.as_ref(), unlock)?;
    match existing {
        Some(file) => {
            let keys = file.unlock(&store)?;
            Ok(Some((file, keys)))
        }
        None => {
            refuse_unreadable_database(data_dir)?;
            let (file, keys) = match KeysFile::create(&store) {
                Err(e) if keyring_by_default => {
                    let fallback = key_store(data_dir, settings, None, Unlock::default())?;
                    tracing::warn!(
                        error = %e,
                        store = ?fallback,
                        "the OS keyring cannot be used: the key of the data key is kept in a key file instead, as safe as this account"
                    );
                    KeysFile::create(&fallback)?
                }
                created => created?,
            };
            file.save(data_dir)?;
            tracing::info!("encryption is on: made this data directory's key");
            Ok(Some((file, keys)))
        }
    }
}

/// Whether `path` is inside `dir`.
fn inside(path: &Path, dir: &Path) -> bool {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    absolute(path).starts_with(absolute(dir))
}

/// Where the key that unlocks `data_dir` is kept: a passphrase given at start, else
/// `CASEWIRE_KEY_STORE`, else what `keys.json` records, else `unlock`'s default.
pub(crate) fn key_store(
    data_dir: &Path,
    settings: &Settings,
    existing: Option<&KeysFile>,
    unlock: Unlock,
) -> Result<KeyStore, CoreError> {
    let key_file = || -> Result<PathBuf, CoreError> {
        let path = match settings.get("CASEWIRE_KEY_FILE") {
            Some(path) => PathBuf::from(path),
            None => match existing.and_then(KeysFile::key_file) {
                Some(path) => path.to_owned(),
                None => KeyStore::default_file()?,
            },
        };
        if inside(&path, data_dir) {
            return Err(CoreError::Config(format!(
                "the key file {} is inside the data directory, beside the data it unlocks: keep it elsewhere (CASEWIRE_KEY_FILE)",
                path.display()
            )));
        }
        Ok(path)
    };
    let store = match (
        unlock.passphrase,
        settings.get("CASEWIRE_KEY_STORE").as_deref(),
    ) {
        (Some(passphrase), _) => KeyStore::Passphrase(passphrase),
        (None, Some("keyring")) => KeyStore::Keyring,
        (None, Some("file")) => KeyStore::File(key_file()?),
        (None, Some("passphrase")) => {
            return Err(CoreError::Config(
                "CASEWIRE_KEY_STORE=passphrase: start with --passphrase-stdin and give the passphrase on standard input".into(),
            ));
        }
        (None, Some(other)) => {
            return Err(CoreError::Config(format!(
                "CASEWIRE_KEY_STORE={other:?} must be keyring, file or passphrase"
            )));
        }
        (None, None) => match existing.map(KeysFile::store_kind) {
            Some("keyring") => KeyStore::Keyring,
            Some("file") => KeyStore::File(key_file()?),
            Some(_) => {
                return Err(CoreError::Config(
                    "the data key is guarded by a passphrase: start with --passphrase-stdin and give it on standard input".into(),
                ));
            }
            None if unlock.default_store == DefaultKeyStore::Keyring => KeyStore::Keyring,
            None => KeyStore::File(key_file()?),
        },
    };
    Ok(store)
}

/// Re-wraps `data_dir`'s data key with a new key in `to`; the current key is found as a start
/// finds it (`unlock`). The data is not rewritten.
pub fn rotate_key(
    data_dir: &Path,
    settings: &Settings,
    unlock: Unlock,
    to: KeyStore,
) -> Result<(), CoreError> {
    let existing = KeysFile::load(data_dir)?;
    let from = key_store(data_dir, settings, existing.as_ref(), unlock)?;
    if let KeyStore::File(path) = &to
        && inside(path, data_dir)
    {
        return Err(CoreError::Config(format!(
            "the key file {} would be inside the data directory, beside the data it unlocks: choose a path elsewhere; nothing was changed",
            path.display()
        )));
    }
    crate::keys::rotate(data_dir, &from, &to)
}

/// The backend: outbox, domain, relay and settings.
pub struct App {
    /// The outbox, and the database behind it.
    pub outbox: Arc<Outbox>,
    /// Users and tokens.
    pub auth: Arc<Auth>,
    /// Cases.
    pub cases: Arc<Cases>,
    /// Evidence files.
    pub evidence: Arc<EvidenceStore>,
    /// Anchor requests and their batches.
    pub anchoring: Arc<Anchoring>,
    /// The RL routes' policy.
    pub policy: Arc<Policy>,
    /// `Idempotency-Key` records.
    pub idempotency: Arc<Idempotency>,
    /// The clock everything runs on.
    pub clock: Arc<dyn Clock>,
    /// The desktop app's updates (no channel for `casewire serve`).
    pub updates: Updates,
    data_dir: PathBuf,
    settings: RwLock<Settings>,
    store: Arc<dyn SettingsStore>,
    relay: tokio::sync::Mutex<Option<RunningRelay>>,
    counters: RwLock<Option<Arc<RelayCounters>>>,
    /// Sent `true` by [`App::shutdown`]: the anchoring worker ends.
    anchor_stop: tokio::sync::watch::Sender<bool>,
    /// The address the anchoring worker signs with, once it was made.
    anchor_address: std::sync::OnceLock<casewire_chain::Address>,
}

impl App {
    /// Opens the backend in `data_dir` with `settings` (environment and file) and the desktop
    /// layer read from `store`. Does not start the relay: [`App::start_relay`] does.
    pub fn open(
        data_dir: &Path,
        settings: Settings,
        store: Arc<dyn SettingsStore>,
    ) -> Result<App, CoreError> {
        App::open_with(data_dir, settings, store, Unlock::default())
    }

    /// [`App::open`], unlocking encrypted data as `unlock` says.
    pub fn open_with(
        data_dir: &Path,
        settings: Settings,
        store: Arc<dyn SettingsStore>,
        unlock: Unlock,
    ) -> Result<App, CoreError> {
        let changed = crate::private::make_private(data_dir).map_err(|e| {
            CoreError::Storage(format!(
                "cannot make the data directory {} private: {e}",
                data_dir.display()
            ))
        })?;
        if !changed.is_empty() {
            tracing::warn!(
                "the data directory was readable or writable by other accounts: tightened {} paths to this account alone",
                changed.len()
            );
            for change in changed.iter().take(20) {
                tracing::warn!("tightened {change}");
            }
        }
        let settings = settings.with_desktop(store.load()?);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let persist = match settings.get("QUEUE_PERSIST").as_deref() {
            Some("false") => false,
            Some("true") | None => true,
            Some(other) => {
                return Err(CoreError::Config(format!(
                    "QUEUE_PERSIST={other:?} must be true or false"
                )));
            }
        };
        let mut config = if persist {
            OutboxConfig::file(data_dir.join("outbox.db"))
        } else {
            OutboxConfig::memory()
        };
        config.retry = RetryPolicy::from_interval(
            Duration::from_millis(settings.number("RETRY_INTERVAL", 10_000)?),
            u32::try_from(settings.number("MAX_RETRIES", 10)?)
                .map_err(|_| CoreError::Config("MAX_RETRIES is too large".into()))?,
        );
        config.quota_bytes = settings.number("CASEWIRE_QUEUE_QUOTA_BYTES", config.quota_bytes)?;
        config.legacy_queue_file = Some(data_dir.join("pending_events.json"));
        let quota_bytes = config.quota_bytes;
        // One start at a time in a data directory, from making or reading its key to the
        // outbox's own lock: two starts must never make two data keys.
        let lock = lock_data_dir(data_dir)?;
        let encryption = unlock_data(data_dir, &settings, unlock)?;
        if let Some((_, keys)) = &encryption {
            // Every start: a database written unencrypted (before encryption was on, or
            // restored from an old backup) is encrypted; an encrypted one is left (its header
            // says so, read in microseconds).
            let path = data_dir.join("outbox.db");
            if persist && casewire_outbox::is_plaintext(&path)? {
                let started = std::time::Instant::now();
                casewire_outbox::encrypt_in_place(&path, &keys.database)?;
                tracing::info!(elapsed = ?started.elapsed(), "the database is encrypted");
            }
            config.key = persist.then(|| keys.database.clone());
        }
        let outbox = Arc::new(Outbox::open(config)?);
        crate::migrate(&outbox)?;
        let _lock = lock;
        let max_bytes = settings.number("CASEWIRE_MAX_EVIDENCE_BYTES", 100 * 1024 * 1024)?;
        let evidence = EvidenceStore::open(outbox.clone(), clock.clone(), data_dir, max_bytes)?
            .with_key(encryption.as_ref().map(|(_, keys)| keys.content.clone()));
        if let Some((keys_file, _)) = &encryption {
            let mut current = keys_file.clone();
            if !current.evidence_sealed {
                let sealed = evidence.seal_existing()?;
                current.evidence_sealed = true;
                current.save(data_dir)?;
                if sealed > 0 {
                    tracing::info!(sealed, "evidence files stored before encryption are sealed");
                }
            }
        }
        let evidence = Arc::new(evidence);
        // A wrong chain setting stops the start, like any other.
        ChainSettings::from_settings(&settings)?;
        Ok(App {
            anchoring: Arc::new(Anchoring::new(outbox.clone(), clock.clone())),
            anchor_stop: tokio::sync::watch::channel(false).0,
            anchor_address: std::sync::OnceLock::new(),
            auth: Arc::new(Auth::new(
                outbox.clone(),
                clock.clone(),
                AuthPolicy {
                    refusals: crate::refusals::RefusalLimits::for_quota(quota_bytes),
                    ..AuthPolicy::default()
                },
            )),
            cases: Arc::new(Cases::new(outbox.clone(), clock.clone())),
            policy: Arc::new(Policy::new(outbox.clone(), clock.clone())),
            idempotency: Arc::new(Idempotency::new(outbox.clone(), clock.clone())),
            evidence,
            outbox,
            clock,
            updates: Updates::open(data_dir),
            data_dir: data_dir.to_owned(),
            settings: RwLock::new(settings),
            store,
            relay: tokio::sync::Mutex::new(None),
            counters: RwLock::new(None),
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The settings in effect.
    pub fn settings(&self) -> Settings {
        read(&self.settings).clone()
    }

    /// Every setting as the settings screen shows it. Secrets are editable only where the
    /// store can keep them.
    pub fn describe_settings(&self) -> Vec<SettingView> {
        let mut views = read(&self.settings).describe();
        if !self.store.keeps_secrets() {
            for view in views.iter_mut().filter(|v| v.secret) {
                view.editable = false;
            }
        }
        views
    }

    /// Starts the relay when `KAFKA_BROKERS` is set; stops the one running first, if any.
    /// Must be called from inside a tokio runtime.
    pub async fn start_relay(&self) -> Result<bool, CoreError> {
        let settings = self.settings();
        let mut running = self.relay.lock().await;
        if let Some(old) = running.take() {
            tracing::info!("stopping the relay to apply new settings");
            old.relay.shutdown().await;
        }
        *write(&self.counters) = None;
        if settings.get("KAFKA_BROKERS").is_none() {
            tracing::warn!("KAFKA_BROKERS is not set: events are queued locally and not relayed");
            return Ok(false);
        }
        let config = relay_config(&settings)?;
        let relay = Relay::start(self.outbox.clone(), config)?;
        tokio::spawn(record_deliveries(
            relay.subscribe_deliveries(),
            self.cases.clone(),
            self.clock.clone(),
        ));
        let counters = relay.shared_counters();
        tokio::spawn(alert_refusals(
            counters.clone(),
            self.outbox.clone(),
            self.clock.clone(),
        ));
        *write(&self.counters) = Some(counters.clone());
        *running = Some(RunningRelay { relay, counters });
        Ok(true)
    }

    /// Whether a relay is running, and what it last reported.
    pub fn relay_status(&self) -> RelayStatus {
        match read(&self.counters).as_ref() {
            Some(c) => {
                let last = c
                    .last_delivery_ms
                    .load(std::sync::atomic::Ordering::Relaxed);
                RelayStatus {
                    running: true,
                    last_delivery_ms: (last > 0).then_some(last),
                    last_error: c.last_error(),
                    refused: c.refused().map(casewire_relay::Refusal::as_str),
                }
            }
            None => RelayStatus {
                running: false,
                last_delivery_ms: None,
                last_error: None,
                refused: None,
            },
        }
    }

    /// Applies the settings screen's `changes` (`None`: back to the default), checked first:
    /// a refused change leaves everything as it was. Saved in the store, then in effect; a
    /// change to the relay's settings restarts the relay.
    pub async fn change_settings(
        &self,
        changes: BTreeMap<String, Option<String>>,
    ) -> Result<Vec<SettingView>, CoreError> {
        let current = self.settings();
        for key in changes.keys() {
            if spec_of(key).is_some_and(|s| s.secret) && !self.store.keeps_secrets() {
                return Err(CoreError::Invalid(format!(
                    "{key} can be set for casewire serve only in the environment or the configuration file"
                )));
            }
        }
        let next = current.changed(&changes)?;
        let relay_changed = casewire_relay::SETTINGS
            .iter()
            .any(|k| current.get(k) != next.get(k));
        if relay_changed && next.get("KAFKA_BROKERS").is_some() {
            relay_config(&next)?;
        }
        self.store.save(next.desktop())?;
        *write(&self.settings) = next;
        if relay_changed {
            self.start_relay().await?;
        }
        Ok(self.describe_settings())
    }

    /// The backend's periodic work, until the app is gone: first the refusal events already
    /// queued are counted against their share, then every [`HOUSEKEEPING_EVERY`] the summaries
    /// of refused requests whose window has ended are recorded and the share brought up to
    /// date. `casewire serve` and the desktop spawn it on their runtime.
    pub fn housekeeping(self: &Arc<App>) -> impl std::future::Future<Output = ()> + Send + 'static {
        let app = Arc::downgrade(self);
        async move {
            if let Some(app) = app.upgrade() {
                let auth = app.auth.clone();
                drop(app);
                let adopted =
                    tokio::task::spawn_blocking(move || auth.adopt_queued_refusals()).await;
                if let Ok(Err(e)) = adopted {
                    tracing::warn!(error = %e, "could not count the refusals already queued");
                }
            }
            loop {
                tokio::time::sleep(HOUSEKEEPING_EVERY).await;
                let Some(app) = app.upgrade() else { return };
                let auth = app.auth.clone();
                drop(app);
                let settled =
                    tokio::task::spawn_blocking(move || auth.settle_refusals(5_000)).await;
                if let Ok(Err(e)) = settled {
                    tracing::warn!(error = %e, "could not record the refusals' summaries");
                }
            }
        }
    }

    /// The chain anchoring uses, `None` when none is configured.
    pub fn chain(&self) -> Result<Option<ChainSettings>, CoreError> {
        ChainSettings::from_settings(&read(&self.settings))
    }

    /// The anchoring worker, when a chain is configured (`CASEWIRE_CHAIN_RPC_URL`), with the
    /// address to fund with gas: `casewire serve` and the desktop spawn it on their runtime,
    /// and [`App::shutdown`] ends it. Its key comes from `CASEWIRE_ANCHOR_KEY_FILE`, else the
    /// OS keyring; either is made on first use.
    pub fn anchoring_worker(
        &self,
    ) -> Result<
        Option<(
            casewire_chain::Address,
            impl std::future::Future<Output = ()> + Send + 'static,
        )>,
        CoreError,
    > {
        let Some(chain) = self.chain()? else {
            return Ok(None);
        };
        let key = anchoring_key(chain.key_file.as_deref(), &self.data_dir)?;
        let worker = Worker::new(self.anchoring.clone(), key, chain);
        let address = worker.address();
        let _ = self.anchor_address.set(address);
        Ok(Some((address, worker.run(self.anchor_stop.subscribe()))))
    }

    /// How anchoring stands, for an admin: the chain set up, the address the worker signs
    /// with and its balance (asked of the node), what waits and what is in flight.
    pub async fn anchoring_view(&self) -> Result<AnchoringView, CoreError> {
        let chain = self.chain()?;
        self.anchoring
            .view(chain.as_ref(), self.anchor_address.get().copied())
            .await
    }

    /// Stops the relay gracefully: events in flight are settled, the rest stay queued.
    pub async fn shutdown(&self) {
        self.anchor_stop.send_replace(true);
        if let Some(running) = self.relay.lock().await.take() {
            drop(running.counters);
            running.relay.shutdown().await;
        }
        *write(&self.counters) = None;
    }

    /// Stops the relay ([`App::shutdown`]), then closes the outbox: every write already
    /// submitted is committed, the WAL is checkpointed into the database, and every later
    /// write (an upload, a case action, an acknowledgement) is refused. For what must never run
    /// while events are being written, such as an update's installer.
    pub async fn close(&self) {
        self.shutdown().await;
        let outbox = self.outbox.clone();
        if tokio::task::spawn_blocking(move || outbox.close())
            .await
            .is_err()
        {
            tracing::error!("closing the outbox panicked");
        }
    }
}

/// Raises a critical `system.alert` each time the cluster starts refusing this client (wrong
/// credentials, a certificate that does not verify, an ACL), until the relay stops. The alert
/// waits in the queue with the rest and says what to fix; it holds no secret.
async fn alert_refusals(counters: Arc<RelayCounters>, outbox: Arc<Outbox>, clock: Arc<dyn Clock>) {
    let mut refusals = counters.refused.subscribe();
    // Held weakly, so the relay's end (its counters dropped) ends this task.
    let weak = Arc::downgrade(&counters);
    drop(counters);
    let counters = weak;
    while refusals.changed().await.is_ok() {
        let Some(refusal) = *refusals.borrow_and_update() else {
            continue;
        };
        let what = match refusal {
            casewire_relay::Refusal::Authentication => {
                "Kafka refused this client's credentials (KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD)"
            }
            casewire_relay::Refusal::Certificate => {
                "the Kafka broker's certificate did not verify against KAFKA_SSL_CA_LOCATION"
            }
            casewire_relay::Refusal::Authorization => {
                "Kafka's ACLs do not let this client write to the topic"
            }
        };
        let reason = counters.upgrade().and_then(|c| c.last_error());
        let mut data = serde_json::Map::new();
        data.insert(
            "message".into(),
            format!("{what}: events wait on this machine and no attempt is counted; correct the Kafka settings").into(),
        );
        data.insert("refusal".into(), refusal.as_str().into());
        data.insert("reason".into(), reason.into());
        let event = casewire_events::Event::new(
            casewire_events::EventType::SystemAlert,
            data,
            casewire_events::Metadata {
                source: Some(crate::SOURCE.into()),
                ..casewire_events::Metadata::default()
            },
            clock.now(),
            &mut rand::rng(),
        )
        .with_priority(casewire_events::Priority::Critical);
        let outbox = outbox.clone();
        let queued = tokio::task::spawn_blocking(move || outbox.enqueue(&event).wait()).await;
        if let Ok(Err(e)) = queued {
            tracing::error!(error = %e, "could not queue the alert of Kafka's refusal");
        }
    }
}

/// Writes the relay's delivery reports into the case timelines, a batch at most every 250 ms
/// so a drained backlog costs a handful of commits, until the relay stops.
async fn record_deliveries(
    mut deliveries: tokio::sync::broadcast::Receiver<Arc<[i64]>>,
    cases: Arc<Cases>,
    clock: Arc<dyn Clock>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let mut seqs: Vec<i64> = match deliveries.recv().await {
            Ok(burst) => burst.to_vec(),
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "timeline delivery times missed a few bursts");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let batch_until = tokio::time::Instant::now() + Duration::from_millis(250);
        let mut closed = false;
        while let Ok(next) = tokio::time::timeout_at(batch_until, deliveries.recv()).await {
            match next {
                Ok(burst) => seqs.extend_from_slice(&burst),
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => {
                    closed = true;
                    break;
                }
            }
        }
        let (cases, at) = (cases.clone(), clock.now_ms());
        let written = tokio::task::spawn_blocking(move || cases.record_deliveries(seqs, at)).await;
        if let Ok(Err(e)) = written {
            tracing::warn!(error = %e, "could not record delivery times in the case timelines");
        }
        if closed {
            return;
        }
    }
}

fn relay_config(settings: &Settings) -> Result<RelayConfig, CoreError> {
    RelayConfig::from_settings(|k| settings.get(k), settings.librdkafka.clone())
        .map_err(|e| CoreError::Invalid(e.to_string()))
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
