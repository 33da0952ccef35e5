//! Cutting one byte stream into part files, and joining them back.
//!
//! [`SplitWriter`] writes parts of exactly `part_size` bytes (the last one
//! may be shorter, and is never empty), hashing each as it is written and
//! fsyncing it when it is complete. [`PartReader`] reads the parts back in
//! order as one stream, checking each part's size and SHA-256 against the
//! manifest when it reaches the part's end, so a damaged part fails the read
//! that crosses it, naming the part.
//!
//! Part suffixes follow split(1)'s scheme, which keeps name order equal to
//! part order as the suffix widens: `aa` … `yz` (650 parts), `zaaa` … `zyzz`
//! (16 900 more), `zzaaaa` …, so `cat NAME.pkg.part_*` always joins them
//! correctly.

use super::hash::{BUF_SIZE, hex_digest};
use super::manifest::PartEntry;
use super::{part_file_name, problem};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

/// The split(1)-style suffix of the part at `index` (0-based): `aa`, `ab`, …
/// `yz`, `zaaa`, … `zyzz`, `zzaaaa`, …
pub fn part_suffix(index: u64) -> String {
    let mut rest = u128::from(index);
    let mut level: u32 = 0;
    loop {
        // Suffixes at this level: `z` repeated `level` times, then
        // `level + 2` letters of which the first is not `z`.
        let count = 25 * 26u128.pow(level + 1);
        if rest < count {
            break;
        }
        rest -= count;
        level += 1;
    }
    let width = level as usize + 2;
    let mut body = vec![b'a'; width];
    for slot in body.iter_mut().rev() {
        *slot = b'a' + (rest % 26) as u8;
        rest /= 26;
    }
    let mut suffix = "z".repeat(level as usize);
    suffix.push_str(std::str::from_utf8(&body).expect("ASCII letters"));
    suffix
}

struct OpenPart {
    name: String,
    file: BufWriter<File>,
    hasher: Sha256,
    written: u64,
}

/// Writes a stream as `NAME.pkg.part_*` files in one folder. Part files are
/// created with `create_new`, so an existing file is never overwritten.
pub(crate) struct SplitWriter {
    dir: PathBuf,
    name: String,
    part_size: u64,
    current: Option<OpenPart>,
    parts: Vec<PartEntry>,
}

impl SplitWriter {
    /// A writer of parts of `part_size` (> 0) bytes named after `name`, in `dir`.
    pub(crate) fn new(dir: PathBuf, name: String, part_size: u64) -> Self {
        debug_assert!(part_size > 0);
        SplitWriter {
            dir,
            name,
            part_size,
            current: None,
            parts: Vec::new(),
        }
    }

    fn open_next(&mut self) -> io::Result<&mut OpenPart> {
        let name = part_file_name(&self.name, self.parts.len() as u64);
        let path = self.dir.join(&name);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("creating part {}: {e}", path.display())))?;
        Ok(self.current.insert(OpenPart {
            name,
            file: BufWriter::with_capacity(BUF_SIZE, file),
            hasher: Sha256::new(),
            written: 0,
        }))
    }

    fn close_current(&mut self) -> io::Result<()> {
        if let Some(part) = self.current.take() {
            let file = part.file.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            self.parts.push(PartEntry {
                name: part.name,
                size: part.written,
                sha256: hex_digest(part.hasher),
            });
        }
        Ok(())
    }

    /// Flushes, fsyncs and closes the last part; returns every part written.
    pub(crate) fn finish(mut self) -> io::Result<Vec<PartEntry>> {
        self.close_current()?;
        Ok(self.parts)
    }
}

impl Write for SplitWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let part_size = self.part_size;
        let part = match self.current {
            Some(ref mut part) => part,
            None => self.open_next()?,
        };
        let room = part_size - part.written;
        let n = (buf.len() as u64).min(room) as usize;
        part.file.write_all(&buf[..n])?;
        part.hasher.update(&buf[..n]);
        part.written += n as u64;
        if part.written == part_size {
            self.close_current()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.current.as_mut() {
            Some(part) => part.file.flush(),
            None => Ok(()),
        }
    }
}

struct ReadingPart {
    index: usize,
    file: File,
    hasher: Sha256,
    read: u64,
}

/// Reads the parts listed in a manifest as one stream, checking each.
pub(crate) struct PartReader {
    dir: PathBuf,
    parts: Vec<PartEntry>,
    next: usize,
    current: Option<ReadingPart>,
    finished: bool,
}

impl PartReader {
    pub(crate) fn new(dir: PathBuf, parts: Vec<PartEntry>) -> Self {
        PartReader {
            dir,
            parts,
            next: 0,
            current: None,
            finished: false,
        }
    }

    /// Whether every part was read to its end and passed its checks.
    pub(crate) fn finished(&self) -> bool {
        self.finished
    }

    fn open(&mut self, index: usize) -> io::Result<()> {
        let entry = &self.parts[index];
        let path = self.dir.join(&entry.name);
        let file = File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                problem(format!(
                    "part {} is missing from {}",
                    entry.name,
                    self.dir.display()
                ))
            } else {
                io::Error::new(e.kind(), format!("opening part {}: {e}", path.display()))
            }
        })?;
        self.current = Some(ReadingPart {
            index,
            file,
            hasher: Sha256::new(),
            read: 0,
        });
        Ok(())
    }
}

