//! The relay's configuration: the guide's Kafka variables, security, and librdkafka properties.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::ClientConfig;

use crate::RelayError;

/// A password or other secret: never printed, not even by `{:?}`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for handing to librdkafka.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `security.protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    #[default]
    Plaintext,
    /// TLS, no SASL.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl std::str::FromStr for SecurityProtocol {
    type Err = RelayError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "plaintext" => Ok(SecurityProtocol::Plaintext),
            "ssl" => Ok(SecurityProtocol::Ssl),
            "sasl_plaintext" => Ok(SecurityProtocol::SaslPlaintext),
            "sasl_ssl" => Ok(SecurityProtocol::SaslSsl),
            _ => Err(RelayError::Config(format!(
                "security.protocol {s:?} must be plaintext, ssl, sasl_plaintext or sasl_ssl"
            ))),
        }
    }
}

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// `PLAIN`.
    Plain,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

impl SaslMechanism {
    fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl std::str::FromStr for SaslMechanism {
    type Err = RelayError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            _ => Err(RelayError::Config(format!(
                "sasl.mechanism {s:?} must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
            ))),
        }
    }
}

/// How the relay authenticates to the brokers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// `security.protocol`.
    pub protocol: SecurityProtocol,
    /// `sasl.mechanism`, required with a SASL protocol.
    pub sasl_mechanism: Option<SaslMechanism>,
    /// `sasl.username`.
    pub username: Option<String>,
    /// `sasl.password`.
    pub password: Option<Secret>,
    /// `ssl.ca.location`: a PEM file of trusted CAs.
    pub ca_file: Option<PathBuf>,
}

/// A whole positive number, or a clear error naming the setting.
fn number(get: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<u64>, RelayError> {
    match get(name) {
        None => Ok(None),
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(RelayError::Config(format!(
                "{name}={text:?} is not a whole number above 0"
            ))),
        },
    }
}

/// librdkafka properties the relay sets itself, because its guarantees depend on them.
const FIXED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "client.id",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "max.in.flight.requests.per.connection",
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "ssl.ca.location",
    "statistics.interval.ms",
    // Per-key order needs the key-hashing partitioner; the timeout is `message_timeout`.
    "partitioner",
    "message.timeout.ms",
    "delivery.timeout.ms",
];

/// Everything the relay needs to know.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// `KAFKA_BROKERS`: comma-separated `host:port` list.
    pub brokers: String,
    /// `KAFKA_TOPIC`, default `fraud.events`.
    pub topic: String,
    /// `KAFKA_CLIENT_ID`, default `fraud-evidence-backend`.
    pub client_id: String,
    /// Authentication and TLS.
    pub security: Security,
    /// Any other librdkafka producer property, from the config file's `[kafka.properties]`.
    pub properties: BTreeMap<String, String>,
    /// Most events handed to librdkafka and not yet reported on.
    pub window: usize,
    /// `message.timeout.ms`: how long librdkafka tries one message before reporting failure.
    pub message_timeout: Duration,
    /// `linger.ms`: how long librdkafka waits to fill a batch.
    pub linger: Duration,
    /// How often a relay with no reachable broker probes for one.
    pub probe_interval: Duration,
    /// How long shutdown waits for delivery reports of events already handed to librdkafka.
    pub shutdown_timeout: Duration,
}

/// The guide's `KAFKA_TOPIC` default.
pub const DEFAULT_TOPIC: &str = "fraud.events";
/// The guide's `KAFKA_CLIENT_ID` default.
pub const DEFAULT_CLIENT_ID: &str = "fraud-evidence-backend";

/// The settings [`RelayConfig::from_settings`] reads, with the guide's names.
pub const SETTINGS: &[&str] = &[
    "KAFKA_BROKERS",
    "KAFKA_TOPIC",
    "KAFKA_CLIENT_ID",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_LOCATION",
    "KAFKA_MESSAGE_TIMEOUT_MS",
    "KAFKA_RELAY_WINDOW",
];

impl RelayConfig {
    /// Builds a configuration from named settings (the guide's `KAFKA_*` variables, see
    /// [`SETTINGS`]) looked up through `get`, plus librdkafka `properties` from a config file's
    /// section. The crate never reads the environment itself: a binary passes
    /// `|k| std::env::var(k).ok()`, or a merge of environment and config file.
    pub fn from_settings(
        get: impl Fn(&str) -> Option<String>,
        properties: BTreeMap<String, String>,
    ) -> Result<RelayConfig, RelayError> {
        let brokers = get("KAFKA_BROKERS").ok_or_else(|| {
            RelayError::Config("KAFKA_BROKERS is not set: give at least one host:port".into())
        })?;
        let mut config = RelayConfig::new(brokers);
        if let Some(topic) = get("KAFKA_TOPIC") {
            config.topic = topic;
        }
        if let Some(client_id) = get("KAFKA_CLIENT_ID") {
            config.client_id = client_id;
        }
        if let Some(protocol) = get("KAFKA_SECURITY_PROTOCOL") {
            config.security.protocol = protocol.parse()?;
        }
        if let Some(mechanism) = get("KAFKA_SASL_MECHANISM") {
            config.security.sasl_mechanism = Some(mechanism.parse()?);
        }
        config.security.username = get("KAFKA_SASL_USERNAME");
        config.security.password = get("KAFKA_SASL_PASSWORD").map(Secret::new);
        config.security.ca_file = get("KAFKA_SSL_CA_LOCATION").map(PathBuf::from);
        if let Some(ms) = number(&get, "KAFKA_MESSAGE_TIMEOUT_MS")? {
            config.message_timeout = Duration::from_millis(ms);
        }
        if let Some(window) = number(&get, "KAFKA_RELAY_WINDOW")? {
            config.window = usize::try_from(window).unwrap_or(usize::MAX);
        }
        config.properties = properties;
        // Check everything now, so a bad setting stops the start with its name.
        config.client_config()?;
        Ok(config)
    }

