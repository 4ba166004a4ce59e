//! Local users, their passwords and roles, bearer tokens, and the permission table.
//!
//! - Passwords are hashed with Argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane) and a
//!   random salt. A login for an unknown user still runs one verification, so timing does not
//!   tell which usernames exist.
//! - A login returns a random 256-bit token; only its SHA-256 is stored. Tokens expire, and
//!   logout revokes them.
//! - Five failed logins for a username within 15 minutes refuse further attempts until the
//!   window passes, whether the password is right or not.
//! - A login commits its token and its `user.login` event together; a refused request records a
//!   `user.unauthorized_access` event. A role claimed by the client (the guide's `x-user-role`
//!   header) is never trusted: it is only recorded as having been sent.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use casewire_events::{Event, EventType, Metadata};
use casewire_outbox::{Clock, Outbox, WriteTx};
use chrono::{DateTime, Utc};
use rand::RngCore;
use rusqlite::params;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{CoreError, SOURCE};

/// A user's role, from least to most privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An investigator: uploads and reads evidence, works cases.
    User,
    /// Reads everything and runs the RL policy.
    Analyst,
    /// Watches and manages the event queue.
    Admin,
    /// Also clears the queue and changes system configuration.
    Superadmin,
}

impl Role {
    /// The role's name, as stored and as the guide writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Superadmin => "superadmin",
        }
    }

    /// Whether this role holds `permission`.
    pub fn permits(self, permission: Permission) -> bool {
        self >= permission.least_role()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "analyst" => Ok(Role::Analyst),
            "admin" => Ok(Role::Admin),
            "superadmin" => Ok(Role::Superadmin),
            other => Err(CoreError::Invalid(format!(
                "role {other:?} must be user, analyst, admin or superadmin"
            ))),
        }
    }
}

/// What a request may need. The guide names `view-logs` and `system-config`; the others are the
/// evidence and case actions of its endpoint table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Upload, list, read, verify and download evidence; create, update and list cases.
    Investigate,
    /// Assign and escalate cases, anchor evidence, run RL predictions and feedback.
    Analyse,
    /// Delete evidence (soft: the record and hash stay).
    DeleteEvidence,
    /// The guide's `view-logs`: queue statistics, dead letters, retry, replay.
    ViewLogs,
    /// The guide's `system-config`: clear the queue, discard dead letters, send a test event,
    /// manage users.
    SystemConfig,
}

impl Permission {
    /// Every permission, in the order of the README's table.
    pub const ALL: [Permission; 5] = [
        Permission::Investigate,
        Permission::Analyse,
        Permission::DeleteEvidence,
        Permission::ViewLogs,
        Permission::SystemConfig,
    ];

    /// The least privileged role that holds it.
    pub fn least_role(self) -> Role {
        match self {
            Permission::Investigate => Role::User,
            Permission::Analyse => Role::Analyst,
            Permission::DeleteEvidence | Permission::ViewLogs => Role::Admin,
            Permission::SystemConfig => Role::Superadmin,
        }
    }

    /// The permission's name, as the guide writes its own two.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Investigate => "investigate",
            Permission::Analyse => "analyse",
            Permission::DeleteEvidence => "delete-evidence",
            Permission::ViewLogs => "view-logs",
            Permission::SystemConfig => "system-config",
        }
    }
}

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    /// The stored id.
    pub id: i64,
    /// The login name.
    pub username: String,
    /// The role.
    pub role: Role,
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer token, shown once; only its hash is stored.
    pub token: String,
    /// Who logged in.
    pub user: User,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
}

/// Where a request came from, for the events that record it.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// The client's address.
    pub ip_address: Option<String>,
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// Whether the request carried the guide's `x-user-role` header (never trusted).
    pub role_header_sent: bool,
}

/// Login limits.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// How long a token lives.
    pub token_lifetime: Duration,
    /// Failed logins tolerated per username within `failure_window`.
    pub max_failures: u32,
    /// The window over which failures count.
    pub failure_window: Duration,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            token_lifetime: Duration::from_secs(12 * 3600),
            max_failures: 5,
            failure_window: Duration::from_secs(15 * 60),
        }
    }
}

/// Users and tokens, stored in the outbox's database and written through its transactions.
pub struct Auth {
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) clock: Arc<dyn Clock>,
    policy: AuthPolicy,
    /// A hash of a random password, verified when the username is unknown.
    decoy_hash: String,
    /// Held across a login's failure count, password check and failure record: parallel
    /// guesses cannot all slip under the limit, and one Argon2id hash (19 MiB) runs at a time.
    logins: std::sync::Mutex<()>,
}

