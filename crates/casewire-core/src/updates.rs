//! Updates of the desktop app: whether to look for them (the person's choice,
//! `CASEWIRE_UPDATE_CHECK`, off until they turn it on), what the update channel offers, and
//! installing an offer only when an admin asks for that exact version.
//!
//! The channel itself is the shell's ([`UpdateSource`]: Tauri's updater, which checks a signed
//! manifest and verifies the package's signature against the key built into the app). What
//! this module guarantees on top of it:
//! - nothing is fetched while looking for updates is off, and nothing is downloaded until an
//!   admin asks to install the version they were shown;
//! - a package that fails its signature check is refused before anything is stopped: the app
//!   keeps running as it was;
//! - the installer never runs while events are being written: the relay settles what it has
//!   in flight, then the outbox commits every write already submitted, checkpoints its WAL and
//!   refuses the rest ([`App::close`]), and only then is the package installed and the app
//!   restarted. A failed install is remembered and shown after the restart, in the old version.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{App, CoreError, Settings};

/// The running version: the workspace's one version, the packages' too.
pub const CURRENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The setting that allows looking for updates.
pub const ALLOW_KEY: &str = "CASEWIRE_UPDATE_CHECK";

/// How often an allowed app looks for updates by itself (and once, [`FIRST_LOOK`] after start).
pub const LOOK_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// How long after start the first look waits, so it never competes with the first screen.
pub const FIRST_LOOK: Duration = Duration::from_secs(30);

/// The file a failed install leaves for the restarted app to report.
const FAILED_FILE: &str = "update-failed.json";

/// A future the update channel returns.
pub type SourceFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, UpdateError>> + Send + 'a>>;

/// What a download reports as it goes: bytes received so far, and the total when known.
pub type Progress<'a> = Box<dyn Fn(u64, Option<u64>) + Send + Sync + 'a>;

/// A newer version the update channel offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    /// Its version.
    pub version: String,
    /// What changed, as the release notes say.
    pub notes: Option<String>,
    /// When it was published (RFC 3339), if the manifest says.
    pub published: Option<String>,
}

/// Where updates come from: the desktop's updater. `casewire serve` has none (it is updated
/// by its package manager).
pub trait UpdateSource: Send + Sync {
    /// Asks the channel whether a newer version than the running one is offered.
    fn check(&self) -> SourceFuture<'_, Option<Release>>;
    /// Downloads the package of `version` (offered by the last check) and verifies its
    /// signature. Nothing is installed.
    fn download<'a>(&'a self, version: &'a str, progress: Progress<'a>) -> SourceFuture<'a, ()>;
    /// Installs the package downloaded last. Called only once the outbox is closed.
    fn install(&self) -> Result<(), UpdateError>;
    /// Ends this process and starts the installed version in its place.
    fn restart(&self);
}

/// Why looking for or installing an update did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// The person has not allowed looking for updates.
    #[error(
        "looking for updates is turned off: turn on “Look for updates” (CASEWIRE_UPDATE_CHECK) first"
    )]
    Off,
    /// This copy of Casewire has no update channel.
    #[error(
        "this copy of Casewire has no update channel: it is updated by the package manager or by whoever installed it"
    )]
    NoChannel,
    /// A check or an install is already under way.
    #[error("an update is already being checked for or installed; wait for it to finish")]
    Busy,
    /// The version asked for is not the one on offer.
    #[error("version {asked} is not the update on offer{}; check for updates again", offered.as_deref().map(|v| format!(" ({v} is)")).unwrap_or_default())]
    NotOffered {
        /// The version asked for.
        asked: String,
        /// The version on offer, if any.
        offered: Option<String>,
    },
    /// The channel could not be reached or answered nonsense.
    #[error("the update channel could not be reached: {0}")]
    Unreachable(String),
    /// The package's signature does not match the key built into Casewire.
    #[error(
        "the downloaded update is not signed with Casewire's key, so it was not installed: {0}"
    )]
    BadSignature(String),
    /// The package could not be installed.
    #[error("the update could not be installed: {0}")]
    Install(String),
}

