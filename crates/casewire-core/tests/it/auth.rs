//! Users, passwords, tokens and permissions.

use std::time::Duration;

use casewire_core::{Auth, AuthPolicy, CoreError, Permission, RequestInfo, Role};
use casewire_events::{EventType, Priority};

use crate::support::{self, Domain};

struct Fixture {
    domain: Domain,
    auth: Auth,
}

fn fixture() -> Fixture {
    let domain = Domain::new();
    let auth = Auth::new(
        domain.outbox.clone(),
        domain.clock.clone(),
        AuthPolicy::default(),
    );
    Fixture { domain, auth }
}

fn from() -> RequestInfo {
    support::from("/api/auth/login")
}

const PASSWORD: &str = "correct horse battery";

#[test]
fn a_login_issues_a_token_and_records_user_login_with_it() {
    let fx = fixture();
    fx.auth
        .add_user("Investigator@Fraud.com", Role::User, PASSWORD)
        .expect("added");
    let session = fx
        .auth
        .login("investigator@fraud.com", PASSWORD, &from())
        .expect("logged in");
    assert_eq!(session.token.len(), 64, "256 random bits, hex");
    assert_eq!(session.user.role, Role::User);
    assert_eq!(
        fx.auth
            .authenticate(&session.token)
            .expect("valid")
            .username,
        "investigator@fraud.com"
    );
    let login = fx.domain.events().pop().expect("an event");
    assert_eq!(login.event_type, EventType::UserLogin);
    assert_eq!(login.priority, Priority::Low);
    assert_eq!(
        login.metadata.user_id.as_deref(),
        Some("investigator@fraud.com")
    );
    assert_eq!(login.metadata.ip_address.as_deref(), Some("192.168.1.100"));
    // Only the token's hash is stored.
    let stored: String = fx
        .domain
        .outbox
        .write(|tx| {
            Ok::<_, casewire_outbox::Error>(tx.query_row(
                "SELECT token_hash FROM tokens",
                [],
                |r| r.get(0),
            )?)
        })
        .wait()
        .expect("row");
    assert_ne!(stored, session.token);
}

#[test]
fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let fx = fixture();
    fx.auth
        .add_user("analyst", Role::Analyst, PASSWORD)
        .expect("added");
    let wrong = fx
        .auth
        .login("analyst", "not the password", &from())
        .expect_err("refused");
    let unknown = fx
        .auth
        .login("nobody", PASSWORD, &from())
        .expect_err("refused");
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert!(matches!(wrong, CoreError::BadCredentials));
    assert!(
        fx.domain.events().is_empty(),
        "no login event for a refused login"
    );
}

fn from_client(address: &str) -> RequestInfo {
    RequestInfo {
        ip_address: Some(address.into()),
        ..from()
    }
}

fn throttled_for(result: Result<casewire_core::Session, CoreError>) -> Option<Duration> {
    match result {
        Err(CoreError::LoginThrottled { retry_after }) => Some(retry_after),
        _ => None,
    }
}

#[test]
fn failures_at_one_account_from_one_client_make_it_wait_longer_each_time_and_no_one_else() {
    let fx = fixture();
    fx.auth
        .add_user("root", Role::Superadmin, PASSWORD)
        .expect("added");
    let attacker = from_client("10.0.0.66");
    let session = fx
        .auth
        .login("root", PASSWORD, &from_client("10.0.0.1"))
        .expect("signed in before the attack");
    for _ in 0..5 {
        // The name is trimmed and lower-cased: "ROOT " is the same account.
        assert!(matches!(
            fx.auth.login("ROOT ", "guess", &attacker),
            Err(CoreError::BadCredentials)
        ));
    }
    // From the attacker's address even the right password waits, and is told how long.
    assert_eq!(
        throttled_for(fx.auth.login("root", PASSWORD, &attacker)),
        Some(Duration::from_secs(30))
    );
    // The owner, from their own address, is not locked out; a token already issued still works.
    fx.auth
        .login("root", PASSWORD, &from_client("10.0.0.1"))
        .expect("another client is not refused");
    fx.auth
        .authenticate(&session.token)
        .expect("an issued token is never refused");
    // Each failure past the limit doubles the wait.
    fx.domain.clock.advance(Duration::from_secs(31));
    assert!(matches!(
        fx.auth.login("root", "guess", &attacker),
        Err(CoreError::BadCredentials)
    ));
    assert_eq!(
        throttled_for(fx.auth.login("root", PASSWORD, &attacker)),
        Some(Duration::from_secs(60))
    );
    fx.domain.clock.advance(Duration::from_secs(61));
    fx.auth
        .login("root", PASSWORD, &attacker)
        .expect("the wait is over");
}