fn argon2() -> Argon2<'static> {
    // OWASP's recommended Argon2id parameters; `Params::new` accepts these constants.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub(crate) fn hash_password(password: &str) -> Result<String, CoreError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| CoreError::Crypto(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::Crypto(e.to_string()))
}

pub(crate) fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| argon2().verify_password(password.as_bytes(), &hash).is_ok())
        .unwrap_or(false)
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub(crate) fn validate_username(username: &str) -> Result<String, CoreError> {
    let name = username.trim().to_lowercase();
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@-+".contains(c));
    if ok {
        Ok(name)
    } else {
        Err(CoreError::Invalid(format!(
            "username {username:?} must be 1 to 64 letters, digits or . _ @ - +"
        )))
    }
}

/// Passwords have at least 12 characters and at most 1,024 bytes (Argon2id hashes them whole).
pub(crate) fn validate_password(password: &str) -> Result<(), CoreError> {
    if password.chars().count() < 12 {
        return Err(CoreError::Invalid(
            "password must have at least 12 characters".into(),
        ));
    }
    if password.len() > 1024 {
        return Err(CoreError::Invalid(
            "password must be at most 1024 bytes".into(),
        ));
    }
    Ok(())
}

impl Auth {
    /// Users and tokens in `outbox`'s database; the tables are created by [`crate::migrate`].
    pub fn new(outbox: Arc<Outbox>, clock: Arc<dyn Clock>, policy: AuthPolicy) -> Auth {
        let decoy_hash =
            hash_password(&hex::encode(rand::random::<[u8; 16]>())).unwrap_or_default();
        Auth {
            outbox,
            clock,
            policy,
            decoy_hash,
            logins: std::sync::Mutex::new(()),
        }
    }

