//! The package manifest: what a package holds and the checksums that prove it.
//!
//! Invariants of a valid manifest ([`Manifest::validate`]):
//! - `format_version` is [`FORMAT_VERSION`] and `manifest_sha256` matches
//!   [`Manifest::self_hash`], so an edited manifest is detected;
//! - parts are named `NAME.pkg.part_aa`, `…_ab`, … in order, every part but
//!   the last has exactly `part_size` bytes, the last has 1 to `part_size`,
//!   and `total_size` is their sum;
//! - `files`, `dirs` and `links` hold canonical package paths (see
//!   `paths`), each list sorted and free of duplicates, no path in two
//!   lists, nothing below a file or a symlink, every symlink resolving inside
//!   the package; `unpacked_size` is the sum of the file sizes.
//!
//! The self-hash guards against accidental edits and truncation, not against
//! an attacker, who can recompute it: keep the manifest with the parts.

use super::hash::is_sha256_hex;
use super::paths::{ancestors, check_package_path, resolve_link_target};
use super::{Compression, FORMAT_VERSION, manifest_file_name, part_file_name, validate_name};
use crate::engine::EngineKind;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Manifests larger than this are refused unread (64 MiB; a model with a
/// hundred thousand files needs about 20 MiB).
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// A regular file of the packed folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Package path, relative to the folder, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
}

/// A symlink of the packed folder; its target stays inside the folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkEntry {
    /// Package path of the link.
    pub path: String,
    /// The target exactly as stored in the link (relative).
    pub target: String,
}

/// One part file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartEntry {
    /// File name, `NAME.pkg.part_SUFFIX`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the part, lower-case hex.
    pub sha256: String,
}

/// The content of `NAME.pkg.manifest.json`. Fields serialise in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT_VERSION`] for packages this version writes.
    pub format_version: u32,
    /// The package name (the `NAME` of the file names).
    pub name: String,
    /// The engine the model is for, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineKind>,
    /// The program that wrote the package, e.g. `vctts 0.1.0`.
    pub tool: String,
    /// How the tar stream is compressed.
    pub compression: Compression,
    /// When the package was made, ISO 8601 UTC (`2025-01-02T03:04:05Z`).
    pub created_at: String,
    /// Bytes of all parts together.
    pub total_size: u64,
    /// Bytes of all files together (the restored size).
    pub unpacked_size: u64,
    /// Size of every part but the last.
    pub part_size: u64,
    /// Every folder, sorted (so empty folders survive a round trip).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<String>,
    /// Every regular file, sorted by path.
    pub files: Vec<FileEntry>,
    /// Every symlink, sorted by path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkEntry>,
    /// The parts, in order.
    pub parts: Vec<PartEntry>,
    /// [`Manifest::self_hash`] at sealing time.
    #[serde(default)]
    pub manifest_sha256: String,
}

impl Manifest {
    /// SHA-256 (hex) of the pretty JSON serialisation (serde_json, two-space
    /// indent, fields in declaration order, no trailing newline) of this
    /// manifest with `manifest_sha256` set to the empty string.
    pub fn self_hash(&self) -> String {
        let mut unsealed = self.clone();
        unsealed.manifest_sha256.clear();
        let bytes = serde_json::to_vec_pretty(&unsealed).expect("a manifest always serialises");
        hex::encode(Sha256::digest(&bytes))
    }

    /// Sets `manifest_sha256` to [`Manifest::self_hash`].
    pub fn seal(&mut self) {
        self.manifest_sha256 = self.self_hash();
    }

