//! Updates through the whole backend ([`App`]) on a real outbox file: nothing is asked of the
//! update channel until the person allows it, only the version shown is installed, a package
//! that fails its signature check changes nothing, and the installer runs only once the outbox
//! is closed. The channel here is scripted (the desktop's is Tauri's updater, tested with real
//! packages by the package test).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use casewire_core::updates::{Progress, SourceFuture};
use casewire_core::{
    App, JsonFileStore, Release, Role, Settings, UpdateError, UpdatePhase, UpdateSource,
};
use casewire_outbox::Outbox;

use crate::support::{from, user};

/// What the scripted channel saw, and what the outbox looked like as its installer ran.
#[derive(Default)]
struct Seen {
    checks: usize,
    downloads: Vec<String>,
    installs: usize,
    restarts: usize,
    /// At install time: a write was refused, and the WAL's size.
    write_refused_at_install: Option<bool>,
    wal_bytes_at_install: Option<u64>,
}

struct Channel {
    offer: Option<Release>,
    download: Result<(), UpdateError>,
    install: Result<(), UpdateError>,
    /// Held weakly, as the channel lives in the app: the app's end closes the outbox file.
    outbox: Mutex<Option<(Weak<Outbox>, std::path::PathBuf)>>,
    seen: Mutex<Seen>,
}

impl Channel {
    fn offering(version: &str) -> Channel {
        Channel {
            offer: Some(Release {
                version: version.into(),
                notes: Some("Faster queue screen.".into()),
                published: None,
            }),
            download: Ok(()),
            install: Ok(()),
            outbox: Mutex::new(None),
            seen: Mutex::new(Seen::default()),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().expect("seen")
    }
}

impl UpdateSource for Channel {
    fn check(&self) -> SourceFuture<'_, Option<Release>> {
        self.seen().checks += 1;
        let offer = self.offer.clone();
        Box::pin(async move { Ok(offer) })
    }

    fn download<'a>(&'a self, version: &'a str, progress: Progress<'a>) -> SourceFuture<'a, ()> {
        self.seen().downloads.push(version.to_owned());
        progress(1024, Some(2048));
        let result = self.download.clone();
        Box::pin(async move { result })
    }

    fn install(&self) -> Result<(), UpdateError> {
        let held = self.outbox.lock().expect("outbox").clone();
        let mut seen = self.seen();
        seen.installs += 1;
        if let Some((outbox, db)) = held {
            let outbox = outbox.upgrade().expect("the app is still open");
            let write = outbox
                .write(|_| Ok::<(), casewire_outbox::Error>(()))
                .wait();
            seen.write_refused_at_install =
                Some(matches!(write, Err(casewire_outbox::Error::WriterStopped)));
            let wal = std::fs::metadata(format!("{}-wal", db.display())).map_or(0, |m| m.len());
            seen.wal_bytes_at_install = Some(wal);
        }
        self.install.clone()
    }

    fn restart(&self) {
        self.seen().restarts += 1;
    }
}

fn open(dir: &std::path::Path) -> Arc<App> {
    let settings = Settings::load(casewire_testkit::test_env(&[]), None, dir).expect("settings");
    Arc::new(App::open(dir, settings, Arc::new(JsonFileStore::in_dir(dir))).expect("app"))
}

fn with_channel(dir: &std::path::Path, channel: &Arc<Channel>) -> Arc<App> {
    let app = open(dir);
    *channel.outbox.lock().expect("outbox") =
        Some((Arc::downgrade(&app.outbox), dir.join("outbox.db")));
    app.updates.provide(channel.clone());
    app
}

async fn allow(app: &App) {
    let change = BTreeMap::from([("CASEWIRE_UPDATE_CHECK".to_owned(), Some("true".to_owned()))]);
    app.change_settings(change).await.expect("allowed");
}

/// Opens a case, so there is a record and an event to keep across the update.
fn open_case(app: &App) -> String {
    let chief = user("chief", Role::Superadmin);
    app.cases
        .create("Card skimming ring", "", &chief, &from("/api/cases"))
        .expect("case opened")
        .case_id
}

#[tokio::test]
async fn nothing_is_asked_of_the_channel_while_looking_for_updates_is_off() {
    let dir = tempfile::tempdir().expect("dir");
    let channel = Arc::new(Channel::offering("9.0.0"));
    let app = with_channel(dir.path(), &channel);
    let settings = app.settings();
    assert_eq!(app.updates.check(&settings, 0).await, Err(UpdateError::Off));
    assert_eq!(
        app.updates.install(&app, "9.0.0").await,
        Err(UpdateError::Off)
    );
    let view = app.updates.view(&settings);
    assert!(!view.allowed && view.channel, "{view:?}");
    assert_eq!(channel.seen().checks, 0);
    assert!(channel.seen().downloads.is_empty());
}

#[tokio::test]
async fn a_copy_without_an_update_channel_says_so() {
    let dir = tempfile::tempdir().expect("dir");
    let app = open(dir.path());
    allow(&app).await;
    let refused = app.updates.check(&app.settings(), 0).await;
    assert_eq!(refused, Err(UpdateError::NoChannel));
    assert!(!app.updates.view(&app.settings()).channel);
}