#[test]
fn one_client_trying_many_accounts_is_slowed_after_ten() {
    let fx = fixture();
    fx.auth
        .add_user("admin", Role::Admin, PASSWORD)
        .expect("added");
    let sprayer = from_client("10.0.0.66");
    for i in 0..10 {
        assert!(
            matches!(
                fx.auth.login(&format!("user{i}"), "Winter2026!", &sprayer),
                Err(CoreError::BadCredentials)
            ),
            "try {i}"
        );
    }
    assert_eq!(
        throttled_for(fx.auth.login("user10", "Winter2026!", &sprayer)),
        Some(Duration::from_secs(30))
    );
    fx.auth
        .login("admin", PASSWORD, &from_client("10.0.0.1"))
        .expect("another client is not refused");
}

#[test]
fn past_a_global_ceiling_every_client_that_failed_waits_and_a_clean_one_does_not() {
    let domain = Domain::new();
    let auth = Auth::new(
        domain.outbox.clone(),
        domain.clock.clone(),
        AuthPolicy {
            max_global_failures: 3,
            ..AuthPolicy::default()
        },
    );
    auth.add_user("admin", Role::Admin, PASSWORD)
        .expect("added");
    for c in 1..=3 {
        let _ = auth.login("admin", "guess", &from_client(&format!("10.0.1.{c}")));
    }
    assert_eq!(
        throttled_for(auth.login("admin", PASSWORD, &from_client("10.0.1.1"))),
        Some(Duration::from_secs(30))
    );
    auth.login("admin", PASSWORD, &from_client("10.0.0.1"))
        .expect("a client with no failure still gets its try");
}

#[test]
fn failures_older_than_the_window_no_longer_count() {
    let fx = fixture();
    fx.auth
        .add_user("admin", Role::Admin, PASSWORD)
        .expect("added");
    for _ in 0..5 {
        let _ = fx.auth.login("admin", "guess", &from());
    }
    assert!(throttled_for(fx.auth.login("admin", PASSWORD, &from())).is_some());
    fx.domain.clock.advance(Duration::from_secs(16 * 60));
    fx.auth
        .login("admin", PASSWORD, &from())
        .expect("the window has passed");
}

#[test]
fn tokens_expire_and_logout_revokes_them() {
    let fx = fixture();
    fx.auth
        .add_user("user1", Role::User, PASSWORD)
        .expect("added");
    let first = fx
        .auth
        .login("user1", PASSWORD, &from())
        .expect("logged in");
    let second = fx
        .auth
        .login("user1", PASSWORD, &from())
        .expect("logged in");
    fx.auth.logout(&first.token).expect("logout");
    assert!(matches!(
        fx.auth.authenticate(&first.token),
        Err(CoreError::Unauthenticated)
    ));
    fx.auth
        .authenticate(&second.token)
        .expect("other sessions live on");
    fx.domain.clock.advance(Duration::from_secs(12 * 3600 + 1));
    assert!(matches!(
        fx.auth.authenticate(&second.token),
        Err(CoreError::Unauthenticated)
    ));
    assert!(matches!(
        fx.auth.authenticate("not-a-token"),
        Err(CoreError::Unauthenticated)
    ));
}

#[test]
fn permissions_follow_the_guides_roles() {
    use Permission::*;
    let table = [
        (Role::User, [true, false, false, false, false]),
        (Role::Analyst, [true, true, false, false, false]),
        (Role::Admin, [true, true, true, true, false]),
        (Role::Superadmin, [true, true, true, true, true]),
    ];
    for (role, expected) in table {
        let got: Vec<bool> = [Investigate, Analyse, DeleteEvidence, ViewLogs, SystemConfig]
            .iter()
            .map(|p| role.permits(*p))
            .collect();
        assert_eq!(got, expected, "{role}");
    }
}

