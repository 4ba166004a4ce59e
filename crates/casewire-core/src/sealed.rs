//! Evidence files encrypted at rest: XChaCha20-Poly1305 in the STREAM construction (RustCrypto's
//! `aead::stream`), 64 KiB chunks each authenticated and numbered, the last one marked as last,
//! so a file that was altered, cut short, reordered or extended fails to decrypt instead of
//! reading as other content. A file starts with a header: a magic string and the random
//! 19-byte nonce prefix of that file. A file is still addressed by the SHA-256 of its
//! plaintext, which is what verify and downloads check.

use std::io::{self, Read, Write};

use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use rand::RngCore;
use zeroize::Zeroizing;

/// What every sealed file starts with.
const MAGIC: &[u8; 8] = b"CWSEAL\x01\0";

/// The nonce prefix's length: XChaCha20's 24 bytes less STREAM's 5 (counter and last flag).
const PREFIX: usize = 19;

/// The plaintext bytes of every chunk but the last.
const CHUNK: usize = 64 * 1024;

/// Poly1305's tag, after each chunk.
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

    fn cipher(&self) -> XChaCha20Poly1305 {
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

/// Seals what is written to it into `inner`; [`SealWriter::finish`] writes the last chunk.
pub(crate) struct SealWriter<W: Write> {
    inner: W,
    encryptor: Option<EncryptorBE32<XChaCha20Poly1305>>,
    chunk: Zeroizing<Vec<u8>>,
}

impl<W: Write> SealWriter<W> {
    /// A writer sealing into `inner`, whose header it writes now.
    pub(crate) fn new(key: &ContentKey, mut inner: W) -> io::Result<SealWriter<W>> {
        let mut prefix = [0u8; PREFIX];
        rand::rng().fill_bytes(&mut prefix);
        inner.write_all(MAGIC)?;
        inner.write_all(&prefix)?;
        Ok(SealWriter {
            inner,
            encryptor: Some(EncryptorBE32::from_aead(key.cipher(), (&prefix).into())),
            chunk: Zeroizing::new(Vec::with_capacity(CHUNK + TAG)),
        })
    }

    /// Seals the last chunk and hands back the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        let encryptor = self.encryptor.take().ok_or_else(tampered)?;
        let sealed = encryptor
            .encrypt_last(self.chunk.as_slice())
            .map_err(|_| io::Error::other("sealing the last chunk failed"))?;
        self.inner.write_all(&sealed)?;
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
            encryptor
                .encrypt_next_in_place(&[], &mut *self.chunk)
                .map_err(|_| io::Error::other("sealing a chunk failed"))?;
            self.inner.write_all(&self.chunk)?;
            self.chunk.clear();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads the plaintext of a sealed file, failing with `InvalidData` where it does not
/// authenticate.
pub(crate) struct OpenReader<R: Read> {
    inner: R,
    decryptor: Option<DecryptorBE32<XChaCha20Poly1305>>,
    /// Ciphertext read ahead: a chunk is the last one only if nothing follows it.
    ahead: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
    at: usize,
    ended: bool,
}

impl<R: Read> OpenReader<R> {
    /// A reader of `inner`, whose header it reads and checks now.
    pub(crate) fn new(key: &ContentKey, mut inner: R) -> io::Result<OpenReader<R>> {
        let mut header = [0u8; MAGIC.len() + PREFIX];
        // A file too short for its header was cut; a disk that cannot be read is not tampering.
        inner.read_exact(&mut header).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => tampered(),
            _ => e,
        })?;
        if &header[..MAGIC.len()] != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the evidence file is not sealed (encrypted) as this store's files are",
            ));
        }
        let prefix: [u8; PREFIX] = header[MAGIC.len()..].try_into().map_err(|_| tampered())?;
        Ok(OpenReader {
            inner,
            decryptor: Some(DecryptorBE32::from_aead(key.cipher(), (&prefix).into())),
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
            decryptor
                .decrypt_last(self.ahead.as_slice())
                .map_err(|_| tampered())?
        } else {
            let decryptor = self.decryptor.as_mut().ok_or_else(tampered)?;
            let plain = decryptor
                .decrypt_next(&self.ahead[..CHUNK + TAG])
                .map_err(|_| tampered())?;
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
                MAGIC.len() + PREFIX + size + (size / CHUNK + 1) * TAG,
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
        flipped[MAGIC.len() + PREFIX + CHUNK + 3] ^= 1;
        let cut = &sealed[..MAGIC.len() + PREFIX + CHUNK + TAG];
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
}
