//! Files the person chose, behind opaque handles: picked in the open dialog or dropped on the
//! window (read by Rust for evidence), or chosen in the save dialog (written by Rust for a
//! download). The page gets a handle, a name and a size, never a path it could alter, and the
//! API's file routes accept only handles given here.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use casewire_server::LocalFiles;
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager};
use tauri_plugin_dialog::DialogExt;

/// A file the page may add as evidence.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PickedFile {
    /// The opaque handle to name it by.
    pub(crate) handle: String,
    /// Its file name.
    pub(crate) name: String,
    /// Its size in bytes.
    pub(crate) size: u64,
}

/// A path the page may save a download to.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SaveTarget {
    /// The opaque handle to name it by.
    pub(crate) handle: String,
    /// The file name chosen, to show.
    pub(crate) name: String,
}

#[derive(Serialize, Clone)]
struct UploadProgress<'a> {
    handle: &'a str,
    bytes: u64,
    total: u64,
}

/// The handles given out since the app started.
pub(crate) struct Picked {
    app: AppHandle,
    sources: Mutex<HashMap<String, PathBuf>>,
    targets: Mutex<HashMap<String, PathBuf>>,
}

fn new_handle() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Picked {
    /// No handles yet.
    pub(crate) fn new(app: AppHandle) -> Picked {
        Picked {
            app,
            sources: Mutex::default(),
            targets: Mutex::default(),
        }
    }

    /// Gives a handle for each regular file among `paths` (folders and unreadable paths are
    /// skipped: a drop may carry anything).
    pub(crate) fn add_sources(&self, paths: Vec<PathBuf>) -> Vec<PickedFile> {
        let mut sources = lock(&self.sources);
        paths
            .into_iter()
            .filter_map(|path| {
                let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
                let name = path.file_name()?.to_string_lossy().into_owned();
                let handle = new_handle();
                sources.insert(handle.clone(), path);
                Some(PickedFile {
                    handle,
                    name,
                    size: meta.len(),
                })
            })
            .collect()
    }

    fn add_target(&self, path: PathBuf) -> SaveTarget {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let handle = new_handle();
        lock(&self.targets).insert(handle.clone(), path);
        SaveTarget { handle, name }
    }
}

impl LocalFiles for Picked {
    fn source(&self, handle: &str) -> Option<(PathBuf, String)> {
        let path = lock(&self.sources).get(handle).cloned()?;
        let name = path.file_name()?.to_string_lossy().into_owned();
        Some((path, name))
    }

    fn target(&self, handle: &str) -> Option<PathBuf> {
        lock(&self.targets).get(handle).cloned()
    }

    fn progress(&self, handle: &str, bytes: u64, total: u64) {
        let progress = UploadProgress {
            handle,
            bytes,
            total,
        };
        if let Err(e) = self.app.emit_to("main", "upload-progress", progress) {
            tracing::debug!(error = %e, "upload progress not shown");
        }
    }
}

/// Opens the open dialog and gives a handle for each file chosen (none if cancelled).
#[tauri::command]
pub(crate) async fn pick_evidence_files(app: AppHandle) -> Vec<PickedFile> {
    let dialog = app.dialog().file().set_title("Add evidence");
    let chosen = tauri::async_runtime::spawn_blocking(move || dialog.blocking_pick_files())
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let paths = chosen
        .into_iter()
        .filter_map(|p| p.into_path().ok())
        .collect();
    match app.try_state::<crate::Backend>() {
        Some(backend) => backend.files.add_sources(paths),
        None => Vec::new(),
    }
}

/// Opens the save dialog with `suggested_name` and gives a handle for the path chosen.
#[tauri::command]
pub(crate) async fn pick_save_path(app: AppHandle, suggested_name: String) -> Option<SaveTarget> {
    // Only a name: the dialog starts in its usual folder, and a name with a path in it is cut.
    let name = std::path::Path::new(&suggested_name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "evidence".into());
    let dialog = app
        .dialog()
        .file()
        .set_title("Save evidence")
        .set_file_name(name);
    let chosen = tauri::async_runtime::spawn_blocking(move || dialog.blocking_save_file())
        .await
        .ok()
        .flatten()?;
    let path = chosen.into_path().ok()?;
    let backend = app.try_state::<crate::Backend>()?;
    Some(backend.files.add_target(path))
}

/// Writes `text` (an export the page made, such as the queue as JSON) to the path behind a
/// save dialog's `handle`, through a temporary file renamed into place.
#[tauri::command]
pub(crate) async fn save_text(app: AppHandle, handle: String, text: String) -> Result<(), String> {
    let backend = app
        .try_state::<crate::Backend>()
        .ok_or_else(|| "Casewire is starting or quitting; try again in a moment".to_owned())?;
    let path = backend
        .files
        .target(&handle)
        .ok_or_else(|| "that file was not chosen in this window; choose it again".to_owned())?;
    tauri::async_runtime::spawn_blocking(move || {
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, text.as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok::<_, std::io::Error>(())
    })
    .await
    .map_err(|e| format!("saving failed: {e}"))?
    .map_err(|e| format!("could not write the file: {e}"))
}