#[test]
fn authorize_tells_missing_authentication_from_missing_permission() {
    let fx = fixture();
    fx.auth
        .add_user("admin", Role::Admin, PASSWORD)
        .expect("added");
    let token = fx
        .auth
        .login("admin", PASSWORD, &from())
        .expect("logged in")
        .token;
    assert!(matches!(
        fx.auth.authorize(None, Permission::ViewLogs),
        Err(CoreError::Unauthenticated)
    ));
    assert_eq!(
        fx.auth
            .authorize(Some(&token), Permission::ViewLogs)
            .expect("allowed")
            .username,
        "admin"
    );
    let err = fx
        .auth
        .authorize(Some(&token), Permission::SystemConfig)
        .expect_err("forbidden");
    assert_eq!(
        err.to_string(),
        "role admin lacks the system-config permission"
    );
}

#[test]
fn a_refused_request_is_recorded_as_a_critical_event() {
    let fx = fixture();
    let request = RequestInfo {
        ip_address: Some("10.0.0.7".into()),
        method: "POST".into(),
        path: "/api/queue/clear".into(),
        role_header_sent: true,
    };
    fx.auth
        .record_refusal(&request, None, "no bearer token")
        .expect("recorded");
    let event = fx.domain.events().pop().expect("an event");
    assert_eq!(event.event_type, EventType::UserUnauthorizedAccess);
    assert_eq!(event.priority, Priority::Critical);
    assert_eq!(event.data["path"], "/api/queue/clear");
    assert_eq!(event.data["method"], "POST");
    assert_eq!(event.data["roleHeaderSent"], true);
    assert_eq!(event.metadata.ip_address.as_deref(), Some("10.0.0.7"));
}

#[test]
fn bad_users_are_refused_with_the_rule_they_break() {
    let fx = fixture();
    let short = fx
        .auth
        .add_user("someone", Role::User, "short")
        .expect_err("short")
        .to_string();
    assert_eq!(short, "password must have at least 12 characters");
    let name = fx
        .auth
        .add_user("two words", Role::User, PASSWORD)
        .expect_err("bad name")
        .to_string();
    assert!(name.contains("must be 1 to 64 letters"), "{name}");
    fx.auth
        .add_user("dup", Role::User, PASSWORD)
        .expect("added");
    let dup = fx
        .auth
        .add_user("DUP", Role::Admin, PASSWORD)
        .expect_err("duplicate")
        .to_string();
    assert_eq!(dup, "user dup already exists");
    assert!("root".parse::<Role>().is_err());
}

#[test]
fn migrations_run_once_and_refuse_a_newer_schema() {
    let fx = fixture();
    casewire_core::migrate(&fx.domain.outbox).expect("running again is a no-op");
    fx.domain
        .outbox
        .write(|tx| {
            tx.execute("INSERT INTO core_schema (version) VALUES (99)", [])?;
            Ok::<_, casewire_outbox::Error>(())
        })
        .wait()
        .expect("bump");
    let err = casewire_core::migrate(&fx.domain.outbox)
        .expect_err("newer")
        .to_string();
    assert!(err.contains("newer than this Casewire"), "{err}");
}

#[test]
fn parallel_guesses_cannot_slip_under_the_failure_limit() {
    let fx = fixture();
    fx.auth
        .add_user("admin", Role::Admin, PASSWORD)
        .expect("added");
    let outcomes: Vec<String> = std::thread::scope(|scope| {
        let guesses: Vec<_> = (0..12)
            .map(|i| {
                let auth = &fx.auth;
                scope.spawn(
                    move || match auth.login("admin", &format!("guess {i}"), &from()) {
                        Err(CoreError::BadCredentials) => "bad".to_owned(),
                        Err(CoreError::LoginThrottled { .. }) => "throttled".to_owned(),
                        other => format!("{other:?}"),
                    },
                )
            })
            .collect();
        guesses
            .into_iter()
            .map(|g| g.join().expect("guess"))
            .collect()
    });
    let bad = outcomes.iter().filter(|o| *o == "bad").count();
    let throttled = outcomes.iter().filter(|o| *o == "throttled").count();
    assert_eq!((bad, throttled), (5, 7), "{outcomes:?}");
}

#[test]
fn a_name_no_user_can_have_is_refused_without_a_trace() {
    let fx = fixture();
    let long = "x".repeat(100_000);
    assert!(matches!(
        fx.auth.login(&long, "guess", &from()),
        Err(CoreError::BadCredentials)
    ));
    let db = rusqlite::Connection::open(fx.domain.dir.path().join("outbox.db")).expect("open");
    let rows: i64 = db
        .query_row("SELECT COUNT(*) FROM login_failures", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows, 0);
}
