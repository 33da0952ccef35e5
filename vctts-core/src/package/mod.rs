//! Split-volume model packages (SPEC §6): pack a model folder into compressed
//! parts of a fixed size, verify them, restore them atomically, and report
//! which engine folders of a models directory are complete.
//!
//! A package is a folder holding:
//! - `NAME.pkg.part_aa`, `NAME.pkg.part_ab`, … — one `tar` stream, compressed
//!   with gzip or zstd, cut into parts of exactly `part_size` bytes (the last
//!   one may be shorter). Part names follow split(1): `aa` … `yz`, then
//!   `zaaa` … `zyzz`, then `zzaaaa` …, so `cat NAME.pkg.part_*` joins them in
//!   order;
//! - `NAME.pkg.manifest.json` — the [`Manifest`]: the size and SHA-256 of every
//!   part and of every file, sealed by a hash of its own content;
//! - `NAME.pkg.sha256` and `NAME.pkg.parts.sha256` — the same checksums in
//!   `sha256sum -c` format (files relative to the restored folder, parts
//!   relative to the package folder);
//! - `README.md` — how to restore with vctts or with standard tools only.
//!
//! The major pieces are [`pack()`], [`verify()`], [`restore()`] and
//! [`list_installed`]; each `*_with_progress` variant reports through a
//! [`Progress`] callback so a front end can draw bars.
//!
//! Invariants:
//! - everything streams: memory use is bounded by a few fixed buffers
//!   (at most 1 MiB each) whatever the size of the model;
//! - every byte is checked: parts against the manifest before and while
//!   restoring, files against the manifest as they are written;
//! - a restore never leaves a half-written model at its destination and never
//!   writes outside it (see [`restore()`] for the exact guarantee);
//! - this module does file I/O only, never network I/O.

mod hash;
mod installed;
mod layout;
mod manifest;
mod pack;
mod paths;
mod progress;
mod readme;
mod restore;
mod split;
mod verify;

pub use installed::{InstallState, InstalledModel, list_installed};
pub use layout::{ENGINE_LAYOUTS, EngineLayout, Requirement, layout};
pub use manifest::{FileEntry, LinkEntry, Manifest, PartEntry};
pub use pack::{PackOptions, PackOutput, pack, pack_with_progress};
pub use progress::{NoProgress, Progress, ProgressEvent, Stage};
pub use restore::{RestoreOptions, RestoreReport, restore, restore_with_progress};
pub use split::part_suffix;
pub use verify::{VerifyReport, verify, verify_with_progress};

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io;

/// The manifest format this version of vctts writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The default part size: 100 MiB.
pub const DEFAULT_PART_SIZE: u64 = 100 * 1024 * 1024;
/// The smallest part size [`pack()`] accepts (4 KiB); smaller parts would only
/// multiply files.
pub const MIN_PART_SIZE: u64 = 4096;
/// The name of the generated README in a package folder.
pub const README_FILE: &str = "README.md";

/// How the tar stream of a package is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip (DEFLATE); restores with `tar -xz`.
    #[default]
    Gzip,
    /// Zstandard; faster, restores with `zstd -d | tar -x`.
    Zstd,
}

impl Compression {
    /// The lower-case name used in manifests and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The level used when none is given (gzip 6, zstd 3).
    pub fn default_level(self) -> i32 {
        match self {
            Compression::Gzip => 6,
            Compression::Zstd => 3,
        }
    }

