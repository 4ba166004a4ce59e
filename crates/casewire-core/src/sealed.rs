//! Evidence files encrypted at rest with an authenticated cipher in the STREAM construction
//! (RustCrypto's `aead::stream`): 64 KiB chunks each authenticated and numbered, the last one
//! marked as last, so a file that was altered, cut short, reordered or extended fails to decrypt
//! instead of reading as other content. A file is still addressed by the SHA-256 of its
//! plaintext, which is what verify and downloads check.
//!
//! A file starts with a magic string that names its format:
//! - **2** (written since version 0.1.0's session 16): AES-256-GCM (`ring`'s, which uses the
//!   processor's AES and carry-less multiplication instructions: 4 to 5 GB/s here, against
//!   0.9 GB/s for format 1). The header holds a random 32-byte salt; the file's own key is
//!   HKDF-SHA256 of the store's key with that salt, so no two files share a key and GCM's
//!   nonces, a chunk counter, never repeat under one key. The nonce of chunk `i` is 7 zero
//!   bytes, `i` in 4 big-endian bytes, then 1 for the last chunk and 0 before it: STREAM's
//!   layout as RustCrypto's `StreamBE32` has it, which a test checks by opening a file with it.
//! - **1**: XChaCha20-Poly1305 with the store's key and a random 19-byte nonce prefix in the
//!   header. Still read: files sealed by earlier versions stay where they are.

use std::io::{self, Read, Write};

use chacha20poly1305::aead::stream::DecryptorBE32;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use zeroize::Zeroizing;

/// What a file sealed in format 1 starts with; its nonce prefix follows.
const MAGIC_V1: &[u8; 8] = b"CWSEAL\x01\0";

/// What a file sealed in format 2 starts with; its salt follows.
const MAGIC_V2: &[u8; 8] = b"CWSEAL\x02\0";

/// Format 1's nonce prefix: XChaCha20's 24 bytes less STREAM's 5 (counter and last flag).
const PREFIX_V1: usize = 19;

/// Format 2's salt, from which the file's key is derived.
const SALT_V2: usize = 32;

/// What HKDF binds a format-2 file's key to.
const INFO_V2: &[u8] = b"casewire evidence file, format 2: AES-256-GCM STREAM";

/// The plaintext bytes of every chunk but the last.
const CHUNK: usize = 64 * 1024;

/// The authentication tag after each chunk (Poly1305's and GHASH's are both 16 bytes).
const TAG: usize = 16;

/// The key evidence files are sealed with. Nothing of it is printed by `Debug`, and its memory
/// is wiped when it is dropped.
#[derive(Clone)]
pub struct ContentKey(Zeroizing<[u8; 32]>);

impl ContentKey {
    /// A key of these 32 bytes.
    pub fn new(bytes: [u8; 32]) -> ContentKey {
        ContentKey(Zeroizing::new(bytes))
    }

    /// Format 1's cipher: this key itself.
    fn cipher_v1(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.as_ref().into())
    }
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(..)")
    }
}

fn tampered() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "the sealed evidence file failed its authentication: it was changed, cut short or damaged",
    )
}

/// Format 2's cipher for one file: AES-256-GCM under the file's own key, chunk by chunk.
struct StreamV2 {
    key: LessSafeKey,
    /// The next chunk's number.
    next: u32,
}

impl StreamV2 {
    /// The stream of the file whose header holds `salt`.
    fn new(content: &ContentKey, salt: &[u8; SALT_V2]) -> io::Result<StreamV2> {
        let secret = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(content.0.as_ref());
        let file_key = secret
            .expand(&[INFO_V2], &AES_256_GCM)
            .map_err(|_| io::Error::other("deriving the evidence file's key failed"))?;
        Ok(StreamV2 {
            key: LessSafeKey::new(UnboundKey::from(file_key)),
            next: 0,
        })
    }

    /// The next chunk's nonce, `last` or not.
    fn nonce(&mut self, last: bool) -> io::Result<Nonce> {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[7..11].copy_from_slice(&self.next.to_be_bytes());
        nonce[11] = u8::from(last);
        self.next = self.next.checked_add(1).ok_or_else(|| {
            io::Error::other("an evidence file cannot have 2^32 chunks (256 TiB)")
        })?;
        Ok(Nonce::assume_unique_for_key(nonce))
    }

    /// Seals `chunk` in place, its tag appended.
    fn seal(&mut self, chunk: &mut Vec<u8>, last: bool) -> io::Result<()> {
        let nonce = self.nonce(last)?;
        self.key
            .seal_in_place_append_tag(nonce, Aad::empty(), chunk)
            .map_err(|_| io::Error::other("sealing a chunk failed"))
    }

    /// The plaintext of the sealed `chunk` (ciphertext and tag).
    fn open(&mut self, chunk: &[u8], last: bool) -> io::Result<Vec<u8>> {
        let nonce = self.nonce(last)?;
        let mut plain = chunk.to_vec();
        let n = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut plain)
            .map_err(|_| tampered())?
            .len();
        plain.truncate(n);
        Ok(plain)
    }
}

