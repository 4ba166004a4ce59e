//! The keys the data is encrypted with, and where the key that guards them is kept.
//!
//! One random data key (64 bytes: the database's SQLCipher key and the evidence files' sealing
//! key) is made when encryption is first turned on. It never leaves memory unwrapped: on disk
//! it is in `<data dir>/keys.json`, wrapped (AES-256-GCM would do as well; XChaCha20-Poly1305
//! is the cipher the evidence already uses) by a key-encryption key kept elsewhere:
//! - the OS keyring (Secret Service on Linux, Keychain on macOS, Credential Manager on
//!   Windows), the desktop's default;
//! - a key file readable by its owner only (`CASEWIRE_KEY_FILE`, by default in the OS
//!   configuration folder, never inside the data directory), a headless server's default;
//! - or a passphrase given on standard input at start, stretched with Argon2id.
//!
//! Rotating the key-encryption key re-wraps the data key; the data is not rewritten.
//! `keys.json` also records whether the evidence stored before it was sealed (the database says
//! so itself, by its header), so a start interrupted half way finishes it. Nothing about a key
//! is logged.

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::CoreError;
use crate::sealed::ContentKey;
use casewire_outbox::DatabaseKey;

/// The file, in the data directory, that holds the wrapped data key.
pub const KEYS_FILE: &str = "keys.json";

/// What the wrap authenticates besides the key, so a wrapped key cannot be taken for another
/// kind of secret.
const WRAP_CONTEXT: &[u8] = b"casewire data key v1";

/// The format of `keys.json` this version writes and reads.
const FORMAT: u32 = 1;

/// The keyring's service name for the data directory's key-encryption key.
const KEYRING_SERVICE: &str = "org.casewire.data-key";

/// Where the key-encryption key is kept.
#[derive(Clone)]
pub enum KeyStore {
    /// The OS keyring.
    Keyring,
    /// A key file readable by its owner only.
    File(PathBuf),
    /// A passphrase, given at start.
    Passphrase(Zeroizing<String>),
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyStore::Keyring => f.write_str("Keyring"),
            KeyStore::File(path) => f.debug_tuple("File").field(path).finish(),
            KeyStore::Passphrase(_) => f.write_str("Passphrase(..)"),
        }
    }
}

impl KeyStore {
    /// How `keys.json` names this store.
    fn kind(&self) -> &'static str {
        match self {
            KeyStore::Keyring => "keyring",
            KeyStore::File(_) => "file",
            KeyStore::Passphrase(_) => "passphrase",
        }
    }

    /// The default key file: `casewire/data.key` in the OS configuration folder.
    pub fn default_file() -> Result<PathBuf, CoreError> {
        dirs::config_dir()
            .map(|dir| dir.join("casewire").join("data.key"))
            .ok_or_else(|| {
                CoreError::Config(
                    "this account has no configuration folder for the key file: set CASEWIRE_KEY_FILE"
                        .into(),
                )
            })
    }
}

/// The unwrapped data key: the database's key and the evidence's.
pub struct DataKeys {
    /// The database's SQLCipher key.
    pub database: DatabaseKey,
    /// The evidence files' sealing key.
    pub content: ContentKey,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKeys(..)")
    }
}

/// `keys.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KeysFile {
    /// The format.
    version: u32,
    /// This data directory's id: names its keyring entry.
    id: String,
    /// `keyring`, `file` or `passphrase`.
    store: String,
    /// The key file, for `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_file: Option<PathBuf>,
    /// Argon2id's salt, hex, for `passphrase`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    salt: Option<String>,
    /// The nonce and the wrapped data key, hex.
    wrapped: String,
    /// Whether the evidence stored before encryption was on has been sealed.
    pub(crate) evidence_sealed: bool,
}

/// A key-encryption key.
struct Kek(Zeroizing<[u8; 32]>);

