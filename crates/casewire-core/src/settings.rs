//! Settings, from four layers: the environment, then a TOML configuration file, then the
//! desktop's own settings (written from the settings screen), then the defaults.
//!
//! The crate never reads the environment: a binary captures the variables it knows
//! ([`KNOWN`]) and passes them in. The file is `--config FILE` (or `CASEWIRE_CONFIG`), else
//! `casewire.toml` in the data directory if there is one. Its `[settings]` table takes any
//! setting by its environment variable's name; its `[librdkafka]` table takes any other
//! librdkafka producer property for the relay (the properties that carry the delivery
//! guarantees are refused by the relay). An unknown setting, a value that is not a string,
//! number or boolean, or a file that is not TOML stops the start with the file and key named.
//!
//! ```toml
//! [settings]
//! KAFKA_BROKERS = "kafka-1:9092,kafka-2:9092"
//! RETRY_INTERVAL = 10000
//!
//! [librdkafka]
//! "socket.keepalive.enable" = true
//! ```
//!
//! Every setting has a [`Spec`]: whether it is a secret (never shown, never written to the
//! desktop's store file), whether the settings screen may change it, and whether a change
//! takes effect at once (the relay's settings restart the relay) or at the next start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// How a change to a setting takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Applies {
    /// At once: the relay restarts with it, or the UI reads it.
    Now,
    /// When the app next starts (it shapes the database or the server).
    NextStart,
}

/// What Casewire knows about one setting.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The environment variable's name, also the key everywhere else.
    pub key: &'static str,
    /// Never shown by the API, never written to the desktop's store file.
    pub secret: bool,
    /// The settings screen may change it (when the environment does not fix it).
    pub editable: bool,
    /// When a change takes effect.
    pub applies: Applies,
    /// The value used when no layer sets one, as shown on the settings screen.
    pub default: Option<&'static str>,
}

const fn spec(
    key: &'static str,
    editable: bool,
    applies: Applies,
    default: Option<&'static str>,
) -> Spec {
    Spec {
        key,
        secret: false,
        editable,
        applies,
        default,
    }
}

/// Every setting, in the order the settings screen lists them.
pub const KNOWN: &[Spec] = &[
    spec("KAFKA_BROKERS", true, Applies::Now, None),
    spec("KAFKA_TOPIC", true, Applies::Now, Some("fraud.events")),
    spec(
        "KAFKA_CLIENT_ID",
        true,
        Applies::Now,
        Some("fraud-evidence-backend"),
    ),
    spec(
        "KAFKA_SECURITY_PROTOCOL",
        true,
        Applies::Now,
        Some("plaintext"),
    ),
    spec("KAFKA_SASL_MECHANISM", true, Applies::Now, None),
    spec("KAFKA_SASL_USERNAME", true, Applies::Now, None),
    Spec {
        key: "KAFKA_SASL_PASSWORD",
        secret: true,
        editable: true,
        applies: Applies::Now,
        default: None,
    },
    spec("KAFKA_SSL_CA_LOCATION", true, Applies::Now, None),
    spec(
        "KAFKA_MESSAGE_TIMEOUT_MS",
        false,
        Applies::Now,
        Some("30000"),
    ),
    spec("KAFKA_RELAY_WINDOW", false, Applies::Now, Some("5000")),
    spec("RETRY_INTERVAL", true, Applies::NextStart, Some("10000")),
    spec("MAX_RETRIES", true, Applies::NextStart, Some("10")),
    spec(
        "CASEWIRE_QUEUE_QUOTA_BYTES",
        true,
        Applies::NextStart,
        Some("1073741824"),
    ),
    spec("CASEWIRE_IDLE_LOCK_MINUTES", true, Applies::Now, Some("15")),
    spec("CASEWIRE_THEME", true, Applies::Now, Some("system")),
    spec("CASEWIRE_CLOSE_TO_TRAY", true, Applies::Now, Some("true")),
    spec("CASEWIRE_UPDATE_CHECK", true, Applies::Now, Some("false")),
    spec("CASEWIRE_UPDATE_ENDPOINT", false, Applies::NextStart, None),
    spec("CASEWIRE_UPDATE_CA", false, Applies::NextStart, None),
    spec("QUEUE_PERSIST", false, Applies::NextStart, Some("true")),
    spec(
        "CASEWIRE_LISTEN",
        false,
        Applies::NextStart,
        Some("127.0.0.1:5050"),
    ),
    spec(
        "CASEWIRE_HTTP_TIMEOUT_MS",
        false,
        Applies::NextStart,
        Some("10000"),
    ),
    spec(
        "CASEWIRE_HTTP_MAX_CONNECTIONS",
        false,
        Applies::NextStart,
        Some("512"),
    ),
    spec(
        "CASEWIRE_SHUTDOWN_GRACE_MS",
        false,
        Applies::NextStart,
        Some("10000"),
    ),
    spec(
        "CASEWIRE_MAX_EVIDENCE_BYTES",
        false,
        Applies::NextStart,
        Some("104857600"),
    ),
    spec("CASEWIRE_ENCRYPTION", false, Applies::NextStart, Some("on")),
    spec("CASEWIRE_KEY_STORE", false, Applies::NextStart, None),
    spec("CASEWIRE_KEY_FILE", false, Applies::NextStart, None),
    // A node's URL may carry a provider's API key in its path or query.
    Spec {
        key: "CASEWIRE_CHAIN_RPC_URL",
        secret: true,
        editable: true,
        applies: Applies::NextStart,
        default: None,
    },
    spec("CASEWIRE_CHAIN_ID", true, Applies::NextStart, None),
    spec("CASEWIRE_ANCHOR_CONTRACT", true, Applies::NextStart, None),
    spec(
        "CASEWIRE_ANCHOR_CONFIRMATIONS",
        true,
        Applies::NextStart,
        Some("12"),
    ),
    spec("CASEWIRE_ANCHOR_KEY_FILE", false, Applies::NextStart, None),
    spec(
        "CASEWIRE_ANCHOR_POLL_MS",
        false,
        Applies::NextStart,
        Some("5000"),
    ),
];

