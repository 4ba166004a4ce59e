//! Casewire's desktop app: the backend of `casewire serve` (outbox, domain, relay) inside the
//! app's process, and a window whose page talks to it through the custom scheme `casewire:`,
//! answered by the same axum router in process. The desktop opens no TCP port.
//!
//! The shell is a transport: it wires the backend (`casewire_core::App`), hands the page the
//! router through the scheme, reads and writes the files the person chose (`files.rs`), keeps
//! the settings screen's values (`store.rs`: store file and OS keyring), and shows the tray and
//! notifications (`tray.rs`), and talks to Tauri's updater (`updater.rs`). Everything else is
//! the crates' business.
//!
//! Configuration as for `casewire serve`: `CASEWIRE_DATA_DIR`, `CASEWIRE_CONFIG`, the guide's
//! variables and `KAFKA_*`, then the configuration file, then the settings screen's values.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod files;
mod store;
mod tray;
mod updater;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use casewire_core::{App, Settings};
use casewire_server::ServerState;
use tauri::{DragDropEvent, Emitter, Manager, RunEvent, WindowEvent};

/// What the scheme's handler and the commands share once the backend is up.
pub(crate) struct Backend {
    /// The whole backend.
    pub(crate) app: Arc<App>,
    /// The API's router, answering the scheme.
    pub(crate) router: casewire_server::Router,
    /// The files the person chose, by handle.
    pub(crate) files: Arc<files::Picked>,
}

/// How long Quit waits for the relay to settle what it has in flight.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(10);

fn data_dir() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("CASEWIRE_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => dirs::data_dir()
            .context("no data directory for this user: set CASEWIRE_DATA_DIR")?
            .join("casewire"),
    };
    casewire_core::private::create_dir(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn main() -> anyhow::Result<()> {
    casewire_core::private::private_by_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,librdkafka=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // One runtime for the backend and Tauri's async work, made before the builder.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tauri::async_runtime::set(runtime.handle().clone());
    let dir = data_dir()?;
    let config = std::env::var_os("CASEWIRE_CONFIG").map(PathBuf::from);
    let settings = Settings::load(|k| std::env::var(k).ok(), config.as_deref(), &dir)?;

    // Where this process was started from, read now: an update replaces the file, and the
    // restart after it must start the new one at the same path.
    if let Err(e) = tauri::utils::platform::current_exe() {
        tracing::warn!(error = %e, "the app's own path is unknown; an update cannot restart it");
    }
    let context = tauri::generate_context!();
    let channel = updater::built_in(context.config());

    let mut builder = tauri::Builder::default();
    // The single-instance plugin talks D-Bus on Linux and panics without a session bus
    // (plugins-workspace#3584): without one, a second instance simply runs.
    if cfg!(not(target_os = "linux")) || std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
        builder = builder.plugin(tauri_plugin_single_instance::init(|app, _, _| {
            show_main_window(app);
        }));
    }
    if channel {
        builder = builder.plugin(tauri_plugin_updater::Builder::new().build());
    }
    let app = builder
        .plugin(tauri_plugin_store::Builder::default().build())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .register_asynchronous_uri_scheme_protocol("casewire", |ctx, request, responder| {
            let app = ctx.app_handle().clone();
            tracing::debug!(method = %request.method(), uri = %request.uri(), "scheme request");
            tauri::async_runtime::spawn(async move {
                let response = match app.try_state::<Backend>() {
                    Some(backend) => {
                        casewire_server::scheme::respond(backend.router.clone(), request).await
                    }
                    // The window is made after the backend, so this is only a page that
                    // outlived it while quitting.
                    None => casewire_server::scheme::unavailable(),
                };
                responder.respond(response);
            });
        })
        .invoke_handler(tauri::generate_handler![
            files::pick_evidence_files,
            files::pick_save_path,
            files::save_text
        ])
        .setup(move |app| {
            if let Err(e) = start(app, &dir, settings, channel) {
                // Said here, in a dialog that runs its own loop: tauri-plugin-dialog's waits on
                // the event loop, which does not run yet, and an error returned from `setup`
                // is a panic. Then the app ends with the code of a failure.
                tracing::error!("Casewire cannot start: {e:#}");
                tell_cannot_start(&format!("{e:#}"));
                app.handle().exit(1);
            }
            Ok(())
        })
        .build(context)
        .context("building the window")?;
    app.run(|app, event| {
        if let RunEvent::Exit = event
            && let Some(backend) = app.try_state::<Backend>()
        {
            let backend = backend.app.clone();
            tauri::async_runtime::block_on(async move {
                if tokio::time::timeout(SHUTDOWN_BOUND, backend.shutdown())
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        "the relay did not settle within {SHUTDOWN_BOUND:?}; its events stay queued"
                    );
                }
            });
        }
    });
    Ok(())
}