fn storage(what: &str, e: impl std::fmt::Display) -> CoreError {
    CoreError::Storage(format!("{what}: {e}"))
}

impl KeysFile {
    fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(KEYS_FILE)
    }

    /// The file, if encryption was ever turned on for `data_dir`.
    pub(crate) fn load(data_dir: &Path) -> Result<Option<KeysFile>, CoreError> {
        let path = KeysFile::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let file: KeysFile = serde_json::from_slice(&bytes).map_err(|e| {
                    CoreError::Storage(format!(
                        "{} is damaged ({e}); it holds the wrapped data key: restore it from a backup",
                        path.display()
                    ))
                })?;
                if file.version > FORMAT {
                    return Err(CoreError::Config(format!(
                        "{} was written by a newer version of Casewire; upgrade to open it (nothing was changed)",
                        path.display()
                    )));
                }
                Ok(Some(file))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(storage(&path.display().to_string(), e)),
        }
    }

    /// Writes the file atomically (a temporary file, made durable, renamed into place).
    pub(crate) fn save(&self, data_dir: &Path) -> Result<(), CoreError> {
        let path = KeysFile::path(data_dir);
        let tmp = data_dir.join(format!("{KEYS_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(self).map_err(|e| storage("keys.json", e))?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut file = crate::private::create_file(&tmp)?;
            file.write_all(&json)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            sync_dir(data_dir)
        };
        write().map_err(|e| storage(&path.display().to_string(), e))
    }

    /// A new data key for `data_dir`, wrapped by `store`'s key (made there if it has none).
    pub(crate) fn create(store: &KeyStore) -> Result<(KeysFile, DataKeys), CoreError> {
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        let id = hex::encode(id);
        let mut data = Zeroizing::new([0u8; 64]);
        rand::rng().fill_bytes(data.as_mut());
        let mut file = KeysFile {
            version: FORMAT,
            id,
            store: store.kind().to_owned(),
            key_file: None,
            salt: None,
            wrapped: String::new(),
            evidence_sealed: false,
        };
        let kek = file.new_kek(store)?;
        file.wrapped = wrap(&kek, &data)?;
        Ok((file, split(&data)))
    }

    /// The data key, unwrapped with the key `store` holds.
    pub(crate) fn unlock(&self, store: &KeyStore) -> Result<DataKeys, CoreError> {
        if self.store != store.kind() {
            return Err(CoreError::Config(format!(
                "the data key of this data directory is guarded by the {} store, not the {} one: set CASEWIRE_KEY_STORE={}, or rotate the key to the other store",
                self.store,
                store.kind(),
                self.store
            )));
        }
        let kek = self.kek(store)?;
        let data = unwrap(&kek, &self.wrapped).ok_or_else(|| {
            CoreError::Config(format!(
                "the data key cannot be unwrapped with the key from the {}: it is not the key this data directory was encrypted with; nothing was changed",
                self.describe(store)
            ))
        })?;
        Ok(split(&data))
    }

    /// Re-wraps the data key with a new key in `to` (the same store or another) and saves
    /// the file; the data is not rewritten. Crash-safe: the new key is made first (a new key
    /// file, a new keyring entry), then `keys.json` is replaced atomically; the old keyring
    /// entry is removed after, and an old key file is left for its owner to delete.
    pub(crate) fn rotate(
        &mut self,
        data_dir: &Path,
        from: &KeyStore,
        to: &KeyStore,
    ) -> Result<(), CoreError> {
        let data = unwrap(&self.kek(from)?, &self.wrapped).ok_or_else(|| {
            CoreError::Config(format!(
                "the {} does not unwrap the data key; nothing was changed",
                self.describe(from)
            ))
        })?;
        let old_entry = (self.store == "keyring").then(|| self.id.clone());
        let mut next = self.clone();
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        next.id = hex::encode(id);
        next.store = to.kind().to_owned();
        next.key_file = None;
        next.salt = None;
        // A key file may guard other data directories too: a rotation never replaces one, it
        // makes a new one.
        if let KeyStore::File(path) = to
            && path.exists()
        {
            return Err(CoreError::Config(format!(
                "the key file {} exists, and other data directories may use its key: rotate to a new file (--key-file); nothing was changed",
                path.display()
            )));
        }
        let kek = next.new_kek(to)?;
        next.wrapped = wrap(&kek, &data)?;
        next.save(data_dir)?;
        if let KeyStore::File(old) = from {
            tracing::warn!(
                old_key_file = %old.display(),
                "this data directory no longer needs the old key file: delete it once no other data directory uses it"
            );
        }
        if let Some(old) = old_entry.filter(|old| *old != next.id)
            && let Err(e) = keyring_entry(&old)
                .and_then(|entry| entry.delete_credential().map_err(|e| keyring_error(&e)))
        {
            tracing::warn!(error = %e, "the old keyring entry of the data key was not removed");
        }
        *self = next;
        Ok(())
    }

    /// The key file this file's key is in, if it is in one.
    pub(crate) fn key_file(&self) -> Option<&Path> {
        self.key_file.as_deref()
    }

    /// `keyring`, `file` or `passphrase`.
    pub(crate) fn store_kind(&self) -> &str {
        &self.store
    }

    fn describe(&self, store: &KeyStore) -> String {
        match store {
            KeyStore::Keyring => "OS keyring".to_owned(),
            KeyStore::File(path) => format!("key file {}", path.display()),
            KeyStore::Passphrase(_) => "passphrase".to_owned(),
        }
    }

    /// Makes a key-encryption key in `store` for this file.
    fn new_kek(&mut self, store: &KeyStore) -> Result<Kek, CoreError> {
        match store {
            KeyStore::Keyring => {
                let kek = random_kek();
                keyring_entry(&self.id)?
                    .set_password(&hex::encode(*kek.0))
                    .map_err(|e| keyring_error(&e))?;
                Ok(kek)
            }
            KeyStore::File(path) => {
                self.key_file = Some(path.clone());
                match read_key_file(path)? {
                    Some(kek) => Ok(kek),
                    // Another start may make it at the same moment: then its key is used.
                    None => match create_key_file(path) {
                        Err(_) if path.exists() => read_key_file(path)?.ok_or_else(|| {
                            CoreError::Config(format!("the key file {} vanished", path.display()))
                        }),
                        made => made,
                    },
                }
            }
            KeyStore::Passphrase(passphrase) => {
                let mut salt = [0u8; 16];
                rand::rng().fill_bytes(&mut salt);
                self.salt = Some(hex::encode(salt));
                stretch(passphrase, &salt)
            }
        }
    }

    /// The key-encryption key `store` holds for this file.
    fn kek(&self, store: &KeyStore) -> Result<Kek, CoreError> {
        match store {
            KeyStore::Keyring => {
                let secret = keyring_entry(&self.id)?.get_password().map_err(|e| match e {
                    keyring::Error::NoEntry => CoreError::Config(
                        "the OS keyring has no Casewire data key for this data directory: sign in to the account that encrypted it, or restore its keyring".into(),
                    ),
                    e => keyring_error(&e),
                })?;
                parse_kek(secret.trim()).ok_or_else(|| {
                    CoreError::Config("the OS keyring's Casewire data key is damaged".into())
                })
            }
            KeyStore::File(path) => read_key_file(path)?.ok_or_else(|| {
                CoreError::Config(format!(
                    "the key file {} does not exist: it holds the key this data directory was encrypted with; restore it, or set CASEWIRE_KEY_FILE to where it is",
                    path.display()
                ))
            }),
            KeyStore::Passphrase(passphrase) => {
                let salt = self
                    .salt
                    .as_deref()
                    .and_then(|s| hex::decode(s).ok())
                    .ok_or_else(|| CoreError::Storage("keys.json has no passphrase salt".into()))?;
                stretch(passphrase, &salt)
            }
        }
    }
}

