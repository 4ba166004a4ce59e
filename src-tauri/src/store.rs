//! The desktop's settings between runs: `tauri-plugin-store`'s JSON file in the data directory
//! for the settings screen's values, and the OS keyring (Secret Service on Linux, Keychain on
//! macOS, Credential Manager on Windows) for the SASL password, which never touches the file.

use std::collections::BTreeMap;
use std::sync::Arc;

use casewire_core::{CoreError, SettingsStore, settings};
use tauri::Wry;
use tauri_plugin_store::Store;

/// The keyring's service name for Casewire's secrets.
const KEYRING_SERVICE: &str = "org.casewire.desktop";

/// The settings store of the desktop.
pub(crate) struct DesktopStore {
    store: Arc<Store<Wry>>,
}

impl DesktopStore {
    /// The store at `path` (opened, or created empty).
    pub(crate) fn open(
        app: &tauri::AppHandle,
        path: &std::path::Path,
    ) -> Result<DesktopStore, CoreError> {
        let store = tauri_plugin_store::StoreBuilder::new(app, path)
            .disable_auto_save()
            .build()
            .map_err(|e| CoreError::Storage(format!("opening the settings store: {e}")))?;
        Ok(DesktopStore { store })
    }
}

fn keyring(key: &str) -> Result<keyring::Entry, CoreError> {
    keyring::Entry::new(KEYRING_SERVICE, key)
        .map_err(|e| CoreError::Storage(format!("the OS keyring is unavailable ({e})")))
}

fn secrets() -> impl Iterator<Item = &'static str> {
    settings::KNOWN.iter().filter(|s| s.secret).map(|s| s.key)
}

impl SettingsStore for DesktopStore {
    fn load(&self) -> Result<BTreeMap<String, String>, CoreError> {
        let mut values: BTreeMap<String, String> = self
            .store
            .entries()
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_owned())))
            .collect();
        for key in secrets() {
            // A keyring that cannot be reached leaves the secret unset, said once here: the
            // relay then reports the refused login, and the settings screen can set it again.
            match keyring(key).and_then(|e| {
                e.get_password().map(Some).or_else(|e| match e {
                    keyring::Error::NoEntry => Ok(None),
                    e => Err(CoreError::Storage(e.to_string())),
                })
            }) {
                Ok(Some(secret)) => {
                    values.insert(key.to_owned(), secret);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(setting = key, error = %e, "a secret could not be read from the OS keyring")
                }
            }
        }
        Ok(values)
    }

    fn save(&self, values: &BTreeMap<String, String>) -> Result<(), CoreError> {
        // Secrets first: if the keyring refuses, the file is left as it was.
        for key in secrets() {
            let entry = keyring(key)?;
            let result = match values.get(key) {
                Some(secret) => entry.set_password(secret),
                None => match entry.delete_credential() {
                    Err(keyring::Error::NoEntry) => Ok(()),
                    other => other,
                },
            };
            result.map_err(|e| {
                CoreError::Storage(format!("the OS keyring refused to keep {key} ({e})"))
            })?;
        }
        self.store.clear();
        for (key, value) in values {
            if !secrets().any(|s| s == key) {
                self.store.set(key.clone(), value.clone());
            }
        }
        self.store
            .save()
            .map_err(|e| CoreError::Storage(format!("saving the settings: {e}")))
    }

    fn keeps_secrets(&self) -> bool {
        true
    }
}
