//! The event document of the guide's schema, its id, and how it maps onto a Kafka message.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{EventError, EventType, Priority};

/// `ce_source` when an event's metadata names no source.
pub const DEFAULT_SOURCE: &str = "casewire";

/// An event id in the guide's shape, `evt_<unix ms>_<hex>`.
///
/// Generated ids carry 64 random bits (16 hex digits), so two laptops creating events in the same
/// millisecond do not collide; ids imported from the guide's queue file carry 6.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    /// A fresh id for an event created at `unix_ms`.
    pub fn generate(unix_ms: i64, rng: &mut impl RngCore) -> EventId {
        EventId(format!("evt_{unix_ms}_{:016x}", rng.next_u64()))
    }

    /// Checks the shape `evt_<digits>_<at least 6 lowercase hex digits>`.
    pub fn parse(id: &str) -> Result<EventId, EventError> {
        let bad = || EventError::BadEventId(id.to_owned());
        let rest = id.strip_prefix("evt_").ok_or_else(bad)?;
        let (ms, hex) = rest.split_once('_').ok_or_else(bad)?;
        let ms_ok = !ms.is_empty() && ms.len() <= 16 && ms.bytes().all(|b| b.is_ascii_digit());
        let hex_ok = (6..=32).contains(&hex.len())
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ms_ok && hex_ok {
            Ok(EventId(id.to_owned()))
        } else {
            Err(bad())
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = String::deserialize(deserializer)?;
        EventId::parse(&id).map_err(serde::de::Error::custom)
    }
}

/// Who and what produced an event. The guide's five keys, each optional because the guide's own
/// examples omit some, plus any other keys a publisher adds (the examples add `priority`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The producing system, e.g. `fraud-evidence-backend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The producing system's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `production`, `staging`, `development`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The authenticated user whose action caused the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The address the action came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// Any other keys, kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Metadata {
    fn is_empty(&self) -> bool {
        *self == Metadata::default()
    }
}

/// One domain event, serialising exactly to the guide's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "WireEvent")]
pub struct Event {
    /// Unique id, also the `ce_id` header and the key of last resort.
    pub event_id: EventId,
    /// What happened.
    pub event_type: EventType,
    /// When it happened, written as RFC 3339 with milliseconds and `Z`.
    #[serde(serialize_with = "serialize_timestamp")]
    pub timestamp: DateTime<Utc>,
    /// Delivery urgency.
    pub priority: Priority,
    /// The type-specific payload, a JSON object.
    pub data: Map<String, Value>,
    /// Who and what produced the event.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

fn serialize_timestamp<S: serde::Serializer>(
    at: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The event as it arrives, before its fields are checked one by one, so that each problem gets
/// its own error rather than serde's generic message.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEvent {
    event_id: String,
    event_type: String,
    timestamp: String,
    /// Absent in the guide's queue-file format: the type's default applies.
    priority: Option<String>,
    data: Value,
    #[serde(default)]
    metadata: Option<Metadata>,
}

impl TryFrom<WireEvent> for Event {
    type Error = EventError;

    fn try_from(wire: WireEvent) -> Result<Self, Self::Error> {
        let event_type: EventType = wire.event_type.parse()?;
        let priority = match wire.priority {
            Some(p) => p.parse()?,
            None => event_type.default_priority(),
        };
        let Value::Object(data) = wire.data else {
            return Err(EventError::DataNotObject);
        };
        Ok(Event {
            event_id: EventId::parse(&wire.event_id)?,
            event_type,
            timestamp: DateTime::parse_from_rfc3339(&wire.timestamp)
                .map_err(|_| EventError::BadTimestamp(wire.timestamp.clone()))?
                .with_timezone(&Utc),
            priority,
            data,
            metadata: wire.metadata.unwrap_or_default(),
        })
    }
}

impl Event {
    /// A new event of `event_type` created now, with the type's default priority and a fresh id.
    pub fn new(
        event_type: EventType,
        data: Map<String, Value>,
        metadata: Metadata,
        now: DateTime<Utc>,
        rng: &mut impl RngCore,
    ) -> Event {
        Event {
            event_id: EventId::generate(now.timestamp_millis(), rng),
            event_type,
            // Milliseconds are all the schema carries: truncate now so a round trip is exact.
            timestamp: DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now),
            priority: event_type.default_priority(),
            data,
            metadata,
        }
    }

    /// The same event with its priority overridden, as the guide's `publishEvent(…, {priority})`.
    pub fn with_priority(mut self, priority: Priority) -> Event {
        self.priority = priority;
        self
    }

    /// Parses one event document, reporting the first problem precisely.
    pub fn from_json(bytes: &[u8]) -> Result<Event, EventError> {
        let wire: WireEvent = serde_json::from_slice(bytes).map_err(EventError::Json)?;
        Event::try_from(wire)
    }

    /// The event document, exactly as it goes into the Kafka message value.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a struct of strings, numbers and JSON maps into memory cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The Kafka message key: events with the same key reach the topic in commit order.
    /// It is `data.caseId`, else `data.evidenceId`, else `data.wallet` (lowercased, so checksummed
    /// and plain spellings of one wallet share a key), else the event id.
    pub fn partition_key(&self) -> String {
        let text = |field: &str| {
            self.data
                .get(field)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        if let Some(case) = text("caseId") {
            case.to_owned()
        } else if let Some(evidence) = text("evidenceId") {
            evidence.to_owned()
        } else if let Some(wallet) = text("wallet") {
            wallet.to_ascii_lowercase()
        } else {
            self.event_id.to_string()
        }
    }

    /// The Kafka headers of the event: the CloudEvents binary-mode attributes, its priority and
    /// the value's content type.
    pub fn headers(&self) -> [(&'static str, String); 7] {
        [
            ("ce_specversion", "1.0".to_owned()),
            ("ce_id", self.event_id.to_string()),
            ("ce_type", self.event_type.to_string()),
            (
                "ce_source",
                self.metadata
                    .source
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SOURCE.to_owned()),
            ),
            (
                "ce_time",
                self.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
            ),
            ("priority", self.priority.to_string()),
            ("content-type", "application/json".to_owned()),
        ]
    }
}