/// The spec of `key`, if Casewire knows it.
pub fn spec_of(key: &str) -> Option<&'static Spec> {
    KNOWN.iter().find(|s| s.key == key)
}

/// Where a setting's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An environment variable: wins over everything, and cannot be changed from the app.
    Environment,
    /// The configuration file.
    File,
    /// The desktop's settings (the settings screen).
    Desktop,
    /// Nothing set it.
    Default,
}

/// One setting as the settings screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingView {
    /// The variable's name.
    pub key: String,
    /// The value in effect; always `None` for a secret.
    pub value: Option<String>,
    /// Where it comes from.
    pub source: Source,
    /// Whether the settings screen may change it now: editable, and not fixed by the
    /// environment or the configuration file.
    pub editable: bool,
    /// A secret: its value is never shown.
    pub secret: bool,
    /// Whether it has a value at all (for a secret, the only thing shown).
    pub is_set: bool,
    /// When a change takes effect.
    pub applies: Applies,
}

/// A scalar TOML value.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Integer(i64),
    Float(f64),
    Flag(bool),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Scalar::Text(s) => s,
            Scalar::Integer(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Flag(b) => b.to_string(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    settings: BTreeMap<String, Scalar>,
    #[serde(default)]
    librdkafka: BTreeMap<String, Scalar>,
}

/// The layers, merged on each look-up.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    environment: BTreeMap<String, String>,
    file: BTreeMap<String, String>,
    desktop: BTreeMap<String, String>,
    /// librdkafka properties from the file, for the relay.
    pub librdkafka: BTreeMap<String, String>,
}

impl Settings {
    /// The environment's values of the known settings, looked up through `var` (a binary
    /// passes `|k| std::env::var(k).ok()`), and the configuration file: `explicit`, else
    /// `casewire.toml` in `data_dir` if it exists.
    pub fn load(
        var: impl Fn(&str) -> Option<String>,
        explicit: Option<&Path>,
        data_dir: &Path,
    ) -> Result<Settings, CoreError> {
        let environment = KNOWN
            .iter()
            .filter_map(|s| var(s.key).map(|v| (s.key.to_owned(), v)))
            .collect();
        let default = data_dir.join("casewire.toml");
        let path: PathBuf = match explicit {
            Some(path) => path.to_owned(),
            None if default.exists() => default,
            None => {
                return Ok(Settings {
                    environment,
                    ..Settings::default()
                });
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            CoreError::Config(format!(
                "reading the configuration file {}: {e}",
                path.display()
            ))
        })?;
        let file: File = toml::from_str(&text).map_err(|e| {
            CoreError::Config(format!(
                "the configuration file {} is not valid: {e}",
                path.display()
            ))
        })?;
        for key in file.settings.keys() {
            if spec_of(key).is_none() {
                let known: Vec<&str> = KNOWN.iter().map(|s| s.key).collect();
                return Err(CoreError::Config(format!(
                    "{}: [settings] has no setting {key:?}; known: {}",
                    path.display(),
                    known.join(", ")
                )));
            }
        }
        let strings = |table: BTreeMap<String, Scalar>| {
            table
                .into_iter()
                .map(|(k, v)| (k, v.into_string()))
                .collect()
        };
        Ok(Settings {
            environment,
            file: strings(file.settings),
            desktop: BTreeMap::new(),
            librdkafka: strings(file.librdkafka),
        })
    }

