//! Streaming SHA-256: a reader that hashes (and counts, and reports) what
//! passes through it, so every byte is hashed in the same pass that packs,
//! verifies or restores it.

use super::progress::Meter;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Size of the read buffers used for hashing and copying (1 MiB).
pub(crate) const BUF_SIZE: usize = 1 << 20;

/// Lower-case hex of a finished hasher.
pub(crate) fn hex_digest(hasher: Sha256) -> String {
    hex::encode(hasher.finalize())
}

/// Whether `s` looks like a SHA-256 in lower-case hex.
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Hashes and counts the bytes read through it, optionally reporting them to
/// a [`Meter`].
pub(crate) struct HashReader<'a, 'p, R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    meter: Option<&'a mut Meter<'p>>,
}

impl<'a, 'p, R: Read> HashReader<'a, 'p, R> {
    pub(crate) fn new(inner: R, meter: Option<&'a mut Meter<'p>>) -> Self {
        HashReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            meter,
        }
    }

    /// The byte count and the hex SHA-256 of everything read.
    pub(crate) fn finish(self) -> (u64, String) {
        (self.bytes, hex_digest(self.hasher))
    }
}

impl<R: Read> Read for HashReader<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        if let Some(meter) = self.meter.as_deref_mut() {
            meter.add(n as u64);
        }
        Ok(n)
    }
}

/// The size and hex SHA-256 of a file, read in [`BUF_SIZE`] chunks.
pub(crate) fn sha256_file(path: &Path, meter: Option<&mut Meter<'_>>) -> io::Result<(u64, String)> {
    let file = File::open(path)?;
    let mut reader = HashReader::new(file, meter);
    let mut buf = vec![0u8; BUF_SIZE];
    while reader.read(&mut buf)? != 0 {}
    Ok(reader.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn hashes_what_passes_through() {
        let mut r = HashReader::new(&b"abc"[..], None);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
        assert_eq!(r.finish(), (3, ABC.to_string()));
    }

    #[test]
    fn hashes_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(sha256_file(&p, None).unwrap(), (3, ABC.to_string()));
        assert!(sha256_file(&dir.path().join("missing"), None).is_err());
    }

    #[test]
    fn recognises_hex() {
        assert!(is_sha256_hex(ABC));
        assert!(!is_sha256_hex(&ABC.to_uppercase()));
        assert!(!is_sha256_hex(&ABC[1..]));
        assert!(!is_sha256_hex(&format!("{}g", &ABC[1..])));
    }
}
