//! The tray icon and the OS notifications: the tray's icon shows the sync state (a dot: synced,
//! sending, offline, error; the state is `casewire_core::SyncState`, the badge's), its menu says
//! how many events wait and offers Open, Retry now and Quit; a notification is shown only when the state changes (the
//! decisions are `casewire_core::NoticeWatch`'s). Without a tray host or a notification daemon
//! (a bare X server, no D-Bus session) each is logged and skipped; the app runs on.

use std::sync::Arc;
use std::time::Duration;

use casewire_core::{App, Notice, NoticeWatch, QueueLook, SyncState};
use casewire_outbox::Page;
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager};
use tauri_plugin_notification::NotificationExt;

/// How often the tray looks at the queue.
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// Builds the tray and starts following the queue for it and for notifications.
pub(crate) fn start(app: &AppHandle, backend: Arc<App>) {
    let tray = match build(app) {
        Ok(tray) => Some(tray),
        Err(e) => {
            tracing::warn!(error = %e, "no tray icon (no tray on this desktop?); the window stays the way in");
            None
        }
    };
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut watch = NoticeWatch::default();
        let mut shown = String::new();
        loop {
            let outbox = backend.outbox.clone();
            let stats =
                tauri::async_runtime::spawn_blocking(move || outbox.stats(Page::first(0))).await;
            if let Ok(Ok(stats)) = stats {
                let look = QueueLook {
                    waiting: stats.queue_size,
                    dead_letters: stats.dead_letter_count,
                    broker_connected: stats.kafka_connected,
                    bytes: stats.bytes,
                    quota_bytes: stats.quota_bytes,
                };
                let relay = backend.relay_status();
                let state = SyncState::of(look, relay.running, relay.last_error.is_some());
                let text = waiting_text(look.waiting, state);
                if let Some(tray) = &tray
                    && text != shown
                {
                    if let Err(e) = tray.waiting.set_text(&text) {
                        tracing::debug!(error = %e, "tray text not updated");
                    }
                    if let Err(e) = tray.icon.set_icon(Some(icon(state))) {
                        tracing::debug!(error = %e, "tray icon not updated");
                    }
                    shown = text;
                }
                for notice in watch.observe(look) {
                    notify(&app, notice);
                }
            }
            tokio::time::sleep(LOOK_EVERY).await;
        }
    });
}

/// The menu's first line: the state and how many events it holds back.
fn waiting_text(waiting: u64, state: SyncState) -> String {
    let events = |n: u64| match n {
        1 => "1 event".to_owned(),
        n => format!("{n} events"),
    };
    match state {
        SyncState::Synced => "All events delivered".to_owned(),
        SyncState::NotConfigured if waiting == 0 => "No Kafka configured".to_owned(),
        SyncState::NotConfigured => format!("{} waiting (no Kafka configured)", events(waiting)),
        SyncState::Offline => format!("Offline · {} waiting", events(waiting)),
        SyncState::Sending => format!("Sending {}", events(waiting)),
        SyncState::Error => format!("Error · {} waiting: see the queue screen", events(waiting)),
    }
}

/// The tray icon of a state: the app's icon with a dot, green when synced, blue while sending,
/// grey while events wait for a broker, red on an error.
fn icon(state: SyncState) -> Image<'static> {
    let png: &[u8] = match state {
        SyncState::Synced => include_bytes!("../../icons/tray/synced.png"),
        SyncState::Sending => include_bytes!("../../icons/tray/sending.png"),
        SyncState::Offline | SyncState::NotConfigured => {
            include_bytes!("../../icons/tray/offline.png")
        }
        SyncState::Error => include_bytes!("../../icons/tray/error.png"),
    };
    // The PNGs are the repository's own; one that does not decode is a build mistake.
    Image::from_bytes(png).expect("the tray icons are valid PNGs")
}

/// The parts of the tray that follow the queue.
struct Tray {
    icon: TrayIcon,
    waiting: MenuItem<tauri::Wry>,
}

fn build(app: &AppHandle) -> tauri::Result<Tray> {
    let waiting = MenuItem::with_id(app, "waiting", "Looking at the queue…", false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Casewire", true, None::<&str>)?;
    let retry = MenuItem::with_id(app, "retry", "Retry now", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[
            &waiting,
            &PredefinedMenuItem::separator(app)?,
            &open,
            &retry,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    let mut tray = TrayIconBuilder::with_id("casewire")
        .menu(&menu)
        .tooltip("Casewire")
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "open" => crate::show_main_window(app),
            "retry" => {
                if let Some(backend) = app.try_state::<crate::Backend>() {
                    let outbox = backend.app.outbox.clone();
                    tauri::async_runtime::spawn(async move {
                        if let Err(e) = outbox.retry_now("desktop:tray".into()).await {
                            tracing::warn!(error = %e, "retry now from the tray failed");
                        }
                    });
                }
            }
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    Ok(Tray {
        icon: tray.build(app)?,
        waiting,
    })
}

fn notify(app: &AppHandle, notice: Notice) {
    let (title, body) = match notice {
        Notice::BacklogDelivered { count: 1 } => (
            "Back online".to_owned(),
            "1 event delivered to headquarters".to_owned(),
        ),
        Notice::BacklogDelivered { count } => (
            "Back online".to_owned(),
            format!("{count} events delivered to headquarters"),
        ),
        Notice::DeadLettered { count } => (
            "An event could not be delivered".to_owned(),
            format!(
                "{count} moved to the dead letters: an admin can replay them from the queue screen"
            ),
        ),
        Notice::QueueNearlyFull { percent } => (
            "The queue is nearly full".to_owned(),
            format!(
                "{percent} % of the queue's space is used; new work is refused when it is full"
            ),
        ),
    };
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::debug!(error = %e, "notification not shown (no notification service)");
    }
}