    /// Adds a user. Passwords shorter than 12 characters are refused.
    pub fn add_user(&self, username: &str, role: Role, password: &str) -> Result<User, CoreError> {
        let username = validate_username(username)?;
        validate_password(password)?;
        let hash = hash_password(password)?;
        let now = self.clock.now_ms();
        self.outbox
            .write(move |tx| {
                let taken: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1)",
                    [&username],
                    |r| r.get(0),
                )?;
                if taken {
                    return Err(CoreError::Conflict(format!("user {username} already exists")));
                }
                tx.execute(
                    "INSERT INTO users (username, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![username, role.as_str(), hash, now],
                )?;
                Ok(User {
                    id: tx.last_insert_rowid(),
                    username,
                    role,
                })
            })
            .wait()
    }

    /// Checks a username and password; on success issues a token and records `user.login` in
    /// the same transaction.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        from: &RequestInfo,
    ) -> Result<Session, CoreError> {
        // A name no user can have is refused without a trace: nothing to count, nothing stored.
        let Ok(username) = validate_username(username) else {
            return Err(CoreError::BadCredentials);
        };
        let _one_at_a_time = self.logins.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.now();
        let since = now.timestamp_millis() - self.policy.failure_window.as_millis() as i64;
        let (stored, failures) = self
            .outbox
            .write({
                let username = username.clone();
                move |tx| {
                    let stored: Option<(i64, String, String)> = tx
                        .query_row(
                            "SELECT id, role, password_hash FROM users WHERE username = ?1 AND disabled = 0",
                            [&username],
                            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                        )
                        .map(Some)
                        .or_else(|e| match e {
                            rusqlite::Error::QueryReturnedNoRows => Ok(None),
                            e => Err(e),
                        })?;
                    let failures: u32 = tx.query_row(
                        "SELECT COUNT(*) FROM login_failures WHERE username = ?1 AND at > ?2",
                        params![username, since],
                        |r| r.get(0),
                    )?;
                    Ok::<_, CoreError>((stored, failures))
                }
            })
            .wait()?;
        if failures >= self.policy.max_failures {
            return Err(CoreError::LoginThrottled);
        }
        let verified = match &stored {
            Some((_, _, hash)) => verify_password(password, hash),
            None => {
                // Same work for an unknown user, so timing does not reveal who exists.
                verify_password(password, &self.decoy_hash);
                false
            }
        };
        let Some((id, role, _)) = stored.filter(|_| verified) else {
            let at = now.timestamp_millis();
            self.outbox
                .write(move |tx| {
                    tx.execute(
                        "INSERT INTO login_failures (username, at) VALUES (?1, ?2)",
                        params![username, at],
                    )?;
                    // Failures older than the window no longer count: they go.
                    tx.execute("DELETE FROM login_failures WHERE at <= ?1", [since])?;
                    Ok::<_, CoreError>(())
                })
                .wait()?;
            return Err(CoreError::BadCredentials);
        };
        let role: Role = role.parse()?;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let expires_at = now
            + chrono::Duration::from_std(self.policy.token_lifetime)
                .unwrap_or(chrono::Duration::hours(12));
        let user = User {
            id,
            username: username.clone(),
            role,
        };
        let mut data = serde_json::Map::new();
        data.insert("userId".into(), username.clone().into());
        data.insert("role".into(), role.as_str().into());
        let event = Event::new(
            EventType::UserLogin,
            data,
            Metadata {
                source: Some(SOURCE.into()),
                user_id: Some(username.clone()),
                ip_address: from.ip_address.clone(),
                ..Metadata::default()
            },
            now,
            &mut rand::rng(),
        );
        let (hash, created, expires) = (
            token_hash(&token),
            now.timestamp_millis(),
            expires_at.timestamp_millis(),
        );
        self.outbox
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO tokens (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    params![hash, id, created, expires],
                )?;
                tx.execute("DELETE FROM login_failures WHERE username = ?1", [&username])?;
                tx.enqueue(&event)?;
                Ok::<_, CoreError>(())
            })
            .wait()?;
        tracing::info!(user = %user.username, role = %user.role, "user logged in");
        Ok(Session {
            token,
            user,
            expires_at,
        })
    }

    /// The user a bearer token belongs to, if the token is known, unrevoked and unexpired.
    pub fn authenticate(&self, token: &str) -> Result<User, CoreError> {
        let hash = token_hash(token);
        let now = self.clock.now_ms();
        self.outbox.read(|tx| {
            tx.query_row(
                "SELECT u.id, u.username, u.role FROM tokens t JOIN users u ON u.id = t.user_id
                      WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND t.expires_at > ?2
                        AND u.disabled = 0",
                params![hash, now],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => CoreError::Unauthenticated,
                e => e.into(),
            })
            .and_then(|(id, username, role)| {
                Ok(User {
                    id,
                    username,
                    role: role.parse()?,
                })
            })
        })
    }

    /// The user of `token` if they hold `permission`: `Unauthenticated` or `Forbidden`
    /// otherwise.
    pub fn authorize(
        &self,
        token: Option<&str>,
        permission: Permission,
    ) -> Result<User, CoreError> {
        let user = self.authenticate(token.ok_or(CoreError::Unauthenticated)?)?;
        if user.role.permits(permission) {
            Ok(user)
        } else {
            Err(CoreError::Forbidden {
                role: user.role,
                permission,
            })
        }
    }

    /// Revokes a token. Unknown tokens are ignored.
    pub fn logout(&self, token: &str) -> Result<(), CoreError> {
        let hash = token_hash(token);
        let now = self.clock.now_ms();
        self.outbox
            .write(move |tx| {
                tx.execute(
                    "UPDATE tokens SET revoked_at = ?2 WHERE token_hash = ?1 AND revoked_at IS NULL",
                    params![hash, now],
                )?;
                Ok::<_, CoreError>(())
            })
            .wait()
    }

    /// Records a refused request as a critical `user.unauthorized_access` event.
    pub fn record_refusal(
        &self,
        from: &RequestInfo,
        user: Option<&User>,
        reason: &str,
    ) -> Result<(), CoreError> {
        let mut data = serde_json::Map::new();
        data.insert("path".into(), from.path.clone().into());
        data.insert("method".into(), from.method.clone().into());
        data.insert("reason".into(), reason.into());
        data.insert("roleHeaderSent".into(), from.role_header_sent.into());
        if let Some(user) = user {
            data.insert("role".into(), user.role.as_str().into());
        }
        let event = Event::new(
            EventType::UserUnauthorizedAccess,
            data,
            Metadata {
                source: Some(SOURCE.into()),
                user_id: user.map(|u| u.username.clone()),
                ip_address: from.ip_address.clone(),
                ..Metadata::default()
            },
            self.clock.now(),
            &mut rand::rng(),
        );
        tracing::warn!(path = %from.path, method = %from.method, %reason, "unauthorized access refused");
        self.outbox
            .write(move |tx: &WriteTx<'_>| Ok::<_, CoreError>(tx.enqueue(&event)?))
            .wait()
    }
}