/// Makes the entries of `dir` durable (a rename, a new file); a no-op where directories cannot
/// be synced (Windows, whose renames are durable once done).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Re-wraps `data_dir`'s data key with a new key in `to`, unlocking it with `from` (see
/// [`KeysFile::rotate`]). The data is not rewritten.
pub fn rotate(data_dir: &Path, from: &KeyStore, to: &KeyStore) -> Result<(), CoreError> {
    let mut file = KeysFile::load(data_dir)?.ok_or_else(|| {
        CoreError::Config(format!(
            "{} is not encrypted: there is no key to rotate",
            data_dir.display()
        ))
    })?;
    file.unlock(from)?;
    file.rotate(data_dir, from, to)
}

fn random_kek() -> Kek {
    let mut kek = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(kek.as_mut());
    Kek(kek)
}

fn parse_kek(text: &str) -> Option<Kek> {
    let bytes = Zeroizing::new(hex::decode(text).ok()?);
    let key: [u8; 32] = bytes.as_slice().try_into().ok()?;
    Some(Kek(Zeroizing::new(key)))
}

fn split(data: &[u8; 64]) -> DataKeys {
    let mut database = [0u8; 32];
    let mut content = [0u8; 32];
    database.copy_from_slice(&data[..32]);
    content.copy_from_slice(&data[32..]);
    let keys = DataKeys {
        database: DatabaseKey::new(database),
        content: ContentKey::new(content),
    };
    zeroize::Zeroize::zeroize(&mut database);
    zeroize::Zeroize::zeroize(&mut content);
    keys
}

