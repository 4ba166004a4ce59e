//! Declares the shell's own commands, so the main window's capability can grant exactly them.

fn main() {
    let manifest = tauri_build::AppManifest::new().commands(&[
        "pick_evidence_files",
        "pick_save_path",
        "save_text",
    ]);
    if let Err(e) = tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest)) {
        // A build script reports by panicking; cargo shows the message.
        panic!("tauri-build failed: {e:#}");
    }
}
