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

use crate::refusals::{Admit, Refusals};
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
    /// Failed logins tolerated for one account from one client within `failure_window`;
    /// each one past it doubles the wait before the next try, from `first_wait` up to
    /// `longest_wait`.
    pub max_failures: u32,
    /// Failed logins tolerated from one client, whatever the accounts (password spraying).
    pub max_client_failures: u32,
    /// Failed logins from all clients in the window past which a client that has failed once
    /// must wait `first_wait` after its last failure (spraying from many addresses).
    pub max_global_failures: u32,
    /// The window over which failures count.
    pub failure_window: Duration,
    /// The wait after the first failure past a limit.
    pub first_wait: Duration,
    /// The longest wait.
    pub longest_wait: Duration,
    /// The bounds on recording refused requests.
    pub refusals: crate::refusals::RefusalLimits,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            token_lifetime: Duration::from_secs(12 * 3600),
            max_failures: 5,
            max_client_failures: 10,
            max_global_failures: 100,
            failure_window: Duration::from_secs(15 * 60),
            first_wait: Duration::from_secs(30),
            longest_wait: Duration::from_secs(15 * 60),
            refusals: crate::refusals::RefusalLimits::default(),
        }
    }
}

/// The recent failed logins that bear on one attempt: from this client at this account, from
/// this client at any, and from everyone.
#[derive(Debug, Clone, Copy)]
struct Failures {
    pair: u32,
    pair_last: i64,
    client: u32,
    client_last: i64,
    global: u32,
}

impl Failures {
    fn read(
        tx: &rusqlite::Connection,
        client: &str,
        username: &str,
        since: i64,
    ) -> rusqlite::Result<Failures> {
        let (pair, pair_last) = tx.query_row(
            "SELECT COUNT(*), COALESCE(MAX(at), 0) FROM login_failures WHERE client = ?1 AND username = ?2 AND at > ?3",
            params![client, username, since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (client, client_last) = tx.query_row(
            "SELECT COUNT(*), COALESCE(MAX(at), 0) FROM login_failures WHERE client = ?1 AND at > ?2",
            params![client, since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let global = tx.query_row(
            "SELECT COUNT(*) FROM login_failures WHERE at > ?1",
            [since],
            |r| r.get(0),
        )?;
        Ok(Failures {
            pair,
            pair_last,
            client,
            client_last,
            global,
        })
    }

    /// How much longer this attempt must wait, if at all.
    fn wait(&self, policy: &AuthPolicy, now_ms: i64) -> Option<Duration> {
        let backoff = |failures: u32, limit: u32| -> Option<Duration> {
            let past = failures.checked_sub(limit)?;
            let doubled = policy
                .first_wait
                .saturating_mul(1u32.checked_shl(past.min(31)).unwrap_or(u32::MAX));
            Some(doubled.min(policy.longest_wait))
        };
        let until = |last: i64, wait: Option<Duration>| -> i64 {
            wait.map_or(i64::MIN, |w| last + w.as_millis() as i64)
        };
        let global = (self.global >= policy.max_global_failures && self.client > 0)
            .then_some(policy.first_wait);
        let free_at = until(self.pair_last, backoff(self.pair, policy.max_failures))
            .max(until(
                self.client_last,
                backoff(self.client, policy.max_client_failures),
            ))
            .max(until(self.client_last, global));
        (free_at > now_ms).then(|| Duration::from_millis((free_at - now_ms) as u64))
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
    /// What refused requests may record.
    pub refusals: Refusals,
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
            refusals: Refusals::new(policy.refusals),
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
        let now_ms = now.timestamp_millis();
        let since = now_ms - self.policy.failure_window.as_millis() as i64;
        let client = from.ip_address.clone().unwrap_or_default();
        let (stored, failures) = self
            .outbox
            .write({
                let (username, client) = (username.clone(), client.clone());
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
                    let failures = Failures::read(tx, &client, &username, since)?;
                    Ok::<_, CoreError>((stored, failures))
                }
            })
            .wait()?;
        if let Some(wait) = failures.wait(&self.policy, now_ms) {
            tracing::info!(%client, user = %username, ?wait, "login throttled");
            return Err(CoreError::LoginThrottled { retry_after: wait });
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
            let at = now_ms;
            self.outbox
                .write(move |tx| {
                    tx.execute(
                        "INSERT INTO login_failures (username, at, client) VALUES (?1, ?2, ?3)",
                        params![username, at, client],
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
                // This client's failures at this account are forgiven; others' stay.
                tx.execute(
                    "DELETE FROM login_failures WHERE username = ?1 AND client = ?2",
                    params![username, client],
                )?;
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
        let path: String = from.path.chars().take(120).collect();
        match self.refusals.admit(from, user, reason, self.clock.now_ms()) {
            Admit::Counted => {
                tracing::debug!(%path, method = %from.method, %reason, "unauthorized access refused (counted)");
                Ok(())
            }
            Admit::Record(events) => {
                tracing::warn!(%path, method = %from.method, %reason, "unauthorized access refused");
                self.enqueue_all(events)
            }
        }
    }

    /// Records the summaries of refusals whose window has ended, and forgets the refusal
    /// events that have left the queue (up to `prune` of the oldest). Run periodically.
    pub fn settle_refusals(&self, prune: usize) -> Result<(), CoreError> {
        let summaries = self.refusals.flush(self.clock.now_ms());
        self.enqueue_all(summaries)?;
        self.refusals
            .prune(prune, |ids| self.outbox.delivery_states(ids))?;
        Ok(())
    }

    /// Counts the refusal events already queued (from before a restart) against their share.
    pub fn adopt_queued_refusals(&self) -> Result<(), CoreError> {
        let queued = self.outbox.read(|conn| {
            // The type spelled out, so the outbox's partial index of refusals answers this.
            let mut rows = conn.prepare(
                "SELECT event_id, length(payload) FROM outbox_events
                  WHERE event_type = 'user.unauthorized_access'",
            )?;
            debug_assert_eq!(
                EventType::UserUnauthorizedAccess.as_str(),
                "user.unauthorized_access"
            );
            let found = rows
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, CoreError>(found)
        })?;
        self.refusals.adopt(queued);
        Ok(())
    }

    fn enqueue_all(&self, events: Vec<Event>) -> Result<(), CoreError> {
        if events.is_empty() {
            return Ok(());
        }
        self.outbox
            .write(move |tx: &WriteTx<'_>| {
                for event in &events {
                    tx.enqueue(event)?;
                }
                Ok::<_, CoreError>(())
            })
            .wait()
    }
}
