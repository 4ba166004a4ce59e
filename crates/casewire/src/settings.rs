//! Settings: the environment first, then a TOML configuration file.
//!
//! The file is `--config FILE` (or `CASEWIRE_CONFIG`), else `casewire.toml` in the data
//! directory if there is one. Its `[settings]` table takes any of the settings by its
//! environment variable's name; its `[librdkafka]` table takes any other librdkafka producer
//! property for the relay (the properties that carry Casewire's delivery guarantees are
//! refused). An unknown setting, a value that is not a string, number or boolean, or a file
//! that is not TOML stops the start with the file and key named.
//!
//! ```toml
//! [settings]
//! KAFKA_BROKERS = "kafka-1:9092,kafka-2:9092"
//! RETRY_INTERVAL = 10000
//!
//! [librdkafka]
//! "socket.keepalive.enable" = true
//! "batch.num.messages" = 5000
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// The settings Casewire itself reads, besides the relay's `KAFKA_*` ones.
const OWN: &[&str] = &[
    "CASEWIRE_LISTEN",
    "CASEWIRE_MAX_EVIDENCE_BYTES",
    "RETRY_INTERVAL",
    "MAX_RETRIES",
    "QUEUE_PERSIST",
];

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

/// Where each setting comes from.
#[derive(Default)]
pub(crate) struct Settings {
    file: BTreeMap<String, String>,
    /// librdkafka properties from the file, for the relay.
    pub(crate) librdkafka: BTreeMap<String, String>,
}

impl Settings {
    /// Reads `explicit`, or `casewire.toml` in `data_dir` if it exists; no file, no settings
    /// from a file.
    pub(crate) fn load(explicit: Option<&Path>, data_dir: &Path) -> anyhow::Result<Settings> {
        let default = data_dir.join("casewire.toml");
        let path: PathBuf = match explicit {
            Some(path) => path.to_owned(),
            None if default.exists() => default,
            None => return Ok(Settings::default()),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the configuration file {}", path.display()))?;
        let file: File = toml::from_str(&text)
            .with_context(|| format!("the configuration file {} is not valid", path.display()))?;
        for key in file.settings.keys() {
            if !OWN.contains(&key.as_str()) && !casewire_relay::SETTINGS.contains(&key.as_str()) {
                bail!(
                    "{}: [settings] has no setting {key:?}; known: {}, {}",
                    path.display(),
                    OWN.join(", "),
                    casewire_relay::SETTINGS.join(", ")
                );
            }
        }
        let strings = |table: BTreeMap<String, Scalar>| {
            table
                .into_iter()
                .map(|(k, v)| (k, v.into_string()))
                .collect()
        };
        Ok(Settings {
            file: strings(file.settings),
            librdkafka: strings(file.librdkafka),
        })
    }

    /// A setting: from the environment, else from the file.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.file.get(name).cloned())
    }

    /// A whole-number setting, or `default` when it is not set.
    pub(crate) fn number(&self, name: &str, default: u64) -> anyhow::Result<u64> {
        match self.get(name) {
            Some(v) => v
                .trim()
                .parse()
                .with_context(|| format!("{name}={v:?} is not a whole number")),
            None => Ok(default),
        }
    }
}