    /// These settings with `desktop` as the desktop layer (unknown keys are ignored: a store
    /// written by a newer version must not stop an older one).
    pub fn with_desktop(mut self, desktop: BTreeMap<String, String>) -> Settings {
        self.desktop = desktop
            .into_iter()
            .filter(|(k, _)| spec_of(k).is_some())
            .collect();
        self
    }

    /// The desktop layer.
    pub fn desktop(&self) -> &BTreeMap<String, String> {
        &self.desktop
    }

    /// A setting's value and where it comes from; `None` when nothing sets it (the caller's
    /// default applies).
    pub fn lookup(&self, key: &str) -> Option<(String, Source)> {
        if let Some(v) = self.environment.get(key) {
            return Some((v.clone(), Source::Environment));
        }
        if let Some(v) = self.file.get(key) {
            return Some((v.clone(), Source::File));
        }
        self.desktop.get(key).map(|v| (v.clone(), Source::Desktop))
    }

    /// A setting's value, from the first layer that sets it.
    pub fn get(&self, key: &str) -> Option<String> {
        self.lookup(key).map(|(v, _)| v)
    }

    /// A whole-number setting, or `default` when it is not set.
    pub fn number(&self, key: &str, default: u64) -> Result<u64, CoreError> {
        match self.get(key) {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| CoreError::Config(format!("{key}={v:?} is not a whole number"))),
            None => Ok(default),
        }
    }

    /// Every known setting as the settings screen shows it.
    pub fn describe(&self) -> Vec<SettingView> {
        KNOWN
            .iter()
            .map(|spec| {
                let found = self.lookup(spec.key);
                let source = found.as_ref().map_or(Source::Default, |(_, s)| *s);
                let value = found
                    .map(|(v, _)| v)
                    .or_else(|| spec.default.map(str::to_owned));
                SettingView {
                    key: spec.key.to_owned(),
                    is_set: value.is_some(),
                    value: if spec.secret { None } else { value },
                    source,
                    editable: spec.editable && matches!(source, Source::Desktop | Source::Default),
                    secret: spec.secret,
                    applies: spec.applies,
                }
            })
            .collect()
    }

    /// These settings with `changes` applied to the desktop layer (`None` removes a value, so
    /// the default applies again), checked: an unknown key, a setting the screen may not
    /// change, one the environment or the file fixes, or an invalid value is refused with the
    /// reason, and `self` is left as it was.
    pub fn changed(
        &self,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<Settings, CoreError> {
        let mut next = self.clone();
        for (key, value) in changes {
            let spec = spec_of(key)
                .ok_or_else(|| CoreError::Invalid(format!("there is no setting {key:?}")))?;
            if !spec.editable {
                return Err(CoreError::Invalid(format!(
                    "{key} cannot be changed from the app; set it in the environment or the configuration file"
                )));
            }
            match self.lookup(key) {
                Some((_, Source::Environment)) => {
                    return Err(CoreError::Invalid(format!(
                        "{key} is fixed by the environment variable of the same name; unset it to change it here"
                    )));
                }
                Some((_, Source::File)) => {
                    return Err(CoreError::Invalid(format!(
                        "{key} is fixed by the configuration file; change it there"
                    )));
                }
                _ => {}
            }
            match value.as_deref().map(str::trim) {
                None | Some("") => {
                    next.desktop.remove(key);
                }
                Some(v) => {
                    check_value(key, v)?;
                    next.desktop.insert(key.clone(), v.to_owned());
                }
            }
        }
        Ok(next)
    }
}

/// Checks the values that are not the relay's (the relay checks its own when it is
/// configured from the merged settings).
fn check_value(key: &str, value: &str) -> Result<(), CoreError> {
    let whole = |min: u64, max: u64| -> Result<(), CoreError> {
        match value.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(()),
            _ => Err(CoreError::Invalid(format!(
                "{key} must be a whole number from {min} to {max}, not {value:?}"
            ))),
        }
    };
    match key {
        "RETRY_INTERVAL" => whole(100, 3_600_000),
        "MAX_RETRIES" => whole(1, 1_000),
        "CASEWIRE_QUEUE_QUOTA_BYTES" => whole(1024 * 1024, 1 << 40),
        "CASEWIRE_IDLE_LOCK_MINUTES" => whole(1, 24 * 60),
        "CASEWIRE_CLOSE_TO_TRAY" | "CASEWIRE_UPDATE_CHECK"
            if !matches!(value, "true" | "false") =>
        {
            Err(CoreError::Invalid(format!(
                "{key} must be true or false, not {value:?}"
            )))
        }
        "CASEWIRE_THEME" if !matches!(value, "system" | "light" | "dark") => {
            Err(CoreError::Invalid(format!(
                "CASEWIRE_THEME must be system, light or dark, not {value:?}"
            )))
        }
        _ => Ok(()),
    }
}