    /// The accepted level range. zstd stops at 19: the "ultra" levels above
    /// need windows of up to 128 MiB to compress and to restore, which would
    /// break the constant-memory promise.
    pub fn level_range(self) -> std::ops::RangeInclusive<i32> {
        match self {
            Compression::Gzip => 0..=9,
            Compression::Zstd => 1..=19,
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Compression {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "gzip" | "gz" => Ok(Compression::Gzip),
            "zstd" | "zst" => Ok(Compression::Zstd),
            other => Err(Error::invalid(
                "compression",
                format!("{other:?} is not gzip or zstd"),
            )),
        }
    }
}

/// `NAME.pkg.part_SUFFIX` for the part at `index` (0-based).
pub fn part_file_name(name: &str, index: u64) -> String {
    format!("{name}.pkg.part_{}", part_suffix(index))
}

/// `NAME.pkg.manifest.json`.
pub fn manifest_file_name(name: &str) -> String {
    format!("{name}.pkg.manifest.json")
}

/// `NAME.pkg.sha256`: file checksums, relative to the restored folder.
pub fn checksums_file_name(name: &str) -> String {
    format!("{name}.pkg.sha256")
}

/// `NAME.pkg.parts.sha256`: part checksums, relative to the package folder.
pub fn part_checksums_file_name(name: &str) -> String {
    format!("{name}.pkg.parts.sha256")
}

/// Checks a package name: 1 to 100 characters from `A-Z a-z 0-9 . _ -`, not
/// starting with `.` or `-` (it becomes part of file names and of the shell
/// commands in the README).
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid("name", format!("package name {name:?} {why}")));
    if name.is_empty() {
        return bad("is empty");
    }
    if name.len() > 100 {
        return bad("is longer than 100 characters");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return bad("must not start with '.' or '-'");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return bad(&format!(
            "contains {c:?}; use only letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// A package problem carried through an [`io::Error`]: readers and writers
/// inside the tar and compression streams can only fail with `io::Error`, and
/// this marker lets the caller turn it back into [`Error::Package`].
#[derive(Debug)]
pub(crate) struct Problem(pub(crate) String);

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Problem {}

/// An `io::Error` that carries a package problem.
pub(crate) fn problem(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Problem(message.into()))
}

/// The package problem inside `e`, if it carries one.
pub(crate) fn take_problem(e: &io::Error) -> Option<String> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Problem>())
        .map(|p| p.0.clone())
}

/// Turns an I/O error into [`Error::Package`] when it carries a package
/// problem, else into [`Error::Io`] with `context`.
pub(crate) fn io_error(context: impl Into<String>, e: io::Error) -> Error {
    match take_problem(&e) {
        Some(message) => Error::Package(message),
        None => Error::io(context, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(part_file_name("openvoice", 0), "openvoice.pkg.part_aa");
        assert_eq!(part_file_name("openvoice", 27), "openvoice.pkg.part_bb");
        assert_eq!(manifest_file_name("x"), "x.pkg.manifest.json");
        assert_eq!(checksums_file_name("x"), "x.pkg.sha256");
        assert_eq!(part_checksums_file_name("x"), "x.pkg.parts.sha256");
    }

    #[test]
    fn names_are_validated() {
        for ok in ["openvoice", "xtts_v2", "gpt-sovits.v2", "A1"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", ".hidden", "-x", "a b", "a/b", "ä", "a;rm"] {
            let e = validate_name(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_input", "{bad:?}");
        }
        assert!(validate_name(&"a".repeat(101)).is_err());
    }

    #[test]
    fn compression_parses() {
        assert_eq!("gzip".parse::<Compression>().unwrap(), Compression::Gzip);
        assert_eq!("ZSTD".parse::<Compression>().unwrap(), Compression::Zstd);
        assert!("xz".parse::<Compression>().is_err());
        assert_eq!(serde_json::to_string(&Compression::Zstd).unwrap(), "\"zstd\"");
    }

    #[test]
    fn problems_round_trip_through_io_errors() {
        let e = problem("part x is corrupt");
        assert_eq!(take_problem(&e).as_deref(), Some("part x is corrupt"));
        match io_error("ctx", e) {
            Error::Package(m) => assert_eq!(m, "part x is corrupt"),
            other => panic!("{other:?}"),
        }
        let plain = io::Error::new(io::ErrorKind::NotFound, "gone");
        assert_eq!(io_error("reading x", plain).code(), "io_error");
    }
}