fn wrap(kek: &Kek, data: &[u8; 64]) -> Result<String, CoreError> {
    let cipher = XChaCha20Poly1305::new(kek.0.as_ref().into());
    let mut nonce = [0u8; 24];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: data,
                aad: WRAP_CONTEXT,
            },
        )
        .map_err(|_| CoreError::Storage("wrapping the data key failed".into()))?;
    Ok(format!("{}{}", hex::encode(nonce), hex::encode(sealed)))
}

fn unwrap(kek: &Kek, wrapped: &str) -> Option<Zeroizing<[u8; 64]>> {
    let bytes = hex::decode(wrapped).ok()?;
    let (nonce, sealed) = bytes.split_at_checked(24)?;
    let cipher = XChaCha20Poly1305::new(kek.0.as_ref().into());
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: WRAP_CONTEXT,
                },
            )
            .ok()?,
    );
    let data: [u8; 64] = plain.as_slice().try_into().ok()?;
    Some(Zeroizing::new(data))
}

/// Argon2id over the passphrase: 64 MiB, 3 passes (OWASP's figures for a key that guards data
/// at rest, where a start may take a second).
fn stretch(passphrase: &str, salt: &[u8]) -> Result<Kek, CoreError> {
    if passphrase.is_empty() {
        return Err(CoreError::Config("the passphrase is empty".into()));
    }
    let params = argon2::Params::new(64 * 1024, 3, 1, Some(32))
        .map_err(|e| CoreError::Config(format!("Argon2id parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut kek = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, kek.as_mut())
        .map_err(|e| CoreError::Config(format!("stretching the passphrase: {e}")))?;
    Ok(Kek(kek))
}

fn keyring_entry(id: &str) -> Result<keyring::Entry, CoreError> {
    keyring::Entry::new(KEYRING_SERVICE, id).map_err(|e| keyring_error(&e))
}

fn keyring_error(e: &keyring::Error) -> CoreError {
    CoreError::Config(format!(
        "the OS keyring cannot be used ({e}): unlock it, or keep the key in a file instead (CASEWIRE_KEY_STORE=file)"
    ))
}

/// The key file's key, `None` if there is no file; refused if other accounts could read it.
fn read_key_file(path: &Path) -> Result<Option<Kek>, CoreError> {
    let Some(text) = read_private_file(path)? else {
        return Ok(None);
    };
    parse_kek(text.trim()).map(Some).ok_or_else(|| {
        CoreError::Config(format!(
            "the key file {} does not hold a Casewire key (64 hexadecimal digits)",
            path.display()
        ))
    })
}

/// A secret file's text, `None` if there is no file; refused if other accounts could read or
/// change it.
pub(crate) fn read_private_file(path: &Path) -> Result<Option<Zeroizing<String>>, CoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => Zeroizing::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CoreError::Config(format!(
                "cannot read the key file {}: {e}",
                path.display()
            )));
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| storage(&path.display().to_string(), e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(CoreError::Config(format!(
                "the key file {} can be read or changed by other accounts (mode {:o}): make it yours alone with `chmod 600 {}`, then start again",
                path.display(),
                mode & 0o777,
                path.display()
            )));
        }
    }
    Ok(Some(text))
}

