//! User administration: the first superadmin, listing users, adding them, changing a role,
//! disabling an account, resetting a password, and changing one's own.
//!
//! Each change commits with its event (`user.created` or `user.updated`, Casewire's additions to
//! the guide's types), whose `metadata.userId` is who made it. Disabling an account or
//! resetting its password ends its sessions in the same transaction. The last enabled
//! superadmin cannot be disabled or demoted: nobody could administer the app afterwards.

use casewire_events::EventType;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::json;

use crate::auth::{hash_password, validate_password, validate_username, verify_password};
use crate::rfc3339;
use crate::{Auth, CoreError, RequestInfo, Role, Session, User, action_event};

/// A user as the users screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    /// The stored id.
    pub id: i64,
    /// The login name.
    pub username: String,
    /// The role.
    pub role: Role,
    /// A disabled account cannot log in, and its sessions have ended.
    pub disabled: bool,
    /// When it was created, RFC 3339.
    pub created_at: String,
}

/// A change to an account; `None` leaves that part as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    /// A new role.
    pub role: Option<Role>,
    /// Disable (`true`) or enable (`false`) the account.
    pub disabled: Option<bool>,
}

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, String, bool, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_record(
    (id, username, role, disabled, created): (i64, String, String, bool, i64),
) -> Result<UserRecord, CoreError> {
    Ok(UserRecord {
        id,
        username,
        role: role.parse()?,
        disabled,
        created_at: rfc3339(created),
    })
}

const SELECT: &str = "SELECT id, username, role, disabled, created_at FROM users";

fn load(tx: &rusqlite::Connection, id: i64) -> Result<UserRecord, CoreError> {
    let row = tx
        .query_row(&format!("{SELECT} WHERE id = ?1"), [id], record)
        .optional()?
        .ok_or_else(|| CoreError::NotFound(format!("user {id}")))?;
    to_record(row)
}

fn enabled_superadmins(tx: &rusqlite::Connection) -> Result<i64, CoreError> {
    Ok(tx.query_row(
        "SELECT COUNT(*) FROM users WHERE role = 'superadmin' AND disabled = 0",
        [],
        |r| r.get(0),
    )?)
}

