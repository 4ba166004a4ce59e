//! The update channel: Tauri's updater (`tauri-plugin-updater`), for builds that carry one.
//! The release workflow builds the app with the updater's public key and the release's
//! manifest as its endpoint; a copy built without them (a developer's, the test command's
//! plain build) has no channel and says so. When and whether to look, which version to install
//! and the order of the install are `casewire_core::updates`'; this only talks to the plugin.
//!
//! Two settings serve organisations that mirror updates internally: `CASEWIRE_UPDATE_ENDPOINT`
//! (an `https` URL of a manifest, in place of the build's) and `CASEWIRE_UPDATE_CA` (a PEM file
//! of a certificate authority to trust for it besides the system's). The package must still be
//! signed with the key built into the app.

use std::sync::Mutex;
use std::time::Duration;

use casewire_core::updates::{Progress, SourceFuture};
use casewire_core::{Release, Settings, UpdateError, UpdateSource};
use tauri_plugin_updater::{Update, UpdaterExt};

/// A check or a download that takes longer than this has failed.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Whether this build carries an update channel (`plugins.updater` in its configuration).
pub(crate) fn built_in(config: &tauri::Config) -> bool {
    config.plugins.0.get("updater").is_some_and(|c| {
        c.get("pubkey")
            .and_then(|k| k.as_str())
            .is_some_and(|k| !k.is_empty())
    })
}

/// Tauri's updater, as the backend's update channel.
pub(crate) struct Channel {
    app: tauri::AppHandle,
    endpoint: Option<String>,
    ca: Option<String>,
    /// What the last check found.
    offer: tokio::sync::Mutex<Option<Update>>,
    /// The package downloaded and verified, until it is installed.
    package: Mutex<Option<Vec<u8>>>,
}

impl Channel {
    pub(crate) fn new(app: tauri::AppHandle, settings: &Settings) -> Channel {
        Channel {
            app,
            endpoint: settings.get("CASEWIRE_UPDATE_ENDPOINT"),
            ca: settings.get("CASEWIRE_UPDATE_CA"),
            offer: tokio::sync::Mutex::new(None),
            package: Mutex::new(None),
        }
    }

    fn updater(&self) -> Result<tauri_plugin_updater::Updater, UpdateError> {
        let unreachable = |what: &str, e: &dyn std::fmt::Display| {
            UpdateError::Unreachable(format!("{what}: {e}"))
        };
        let mut builder = self.app.updater_builder().timeout(TIMEOUT);
        if let Some(endpoint) = &self.endpoint {
            let url = tauri::Url::parse(endpoint)
                .map_err(|e| unreachable("CASEWIRE_UPDATE_ENDPOINT is not a URL", &e))?;
            builder = builder
                .endpoints(vec![url])
                .map_err(|e| unreachable("CASEWIRE_UPDATE_ENDPOINT", &e))?;
        }
        if let Some(path) = &self.ca {
            let pem = std::fs::read(path)
                .map_err(|e| unreachable(&format!("CASEWIRE_UPDATE_CA: cannot read {path}"), &e))?;
            let ca = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                unreachable(
                    &format!("CASEWIRE_UPDATE_CA: {path} is not a PEM certificate"),
                    &e,
                )
            })?;
            builder =
                builder.configure_client(move |client| client.add_root_certificate(ca.clone()));
        }
        builder
            .build()
            .map_err(|e| unreachable("the updater cannot run here", &e))
    }
}

impl UpdateSource for Channel {
    fn check(&self) -> SourceFuture<'_, Option<Release>> {
        Box::pin(async move {
            let found = self
                .updater()?
                .check()
                .await
                .map_err(|e| UpdateError::Unreachable(e.to_string()))?;
            let release = found.as_ref().map(|u| Release {
                version: u.version.clone(),
                notes: u.body.clone(),
                published: u.date.and_then(|d| {
                    chrono::DateTime::<chrono::Utc>::from_timestamp(d.unix_timestamp(), 0)
                        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                }),
            });
            *self.offer.lock().await = found;
            Ok(release)
        })
    }

    fn download<'a>(&'a self, version: &'a str, progress: Progress<'a>) -> SourceFuture<'a, ()> {
        Box::pin(async move {
            let offer = self.offer.lock().await;
            let update = offer
                .as_ref()
                .filter(|u| u.version == version)
                .ok_or_else(|| UpdateError::NotOffered {
                    asked: version.to_owned(),
                    offered: offer.as_ref().map(|u| u.version.clone()),
                })?;
            let mut received = 0u64;
            let bytes = update
                .download(
                    |chunk, total| {
                        received += chunk as u64;
                        progress(received, total);
                    },
                    || {},
                )
                .await
                .map_err(refusal)?;
            *lock(&self.package) = Some(bytes);
            Ok(())
        })
    }

    fn install(&self) -> Result<(), UpdateError> {
        let package = lock(&self.package)
            .take()
            .ok_or_else(|| UpdateError::Install("no package was downloaded".into()))?;
        let offer = self
            .offer
            .try_lock()
            .map_err(|_| UpdateError::Install("the update is still being looked at".into()))?;
        let update = offer
            .as_ref()
            .ok_or_else(|| UpdateError::Install("no update is on offer".into()))?;
        // On Linux the package manager installs it (asking for an administrator's password
        // through polkit when needed); on Windows the installer takes over and ends the app.
        update
            .install(package)
            .map_err(|e| UpdateError::Install(e.to_string()))
    }

    fn restart(&self) {
        // Through the event loop: the relay's and the window's exits run, the single-instance
        // lock is released, then the installed version starts.
        self.app.request_restart();
    }
}

/// What a failed download means to the person: a signature that does not hold, or a channel
/// that did not deliver.
fn refusal(e: tauri_plugin_updater::Error) -> UpdateError {
    use tauri_plugin_updater::Error as E;
    match e {
        E::Minisign(_) | E::Base64(_) | E::SignatureUtf8(_) | E::SignedVersionMismatch { .. } => {
            UpdateError::BadSignature(e.to_string())
        }
        _ => UpdateError::Unreachable(e.to_string()),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