    /// Defaults for `brokers`.
    pub fn new(brokers: impl Into<String>) -> RelayConfig {
        RelayConfig {
            brokers: brokers.into(),
            topic: DEFAULT_TOPIC.to_owned(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            security: Security::default(),
            properties: BTreeMap::new(),
            window: 5_000,
            message_timeout: Duration::from_secs(30),
            linger: Duration::from_millis(5),
            probe_interval: Duration::from_millis(250),
            shutdown_timeout: Duration::from_secs(5),
        }
    }

    /// Checks the configuration and builds librdkafka's, reporting the first problem clearly.
    pub fn client_config(&self) -> Result<ClientConfig, RelayError> {
        let bad = |m: String| Err(RelayError::Config(m));
        let brokers: Vec<&str> = self
            .brokers
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .collect();
        if brokers.is_empty() {
            return bad("KAFKA_BROKERS is empty: give at least one host:port".into());
        }
        for broker in &brokers {
            let port = broker.rsplit_once(':').map(|(_, p)| p);
            if !port.is_some_and(|p| p.parse::<u16>().is_ok_and(|p| p > 0)) {
                return bad(format!(
                    "KAFKA_BROKERS entry {broker:?} is not host:port with a port from 1 to 65535"
                ));
            }
        }
        let topic_ok = !self.topic.is_empty()
            && self.topic.len() <= 249
            && self.topic != "."
            && self.topic != ".."
            && self
                .topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !topic_ok {
            return bad(format!(
                "KAFKA_TOPIC {:?} is not a valid topic name (letters, digits, '.', '_', '-', at most 249)",
                self.topic
            ));
        }
        if self.client_id.trim().is_empty() {
            return bad("KAFKA_CLIENT_ID is empty".into());
        }
        if self.window == 0 {
            return bad("the relay window must be at least 1".into());
        }
        if self.message_timeout < Duration::from_millis(1) {
            return bad("message.timeout.ms must be at least 1".into());
        }
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers.join(","))
            .set("client.id", &self.client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", self.linger.as_millis().to_string())
            .set(
                "message.timeout.ms",
                self.message_timeout.as_millis().to_string(),
            )
            // Reconnect quickly when a broker returns, so recovery takes well under a second.
            .set("reconnect.backoff.ms", "50")
            .set("reconnect.backoff.max.ms", "250")
            // A network that drops packets (a laptop off Wi-Fi) answers a connection attempt
            // with silence, and TCP retries its SYN after 1, 3, 7, 15 s: an attempt left to
            // run 30 s (the default) could see the link return and wait 8 s more to notice.
            // Given up after 2 s and made again, an attempt is never more than about 1.3 s
            // from the link's return. Links slower than that for TCP, TLS and SASL together
            // (about 250 ms a round trip) set it higher in `[librdkafka]`.
            .set("socket.connection.setup.timeout.ms", "2000")
            .set("statistics.interval.ms", "500")
            .set("queue.buffering.max.messages", "1000000")
            .set("security.protocol", self.security.protocol.as_str());
        let sec = &self.security;
        if sec.protocol.uses_sasl() {
            let Some(mechanism) = sec.sasl_mechanism else {
                return bad(format!(
                    "security.protocol {} needs sasl.mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)",
                    sec.protocol.as_str()
                ));
            };
            let (Some(user), Some(password)) = (&sec.username, &sec.password) else {
                return bad(format!(
                    "sasl.mechanism {} needs sasl.username and sasl.password",
                    mechanism.as_str()
                ));
            };
            config
                .set("sasl.mechanism", mechanism.as_str())
                .set("sasl.username", user)
                .set("sasl.password", password.expose());
        } else if sec.sasl_mechanism.is_some() {
            return bad(format!(
                "sasl.mechanism is set but security.protocol is {}; use sasl_plaintext or sasl_ssl",
                sec.protocol.as_str()
            ));
        }
        if let Some(ca) = &sec.ca_file {
            if !ca.is_file() {
                return bad(format!(
                    "ssl.ca.location {} is not a readable file",
                    ca.display()
                ));
            }
            config.set("ssl.ca.location", ca.display().to_string());
        }
        for (key, value) in &self.properties {
            if FIXED_PROPERTIES.contains(&key.as_str()) {
                return bad(format!(
                    "librdkafka property {key} is set by Casewire itself and cannot be overridden"
                ));
            }
            config.set(key, value);
        }
        // librdkafka checks every property's name and value here, without starting a client.
        config.create_native_config().map_err(|e| match e {
            rdkafka::error::KafkaError::ClientConfig(_, description, key, _) => {
                RelayError::Config(format!("librdkafka property {key}: {description}"))
            }
            other => RelayError::Config(other.to_string()),
        })?;
        Ok(config)
    }
}