    /// The manifest as written to disk: pretty JSON and a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a manifest always serialises");
        text.push('\n');
        text
    }

    /// Parses a manifest (without validating it).
    pub fn from_json(text: &str) -> Result<Manifest> {
        serde_json::from_str(text).map_err(|e| Error::Package(format!("manifest is not valid: {e}")))
    }

    /// Reads, parses and [validates](Manifest::validate) the manifest file at
    /// `path`, and checks that its name matches the file name.
    pub fn load(path: &Path) -> Result<Manifest> {
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(format!("reading manifest {shown}"), e))?;
        if meta.len() > MAX_MANIFEST_BYTES {
            return Err(Error::Package(format!(
                "manifest {shown} has {} bytes, more than a manifest can (limit {MAX_MANIFEST_BYTES})",
                meta.len()
            )));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading manifest {shown}"), e))?;
        let manifest = Manifest::from_json(&text)
            .map_err(|e| Error::Package(format!("{shown}: {}", strip_prefix(&e))))?;
        manifest
            .validate()
            .map_err(|e| Error::Package(format!("{shown}: {}", strip_prefix(&e))))?;
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if file_name != manifest_file_name(&manifest.name) {
            return Err(Error::Package(format!(
                "{shown} describes package {:?}, whose manifest is named {}; rename the file back",
                manifest.name,
                manifest_file_name(&manifest.name)
            )));
        }
        Ok(manifest)
    }

    /// Checks every invariant listed in the module docs.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Package(m));
        if self.format_version != FORMAT_VERSION {
            return bad(format!(
                "manifest format_version {} is not supported (this vctts reads {FORMAT_VERSION}); use a matching vctts",
                self.format_version
            ));
        }
        if self.manifest_sha256 != self.self_hash() {
            return bad(
                "manifest has been modified: manifest_sha256 does not match its content; \
                 restore the original manifest from the package source"
                    .into(),
            );
        }
        if validate_name(&self.name).is_err() {
            return bad(format!(
                "manifest names the package {:?}, which is not a valid name",
                self.name
            ));
        }
        self.validate_parts()?;
        self.validate_paths()
    }

    fn validate_parts(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Package(m));
        if self.part_size == 0 {
            return bad("manifest has part_size 0".into());
        }
        if self.parts.is_empty() {
            return bad("manifest lists no parts".into());
        }
        let last = self.parts.len() - 1;
        let mut sum: u64 = 0;
        for (i, part) in self.parts.iter().enumerate() {
            let expected = part_file_name(&self.name, i as u64);
            if part.name != expected {
                return bad(format!(
                    "manifest part {} is named {:?}, expected {expected:?}",
                    i + 1,
                    part.name
                ));
            }
            let size_ok = if i < last {
                part.size == self.part_size
            } else {
                (1..=self.part_size).contains(&part.size)
            };
            if !size_ok {
                return bad(format!(
                    "manifest gives part {} {} bytes, which does not fit part_size {}",
                    part.name, part.size, self.part_size
                ));
            }
            if !is_sha256_hex(&part.sha256) {
                return bad(format!("manifest has a malformed sha256 for part {}", part.name));
            }
            sum = sum.saturating_add(part.size);
        }
        if sum != self.total_size {
            return bad(format!(
                "manifest total_size {} is not the sum of its parts ({sum})",
                self.total_size
            ));
        }
        Ok(())
    }

    fn validate_paths(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Package(m));
        let sorted = |paths: &[&str], what: &str| -> Result<()> {
            for pair in paths.windows(2) {
                if pair[0] >= pair[1] {
                    return Err(Error::Package(format!(
                        "manifest {what} are not sorted or repeat {:?}",
                        pair[1]
                    )));
                }
            }
            for p in paths {
                if let Err(why) = check_package_path(p) {
                    return Err(Error::Package(format!("manifest path {p:?} {why}")));
                }
            }
            Ok(())
        };
        let files: Vec<&str> = self.files.iter().map(|f| f.path.as_str()).collect();
        let dirs: Vec<&str> = self.dirs.iter().map(String::as_str).collect();
        let links: Vec<&str> = self.links.iter().map(|l| l.path.as_str()).collect();
        sorted(&files, "files")?;
        sorted(&dirs, "dirs")?;
        sorted(&links, "links")?;
        let mut unpacked: u64 = 0;
        for f in &self.files {
            if !is_sha256_hex(&f.sha256) {
                return bad(format!("manifest has a malformed sha256 for file {:?}", f.path));
            }
            unpacked = unpacked.saturating_add(f.size);
        }
        if unpacked != self.unpacked_size {
            return bad(format!(
                "manifest unpacked_size {} is not the sum of its files ({unpacked})",
                self.unpacked_size
            ));
        }
        let mut all = HashSet::new();
        for p in files.iter().chain(&dirs).chain(&links) {
            if !all.insert(*p) {
                return bad(format!("manifest lists {p:?} twice"));
            }
        }
        let leaves: HashSet<&str> = files.iter().chain(&links).copied().collect();
        for p in &all {
            if let Some(a) = ancestors(p).find(|a| leaves.contains(a)) {
                return bad(format!(
                    "manifest path {p:?} lies below {a:?}, which is not a folder"
                ));
            }
        }
        let link_set: HashSet<&str> = links.iter().copied().collect();
        for l in &self.links {
            if let Err(why) = resolve_link_target(&l.path, &l.target, &|p| link_set.contains(p)) {
                return bad(format!("manifest symlink {:?} {why}", l.path));
            }
        }
        Ok(())
    }
}

