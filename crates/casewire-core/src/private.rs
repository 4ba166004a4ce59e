//! The data directory is its owner's alone: folders 0700, files 0600, whatever the umask the
//! process was started with. Another account on the laptop must not read the password hashes,
//! the case texts or the evidence, nor change a stored file.
//!
//! [`make_private`] runs at every start (before the database opens): it creates the directory
//! if needed and tightens anything in it that is looser, saying what it changed. New files are
//! private because the places that create them ask for it ([`create_dir`], [`write_file`], the
//! outbox's own files) and because `casewire serve` and the desktop set the process umask to
//! 077, which covers what libraries create (SQLite's WAL and shared-memory files take the
//! database's mode as well). On other systems than Unix these are no-ops: the folders are in
//! the user's profile, whose access the OS already restricts.

use std::path::Path;

/// Folders: the owner may read, write and enter.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;
/// Files: the owner may read and write.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// Creates `dir` if it is missing and makes it and everything under it private. Returns what
/// it changed, one line per path (`path: 0755 → 0700`). Symbolic links are left alone (not
/// followed).
pub fn make_private(dir: &Path) -> std::io::Result<Vec<String>> {
    create_dir(dir)?;
    let mut changed = Vec::new();
    #[cfg(unix)]
    tighten(dir, &mut changed)?;
    Ok(changed)
}

#[cfg(unix)]
fn tighten(path: &Path, changed: &mut Vec<String>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path)?;
    let mode = meta.permissions().mode() & 0o777;
    let wanted = if meta.is_dir() {
        DIR_MODE
    } else if meta.is_file() {
        FILE_MODE
    } else {
        return Ok(());
    };
    // Only ever takes bits away: a file the owner made read-only stays read-only.
    let tightened = mode & wanted;
    if tightened != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(tightened))?;
        changed.push(format!("{}: {mode:04o} → {tightened:04o}", path.display()));
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            tighten(&entry?.path(), changed)?;
        }
    }
    Ok(())
}

/// Makes everything this process creates from now on its owner's alone (umask 077): called
/// first thing by `casewire serve` and the desktop, so files that libraries create (the
/// settings store, WebKit's caches) are private too.
pub fn private_by_default() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Creates `dir` and its missing parents, each private.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Creates (or truncates) `path` for writing, private.
pub fn create_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options.open(path)
}

/// Opens (or creates) `path` for writing, private, keeping what it holds: a lock file.
pub fn create_file_keep(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options.open(path)
}

/// Writes `bytes` to `path` (created private, or replaced in place).
pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    create_file(path)?.write_all(bytes)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn looser_folders_and_files_are_tightened_and_each_change_is_said() {
        let root = tempfile::tempdir().expect("dir");
        let data = root.path().join("casewire");
        std::fs::create_dir_all(data.join("evidence/ab")).expect("dirs");
        std::fs::write(data.join("outbox.db"), b"db").expect("file");
        std::fs::write(data.join("evidence/ab/abcd"), b"evidence").expect("file");
        std::fs::write(data.join("readonly"), b"r").expect("file");
        for (path, m) in [
            ("", 0o777),
            ("evidence", 0o755),
            ("evidence/ab", 0o755),
            ("outbox.db", 0o666),
            ("evidence/ab/abcd", 0o644),
            ("readonly", 0o444),
        ] {
            std::fs::set_permissions(data.join(path), std::fs::Permissions::from_mode(m))
                .expect("chmod");
        }
        let changed = make_private(&data).expect("private");
        assert_eq!(changed.len(), 6, "{changed:?}");
        assert!(
            changed
                .iter()
                .any(|c| c.ends_with("outbox.db: 0666 → 0600")),
            "{changed:?}"
        );
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("evidence/ab")), 0o700);
        assert_eq!(mode(&data.join("evidence/ab/abcd")), 0o600);
        assert_eq!(
            mode(&data.join("readonly")),
            0o400,
            "bits are only taken away"
        );
        assert!(
            make_private(&data).expect("again").is_empty(),
            "nothing left to change"
        );
    }

    #[test]
    fn what_is_created_is_private_whatever_the_umask() {
        let root = tempfile::tempdir().expect("dir");
        let dir = root.path().join("a/b");
        create_dir(&dir).expect("created");
        write_file(&dir.join("f"), b"x").expect("written");
        // The test process's umask is typically 022; the modes asked for are narrower still.
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&dir.join("f")), 0o600);
    }
}
