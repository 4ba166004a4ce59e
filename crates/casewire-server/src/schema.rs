//! The shapes the API answers with, typed so the OpenAPI document is generated from the same
//! types the handlers serialise, and the parts every operation shares (errors, security).

use casewire_core::{
    Anchor, AnchorStatus, AnchoringView, Case, Evidence, Feedback, Prediction, TimelineCheck,
    TimelineEntry, User, Verification,
};
use casewire_outbox::{DeadLetter, QueueStats};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, RefOr, ResponseBuilder, content::ContentBuilder};
use utoipa::{Modify, ToSchema};

/// Defines a success envelope: `success: true`, the given fields, and `timestamp`.
macro_rules! envelope {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Serialize, ToSchema)]
        #[serde(rename_all = "camelCase")]
        pub(crate) struct $name {
            /// Always `true`.
            pub(crate) success: bool,
            $($(#[$fdoc])* pub(crate) $field: $ty,)*
            /// When the answer was made, RFC 3339 with milliseconds.
            pub(crate) timestamp: String,
        }

        impl $name {
            #[allow(clippy::new_ret_no_self)]
            pub(crate) fn new($($field: $ty),*) -> axum::Json<$name> {
                axum::Json($name {
                    success: true,
                    $($field,)*
                    timestamp: crate::routes::now(),
                })
            }
        }
    };
}

envelope!(
    /// A successful login.
    LoginResponse {
        /// The bearer token: send it as `Authorization: Bearer <token>`.
        token: String,
        /// When the token stops working.
        expires_at: String,
        /// Who logged in.
        user: User,
    }
);
envelope!(
    /// An action that has nothing more to say.
    DoneResponse {
        /// What happened.
        message: String,
    }
);
envelope!(
    /// The guide's queue statistics.
    StatsResponse {
        /// The queue.
        queue: QueueStats,
    }
);
envelope!(
    /// The guide's answer to clearing the queue.
    ClearResponse {
        /// What happened.
        message: String,
        /// How many events were dropped.
        cleared_count: u64,
    }
);
envelope!(
    /// Retrying now.
    RetryResponse {
        /// What happened.
        message: String,
        /// How many waiting events were made due.
        retried_count: u64,
    }
);
envelope!(
    /// A queued test event.
    TestEventResponse {
        /// What happened.
        message: String,
        /// The event's id.
        event_id: String,
    }
);
envelope!(
    /// A page of dead letters.
    DeadLettersResponse {
        /// The dead letters, oldest first.
        dead_letters: Vec<DeadLetter>,
    }
);
envelope!(
    /// Replayed dead letters.
    ReplayResponse {
        /// The ids put back in the queue.
        replayed: Vec<String>,
    }
);
envelope!(
    /// Discarded dead letters.
    DiscardResponse {
        /// The ids deleted for good.
        discarded: Vec<String>,
    }
);
envelope!(
    /// One case.
    CaseResponse {
        /// The case.
        case: Case,
    }
);
envelope!(
    /// Cases.
    CasesResponse {
        /// The cases, newest first.
        cases: Vec<Case>,
        /// Where the next page starts (pass it as `after`); absent on the last page.
        #[serde(skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
    }
);
envelope!(
    /// A case's timeline.
    TimelineResponse {
        /// Its events, oldest first.
        timeline: Vec<TimelineEntry>,
    }
);
envelope!(
    /// What a check of a case's timeline found.
    TimelineCheckResponse {
        /// The check.
        check: TimelineCheck,
    }
);
envelope!(
    /// One evidence record.
    EvidenceResponse {
        /// The record.
        evidence: Evidence,
    }
);
envelope!(
    /// Evidence records.
    EvidenceListResponse {
        /// The records, newest first.
        evidence: Vec<Evidence>,
        /// Where the next page starts (pass it as `after`); absent on the last page.
        #[serde(skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
    }
);
envelope!(
    /// A verification.
    VerificationResponse {
        /// Its result.
        verification: Verification,
    }
);
envelope!(
    /// A recorded anchor.
    AnchorResponse {
        /// The anchor.
        anchor: Anchor,
    }
);
envelope!(
    /// An evidence file's anchors.
    AnchorsResponse {
        /// The anchors, oldest first.
        anchors: Vec<Anchor>,
        /// Where Casewire's own anchoring of the file stands, if it was asked for.
        request: Option<AnchorStatus>,
        /// Whether a chain is configured (`CASEWIRE_CHAIN_RPC_URL`): without one, a request
        /// waits until an admin sets it.
        chain_configured: bool,
    }
);
envelope!(
    /// How anchoring on chain stands, for an admin.
    AnchoringResponse {
        /// The chain, the address to fund, what waits and what is in flight.
        anchoring: AnchoringView,
    }
);
envelope!(
    /// Anchoring asked for: where it stands.
    AnchorRequestResponse {
        /// Where it stands (`waiting` until the chain can be reached).
        anchor: AnchorStatus,
    }
);
envelope!(
    /// A prediction.
    PredictionResponse {
        /// The prediction.
        prediction: Prediction,
    }
);
envelope!(
    /// Recorded feedback.
    FeedbackResponse {
        /// The feedback.
        feedback: Feedback,
    }
);

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`.
    pub(crate) status: String,
    /// Now.
    pub(crate) timestamp: String,
}

/// `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// `ready` or `not ready`.
    pub(crate) status: String,
    /// `open`, or why the database cannot be read.
    pub(crate) database: String,
    /// `running`, `not running`, `not configured`, or `refused: authentication` (or
    /// `certificate`, `authorization`) while the cluster refuses this client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) relay: Option<String>,
    /// Now.
    pub(crate) timestamp: String,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// A stable code for clients to act on: one of the values listed.
    pub(crate) code: crate::ErrorCode,
    /// For people.
    pub(crate) message: String,
}

