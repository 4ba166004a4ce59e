//! The `data` schema of each event type, taken from the guide's examples and integration points,
//! and the checks an event passes before it may enter the outbox.

use serde_json::Value;

use crate::wallet::{parse_wallet, validate_evm_address};
use crate::{Event, EventError, EventType};

/// The default cap on a serialised event: 256 KiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 256 * 1024;

/// What a `data` field must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldKind {
    /// A non-empty string.
    Text,
    /// A wallet address of any chain accepted (see [`crate::parse_wallet`]).
    Wallet,
    /// An EVM address: a contract's.
    EvmAddress,
    /// Any JSON number.
    Number,
    /// A non-negative integer.
    Count,
}

impl std::fmt::Display for FieldKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FieldKind::Text => "a non-empty string",
            FieldKind::Wallet => "a wallet address",
            FieldKind::EvmAddress => "an EVM address",
            FieldKind::Number => "a number",
            FieldKind::Count => "a non-negative integer",
        })
    }
}

use FieldKind::{Count, EvmAddress, Number, Text, Wallet};

/// Fields every event of a type must carry.
pub fn required_fields(event_type: EventType) -> &'static [(&'static str, FieldKind)] {
    match event_type {
        EventType::EvidenceUploaded => &[
            ("evidenceId", Text),
            ("caseId", Text),
            ("wallet", Wallet),
            ("filename", Text),
            ("storageHash", Text),
        ],
        EventType::EvidenceVerified
        | EventType::EvidenceDownloaded
        | EventType::EvidenceDeleted => &[("evidenceId", Text)],
        EventType::EvidenceAnchored => &[
            ("evidenceId", Text),
            ("fileHash", Text),
            ("txHash", Text),
            ("blockNumber", Count),
        ],
        EventType::CaseCreated
        | EventType::CaseUpdated
        | EventType::CaseEscalated
        | EventType::CaseClosed => &[("caseId", Text)],
        EventType::CaseAssigned => &[("caseId", Text), ("assignee", Text)],
        EventType::RlPredictionMade => &[
            ("predictionId", Text),
            ("wallet", Wallet),
            ("action", Text),
            ("score", Number),
        ],
        EventType::RlFeedbackReceived => &[
            ("feedbackId", Text),
            ("wallet", Wallet),
            ("outcome", Text),
            ("reward", Number),
        ],
        EventType::RlModelUpdated => &[("modelVersion", Text)],
        EventType::UserLogin => &[("userId", Text)],
        EventType::UserUnauthorizedAccess => &[("path", Text), ("method", Text)],
        EventType::UserCreated => &[("username", Text), ("role", Text)],
        EventType::UserUpdated => &[("username", Text), ("change", Text)],
        EventType::SystemAlert | EventType::SystemError | EventType::SystemInfo => {
            &[("message", Text)]
        }
    }
}

/// Fields that are optional, but must have the right shape whenever they are present.
const OPTIONAL_FIELDS: &[(&str, FieldKind)] = &[
    ("caseId", Text),
    ("evidenceId", Text),
    ("wallet", Wallet),
    ("contractAddress", EvmAddress),
    ("fileSize", Count),
    ("blockNumber", Count),
    ("score", Number),
    ("reward", Number),
];

/// Limits applied by [`Event::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest serialised event accepted, in bytes.
    pub max_event_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
        }
    }
}

impl Event {
    /// Checks the event's `data` against its type's schema and its size against `limits`,
    /// returning the first problem found.
    pub fn validate(&self, limits: &Limits) -> Result<(), EventError> {
        self.validate_data()?;
        limits.check_size(self.to_json().len())
    }

    /// Checks the event's `data` against its type's schema only, for callers that check the
    /// size of the serialised document they already hold with [`Limits::check_size`].
    pub fn validate_data(&self) -> Result<(), EventError> {
        for &(field, kind) in required_fields(self.event_type) {
            match self.data.get(field) {
                None | Some(Value::Null) => {
                    return Err(EventError::MissingField {
                        event_type: self.event_type,
                        field,
                    });
                }
                Some(value) => check_field(self.event_type, field, kind, value)?,
            }
        }
        for &(field, kind) in OPTIONAL_FIELDS {
            if let Some(value) = self.data.get(field).filter(|v| !v.is_null()) {
                check_field(self.event_type, field, kind, value)?;
            }
        }
        self.check_wallet_chain()
    }

    /// `walletChain`, when present, names the chain of `wallet`'s address.
    fn check_wallet_chain(&self) -> Result<(), EventError> {
        let Some(named) = self.data.get("walletChain").filter(|v| !v.is_null()) else {
            return Ok(());
        };
        let detected = self
            .data
            .get("wallet")
            .and_then(Value::as_str)
            .and_then(|address| parse_wallet(address).ok())
            .map(|wallet| wallet.chain());
        match (named.as_str(), detected) {
            (Some(named), Some(chain)) if named == chain.as_str() => Ok(()),
            (named, detected) => Err(EventError::WalletChainMismatch {
                named: named.unwrap_or_default().to_owned(),
                detected: detected.map(|chain| chain.as_str()),
            }),
        }
    }
}

impl Limits {
    /// Checks the size of a serialised event.
    pub fn check_size(&self, size: usize) -> Result<(), EventError> {
        if size > self.max_event_bytes {
            return Err(EventError::TooLarge {
                size,
                limit: self.max_event_bytes,
            });
        }
        Ok(())
    }
}

fn check_field(
    event_type: EventType,
    field: &'static str,
    kind: FieldKind,
    value: &Value,
) -> Result<(), EventError> {
    let fits = match kind {
        Text | Wallet | EvmAddress => value.as_str().is_some_and(|s| !s.is_empty()),
        Number => value.is_number(),
        Count => value.is_u64(),
    };
    if !fits {
        return Err(EventError::WrongFieldType {
            event_type,
            field,
            expected: kind,
        });
    }
    let checked = match (kind, value.as_str()) {
        (Wallet, Some(address)) => parse_wallet(address).map(|_| ()),
        (EvmAddress, Some(address)) => validate_evm_address(address),
        _ => Ok(()),
    };
    checked.map_err(|source| EventError::BadWallet { field, source })?;
    Ok(())
}