/// Makes a key file with a new key, readable by its owner only.
fn create_key_file(path: &Path) -> Result<Kek, CoreError> {
    let kek = random_kek();
    create_private_file(path, &hex::encode(*kek.0))?;
    tracing::warn!(
        key_file = %path.display(),
        "made a key file for the data key: the data is as safe as this file and the account that owns it; keep a copy apart from the data"
    );
    Ok(kek)
}

/// Makes a file holding `secret` and a newline, readable by its owner only, never seen half
/// written and never replacing a file of that name.
pub(crate) fn create_private_file(path: &Path, secret: &str) -> Result<(), CoreError> {
    if let Some(dir) = path.parent() {
        crate::private::create_dir(dir).map_err(|e| storage(&dir.display().to_string(), e))?;
    }
    let text = Zeroizing::new(format!("{secret}\n"));
    // Written whole to a file of its own, then linked to its name, which fails if the name
    // exists: a key file is never seen half written, nor replaced.
    let mut suffix = [0u8; 8];
    rand::rng().fill_bytes(&mut suffix);
    let staging = path.with_file_name(format!(".key-{}", hex::encode(suffix)));
    let write_new = |at: &Path| -> std::io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(at)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    let write = || -> std::io::Result<()> {
        let staged = write_new(&staging).and_then(|()| std::fs::hard_link(&staging, path));
        // The staging file holds the whole key: it goes whatever happened.
        let _ = std::fs::remove_file(&staging);
        match staged {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(e),
            // A filesystem without hard links (FAT, some network shares): created in place.
            Err(_) => write_new(path)?,
            Ok(()) => {}
        }
        match path.parent() {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        }
    };
    write().map_err(|e| storage(&format!("creating the key file {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_unwraps_only_with_its_own_key_and_context() {
        let data = Zeroizing::new([9u8; 64]);
        let kek = random_kek();
        let wrapped = wrap(&kek, &data).expect("wrap");
        assert_eq!(unwrap(&kek, &wrapped).as_deref(), Some(&[9u8; 64]));
        assert!(unwrap(&random_kek(), &wrapped).is_none());
        let mut flipped = wrapped.into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert!(unwrap(&kek, &String::from_utf8(flipped).expect("hex")).is_none());
    }

    #[test]
    fn a_passphrase_unlocks_its_data_key_and_another_does_not() {
        let store = KeyStore::Passphrase(Zeroizing::new("correct horse battery staple".into()));
        let (file, keys) = KeysFile::create(&store).expect("created");
        let again = file.unlock(&store).expect("unlocked");
        assert_eq!(format!("{:?}", keys.database), "DatabaseKey(..)");
        let wrong = KeyStore::Passphrase(Zeroizing::new("incorrect horse".into()));
        let refused = file.unlock(&wrong).expect_err("wrong passphrase");
        assert!(
            refused.to_string().contains("nothing was changed"),
            "{refused}"
        );
        drop(again);
    }
}
