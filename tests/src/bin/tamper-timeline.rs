//! Helper for the desktop tests: does to a case's timeline what someone holding the laptop and
//! its keys could do to the database file, through the data directory's own key (the OS
//! keyring's, as the desktop keeps it). Nothing in the product edits a timeline.
//!
//! Usage: `tamper-timeline <data dir> <case id>`: deletes the case's second chained event.
//! Prints the deleted event's id. The app must not be running on the directory.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use casewire_core::{App, CoreError, DefaultKeyStore, JsonFileStore, Settings, Unlock};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(case_id)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: tamper-timeline <data dir> <case id>");
    };
    let dir = std::path::Path::new(dir);
    let settings = Settings::load(|_| None, None, dir)?;
    let app = App::open_with(
        dir,
        settings,
        Arc::new(JsonFileStore::in_dir(dir)),
        Unlock {
            default_store: DefaultKeyStore::Keyring,
            ..Unlock::default()
        },
    )
    .context("opening the data directory with its key")?;
    let case_id = case_id.clone();
    let deleted = app
        .outbox
        .write(move |tx| {
            let event_id: String = tx.query_row(
                "SELECT event_id FROM case_events WHERE case_id = ?1 AND chain_sequence = 2",
                [&case_id],
                |r| r.get(0),
            )?;
            tx.execute("DELETE FROM case_events WHERE event_id = ?1", [&event_id])?;
            Ok::<_, CoreError>(event_id)
        })
        .wait()?;
    writeln!(std::io::stdout().lock(), "{deleted}")?;
    Ok(())
}