/// Opens the backend, then the window and the tray.
fn start(
    app: &mut tauri::App,
    dir: &std::path::Path,
    settings: Settings,
    channel: bool,
) -> anyhow::Result<()> {
    let store = store::DesktopStore::open(app.handle(), &dir.join("desktop-settings.json"))?;
    // The desktop keeps the data key's key in the OS keyring unless configured otherwise.
    let unlock = casewire_core::Unlock {
        default_store: casewire_core::DefaultKeyStore::Keyring,
        passphrase: None,
    };
    let backend = Arc::new(App::open_with(dir, settings, Arc::new(store), unlock)?);
    tauri::async_runtime::block_on(backend.start_relay())?;
    tauri::async_runtime::spawn(backend.housekeeping());
    if let Some((address, worker)) = backend.anchoring_worker()? {
        tracing::info!(%address, "anchoring on chain with this address: keep it funded with gas");
        tauri::async_runtime::spawn(worker);
    }
    if channel {
        let source = updater::Channel::new(app.handle().clone(), &backend.settings());
        backend.updates.provide(Arc::new(source));
        tauri::async_runtime::spawn(casewire_core::Updates::look_regularly(Arc::downgrade(
            &backend,
        )));
    }
    let files = Arc::new(files::Picked::new(app.handle().clone()));
    let state = ServerState::desktop(backend.clone(), files.clone());
    app.manage(Backend {
        router: casewire_server::router(Arc::new(state)),
        app: backend.clone(),
        files: files.clone(),
    });

    let config = app
        .config()
        .app
        .windows
        .first()
        .cloned()
        .context("tauri.conf.json describes no window")?;
    let window = tauri::WebviewWindowBuilder::from_config(app.handle(), &config)?
        .on_navigation(|url| {
            let ours = matches!(url.scheme(), "tauri" | "casewire")
                || url.host_str() == Some("tauri.localhost");
            if !ours && matches!(url.scheme(), "http" | "https" | "mailto") {
                // External links open in the system browser, never in the app's window.
                if let Err(e) = open::that_detached(url.as_str()) {
                    tracing::warn!(error = %e, "could not open a link in the browser");
                }
            }
            ours
        })
        .build()?;
    let handle = app.handle().clone();
    let dir = dir.to_owned();
    window.on_window_event(move |event| match event {
        WindowEvent::DragDrop(DragDropEvent::Drop { paths, .. }) => {
            let dropped = files.add_sources(paths.clone());
            if let Err(e) = handle.emit_to("main", "evidence-dropped", dropped) {
                tracing::warn!(error = %e, "dropped files not handed to the page");
            }
        }
        WindowEvent::CloseRequested { api, .. } => {
            let to_tray = handle
                .try_state::<Backend>()
                .and_then(|b| b.app.settings().get("CASEWIRE_CLOSE_TO_TRAY"))
                .is_none_or(|v| v != "false");
            if to_tray {
                api.prevent_close();
                if let Some(window) = handle.get_webview_window("main") {
                    let _ = window.hide();
                }
                tell_once_about_the_tray(&handle, &dir);
            }
        }
        _ => {}
    });
    tray::start(app.handle(), backend);
    Ok(())
}

/// The first time the window is closed to the tray, says so (once per data directory).
fn tell_once_about_the_tray(app: &tauri::AppHandle, dir: &std::path::Path) {
    let told = dir.join(".told-close-to-tray");
    if told.exists() {
        return;
    }
    use tauri_plugin_notification::NotificationExt;
    let shown = app
        .notification()
        .builder()
        .title("Casewire is still sending")
        .body("Events keep reaching headquarters in the background. Quit from the tray icon; turn this off in Settings.")
        .show();
    if let Err(e) = shown {
        tracing::debug!(error = %e, "notification not shown");
    }
    if let Err(e) = std::fs::write(&told, b"") {
        tracing::debug!(error = %e, "could not remember having told about the tray");
    }
}

/// Tells the person, in a dialog of its own, why Casewire cannot start (a database from a newer
/// version, a data folder it may not write…), then returns once it is dismissed.
fn tell_cannot_start(reason: &str) {
    let text = format!("Casewire cannot start.\n\n{reason}");
    // On Linux with GTK's own dialog on this, GTK's thread: rfd would start a GTK thread of its
    // own, which a GTK already running here does not allow.
    #[cfg(target_os = "linux")]
    {
        use gtk::prelude::{DialogExt, GtkWindowExt};
        let dialog = gtk::MessageDialog::new(
            None::<&gtk::Window>,
            gtk::DialogFlags::MODAL,
            gtk::MessageType::Error,
            gtk::ButtonsType::Ok,
            &text,
        );
        dialog.set_title("Casewire");
        dialog.run();
        dialog.close();
    }
    #[cfg(not(target_os = "linux"))]
    {
        rfd::MessageDialog::new()
            .set_level(rfd::MessageLevel::Error)
            .set_title("Casewire")
            .set_description(text)
            .set_buttons(rfd::MessageButtons::Ok)
            .show();
    }
}

/// Shows, unminimises and focuses the main window.
pub(crate) fn show_main_window(app: &tauri::AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}