#[tokio::test]
async fn only_the_version_shown_is_downloaded() {
    let dir = tempfile::tempdir().expect("dir");
    let channel = Arc::new(Channel::offering("9.0.0"));
    let app = with_channel(dir.path(), &channel);
    allow(&app).await;
    // Before any check nothing is on offer.
    assert!(matches!(
        app.updates.install(&app, "9.0.0").await,
        Err(UpdateError::NotOffered { offered: None, .. })
    ));
    app.updates
        .check(&app.settings(), 1_704_672_000_000)
        .await
        .expect("checked");
    let view = app.updates.view(&app.settings());
    assert_eq!(
        view.available.as_ref().map(|r| r.version.as_str()),
        Some("9.0.0")
    );
    assert_eq!(view.checked_at.as_deref(), Some("2024-01-08T00:00:00.000Z"));
    let refused = app.updates.install(&app, "9.1.0").await;
    assert_eq!(
        refused,
        Err(UpdateError::NotOffered {
            asked: "9.1.0".into(),
            offered: Some("9.0.0".into())
        })
    );
    assert!(channel.seen().downloads.is_empty(), "nothing downloaded");
}

#[tokio::test]
async fn a_package_that_fails_its_signature_check_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let mut scripted = Channel::offering("9.0.0");
    scripted.download = Err(UpdateError::BadSignature(
        "the signature was made with another key".into(),
    ));
    let channel = Arc::new(scripted);
    let app = with_channel(dir.path(), &channel);
    allow(&app).await;
    app.updates
        .check(&app.settings(), 0)
        .await
        .expect("checked");
    let refused = app.updates.install(&app, "9.0.0").await;
    assert!(
        matches!(refused, Err(UpdateError::BadSignature(_))),
        "{refused:?}"
    );
    let seen = channel.seen();
    assert_eq!(
        (seen.installs, seen.restarts),
        (0, 0),
        "not installed, not restarted"
    );
    drop(seen);
    let view = app.updates.view(&app.settings());
    assert_eq!(view.phase, UpdatePhase::Idle);
    assert!(
        view.last_error
            .as_deref()
            .is_some_and(|e| e.contains("not signed with Casewire's key")),
        "{view:?}"
    );
    // The app still writes.
    open_case(&app);
}

#[tokio::test]
async fn the_installer_runs_only_once_the_outbox_is_closed_and_nothing_queued_is_lost() {
    let dir = tempfile::tempdir().expect("dir");
    let channel = Arc::new(Channel::offering("9.0.0"));
    let app = with_channel(dir.path(), &channel);
    allow(&app).await;
    let case = open_case(&app);
    let queued = app
        .outbox
        .stats(casewire_outbox::Page::first(0))
        .expect("stats")
        .queue_size;
    app.updates
        .check(&app.settings(), 0)
        .await
        .expect("checked");
    app.updates.install(&app, "9.0.0").await.expect("installed");
    {
        let seen = channel.seen();
        assert_eq!(seen.downloads, ["9.0.0"]);
        assert_eq!((seen.installs, seen.restarts), (1, 1));
        assert_eq!(
            seen.write_refused_at_install,
            Some(true),
            "writes refused while installing"
        );
        assert_eq!(
            seen.wal_bytes_at_install,
            Some(0),
            "the WAL was checkpointed first"
        );
    }
    assert_eq!(
        app.updates.view(&app.settings()).phase,
        UpdatePhase::Installing
    );
    drop(app);
    let restarted = open(dir.path());
    assert_eq!(
        restarted
            .outbox
            .stats(casewire_outbox::Page::first(0))
            .expect("stats")
            .queue_size,
        queued,
        "every queued event is still there"
    );
    restarted.cases.get(&case).expect("the case is still there");
    assert!(
        restarted.updates.view(&restarted.settings()).allowed,
        "the setting is kept"
    );
}

#[tokio::test]
async fn an_install_that_fails_is_reported_by_the_version_that_restarts() {
    let dir = tempfile::tempdir().expect("dir");
    let mut scripted = Channel::offering("9.0.0");
    scripted.install = Err(UpdateError::Install("dpkg: dependency problems".into()));
    let channel = Arc::new(scripted);
    let app = with_channel(dir.path(), &channel);
    allow(&app).await;
    app.updates
        .check(&app.settings(), 0)
        .await
        .expect("checked");
    app.updates
        .install(&app, "9.0.0")
        .await
        .expect("restarting");
    assert_eq!(
        channel.seen().restarts,
        1,
        "restarted into the version still installed"
    );
    drop(app);
    let restarted = open(dir.path());
    let error = restarted.updates.view(&restarted.settings()).last_error;
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("9.0.0") && e.contains("dpkg: dependency problems")),
        "{error:?}"
    );
    // Said once: the start after that has nothing to report.
    drop(restarted);
    assert_eq!(
        open(dir.path())
            .updates
            .view(&Settings::default())
            .last_error,
        None
    );
}