/// What is happening with updates right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdatePhase {
    /// Nothing.
    Idle,
    /// Asking the channel.
    Checking,
    /// Downloading and verifying a package.
    Downloading,
    /// The outbox is closed and the package being installed; the app restarts next.
    Installing,
}

/// Updates as the settings screen shows them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateView {
    /// The running version.
    pub current_version: String,
    /// Whether this copy has an update channel at all.
    pub channel: bool,
    /// Whether the person allows looking for updates (`CASEWIRE_UPDATE_CHECK`).
    pub allowed: bool,
    /// What is happening now.
    pub phase: UpdatePhase,
    /// When the channel last answered (RFC 3339).
    pub checked_at: Option<String>,
    /// The newer version on offer, if the last check found one.
    pub available: Option<Release>,
    /// Bytes of the package downloaded so far, while downloading.
    pub downloaded: Option<u64>,
    /// The package's size, when the channel says.
    pub total: Option<u64>,
    /// What went wrong last (a refused package, a failed install before the last restart),
    /// until the next check succeeds.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    phase: Option<UpdatePhase>,
    checked_at: Option<i64>,
    available: Option<Release>,
    downloaded: Option<u64>,
    total: Option<u64>,
    last_error: Option<String>,
}

/// A failed install, written before the restart and read by the next start.
#[derive(Serialize, Deserialize)]
struct Failed {
    version: String,
    reason: String,
}

/// The app's updates: the channel (given by the shell), and what was found.
pub struct Updates {
    source: OnceLock<Arc<dyn UpdateSource>>,
    state: Mutex<State>,
    failed_file: PathBuf,
}

