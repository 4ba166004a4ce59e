//! The database file encrypted with SQLCipher: every page AES-256 encrypted and authenticated,
//! with a raw 256-bit key (no key derivation at open: the key is random, not a password), and
//! the crash-safe encryption in place of a database written before encryption was on.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use zeroize::Zeroizing;

use crate::Error;

/// The first bytes of every unencrypted SQLite database.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The key a database file is encrypted with. Nothing of it is printed by `Debug`, and its
/// memory is wiped when it is dropped.
#[derive(Clone)]
pub struct DatabaseKey(Zeroizing<[u8; 32]>);

impl DatabaseKey {
    /// A key of these 32 bytes.
    pub fn new(bytes: [u8; 32]) -> DatabaseKey {
        DatabaseKey(Zeroizing::new(bytes))
    }

    /// SQLCipher's spelling of a raw key: `x'<64 hex digits>'`.
    fn raw(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("x'{}'", hex::encode(*self.0)))
    }
}

impl std::fmt::Debug for DatabaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseKey(..)")
    }
}

/// Keys a freshly opened connection; must come before anything else reads the file.
pub(crate) fn apply_key(conn: &Connection, key: Option<&DatabaseKey>) -> Result<(), Error> {
    let Some(key) = key else { return Ok(()) };
    // SQLCipher writes its own errors (a wrong key's failed page check) to stderr; the outbox
    // says what they mean itself (`Error::WrongKey`).
    conn.pragma_update(None, "cipher_log_level", "NONE")
        .map_err(Error::Sqlite)?;
    // Wiping and locking every allocation of SQLite's (SQLCipher's memory security) costs
    // each statement dearly; the keys themselves are wiped by their own types.
    conn.pragma_update(None, "cipher_memory_security", "OFF")
        .map_err(Error::Sqlite)?;
    conn.pragma_update(None, "key", key.raw().as_str())
        .map_err(Error::Sqlite)?;
    settings(conn, None)
}

/// The page cipher's settings, the same for every connection and for the encrypted copy
/// (`schema`, when it is an attached database): HMAC-SHA256 authenticates each page in place
/// of SQLCipher's default HMAC-SHA512, which costs about three times as much on processors
/// with SHA extensions (and is no weaker for a 256-bit key's integrity check).
fn settings(conn: &Connection, schema: Option<&str>) -> Result<(), Error> {
    conn.pragma_update(schema, "cipher_hmac_algorithm", "HMAC_SHA256")
        .map_err(Error::Sqlite)?;
    Ok(())
}

/// Whether `path` is an unencrypted SQLite database (an empty or missing file is not).
pub fn is_plaintext(path: &Path) -> Result<bool, Error> {
    let mut header = [0u8; 16];
    match File::open(path) {
        Ok(mut file) => match file.read_exact(&mut header) {
            Ok(()) => Ok(&header == SQLITE_HEADER),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(source) => Err(Error::Io {
                path: path.to_owned(),
                source,
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Encrypts the unencrypted database at `path` with `key`, in place: an encrypted copy is
/// written beside it (`<name>.encrypting`), made durable, and renamed over it, so that a crash
/// at any point leaves either the old file or the new one, and running this again finishes
/// the work. A file that is not an unencrypted database (already encrypted, or missing) is
/// left as it is. No outbox may have the file open; the outbox's lock is held meanwhile.
///
/// The unencrypted file's blocks stay on the disk until the filesystem reuses them: full-disk
/// encryption is what protects data written before this.
pub fn encrypt_in_place(path: &Path, key: &DatabaseKey) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    let _lock = crate::lock_database(path)?;
    let copy = PathBuf::from(format!("{}.encrypting", path.display()));
    match std::fs::remove_file(&copy) {
        Ok(()) => tracing::info!("removed an unfinished encrypted copy; encrypting again"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(Error::Io { path: copy, source }),
    }
    if !is_plaintext(path)? {
        return Ok(());
    }
    crate::create_private(&copy)?;
    {
        let conn = Connection::open(path).map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(Error::Sqlite)?;
        conn.execute(
            "ATTACH DATABASE ?1 AS encrypted KEY ?2",
            rusqlite::params![copy.to_string_lossy(), key.raw().as_str()],
        )
        .map_err(Error::Sqlite)?;
        settings(&conn, Some("encrypted"))?;
        conn.query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))
            .map_err(Error::Sqlite)?;
        conn.execute_batch(&format!(
            "PRAGMA encrypted.user_version = {version}; DETACH DATABASE encrypted;"
        ))
        .map_err(Error::Sqlite)?;
        // Closing the last connection checkpoints the WAL into the old file and deletes it,
        // so no unencrypted WAL is left to be read as the new file's.
        conn.close().map_err(|(_, e)| Error::Sqlite(e))?;
    }
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(Error::Unsupported(format!(
            "{} still holds unwritten pages after closing; the database was not encrypted",
            wal.display()
        )));
    }
    // Write access: Windows flushes only a handle that may write.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&copy)
        .and_then(|f| f.sync_all())
        .map_err(io(&copy))?;
    std::fs::rename(&copy, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir).map_err(io(dir))?;
    }
    for side in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{side}", path.display()));
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path: side, source }),
        }
    }
    Ok(())
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
