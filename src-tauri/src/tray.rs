//! The tray icon and the OS notifications: the tray's menu says how many events wait and
//! offers Open, Retry now and Quit; a notification is shown only when the state changes (the
//! decisions are `casewire_core::NoticeWatch`'s). Without a tray host or a notification daemon
//! (a bare X server, no D-Bus session) each is logged and skipped; the app runs on.

use std::sync::Arc;
use std::time::Duration;

use casewire_core::{App, Notice, NoticeWatch, QueueLook};
use casewire_outbox::Page;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager};
use tauri_plugin_notification::NotificationExt;

/// How often the tray looks at the queue.
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// Builds the tray and starts following the queue for it and for notifications.
pub(crate) fn start(app: &AppHandle, backend: Arc<App>) {
    let waiting = match build(app) {
        Ok(item) => Some(item),
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
                let text = waiting_text(look, backend.relay_status().running);
                if let Some(item) = &waiting
                    && text != shown
                {
                    if let Err(e) = item.set_text(&text) {
                        tracing::debug!(error = %e, "tray text not updated");
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

fn waiting_text(look: QueueLook, relay: bool) -> String {
    match (look.waiting, relay, look.broker_connected) {
        (0, _, _) => "All events delivered".to_owned(),
        (1, false, _) => "1 event waiting (no Kafka configured)".to_owned(),
        (n, false, _) => format!("{n} events waiting (no Kafka configured)"),
        (1, true, false) => "Offline · 1 event waiting".to_owned(),
        (n, true, false) => format!("Offline · {n} events waiting"),
        (1, true, true) => "Sending 1 event".to_owned(),
        (n, true, true) => format!("Sending {n} events"),
    }
}

fn build(app: &AppHandle) -> tauri::Result<MenuItem<tauri::Wry>> {
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
    tray.build(app)?;
    Ok(waiting)
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