impl std::fmt::Debug for Updates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updates")
            .field("channel", &self.source.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Updates {
    /// Updates for the app in `data_dir`, reporting an install that failed before the last
    /// restart.
    pub fn open(data_dir: &Path) -> Updates {
        let failed_file = data_dir.join(FAILED_FILE);
        let last_error = std::fs::read(&failed_file).ok().map(|bytes| {
            let _ = std::fs::remove_file(&failed_file);
            match serde_json::from_slice::<Failed>(&bytes) {
                Ok(f) => format!(
                    "the update to {} could not be installed, so Casewire {CURRENT_VERSION} restarted instead: {}",
                    f.version, f.reason
                ),
                Err(_) => "an update could not be installed before the last restart".to_owned(),
            }
        });
        if let Some(e) = &last_error {
            tracing::warn!("{e}");
        }
        Updates {
            source: OnceLock::new(),
            state: Mutex::new(State {
                last_error,
                ..State::default()
            }),
            failed_file,
        }
    }

    /// Gives the update channel (once: the desktop does at start).
    pub fn provide(&self, source: Arc<dyn UpdateSource>) {
        if self.source.set(source).is_err() {
            tracing::warn!("an update channel was given twice; the first is kept");
        }
    }

    /// Whether `settings` allow looking for updates.
    pub fn allowed(settings: &Settings) -> bool {
        settings.get(ALLOW_KEY).is_some_and(|v| v == "true")
    }

    /// Updates as the settings screen shows them.
    pub fn view(&self, settings: &Settings) -> UpdateView {
        let state = lock(&self.state);
        UpdateView {
            current_version: CURRENT_VERSION.to_owned(),
            channel: self.source.get().is_some(),
            allowed: Updates::allowed(settings),
            phase: state.phase.unwrap_or(UpdatePhase::Idle),
            checked_at: state.checked_at.map(crate::rfc3339),
            available: state.available.clone(),
            downloaded: state.downloaded,
            total: state.total,
            last_error: state.last_error.clone(),
        }
    }

    /// Asks the channel for a newer version, if the person allows it.
    pub async fn check(&self, settings: &Settings, now_ms: i64) -> Result<(), UpdateError> {
        let source = self.ready(settings)?;
        self.begin(UpdatePhase::Checking)?;
        let found = source.check().await;
        let mut state = lock(&self.state);
        state.phase = None;
        match found {
            Ok(release) => {
                if let Some(r) = &release {
                    tracing::info!(version = %r.version, "an update is on offer");
                }
                state.checked_at = Some(now_ms);
                state.available = release;
                state.last_error = None;
                Ok(())
            }
            Err(e) => {
                state.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Downloads and verifies `version` (the one on offer), then closes `app` (relay, then
    /// outbox), installs it and restarts. Returns once the restart is under way; a package that
    /// fails its check returns the error with the app still running as it was.
    pub async fn install(&self, app: &App, version: &str) -> Result<(), UpdateError> {
        let source = self.ready(&app.settings())?;
        let offered = lock(&self.state).available.clone();
        if offered.as_ref().map(|r| r.version.as_str()) != Some(version) {
            return Err(UpdateError::NotOffered {
                asked: version.to_owned(),
                offered: offered.map(|r| r.version),
            });
        }
        self.begin(UpdatePhase::Downloading)?;
        let progress: Progress<'_> = Box::new(|received, total| {
            let mut state = lock(&self.state);
            state.downloaded = Some(received);
            state.total = total;
        });
        if let Err(e) = source.download(version, progress).await {
            tracing::warn!(version, error = %e, "update refused");
            let mut state = lock(&self.state);
            state.phase = None;
            state.downloaded = None;
            state.last_error = Some(e.to_string());
            return Err(e);
        }
        lock(&self.state).phase = Some(UpdatePhase::Installing);
        tracing::info!(version, "update verified; closing the outbox to install it");
        app.close().await;
        if let Err(e) = source.install() {
            // The outbox is closed, so this process can do no more work: the restart brings
            // up the version still installed, which says what happened.
            tracing::error!(version, error = %e, "update not installed; restarting as before");
            let failed = Failed {
                version: version.to_owned(),
                reason: e.to_string(),
            };
            let written = serde_json::to_vec(&failed)
                .map_err(std::io::Error::other)
                .and_then(|bytes| crate::private::write_file(&self.failed_file, &bytes));
            if let Err(w) = written {
                tracing::warn!(error = %w, "could not record the failed update for after the restart");
            }
        } else {
            tracing::info!(version, "update installed; restarting");
        }
        source.restart();
        Ok(())
    }

    /// Looks for updates [`FIRST_LOOK`] after start and every [`LOOK_EVERY`] while allowed,
    /// until `app` is gone. Spawned by the desktop.
    pub async fn look_regularly(app: std::sync::Weak<App>) {
        tokio::time::sleep(FIRST_LOOK).await;
        loop {
            let Some(app) = app.upgrade() else { return };
            let settings = app.settings();
            if Updates::allowed(&settings)
                && app.updates.source.get().is_some()
                && let Err(e) = app.updates.check(&settings, app.clock.now_ms()).await
            {
                tracing::info!(error = %e, "looking for updates failed; trying again later");
            }
            drop(app);
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }

    fn ready(&self, settings: &Settings) -> Result<&Arc<dyn UpdateSource>, UpdateError> {
        let source = self.source.get().ok_or(UpdateError::NoChannel)?;
        if !Updates::allowed(settings) {
            return Err(UpdateError::Off);
        }
        Ok(source)
    }

    fn begin(&self, phase: UpdatePhase) -> Result<(), UpdateError> {
        let mut state = lock(&self.state);
        if state.phase.is_some() {
            return Err(UpdateError::Busy);
        }
        state.phase = Some(phase);
        Ok(())
    }
}

impl From<UpdateError> for CoreError {
    fn from(e: UpdateError) -> CoreError {
        CoreError::Update(e)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