impl Read for PartReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(cur) = self.current.as_mut() else {
                if self.next == self.parts.len() {
                    self.finished = true;
                    return Ok(0);
                }
                self.open(self.next)?;
                self.next += 1;
                continue;
            };
            let entry = &self.parts[cur.index];
            let n = cur.file.read(buf)?;
            if n == 0 {
                if cur.read != entry.size {
                    return Err(problem(format!(
                        "part {} is truncated: it has {} bytes, the manifest says {}",
                        entry.name, cur.read, entry.size
                    )));
                }
                let digest = hex_digest(std::mem::take(&mut cur.hasher));
                self.current = None;
                if digest != entry.sha256 {
                    return Err(problem(format!(
                        "part {} is corrupt: sha256 mismatch",
                        entry.name
                    )));
                }
                continue;
            }
            if cur.read + n as u64 > entry.size {
                return Err(problem(format!(
                    "part {} is longer than the {} bytes the manifest says",
                    entry.name, entry.size
                )));
            }
            cur.hasher.update(&buf[..n]);
            cur.read += n as u64;
            return Ok(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::take_problem;

    #[test]
    fn suffixes_follow_split() {
        let cases = [
            (0, "aa"),
            (1, "ab"),
            (25, "az"),
            (26, "ba"),
            (649, "yz"),
            (650, "zaaa"),
            (651, "zaab"),
            (650 + 16_899, "zyzz"),
            (650 + 16_900, "zzaaaa"),
        ];
        for (i, s) in cases {
            assert_eq!(part_suffix(i), s, "index {i}");
        }
        // Name order is part order.
        let names: Vec<String> = (0..20_000).map(part_suffix).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        assert!(part_suffix(u64::MAX).starts_with("zzzzzzzzzzz"));
    }

    fn split(data: &[u8], part_size: u64, chunk: usize) -> (tempfile::TempDir, Vec<PartEntry>) {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SplitWriter::new(dir.path().to_path_buf(), "m".into(), part_size);
        for c in data.chunks(chunk) {
            w.write_all(c).unwrap();
        }
        (dir, w.finish().unwrap())
    }

    #[test]
    fn parts_have_exact_sizes_and_join_back() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (len, part_size, chunk) in [
            (10_000, 1000, 333),
            (10_000, 4096, 10_000),
            (10_000, 10_000, 7),
            (100, 3, 64),
        ] {
            let data = &data[..len];
            let (dir, parts) = split(data, part_size, chunk);
            let expected = data.len().div_ceil(part_size as usize);
            assert_eq!(parts.len(), expected);
            for (i, p) in parts.iter().enumerate() {
                assert_eq!(p.name, part_file_name("m", i as u64));
                let len = std::fs::metadata(dir.path().join(&p.name)).unwrap().len();
                assert_eq!(len, p.size);
                if i + 1 < parts.len() {
                    assert_eq!(p.size, part_size);
                }
            }
            let mut back = Vec::new();
            let mut r = PartReader::new(dir.path().to_path_buf(), parts);
            r.read_to_end(&mut back).unwrap();
            assert!(r.finished());
            assert_eq!(back, data);
        }
    }

    #[test]
    fn empty_stream_writes_no_part() {
        let (_dir, parts) = split(&[], 100, 10);
        assert!(parts.is_empty());
    }

    #[test]
    fn refuses_to_overwrite_a_part() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.pkg.part_aa"), b"old").unwrap();
        let mut w = SplitWriter::new(dir.path().to_path_buf(), "m".into(), 10);
        assert_eq!(w.write(b"x").unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    }

    fn read_err(dir: &std::path::Path, parts: Vec<PartEntry>) -> String {
        let mut r = PartReader::new(dir.to_path_buf(), parts);
        let e = r.read_to_end(&mut Vec::new()).unwrap_err();
        take_problem(&e).unwrap_or_else(|| panic!("not a package problem: {e}"))
    }

    #[test]
    fn damaged_parts_are_named() {
        let data = vec![7u8; 3000];
        let (dir, parts) = split(&data, 1000, 1000);
        let p = |s: &str| dir.path().join(format!("m.pkg.part_{s}"));

        std::fs::write(p("ab"), vec![8u8; 1000]).unwrap();
        assert_eq!(
            read_err(dir.path(), parts.clone()),
            "part m.pkg.part_ab is corrupt: sha256 mismatch"
        );
        std::fs::write(p("ab"), vec![7u8; 999]).unwrap();
        assert!(read_err(dir.path(), parts.clone()).contains("part m.pkg.part_ab is truncated"));
        std::fs::write(p("ab"), vec![7u8; 1001]).unwrap();
        assert!(read_err(dir.path(), parts.clone()).contains("part m.pkg.part_ab is longer"));
        std::fs::write(p("ab"), vec![7u8; 1000]).unwrap();
        std::fs::remove_file(p("ac")).unwrap();
        assert!(read_err(dir.path(), parts).starts_with("part m.pkg.part_ac is missing"));
    }
}
