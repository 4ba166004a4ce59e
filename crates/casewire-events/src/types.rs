//! The event types and priorities of the guide.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::EventError;

/// How urgently an event should reach Kafka, and how quickly a failed delivery is retried.
///
/// Ordered from most to least urgent, so `Priority::Critical < Priority::Low`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Evidence deleted, unauthorised access: retried at once.
    Critical,
    /// Evidence anchored, RL feedback: retried every 5 s at first.
    High,
    /// Evidence uploaded, RL prediction: retried every `RETRY_INTERVAL` (10 s) at first.
    Medium,
    /// User login, system information: retried every 30 s at first.
    Low,
}

impl Priority {
    /// All priorities, most urgent first.
    pub const ALL: [Priority; 4] = [
        Priority::Critical,
        Priority::High,
        Priority::Medium,
        Priority::Low,
    ];

    /// The guide's lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Medium => "medium",
            Priority::Low => "low",
        }
    }

    /// A dense index, 0 for critical to 3 for low, used to store priorities compactly.
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// The inverse of [`Priority::rank`].
    pub fn from_rank(rank: u8) -> Option<Priority> {
        Priority::ALL.get(usize::from(rank)).copied()
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = EventError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| EventError::UnknownPriority(s.to_owned()))
    }
}

macro_rules! event_types {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, $priority:ident; )*) => {
        /// The 20 event types: the guide's 17 named types, `system.info` (the low-priority
        /// "system info" of the guide's priority table), and Casewire's two additions for user
        /// administration, `user.created` and `user.updated`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum EventType {
            $( $(#[$doc])* $variant, )*
        }

        impl EventType {
            /// Every event type, in the guide's order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// The dotted name used on the wire, e.g. `evidence.uploaded`.
            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name,)* }
            }

            /// The priority an event of this type gets unless its publisher overrides it,
            /// from the guide's "Event Publishing Points" and priority tables.
            pub fn default_priority(self) -> Priority {
                match self { $(EventType::$variant => Priority::$priority,)* }
            }
        }
    };
}

event_types! {
    /// An evidence file was uploaded.
    EvidenceUploaded => "evidence.uploaded", Medium;
    /// An evidence file's integrity was verified.
    EvidenceVerified => "evidence.verified", Medium;
    /// An evidence hash was anchored on a blockchain.
    EvidenceAnchored => "evidence.anchored", High;
    /// An evidence file was downloaded.
    EvidenceDownloaded => "evidence.downloaded", Medium;
    /// An evidence file was deleted.
    EvidenceDeleted => "evidence.deleted", Critical;
    /// A case was opened.
    CaseCreated => "case.created", Medium;
    /// A case was updated.
    CaseUpdated => "case.updated", Medium;
    /// A case was assigned to an investigator.
    CaseAssigned => "case.assigned", Medium;
    /// A case was escalated to the authorities.
    CaseEscalated => "case.escalated", Critical;
    /// A case was closed.
    CaseClosed => "case.closed", Medium;
    /// The RL policy made a prediction (publishers raise it to high for `freeze`).
    RlPredictionMade => "rl.prediction.made", Medium;
    /// An admin gave feedback on a prediction.
    RlFeedbackReceived => "rl.feedback.received", High;
    /// The RL model was retrained or replaced.
    RlModelUpdated => "rl.model.updated", Medium;
    /// A user logged in.
    UserLogin => "user.login", Low;
    /// A request was refused for want of authentication or permission.
    UserUnauthorizedAccess => "user.unauthorized_access", Critical;
    /// Casewire's addition to the guide's list: a user account was created.
    UserCreated => "user.created", Medium;
    /// Casewire's addition: a user's role, state (enabled or disabled) or password changed.
    UserUpdated => "user.updated", Medium;
    /// Something needs an operator's attention.
    SystemAlert => "system.alert", High;
    /// Something failed inside the system.
    SystemError => "system.error", High;
    /// Informational system event.
    SystemInfo => "system.info", Low;
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = EventError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| EventError::UnknownType(s.to_owned()))
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}