/// The message of an [`Error::Package`] without its "package error: " prefix.
fn strip_prefix(e: &Error) -> String {
    match e {
        Error::Package(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Finds the manifest of a package: `pkg` is the manifest file itself or a
/// folder holding exactly one `*.pkg.manifest.json`. Returns the package
/// folder and the manifest path.
pub(crate) fn locate(pkg: &Path) -> Result<(PathBuf, PathBuf)> {
    let shown = pkg.display();
    let meta = std::fs::metadata(pkg).map_err(|e| Error::io(format!("opening package {shown}"), e))?;
    if meta.is_file() {
        let dir = match pkg.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        return Ok((dir, pkg.to_path_buf()));
    }
    let mut found = Vec::new();
    let entries =
        std::fs::read_dir(pkg).map_err(|e| Error::io(format!("listing package folder {shown}"), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("listing package folder {shown}"), e))?;
        let name = entry.file_name();
        match name.to_str() {
            Some(n) if n.ends_with(".pkg.manifest.json") => found.push(n.to_string()),
            _ => {}
        }
    }
    found.sort();
    match found.len() {
        0 => Err(Error::Package(format!(
            "no *.pkg.manifest.json in {shown}: not a vctts package folder \
             (make one with `vctts models pack`, or copy the manifest with the parts)"
        ))),
        1 => Ok((pkg.to_path_buf(), pkg.join(&found[0]))),
        _ => Err(Error::Package(format!(
            "{shown} holds several manifests ({}); pass the manifest file of the package you mean",
            found.join(", ")
        ))),
    }
}

/// `t` as ISO 8601 UTC with second precision, e.g. `2025-01-02T03:04:05Z`
/// (the RFC 3339 profile without fractions, so manifests of every version
/// read the same). Times before 1970 print as the epoch, times past the
/// year 9999 as its last second.
pub(crate) fn format_utc(t: SystemTime) -> String {
    const SECONDS: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let at = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::macros::datetime!(9999-12-31 23:59:59 UTC));
    // Every value of the range above fits the description.
    at.format(SECONDS)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const H: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn sample() -> Manifest {
        let mut m = Manifest {
            format_version: FORMAT_VERSION,
            name: "openvoice".into(),
            engine: Some(EngineKind::OpenVoice),
            tool: "vctts 0.1.0".into(),
            compression: Compression::Gzip,
            created_at: "2025-01-02T03:04:05Z".into(),
            total_size: 10,
            unpacked_size: 3,
            part_size: 4,
            dirs: vec!["base".into(), "converter".into()],
            files: vec![
                FileEntry {
                    path: "base/a.onnx".into(),
                    size: 1,
                    sha256: H.into(),
                },
                FileEntry {
                    path: "converter/b.onnx".into(),
                    size: 2,
                    sha256: H.into(),
                },
            ],
            links: vec![LinkEntry {
                path: "base/latest.onnx".into(),
                target: "a.onnx".into(),
            }],
            parts: ["aa", "ab", "ac"]
                .iter()
                .zip([4, 4, 2])
                .map(|(s, size)| PartEntry {
                    name: format!("openvoice.pkg.part_{s}"),
                    size,
                    sha256: H.into(),
                })
                .collect(),
            manifest_sha256: String::new(),
        };
        m.seal();
        m
    }

    fn refused(edit: impl FnOnce(&mut Manifest), needle: &str) {
        let mut m = sample();
        edit(&mut m);
        m.seal();
        let e = m.validate().unwrap_err().to_string();
        assert!(e.contains(needle), "expected {needle:?} in {e:?}");
    }

    #[test]
    fn a_sealed_manifest_validates_and_round_trips() {
        let m = sample();
        m.validate().unwrap();
        let back = Manifest::from_json(&m.to_json()).unwrap();
        assert_eq!(back, m);
        back.validate().unwrap();
        let json = m.to_json();
        assert!(json.find("\"format_version\"").unwrap() < json.find("\"manifest_sha256\"").unwrap());
        assert!(json.contains("\"engine\": \"openvoice\""));
    }

    #[test]
    fn edits_break_the_seal() {
        let mut m = sample();
        m.files[0].size = 2;
        m.unpacked_size = 4;
        assert!(
            m.validate()
                .unwrap_err()
                .to_string()
                .contains("has been modified")
        );
    }

    #[test]
    fn unknown_fields_and_versions_are_refused() {
        let json = sample().to_json().replacen("{", "{\n  \"extra\": 1,", 1);
        assert!(
            Manifest::from_json(&json)
                .unwrap_err()
                .to_string()
                .contains("extra")
        );
        refused(|m| m.format_version = 2, "format_version 2");
    }

    #[test]
    fn inconsistent_manifests_are_refused() {
        refused(
            |m| m.parts[1].name = "openvoice.pkg.part_zz".into(),
            "expected \"openvoice.pkg.part_ab\"",
        );
        refused(|m| m.parts[0].size = 3, "does not fit part_size");
        refused(|m| m.parts[2].size = 5, "does not fit part_size");
        refused(|m| m.total_size = 11, "total_size");
        refused(|m| m.unpacked_size = 2, "unpacked_size");
        refused(|m| m.parts.clear(), "no parts");
        refused(|m| m.files[0].sha256 = "x".into(), "malformed sha256");
        refused(|m| m.files.swap(0, 1), "not sorted");
        refused(|m| m.files[0].path = "../evil".into(), "'..'");
        refused(|m| m.dirs.push("converter/b.onnx".into()), "twice");
        refused(|m| m.dirs.push("converter/b.onnx/x".into()), "below");
        refused(|m| m.links[0].target = "../../etc/passwd".into(), "outside");
        refused(|m| m.name = "a b".into(), "not a valid name");
    }

    #[test]
    fn locates_manifests() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            locate(dir.path())
                .unwrap_err()
                .to_string()
                .contains("no *.pkg.manifest.json")
        );
        std::fs::write(dir.path().join("a.pkg.manifest.json"), "{}").unwrap();
        let (d, p) = locate(dir.path()).unwrap();
        assert_eq!(d, dir.path());
        assert_eq!(p, dir.path().join("a.pkg.manifest.json"));
        let (d, _) = locate(&p).unwrap();
        assert_eq!(d, dir.path());
        std::fs::write(dir.path().join("b.pkg.manifest.json"), "{}").unwrap();
        assert!(
            locate(dir.path())
                .unwrap_err()
                .to_string()
                .contains("several manifests")
        );
    }

    #[test]
    fn load_checks_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("other.pkg.manifest.json");
        std::fs::write(&p, sample().to_json()).unwrap();
        assert!(Manifest::load(&p).unwrap_err().to_string().contains("rename"));
        let good = dir.path().join("openvoice.pkg.manifest.json");
        std::fs::write(&good, sample().to_json()).unwrap();
        assert_eq!(Manifest::load(&good).unwrap(), sample());
        std::fs::write(&good, "not json").unwrap();
        assert!(
            Manifest::load(&good)
                .unwrap_err()
                .to_string()
                .contains("not valid")
        );
    }

    #[test]
    fn formats_utc_times() {
        let at = |s: u64| format_utc(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(at(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(at(1 << 40), "9999-12-31T23:59:59Z");
        assert_eq!(
            format_utc(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
        // Fractions of a second are dropped, not rounded.
        assert_eq!(
            format_utc(UNIX_EPOCH + Duration::from_millis(1_700_000_000_999)),
            "2023-11-14T22:13:20Z"
        );
    }
}

/// Properties of the manifest parser on arbitrary input: no panic on any
/// text, and any manifest (however wrong its paths, sizes or names) survives
/// a write/read round trip and validates or is refused with a package error.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    const H: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn path() -> impl Strategy<Value = String> {
        "(/|\\.\\.?/|[a-b]{1,2}/|\u{e9}/|\\\\|\0){0,4}[a-b.]{0,3}"
    }

    fn manifest() -> impl Strategy<Value = Manifest> {
        (
            "[a-z.]{0,6}",
            prop::collection::vec((path(), any::<u64>()), 0..4),
            prop::collection::vec(path(), 0..3),
            prop::collection::vec((path(), path()), 0..3),
            prop::collection::vec(prop_oneof![Just(1u64), Just(4), any::<u64>()], 0..4),
            prop_oneof![Just(4u64), Just(0), any::<u64>()],
            any::<bool>(),
        )
            .prop_map(|(name, files, dirs, links, parts, part_size, sort)| {
                let mut files: Vec<FileEntry> = files
                    .into_iter()
                    .map(|(path, size)| FileEntry {
                        path,
                        size,
                        sha256: H.into(),
                    })
                    .collect();
                let mut dirs = dirs;
                if sort {
                    files.sort_by(|a, b| a.path.cmp(&b.path));
                    dirs.sort();
                }
                let parts: Vec<PartEntry> = parts
                    .iter()
                    .enumerate()
                    .map(|(i, &size)| PartEntry {
                        name: part_file_name(&name, i as u64),
                        size,
                        sha256: H.into(),
                    })
                    .collect();
                let mut m = Manifest {
                    format_version: FORMAT_VERSION,
                    name,
                    engine: None,
                    tool: "vctts test".into(),
                    compression: Compression::Zstd,
                    created_at: "2025-01-02T03:04:05Z".into(),
                    total_size: parts.iter().fold(0u64, |s, p| s.saturating_add(p.size)),
                    unpacked_size: files.iter().fold(0u64, |s, f| s.saturating_add(f.size)),
                    part_size,
                    dirs,
                    files,
                    links: links
                        .into_iter()
                        .map(|(path, target)| LinkEntry { path, target })
                        .collect(),
                    parts,
                    manifest_sha256: String::new(),
                };
                m.seal();
                m
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_text_parses_or_is_a_package_error(text in "\\PC{0,200}") {
            if let Err(e) = Manifest::from_json(&text) {
                prop_assert!(matches!(e, Error::Package(_)));
            }
        }

        #[test]
        fn any_manifest_round_trips_and_validates_without_panic(m in manifest()) {
            let again = Manifest::from_json(&m.to_json()).unwrap();
            prop_assert_eq!(&again, &m);
            match m.validate() {
                Ok(()) => prop_assert!(again.validate().is_ok()),
                Err(e) => prop_assert!(matches!(e, Error::Package(_))),
            }
        }

        #[test]
        fn a_changed_byte_is_refused_or_still_consistent(m in manifest(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = m.to_json().into_bytes();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Ok(text) = String::from_utf8(bytes) {
                if let Ok(parsed) = Manifest::from_json(&text) {
                    if parsed != m {
                        // Any real change breaks the seal.
                        prop_assert!(parsed.validate().is_err());
                    }
                }
            }
        }
    }
}