impl Auth {
    /// Whether no user exists yet: the app then asks for its first superadmin.
    pub fn needs_setup(&self) -> Result<bool, CoreError> {
        self.outbox.read(|tx| {
            Ok::<_, CoreError>(tx.query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM users)",
                [],
                |r| r.get(0),
            )?)
        })
    }

    /// Creates the first user, a superadmin, if and only if there is no user yet (checked in
    /// the same transaction that adds it), and logs them in.
    pub fn set_up(
        &self,
        username: &str,
        password: &str,
        from: &RequestInfo,
    ) -> Result<Session, CoreError> {
        let name = validate_username(username)?;
        validate_password(password)?;
        let hash = hash_password(password)?;
        let now = self.clock.now_ms();
        let actor = User {
            id: 0,
            username: name.clone(),
            role: Role::Superadmin,
        };
        let event = action_event(
            self.clock.as_ref(),
            EventType::UserCreated,
            json!({"username": name, "role": "superadmin", "firstUser": true}),
            &actor,
            from,
        );
        self.outbox
            .write(move |tx| {
                let empty: bool =
                    tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM users)", [], |r| r.get(0))?;
                if !empty {
                    return Err(CoreError::SetupDone);
                }
                tx.execute(
                    "INSERT INTO users (username, role, password_hash, created_at) VALUES (?1, 'superadmin', ?2, ?3)",
                    params![name, hash, now],
                )?;
                tx.enqueue(&event)?;
                Ok(())
            })
            .wait()?;
        tracing::info!(user = %username.trim().to_lowercase(), "first superadmin created");
        self.login(username, password, from)
    }

    /// Every user, by name.
    pub fn list_users(&self) -> Result<Vec<UserRecord>, CoreError> {
        self.outbox.read(|tx| {
            let mut stmt = tx.prepare(&format!("{SELECT} ORDER BY username"))?;
            let rows = stmt.query_map([], record)?;
            rows.map(|r| to_record(r?)).collect::<Result<Vec<_>, _>>()
        })
    }

    /// Adds a user on behalf of `by` (`user.created`).
    pub fn create_user(
        &self,
        by: &User,
        from: &RequestInfo,
        username: &str,
        role: Role,
        password: &str,
    ) -> Result<UserRecord, CoreError> {
        let name = validate_username(username)?;
        validate_password(password)?;
        let hash = hash_password(password)?;
        let now = self.clock.now_ms();
        let event = action_event(
            self.clock.as_ref(),
            EventType::UserCreated,
            json!({"username": name, "role": role.as_str()}),
            by,
            from,
        );
        self.outbox
            .write(move |tx| {
                let taken: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1)",
                    [&name],
                    |r| r.get(0),
                )?;
                if taken {
                    return Err(CoreError::Conflict(format!("user {name} already exists")));
                }
                tx.execute(
                    "INSERT INTO users (username, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![name, role.as_str(), hash, now],
                )?;
                let id = tx.last_insert_rowid();
                tx.enqueue(&event)?;
                load(tx, id)
            })
            .wait()
    }

    /// Changes a user's role or state on behalf of `by` (`user.updated`). Disabling ends the
    /// user's sessions. Refused for the last enabled superadmin.
    pub fn update_user(
        &self,
        by: &User,
        from: &RequestInfo,
        id: i64,
        change: UserChange,
    ) -> Result<UserRecord, CoreError> {
        let clock = self.clock.clone();
        let (by, from) = (by.clone(), from.clone());
        self.outbox
            .write(move |tx| {
                let before = load(tx, id)?;
                let role = change.role.unwrap_or(before.role);
                let disabled = change.disabled.unwrap_or(before.disabled);
                if role == before.role && disabled == before.disabled {
                    return Ok(before);
                }
                let loses_superadmin = before.role == Role::Superadmin
                    && !before.disabled
                    && (role != Role::Superadmin || disabled);
                if loses_superadmin && enabled_superadmins(tx)? <= 1 {
                    return Err(CoreError::Conflict(format!(
                        "{} is the last enabled superadmin; make another user superadmin first",
                        before.username
                    )));
                }
                tx.execute(
                    "UPDATE users SET role = ?2, disabled = ?3 WHERE id = ?1",
                    params![id, role.as_str(), disabled],
                )?;
                if disabled {
                    tx.execute(
                        "UPDATE tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
                        params![id, clock.now_ms()],
                    )?;
                }
                let mut changes = Vec::new();
                if role != before.role {
                    changes.push("role");
                }
                if disabled != before.disabled {
                    changes.push(if disabled { "disabled" } else { "enabled" });
                }
                let event = action_event(
                    clock.as_ref(),
                    EventType::UserUpdated,
                    json!({
                        "username": before.username,
                        "change": changes.join(","),
                        "role": role.as_str(),
                        "previousRole": before.role.as_str(),
                        "disabled": disabled,
                    }),
                    &by,
                    &from,
                );
                tx.enqueue(&event)?;
                load(tx, id)
            })
            .wait()
    }

    /// Sets a new password for user `id` on behalf of `by` (`user.updated`); the user's
    /// sessions end.
    pub fn reset_password(
        &self,
        by: &User,
        from: &RequestInfo,
        id: i64,
        password: &str,
    ) -> Result<(), CoreError> {
        validate_password(password)?;
        let hash = hash_password(password)?;
        self.replace_password(by, from, id, hash, "password_reset", None)
    }

    /// Changes `user`'s own password after checking the current one (`user.updated`). Their
    /// other sessions end; this one stays.
    pub fn change_password(
        &self,
        user: &User,
        token: &str,
        from: &RequestInfo,
        current: &str,
        new: &str,
    ) -> Result<(), CoreError> {
        validate_password(new)?;
        let id = user.id;
        let stored: String = self.outbox.read(move |tx| {
            Ok::<_, CoreError>(tx.query_row(
                "SELECT password_hash FROM users WHERE id = ?1",
                [id],
                |r| r.get(0),
            )?)
        })?;
        if !verify_password(current, &stored) {
            return Err(CoreError::BadCredentials);
        }
        let hash = hash_password(new)?;
        // The session that made the change carries on.
        let keep = crate::auth::token_hash(token);
        self.replace_password(user, from, id, hash, "password_changed", Some(keep))
    }

    fn replace_password(
        &self,
        by: &User,
        from: &RequestInfo,
        id: i64,
        hash: String,
        change: &'static str,
        keep_token: Option<String>,
    ) -> Result<(), CoreError> {
        let clock = self.clock.clone();
        let (by, from) = (by.clone(), from.clone());
        self.outbox
            .write(move |tx| {
                let user = load(tx, id)?;
                tx.execute(
                    "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                    params![id, hash],
                )?;
                tx.execute(
                    "UPDATE tokens SET revoked_at = ?2
                      WHERE user_id = ?1 AND revoked_at IS NULL AND token_hash IS NOT ?3",
                    params![id, clock.now_ms(), keep_token],
                )?;
                let event = action_event(
                    clock.as_ref(),
                    EventType::UserUpdated,
                    json!({"username": user.username, "change": change}),
                    &by,
                    &from,
                );
                tx.enqueue(&event)?;
                Ok(())
            })
            .wait()
    }
}