/// Every error: `{"success": false, "error": {"code", "message"}, "timestamp"}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorResponse {
    /// Always `false`.
    pub(crate) success: bool,
    /// What went wrong.
    pub(crate) error: ErrorBody,
    /// Now.
    pub(crate) timestamp: String,
}

/// The statuses any operation may answer with besides its own, and why.
const COMMON_ERRORS: [(&str, &str); 7] = [
    (
        "400",
        "Invalid input; the message says which rule it breaks",
    ),
    ("408", "The request took longer than the server allows"),
    ("413", "The body is over the limit"),
    ("415", "A JSON body not sent as application/json"),
    (
        "421",
        "Addressed to a host name this server does not answer to",
    ),
    (
        "403",
        "A cross-site request, or a role without the permission",
    ),
    ("500", "The server failed; nothing was changed"),
];

/// The statuses of operations that need a token.
const AUTH_ERRORS: [(&str, &str); 1] = [("401", "No valid bearer token")];

/// The statuses of operations that write.
const WRITE_ERRORS: [(&str, &str); 4] = [
    ("404", "No such thing"),
    (
        "409",
        "A conflict: the thing exists, or an Idempotency-Key was reused or is in use",
    ),
    ("410", "It was deleted"),
    ("507", "The event queue is full; nothing was recorded"),
];

/// Adds the bearer scheme, the shared error responses and the operations' security.
pub(crate) struct Common;

impl Modify for Common {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.insert(
            "ErrorResponse".into(),
            <ErrorResponse as utoipa::PartialSchema>::schema(),
        );
        components.schemas.insert(
            "ErrorBody".into(),
            <ErrorBody as utoipa::PartialSchema>::schema(),
        );
        components.schemas.insert(
            "ErrorCode".into(),
            <crate::ErrorCode as utoipa::PartialSchema>::schema(),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            "ErrorResponse",
                        ))))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let public = matches!(
                path.as_str(),
                "/healthz"
                    | "/readyz"
                    | "/metrics"
                    | "/api/openapi.json"
                    | "/api/auth/login"
                    | "/api/setup"
            );
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
                &mut item.put,
            ]
            .into_iter()
            .flatten()
            {
                let mut statuses: Vec<(&str, &str)> = COMMON_ERRORS.to_vec();
                if !public {
                    statuses.extend(AUTH_ERRORS);
                    statuses.extend(WRITE_ERRORS);
                    operation.security =
                        Some(vec![utoipa::openapi::security::SecurityRequirement::new(
                            "bearer",
                            Vec::<String>::new(),
                        )]);
                }
                if path == "/api/auth/login" {
                    statuses.push(("401", "Wrong username or password"));
                    statuses.push(("429", "Too many failed logins lately"));
                    statuses.push(("507", "The event queue is full"));
                }
                for (status, description) in statuses {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::T(error(description)));
                }
            }
        }
    }
}