/// Seals what is written to it into `inner`; [`SealWriter::finish`] writes the last chunk.
pub(crate) struct SealWriter<W: Write> {
    inner: W,
    encryptor: Option<StreamV2>,
    chunk: Zeroizing<Vec<u8>>,
}

impl<W: Write> SealWriter<W> {
    /// A writer sealing into `inner` in format 2, whose header it writes now.
    pub(crate) fn new(key: &ContentKey, mut inner: W) -> io::Result<SealWriter<W>> {
        let mut salt = [0u8; SALT_V2];
        rand::rng().fill_bytes(&mut salt);
        let stream = StreamV2::new(key, &salt)?;
        inner.write_all(MAGIC_V2)?;
        inner.write_all(&salt)?;
        Ok(SealWriter {
            inner,
            encryptor: Some(stream),
            chunk: Zeroizing::new(Vec::with_capacity(CHUNK + TAG)),
        })
    }

    /// Seals the last chunk and hands back the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        let mut encryptor = self.encryptor.take().ok_or_else(tampered)?;
        encryptor.seal(&mut self.chunk, true)?;
        self.inner.write_all(&self.chunk)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.chunk.len();
        let n = room.min(data.len());
        self.chunk.extend_from_slice(&data[..n]);
        if self.chunk.len() == CHUNK {
            let encryptor = self.encryptor.as_mut().ok_or_else(tampered)?;
            // In place: the tag is appended to the chunk's own buffer, which has room for it.
            encryptor.seal(&mut self.chunk, false)?;
            self.inner.write_all(&self.chunk)?;
            self.chunk.clear();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The decryptor of a file's format.
enum Decryptor {
    V1(DecryptorBE32<XChaCha20Poly1305>),
    V2(Box<StreamV2>),
}

impl Decryptor {
    fn decrypt_next(&mut self, chunk: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Decryptor::V1(d) => d.decrypt_next(chunk).map_err(|_| tampered()),
            Decryptor::V2(d) => d.open(chunk, false),
        }
    }

    fn decrypt_last(self, chunk: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Decryptor::V1(d) => d.decrypt_last(chunk).map_err(|_| tampered()),
            Decryptor::V2(mut d) => d.open(chunk, true),
        }
    }
}

/// Reads the plaintext of a sealed file, failing with `InvalidData` where it does not
/// authenticate.
pub(crate) struct OpenReader<R: Read> {
    inner: R,
    decryptor: Option<Decryptor>,
    /// Ciphertext read ahead: a chunk is the last one only if nothing follows it.
    ahead: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
    at: usize,
    ended: bool,
}

