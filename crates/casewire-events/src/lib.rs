//! The Casewire event model: what an event is, before anything stores or sends it.
//!
//! An [`Event`] serialises exactly to the guide's schema (`eventId`, `eventType`, `timestamp`,
//! `priority`, `data`, `metadata`). Each of the 20 [`EventType`]s (the guide's 18 and
//! two for user administration) has a default [`Priority`] and a
//! `data` schema ([`required_fields`]); [`Event::validate`] checks both and the size cap.
//! [`Event::partition_key`] and [`Event::headers`] define the Kafka message around the document.
//!
//! This crate does no I/O: it knows nothing of SQLite, Kafka, HTTP or Tauri. Time and randomness
//! come in as arguments ([`Event::new`] takes `now` and an RNG), so callers decide both.
#![deny(missing_docs)]

pub mod chain;
mod event;
mod types;
mod validate;
mod wallet;

pub use event::{DEFAULT_SOURCE, Event, EventId, Metadata};
pub use types::{EventType, Priority};
pub use validate::{DEFAULT_MAX_EVENT_BYTES, FieldKind, Limits, required_fields};
pub use wallet::{
    ACCEPTED_FORMATS, Chain, Wallet, WalletError, parse_wallet, validate_evm_address,
    validate_wallet,
};

/// Why an event document or event is not acceptable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The document is not JSON, or lacks one of the schema's top-level keys.
    #[error("event is not valid JSON of the event schema: {0}")]
    Json(#[source] serde_json::Error),
    /// `eventType` names no known event type.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// `priority` is not critical, high, medium or low.
    #[error("unknown priority {0:?} (expected critical, high, medium or low)")]
    UnknownPriority(String),
    /// `eventId` does not have the shape `evt_<unix ms>_<hex>`.
    #[error("event id {0:?} does not have the shape evt_<unix ms>_<hex>")]
    BadEventId(String),
    /// `timestamp` is not an RFC 3339 date-time.
    #[error("timestamp {0:?} is not an RFC 3339 date-time")]
    BadTimestamp(String),
    /// `data` is not a JSON object.
    #[error("event data must be a JSON object")]
    DataNotObject,
    /// A field the event type requires is absent or null.
    #[error("{event_type} event is missing data.{field}")]
    MissingField {
        /// The event's type.
        event_type: EventType,
        /// The missing field.
        field: &'static str,
    },
    /// A field holds the wrong kind of value.
    #[error("{event_type} event: data.{field} must be {expected}")]
    WrongFieldType {
        /// The event's type.
        event_type: EventType,
        /// The offending field.
        field: &'static str,
        /// What the field must hold.
        expected: FieldKind,
    },
    /// A wallet field is not a valid address.
    #[error("data.{field} is not a valid wallet address: {source}")]
    BadWallet {
        /// The offending field.
        field: &'static str,
        /// What is wrong with the address.
        source: WalletError,
    },
    /// `walletChain` does not name the chain of `wallet`'s address.
    #[error("data.walletChain is {named:?} but data.wallet is {}", detected.map_or("no wallet address".to_owned(), |chain| format!("an address of the {chain} chain")))]
    WalletChainMismatch {
        /// The chain the event names.
        named: String,
        /// The chain detected from `wallet`, when it is an address.
        detected: Option<&'static str>,
    },
    /// The serialised event exceeds the configured cap.
    #[error("event is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The serialised size.
        size: usize,
        /// The configured cap.
        limit: usize,
    },
}