envelope!(
    /// Whether the app still needs its first user.
    SetupStatusResponse {
        /// No user exists yet: the app asks for the first superadmin.
        needs_setup: bool,
        /// The one-time code `casewire serve` printed at start must come with it (never in
        /// the desktop, whose API no other program can reach).
        setup_code_required: bool,
    }
);
envelope!(
    /// The signed-in user.
    MeResponse {
        /// Who the token belongs to.
        user: User,
        /// How the UI should behave for everyone on this machine.
        preferences: Preferences,
    }
);

/// The UI's colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Theme {
    /// As the operating system says (`prefers-color-scheme`).
    System,
    /// Light.
    Light,
    /// Dark.
    Dark,
}

impl Theme {
    /// The theme a `CASEWIRE_THEME` value names (the settings refuse any other value).
    pub(crate) fn named(value: Option<&str>) -> Theme {
        match value {
            Some("light") => Theme::Light,
            Some("dark") => Theme::Dark,
            _ => Theme::System,
        }
    }
}

/// The settings the UI applies itself.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Preferences {
    /// Light or dark, or as the operating system says.
    pub(crate) theme: Theme,
    /// Minutes without input after which the session locks.
    pub(crate) idle_lock_minutes: u64,
}
envelope!(
    /// Every user.
    UsersResponse {
        /// By name.
        users: Vec<casewire_core::UserRecord>,
    }
);
envelope!(
    /// One user.
    UserResponse {
        /// The account.
        user: casewire_core::UserRecord,
    }
);
envelope!(
    /// The settings, with where each value comes from.
    SettingsResponse {
        /// In the settings screen's order.
        settings: Vec<casewire_core::SettingView>,
    }
);
envelope!(
    /// How delivery to headquarters (Kafka) is going, for the sync badge.
    SyncResponse {
        /// The badge's state and counts.
        sync: SyncStatus,
    }
);
envelope!(
    /// A page of queued events.
    QueuedEventsResponse {
        /// In order.
        events: Vec<casewire_outbox::QueuedEvent>,
        /// Cursor for the next page, if there is more.
        next_cursor: Option<i64>,
    }
);
envelope!(
    /// One queued or dead-lettered event's document.
    EventDocumentResponse {
        /// The event as it is sent to Kafka.
        #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
        event: serde_json::Value,
    }
);

/// The sync badge's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SyncState {
    /// Nothing waits: everything reached Kafka.
    Synced,
    /// A broker is reachable and events are on their way.
    Sending,
    /// No broker reachable: events wait on this machine.
    Offline,
    /// The relay reports an error an admin must look at (say, credentials refused).
    Error,
    /// No Kafka brokers are configured: events wait on this machine.
    NotConfigured,
}

impl From<casewire_core::SyncState> for SyncState {
    fn from(state: casewire_core::SyncState) -> SyncState {
        match state {
            casewire_core::SyncState::Synced => SyncState::Synced,
            casewire_core::SyncState::Sending => SyncState::Sending,
            casewire_core::SyncState::Offline => SyncState::Offline,
            casewire_core::SyncState::Error => SyncState::Error,
            casewire_core::SyncState::NotConfigured => SyncState::NotConfigured,
        }
    }
}

/// How delivery is going.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SyncStatus {
    /// The badge's state.
    pub(crate) state: SyncState,
    /// Events waiting to be delivered (including those being sent).
    pub(crate) waiting: u64,
    /// Events handed to Kafka and awaiting acknowledgement.
    pub(crate) in_flight: u64,
    /// Events given up on, until an admin replays them.
    pub(crate) dead_letters: u64,
    /// A broker answered recently.
    pub(crate) broker_connected: bool,
    /// When Kafka last acknowledged an event, RFC 3339.
    pub(crate) last_delivery_at: Option<String>,
    /// What the relay last reported going wrong, while it is not resolved.
    pub(crate) last_error: Option<String>,
    /// While the cluster refuses this client, why: `authentication` (the credentials),
    /// `certificate` (the broker's certificate did not verify) or `authorization` (the ACLs).
    pub(crate) refused: Option<String>,
}
envelope!(
    /// The desktop app's updates: the running version, whether looking is allowed, what is on
    /// offer and what is happening.
    UpdatesResponse {
        /// As the settings screen shows them.
        updates: casewire_core::UpdateView,
    }
);