impl<R: Read> OpenReader<R> {
    /// A reader of `inner`, whose header it reads and checks now.
    pub(crate) fn new(key: &ContentKey, mut inner: R) -> io::Result<OpenReader<R>> {
        // A file too short for its header was cut; a disk that cannot be read is not tampering.
        let cut = |e: io::Error| match e.kind() {
            io::ErrorKind::UnexpectedEof => tampered(),
            _ => e,
        };
        let mut magic = [0u8; 8];
        inner.read_exact(&mut magic).map_err(cut)?;
        let decryptor = if &magic == MAGIC_V2 {
            let mut salt = [0u8; SALT_V2];
            inner.read_exact(&mut salt).map_err(cut)?;
            Decryptor::V2(Box::new(StreamV2::new(key, &salt)?))
        } else if &magic == MAGIC_V1 {
            let mut prefix = [0u8; PREFIX_V1];
            inner.read_exact(&mut prefix).map_err(cut)?;
            Decryptor::V1(DecryptorBE32::from_aead(key.cipher_v1(), (&prefix).into()))
        } else if magic.starts_with(b"CWSEAL") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the evidence file is sealed in a format newer than this version of Casewire reads: update Casewire to open it",
            ));
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the evidence file is not sealed (encrypted) as this store's files are",
            ));
        };
        Ok(OpenReader {
            inner,
            decryptor: Some(decryptor),
            ahead: Vec::with_capacity(CHUNK + TAG + 1),
            plain: Zeroizing::new(Vec::new()),
            at: 0,
            ended: false,
        })
    }

    /// Decrypts the next chunk into `plain`.
    fn next_chunk(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        let mut eof = false;
        while self.ahead.len() <= CHUNK + TAG {
            let n = self.inner.read(&mut buf)?;
            if n == 0 {
                eof = true;
                break;
            }
            self.ahead.extend_from_slice(&buf[..n]);
        }
        let plain = if eof {
            let decryptor = self.decryptor.take().ok_or_else(tampered)?;
            self.ended = true;
            decryptor.decrypt_last(self.ahead.as_slice())?
        } else {
            let decryptor = self.decryptor.as_mut().ok_or_else(tampered)?;
            let plain = decryptor.decrypt_next(&self.ahead[..CHUNK + TAG])?;
            self.ahead.drain(..CHUNK + TAG);
            plain
        };
        if eof {
            self.ahead.clear();
        }
        self.plain = Zeroizing::new(plain);
        self.at = 0;
        Ok(())
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.plain.len() {
            if self.ended {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.plain.len() - self.at);
        out[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A format-2 file's header: the magic string and the salt.
    const HEADER: usize = MAGIC_V2.len() + SALT_V2;

    fn key() -> ContentKey {
        ContentKey::new([7; 32])
    }

    fn seal(plain: &[u8]) -> Vec<u8> {
        let mut writer = SealWriter::new(&key(), Vec::new()).expect("header");
        // Odd-sized writes, so chunks are cut across them.
        for piece in plain.chunks(10_007) {
            writer.write_all(piece).expect("write");
        }
        writer.finish().expect("finish")
    }

    fn open(sealed: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        OpenReader::new(&key(), sealed)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn sealed_content_reads_back_whole_at_every_size_around_a_chunk() {
        for size in [1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5] {
            let plain: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let sealed = seal(&plain);
            assert_eq!(
                sealed.len(),
                HEADER + size + (size / CHUNK + 1) * TAG,
                "{size}"
            );
            assert_eq!(open(&sealed).expect("open"), plain, "{size}");
            if size >= 32 {
                assert!(
                    !sealed.windows(32).any(|w| w == &plain[..32]),
                    "{size}: the plaintext shows through"
                );
            }
        }
    }

    #[test]
    fn a_changed_cut_or_extended_file_fails_to_open_and_the_wrong_key_too() {
        let plain = vec![42u8; 2 * CHUNK + 100];
        let sealed = seal(&plain);
        let mut flipped = sealed.clone();
        flipped[HEADER + CHUNK + 3] ^= 1;
        let cut = &sealed[..HEADER + CHUNK + TAG];
        let mut extended = sealed.clone();
        extended.extend_from_slice(&[0; 40]);
        for (what, bytes) in [
            ("flipped", flipped.as_slice()),
            ("cut at a chunk", cut),
            ("extended", extended.as_slice()),
        ] {
            let error = open(bytes).expect_err(what);
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{what}");
        }
        let mut out = Vec::new();
        let wrong = OpenReader::new(&ContentKey::new([8; 32]), sealed.as_slice())
            .expect("header")
            .read_to_end(&mut out);
        assert!(wrong.is_err());
        assert!(open(&plain).is_err(), "an unsealed file is refused");
    }

    #[test]
    fn a_file_sealed_in_format_1_by_an_earlier_version_still_opens() {
        // Written by session 15's SealWriter (XChaCha20-Poly1305, key [7; 32]): a full chunk
        // and a last one of 10 bytes.
        let sealed = include_bytes!("../tests/fixtures/sealed-v1.bin");
        assert_eq!(&sealed[..8], MAGIC_V1);
        let plain: Vec<u8> = (0..CHUNK + 10).map(|i| (i % 251) as u8).collect();
        assert_eq!(open(sealed).expect("open"), plain);
        let mut flipped = sealed.to_vec();
        flipped[MAGIC_V1.len() + PREFIX_V1 + 5] ^= 1;
        assert_eq!(
            open(&flipped).expect_err("flipped").kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn the_same_content_sealed_twice_shares_no_key_stream() {
        let plain = vec![0u8; CHUNK + 1];
        let (a, b) = (seal(&plain), seal(&plain));
        assert_eq!(&a[..8], MAGIC_V2, "new files are written in format 2");
        assert_ne!(
            a[8..HEADER],
            b[8..HEADER],
            "each file has a salt of its own"
        );
        // The same plaintext under the same nonce and key would give the same ciphertext.
        assert_ne!(a[HEADER..HEADER + 64], b[HEADER..HEADER + 64]);
        assert_eq!(open(&a).expect("a"), plain);
        assert_eq!(open(&b).expect("b"), plain);
    }

    #[test]
    fn a_file_in_a_format_newer_than_this_version_says_to_update() {
        let mut sealed = seal(b"evidence");
        sealed[6] = 9;
        let error = open(&sealed).expect_err("format 9");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("update Casewire"), "{error}");
    }

    #[test]
    fn format_2_is_stream_as_rustcrypto_implements_it() {
        use aes_gcm::Aes256Gcm;
        use aes_gcm::aead::stream::DecryptorBE32;
        let plain: Vec<u8> = (0..2 * CHUNK + 7).map(|i| (i % 253) as u8).collect();
        let sealed = seal(&plain);
        let salt: [u8; SALT_V2] = sealed[8..HEADER].try_into().expect("salt");
        // The file's key as HKDF-SHA256 gives it, by another implementation than ring's.
        let mut file_key = [0u8; 32];
        ::hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), &[7; 32])
            .expand(INFO_V2, &mut file_key)
            .expect("expand");
        let mut decryptor =
            DecryptorBE32::from_aead(Aes256Gcm::new(&file_key.into()), (&[0u8; 7]).into());
        let body = &sealed[HEADER..];
        let mut opened = Vec::new();
        for chunk in body[..2 * (CHUNK + TAG)].chunks(CHUNK + TAG) {
            opened.extend(decryptor.decrypt_next(chunk).expect("chunk"));
        }
        opened.extend(
            decryptor
                .decrypt_last(&body[2 * (CHUNK + TAG)..])
                .expect("last chunk"),
        );
        assert_eq!(opened, plain);
    }
}
